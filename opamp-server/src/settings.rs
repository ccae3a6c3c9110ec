//! [`ServerSettings`]: where the server listens and how it treats agents.

use std::net::{Ipv4Addr, SocketAddr};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use opamp_proto::ServerCapabilities;
use opamp_transport::codec::Limits;
use opamp_transport::ws::WsConfig;

use crate::state::{
    DEFAULT_FIRST_MESSAGE_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, DuplicateUidPolicy, StateConfig,
};

/// The default port of OpAMP servers (spec §"Communication Model").
pub const DEFAULT_PORT: u16 = 4320;
/// The default URL path of the OpAMP endpoint (spec §"Communication Model").
pub const DEFAULT_PATH: &str = "/v1/opamp";

/// Settings of a [`crate::Server`]. Every field has a default; change them with the `with_*`
/// methods.
///
/// ```
/// use std::time::Duration;
/// use opamp_server::ServerSettings;
///
/// let settings = ServerSettings::default()
///     .with_listen_addr("0.0.0.0:4320".parse().unwrap())
///     .with_heartbeat_interval(Some(Duration::from_secs(15)))
///     .with_max_message_size(4 * 1024 * 1024);
/// assert_eq!(settings.path, "/v1/opamp");
/// ```
#[non_exhaustive]
#[derive(Clone)]
pub struct ServerSettings {
    /// Address [`crate::Server::start`] listens on. Default `127.0.0.1:4320`; port 0 picks a
    /// free port (see [`crate::Server::local_addr`]).
    pub listen_addr: SocketAddr,
    /// URL path of the endpoint when listening standalone (an attached service answers on
    /// whatever path it is mounted). Default `/v1/opamp`.
    pub path: String,
    /// TLS configuration for the standalone listener; `None` serves plain `ws://` and
    /// `http://`. For mutual TLS configure client certificate verification in it (see
    /// [`crate::tls::TlsServerSettings::with_client_auth`]); the verified chain reaches
    /// [`crate::Callbacks::on_connecting`] through [`crate::ConnectingRequest::peer_certificates`].
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::rustls::ServerConfig>>,
    /// Size limit of one message in both directions: an `AgentToServer` after decompression
    /// (a larger one closes the WebSocket with 1009 or is answered 413) and a `ServerToAgent`
    /// before compression (a larger one is not sent). Default 64 MiB (spec §"WebSocket Message
    /// Size Limits", §"Plain HTTP Message Size Limits").
    pub max_message_size: usize,
    /// Capabilities announced in the first `ServerToAgent` of every connection.
    pub capabilities: ServerCapabilities,
    /// Custom capabilities of the server, announced in the first `ServerToAgent` (spec
    /// §"CustomCapabilities").
    pub custom_capabilities: Vec<String>,
    /// Heartbeat interval offered to agents with `ReportsHeartbeat` through
    /// `OpAMPConnectionSettings.heartbeat_interval_seconds`; also the expected polling interval
    /// of plain-HTTP agents. `None` offers nothing (30 s is then assumed); `Some(ZERO)` asks
    /// agents to stop heartbeats. Default 30 s.
    pub heartbeat_interval: Option<Duration>,
    /// How many heartbeat intervals an agent may stay silent before it is reported gone
    /// ([`crate::CloseReason::Gone`]) and its connection closed. Default 3.
    pub missed_heartbeats: u32,
    /// Longest wait for the first `AgentToServer` after a WebSocket connection opens (the
    /// spec's client sends it at once): a connection that says nothing within it is closed as
    /// [`crate::CloseReason::Gone`], so that sockets which only answer pings do not stay
    /// forever. `None`: no limit. Default 30 s.
    pub first_message_timeout: Option<Duration>,
    /// WebSocket ping: after this much read silence the server sends a ping. `None` disables
    /// pings (and half-open detection). Default 30 s.
    pub ws_ping_interval: Option<Duration>,
    /// Read deadline after a ping: if nothing at all arrives within it, the connection is
    /// half-open and is closed ([`crate::CloseReason::Unresponsive`]). Default 20 s.
    pub ws_pong_timeout: Duration,
    /// tungstenite read buffer per WebSocket connection: its first size and the most it takes
    /// in one step. Small by default (256 bytes) so that many idle agents fit: a larger
    /// message grows the buffer to its own size, and its `bytes` fields (an effective config
    /// body, say) keep pointing into it in the agent's status instead of being copied. The
    /// socket itself is read in steps of up to 16 KiB whatever this size (the rest waits in a
    /// stash that is freed once taken), so a small buffer costs no extra system calls.
    pub ws_read_buffer_size: usize,
    /// Longest time a write to one agent may take before the connection is dropped (a slow
    /// agent never blocks others, but its own connection is given up). Default 10 s.
    pub write_timeout: Duration,
    /// Time allowed for the WebSocket close handshake. Default 2 s.
    pub close_timeout: Duration,
    /// What to do when two live connections use the same instance UID.
    pub duplicate_uid_policy: DuplicateUidPolicy,
    /// Most connections (WebSocket connections plus plain-HTTP sessions) served at once; more
    /// are refused with `503` and `Retry-After: retry_after`. Default: no limit.
    pub max_connections: Option<usize>,
    /// `Retry-After` sent with `503` when refusing connections (load shedding or
    /// [`ServerSettings::max_connections`]). Default 30 s, the spec's minimum recommended
    /// retry interval.
    pub retry_after: Duration,
    /// Plain-HTTP responses at least this long are gzip-compressed when the agent accepts it
    /// (`Accept-Encoding`); smaller ones are not worth it. Default 256 bytes.
    pub gzip_min_size: usize,
    /// Ask agents for their full component map when they report only an unknown hash.
    /// Default true.
    pub request_available_components: bool,
    /// Time a standalone listener allows for reading the request head. Default 10 s.
    pub header_read_timeout: Duration,
    /// Pending-connection queue of the standalone listener (`listen(2)` backlog; the kernel
    /// caps it at `net.core.somaxconn`). Large by default (4,096) so that a fleet reconnecting
    /// at once is queued rather than dropped into SYN retransmissions.
    pub listen_backlog: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            path: DEFAULT_PATH.to_owned(),
            #[cfg(feature = "tls")]
            tls: None,
            max_message_size: Limits::DEFAULT_MAX_MESSAGE_SIZE,
            capabilities: crate::state::default_server_capabilities(),
            custom_capabilities: Vec::new(),
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            missed_heartbeats: 3,
            first_message_timeout: Some(DEFAULT_FIRST_MESSAGE_TIMEOUT),
            ws_ping_interval: Some(Duration::from_secs(30)),
            ws_pong_timeout: Duration::from_secs(20),
            ws_read_buffer_size: 256,
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            duplicate_uid_policy: DuplicateUidPolicy::default(),
            max_connections: None,
            retry_after: Duration::from_secs(30),
            gzip_min_size: 256,
            request_available_components: true,
            header_read_timeout: Duration::from_secs(10),
            listen_backlog: 4096,
        }
    }
}

impl std::fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ServerSettings");
        d.field("listen_addr", &self.listen_addr)
            .field("path", &self.path);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.field("max_message_size", &self.max_message_size)
            .field("capabilities", &self.capabilities)
            .field("custom_capabilities", &self.custom_capabilities)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("missed_heartbeats", &self.missed_heartbeats)
            .field("first_message_timeout", &self.first_message_timeout)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("ws_pong_timeout", &self.ws_pong_timeout)
            .field("ws_read_buffer_size", &self.ws_read_buffer_size)
            .field("write_timeout", &self.write_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("duplicate_uid_policy", &self.duplicate_uid_policy)
            .field("max_connections", &self.max_connections)
            .field("retry_after", &self.retry_after)
            .field("gzip_min_size", &self.gzip_min_size)
            .field(
                "request_available_components",
                &self.request_available_components,
            )
            .field("header_read_timeout", &self.header_read_timeout)
            .field("listen_backlog", &self.listen_backlog)
            .finish()
    }
}

macro_rules! with {
    ($(#[$doc:meta] $name:ident($field:ident: $ty:ty);)*) => {
        $(
            #[$doc]
            #[must_use]
            pub fn $name(mut self, $field: $ty) -> Self {
                self.$field = $field;
                self
            }
        )*
    };
}

impl ServerSettings {
    with! {
        /// Sets [`ServerSettings::listen_addr`].
        with_listen_addr(listen_addr: SocketAddr);
        /// Sets [`ServerSettings::max_message_size`].
        with_max_message_size(max_message_size: usize);
        /// Sets [`ServerSettings::capabilities`].
        with_capabilities(capabilities: ServerCapabilities);
        /// Sets [`ServerSettings::custom_capabilities`].
        with_custom_capabilities(custom_capabilities: Vec<String>);
        /// Sets [`ServerSettings::heartbeat_interval`].
        with_heartbeat_interval(heartbeat_interval: Option<Duration>);
        /// Sets [`ServerSettings::missed_heartbeats`].
        with_missed_heartbeats(missed_heartbeats: u32);
        /// Sets [`ServerSettings::first_message_timeout`].
        with_first_message_timeout(first_message_timeout: Option<Duration>);
        /// Sets [`ServerSettings::ws_ping_interval`].
        with_ws_ping_interval(ws_ping_interval: Option<Duration>);
        /// Sets [`ServerSettings::ws_pong_timeout`].
        with_ws_pong_timeout(ws_pong_timeout: Duration);
        /// Sets [`ServerSettings::ws_read_buffer_size`].
        with_ws_read_buffer_size(ws_read_buffer_size: usize);
        /// Sets [`ServerSettings::write_timeout`].
        with_write_timeout(write_timeout: Duration);
        /// Sets [`ServerSettings::close_timeout`].
        with_close_timeout(close_timeout: Duration);
        /// Sets [`ServerSettings::duplicate_uid_policy`].
        with_duplicate_uid_policy(duplicate_uid_policy: DuplicateUidPolicy);
        /// Sets [`ServerSettings::max_connections`].
        with_max_connections(max_connections: Option<usize>);
        /// Sets [`ServerSettings::retry_after`].
        with_retry_after(retry_after: Duration);
        /// Sets [`ServerSettings::gzip_min_size`].
        with_gzip_min_size(gzip_min_size: usize);
        /// Sets [`ServerSettings::request_available_components`].
        with_request_available_components(request_available_components: bool);
        /// Sets [`ServerSettings::header_read_timeout`].
        with_header_read_timeout(header_read_timeout: Duration);
        /// Sets [`ServerSettings::listen_backlog`].
        with_listen_backlog(listen_backlog: u32);
    }

    /// Sets [`ServerSettings::path`].
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Serves TLS with `config` (see [`crate::tls::TlsServerSettings::build`]).
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, config: Arc<crate::tls::rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Checks the settings for values that cannot work.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if !self.path.starts_with('/') {
            return Err(crate::Error::InvalidSettings("path must start with '/'"));
        }
        if self.max_message_size == 0 {
            return Err(crate::Error::InvalidSettings(
                "max_message_size must not be 0",
            ));
        }
        if self.ws_ping_interval.is_some_and(|d| d.is_zero()) {
            return Err(crate::Error::InvalidSettings(
                "ws_ping_interval must not be zero (use None to disable pings)",
            ));
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits::default().with_max_message_size(self.max_message_size)
    }

    pub(crate) fn ws_config(&self) -> WsConfig {
        WsConfig::default()
            .with_limits(self.limits())
            .with_read_buffer_size(self.ws_read_buffer_size)
            .with_write_buffer_size(0)
            .with_close_timeout(self.close_timeout)
    }

    pub(crate) fn state_config(&self, polling: bool) -> StateConfig {
        StateConfig::default()
            .with_capabilities(self.capabilities)
            .with_custom_capabilities(self.custom_capabilities.clone())
            .with_heartbeat_interval(self.heartbeat_interval)
            .with_missed_heartbeats(self.missed_heartbeats)
            .with_first_message_timeout(self.first_message_timeout)
            .with_polling(polling)
            .with_request_available_components(self.request_available_components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let s = ServerSettings::default();
        assert_eq!(s.listen_addr.port(), 4320);
        assert_eq!(s.path, "/v1/opamp");
        assert_eq!(s.max_message_size, 64 * 1024 * 1024);
        assert!(s.capabilities.contains(ServerCapabilities::ACCEPTS_STATUS));
        assert!(s.validate().is_ok());
        assert_eq!(s.ws_config().websocket_config().read_buffer_size, 256);
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(
            ServerSettings::default()
                .with_path("v1")
                .validate()
                .is_err()
        );
        assert!(
            ServerSettings::default()
                .with_max_message_size(0)
                .validate()
                .is_err()
        );
        assert!(
            ServerSettings::default()
                .with_ws_ping_interval(Some(Duration::ZERO))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn state_config_follows_settings() {
        let s = ServerSettings::default()
            .with_heartbeat_interval(None)
            .with_missed_heartbeats(5)
            .with_custom_capabilities(vec!["io.x".into()]);
        let c = s.state_config(true);
        assert!(c.polling);
        assert_eq!(c.missed_heartbeats, 5);
        assert_eq!(c.heartbeat_interval, None);
        assert_eq!(c.custom_capabilities, vec!["io.x".to_owned()]);
    }
}
