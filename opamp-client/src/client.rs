//! [`Client`]: the handle an Agent keeps to start, update and stop its OpAMP client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opamp_proto::{
    AgentCapabilities, AgentDescription, AvailableComponents, ComponentHealth,
    ConnectionSettingsRequest, ConnectionSettingsStatus, CustomCapabilities, CustomMessage,
    EffectiveConfig, InstanceUid, PackageStatuses, RemoteConfigStatus, ServerCapabilities,
};
use opamp_transport::codec::Limits;
use tokio::sync::oneshot;

use crate::callbacks::Callbacks;
use crate::connection_settings::csr::CsrRequest;
use crate::connection_settings::{ConnectionSettingsManager, OpampConnectionParams};
use crate::driver::{self, DriverConfig, Shared};
use crate::settings::ClientSettings;
use crate::state::{ClientState, StateConfig};
use crate::{Error, driver::transport_of};

/// A running OpAMP client. Cheap to clone: every clone drives the same client.
///
/// [`Client::start`] returns at once and connects in the background; setters record changes
/// that go out in the next message (merged, never queued); [`Client::stop`] sends
/// `agent_disconnect` and closes. Call `stop` before dropping the last handle: the
/// background task keeps running until then.
#[derive(Clone, Debug)]
pub struct Client {
    shared: Arc<Shared>,
}

/// Completes when a custom message given to [`Client::send_custom_message`] has been sent
/// (written to the WebSocket, or answered over plain HTTP), or with an error when it never
/// will be ([`Error::CustomMessageDropped`], [`Error::Stopped`]).
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited (dropping it does not cancel the message)"]
pub struct CustomMessageSent {
    rx: oneshot::Receiver<Result<(), Error>>,
}

impl Future for CustomMessageSent {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(Error::Stopped)))
    }
}

fn load<T>(what: &str, result: Result<Option<T>, Error>) -> Option<T> {
    match result {
        Ok(value) => value,
        Err(err) => {
            tracing::warn!(%err, what, "ignoring persisted state that cannot be read");
            None
        }
    }
}

impl Client {
    /// Starts a client: checks the settings, restores persisted state, and spawns the task
    /// that connects in the background. Must be called inside a tokio runtime.
    ///
    /// Fails on unusable settings (e.g. a URL whose scheme is not ws, wss, http or https, or
    /// an initial health without `ReportsHealth`).
    pub fn start(settings: ClientSettings, callbacks: impl Callbacks) -> Result<Client, Error> {
        Self::start_with(settings, |_| callbacks)
    }

    /// Like [`start`](Self::start), for callbacks that need the client (e.g. to report the
    /// remote config status after applying a configuration): `make_callbacks` receives a
    /// handle before anything runs.
    pub fn start_with<C: Callbacks>(
        settings: ClientSettings,
        make_callbacks: impl FnOnce(Client) -> C,
    ) -> Result<Client, Error> {
        settings.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidSettings("Client::start must be called inside a tokio runtime".into())
        })?;
        let ClientSettings {
            server_url,
            headers,
            header_provider,
            tls,
            proxy,
            instance_uid,
            request_instance_uid,
            capabilities,
            agent_description,
            health,
            remote_config_status,
            custom_capabilities,
            available_components,
            heartbeat_interval,
            backoff,
            min_throttle_delay,
            max_message_size,
            compression,
            connect_timeout,
            request_timeout,
            ws_ping_interval,
            ws_read_timeout,
            stop_timeout,
            state_store,
            packages,
            connection_settings,
            connection_settings_attempts,
        } = settings;
        let store = state_store.as_deref();

        // Identity: configured, else persisted, else new (and persisted).
        let stored_uid = store.and_then(|s| load("instance UID", s.load_instance_uid()));
        let uid = instance_uid
            .or(stored_uid)
            .unwrap_or_else(InstanceUid::new_v7);
        if let Some(store) = store
            && stored_uid != Some(uid)
            && let Err(err) = store.save_instance_uid(uid)
        {
            tracing::warn!(%err, "cannot persist the instance UID");
        }

        let transport = transport_of(&server_url)?;
        let mut state = ClientState::new(
            StateConfig::new(uid, transport)
                .with_capabilities(capabilities)
                .with_heartbeat_interval(heartbeat_interval)
                .with_min_throttle_delay(min_throttle_delay)
                .with_boxed_backoff(backoff)
                .with_request_instance_uid(request_instance_uid),
        );
        let capabilities = state.capabilities();
        if let Some(description) = agent_description {
            state.set_agent_description(description);
        }
        if let Some(health) = health {
            state.set_health(health)?;
        }
        let stored_status =
            store.and_then(|s| load("remote config status", s.load_remote_config_status()));
        if let Some(status) = stored_status.or(remote_config_status)
            && capabilities.contains(AgentCapabilities::REPORTS_REMOTE_CONFIG)
        {
            state.set_remote_config_status(status)?;
        }
        if !custom_capabilities.is_empty() {
            state.set_custom_capabilities(CustomCapabilities {
                capabilities: custom_capabilities,
            });
        }
        if let Some(components) = available_components {
            state.set_available_components(components)?;
        }

        // OpAMP connection settings: persisted ones win if they grew from the same URL.
        let mut initial = OpampConnectionParams::new(server_url.clone());
        if let Some(proxy) = proxy {
            initial = initial.with_proxy(proxy);
        }
        let stored = store.and_then(|s| load("connection settings", s.load_connection_settings()));
        let manager = match stored {
            Some(persisted) if persisted.base_url == server_url => {
                ConnectionSettingsManager::from_snapshot(persisted.snapshot)
            }
            Some(_) => {
                tracing::info!("the server URL changed: discarding persisted connection settings");
                ConnectionSettingsManager::new(initial)
            }
            None => ConnectionSettingsManager::new(initial),
        }
        .with_merge_options(connection_settings)
        .with_max_candidate_attempts(connection_settings_attempts);
        if let Some(interval) = manager.heartbeat_interval() {
            state.set_offered_heartbeat_interval(Some(interval));
        }
        if let Some(status) = manager.status()
            && capabilities.contains(AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS)
        {
            state.set_connection_settings_status(status)?;
        }

        let shared = Arc::new(Shared::new(state, manager, state_store, server_url));
        let client = Client {
            shared: Arc::clone(&shared),
        };
        let callbacks: Arc<dyn Callbacks> = Arc::new(make_callbacks(client.clone()));
        let config = DriverConfig {
            static_headers: headers,
            header_provider,
            tls,
            limits: Limits::default().with_max_message_size(max_message_size),
            compression,
            connect_timeout,
            request_timeout,
            ws_ping_interval,
            ws_read_timeout,
            stop_timeout,
            packages,
        };
        runtime.spawn(driver::run(shared, callbacks, config));
        Ok(client)
    }

    /// Stops the client: sends `agent_disconnect` (WebSocket and plain HTTP), closes the
    /// connection, stops package downloads, and returns once the background task has ended.
    /// No callback runs after this returns.
    ///
    /// Called from inside a callback, it only asks for the stop (waiting there would wait for
    /// itself): the client stops as soon as the callback returns.
    pub async fn stop(&self) -> Result<(), Error> {
        self.shared.request_stop();
        if driver::in_driver() {
            return Ok(());
        }
        let mut done = self.shared.done.subscribe();
        let _ = done.wait_for(|done| *done).await;
        Ok(())
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stop_requested()
    }

    fn update<R>(&self, f: impl FnOnce(&mut ClientState) -> Result<R, Error>) -> Result<R, Error> {
        if self.shared.stop_requested() {
            return Err(Error::Stopped);
        }
        let result = f(&mut self.shared.state());
        self.shared.wake();
        result
    }

    /// The instance UID in use.
    pub fn instance_uid(&self) -> InstanceUid {
        self.shared.state().instance_uid()
    }

    /// The Agent's capabilities.
    pub fn capabilities(&self) -> AgentCapabilities {
        self.shared.state().capabilities()
    }

    /// The capabilities the server announced (empty until it did).
    pub fn server_capabilities(&self) -> ServerCapabilities {
        self.shared.state().server_capabilities()
    }

    /// Whether the WebSocket is connected, or the last HTTP request was answered.
    pub fn is_connected(&self) -> bool {
        self.shared.state().is_connected()
    }

    /// The OpAMP connection parameters known to work (the settings' URL, or settings the
    /// server offered and a connection validated).
    pub fn connection_params(&self) -> OpampConnectionParams {
        self.shared.manager().active().clone()
    }

    /// Changes the capabilities (`ReportsStatus` is kept). Takes effect in the next message.
    pub fn set_capabilities(&self, capabilities: AgentCapabilities) -> Result<(), Error> {
        self.update(|state| {
            state.set_capabilities(capabilities);
            Ok(())
        })
    }

    /// Sets the agent description (sent when it changed).
    pub fn set_agent_description(&self, description: AgentDescription) -> Result<(), Error> {
        self.update(|state| {
            state.set_agent_description(description);
            Ok(())
        })
    }

    /// Sets the whole health tree (needs `ReportsHealth`).
    pub fn set_health(&self, health: ComponentHealth) -> Result<(), Error> {
        self.update(|state| state.set_health(health))
    }

    /// Asks the client to pull the effective configuration from
    /// [`Callbacks::get_effective_config`] and report it if it changed (needs
    /// `ReportsEffectiveConfig`).
    pub fn update_effective_config(&self) -> Result<(), Error> {
        self.update(|state| {
            if state
                .capabilities()
                .contains(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG)
            {
                Ok(())
            } else {
                Err(Error::CapabilityNotSet {
                    operation: "update_effective_config",
                    capability: AgentCapabilities::REPORTS_EFFECTIVE_CONFIG,
                })
            }
        })?;
        self.shared.request(&self.shared.requests.effective_config);
        Ok(())
    }

    /// Sets the effective configuration directly (needs `ReportsEffectiveConfig`).
    pub fn set_effective_config(&self, config: EffectiveConfig) -> Result<(), Error> {
        self.update(|state| state.set_effective_config(config))
    }

    /// Sets the remote config status (needs `ReportsRemoteConfig`); it is also persisted
    /// through the state store.
    pub fn set_remote_config_status(&self, status: RemoteConfigStatus) -> Result<(), Error> {
        self.update(|state| state.set_remote_config_status(status))?;
        self.shared
            .request(&self.shared.requests.persist_remote_config_status);
        Ok(())
    }

    /// Sets the package statuses (needs `ReportsPackageStatuses`). With
    /// [`ClientSettings::packages`] the client reports them by itself.
    pub fn set_package_statuses(&self, statuses: PackageStatuses) -> Result<(), Error> {
        self.update(|state| state.set_package_statuses(statuses))
    }

    /// Sets the connection settings status (needs `ReportsConnectionSettingsStatus`). The
    /// client reports the status of the OpAMP connection settings it handles by itself; use
    /// this for other connections (own telemetry, other destinations).
    pub fn set_connection_settings_status(
        &self,
        status: ConnectionSettingsStatus,
    ) -> Result<(), Error> {
        self.update(|state| state.set_connection_settings_status(status))
    }

    /// Sets the Agent's custom capabilities.
    pub fn set_custom_capabilities(
        &self,
        capabilities: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<(), Error> {
        let capabilities = CustomCapabilities {
            capabilities: capabilities.into_iter().map(Into::into).collect(),
        };
        self.update(|state| {
            state.set_custom_capabilities(capabilities);
            Ok(())
        })
    }

    /// Sets the available components (needs `ReportsAvailableComponents`, hash required).
    /// Only the hash is sent until the server asks for the full map.
    pub fn set_available_components(&self, components: AvailableComponents) -> Result<(), Error> {
        self.update(|state| state.set_available_components(components))
    }

    /// Asks the server to assign an instance UID (`RequestInstanceUid` flag).
    pub fn set_request_instance_uid(&self, request: bool) -> Result<(), Error> {
        self.update(|state| {
            state.set_request_instance_uid(request);
            Ok(())
        })
    }

    /// Sends a custom message (spec §"Custom Messages"). Its capability must be among the
    /// Agent's custom capabilities; only one custom message may be pending at a time
    /// ([`Error::CustomMessagePending`]). Await the returned future to know when it went
    /// out.
    pub fn send_custom_message(&self, message: CustomMessage) -> Result<CustomMessageSent, Error> {
        let (tx, rx) = oneshot::channel();
        self.update(|state| {
            let id = state.send_custom_message(message)?;
            // Registered while the state is locked, before the driver can send it.
            self.shared.add_custom_waiter(id, tx);
            Ok(())
        })?;
        Ok(CustomMessageSent { rx })
    }

    /// Whether a custom message is waiting to be sent.
    pub fn custom_message_pending(&self) -> bool {
        self.shared.state().custom_message_pending()
    }

    /// Sends a connection settings request built by the Agent (needs
    /// `AcceptsOpAMPConnectionSettings`).
    pub fn request_connection_settings(
        &self,
        request: ConnectionSettingsRequest,
    ) -> Result<(), Error> {
        self.update(|state| state.request_connection_settings(request))
    }

    /// Starts the agent-initiated CSR flow (spec §"Agent-initiated CSR Flow"): generates a key
    /// pair and a certificate signing request, keeps the key (persisted with the connection
    /// settings) and sends the request. The certificate the server offers back is then
    /// applied like any OpAMP connection settings offer. Needs
    /// `AcceptsOpAMPConnectionSettings`.
    pub async fn request_client_certificate(&self, request: CsrRequest) -> Result<(), Error> {
        if self.shared.stop_requested() {
            return Err(Error::Stopped);
        }
        if !self
            .capabilities()
            .contains(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS)
        {
            return Err(Error::CapabilityNotSet {
                operation: "request_client_certificate",
                capability: AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS,
            });
        }
        let shared = Arc::clone(&self.shared);
        let remembered = request.clone();
        let proto = tokio::task::spawn_blocking(move || shared.manager().begin_csr(&request))
            .await
            .map_err(|err| Error::InvalidSettings(format!("CSR generation panicked: {err}")))?
            .map_err(Error::ConnectionSettings)?;
        *self
            .shared
            .last_csr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(remembered);
        self.update(|state| state.request_connection_settings(proto))?;
        self.shared
            .request(&self.shared.requests.persist_connection_settings);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoopCallbacks;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<Client>();
        assert_send_sync::<CustomMessageSent>();
        fn assert_send<T: Send>() {}
        assert_send::<ClientSettings>();
    }

    #[test]
    fn start_needs_a_runtime_and_valid_settings() {
        let outside = Client::start(
            ClientSettings::new("ws://127.0.0.1:1/v1/opamp"),
            NoopCallbacks,
        );
        assert!(matches!(outside, Err(Error::InvalidSettings(_))));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for url in ["ftp://h/", "not a url", "ws:///v1/opamp"] {
                let result = Client::start(ClientSettings::new(url), NoopCallbacks);
                assert!(matches!(result, Err(Error::InvalidSettings(_))), "{url}");
            }
            // A capability-gated initial value without its capability is refused.
            let result = Client::start(
                ClientSettings::new("ws://127.0.0.1:1/v1/opamp")
                    .with_health(opamp_proto::ComponentHealth::default()),
                NoopCallbacks,
            );
            assert!(matches!(result, Err(Error::CapabilityNotSet { .. })));
        });
    }
}
