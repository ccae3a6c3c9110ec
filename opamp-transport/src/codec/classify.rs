//! Which transport an incoming request on the OpAMP endpoint uses.
//!
//! Spec §"Communication Model": a server SHOULD accept plain HTTP and WebSocket on the same
//! endpoint. Spec §"Plain HTTP Transport": a request with `Content-Type:
//! application/x-protobuf` is plain HTTP, anything else is taken as the start of a WebSocket
//! connection. This module applies that rule strictly, so the server can answer a request that
//! is neither with a precise status instead of a failed handshake:
//!
//! 1. If the media type of `Content-Type` (ignoring parameters such as `; charset=...` and
//!    letter case) is `application/x-protobuf`, the request is plain HTTP; it must be `POST`
//!    ([`Error::MethodNotAllowed`], 405).
//! 2. Otherwise, a valid WebSocket upgrade (RFC 6455 §4.2.1: `GET`, `Upgrade: websocket`,
//!    `Connection` listing `upgrade`, a `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`) is a
//!    WebSocket request.
//! 3. Otherwise, a request with some other `Content-Type` gets
//!    [`Error::UnsupportedContentType`] (415), and one without gets
//!    [`Error::UnsupportedRequest`] naming the upgrade rule it breaks (400, or 426 for a
//!    WebSocket version other than 13).
//!
//! ```
//! use http::{HeaderMap, Method, header};
//! use opamp_transport::codec::classify::{TransportKind, classify_request};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::CONTENT_TYPE, "application/x-protobuf".parse().unwrap());
//! assert_eq!(classify_request(&Method::POST, &headers)?, TransportKind::PlainHttp);
//! # Ok::<(), opamp_transport::Error>(())
//! ```

use std::fmt;

use http::{HeaderMap, Method, header};

use super::clip_for_error;
use super::http::CONTENT_TYPE_PROTOBUF;
use crate::Error;

/// The transport a request on the OpAMP endpoint asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// A plain-HTTP `POST` carrying one `AgentToServer`.
    PlainHttp,
    /// A WebSocket upgrade request.
    WebSocket,
}

/// The WebSocket upgrade rule a request breaks, in [`Error::UnsupportedRequest`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotUpgradeReason {
    /// The method is not `GET`.
    MethodNotGet,
    /// No `Upgrade` header listing `websocket`.
    MissingUpgradeWebSocket,
    /// No `Connection` header listing `upgrade`.
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key` header.
    MissingWebSocketKey,
    /// `Sec-WebSocket-Version` is missing or not 13; the server should answer 426 with
    /// `Sec-WebSocket-Version: 13`.
    UnsupportedWebSocketVersion,
}

impl fmt::Display for NotUpgradeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotUpgradeReason::MethodNotGet => "a WebSocket upgrade must use GET",
            NotUpgradeReason::MissingUpgradeWebSocket => "no `Upgrade: websocket` header",
            NotUpgradeReason::MissingConnectionUpgrade => "no `Connection: upgrade` header",
            NotUpgradeReason::MissingWebSocketKey => "no Sec-WebSocket-Key header",
            NotUpgradeReason::UnsupportedWebSocketVersion => "Sec-WebSocket-Version is not 13",
        })
    }
}

/// Decides whether a request on the OpAMP endpoint is plain HTTP or a WebSocket upgrade; see
/// the [module docs](self) for the rules and errors.
pub fn classify_request(method: &Method, headers: &HeaderMap) -> Result<TransportKind, Error> {
    let content_type = headers.get(header::CONTENT_TYPE);
    if let Some(value) = content_type
        && is_protobuf_content_type(value.as_bytes())
    {
        return if method == Method::POST {
            Ok(TransportKind::PlainHttp)
        } else {
            Err(Error::MethodNotAllowed(method.clone()))
        };
    }
    match check_websocket_upgrade(method, headers) {
        Ok(()) => Ok(TransportKind::WebSocket),
        Err(reason) => match content_type {
            Some(value) => Err(Error::UnsupportedContentType(clip_for_error(
                &String::from_utf8_lossy(value.as_bytes()),
            ))),
            None => Err(Error::UnsupportedRequest(reason)),
        },
    }
}

/// Whether a `Content-Type` value names `application/x-protobuf`, ignoring letter case,
/// surrounding spaces and any parameters.
pub fn is_protobuf_content_type(value: &[u8]) -> bool {
    let media_type = value.split(|&b| b == b';').next().unwrap_or_default();
    media_type
        .trim_ascii()
        .eq_ignore_ascii_case(CONTENT_TYPE_PROTOBUF.as_bytes())
}

/// Checks the RFC 6455 §4.2.1 requirements on a client's opening handshake.
pub fn check_websocket_upgrade(
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), NotUpgradeReason> {
    if method != Method::GET {
        return Err(NotUpgradeReason::MethodNotGet);
    }
    if !header_lists_token(headers, header::UPGRADE, "websocket") {
        return Err(NotUpgradeReason::MissingUpgradeWebSocket);
    }
    if !header_lists_token(headers, header::CONNECTION, "upgrade") {
        return Err(NotUpgradeReason::MissingConnectionUpgrade);
    }
    if !headers.contains_key(header::SEC_WEBSOCKET_KEY) {
        return Err(NotUpgradeReason::MissingWebSocketKey);
    }
    let version_ok = headers
        .get_all(header::SEC_WEBSOCKET_VERSION)
        .iter()
        .any(|v| v.as_bytes().trim_ascii() == b"13");
    if !version_ok {
        return Err(NotUpgradeReason::UnsupportedWebSocketVersion);
    }
    Ok(())
}

/// Whether any line of header `name` is a comma-separated list containing `token`
/// (case-insensitive).
fn header_lists_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_matching() {
        for yes in [
            &b"application/x-protobuf"[..],
            b"Application/X-Protobuf",
            b"application/x-protobuf; charset=utf-8",
            b" application/x-protobuf ;proto=opamp.v1.AgentToServer",
        ] {
            assert!(is_protobuf_content_type(yes), "{yes:?}");
        }
        for no in [
            &b""[..],
            b"application/protobuf",
            b"application/x-protobuf2",
            b"application/json",
            b"text/plain; application/x-protobuf",
        ] {
            assert!(!is_protobuf_content_type(no), "{no:?}");
        }
    }

    #[test]
    fn token_lists() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, "keep-alive".parse().unwrap());
        assert!(!header_lists_token(&headers, header::CONNECTION, "upgrade"));
        headers.append(header::CONNECTION, "foo, Upgrade".parse().unwrap());
        assert!(header_lists_token(&headers, header::CONNECTION, "upgrade"));
    }
}
