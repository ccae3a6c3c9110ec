//! Settings of one WebSocket connection: size limit, buffer sizes, close timeout.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::Limits;

/// Largest WebSocket frame header (RFC 6455 §5.2): 2 bytes, 8 bytes of extended length, 4 bytes
/// of masking key.
const MAX_FRAME_HEADER: usize = 14;
/// Room in the write buffer for control frames queued next to a message (a pong or a close
/// reply: at most 125 bytes of payload each plus their headers).
const CONTROL_FRAMES_ROOM: usize = 2 * (125 + MAX_FRAME_HEADER);

/// Settings of a WebSocket connection, used on both sides.
///
/// Every buffer is bounded: incoming messages and frames by [`WsConfig::limits`] (checked on the
/// frame header, before the payload is read or allocated), the read buffer by
/// [`WsConfig::read_buffer_size`], the write buffer by one message of the limit plus
/// [`WsConfig::write_buffer_size`].
///
/// ```
/// use opamp_transport::codec::Limits;
/// use opamp_transport::ws::WsConfig;
///
/// let config = WsConfig::default()
///     .with_limits(Limits::default().with_max_message_size(1 << 20))
///     .with_read_buffer_size(8 * 1024);
/// let tungstenite = config.websocket_config();
/// assert_eq!(tungstenite.max_message_size, Some(1 << 20));
/// assert_eq!(tungstenite.read_buffer_size, 8 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Size limit of one OpAMP message (the whole WebSocket message: varint header and
    /// protobuf), both received and sent. Spec §"WebSocket Message Size Limits".
    pub limits: Limits,
    /// Capacity of the read buffer, allocated once per connection. Default 4 KiB: small, so
    /// that thousands of idle connections fit; larger messages are read in several steps.
    pub read_buffer_size: usize,
    /// How many bytes of outgoing frames may collect before they are written to the socket.
    /// Default 0: every message is written at once (each send also flushes).
    pub write_buffer_size: usize,
    /// Time allowed to send a close frame (on [`crate::ws::WsSender::close`] and when an
    /// oversize message is refused with close code 1009). Default 5 s.
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            read_buffer_size: 4 * 1024,
            write_buffer_size: 0,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl WsConfig {
    /// Sets the message size limit.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the read buffer capacity (at least 1 byte is used).
    #[must_use]
    pub fn with_read_buffer_size(mut self, read_buffer_size: usize) -> Self {
        self.read_buffer_size = read_buffer_size;
        self
    }

    /// Sets how many bytes of outgoing frames may collect before a write.
    #[must_use]
    pub fn with_write_buffer_size(mut self, write_buffer_size: usize) -> Self {
        self.write_buffer_size = write_buffer_size;
        self
    }

    /// Sets the time allowed to send a close frame.
    #[must_use]
    pub fn with_close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// The tungstenite configuration these settings stand for.
    ///
    /// `max_message_size` and `max_frame_size` are the OpAMP limit itself (it covers the whole
    /// WebSocket message, so no margin is needed), `None` when the limit is `usize::MAX`;
    /// `max_write_buffer_size` fits one message of the limit with its frame header, the
    /// queued control frames and [`WsConfig::write_buffer_size`].
    pub fn websocket_config(&self) -> WebSocketConfig {
        let limit = self.limits.max_message_size;
        let incoming = (limit != usize::MAX).then_some(limit);
        let write_buffer_size = self.write_buffer_size.min(usize::MAX / 2);
        let max_write_buffer_size = write_buffer_size
            .saturating_add(limit)
            .saturating_add(MAX_FRAME_HEADER + CONTROL_FRAMES_ROOM);
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size.max(1))
            .write_buffer_size(write_buffer_size)
            .max_write_buffer_size(max_write_buffer_size)
            .max_message_size(incoming)
            .max_frame_size(incoming)
            .accept_unmasked_frames(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_buffer_always_larger_than_its_flush_threshold() {
        for (limit, write) in [(0, 0), (1 << 20, 4096), (usize::MAX, usize::MAX)] {
            let config = WsConfig::default()
                .with_limits(Limits::default().with_max_message_size(limit))
                .with_write_buffer_size(write)
                .websocket_config();
            assert!(config.max_write_buffer_size > config.write_buffer_size);
        }
    }

    #[test]
    fn unlimited_means_no_tungstenite_limit() {
        let config = WsConfig::default()
            .with_limits(Limits::default().with_max_message_size(usize::MAX))
            .websocket_config();
        assert_eq!(config.max_message_size, None);
        assert_eq!(config.max_frame_size, None);
    }
}
