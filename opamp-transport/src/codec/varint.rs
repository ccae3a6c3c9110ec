//! Base 128 varint decoding for the WebSocket message header.
//!
//! prost's own varint decoder folds every failure into one `DecodeError`; the header needs
//! distinct errors (truncated vs. over-long), so this small decoder reports which rule broke.

/// Longest encoding of a 64-bit varint.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ended while the last byte still had its continuation bit set.
    Truncated,
    /// More than 10 bytes, or a 10th byte that carries bits beyond 64.
    Overflow,
}

/// Reads one unsigned varint from the start of `buf`: returns its value and the number of
/// bytes it took. Non-canonical (over-long) encodings of a value are accepted, as protobuf does,
/// as long as they fit in 10 bytes and 64 bits.
pub(crate) fn decode_varint(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i == MAX_VARINT_LEN - 1 && byte > 0x01 {
            // The 10th byte holds only bit 63; anything more overflows or continues past 10.
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        assert_eq!(decode_varint(&[0x00]), Ok((0, 1)));
        assert_eq!(decode_varint(&[0x01, 0xff]), Ok((1, 1)));
        assert_eq!(decode_varint(&[0xac, 0x02]), Ok((300, 2)));
        // Over-long zero is still zero.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x00]), Ok((0, 3)));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(decode_varint(&max), Ok((u64::MAX, 10)));
    }

    #[test]
    fn errors() {
        assert_eq!(decode_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(decode_varint(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(decode_varint(&[0xff; 9]), Err(VarintError::Truncated));
        // 10th byte with a bit beyond 64.
        let mut over = [0xff; 10];
        over[9] = 0x02;
        assert_eq!(decode_varint(&over), Err(VarintError::Overflow));
        // 10th byte with the continuation bit: would be an 11-byte varint.
        let mut long = [0x80; 11];
        long[10] = 0x00;
        assert_eq!(decode_varint(&long), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn round_trip(value: u64, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(value, &mut buf);
            let len = buf.len();
            buf.extend_from_slice(&tail);
            prop_assert_eq!(decode_varint(&buf), Ok((value, len)));
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..16)) {
            let ours = decode_varint(&input);
            let theirs = prost::encoding::decode_varint(&mut input.as_slice());
            match ours {
                Ok((v, _)) => prop_assert_eq!(theirs.ok(), Some(v)),
                Err(_) => prop_assert!(theirs.is_err()),
            }
        }
    }
}
