//! Pure, synchronous encoding and decoding: no IO, every size bounded before allocation.
//!
//! The codec turns OpAMP messages into bytes and back for both transports, and makes the
//! small decisions the transports need about requests and headers. It is generic over
//! [`prost::Message`], so it works with `opamp_proto::AgentToServer` and
//! `opamp_proto::ServerToAgent` as well as with any other prost message.
//!
//! | module | spec section | what |
//! | --- | --- | --- |
//! | [`ws`] | §"WebSocket Message Format", §"WebSocket Message Size Limits" | varint header `0` + protobuf, in one binary message |
//! | [`http`] | §"Plain HTTP Transport", §"Plain HTTP Message Size Limits" | bodies with `Content-Encoding` identity or gzip, `Accept-Encoding`, header names |
//! | [`classify`] | §"Plain HTTP Transport", §"Communication Model" | plain HTTP or WebSocket upgrade, for a server that serves both on one endpoint |
//! | [`retry_after`] | §"Throttling" | `Retry-After` and `RetryInfo.retry_after_nanoseconds` as [`Duration`](std::time::Duration) |
//! | [`Limits`] | both size-limit sections | the message size limit (default 64 MiB) |
//!
//! # Bounded memory
//!
//! Every decoder checks [`Limits::max_message_size`] before it allocates: a WebSocket payload
//! or identity HTTP body is rejected from its length alone, and a gzip body is inflated into a
//! buffer that never grows past `limit + 1` bytes, so a gzip bomb ends in
//! [`Error::MessageTooLarge`](crate::Error::MessageTooLarge) after at most `limit + 1` bytes
//! of output. Protobuf decoding then allocates at most in proportion to its input. Encoders
//! compute the encoded size first and refuse an oversize message before writing anything, as
//! the spec requires of senders.
//!
//! ```
//! use opamp_transport::codec::{Limits, ws};
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Ping {
//!     #[prost(uint64, tag = "2")]
//!     sequence_num: u64,
//! }
//!
//! let limits = Limits::default().with_max_message_size(1024);
//! let payload = ws::encode_ws_message(&Ping { sequence_num: 7 }, &limits)?;
//! assert_eq!(&payload[..], &[0x00, 0x10, 0x07]);
//! let ping: Ping = ws::decode_ws_message(&payload, &limits)?;
//! assert_eq!(ping.sequence_num, 7);
//! # Ok::<(), opamp_transport::Error>(())
//! ```

pub mod classify;
pub mod http;
mod limits;
pub mod retry_after;
mod varint;
pub mod ws;

pub use classify::{NotUpgradeReason, TransportKind, classify_request};
pub use http::{
    CONTENT_TYPE_PROTOBUF, ContentEncoding, INSTANCE_UID_HEADER, INSTANCE_UID_HEADER_NAME,
    accepts_gzip, decode_http_body, encode_http_body,
};
pub use limits::Limits;
pub use retry_after::{format_retry_after, parse_retry_after};
pub use ws::{decode_ws_message, encode_ws_message, encode_ws_message_into, ws_payload_data};

/// Longest peer-supplied text kept in an error (header values are cut to this many bytes).
const MAX_ERROR_TEXT: usize = 128;

/// Copies `text` for an error message, cut to [`MAX_ERROR_TEXT`] bytes (at a character
/// boundary, with `…` appended) so a peer cannot make errors and logs arbitrarily large.
pub(crate) fn clip_for_error(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip() {
        assert_eq!(clip_for_error("short"), "short");
        let exact = "a".repeat(MAX_ERROR_TEXT);
        assert_eq!(clip_for_error(&exact), exact);
        let long = "é".repeat(100); // 200 bytes
        let clipped = clip_for_error(&long);
        assert!(clipped.len() <= MAX_ERROR_TEXT + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert!(long.starts_with(clipped.trim_end_matches('…')));
    }
}
