//! Whether a peer's `Accept-Encoding` allows a gzip response.
//!
//! Spec §"Plain HTTP Transport": the server SHOULD compress the response when the client said
//! it accepts compression in `Accept-Encoding`. The header is read as RFC 9110 §12.5.3 says: a
//! comma-separated list of codings with optional `q` weights; an explicit `gzip` (or `x-gzip`)
//! entry decides, otherwise a `*` entry does; a weight of 0 means "not acceptable". An entry
//! whose weight does not parse is treated as not acceptable, so a confused client gets an
//! uncompressed body it can always read.

use http::HeaderMap;

/// Whether the `Accept-Encoding` header value `accept_encoding` allows a gzip-encoded body.
///
/// ```
/// use opamp_transport::codec::http::accepts_gzip;
///
/// assert!(accepts_gzip("gzip"));
/// assert!(accepts_gzip("deflate, GZIP;q=0.5"));
/// assert!(accepts_gzip("*"));
/// assert!(!accepts_gzip("gzip;q=0"));
/// assert!(!accepts_gzip("*, gzip;q=0"));
/// assert!(!accepts_gzip("identity"));
/// ```
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut gzip: Option<bool> = None;
    let mut wildcard: Option<bool> = None;
    for entry in accept_encoding.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let acceptable = weight_is_positive(parts);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            // If gzip is listed twice, any positive entry wins.
            gzip = Some(gzip.unwrap_or(false) || acceptable);
        } else if coding == "*" {
            wildcard = Some(wildcard.unwrap_or(false) || acceptable);
        }
    }
    gzip.or(wildcard).unwrap_or(false)
}

/// [`accepts_gzip`] over every `Accept-Encoding` line of `headers` (several lines form one
/// list). Lines that are not visible ASCII are ignored; no header means no gzip.
pub fn headers_accept_gzip(headers: &HeaderMap) -> bool {
    let mut joined = String::new();
    for value in headers.get_all(http::header::ACCEPT_ENCODING) {
        if let Ok(text) = value.to_str() {
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(text);
        }
    }
    accepts_gzip(&joined)
}

/// Reads the parameters after a coding; `true` unless a `q` parameter is 0 or malformed.
fn weight_is_positive<'a>(params: impl Iterator<Item = &'a str>) -> bool {
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            return match parse_qvalue(value.trim()) {
                Some(thousandths) => thousandths > 0,
                None => false,
            };
        }
    }
    true
}

/// Parses an RFC 9110 qvalue (`0`, `0.5`, `1.000`, ...) into thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (text, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, digit) in frac.bytes().enumerate() {
        thousandths += u16::from(digit - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_gzip() {
        for yes in [
            "gzip",
            "GZIP",
            "x-gzip",
            "deflate, gzip",
            "gzip;q=1",
            "gzip; q=0.001",
            "gzip;Q=1.000",
            "br;q=1.0, gzip;q=0.8, *;q=0.1",
            " gzip ,identity",
        ] {
            assert!(accepts_gzip(yes), "{yes:?}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.0",
            "gzip; q=0.000",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=abc",
            "gzip;q=",
            "*;q=1, gzip;q=0",
            "gzipx",
        ] {
            assert!(!accepts_gzip(no), "{no:?}");
        }
    }

    #[test]
    fn wildcard() {
        assert!(accepts_gzip("*"));
        assert!(accepts_gzip("br, *;q=0.2"));
        assert!(!accepts_gzip("*;q=0"));
        assert!(accepts_gzip("*;q=0, gzip"));
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.123"), Some(123));
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.0"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0.-1"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("00.5"), None);
    }

    #[test]
    fn header_lines_are_joined() {
        let mut headers = HeaderMap::new();
        assert!(!headers_accept_gzip(&headers));
        headers.append("accept-encoding", "br".parse().unwrap());
        assert!(!headers_accept_gzip(&headers));
        headers.append("accept-encoding", "gzip".parse().unwrap());
        assert!(headers_accept_gzip(&headers));
    }
}
