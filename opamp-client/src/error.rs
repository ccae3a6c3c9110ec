//! The crate's error type.

use opamp_proto::AgentCapabilities;

/// Everything that can go wrong in the client.
///
/// Local misuse (a setter for something the capabilities do not allow, bad settings) is kept
/// apart from failures of the server or the network ([`Error::Transport`],
/// [`Error::HttpStatus`]), which the client retries by itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setter was called for a part of the status that the Agent's capabilities do not
    /// report (e.g. `set_health` without `ReportsHealth`).
    #[error("{operation} needs the {capability:?} capability")]
    CapabilityNotSet {
        /// The setter.
        operation: &'static str,
        /// The capability it needs.
        capability: AgentCapabilities,
    },
    /// A custom message names a capability that is not among the Agent's custom capabilities.
    #[error("custom capability {0:?} is not among the Agent's custom capabilities")]
    CustomCapabilityNotSupported(String),
    /// A custom message is already waiting to be sent (only one may be pending at a time).
    #[error("a custom message is already pending")]
    CustomMessagePending,
    /// An argument breaks a rule of the protocol (e.g. available components without a hash).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The settings are not usable (e.g. a URL whose scheme is neither ws(s) nor http(s)).
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// A custom message will never be delivered: the server rejected the message carrying it
    /// as a bad request, or it was over the size limit.
    #[error("the custom message was dropped")]
    CustomMessageDropped,
    /// The client has been stopped.
    #[error("the client is stopped")]
    Stopped,
    /// A connection or a request failed in the transport layer.
    #[error(transparent)]
    Transport(#[from] opamp_transport::Error),
    /// The server answered an HTTP request (or a WebSocket upgrade) with an unexpected status.
    #[error("server answered HTTP {status}")]
    HttpStatus {
        /// The status.
        status: http::StatusCode,
        /// The `Retry-After` delay, when the server sent a valid one.
        retry_after: Option<std::time::Duration>,
    },
    /// Connecting through a proxy failed (the proxy is unreachable, refused the tunnel, or
    /// answered something else than HTTP/1).
    #[error("proxy: {0}")]
    Proxy(String),
    /// Reading or writing persisted state failed.
    #[error("cannot {operation} persisted state at {path}")]
    Persistence {
        /// What was being done (`"read"`, `"write"`, ...).
        operation: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// Persisted state does not decode.
    #[error("persisted {what} is corrupt: {reason}")]
    CorruptState {
        /// Which piece of state.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// Connection settings (an offer, or a CSR to generate) are not usable.
    #[error(transparent)]
    ConnectionSettings(#[from] crate::connection_settings::ConnectionSettingsError),
    /// A callback returned an error.
    #[error("{callback} callback failed: {source}")]
    Callback {
        /// The callback.
        callback: &'static str,
        /// Its error.
        #[source]
        source: crate::callbacks::CallbackError,
    },
}

impl Error {
    /// Whether the error comes from local misuse of the API rather than from the network or
    /// the server.
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            Error::CapabilityNotSet { .. }
                | Error::CustomCapabilityNotSupported(_)
                | Error::CustomMessagePending
                | Error::InvalidArgument { .. }
                | Error::InvalidSettings(_)
                | Error::Stopped
        )
    }
}
