//! The payload of one OpAMP WebSocket binary message: varint `header`, then protobuf `data`.
//!
//! Rules implemented here (spec §"WebSocket Message Format", §"WebSocket Message Size Limits"):
//!
//! * The `header` is an unsigned 64-bit Base 128 varint of 1 to 10 bytes. This version of the
//!   spec defines only the value 0, so an encoder writes the single byte `0x00`. A decoder that
//!   finds another value treats the message as malformed ([`Error::NonZeroWsHeader`]). An
//!   over-long encoding of 0 (such as `80 00`) is still the value 0 and is accepted.
//! * The `data` is everything after the header; its length is the message length minus the
//!   header length. Zero bytes of `data` are a valid, empty message.
//! * A message with no bytes at all has no header and is rejected ([`Error::MissingWsHeader`]),
//!   unlike opamp-go, which reads a first byte other than `0x00` (or nothing) as a legacy
//!   header-less protobuf.
//! * The size limit applies to the whole message, header included. A sender checks it before
//!   anything is written (before any permessage-deflate compression); a receiver checks it
//!   first, before parsing (after any decompression, which the WebSocket layer does).
//!
//! ```
//! use opamp_transport::codec::{Limits, ws};
//!
//! // Any prost message works; `()` is the empty message.
//! let limits = Limits::default();
//! let payload = ws::encode_ws_message(&(), &limits)?;
//! assert_eq!(&payload[..], &[0x00]);
//! let () = ws::decode_ws_message(&payload, &limits)?;
//! assert!(ws::decode_ws_message::<()>(&[0x01], &limits).is_err());
//! # Ok::<(), opamp_transport::Error>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::Limits;
use super::varint::{VarintError, decode_varint};
use crate::Error;

/// The only header value defined by this version of the spec.
pub const WS_HEADER: u64 = 0;

/// Length in bytes of the header [`encode_ws_message`] writes (the varint `0`).
pub const WS_HEADER_LEN: usize = 1;

/// Size in bytes of the WebSocket message [`encode_ws_message`] would produce for `msg`.
pub fn encoded_ws_message_len<M: prost::Message>(msg: &M) -> usize {
    WS_HEADER_LEN.saturating_add(msg.encoded_len())
}

/// Encodes `msg` as the payload of one WebSocket binary message: header `0x00`, then the
/// protobuf encoding.
///
/// Fails with [`Error::MessageTooLarge`] (and allocates nothing) if the whole message would be
/// larger than [`Limits::max_message_size`]; per the spec such a message must not be sent.
pub fn encode_ws_message<M: prost::Message>(msg: &M, limits: &Limits) -> Result<Bytes, Error> {
    let mut buf = BytesMut::new();
    encode_ws_message_into(msg, limits, &mut buf)?;
    Ok(buf.freeze())
}

/// Like [`encode_ws_message`], but appends the payload to `buf` (reusing its capacity).
///
/// On error `buf` is left unchanged.
pub fn encode_ws_message_into<M: prost::Message>(
    msg: &M,
    limits: &Limits,
    buf: &mut BytesMut,
) -> Result<(), Error> {
    let total = encoded_ws_message_len(msg);
    limits.check(total as u64)?;
    buf.reserve(total);
    buf.put_u8(0x00);
    // BytesMut grows on demand, so prost's only encode error (not enough capacity) cannot occur.
    msg.encode_raw(buf);
    debug_assert!(buf.len() >= total);
    Ok(())
}

/// Checks the size limit and the header of a WebSocket message payload, and returns its
/// protobuf `data` (possibly empty) without decoding it.
///
/// Errors: [`Error::MessageTooLarge`] if `payload` is over the limit (checked first),
/// [`Error::MissingWsHeader`] if it is empty, [`Error::TruncatedWsHeader`] if it ends inside the
/// varint, [`Error::MalformedWsHeader`] if the varint is over 10 bytes or 64 bits, and
/// [`Error::NonZeroWsHeader`] if the header is not 0.
pub fn ws_payload_data<'a>(payload: &'a [u8], limits: &Limits) -> Result<&'a [u8], Error> {
    let header_len = check_ws_header(payload, limits)?;
    Ok(&payload[header_len..])
}

/// Decodes the payload of one WebSocket binary message into `M` (`AgentToServer` on a server,
/// `ServerToAgent` on a client).
///
/// Errors are those of [`ws_payload_data`], then [`Error::Decode`] if the `data` is not a valid
/// protobuf encoding of `M`. Unknown fields are skipped, as protobuf requires.
pub fn decode_ws_message<M: prost::Message + Default>(
    payload: &[u8],
    limits: &Limits,
) -> Result<M, Error> {
    let data = ws_payload_data(payload, limits)?;
    Ok(M::decode(data)?)
}

/// Like [`decode_ws_message`], but takes the payload as [`Bytes`] so that `bytes` fields of `M`
/// generated as `Bytes` share its memory instead of copying.
pub fn decode_ws_message_bytes<M: prost::Message + Default>(
    payload: Bytes,
    limits: &Limits,
) -> Result<M, Error> {
    let header_len = check_ws_header(&payload, limits)?;
    Ok(M::decode(payload.slice(header_len..))?)
}

/// Applies the size limit and header rules; returns the length of the header.
fn check_ws_header(payload: &[u8], limits: &Limits) -> Result<usize, Error> {
    limits.check(payload.len() as u64)?;
    if payload.is_empty() {
        return Err(Error::MissingWsHeader);
    }
    let (header, header_len) = decode_varint(payload).map_err(|err| match err {
        VarintError::Truncated => Error::TruncatedWsHeader,
        VarintError::Overflow => Error::MalformedWsHeader,
    })?;
    if header != WS_HEADER {
        return Err(Error::NonZeroWsHeader(header));
    }
    Ok(header_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Probe {
        #[prost(uint64, tag = "1")]
        seq: u64,
        #[prost(bytes = "vec", tag = "2")]
        blob: Vec<u8>,
    }

    #[test]
    fn encodes_header_then_protobuf() {
        let msg = Probe {
            seq: 42,
            blob: b"hi".to_vec(),
        };
        let out = encode_ws_message(&msg, &Limits::default()).unwrap();
        let mut expected = vec![0x00];
        expected.extend(prost::Message::encode_to_vec(&msg));
        assert_eq!(&out[..], &expected[..]);
        assert_eq!(out.len(), encoded_ws_message_len(&msg));
        let back: Probe = decode_ws_message(&out, &Limits::default()).unwrap();
        assert_eq!(back, msg);
        let shared: Probe = decode_ws_message_bytes(out, &Limits::default()).unwrap();
        assert_eq!(shared, msg);
    }

    #[test]
    fn into_appends_and_leaves_buffer_alone_on_error() {
        let msg = Probe {
            seq: 1,
            blob: vec![7; 100],
        };
        let mut buf = BytesMut::from(&b"xy"[..]);
        encode_ws_message_into(&msg, &Limits::default(), &mut buf).unwrap();
        assert_eq!(&buf[..2], b"xy");
        assert_eq!(buf[2], 0x00);
        let before = buf.clone();
        let small = Limits::default().with_max_message_size(50);
        let err = encode_ws_message_into(&msg, &small, &mut buf).unwrap_err();
        assert!(err.is_too_large());
        assert_eq!(buf, before);
    }

    #[test]
    fn limit_counts_the_header() {
        let msg = Probe {
            seq: 0,
            blob: vec![1; 10],
        };
        let len = encoded_ws_message_len(&msg);
        assert_eq!(len, 1 + 2 + 10);
        let exact = Limits::default().with_max_message_size(len);
        let payload = encode_ws_message(&msg, &exact).unwrap();
        assert!(decode_ws_message::<Probe>(&payload, &exact).is_ok());
        let under = Limits::default().with_max_message_size(len - 1);
        match encode_ws_message(&msg, &under) {
            Err(Error::MessageTooLarge { size, limit }) => {
                assert_eq!((size, limit), (len as u64, len as u64 - 1));
            }
            other => panic!("unexpected {other:?}"),
        }
        match decode_ws_message::<Probe>(&payload, &under) {
            Err(Error::MessageTooLarge { size, limit }) => {
                assert_eq!((size, limit), (len as u64, len as u64 - 1));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn header_rules() {
        let limits = Limits::default();
        assert!(matches!(
            ws_payload_data(&[], &limits),
            Err(Error::MissingWsHeader)
        ));
        assert!(matches!(
            ws_payload_data(&[0x80], &limits),
            Err(Error::TruncatedWsHeader)
        ));
        assert!(matches!(
            ws_payload_data(&[0x80; 11], &limits),
            Err(Error::MalformedWsHeader)
        ));
        assert!(matches!(
            ws_payload_data(&[0x01, 0x08, 0x01], &limits),
            Err(Error::NonZeroWsHeader(1))
        ));
        assert!(matches!(
            ws_payload_data(&[0xac, 0x02], &limits),
            Err(Error::NonZeroWsHeader(300))
        ));
        assert_eq!(ws_payload_data(&[0x00], &limits).unwrap(), &[] as &[u8]);
        assert_eq!(
            ws_payload_data(&[0x80, 0x00, 0x08], &limits).unwrap(),
            &[0x08]
        );
    }

    #[test]
    fn empty_data_is_an_empty_message() {
        let msg: Probe = decode_ws_message(&[0x00], &Limits::default()).unwrap();
        assert_eq!(msg, Probe::default());
    }

    #[test]
    fn bad_protobuf_is_a_decode_error() {
        // Field 2 (LEN) claims 16 bytes, 2 follow.
        let err = decode_ws_message::<Probe>(&[0x00, 0x12, 0x10, 0x01, 0x02], &Limits::default())
            .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
        assert!(err.is_peer_misbehaviour());
    }
}
