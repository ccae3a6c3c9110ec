//! The crate's one error type.

/// Everything that can go wrong while framing, sending or receiving an OpAMP message.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message (after decompression on receive, before compression on send) is larger than
    /// the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message, or the number of bytes seen when reading stopped at the limit.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
}
