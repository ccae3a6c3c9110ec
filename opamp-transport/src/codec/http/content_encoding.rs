//! The `Content-Encoding` of a plain-HTTP body.
//!
//! Spec §"Plain HTTP Transport": a client MAY gzip the request body and then MUST send
//! `Content-Encoding: gzip`; a server MUST accept gzip and uncompressed bodies. Coding names
//! are case-insensitive (RFC 9110 §8.4.1); `x-gzip` is the legacy alias of `gzip`, and
//! `identity` means no coding at all.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderValue};

use crate::Error;
use crate::codec::clip_for_error;

/// How a plain-HTTP body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContentEncoding {
    /// No compression (no `Content-Encoding` header, or `identity`).
    #[default]
    Identity,
    /// gzip (`Content-Encoding: gzip`, or the alias `x-gzip`).
    Gzip,
}

impl ContentEncoding {
    /// The coding's name as sent in a `Content-Encoding` header.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
        }
    }

    /// The `Content-Encoding` header value to send for this coding, or `None` for
    /// [`ContentEncoding::Identity`] (which is sent by leaving the header out).
    pub fn header_value(self) -> Option<HeaderValue> {
        match self {
            ContentEncoding::Identity => None,
            ContentEncoding::Gzip => Some(HeaderValue::from_static("gzip")),
        }
    }

    /// Parses a `Content-Encoding` header value: a comma-separated list of codings in the
    /// order they were applied. `identity` entries and empty entries are ignored, so `""` and
    /// `"identity"` give [`ContentEncoding::Identity`]; one `gzip` (or `x-gzip`) gives
    /// [`ContentEncoding::Gzip`]. Anything else, including gzip applied twice, is
    /// [`Error::UnsupportedContentEncoding`].
    pub fn from_header_str(value: &str) -> Result<Self, Error> {
        let mut result = ContentEncoding::Identity;
        for coding in value.split(',').map(str::trim) {
            if coding.is_empty() || coding.eq_ignore_ascii_case("identity") {
                continue;
            }
            let is_gzip =
                coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip");
            if !is_gzip || result == ContentEncoding::Gzip {
                return Err(Error::UnsupportedContentEncoding(clip_for_error(value)));
            }
            result = ContentEncoding::Gzip;
        }
        Ok(result)
    }

    /// Like [`ContentEncoding::from_header_str`] for a raw header value; a value that is not
    /// visible ASCII is [`Error::UnsupportedContentEncoding`].
    pub fn from_header_value(value: &HeaderValue) -> Result<Self, Error> {
        match value.to_str() {
            Ok(text) => Self::from_header_str(text),
            Err(_) => Err(Error::UnsupportedContentEncoding(clip_for_error(
                &String::from_utf8_lossy(value.as_bytes()),
            ))),
        }
    }

    /// The coding of a message from all its `Content-Encoding` header lines (several lines
    /// are one comma-separated list); no header at all is [`ContentEncoding::Identity`].
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Error> {
        let mut result = ContentEncoding::Identity;
        for value in headers.get_all(http::header::CONTENT_ENCODING) {
            match (result, Self::from_header_value(value)?) {
                (_, ContentEncoding::Identity) => {}
                (ContentEncoding::Identity, ContentEncoding::Gzip) => {
                    result = ContentEncoding::Gzip;
                }
                (ContentEncoding::Gzip, ContentEncoding::Gzip) => {
                    return Err(Error::UnsupportedContentEncoding("gzip, gzip".to_owned()));
                }
            }
        }
        Ok(result)
    }
}

impl FromStr for ContentEncoding {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        Self::from_header_str(value)
    }
}

impl fmt::Display for ContentEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        for (text, expected) in [
            ("", ContentEncoding::Identity),
            ("identity", ContentEncoding::Identity),
            ("IDENTITY", ContentEncoding::Identity),
            ("gzip", ContentEncoding::Gzip),
            ("GZip", ContentEncoding::Gzip),
            (" gzip ", ContentEncoding::Gzip),
            ("x-gzip", ContentEncoding::Gzip),
            ("identity, gzip", ContentEncoding::Gzip),
        ] {
            assert_eq!(
                text.parse::<ContentEncoding>().unwrap(),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_unknown_and_stacked_codings() {
        for text in [
            "br",
            "deflate",
            "gzip, br",
            "gzip, gzip",
            "gzip;q=1",
            "compress",
        ] {
            match ContentEncoding::from_header_str(text) {
                Err(Error::UnsupportedContentEncoding(v)) => assert_eq!(v, text),
                other => panic!("{text:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn long_values_are_clipped_in_the_error() {
        let long = "z".repeat(10_000);
        match ContentEncoding::from_header_str(&long) {
            Err(Error::UnsupportedContentEncoding(v)) => assert!(v.len() <= 128 + 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn from_headers_joins_lines() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            ContentEncoding::from_headers(&headers).unwrap(),
            ContentEncoding::Identity
        );
        headers.append("content-encoding", HeaderValue::from_static("identity"));
        headers.append("Content-Encoding", HeaderValue::from_static("GZIP"));
        assert_eq!(
            ContentEncoding::from_headers(&headers).unwrap(),
            ContentEncoding::Gzip
        );
        headers.append("content-encoding", HeaderValue::from_static("gzip"));
        assert!(ContentEncoding::from_headers(&headers).is_err());
        let mut opaque = HeaderMap::new();
        opaque.insert(
            "content-encoding",
            HeaderValue::from_bytes(b"gz\xffip").unwrap(),
        );
        assert!(matches!(
            ContentEncoding::from_headers(&opaque),
            Err(Error::UnsupportedContentEncoding(_))
        ));
    }

    #[test]
    fn header_value_round_trips() {
        for enc in [ContentEncoding::Identity, ContentEncoding::Gzip] {
            assert_eq!(enc.as_str().parse::<ContentEncoding>().unwrap(), enc);
            if let Some(v) = enc.header_value() {
                assert_eq!(ContentEncoding::from_header_value(&v).unwrap(), enc);
            }
        }
        assert_eq!(ContentEncoding::Gzip.to_string(), "gzip");
    }
}
