//! Misbehaving servers, run against our [`opamp_client::Client`].
//!
//! Each scenario starts a small listener on `127.0.0.1:0` that misbehaves in one way, runs a
//! client against it, and checks that the client ends with a typed error (seen through its
//! `on_connect_failed` or `on_connection_lost` callback), neither spins nor
//! hangs, and recovers (reconnects, or takes the next good message) where it can.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use opamp_client::proto::{AgentDescription, InstanceUid, ServerToAgent};
use opamp_client::state::ExponentialBackoff;
use opamp_client::{Callbacks, Client, ClientSettings, MessageData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::raw::ws_payload;
use super::{Answer, Outcome, STEP};
use crate::harness::config_agent_capabilities;
use crate::{Error, remote_config};

/// Which transport the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ws://`.
    WebSocket,
    /// `http://` (polling).
    Http,
}

/// Most errors kept by [`Observed`].
const MAX_KEPT: usize = 1000;

/// What the client's callbacks saw.
#[derive(Debug, Default)]
pub struct Observed {
    failures: Mutex<Vec<String>>,
    http_statuses: Mutex<Vec<(u16, Option<Duration>)>>,
    messages: Mutex<Vec<MessageData>>,
    changed: Notify,
}

impl Observed {
    /// The `on_connect_failed` and `on_connection_lost` errors so far (as text).
    pub fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// HTTP status failures (`Error::ServerUnavailable`, `Error::Unauthorized`,
    /// `Error::HttpStatus`): status and `Retry-After`.
    pub fn http_statuses(&self) -> Vec<(u16, Option<Duration>)> {
        self.http_statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Messages delivered to `on_message`.
    pub fn messages(&self) -> Vec<MessageData> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Recorder(Arc<Observed>);

#[async_trait::async_trait]
impl Callbacks for Recorder {
    async fn on_connect_failed(&self, error: &opamp_client::Error) {
        let http_status = match error {
            opamp_client::Error::ServerUnavailable {
                status,
                retry_after,
            }
            | opamp_client::Error::HttpStatus {
                status,
                retry_after,
            } => Some((status.as_u16(), *retry_after)),
            opamp_client::Error::Unauthorized { status } => Some((status.as_u16(), None)),
            _ => None,
        };
        if let Some(status) = http_status {
            let mut statuses = self
                .0
                .http_statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if statuses.len() < MAX_KEPT {
                statuses.push(status);
            }
        }
        {
            let mut failures = self
                .0
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if failures.len() < MAX_KEPT {
                failures.push(format!("{error} ({error:?})"));
            }
        }
        self.0.changed.notify_waiters();
    }

    async fn on_connection_lost(&self, error: &opamp_client::Error) {
        {
            let mut failures = self
                .0
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if failures.len() < MAX_KEPT {
                failures.push(format!("connection lost: {error} ({error:?})"));
            }
        }
        self.0.changed.notify_waiters();
    }

    async fn on_message(&self, msg: MessageData) {
        {
            let mut messages = self
                .0
                .messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if messages.len() < MAX_KEPT {
                messages.push(msg);
            }
        }
        self.0.changed.notify_waiters();
    }
}

type Handler =
    Arc<dyn Fn(TcpStream, u32) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A listener on `127.0.0.1:0` running `handler` for every accepted connection (with the
/// 1-based attempt number), counting attempts.
struct Misbehaving {
    addr: SocketAddr,
    attempts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Misbehaving {
    async fn start(handler: Handler) -> Result<Misbehaving, Error> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&attempts);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let attempt = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(handler(tcp, attempt));
            }
        });
        Ok(Misbehaving {
            addr,
            attempts,
            task,
        })
    }

    fn url(&self, transport: Transport) -> String {
        match transport {
            Transport::WebSocket => format!("ws://{}/v1/opamp", self.addr),
            Transport::Http => format!("http://{}/v1/opamp", self.addr),
        }
    }

    fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    async fn wait_attempts(&self, at_least: u32, limit: Duration) -> Result<u32, Error> {
        let deadline = Instant::now() + limit;
        while self.attempts() < at_least {
            if Instant::now() >= deadline {
                return Err(Error::timeout(
                    format!("{at_least} connection attempts (saw {})", self.attempts()),
                    limit,
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(self.attempts())
    }
}

impl Drop for Misbehaving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The client settings of the scenarios: fast backoff, 1 s heartbeats, short timeouts.
fn client_settings(url: &str) -> ClientSettings {
    ClientSettings::new(url)
        .with_instance_uid(InstanceUid::new_v7())
        .with_agent_description(
            AgentDescription::builder()
                .service_name("opamp-conformance-client")
                .build(),
        )
        .with_capabilities(config_agent_capabilities())
        .with_heartbeat_interval(Duration::from_secs(1))
        .with_backoff(
            ExponentialBackoff::new()
                .with_initial_interval(Duration::from_millis(200))
                .with_max_interval(Duration::from_secs(1)),
        )
        .with_min_throttle_delay(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(2))
        .with_stop_timeout(Duration::from_secs(2))
}

fn start_client(settings: ClientSettings) -> Result<(Client, Arc<Observed>), Error> {
    let observed = Arc::new(Observed::default());
    let client = Client::start(settings, Recorder(Arc::clone(&observed)))?;
    Ok((client, observed))
}

async fn stop_client(client: &Client) -> Result<(), Error> {
    tokio::time::timeout(STEP, client.stop())
        .await
        .map_err(|_| Error::violation("Client::stop did not return"))??;
    Ok(())
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body, at most 1 MiB); `None` when
/// the peer closed first.
async fn read_http_request(tcp: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0)
                .min(1 << 20);
            let mut body = buf[end + 4..].to_vec();
            while body.len() < length {
                let n = tcp.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some((head, body));
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Accepts a WebSocket upgrade on `tcp` (from any request path).
async fn accept_ws(tcp: TcpStream) -> Option<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let config = WebSocketConfig::default().max_message_size(Some(256 << 20));
    tokio_tungstenite::accept_async_with_config(tcp, Some(config))
        .await
        .ok()
}

fn good_reply_payload() -> Vec<u8> {
    ws_payload(&ServerToAgent {
        remote_config: Some(remote_config("conformance.json", "application/json", "{}")),
        ..Default::default()
    })
}

/// A server that answers every request (and every WebSocket upgrade) with `503` and
/// `Retry-After: 1`, forever. The client must wait at least the `Retry-After` delay between
/// attempts (spec §"Throttling") and report `Error::ServerUnavailable` with it.
pub async fn retry_after_forever(transport: Transport, window: Duration) -> Result<Outcome, Error> {
    let start = Instant::now();
    let handler: Handler = Arc::new(|mut tcp, _| {
        Box::pin(async move {
            if read_http_request(&mut tcp).await.is_some() {
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                          Content-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            }
        })
    });
    let server = Misbehaving::start(handler).await?;
    let (client, observed) = start_client(client_settings(&server.url(transport)))?;
    tokio::time::sleep(window).await;
    stop_client(&client).await?;
    let attempts = server.attempts();
    // One attempt per Retry-After second at most, plus the first and one of slack.
    let most = u32::try_from(window.as_secs())
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    if attempts == 0 || attempts > most {
        return Err(Error::violation(format!(
            "503 with Retry-After: 1 for {window:?}: expected 1..={most} attempts, saw {attempts}"
        )));
    }
    let statuses = observed.http_statuses();
    let Some(&(status, retry_after)) = statuses.first() else {
        return Err(Error::violation(format!(
            "no Error::ServerUnavailable reported; failures: {:?}",
            observed.failures()
        )));
    };
    if status != 503 || retry_after != Some(Duration::from_secs(1)) {
        return Err(Error::violation(format!(
            "expected ServerUnavailable 503 with Retry-After 1 s, got {status} {retry_after:?}"
        )));
    }
    Ok(Outcome {
        scenario: "503 with Retry-After forever",
        answer: Answer::BackedOff { attempts, window },
        error: observed.failures().into_iter().next(),
        elapsed: start.elapsed(),
    })
}

/// A server that starts a reply and closes the connection in the middle of it (a WebSocket
/// frame announcing 200 bytes with 20 sent; an HTTP body of `Content-Length: 200` with 20
/// sent). The client must treat it as a lost connection and connect again.
pub async fn close_mid_message(transport: Transport) -> Result<Outcome, Error> {
    let start = Instant::now();
    let handler: Handler = match transport {
        Transport::WebSocket => Arc::new(|tcp, _| {
            Box::pin(async move {
                let Some(mut ws) = accept_ws(tcp).await else {
                    return;
                };
                let _ = ws.next().await;
                let tcp = ws.get_mut();
                // FIN + binary, 126 ⇒ 16-bit length 200; then only 20 bytes.
                let mut partial = vec![0x82u8, 126, 0, 200];
                partial.extend_from_slice(&[0u8; 20]);
                let _ = tcp.write_all(&partial).await;
                let _ = tcp.shutdown().await;
            })
        }),
        Transport::Http => Arc::new(|mut tcp, _| {
            Box::pin(async move {
                if read_http_request(&mut tcp).await.is_some() {
                    let mut response =
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                          Content-Length: 200\r\n\r\n"
                            .to_vec();
                    response.extend_from_slice(&[0u8; 20]);
                    let _ = tcp.write_all(&response).await;
                    let _ = tcp.shutdown().await;
                }
            })
        }),
    };
    let server = Misbehaving::start(handler).await?;
    let (client, observed) = start_client(client_settings(&server.url(transport)))?;
    let attempts = server.wait_attempts(3, STEP).await;
    stop_client(&client).await?;
    let attempts = attempts?;
    let failures = observed.failures();
    if transport == Transport::Http && failures.is_empty() {
        return Err(Error::violation(
            "a truncated HTTP response was not reported to on_connect_failed",
        ));
    }
    Ok(Outcome {
        scenario: "server closes in the middle of a message",
        answer: Answer::Reconnected(attempts),
        error: failures.into_iter().next(),
        elapsed: start.elapsed(),
    })
}

/// A WebSocket server that answers the first report with malformed messages (non-zero
/// header, truncated varint, garbage protobuf, a text frame) and then a good message with a
/// remote config. The client must drop the malformed ones (or reconnect) and deliver the good
/// one to `on_message`.
pub async fn malformed_replies() -> Result<Outcome, Error> {
    let start = Instant::now();
    let handler: Handler = Arc::new(|tcp, attempt| {
        Box::pin(async move {
            let Some(mut ws) = accept_ws(tcp).await else {
                return;
            };
            if ws.next().await.is_none() {
                return;
            }
            if attempt == 1 {
                let mut bad_header = good_reply_payload();
                bad_header[0] = 1;
                for bad in [
                    Message::Binary(bad_header.into()),
                    Message::Binary(vec![0x80u8].into()),
                    Message::Binary(vec![0x00, 0x0a, 0x10, 0x01, 0x93, 0xff].into()),
                    Message::Text("not OpAMP".into()),
                ] {
                    if ws.send(bad).await.is_err() {
                        return;
                    }
                }
            }
            let _ = ws.send(Message::Binary(good_reply_payload().into())).await;
            // Keep the connection until the client goes.
            while let Some(Ok(_)) = ws.next().await {}
        })
    });
    let server = Misbehaving::start(handler).await?;
    let (client, observed) = start_client(client_settings(&server.url(Transport::WebSocket)))?;
    let deadline = Instant::now() + STEP;
    let got = loop {
        if observed
            .messages()
            .iter()
            .any(|m| m.remote_config.is_some())
        {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop_client(&client).await?;
    if !got {
        return Err(Error::violation(
            "the good message after malformed ones never reached on_message",
        ));
    }
    let attempts = server.attempts();
    Ok(Outcome {
        scenario: "malformed server messages",
        answer: if attempts <= 1 {
            Answer::NormalReply
        } else {
            Answer::Reconnected(attempts)
        },
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A WebSocket server that sends a message one byte over the client's limit (`limit`). The
/// client must close with 1009 (spec §"WebSocket Message Size Limits") or drop the
/// connection, and connect again.
pub async fn oversize_reply(limit: usize) -> Result<Outcome, Error> {
    let start = Instant::now();
    let close_code = Arc::new(Mutex::new(None::<u16>));
    let seen = Arc::clone(&close_code);
    let handler: Handler = Arc::new(move |tcp, attempt| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            let Some(mut ws) = accept_ws(tcp).await else {
                return;
            };
            if ws.next().await.is_none() || attempt > 1 {
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            let _ = ws.send(Message::Binary(vec![0u8; limit + 1].into())).await;
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Close(frame) = message {
                    *seen.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(frame.map_or(1005, |f| f.code.into()));
                    break;
                }
            }
        })
    });
    let server = Misbehaving::start(handler).await?;
    let settings = client_settings(&server.url(Transport::WebSocket)).with_max_message_size(limit);
    let (client, _observed) = start_client(settings)?;
    let attempts = server.wait_attempts(2, STEP).await;
    stop_client(&client).await?;
    let attempts = attempts?;
    let code = *close_code.lock().unwrap_or_else(PoisonError::into_inner);
    let answer = match code {
        Some(1009) => Answer::Closed {
            code: 1009,
            reason: String::new(),
        },
        None => Answer::Dropped,
        Some(other) => {
            return Err(Error::violation(format!(
                "an oversize server message: expected close 1009, the client sent {other}"
            )));
        }
    };
    Ok(Outcome {
        scenario: "oversize server message",
        answer,
        error: Some(format!("reconnected after {attempts} attempts")),
        elapsed: start.elapsed(),
    })
}

/// An HTTP server whose every response is a gzip body of a few KiB inflating to four times
/// the client's limit (`limit`). The client must stop inflating at the limit and report a
/// typed error.
pub async fn gzip_bomb_reply(limit: usize) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 64 * 1024];
    let mut left = limit.saturating_mul(4);
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n])?;
        left -= n;
    }
    let bomb = Arc::new(encoder.finish()?);
    let handler: Handler = Arc::new(move |mut tcp, _| {
        let bomb = Arc::clone(&bomb);
        Box::pin(async move {
            while read_http_request(&mut tcp).await.is_some() {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                     Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                    bomb.len()
                );
                if tcp.write_all(head.as_bytes()).await.is_err()
                    || tcp.write_all(&bomb).await.is_err()
                {
                    return;
                }
            }
        })
    });
    let server = Misbehaving::start(handler).await?;
    let settings = client_settings(&server.url(Transport::Http)).with_max_message_size(limit);
    let (client, observed) = start_client(settings)?;
    let deadline = Instant::now() + STEP;
    while observed.failures().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_client(&client).await?;
    let failures = observed.failures();
    let Some(first) = failures.first() else {
        return Err(Error::violation(
            "a gzip bomb response was not reported as an error",
        ));
    };
    if !observed.messages().is_empty() {
        return Err(Error::violation(
            "a gzip bomb response was delivered as a message",
        ));
    }
    Ok(Outcome {
        scenario: "gzip bomb response",
        answer: Answer::Dropped,
        error: Some(first.clone()),
        elapsed: start.elapsed(),
    })
}

/// A server that accepts TCP connections and never reads or answers. The client must time
/// out (typed error), try again, and still stop promptly.
pub async fn unresponsive_server(transport: Transport) -> Result<Outcome, Error> {
    let start = Instant::now();
    let handler: Handler = Arc::new(|tcp, _| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tcp);
        })
    });
    let server = Misbehaving::start(handler).await?;
    let (client, observed) = start_client(client_settings(&server.url(transport)))?;
    let attempts = server.wait_attempts(2, STEP).await;
    let stopping = Instant::now();
    stop_client(&client).await?;
    let stop_took = stopping.elapsed();
    let attempts = attempts?;
    let failures = observed.failures();
    let Some(first) = failures.first() else {
        return Err(Error::violation(
            "an unresponsive server was not reported to on_connect_failed",
        ));
    };
    Ok(Outcome {
        scenario: "server that never answers",
        answer: Answer::Reconnected(attempts),
        error: Some(format!("{first}; stop took {stop_took:?}")),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opamp_client::proto::Message as _;

    #[test]
    fn good_reply_decodes() {
        let payload = good_reply_payload();
        let msg = ServerToAgent::decode(&payload[1..]).expect("decodes");
        assert!(msg.remote_config.is_some());
    }
}
