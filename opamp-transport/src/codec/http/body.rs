//! Plain-HTTP request and response bodies: one protobuf message, optionally gzip-compressed.
//!
//! Spec §"Plain HTTP Transport" and §"Plain HTTP Message Size Limits": the limit is checked on
//! the uncompressed protobuf, before compression on send and after decompression on receive.
//! A gzip body is inflated through [`gunzip_bounded`], which never holds more than
//! `limit + 1` bytes of output.

use bytes::Bytes;

use super::ContentEncoding;
use super::gzip::{gunzip_bounded, gzip};
use crate::Error;
use crate::codec::Limits;

/// Encodes `msg` as an HTTP body with the given `encoding`.
///
/// Fails with [`Error::MessageTooLarge`] (before anything is encoded or compressed) if the
/// protobuf encoding of `msg` is larger than [`Limits::max_message_size`]; per the spec such a
/// body must not be sent.
pub fn encode_http_body<M: prost::Message>(
    msg: &M,
    encoding: ContentEncoding,
    limits: &Limits,
) -> Result<Bytes, Error> {
    limits.check(msg.encoded_len() as u64)?;
    let protobuf = msg.encode_to_vec();
    Ok(match encoding {
        ContentEncoding::Identity => Bytes::from(protobuf),
        ContentEncoding::Gzip => Bytes::from(gzip(&protobuf)),
    })
}

/// Decodes an HTTP body sent with the given `encoding` into `M` (`AgentToServer` on a server,
/// `ServerToAgent` on a client).
///
/// Errors: [`Error::MessageTooLarge`] if the body, or what it inflates to, is over the limit
/// (an identity body is checked before anything else; a gzip body stops inflating one byte past
/// the limit), [`Error::InvalidGzip`] if a gzip body does not inflate, [`Error::Decode`] if the
/// protobuf is invalid. An empty identity body is the empty message.
pub fn decode_http_body<M: prost::Message + Default>(
    body: &[u8],
    encoding: ContentEncoding,
    limits: &Limits,
) -> Result<M, Error> {
    match encoding {
        ContentEncoding::Identity => {
            limits.check(body.len() as u64)?;
            Ok(M::decode(body)?)
        }
        ContentEncoding::Gzip => {
            let inflated = gunzip_bounded(body, limits)?;
            Ok(M::decode(inflated.as_slice())?)
        }
    }
}

/// Like [`decode_http_body`], but takes the body as [`Bytes`] so that `bytes` fields of `M`
/// generated as `Bytes` share memory with the (inflated) body instead of copying.
pub fn decode_http_body_bytes<M: prost::Message + Default>(
    body: Bytes,
    encoding: ContentEncoding,
    limits: &Limits,
) -> Result<M, Error> {
    match encoding {
        ContentEncoding::Identity => {
            limits.check(body.len() as u64)?;
            Ok(M::decode(body)?)
        }
        ContentEncoding::Gzip => {
            let inflated = Bytes::from(gunzip_bounded(&body, limits)?);
            Ok(M::decode(inflated)?)
        }
    }
}

/// Inflates (if needed) and size-checks an HTTP body without decoding the protobuf.
///
/// Errors as for [`decode_http_body`], minus [`Error::Decode`].
pub fn http_body_data(
    body: Bytes,
    encoding: ContentEncoding,
    limits: &Limits,
) -> Result<Bytes, Error> {
    match encoding {
        ContentEncoding::Identity => {
            limits.check(body.len() as u64)?;
            Ok(body)
        }
        ContentEncoding::Gzip => Ok(Bytes::from(gunzip_bounded(&body, limits)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Probe {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(bytes = "bytes", tag = "2")]
        blob: Bytes,
    }

    fn probe(n: usize) -> Probe {
        Probe {
            name: "agent".into(),
            blob: Bytes::from(vec![b'a'; n]),
        }
    }

    #[test]
    fn round_trip_both_encodings() {
        let msg = probe(5000);
        let limits = Limits::default();
        for enc in [ContentEncoding::Identity, ContentEncoding::Gzip] {
            let body = encode_http_body(&msg, enc, &limits).unwrap();
            let back: Probe = decode_http_body(&body, enc, &limits).unwrap();
            assert_eq!(back, msg, "{enc}");
            let shared: Probe = decode_http_body_bytes(body.clone(), enc, &limits).unwrap();
            assert_eq!(shared, msg, "{enc}");
            let data = http_body_data(body, enc, &limits).unwrap();
            assert_eq!(&data[..], &prost::Message::encode_to_vec(&msg)[..]);
        }
        let gz = encode_http_body(&msg, ContentEncoding::Gzip, &limits).unwrap();
        assert!(
            gz.len() < 200,
            "5000 repeated bytes compress well: {}",
            gz.len()
        );
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn limit_is_on_the_uncompressed_size() {
        let msg = probe(5000);
        let len = prost::Message::encoded_len(&msg);
        let exact = Limits::default().with_max_message_size(len);
        let under = Limits::default().with_max_message_size(len - 1);
        for enc in [ContentEncoding::Identity, ContentEncoding::Gzip] {
            let body = encode_http_body(&msg, enc, &exact).unwrap();
            assert!(decode_http_body::<Probe>(&body, enc, &exact).is_ok());
            // The gzip body is far smaller than the limit, but what it inflates to is not.
            let err = decode_http_body::<Probe>(&body, enc, &under).unwrap_err();
            assert!(err.is_too_large(), "{enc}: {err:?}");
            let err = encode_http_body(&msg, enc, &under).unwrap_err();
            match err {
                Error::MessageTooLarge { size, limit } => {
                    assert_eq!((size, limit), (len as u64, len as u64 - 1));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn empty_identity_body_is_empty_message() {
        let msg: Probe =
            decode_http_body(b"", ContentEncoding::Identity, &Limits::default()).unwrap();
        assert_eq!(msg, Probe::default());
    }

    #[test]
    fn invalid_bodies() {
        let limits = Limits::default();
        let err = decode_http_body::<Probe>(b"\x0a\x05ab", ContentEncoding::Identity, &limits)
            .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
        let err =
            decode_http_body::<Probe>(b"\x0a\x05ab", ContentEncoding::Gzip, &limits).unwrap_err();
        assert!(matches!(err, Error::InvalidGzip(_)), "{err:?}");
        let gz_bad_protobuf = gzip(b"\x0a\x05ab");
        let err = decode_http_body::<Probe>(&gz_bad_protobuf, ContentEncoding::Gzip, &limits)
            .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
    }
}
