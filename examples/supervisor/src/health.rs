//! Health checks of the agent: an HTTP `GET` of its health endpoint (the collector's
//! `health_check` extension answers 200 when healthy, 503 otherwise) and the
//! `ComponentHealth` the supervisor reports from them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use opamp_client::proto::ComponentHealth;
use tokio::net::TcpStream;

/// The longest `last_error` reported.
pub const MAX_LAST_ERROR: usize = 4096;

/// Checks one health URL.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    url: http::Uri,
    host: String,
    port: u16,
    timeout: Duration,
}

impl HealthProbe {
    /// A probe of `url` (`http://host[:port]/path`); one check takes at most `timeout`.
    pub fn new(url: http::Uri, timeout: Duration) -> Self {
        let host = url
            .host()
            .unwrap_or("localhost")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_u16().unwrap_or(80);
        HealthProbe {
            url,
            host,
            port,
            timeout,
        }
    }

    /// The URL checked.
    pub fn url(&self) -> &http::Uri {
        &self.url
    }

    /// One check: `Ok` for a 2xx answer, else why not.
    pub async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "health check on {} timed out after {:?}",
                self.url, self.timeout
            )),
        }
    }

    async fn exchange(&self) -> Result<(), String> {
        let failed = |err: &dyn std::fmt::Display| format!("GET {}: {err}", self.url);
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|err| failed(&err))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| failed(&err))?;
        let connection = tokio::spawn(connection);
        let path = self
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let authority = self
            .url
            .authority()
            .map_or_else(|| self.host.clone(), |a| a.as_str().to_owned());
        let request = http::Request::get(path)
            .header(http::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .map_err(|err| failed(&err))?;
        let result = sender.send_request(request).await;
        connection.abort();
        let response = result.map_err(|err| failed(&err))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "health check on {} returned {}",
                self.url,
                response.status().as_u16()
            ))
        }
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Keeps the end of `text` (the most recent output) within `max` bytes.
pub fn keep_end(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// What the supervisor knows about the agent's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentHealth {
    /// Started, not healthy yet.
    Starting {
        /// The last failed check, if any.
        last_error: Option<String>,
    },
    /// The last check succeeded.
    Healthy,
    /// It was healthy; the last check failed.
    Unhealthy {
        /// The failed check.
        last_error: String,
    },
    /// The process exited; it is restarted after a delay.
    Exited {
        /// How it ended, with the tail of its standard error.
        reason: String,
    },
    /// Stopped by the supervisor.
    Stopped,
}

impl AgentHealth {
    /// Whether the agent counts as healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, AgentHealth::Healthy)
    }

    /// The `ComponentHealth` to report. `started_at`: when the current process started.
    pub fn component_health(
        &self,
        started_at: Option<SystemTime>,
        now: SystemTime,
    ) -> ComponentHealth {
        let (status, last_error) = match self {
            AgentHealth::Starting { last_error } => {
                ("starting", last_error.clone().unwrap_or_default())
            }
            AgentHealth::Healthy => ("healthy", String::new()),
            AgentHealth::Unhealthy { last_error } => ("unhealthy", last_error.clone()),
            AgentHealth::Exited { reason } => ("exited", reason.clone()),
            AgentHealth::Stopped => ("stopped", String::new()),
        };
        ComponentHealth {
            healthy: self.is_healthy(),
            start_time_unix_nano: started_at.map_or(0, unix_nanos),
            last_error: keep_end(&last_error, MAX_LAST_ERROR),
            status: status.into(),
            status_time_unix_nano: unix_nanos(now),
            ..Default::default()
        }
    }
}

/// Whether two health reports differ in more than their timestamp.
pub fn same_health(a: &ComponentHealth, b: &ComponentHealth) -> bool {
    a.healthy == b.healthy
        && a.status == b.status
        && a.last_error == b.last_error
        && a.start_time_unix_nano == b.start_time_unix_nano
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_health_reports_the_error_tail() {
        let long = format!("agent exited (exit status 1)\n{}", "x".repeat(10_000));
        let health = AgentHealth::Exited { reason: long }
            .component_health(Some(UNIX_EPOCH + Duration::from_secs(1)), SystemTime::now());
        assert!(!health.healthy);
        assert_eq!(health.status, "exited");
        assert!(health.last_error.len() <= MAX_LAST_ERROR + "…".len());
        assert!(health.last_error.ends_with('x'));
        assert_eq!(health.start_time_unix_nano, 1_000_000_000);
        let ok = AgentHealth::Healthy.component_health(None, SystemTime::now());
        assert!(ok.healthy && ok.last_error.is_empty());
    }

    #[tokio::test]
    async fn probe_reports_refused_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let probe = HealthProbe::new(
            format!("http://127.0.0.1:{port}/").parse().unwrap(),
            Duration::from_secs(10),
        );
        let err = probe.check().await.unwrap_err();
        assert!(
            err.starts_with(&format!("GET http://127.0.0.1:{port}/")),
            "{err}"
        );
    }
}
