//! What the client tells the Agent: the [`Callbacks`] trait and [`MessageData`].
//!
//! Callbacks run one at a time on the client's driver task, never after
//! [`Client::stop`](crate::Client::stop) returned. They should return quickly: the driver
//! does not read, send or heartbeat while a callback runs, so long work belongs in a spawned
//! task. A callback may call the [`Client`](crate::Client) setters (e.g. to report
//! `RemoteConfigStatus` after applying a configuration); build callbacks that need the client
//! with [`Client::start_with`](crate::Client::start_with).

use std::collections::BTreeMap;

use async_trait::async_trait;
use opamp_proto::{
    AgentIdentification, AgentRemoteConfig, Bytes, CustomCapabilities, CustomMessage,
    EffectiveConfig, InstanceUid, OpAmpConnectionSettings, OtherConnectionSettings,
    PackagesAvailable, ServerErrorResponse, ServerToAgentCommand, TelemetryConnectionSettings,
};

use crate::Error;

/// The error type callbacks return: any error, boxed. Its `Display` text may be reported to
/// the server (e.g. in `ConnectionSettingsStatus.error_message`).
pub type CallbackError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The parts of a `ServerToAgent` message meant for the Agent, already filtered by the Agent's
/// capabilities: an offer for a capability the Agent did not set is dropped before it gets here
/// (spec §"AgentToServer.capabilities": the Agent SHOULD ignore it).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MessageData {
    /// A remote configuration offer (needs `AcceptsRemoteConfig`; spec §"Configuration").
    pub remote_config: Option<AgentRemoteConfig>,
    /// Where to send the Agent's own metrics (needs `ReportsOwnMetrics`).
    pub own_metrics: Option<TelemetryConnectionSettings>,
    /// Where to send the Agent's own traces (needs `ReportsOwnTraces`).
    pub own_traces: Option<TelemetryConnectionSettings>,
    /// Where to send the Agent's own logs (needs `ReportsOwnLogs`).
    pub own_logs: Option<TelemetryConnectionSettings>,
    /// Settings for other named connections (needs `AcceptsOtherConnectionSettings`).
    pub other_connection_settings: BTreeMap<String, OtherConnectionSettings>,
    /// `ConnectionSettingsOffers.hash` when any connection settings above are set.
    pub connection_settings_hash: Option<Bytes>,
    /// Packages on offer (needs `AcceptsPackages`). When a packages state provider is
    /// configured, the client downloads and installs them itself and reports their statuses.
    pub packages_available: Option<PackagesAvailable>,
    /// A new instance UID assigned by the server; the client already uses it.
    pub agent_identification: Option<AgentIdentification>,
    /// The custom capabilities the server supports.
    pub custom_capabilities: Option<CustomCapabilities>,
    /// A custom message for one of the Agent's custom capabilities.
    pub custom_message: Option<CustomMessage>,
}

impl MessageData {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == MessageData::default()
    }
}

/// The Agent's side of the client: every method has a default that does nothing (or accepts),
/// so implement only what the Agent needs.
///
/// ```
/// use opamp_client::{Callbacks, MessageData};
///
/// struct Agent;
///
/// #[async_trait::async_trait]
/// impl Callbacks for Agent {
///     async fn on_message(&self, msg: MessageData) {
///         if let Some(config) = msg.remote_config {
///             println!("new remote config, hash {:02x?}", config.config_hash);
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Callbacks: Send + Sync + 'static {
    /// A connection was established: the WebSocket upgrade succeeded, or (plain HTTP) the first
    /// request after start or after failures was answered.
    async fn on_connect(&self) {}

    /// A connection attempt failed: the WebSocket connection or its upgrade, or (plain HTTP)
    /// a request while the server was not reachable (the first one, or one after failures),
    /// or a request the server refused as bad (400, 413: the message is dropped, spec
    /// §"Bad Request"). The client retries by itself, with backoff and honouring
    /// `Retry-After` (spec §"Throttling").
    async fn on_connect_failed(&self, _error: &Error) {}

    /// A connection that was up broke; the client reconnects by itself (at once the first
    /// time, then with backoff). Called for every error in the middle of a session:
    ///
    /// * WebSocket: a read or write error, a write or ping that timed out, the server closing
    ///   the connection without being asked, nothing received within the read timeout
    ///   (half-open connection), or a `ServerToAgent` that does not decode
    ///   ([`Error::Transport`] with a decode error; the client then reconnects with backoff,
    ///   as opamp-go does, since it cannot know what the lost message carried).
    /// * Plain HTTP: a request that failed after the previous one was answered (later
    ///   failures go to [`on_connect_failed`](Self::on_connect_failed) until the server
    ///   answers again), including an answer that does not decode and the HTTP statuses
    ///   ([`Error::ServerUnavailable`], [`Error::Unauthorized`], [`Error::HttpStatus`]).
    ///
    /// Closing the connection on purpose ([`Client::stop`](crate::Client::stop), new
    /// connection settings, an `UNAVAILABLE` error response) does not call it.
    async fn on_connection_lost(&self, _error: &Error) {}

    /// The server answered with an `error_response`. Throttling and "do not retry bad
    /// requests" are already handled by the client.
    async fn on_error(&self, _error: &ServerErrorResponse) {}

    /// The server sent offers or data for the Agent.
    async fn on_message(&self, _msg: MessageData) {}

    /// The server offered new OpAMP connection settings. Return an error to refuse them (the
    /// client reports `FAILED` with the error's text); otherwise the client reconnects with
    /// them, keeps them if the connection works and reverts if it does not.
    async fn on_opamp_connection_settings(
        &self,
        _settings: &OpAmpConnectionSettings,
    ) -> Result<(), CallbackError> {
        Ok(())
    }

    /// The outcome of offered OpAMP connection settings: `Ok` once a connection with them
    /// succeeded and they were kept, `Err` with the reason when they were refused or reverted.
    async fn on_opamp_connection_settings_outcome(&self, _outcome: Result<(), &str>) {}

    /// The server asked for a command (needs `AcceptsRestartCommand`).
    async fn on_command(&self, _command: &ServerToAgentCommand) {}

    /// Returns the Agent's current effective configuration. Called at start and after
    /// [`Client::update_effective_config`](crate::Client::update_effective_config), when the
    /// Agent has `ReportsEffectiveConfig`. `Ok(None)` means "nothing to report".
    async fn get_effective_config(&self) -> Result<Option<EffectiveConfig>, CallbackError> {
        Ok(None)
    }

    /// The server assigned a new instance UID (already used and persisted by the client).
    async fn on_instance_uid_changed(&self, _uid: InstanceUid) {}
}

/// Callbacks that do nothing (every default).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopCallbacks;

#[async_trait]
impl Callbacks for NoopCallbacks {}
