//! Server side: accept a WebSocket upgrade on a hyper 1 connection.
//!
//! The server's hyper connection must be served `with_upgrades()`. A handler that sees a
//! WebSocket request (see [`crate::codec::classify::classify_request`]) calls [`accept`],
//! returns the `101 Switching Protocols` response to hyper, and awaits the
//! [`PendingWsUpgrade`] (typically in a spawned task) to get the [`ServerWsConnection`].

use std::fmt;

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{WsConfig, WsConnection};
use crate::Error;
use crate::codec::classify::check_websocket_upgrade;
use crate::http::ServerHttpBody;

/// The IO type of a server-side WebSocket connection: the upgraded hyper connection.
pub type ServerStream = TokioIo<hyper::upgrade::Upgraded>;

/// A server-side WebSocket connection.
pub type ServerWsConnection = WsConnection<ServerStream>;

/// Checks that `request` is a valid WebSocket opening handshake (RFC 6455 §4.2.1) and returns
/// the `Sec-WebSocket-Accept` value for the response.
///
/// Errors: [`Error::UnsupportedRequest`] naming the broken rule; its
/// [`Error::http_status`] is 400, or 426 for a version other than 13.
pub fn upgrade_accept_key<B>(request: &Request<B>) -> Result<HeaderValue, Error> {
    check_websocket_upgrade(request.method(), request.headers())
        .map_err(Error::UnsupportedRequest)?;
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(Error::UnsupportedRequest(
            crate::codec::classify::NotUpgradeReason::MissingWebSocketKey,
        ))?;
    let accept = derive_accept_key(key.as_bytes());
    // The accept key is base64, always a valid header value.
    HeaderValue::from_str(&accept).map_err(Error::InvalidHeaderValue)
}

/// The `101 Switching Protocols` response accepting `request`, with no subprotocol and no
/// extension. Fails like [`upgrade_accept_key`].
pub fn upgrade_response<B>(request: &Request<B>) -> Result<Response<ServerHttpBody>, Error> {
    let accept = upgrade_accept_key(request)?;
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

/// The response for a request that failed [`upgrade_accept_key`]: 400, or 426 with
/// `Sec-WebSocket-Version: 13` for an unsupported version.
pub fn upgrade_error_response(error: &Error) -> Response<ServerHttpBody> {
    let status = error.http_status().unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = crate::http::error_response(status, None);
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

/// Accepts a WebSocket upgrade: validates `request`, takes hyper's upgrade handle from it and
/// returns the `101` response to send plus the upgrade to await once it is sent.
pub fn accept<B>(
    request: &mut Request<B>,
    config: WsConfig,
) -> Result<(Response<ServerHttpBody>, PendingWsUpgrade), Error> {
    let response = upgrade_response(request)?;
    let on_upgrade = hyper::upgrade::on(request);
    Ok((response, PendingWsUpgrade { on_upgrade, config }))
}

/// An accepted upgrade whose connection is not yet handed over by hyper.
pub struct PendingWsUpgrade {
    on_upgrade: OnUpgrade,
    config: WsConfig,
}

impl fmt::Debug for PendingWsUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingWsUpgrade")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PendingWsUpgrade {
    /// Waits until hyper has sent the `101` response and hands over the connection.
    ///
    /// Fails with [`Error::Hyper`] if the connection was not served `with_upgrades()` or
    /// closed before the response went out.
    pub async fn connection(self) -> Result<ServerWsConnection, Error> {
        let upgraded = self.on_upgrade.await.map_err(Error::Hyper)?;
        Ok(WsConnection::from_upgraded(upgraded, self.config).await)
    }
}

impl ServerWsConnection {
    /// Wraps an upgraded hyper connection whose `101` response was sent.
    pub async fn from_upgraded(upgraded: hyper::upgrade::Upgraded, config: WsConfig) -> Self {
        WsConnection::from_raw_socket(TokioIo::new(upgraded), Role::Server, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request() -> http::request::Builder {
        Request::get("/v1/opamp")
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
    }

    #[test]
    fn accept_key_of_the_rfc_example() {
        // RFC 6455 §1.3.
        let request = upgrade_request()
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let response = upgrade_response(&request).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn wrong_version_gets_426_with_the_supported_version() {
        let request = Request::get("/v1/opamp")
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_VERSION, "8")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap();
        let err = upgrade_accept_key(&request).unwrap_err();
        let response = upgrade_error_response(&err);
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn missing_key_is_400() {
        let request = upgrade_request().body(()).unwrap();
        let err = upgrade_accept_key(&request).unwrap_err();
        assert_eq!(err.http_status(), Some(StatusCode::BAD_REQUEST));
    }
}
