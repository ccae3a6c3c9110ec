//! gzip with a bounded output: the inflated size is capped before it is allocated.
//!
//! Spec §"Plain HTTP Message Size Limits" applies the limit to the body *after*
//! decompression, so a small gzip bomb must stop at the limit: the output buffer grows on demand
//! (doubling, never past `limit + 1` bytes) and reading stops as soon as one byte more than the
//! limit has come out. Concatenated gzip members are read as one stream, as Go's and most other
//! gzip readers do.

use std::io::{ErrorKind, Read, Write};

use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::Error;
use crate::codec::Limits;

/// First size of the output buffer when the body gives no better hint.
const MIN_INITIAL_OUTPUT: usize = 8 * 1024;

/// Inflates `body` into a new buffer of at most `limits.max_message_size` bytes.
///
/// Errors: [`Error::MessageTooLarge`] (with `size = limit + 1`, the point where reading
/// stopped) if the inflated data is longer than the limit, [`Error::InvalidGzip`] if `body`
/// is not valid gzip (bad header, corrupt data, CRC or length mismatch, truncated, empty).
pub(crate) fn gunzip_bounded(body: &[u8], limits: &Limits) -> Result<Vec<u8>, Error> {
    let limit = limits.max_message_size;
    let cap = limit.saturating_add(1);
    let mut decoder = MultiGzDecoder::new(body);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    loop {
        if filled == out.len() {
            if out.len() >= cap {
                break;
            }
            let hint = body.len().saturating_mul(4).max(MIN_INITIAL_OUTPUT);
            let new_len = out.len().saturating_mul(2).max(hint).min(cap);
            out.reserve_exact(new_len - out.len());
            out.resize(new_len, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(Error::InvalidGzip(err)),
        }
    }
    if filled > limit {
        return Err(Error::MessageTooLarge {
            size: filled as u64,
            limit: limits.limit_u64(),
        });
    }
    out.truncate(filled);
    Ok(out)
}

/// Compresses `data` as one gzip member at the default level (6, as Go's `gzip` uses).
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    // Header and trailer take 18 bytes; incompressible data grows by a few bytes per block.
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail: its io::Write impl never returns an error.
    encoder
        .write_all(data)
        .expect("writing gzip into a Vec cannot fail");
    encoder
        .finish()
        .expect("finishing gzip into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(n: usize) -> Limits {
        Limits::default().with_max_message_size(n)
    }

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let gz = gzip(&data);
        assert_eq!(gunzip_bounded(&gz, &Limits::default()).unwrap(), data);
        assert_eq!(gunzip_bounded(&gz, &limits(data.len())).unwrap(), data);
    }

    #[test]
    fn stops_one_byte_past_the_limit() {
        let data = vec![0u8; 1_000_000];
        let gz = gzip(&data);
        match gunzip_bounded(&gz, &limits(999_999)) {
            Err(Error::MessageTooLarge { size, limit }) => {
                assert_eq!((size, limit), (1_000_000, 999_999));
            }
            other => panic!("unexpected {other:?}"),
        }
        match gunzip_bounded(&gz, &limits(10)) {
            Err(Error::MessageTooLarge { size, limit }) => assert_eq!((size, limit), (11, 10)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn zero_limit_accepts_only_empty_data() {
        assert_eq!(gunzip_bounded(&gzip(b""), &limits(0)).unwrap(), b"");
        assert!(
            gunzip_bounded(&gzip(b"x"), &limits(0))
                .unwrap_err()
                .is_too_large()
        );
    }

    #[test]
    fn concatenated_members_are_one_stream() {
        let mut gz = gzip(b"hello ");
        gz.extend(gzip(b"world"));
        assert_eq!(
            gunzip_bounded(&gz, &Limits::default()).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn invalid_input() {
        for bad in [&b""[..], b"not gzip at all", &[0x1f, 0x8b, 0x08]] {
            let err = gunzip_bounded(bad, &Limits::default()).unwrap_err();
            assert!(matches!(err, Error::InvalidGzip(_)), "{bad:?}: {err:?}");
        }
        // Truncated stream.
        let gz = gzip(&[5u8; 1000]);
        let err = gunzip_bounded(&gz[..gz.len() - 4], &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidGzip(_)), "{err:?}");
        // Corrupt CRC.
        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 6;
        bad_crc[at] ^= 0xff;
        let err = gunzip_bounded(&bad_crc, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidGzip(_)), "{err:?}");
    }
}
