//! The crate's one error type.

use opamp_proto::InstanceUid;

/// Everything that can go wrong in the server: misbehaving agents, IO, and misuse of the API.
///
/// [`Error::is_peer_misbehaviour`] tells an agent's fault from a local one.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `AgentToServer.instance_uid` is not 16 bytes (spec §"AgentToServer.instance_uid").
    #[error("instance_uid must be 16 bytes, got {len}")]
    InvalidInstanceUid {
        /// Length of the received UID.
        len: usize,
    },
    /// An agent switched to an instance UID the server did not assign within one connection.
    #[error("instance_uid changed from {expected} to {got} within one connection")]
    InstanceUidMismatch {
        /// The UID the connection uses.
        expected: InstanceUid,
        /// The UID in the message.
        got: InstanceUid,
    },
    /// The agent's UID is used by another live connection and the policy rejects duplicates.
    #[error("instance_uid {0} is already used by another connection")]
    DuplicateInstanceUid(InstanceUid),
    /// An `AgentToServer` message could not be decoded.
    #[error("malformed AgentToServer message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A WebSocket data message was text, not binary (spec §"WebSocket Transport").
    #[error("WebSocket text messages are not OpAMP messages")]
    TextMessage,
    /// Framing, body encoding or size limit errors from the transport layer.
    #[error(transparent)]
    Transport(#[from] opamp_transport::Error),
    /// A WebSocket protocol or IO error.
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An HTTP server error.
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    /// Reading a request body failed.
    #[error("reading the request body failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Listening or accepting failed.
    #[error("IO error: {0}")]
    Io(#[from] std::io::Error),
    /// The agent does not accept what was sent (its capabilities or custom capabilities lack
    /// it). Nothing was queued.
    #[error("the agent does not accept {0}")]
    NotAccepted(&'static str),
    /// A custom message is already waiting for delivery to this agent; try again after it was
    /// delivered.
    #[error("a custom message is already pending for this agent")]
    CustomMessagePending,
    /// The connection is closed.
    #[error("the connection is closed")]
    ConnectionClosed,
    /// The server is shutting down or was shut down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// [`crate::Server::start`] was called on a server that already listens.
    #[error("the server is already started")]
    AlreadyStarted,
    /// A message cannot be used the way it was given (e.g. per-agent content in a broadcast).
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// A setting is invalid.
    #[error("invalid settings: {0}")]
    InvalidSettings(&'static str),
    /// A message timed out while being written to a slow agent.
    #[error("timed out writing to the agent")]
    WriteTimeout,
}

impl Error {
    /// True if the error is the agent's fault (malformed or oversize input, protocol
    /// violations), false if it is local (IO, settings, API misuse).
    pub fn is_peer_misbehaviour(&self) -> bool {
        match self {
            Error::InvalidInstanceUid { .. }
            | Error::InstanceUidMismatch { .. }
            | Error::DuplicateInstanceUid(_)
            | Error::Decode(_)
            | Error::TextMessage => true,
            Error::Transport(e) => e.is_peer_misbehaviour(),
            Error::WebSocket(e) => matches!(
                e,
                tokio_tungstenite::tungstenite::Error::Capacity(_)
                    | tokio_tungstenite::tungstenite::Error::Protocol(_)
            ),
            _ => false,
        }
    }

    /// True if the error is an oversize message (spec §"WebSocket Message Size Limits",
    /// §"Plain HTTP Message Size Limits").
    pub fn is_too_large(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_too_large(),
            Error::WebSocket(tokio_tungstenite::tungstenite::Error::Capacity(_)) => true,
            _ => false,
        }
    }
}
