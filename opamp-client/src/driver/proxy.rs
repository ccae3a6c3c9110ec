//! Connections through an HTTP `CONNECT` proxy (spec §"ProxyConnectionSettings Message"):
//! a tunnel through the proxy, then TLS (for `wss`/`https`) and the WebSocket upgrade or one
//! plain-HTTP exchange over it.
//!
//! `opamp-transport` connects directly only, so the tunnel lives here. Proxies are given as
//! `http://host[:port]` or `host:port`; `https://` and SOCKS proxies are refused by the
//! settings validation ([`ConnectionSettingsError::UnsupportedProxy`]).
//!
//! [`ConnectionSettingsError::UnsupportedProxy`]: crate::connection_settings::ConnectionSettingsError::UnsupportedProxy

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::MaybeTlsStream;
use opamp_transport::codec::Limits;
use opamp_transport::codec::http::{
    CONTENT_TYPE_PROTOBUF_VALUE, ContentEncoding, INSTANCE_UID_HEADER_NAME, decode_http_body_bytes,
    encode_http_body,
};
use opamp_transport::tls::rustls::ClientConfig;
use opamp_transport::ws::{ClientWsConnection, WsConfig, WsConnection};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Error;
use crate::connection_settings::ProxyParams;

/// Largest proxy response head read (status line and headers).
const MAX_PROXY_RESPONSE_HEAD: usize = 16 * 1024;

fn proxy_error(reason: impl Into<String>) -> Error {
    Error::Proxy(reason.into())
}

/// Host, port and whether TLS is used, of an OpAMP endpoint.
fn endpoint_target(endpoint: &str) -> Result<(String, u16, bool), Error> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|_| Error::InvalidSettings(format!("invalid endpoint {endpoint:?}")))?;
    let tls = matches!(
        uri.scheme_str().map(str::to_ascii_lowercase).as_deref(),
        Some("wss" | "https")
    );
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::InvalidSettings(format!("endpoint {endpoint:?} has no host")))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host.to_owned(), port, tls))
}

/// Opens a `CONNECT` tunnel to `host:port` through `proxy`.
async fn tunnel(proxy: &ProxyParams, host: &str, port: u16) -> Result<TcpStream, Error> {
    let (proxy_host, proxy_port) = crate::connection_settings::proxy_address(&proxy.url)?;
    let io = |err: std::io::Error| proxy_error(format!("proxy {}: {err}", proxy.url));
    let mut tcp = TcpStream::connect((proxy_host.trim_matches(['[', ']']), proxy_port))
        .await
        .map_err(io)?;
    tcp.set_nodelay(true).map_err(io)?;
    let authority = format!("{host}:{port}");
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in &proxy.connect_headers {
        // Checked so that nothing can end the request head early.
        let valid =
            HeaderName::from_bytes(name.as_bytes()).is_ok() && HeaderValue::from_str(value).is_ok();
        if !valid {
            return Err(proxy_error(format!("invalid CONNECT header {name:?}")));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.map_err(io)?;

    // The proxy answers with a head only; the tunnel carries nothing until the client speaks.
    let mut response = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let end = loop {
        let n = tcp.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(proxy_error("the proxy closed the connection"));
        }
        response.extend_from_slice(&chunk[..n]);
        if let Some(pos) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if response.len() > MAX_PROXY_RESPONSE_HEAD {
            return Err(proxy_error("the proxy response head is too large"));
        }
    };
    if end != response.len() {
        return Err(proxy_error(
            "the proxy sent data before the tunnel was used",
        ));
    }
    let status_line = response
        .split(|b| *b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version_ok = parts.next().is_some_and(|v| v.starts_with("HTTP/1."));
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match (version_ok, status) {
        (true, Some(200)) => Ok(tcp),
        (true, Some(status)) => Err(proxy_error(format!(
            "the proxy refused the tunnel: {status}"
        ))),
        _ => Err(proxy_error(
            "the proxy answered with something other than HTTP/1",
        )),
    }
}

/// A tunnel to `endpoint`, with TLS when the endpoint asks for it.
async fn open(
    endpoint: &str,
    proxy: &ProxyParams,
    tls: Option<Arc<ClientConfig>>,
) -> Result<MaybeTlsStream, Error> {
    let (host, port, use_tls) = endpoint_target(endpoint)?;
    let tcp = tunnel(proxy, &host, port).await?;
    if !use_tls {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    let config = tls.ok_or_else(|| Error::InvalidSettings("no TLS configuration".into()))?;
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| Error::InvalidSettings(format!("invalid server name {host:?}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|err| Error::Transport(opamp_transport::Error::Io(err)))?;
    Ok(MaybeTlsStream::Tls(Box::new(stream)))
}

fn timed_out(operation: &'static str, after: Duration) -> Error {
    Error::Transport(opamp_transport::Error::Timeout { operation, after })
}

/// A WebSocket connection to `endpoint` through `proxy`.
pub(crate) async fn ws_connect(
    endpoint: &str,
    proxy: &ProxyParams,
    tls: Option<Arc<ClientConfig>>,
    headers: HeaderMap,
    config: WsConfig,
    timeout: Duration,
) -> Result<ClientWsConnection, Error> {
    let attempt = async {
        let stream = open(endpoint, proxy, tls).await?;
        let mut request = endpoint
            .into_client_request()
            .map_err(|err| Error::InvalidSettings(format!("invalid endpoint: {err}")))?;
        for (name, value) in &headers {
            let handshake = [
                header::HOST,
                header::CONNECTION,
                header::UPGRADE,
                header::SEC_WEBSOCKET_KEY,
                header::SEC_WEBSOCKET_VERSION,
                header::SEC_WEBSOCKET_EXTENSIONS,
                header::SEC_WEBSOCKET_PROTOCOL,
            ];
            if !handshake.contains(name) {
                request.headers_mut().append(name.clone(), value.clone());
            }
        }
        let (ws, _response) = tokio_tungstenite::client_async_with_config(
            request,
            stream,
            Some(config.websocket_config()),
        )
        .await
        .map_err(|err| match err {
            tungstenite::Error::Http(response) => {
                Error::from_status(response.status(), retry_after(response.headers()))
            }
            other => Error::Proxy(format!("WebSocket handshake through the proxy: {other}")),
        })?;
        Ok(WsConnection::from_websocket(ws, config))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| timed_out("WebSocket connect through a proxy", timeout))?
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    opamp_transport::codec::parse_retry_after(value, std::time::SystemTime::now())
}

/// What one plain-HTTP exchange through a proxy needs.
pub(crate) struct HttpExchange<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) proxy: &'a ProxyParams,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) headers: HeaderMap,
    pub(crate) instance_uid: String,
    pub(crate) compression: ContentEncoding,
    pub(crate) limits: Limits,
    pub(crate) timeout: Duration,
}

/// One `POST` through a fresh tunnel (no pooling: polls are far apart).
pub(crate) async fn http_round_trip(
    exchange: HttpExchange<'_>,
    msg: &AgentToServer,
) -> Result<ServerToAgent, Error> {
    let timeout = exchange.timeout;
    tokio::time::timeout(timeout, http_exchange(exchange, msg))
        .await
        .map_err(|_| timed_out("HTTP request through a proxy", timeout))?
}

async fn http_exchange(
    exchange: HttpExchange<'_>,
    msg: &AgentToServer,
) -> Result<ServerToAgent, Error> {
    let uri: Uri = exchange
        .endpoint
        .parse()
        .map_err(|_| Error::InvalidSettings(format!("invalid endpoint {:?}", exchange.endpoint)))?;
    let body = encode_http_body(msg, exchange.compression, &exchange.limits)?;
    let stream = open(exchange.endpoint, exchange.proxy, exchange.tls).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| Error::Proxy(format!("HTTP through the proxy: {err}")))?;
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let mut request = Request::post(path)
        .body(Full::new(body))
        .map_err(|err| Error::InvalidSettings(format!("cannot build the request: {err}")))?;
    let headers = request.headers_mut();
    for (name, value) in &exchange.headers {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host).map_err(|_| Error::InvalidSettings("invalid host".into()))?,
    );
    headers.insert(header::CONTENT_TYPE, CONTENT_TYPE_PROTOBUF_VALUE);
    headers.remove(header::CONTENT_ENCODING);
    if let Some(value) = exchange.compression.header_value() {
        headers.insert(header::CONTENT_ENCODING, value);
    }
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    if let Ok(value) = HeaderValue::from_str(&exchange.instance_uid) {
        headers.insert(INSTANCE_UID_HEADER_NAME, value);
    }
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| Error::Proxy(format!("HTTP through the proxy: {err}")))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Err(Error::from_status(
                parts.status,
                retry_after(&parts.headers),
            ));
        }
        let encoding = ContentEncoding::from_headers(&parts.headers)?;
        let limit = exchange.limits.max_message_size;
        let bytes: Bytes = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<http_body_util::LengthLimitError>() {
                    Error::Transport(opamp_transport::Error::MessageTooLarge {
                        size: limit as u64 + 1,
                        limit: limit as u64,
                    })
                } else {
                    Error::Proxy(format!("reading the response through the proxy: {err}"))
                }
            })?
            .to_bytes();
        Ok(decode_http_body_bytes(bytes, encoding, &exchange.limits)?)
    }
    .await;
    connection.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_targets() {
        assert_eq!(
            endpoint_target("wss://h/v1/opamp").unwrap(),
            ("h".into(), 443, true)
        );
        assert_eq!(
            endpoint_target("http://h:4320/v1/opamp").unwrap(),
            ("h".into(), 4320, false)
        );
    }
}
