//! Shared by the fuzz targets (included with `#[path]`).

use prost::Message;

/// Re-encodes a message that decoded, decodes that again and checks the two encodings are
/// byte-identical. (Bytes, not `==`: a double field may hold NaN. opamp-proto's maps are
/// BTreeMaps, so the encoding is deterministic.)
pub fn check_reencode<M: Message + Default>(msg: &M) -> Vec<u8> {
    let first = msg.encode_to_vec();
    assert_eq!(first.len(), msg.encoded_len());
    let again = M::decode(first.as_slice()).expect("a re-encoded message must decode");
    let second = again.encode_to_vec();
    assert_eq!(first, second, "re-encoding is not stable");
    first
}
