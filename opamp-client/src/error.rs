//! The crate's error type.

use opamp_proto::AgentCapabilities;

/// Everything that can go wrong in the client.
///
/// Local misuse (a setter for something the capabilities do not allow, bad settings) is kept
/// apart from failures of the server or the network ([`Error::Transport`],
/// [`Error::ServerUnavailable`], [`Error::Unauthorized`], [`Error::HttpStatus`]), which the
/// client retries by itself and reports through
/// [`Callbacks::on_connect_failed`](crate::Callbacks::on_connect_failed) and
/// [`Callbacks::on_connection_lost`](crate::Callbacks::on_connection_lost).
///
/// An HTTP status answered by the server (to a WebSocket upgrade or a plain-HTTP request) is
/// never reported as [`Error::Transport`]: it is [`Error::ServerUnavailable`] (429, 503),
/// [`Error::Unauthorized`] (401, 403) or [`Error::HttpStatus`] (any other status).
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
    /// A connection or a request failed in the transport layer (network, TLS, timeout, a
    /// message that does not decode, ...). HTTP statuses are never reported here (see the
    /// type's documentation).
    #[error(transparent)]
    Transport(opamp_transport::Error),
    /// The server is shedding load: it answered a WebSocket upgrade or a plain-HTTP request
    /// with `503 Service Unavailable` or `429 Too Many Requests` (spec §"Throttling"). The
    /// client waits at least `retry_after` (or
    /// [`ClientSettings::min_throttle_delay`](crate::ClientSettings::min_throttle_delay) when
    /// the server sent none), and at least its backoff delay, before trying again.
    #[error("server unavailable: HTTP {status}{}", RetryAfter(*retry_after))]
    ServerUnavailable {
        /// `503` or `429`.
        status: http::StatusCode,
        /// The `Retry-After` delay, when the server sent a valid one (seconds or HTTP-date).
        retry_after: Option<std::time::Duration>,
    },
    /// The server refused the client's credentials: it answered a WebSocket upgrade or a
    /// plain-HTTP request with `401 Unauthorized` or `403 Forbidden`. The client keeps
    /// retrying with backoff (headers from a
    /// [`HeaderProvider`](crate::HeaderProvider) are asked for again on every attempt).
    #[error("server refused the credentials: HTTP {status}")]
    Unauthorized {
        /// `401` or `403`.
        status: http::StatusCode,
    },
    /// The server answered an HTTP request (or a WebSocket upgrade) with another unexpected
    /// status than those of [`Error::ServerUnavailable`] and [`Error::Unauthorized`]. `400`
    /// and `413` drop the message that caused them (spec §"Bad Request").
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

impl From<opamp_transport::Error> for Error {
    /// Transport errors, with HTTP statuses sorted into their own variants.
    fn from(error: opamp_transport::Error) -> Self {
        match error {
            opamp_transport::Error::HttpStatus {
                status,
                retry_after,
                ..
            } => Error::from_status(status, retry_after),
            other => Error::Transport(other),
        }
    }
}

/// Shows a `Retry-After` delay in an error message.
struct RetryAfter(Option<std::time::Duration>);

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(delay) => write!(f, " (retry after {delay:?})"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// The error for an HTTP `status` the server answered (with its parsed `Retry-After`).
    pub(crate) fn from_status(
        status: http::StatusCode,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
        use http::StatusCode;
        match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                Error::ServerUnavailable {
                    status,
                    retry_after,
                }
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized { status },
            _ => Error::HttpStatus {
                status,
                retry_after,
            },
        }
    }

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
