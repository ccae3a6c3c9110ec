//! Server side of the plain-HTTP transport: helpers for a hyper 1 service (no routing policy).
//!
//! A handler for a plain-HTTP request ([`crate::codec::classify::TransportKind::PlainHttp`])
//! calls [`read_request`] to get the `AgentToServer`, answers with [`protobuf_response`], and
//! turns failures into [`error_response`]s (or [`error_response_for`] to pick the status the
//! spec asks for: 413, 415, 400, ...).

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;

use super::body::{read_capped, wire_cap};
use crate::Error;
use crate::codec::Limits;
use crate::codec::http::{
    CONTENT_TYPE_PROTOBUF_VALUE, ContentEncoding, decode_http_body_bytes, encode_http_body,
};
use crate::codec::retry_after::format_retry_after;

/// The body type of every response built here (including the WebSocket `101`).
pub type ServerHttpBody = Full<Bytes>;

/// Reads and decodes a plain-HTTP OpAMP request body.
///
/// The body is decoded per its `Content-Encoding` (gzip or identity); the bytes on the wire
/// and the decompressed message are both capped by `limits` (an announced `Content-Length`
/// over the cap is refused before reading).
///
/// Errors, with their [`Error::http_status`]: [`Error::MessageTooLarge`] (413),
/// [`Error::UnsupportedContentEncoding`] (415), [`Error::InvalidGzip`] and [`Error::Decode`]
/// (400); [`Error::BodyRead`] if the connection failed while reading (no status: the
/// connection is gone).
pub async fn read_request<M, B>(request: Request<B>, limits: &Limits) -> Result<(Parts, M), Error>
where
    M: prost::Message + Default,
    B: Body,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let encoding = ContentEncoding::from_headers(&parts.headers)?;
    let body = read_capped(body, &parts.headers, wire_cap(encoding, limits), limits).await?;
    let message = decode_http_body_bytes(body, encoding, limits)?;
    Ok((parts, message))
}

/// A `200 OK` response carrying `msg` (`ServerToAgent`), gzip-compressed with
/// `Content-Encoding: gzip` when `accept_gzip` (see
/// [`crate::codec::http::headers_accept_gzip`] on the request headers).
///
/// Fails with [`Error::MessageTooLarge`] when `msg` is over the limit: the spec says such a
/// response must not be sent (answer [`error_response`] with 500 and record the drop).
pub fn protobuf_response<M: prost::Message>(
    msg: &M,
    accept_gzip: bool,
    limits: &Limits,
) -> Result<Response<ServerHttpBody>, Error> {
    let encoding = if accept_gzip {
        ContentEncoding::Gzip
    } else {
        ContentEncoding::Identity
    };
    let body = encode_http_body(msg, encoding, limits)?;
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, CONTENT_TYPE_PROTOBUF_VALUE);
    if let Some(value) = encoding.header_value() {
        headers.insert(header::CONTENT_ENCODING, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

/// An empty response with `status` (e.g. 400, 401, 413, 415, 429, 503) and, when given, a
/// `Retry-After` in seconds (rounded up) for 429/503 (spec §"Throttling").
pub fn error_response(
    status: StatusCode,
    retry_after: Option<Duration>,
) -> Response<ServerHttpBody> {
    let mut response = Response::new(Full::default());
    *response.status_mut() = status;
    if let Some(wait) = retry_after {
        // Delta-seconds are ASCII digits: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&format_retry_after(wait)) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// The error response for a failed request: [`Error::http_status`] (413, 415, 400, ...), or
/// 500 for errors that are not the request's fault.
pub fn error_response_for(error: &Error) -> Response<ServerHttpBody> {
    error_response(
        error
            .http_status()
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Probe {
        #[prost(string, tag = "1")]
        name: String,
    }

    #[tokio::test]
    async fn response_is_gzipped_only_when_accepted() {
        let msg = Probe {
            name: "x".repeat(1000),
        };
        let limits = Limits::default();
        let plain = protobuf_response(&msg, false, &limits).unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let gz = protobuf_response(&msg, true, &limits).unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let (parts, body) = gz.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert!(bytes.len() < 1000);
        let encoding = ContentEncoding::from_headers(&parts.headers).unwrap();
        let back: Probe = decode_http_body_bytes(bytes, encoding, &limits).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn retry_after_is_rounded_up_to_seconds() {
        let response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_millis(1500)),
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert!(
            error_response(StatusCode::UNAUTHORIZED, None)
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }

    #[tokio::test]
    async fn unsupported_encoding_is_415() {
        let request = Request::post("/v1/opamp")
            .header(header::CONTENT_ENCODING, "br")
            .body(Full::new(Bytes::from_static(b"\x0a\x01x")))
            .unwrap();
        let err = read_request::<Probe, _>(request, &Limits::default())
            .await
            .unwrap_err();
        assert_eq!(
            error_response_for(&err).status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
