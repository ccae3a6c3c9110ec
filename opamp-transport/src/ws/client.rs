//! Client side: open a WebSocket connection to an OpAMP server (`ws://` or `wss://`).

use std::time::{Duration, SystemTime};

#[cfg(feature = "tls")]
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Response, header};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{WsConfig, WsConnection};
use crate::Error;
use crate::codec::retry_after::parse_retry_after;
use crate::stream::{self, MaybeTlsStream, Target};

/// A client-side WebSocket connection.
pub type ClientWsConnection = WsConnection<MaybeTlsStream>;

/// How to open a client WebSocket connection.
///
/// ```
/// use std::time::Duration;
/// use opamp_transport::ws::WsConnectOptions;
///
/// let options = WsConnectOptions::default()
///     .with_header(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer t0k3n"))
///     .with_connect_timeout(Duration::from_secs(5));
/// assert_eq!(options.headers.len(), 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WsConnectOptions {
    /// Connection settings (limits, buffers).
    pub config: WsConfig,
    /// Extra headers sent with every upgrade request (e.g. `Authorization`). The headers the
    /// WebSocket handshake itself sets (`Host`, `Connection`, `Upgrade`, `Sec-WebSocket-*`)
    /// cannot be replaced and are skipped.
    pub headers: HeaderMap,
    /// Limit for the TCP connection, TLS handshake and WebSocket upgrade together. Default 30 s.
    pub connect_timeout: Duration,
    /// TLS client configuration for `wss://` URLs; `None` builds one from
    /// [`crate::tls::TlsClientSettings::default`] on every connect (set it to reuse one).
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for WsConnectOptions {
    fn default() -> Self {
        Self {
            config: WsConfig::default(),
            headers: HeaderMap::new(),
            connect_timeout: Duration::from_secs(30),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl WsConnectOptions {
    /// Sets the connection settings.
    #[must_use]
    pub fn with_config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the extra headers.
    #[must_use]
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Adds one extra header (kept next to other values of the same name).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// Uses this TLS client configuration for `wss://` URLs.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    fn tls_config(&self) -> stream::TlsClientConfig {
        stream::TlsClientConfig {
            #[cfg(feature = "tls")]
            config: self.tls.clone(),
        }
    }
}

/// Headers that the handshake sets itself.
fn is_handshake_header(name: &HeaderName) -> bool {
    name == header::HOST
        || name == header::CONNECTION
        || name == header::UPGRADE
        || name == header::SEC_WEBSOCKET_KEY
        || name == header::SEC_WEBSOCKET_VERSION
        || name == header::SEC_WEBSOCKET_EXTENSIONS
        || name == header::SEC_WEBSOCKET_PROTOCOL
}

/// Opens a WebSocket connection to `url` (`ws://` or `wss://`).
///
/// Returns the connection and the server's `101 Switching Protocols` response (its body, if
/// any, dropped). When the server refuses the upgrade (e.g. 401 on failed authentication, or
/// 429/503 when overloaded, spec §"Throttling"), the error is [`Error::HttpStatus`] with the
/// status, the parsed `Retry-After` and the response headers.
///
/// Other errors: [`Error::InvalidUrl`], [`Error::Io`] (connection refused, ...),
/// `Error::Tls` (handshake failed), [`Error::Timeout`] after
/// [`WsConnectOptions::connect_timeout`], [`Error::WebSocket`] for a broken handshake.
pub async fn connect(
    url: &str,
    options: &WsConnectOptions,
) -> Result<(ClientWsConnection, Response<()>), Error> {
    let (uri, target) = Target::parse_url(url, ["ws", "wss"], "scheme must be ws or wss")?;
    let mut request = uri
        .into_client_request()
        .map_err(super::connection::from_ws_error)?;
    for (name, value) in &options.headers {
        if is_handshake_header(name) {
            tracing::debug!(%name, "skipping a custom header the WebSocket handshake sets");
            continue;
        }
        request.headers_mut().append(name.clone(), value.clone());
    }
    let config = options.config;
    let tls = options.tls_config();
    let attempt = async move {
        let stream = stream::connect(&target, &tls).await?;
        tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(config.websocket_config()),
        )
        .await
        .map_err(super::connection::from_ws_error)
    };
    let (ws, response) = tokio::time::timeout(options.connect_timeout, attempt)
        .await
        .map_err(|_| Error::Timeout {
            operation: "WebSocket connect",
            after: options.connect_timeout,
        })??;
    tracing::debug!(url, status = %response.status(), "WebSocket connected");
    Ok((
        WsConnection::from_websocket(ws, config),
        response.map(|_| ()),
    ))
}

/// The error for an upgrade the server refused with a non-101 response.
pub(crate) fn refused_upgrade<B>(response: &Response<B>) -> Error {
    Error::HttpStatus {
        status: response.status(),
        retry_after: retry_after(response.headers()),
        headers: Box::new(response.headers().clone()),
    }
}

/// The `Retry-After` of a response, if present and valid.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}
