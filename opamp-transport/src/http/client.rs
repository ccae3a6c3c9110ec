//! Client side of the plain-HTTP transport: one `POST` per message exchange, over a keep-alive
//! connection pool (spec §"Plain HTTP Transport").

use std::fmt;
use std::time::Duration;

#[cfg(feature = "tls")]
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::{read_capped, wire_cap};
use super::connector::Connector;
use crate::Error;
use crate::codec::Limits;
use crate::codec::http::{
    CONTENT_TYPE_PROTOBUF_VALUE, ContentEncoding, INSTANCE_UID_HEADER_NAME, decode_http_body_bytes,
    encode_http_body,
};
use crate::stream::{Target, TlsClientConfig};

/// Settings of an [`HttpClient`] (its connection pool).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpClientSettings {
    /// Limit for opening one connection (TCP and TLS). Default 30 s.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host. Default 2 (an OpAMP client polls one server).
    pub pool_max_idle_per_host: usize,
    /// Largest buffer for reading a response's status line and headers. Default 64 KiB
    /// (hyper's minimum is 8 KiB).
    pub max_header_buf_size: usize,
    /// TLS client configuration for `https://` URLs; `None` uses
    /// [`crate::tls::TlsClientSettings::default`], built once with the client.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for HttpClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 2,
            max_header_buf_size: 64 * 1024,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl HttpClientSettings {
    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Sets how long idle connections are kept.
    #[must_use]
    pub fn with_pool_idle_timeout(mut self, pool_idle_timeout: Duration) -> Self {
        self.pool_idle_timeout = pool_idle_timeout;
        self
    }

    /// Sets how many idle connections are kept per host.
    #[must_use]
    pub fn with_pool_max_idle_per_host(mut self, pool_max_idle_per_host: usize) -> Self {
        self.pool_max_idle_per_host = pool_max_idle_per_host;
        self
    }

    /// Sets the response header buffer limit.
    #[must_use]
    pub fn with_max_header_buf_size(mut self, max_header_buf_size: usize) -> Self {
        self.max_header_buf_size = max_header_buf_size;
        self
    }

    /// Uses this TLS client configuration for `https://` URLs.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// Per-request options of [`HttpClient::round_trip`].
///
/// ```
/// use opamp_transport::codec::http::ContentEncoding;
/// use opamp_transport::http::HttpRequestOptions;
///
/// let options = HttpRequestOptions::default()
///     .with_compression(ContentEncoding::Gzip)
///     .with_instance_uid("0190b3b2-6b1e-7a39-b3ad-2f1c9a6f4e11");
/// assert_eq!(options.compression, ContentEncoding::Gzip);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpRequestOptions {
    /// Size limit of the request (before compression) and of the response (after
    /// decompression).
    pub limits: Limits,
    /// Compression of the request body (`Content-Encoding`). Default identity.
    pub compression: ContentEncoding,
    /// Whether to send `Accept-Encoding: gzip` so the server may compress its response.
    /// Default true.
    pub accept_gzip: bool,
    /// The agent's instance UID as a canonical UUID string, sent as `OpAMP-Instance-UID`.
    pub instance_uid: Option<String>,
    /// Extra headers (e.g. `Authorization`). `Content-Type`, `Content-Encoding`,
    /// `Content-Length`, `Transfer-Encoding` and `Host` are set by the client and skipped here.
    pub headers: HeaderMap,
    /// Limit for the whole exchange: connecting (if no pooled connection is free), sending,
    /// and reading the response. Default 30 s.
    pub timeout: Duration,
}

impl Default for HttpRequestOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            compression: ContentEncoding::Identity,
            accept_gzip: true,
            instance_uid: None,
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl HttpRequestOptions {
    /// Sets the size limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the request body compression.
    #[must_use]
    pub fn with_compression(mut self, compression: ContentEncoding) -> Self {
        self.compression = compression;
        self
    }

    /// Sets whether gzip responses are accepted.
    #[must_use]
    pub fn with_accept_gzip(mut self, accept_gzip: bool) -> Self {
        self.accept_gzip = accept_gzip;
        self
    }

    /// Sets the `OpAMP-Instance-UID` header value (a canonical UUID string).
    #[must_use]
    pub fn with_instance_uid(mut self, instance_uid: impl Into<String>) -> Self {
        self.instance_uid = Some(instance_uid.into());
        self
    }

    /// Replaces the extra headers.
    #[must_use]
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Adds one extra header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the timeout of the whole exchange.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A decoded 2xx response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpResponse<M> {
    /// The status (2xx).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The decoded message (`ServerToAgent` for an OpAMP client).
    pub message: M,
}

/// An HTTP client for plain-HTTP OpAMP: hyper 1 with a keep-alive pool, `http://` and
/// `https://` (rustls).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// Headers the client sets itself.
fn is_reserved_header(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::CONTENT_ENCODING
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::HOST
}

impl HttpClient {
    /// A client with these settings. Builds the default TLS configuration now when none is
    /// given; if that fails (e.g. no root feature enabled), `https://` requests fail with the
    /// same error while `http://` requests work.
    pub fn new(settings: &HttpClientSettings) -> Self {
        let connector = Connector {
            tls: tls_config(settings),
            connect_timeout: settings.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .http1_max_buf_size(settings.max_header_buf_size.max(8 * 1024))
            .build(connector);
        Self { client }
    }

    /// Sends `request` in a `POST` to `url` and decodes the response.
    ///
    /// The body is the protobuf of `request` (gzip-compressed with `Content-Encoding: gzip` if
    /// [`HttpRequestOptions::compression`] says so), with `Content-Type:
    /// application/x-protobuf`, `Accept-Encoding: gzip`, `OpAMP-Instance-UID` and the extra
    /// headers. The response is read up to the limit (compressed and decompressed).
    ///
    /// Errors: [`Error::MessageTooLarge`] for a request over the limit (nothing is sent) or a
    /// response over it (discarded, spec §"Plain HTTP Message Size Limits");
    /// [`Error::HttpStatus`] for a non-2xx status, with `Retry-After` parsed (seconds or
    /// HTTP-date) for 429/503 handling; [`Error::Timeout`]; connection errors
    /// ([`Error::Io`], `Error::Tls`, [`Error::HttpClient`]); the codec's decoding errors.
    pub async fn round_trip<Req, Resp>(
        &self,
        url: &str,
        request: &Req,
        options: &HttpRequestOptions,
    ) -> Result<HttpResponse<Resp>, Error>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let (uri, _) = Target::parse_url(url, ["http", "https"], "scheme must be http or https")?;
        let body = encode_http_body(request, options.compression, &options.limits)?;
        let request = build_request(uri, body, options)?;
        match tokio::time::timeout(options.timeout, self.exchange(request, &options.limits)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation: "HTTP request",
                after: options.timeout,
            }),
        }
    }

    async fn exchange<Resp>(
        &self,
        request: Request<Full<Bytes>>,
        limits: &Limits,
    ) -> Result<HttpResponse<Resp>, Error>
    where
        Resp: prost::Message + Default,
    {
        let response = self
            .client
            .request(request)
            .await
            .map_err(from_client_error)?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            // The body is dropped unread (the connection then leaves the pool).
            return Err(Error::HttpStatus {
                status: parts.status,
                retry_after: crate::ws::retry_after(&parts.headers),
                headers: Box::new(parts.headers),
            });
        }
        let encoding = ContentEncoding::from_headers(&parts.headers)?;
        let body = read_capped(body, &parts.headers, wire_cap(encoding, limits), limits).await?;
        let message = decode_http_body_bytes(body, encoding, limits)?;
        Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            message,
        })
    }
}

fn build_request(
    uri: Uri,
    body: Bytes,
    options: &HttpRequestOptions,
) -> Result<Request<Full<Bytes>>, Error> {
    let mut request = Request::post(uri)
        .body(Full::new(body))
        .map_err(|_| Error::InvalidUrl {
            url: String::new(),
            reason: "cannot build a request for this URI",
        })?;
    let headers = request.headers_mut();
    for (name, value) in &options.headers {
        if is_reserved_header(name) {
            tracing::debug!(%name, "skipping a custom header the HTTP client sets");
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(header::CONTENT_TYPE, CONTENT_TYPE_PROTOBUF_VALUE);
    if let Some(encoding) = options.compression.header_value() {
        headers.insert(header::CONTENT_ENCODING, encoding);
    }
    if options.accept_gzip {
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Some(uid) = &options.instance_uid {
        let value = HeaderValue::from_str(uid).map_err(Error::InvalidHeaderValue)?;
        headers.insert(INSTANCE_UID_HEADER_NAME, value);
    }
    Ok(request)
}

#[cfg(feature = "tls")]
fn tls_config(settings: &HttpClientSettings) -> TlsClientConfig {
    let config = match &settings.tls {
        Some(tls) => Some(Arc::clone(tls)),
        None => match crate::tls::TlsClientSettings::default().build() {
            Ok(tls) => Some(tls),
            Err(err) => {
                tracing::debug!(%err, "no default TLS configuration; https:// will fail");
                None
            }
        },
    };
    TlsClientConfig { config }
}

#[cfg(not(feature = "tls"))]
fn tls_config(_settings: &HttpClientSettings) -> TlsClientConfig {
    TlsClientConfig::default()
}

/// Turns a pool error back into the connector's typed error when that is what failed.
fn from_client_error(err: hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    if let Some(inner) = err.source().and_then(|s| s.downcast_ref::<Error>()) {
        match inner {
            Error::Timeout { operation, after } => {
                return Error::Timeout {
                    operation,
                    after: *after,
                };
            }
            Error::InvalidUrl { url, reason } => {
                return Error::InvalidUrl {
                    url: url.clone(),
                    reason,
                };
            }
            Error::InvalidTlsConfig(reason) => return Error::InvalidTlsConfig(reason),
            Error::TlsNotEnabled => return Error::TlsNotEnabled,
            #[cfg(feature = "tls")]
            Error::Tls(tls) => return Error::Tls(tls.clone()),
            Error::Io(io) => return Error::Io(std::io::Error::new(io.kind(), io.to_string())),
            _ => {}
        }
    }
    Error::HttpClient(err)
}
