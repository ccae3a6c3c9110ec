//! Plain-HTTP transport: body encoding, `Content-Encoding`/`Accept-Encoding` handling and the
//! header names the spec uses.
//!
//! Rules implemented here (spec §"Plain HTTP Transport", §"Plain HTTP Message Size Limits"):
//!
//! * The client POSTs one `AgentToServer` as the request body and gets one `ServerToAgent` as
//!   the response body, both binary protobuf, with `Content-Type: application/x-protobuf`
//!   ([`CONTENT_TYPE_PROTOBUF`]).
//! * Request bodies may be gzip-compressed with `Content-Encoding: gzip`; a server must accept
//!   both gzip and uncompressed bodies ([`ContentEncoding`]). The server should gzip its
//!   response when the request's `Accept-Encoding` allows it ([`accepts_gzip`]).
//! * The client should send `OpAMP-Instance-UID` ([`INSTANCE_UID_HEADER`]) with the
//!   instance_uid as a canonical UUID string.
//! * Every body is limited to [`Limits::max_message_size`](crate::codec::Limits) bytes,
//!   uncompressed: checked before compressing on send, and while inflating on receive so that
//!   a gzip bomb stops at the limit ([`decode_http_body`]). A server answers an oversize request
//!   with 413 ([`Error::http_status`](crate::Error::http_status)); a client discards an oversize
//!   response.
//!
//! ```
//! use opamp_transport::codec::Limits;
//! use opamp_transport::codec::http::{self, ContentEncoding};
//!
//! let limits = Limits::default();
//! let encoding: ContentEncoding = "gzip".parse()?;
//! let body = http::encode_http_body(&(), encoding, &limits)?;
//! let () = http::decode_http_body(&body, encoding, &limits)?;
//! # Ok::<(), opamp_transport::Error>(())
//! ```

mod accept_encoding;
mod body;
mod content_encoding;
mod gzip;

pub use accept_encoding::{accepts_gzip, headers_accept_gzip};
pub use body::{decode_http_body, decode_http_body_bytes, encode_http_body, http_body_data};
pub use content_encoding::ContentEncoding;

use http::{HeaderName, HeaderValue};

/// The media type of OpAMP plain-HTTP bodies; a request with this `Content-Type` is plain HTTP
/// (spec §"Plain HTTP Transport").
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";

/// [`CONTENT_TYPE_PROTOBUF`] as a header value.
pub const CONTENT_TYPE_PROTOBUF_VALUE: HeaderValue =
    HeaderValue::from_static(CONTENT_TYPE_PROTOBUF);

/// The request header that carries the instance_uid as a canonical UUID string, in the
/// spelling of the spec. Header names are case-insensitive; see [`INSTANCE_UID_HEADER_NAME`].
pub const INSTANCE_UID_HEADER: &str = "OpAMP-Instance-UID";

/// [`INSTANCE_UID_HEADER`] as an [`http::HeaderName`] (lower case, as `http` stores names).
pub const INSTANCE_UID_HEADER_NAME: HeaderName = HeaderName::from_static("opamp-instance-uid");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constants_agree() {
        assert!(
            INSTANCE_UID_HEADER_NAME
                .as_str()
                .eq_ignore_ascii_case(INSTANCE_UID_HEADER)
        );
        assert_eq!(
            HeaderName::from_bytes(INSTANCE_UID_HEADER.as_bytes()).unwrap(),
            INSTANCE_UID_HEADER_NAME
        );
        assert_eq!(CONTENT_TYPE_PROTOBUF_VALUE, CONTENT_TYPE_PROTOBUF);
    }
}
