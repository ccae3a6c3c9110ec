//! Size limits applied by every encoder and decoder of the codec.
//!
//! The spec (§"WebSocket Message Size Limits", §"Plain HTTP Message Size Limits") asks every
//! receiver to enforce a configurable limit on each message, after any decompression, and every
//! sender to check the same limit before any compression; the recommended default is 64 MiB.
//! For WebSocket the limit covers the whole message (varint header plus protobuf `data`), for
//! plain HTTP the whole body.

use crate::Error;

/// Size limits for encoding and decoding OpAMP messages.
///
/// ```
/// use opamp_transport::codec::Limits;
///
/// let limits = Limits::default().with_max_message_size(1024 * 1024);
/// assert_eq!(limits.max_message_size, 1024 * 1024);
/// assert!(limits.check(1024 * 1024).is_ok());
/// assert!(limits.check(1024 * 1024 + 1).unwrap_err().is_too_large());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted message in bytes: a whole WebSocket message (header and data) or a
    /// whole HTTP body after decompression (on receive) or before compression (on send).
    /// `usize::MAX` means no limit.
    pub max_message_size: usize,
}

impl Limits {
    /// The default of [`Limits::max_message_size`]: 64 MiB, as the spec recommends.
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

    /// Returns these limits with [`Limits::max_message_size`] set to `max_message_size`.
    #[must_use]
    pub fn with_max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// `Ok` if a message of `size` bytes is within [`Limits::max_message_size`], otherwise
    /// [`Error::MessageTooLarge`]. Useful to reject a body from its `Content-Length` before
    /// reading it.
    pub fn check(&self, size: u64) -> Result<(), Error> {
        if size > self.max_message_size as u64 {
            Err(Error::MessageTooLarge {
                size,
                limit: self.max_message_size as u64,
            })
        } else {
            Ok(())
        }
    }

    /// [`Limits::max_message_size`] as `u64`, the type used in [`Error::MessageTooLarge`].
    pub(crate) fn limit_u64(&self) -> u64 {
        self.max_message_size as u64
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_64_mib() {
        assert_eq!(Limits::default().max_message_size, 67_108_864);
    }

    #[test]
    fn check_is_inclusive() {
        let limits = Limits::default().with_max_message_size(10);
        assert!(limits.check(0).is_ok());
        assert!(limits.check(10).is_ok());
        match limits.check(11) {
            Err(Error::MessageTooLarge { size, limit }) => assert_eq!((size, limit), (11, 10)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unlimited() {
        let limits = Limits::default().with_max_message_size(usize::MAX);
        assert!(limits.check(usize::MAX as u64).is_ok());
        assert!(limits.check(0).is_ok());
    }
}
