//! The crate's error type.

/// Errors produced by the helpers of this crate.
///
/// Decoding a message fails with [`prost::DecodeError`] instead; this enum
/// covers the checks the helpers add on top of the wire format.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An instance UID must be exactly 16 bytes
    /// (spec §AgentToServer.instance_uid).
    #[error("instance UID must be 16 bytes, got {len}")]
    InvalidInstanceUidLength {
        /// The length that was given.
        len: usize,
    },
    /// A string could not be parsed as a UUID.
    #[error("invalid instance UID string: {0}")]
    InvalidInstanceUid(#[source] uuid::Error),
}
