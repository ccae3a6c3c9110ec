//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong while running a peer or a conformance scenario.
///
/// A scenario that finds a peer breaking the protocol returns [`Error::Violation`]; the
/// harness's own failures (a peer that cannot start, a timeout) have their own variants.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A third-party peer is not installed (run `interop/setup.sh`).
    #[error("peer not installed: {0} (run interop/setup.sh)")]
    PeerMissing(String),
    /// A peer process could not be started or talked to.
    #[error("peer process {name}: {source}")]
    Process {
        /// The peer.
        name: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A peer process ended before it printed what was waited for.
    #[error("peer process {name} ended before {waiting_for}")]
    PeerExited {
        /// The peer.
        name: String,
        /// What the harness was waiting for.
        waiting_for: String,
    },
    /// A peer printed a line that is not a JSON object.
    #[error("peer process {name} printed a line that is not a JSON object: {line}")]
    BadLine {
        /// The peer.
        name: String,
        /// The line (shortened).
        line: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The peer under test broke the protocol (or the spec's answer did not come).
    #[error("protocol violation: {0}")]
    Violation(String),
    /// Socket IO of the harness.
    #[error("IO error: {0}")]
    Io(#[from] std::io::Error),
    /// An error of our OpAMP server.
    #[error(transparent)]
    Server(#[from] opamp_server::Error),
    /// An error of our OpAMP client.
    #[error(transparent)]
    Client(#[from] opamp_client::Error),
    /// An error of the transport layer.
    #[error(transparent)]
    Transport(#[from] opamp_transport::Error),
    /// A WebSocket error of a raw (hand-driven) connection.
    #[error("WebSocket error: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

impl Error {
    pub(crate) fn timeout(what: impl Into<String>, after: Duration) -> Self {
        Error::Timeout {
            what: what.into(),
            after,
        }
    }

    pub(crate) fn violation(what: impl Into<String>) -> Self {
        Error::Violation(what.into())
    }
}
