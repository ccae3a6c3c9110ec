//! The codec's header parsers on arbitrary text: Retry-After, Content-Encoding,
//! Accept-Encoding, Content-Type.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use opamp_transport::codec::classify::is_protobuf_content_type;
use opamp_transport::codec::http::{ContentEncoding, accepts_gzip};
use opamp_transport::codec::retry_after::{format_retry_after, parse_retry_after};

fuzz_target!(|data: &[u8]| {
    let _ = is_protobuf_content_type(data);
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let _ = ContentEncoding::from_header_value(&value);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(wait) = parse_retry_after(text, now) {
        // What parsed formats back to delta-seconds that parse to at least the same wait.
        let again = parse_retry_after(&format_retry_after(wait), now).expect("formatted value");
        assert!(again >= wait);
    }
    if let Ok(encoding) = text.parse::<ContentEncoding>() {
        assert_eq!(
            encoding.as_str().parse::<ContentEncoding>().ok(),
            Some(encoding)
        );
    }
    let _ = accepts_gzip(text);
});
