//! The tokio task that drives [`ClientState`](crate::state::ClientState) over WebSocket or
//! plain HTTP, runs the timers, carries out the packages and connection settings flows, and
//! calls the [`Callbacks`].
//!
//! One task per client runs everything, callbacks included, so callbacks never run
//! concurrently and none runs after the task ended (what [`Client::stop`] waits for). The
//! package syncer runs in a second task that only reports statuses into the state.
//!
//! [`Client::stop`]: crate::Client::stop

mod flows;
mod headers;
mod http;
mod packages;
mod proxy;
mod shared;
mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::HeaderMap;
use opamp_transport::codec::Limits;
use opamp_transport::tls::TlsClientSettings;

pub(crate) use shared::Shared;

use crate::callbacks::Callbacks;
use crate::connection_settings::OpampConnectionParams;
use crate::settings::{HeaderProvider, PackagesSettings};
use crate::state::{Event, Failure, Transport};
use crate::{Error, proto::AgentCapabilities};

tokio::task_local! {
    static IN_DRIVER: ();
}

/// Whether the caller runs on a client's driver task (i.e. inside a callback).
pub(crate) fn in_driver() -> bool {
    IN_DRIVER.try_with(|()| ()).is_ok()
}

/// The transport a server URL asks for.
pub(crate) fn transport_of(url: &str) -> Result<Transport, Error> {
    let invalid = |reason: &str| Error::InvalidSettings(format!("server URL {url:?}: {reason}"));
    let uri: ::http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("ws" | "wss") => Ok(Transport::WebSocket),
        Some("http" | "https") => Ok(Transport::Http),
        _ => Err(invalid("the scheme must be ws, wss, http or https")),
    }
}

/// How a failed attempt counts for retry scheduling.
pub(crate) fn failure_of(error: &Error) -> Failure {
    use ::http::StatusCode;
    match error {
        Error::ServerUnavailable { retry_after, .. } => Failure::Throttled {
            retry_after: *retry_after,
        },
        Error::HttpStatus {
            status: StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE,
            ..
        } => Failure::Rejected,
        Error::Transport(opamp_transport::Error::HttpStatus {
            status,
            retry_after,
            ..
        }) => failure_of(&Error::from_status(*status, *retry_after)),
        Error::Transport(err) if err.is_too_large() => Failure::Rejected,
        _ => Failure::Transient,
    }
}

/// The parts of the settings the driver uses.
pub(crate) struct DriverConfig {
    pub(crate) static_headers: HeaderMap,
    pub(crate) header_provider: Option<Arc<dyn HeaderProvider>>,
    pub(crate) tls: TlsClientSettings,
    pub(crate) limits: Limits,
    pub(crate) compression: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) ws_ping_interval: Duration,
    pub(crate) ws_read_timeout: Duration,
    pub(crate) stop_timeout: Duration,
    pub(crate) packages: Option<PackagesSettings>,
}

/// What ends one connection (WebSocket) or one run with given parameters (HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Connect again, with the connection parameters in force now.
    Reconnect,
    /// The client is stopping.
    Stop,
}

/// Sets `done` when the driver ends, even by a panic, so `stop` never waits forever.
struct DoneGuard(Arc<Shared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.fail_custom_waiters();
        self.0.done.send_replace(true);
    }
}

/// Runs a client until it is stopped.
pub(crate) async fn run(shared: Arc<Shared>, callbacks: Arc<dyn Callbacks>, config: DriverConfig) {
    let _done = DoneGuard(Arc::clone(&shared));
    let driver = Driver {
        shared,
        callbacks,
        config,
        packages: None,
    };
    IN_DRIVER.scope((), driver.run()).await;
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    callbacks: Arc<dyn Callbacks>,
    config: DriverConfig,
    packages: Option<packages::PackageTask>,
}

impl Driver {
    async fn run(mut self) {
        self.startup().await;
        loop {
            if self.shared.stop_requested() {
                break;
            }
            let params = self.shared.manager().connect_params().clone();
            let transport = match transport_of(&params.endpoint) {
                Ok(transport) => transport,
                Err(err) => {
                    // Offers are validated before they are tried; a bad persisted endpoint
                    // is treated like a failed attempt so that a candidate gets reverted.
                    tracing::error!(%err, "cannot use the OpAMP endpoint");
                    let reverted = self.connect_failed(&err, Failure::Transient).await;
                    if !reverted && self.wait_until_retry().await {
                        break;
                    }
                    continue;
                }
            };
            self.shared.state().set_transport(transport);
            let outcome = match transport {
                Transport::WebSocket => self.run_ws(&params).await,
                Transport::Http => self.run_http(&params).await,
            };
            if outcome == Outcome::Stop {
                break;
            }
        }
        self.shutdown().await;
    }

    /// Before the first connection: the effective configuration and package statuses.
    async fn startup(&mut self) {
        let caps = self.shared.state().capabilities();
        if caps.contains(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG) {
            self.pull_effective_config().await;
        }
        if let Some(settings) = self.config.packages.clone() {
            self.packages = Some(packages::PackageTask::start(settings, &self.shared).await);
        }
    }

    async fn shutdown(&mut self) {
        if let Some(task) = self.packages.take() {
            task.shutdown().await;
        }
        self.shared.state().stop();
        self.dispatch_events().await;
        self.handle_requests().await;
        self.persist_connection_settings().await;
        tracing::debug!("OpAMP client stopped");
    }

    /// A connection attempt (or setting it up) failed: the next one waits as `failure`
    /// requires, the agent is told, and a candidate under validation is charged with it.
    /// Returns true when the candidate was reverted.
    async fn connect_failed(&mut self, err: &Error, failure: Failure) -> bool {
        self.shared
            .state()
            .on_connect_failed(Instant::now(), failure);
        self.callbacks.on_connect_failed(err).await;
        self.candidate_failed(err).await
    }

    /// The headers of a connection attempt or request with `params`.
    async fn connection_headers(&self, params: &OpampConnectionParams) -> Result<HeaderMap, Error> {
        headers::connection_headers(
            &self.config.static_headers,
            params,
            self.config.header_provider.as_ref(),
        )
        .await
    }

    /// The rustls configuration for `params` when its endpoint is `wss://` or `https://`.
    fn tls_config(
        &self,
        params: &OpampConnectionParams,
    ) -> Result<Option<Arc<opamp_transport::tls::rustls::ClientConfig>>, Error> {
        let endpoint = params.endpoint.to_ascii_lowercase();
        if endpoint.starts_with("wss:") || endpoint.starts_with("https:") {
            params.tls_client_config(&self.config.tls).map(Some)
        } else {
            Ok(None)
        }
    }

    async fn pull_effective_config(&self) {
        match self.callbacks.get_effective_config().await {
            Ok(Some(config)) => {
                if let Err(err) = self.shared.state().set_effective_config(config) {
                    tracing::debug!(%err, "effective configuration not reported");
                }
                self.shared.wake();
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "get_effective_config failed"),
        }
    }

    /// Carries out what the handle asked for: pull the effective configuration, persist.
    async fn handle_requests(&self) {
        use shared::Requests;
        let requests = &self.shared.requests;
        if Requests::take(&requests.effective_config) {
            self.pull_effective_config().await;
        }
        if Requests::take(&requests.persist_remote_config_status) {
            let status = self.shared.state().remote_config_status().cloned();
            if let Some(status) = status {
                self.with_store("remote config status", move |store| {
                    store.save_remote_config_status(&status)
                })
                .await;
            }
        }
        if Requests::take(&requests.persist_connection_settings) {
            self.persist_connection_settings().await;
        }
    }

    /// Runs `f` with the state store on a blocking thread; errors are logged.
    async fn with_store<F>(&self, what: &'static str, f: F)
    where
        F: FnOnce(&dyn crate::persistence::StateStore) -> Result<(), Error> + Send + 'static,
    {
        let Some(store) = self.shared.store.clone() else {
            return;
        };
        match tokio::task::spawn_blocking(move || f(&*store)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, what, "could not persist client state"),
            Err(err) => tracing::error!(%err, what, "persisting client state panicked"),
        }
    }

    /// Waits until a wake-up, the stop request, or `deadline`.
    async fn wait(&self, deadline: Option<Instant>) {
        let mut stop = self.shared.stop.subscribe();
        let sleep = sleep_until(deadline);
        tokio::select! {
            _ = self.shared.wake.notified() => {}
            _ = stop.wait_for(|stop| *stop) => {}
            () = sleep => {}
        }
    }

    /// Waits until the state allows the next attempt. Returns true if the client stops.
    async fn wait_until_retry(&self) -> bool {
        loop {
            if self.shared.stop_requested() {
                return true;
            }
            self.handle_requests().await;
            let (backing_off, deadline) = {
                let state = self.shared.state();
                (state.is_backing_off(Instant::now()), state.poll_timeout())
            };
            if !backing_off {
                return false;
            }
            self.wait(deadline).await;
        }
    }

    /// Hands every queued event to the callbacks and flows. Returns true when the connection
    /// must be replaced (new connection settings to try).
    async fn dispatch_events(&mut self) -> bool {
        let mut reconnect = false;
        loop {
            let event = self.shared.state().poll_event();
            let Some(event) = event else {
                break;
            };
            match event {
                Event::Message(data) => {
                    if let (Some(available), Some(task)) =
                        (&data.packages_available, &self.packages)
                    {
                        task.offer(available.clone());
                    }
                    self.callbacks.on_message(*data).await;
                }
                Event::OpampConnectionSettings { settings, hash } => {
                    reconnect |= self.handle_opamp_offer(*settings, hash).await;
                }
                Event::Command(command) => self.callbacks.on_command(&command).await,
                Event::ServerError(error) => {
                    tracing::warn!(
                        error_type = error.r#type,
                        message = %error.error_message,
                        "the server answered with an error"
                    );
                    self.callbacks.on_error(&error).await;
                }
                Event::InstanceUidChanged { new, .. } => {
                    self.with_store("instance UID", move |store| store.save_instance_uid(new))
                        .await;
                    self.redo_csr(new).await;
                    self.callbacks.on_instance_uid_changed(new).await;
                }
                Event::CustomMessageSent(id) => self.shared.resolve_custom_waiter(id, Ok(())),
                Event::CustomMessageDropped(id) => {
                    self.shared
                        .resolve_custom_waiter(id, Err(Error::CustomMessageDropped));
                }
            }
        }
        reconnect
    }
}

fn sleep_until(deadline: Option<Instant>) -> tokio::time::Sleep {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)),
        // Far enough to never fire, small enough not to overflow.
        None => tokio::time::sleep(Duration::from_secs(86_400 * 365)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_the_transport() {
        assert_eq!(
            transport_of("ws://h/v1/opamp").unwrap(),
            Transport::WebSocket
        );
        assert_eq!(
            transport_of("WSS://h:4320/v1/opamp").unwrap(),
            Transport::WebSocket
        );
        assert_eq!(transport_of("http://h/v1/opamp").unwrap(), Transport::Http);
        assert_eq!(transport_of("https://h/v1/opamp").unwrap(), Transport::Http);
        assert!(transport_of("ftp://h/").is_err());
        assert!(transport_of("/v1/opamp").is_err());
        assert!(transport_of("not a url").is_err());
    }

    #[test]
    fn failures_are_classified() {
        use ::http::StatusCode;
        let status = |status, retry_after| Error::from_status(status, retry_after);
        let asked = Some(Duration::from_secs(3));
        assert_eq!(
            failure_of(&status(StatusCode::TOO_MANY_REQUESTS, asked)),
            Failure::Throttled { retry_after: asked }
        );
        assert_eq!(
            failure_of(&status(StatusCode::SERVICE_UNAVAILABLE, None)),
            Failure::Throttled { retry_after: None }
        );
        assert_eq!(
            failure_of(&status(StatusCode::BAD_REQUEST, None)),
            Failure::Rejected
        );
        assert_eq!(
            failure_of(&status(StatusCode::PAYLOAD_TOO_LARGE, None)),
            Failure::Rejected
        );
        assert_eq!(
            failure_of(&status(StatusCode::UNAUTHORIZED, None)),
            Failure::Transient
        );
        assert_eq!(failure_of(&Error::Stopped), Failure::Transient);
    }

    #[test]
    fn statuses_get_their_own_variants() {
        use ::http::StatusCode;
        let transport = |status: StatusCode| {
            Error::from(opamp_transport::Error::HttpStatus {
                status,
                retry_after: Some(Duration::from_secs(2)),
                headers: Box::default(),
            })
        };
        assert!(matches!(
            transport(StatusCode::SERVICE_UNAVAILABLE),
            Error::ServerUnavailable { status, retry_after: Some(d) }
                if status == StatusCode::SERVICE_UNAVAILABLE && d == Duration::from_secs(2)
        ));
        assert!(matches!(
            transport(StatusCode::TOO_MANY_REQUESTS),
            Error::ServerUnavailable { .. }
        ));
        for code in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
            assert!(matches!(transport(code), Error::Unauthorized { status } if status == code));
        }
        assert!(matches!(
            transport(StatusCode::NOT_FOUND),
            Error::HttpStatus { status, .. } if status == StatusCode::NOT_FOUND
        ));
        assert!(matches!(
            Error::from(opamp_transport::Error::ConnectionClosed),
            Error::Transport(opamp_transport::Error::ConnectionClosed)
        ));
        let shown = transport(StatusCode::SERVICE_UNAVAILABLE).to_string();
        assert!(shown.contains("503") && shown.contains("2s"), "{shown}");
    }
}
