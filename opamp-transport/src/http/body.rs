//! Reading HTTP bodies with a cap on the bytes on the wire.

use std::error::Error as StdError;
use std::pin::pin;

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body;
use http_body_util::BodyExt;

use crate::Error;
use crate::codec::Limits;
use crate::codec::http::ContentEncoding;

/// Extra room gzip may take over the data it compresses: deflate's stored-block overhead for
/// incompressible data (the bound zlib's `compressBound` uses) plus generous space for the gzip
/// header (optional file name, comment and extra fields) and trailer.
fn gzip_bound(limit: usize) -> usize {
    limit
        .saturating_add(limit >> 12)
        .saturating_add(limit >> 14)
        .saturating_add(limit >> 25)
        .saturating_add(1024)
}

/// Largest body accepted on the wire for `encoding`: the limit itself for an identity body,
/// the largest gzip a message of the limit can compress to for a gzip body. What a gzip body
/// inflates to is capped separately by the codec.
pub(crate) fn wire_cap(encoding: ContentEncoding, limits: &Limits) -> usize {
    match encoding {
        ContentEncoding::Identity => limits.max_message_size,
        ContentEncoding::Gzip => gzip_bound(limits.max_message_size),
    }
}

/// Reads `body` into memory, failing with [`Error::MessageTooLarge`] as soon as more than
/// `cap` bytes arrived or `Content-Length` (from `headers`) or the body's size hint announces
/// more. `limit` is the configured limit, reported in the error.
pub(crate) async fn read_capped<B>(
    body: B,
    headers: &HeaderMap,
    cap: usize,
    limits: &Limits,
) -> Result<Bytes, Error>
where
    B: Body,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let too_large = |size: u64| Error::MessageTooLarge {
        size,
        limit: limits.max_message_size as u64,
    };
    let cap = cap as u64;
    if let Some(length) = content_length(headers)
        && length > cap
    {
        return Err(too_large(length));
    }
    let hint = body.size_hint();
    if hint.lower() > cap {
        return Err(too_large(hint.lower()));
    }
    let mut body = pin!(body);
    // Reserve what the peer announced, never more than the cap.
    let mut collected = BytesMut::with_capacity(hint.lower().min(cap) as usize);
    let mut first: Option<Bytes> = None;
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|err| Error::BodyRead(err.into()))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers carry nothing for OpAMP
        };
        // Zero-copy for `Bytes`, the data type of hyper's and most other bodies.
        let data = data.copy_to_bytes(data.remaining());
        let seen = (collected.len() + first.as_ref().map_or(0, Bytes::len) + data.len()) as u64;
        if seen > cap {
            return Err(too_large(seen));
        }
        // Keep a body that arrives in one chunk without copying it.
        match first.take() {
            None if collected.is_empty() => first = Some(data),
            None => collected.extend_from_slice(&data),
            Some(previous) => {
                collected.extend_from_slice(&previous);
                collected.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| collected.freeze()))
}

/// The `Content-Length` header, when present and valid.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    fn limits(max: usize) -> Limits {
        Limits::default().with_max_message_size(max)
    }

    #[tokio::test]
    async fn chunks_are_joined_and_the_cap_is_inclusive() {
        let chunks = ["ab", "cd", "e"]
            .map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let got = read_capped(body, &HeaderMap::new(), 5, &limits(5))
            .await
            .unwrap();
        assert_eq!(&got[..], b"abcde");
    }

    #[tokio::test]
    async fn over_the_cap_stops_reading() {
        let chunks =
            ["abc", "def"].map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let err = read_capped(body, &HeaderMap::new(), 5, &limits(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { size: 6, limit: 5 }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn announced_length_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, "1000".parse().unwrap());
        let err = read_capped(
            Full::new(Bytes::from_static(b"x")),
            &headers,
            10,
            &limits(10),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { size: 1000, .. }),
            "{err:?}"
        );
        // The size hint of a full body is exact.
        let err = read_capped(
            Full::new(Bytes::from(vec![0; 11])),
            &HeaderMap::new(),
            10,
            &limits(10),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { size: 11, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn gzip_cap_leaves_room_for_incompressible_data() {
        use std::io::Write;
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&data).unwrap();
        let gz = encoder.finish().unwrap();
        assert!(gz.len() <= wire_cap(ContentEncoding::Gzip, &limits(data.len())));
        assert_eq!(wire_cap(ContentEncoding::Identity, &limits(7)), 7);
        assert_eq!(
            wire_cap(ContentEncoding::Gzip, &limits(usize::MAX)),
            usize::MAX
        );
    }
}
