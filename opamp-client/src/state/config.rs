//! Settings of the sans-IO state machine.

use std::time::Duration;

use opamp_proto::{AgentCapabilities, InstanceUid};

use super::backoff::{BackoffPolicy, ExponentialBackoff};

/// The transport the state machine is driven over. It changes the timing rules only:
/// heartbeats (WebSocket, only with `ReportsHeartbeat`) vs. polling (plain HTTP, always), and
/// who completes a sent message (a WebSocket write vs. the HTTP response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `ws://` or `wss://`: a long-lived, full-duplex connection.
    WebSocket,
    /// `http://` or `https://`: one POST per message, half duplex, polling.
    Http,
}

/// The default heartbeat and polling interval (spec §"WebSocket Message Exchange" and
/// §"Plain HTTP Transport": 30 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The minimum retry interval after an HTTP 429/503 without `Retry-After` (spec §"Throttling":
/// 30 s).
pub const DEFAULT_MIN_THROTTLE_DELAY: Duration = Duration::from_secs(30);

/// Settings of a [`ClientState`](super::ClientState).
///
/// ```
/// use std::time::Duration;
/// use opamp_client::state::{StateConfig, Transport};
/// use opamp_client::proto::{AgentCapabilities, InstanceUid};
///
/// let config = StateConfig::new(InstanceUid::new_v7(), Transport::Http)
///     .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
///     .with_heartbeat_interval(Duration::from_secs(10));
/// assert!(config.capabilities.contains(AgentCapabilities::REPORTS_STATUS));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct StateConfig {
    /// The instance UID of the Agent.
    pub instance_uid: InstanceUid,
    /// The Agent's capabilities; `ReportsStatus` is always added.
    pub capabilities: AgentCapabilities,
    /// The transport.
    pub transport: Transport,
    /// The heartbeat interval (WebSocket, with `ReportsHeartbeat`; zero disables heartbeats) and
    /// the polling interval (plain HTTP; zero means the default 30 s, since HTTP must poll).
    /// An interval offered by the server replaces it.
    pub heartbeat_interval: Duration,
    /// The least delay after an HTTP 429/503 that carries no `Retry-After`.
    pub min_throttle_delay: Duration,
    /// Delays between failed attempts.
    pub backoff: Box<dyn BackoffPolicy>,
    /// Whether to ask the server for an instance UID (`RequestInstanceUid` flag) until it sends
    /// one.
    pub request_instance_uid: bool,
}

impl StateConfig {
    /// Settings with the defaults: capabilities `ReportsStatus`, 30 s heartbeat, 30 s minimum
    /// throttle delay, [`ExponentialBackoff`].
    pub fn new(instance_uid: InstanceUid, transport: Transport) -> Self {
        StateConfig {
            instance_uid,
            capabilities: AgentCapabilities::REPORTS_STATUS,
            transport,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            min_throttle_delay: DEFAULT_MIN_THROTTLE_DELAY,
            backoff: Box::new(ExponentialBackoff::new()),
            request_instance_uid: false,
        }
    }

    /// Sets the capabilities (`ReportsStatus` is added).
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: AgentCapabilities) -> Self {
        self.capabilities = capabilities | AgentCapabilities::REPORTS_STATUS;
        self
    }

    /// Sets the heartbeat / polling interval.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets the least delay after a throttling answer without `Retry-After`.
    #[must_use]
    pub fn with_min_throttle_delay(mut self, delay: Duration) -> Self {
        self.min_throttle_delay = delay;
        self
    }

    /// Sets the backoff policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: impl BackoffPolicy + 'static) -> Self {
        self.backoff = Box::new(backoff);
        self
    }

    /// Sets the backoff policy from a box.
    #[must_use]
    pub fn with_boxed_backoff(mut self, backoff: Box<dyn BackoffPolicy>) -> Self {
        self.backoff = backoff;
        self
    }

    /// Asks the server for an instance UID.
    #[must_use]
    pub fn with_request_instance_uid(mut self, request: bool) -> Self {
        self.request_instance_uid = request;
        self
    }
}
