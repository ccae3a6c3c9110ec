//! The crate's one error type.
//!
//! Variants fall in two groups, kept apart as rustls does:
//!
//! * **Peer misbehaviour**: the bytes or the request the other side sent break a rule of the
//!   spec (a bad WebSocket header, a malformed protobuf, a gzip body that does not inflate, a
//!   message over the size limit, a request that is neither plain HTTP nor a WebSocket upgrade).
//!   [`Error::is_peer_misbehaviour`] tells them apart and [`Error::http_status`] gives the status
//!   a server answers with.
//! * **Local problems**: a message this side wanted to send is over the limit
//!   ([`Error::MessageTooLarge`] is used in both directions), IO failures.

/// Everything that can go wrong while framing, sending or receiving an OpAMP message.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message (after decompression on receive, before compression on send) is larger than
    /// the configured limit.
    ///
    /// On receive this is peer misbehaviour (spec §"WebSocket Message Size Limits": close with
    /// 1009; §"Plain HTTP Message Size Limits": answer 413 and the client must not retry); on
    /// send the message must be dropped and the drop recorded.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message, or the number of bytes seen when reading stopped at the limit.
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    // ---- codec: WebSocket framing (peer misbehaviour) ----
    /// Peer misbehaviour: a WebSocket message had no bytes at all, so not even the varint
    /// header (spec §"WebSocket Message Format": the header takes 1 to 10 bytes).
    #[error("empty WebSocket message: the OpAMP header is missing")]
    MissingWsHeader,
    /// Peer misbehaviour: the WebSocket message ended inside the varint header (the last byte
    /// still had its continuation bit set).
    #[error("WebSocket message ends inside the OpAMP varint header")]
    TruncatedWsHeader,
    /// Peer misbehaviour: the varint header is longer than 10 bytes or does not fit in 64 bits.
    #[error("malformed OpAMP varint header: longer than 10 bytes or over 64 bits")]
    MalformedWsHeader,
    /// Peer misbehaviour: the varint header is not 0, the only value this version of the spec
    /// defines (§"WebSocket Message Format" says such a message is malformed).
    #[error("OpAMP WebSocket header is {0}, expected 0")]
    NonZeroWsHeader(u64),

    // ---- codec: message bodies (peer misbehaviour) ----
    /// Peer misbehaviour: the protobuf `data` of a message does not decode.
    #[error("invalid protobuf message: {0}")]
    Decode(#[source] prost::DecodeError),
    /// Peer misbehaviour: a body sent with `Content-Encoding: gzip` is not valid gzip.
    #[error("invalid gzip body: {0}")]
    InvalidGzip(#[source] std::io::Error),
    /// Peer misbehaviour: a `Content-Encoding` other than `gzip` or `identity` (spec §"Plain HTTP
    /// Transport" requires only these two). Holds the header value, cut to at most 128 bytes.
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedContentEncoding(String),

    // ---- codec: request classification (peer misbehaviour, server side) ----
    /// Peer misbehaviour: a plain-HTTP OpAMP request (`Content-Type: application/x-protobuf`)
    /// whose method is not `POST` (answer 405).
    #[error("plain-HTTP OpAMP request must use POST, not {0}")]
    MethodNotAllowed(http::Method),
    /// Peer misbehaviour: the request is not a WebSocket upgrade and its `Content-Type` is not
    /// `application/x-protobuf` (answer 415). Holds the header value, cut to at most 128 bytes.
    #[error("unsupported Content-Type {0:?}: expected application/x-protobuf")]
    UnsupportedContentType(String),
    /// Peer misbehaviour: the request has no `Content-Type` (so it is not plain HTTP) and is not
    /// a valid WebSocket upgrade either (answer 400, or 426 for a wrong WebSocket version).
    #[error("request is neither plain-HTTP OpAMP nor a WebSocket upgrade: {0}")]
    UnsupportedRequest(crate::codec::classify::NotUpgradeReason),

    // ---- IO layer (ws, http, tls): peer misbehaviour ----
    /// Peer misbehaviour: a WebSocket text message arrived; OpAMP sends binary messages only
    /// (spec §"WebSocket Message Format"). The message is dropped, the connection stays open.
    #[error("received a WebSocket text message; OpAMP uses binary messages")]
    UnexpectedTextFrame,

    // ---- IO layer (ws, http, tls): the peer's answer ----
    /// The server answered with a status other than the expected one: a refused WebSocket
    /// upgrade (not 101), or a plain-HTTP response that is not 2xx. 401 means authentication
    /// failed; 429 and 503 mean throttling, and `retry_after` (parsed from `Retry-After`, in
    /// seconds or as an HTTP-date) tells when to retry (spec §"Throttling").
    #[error("server answered HTTP {status}")]
    HttpStatus {
        /// The response status.
        status: http::StatusCode,
        /// The parsed `Retry-After` header, if present and valid.
        retry_after: Option<std::time::Duration>,
        /// All response headers.
        headers: Box<http::HeaderMap>,
    },

    // ---- IO layer (ws, http, tls): connection problems ----
    /// An IO error on the connection (connection refused, reset, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed: a protocol violation by the peer or a broken handshake.
    #[error("WebSocket error: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// hyper failed on a connection (e.g. an upgrade that never happened).
    #[error("HTTP error: {0}")]
    Hyper(#[source] hyper::Error),
    /// The HTTP client failed to send a request or receive its response.
    #[error("HTTP client error: {0}")]
    HttpClient(#[source] hyper_util::client::legacy::Error),
    /// Reading a request or response body failed (the connection broke midway).
    #[error("reading the HTTP body failed: {0}")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection is closed: sending after a close, or receiving after a fatal error.
    #[error("connection closed")]
    ConnectionClosed,
    /// An operation did not finish in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What timed out, e.g. "WebSocket connect".
        operation: &'static str,
        /// The limit that was reached.
        after: std::time::Duration,
    },

    // ---- IO layer (ws, http, tls): local misuse ----
    /// A URL is not usable: not a URI, wrong scheme, no host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header value given by the caller (e.g. the instance UID) is not a valid header value.
    #[error("invalid header value: {0}")]
    InvalidHeaderValue(#[source] http::header::InvalidHeaderValue),
    /// A `wss://` or `https://` URL was used but the crate was built without the `tls` feature.
    #[error("TLS support is not enabled (feature `tls`)")]
    TlsNotEnabled,
    /// TLS failed: a handshake error (e.g. an untrusted certificate, or a missing client
    /// certificate where one is required) or a configuration rustls refused.
    #[cfg(feature = "tls")]
    #[error("TLS error: {0}")]
    Tls(#[source] rustls::Error),
    /// The client certificate verifier of a TLS server could not be built (e.g. no CA).
    #[cfg(feature = "tls")]
    #[error("invalid client certificate verifier: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    /// A TLS setting cannot work (no trust anchor, no crypto provider, an empty PEM).
    #[error("invalid TLS configuration: {0}")]
    InvalidTlsConfig(&'static str),
    /// PEM data (certificate, key or CA) does not parse.
    #[error("invalid PEM {what}: {source}")]
    Pem {
        /// Which PEM: "certificate chain", "CA certificate", "private key".
        what: &'static str,
        /// The parse error.
        source: rustls_pki_types::pem::Error,
    },
    /// A file (e.g. a PEM file) could not be read.
    #[error("cannot read {path:?}: {source}")]
    ReadFile {
        /// The file.
        path: std::path::PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether this is [`Error::MessageTooLarge`] (WebSocket close code 1009, HTTP 413).
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::MessageTooLarge { .. })
    }

    /// Whether the error comes from what the peer sent (malformed framing, body or request),
    /// as opposed to a local or IO problem. [`Error::MessageTooLarge`] counts as peer
    /// misbehaviour here because on send it is raised before anything leaves this side.
    pub fn is_peer_misbehaviour(&self) -> bool {
        matches!(
            self,
            Error::MessageTooLarge { .. }
                | Error::MissingWsHeader
                | Error::TruncatedWsHeader
                | Error::MalformedWsHeader
                | Error::NonZeroWsHeader(_)
                | Error::Decode(_)
                | Error::InvalidGzip(_)
                | Error::UnsupportedContentEncoding(_)
                | Error::MethodNotAllowed(_)
                | Error::UnsupportedContentType(_)
                | Error::UnsupportedRequest(_)
                | Error::UnexpectedTextFrame
        )
    }

    /// The HTTP status a server answers a request with when handling it failed with this
    /// error, or `None` if the error does not map to a request problem.
    ///
    /// 413 for an oversize body, 415 for an unknown `Content-Type`/`Content-Encoding`, 405 for a
    /// plain-HTTP request that is not `POST`, 426 for a WebSocket version other than 13, and
    /// 400 for the other malformed requests and bodies.
    pub fn http_status(&self) -> Option<http::StatusCode> {
        use crate::codec::classify::NotUpgradeReason;
        use http::StatusCode;
        match self {
            Error::MessageTooLarge { .. } => Some(StatusCode::PAYLOAD_TOO_LARGE),
            Error::UnsupportedContentEncoding(_) | Error::UnsupportedContentType(_) => {
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            Error::MethodNotAllowed(_) => Some(StatusCode::METHOD_NOT_ALLOWED),
            Error::UnsupportedRequest(NotUpgradeReason::UnsupportedWebSocketVersion) => {
                Some(StatusCode::UPGRADE_REQUIRED)
            }
            Error::UnsupportedRequest(_)
            | Error::Decode(_)
            | Error::InvalidGzip(_)
            | Error::MissingWsHeader
            | Error::TruncatedWsHeader
            | Error::MalformedWsHeader
            | Error::NonZeroWsHeader(_) => Some(StatusCode::BAD_REQUEST),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl From<prost::DecodeError> for Error {
    fn from(err: prost::DecodeError) -> Self {
        Error::Decode(err)
    }
}
