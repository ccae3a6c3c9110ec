//! What the embedder plugs in: admission of connections and per-connection callbacks.
//!
//! The names follow opamp-go's server (`OnConnecting`, `OnConnected`, `OnMessage`,
//! `OnConnectionClose`, `OnReadMessageError`). The callbacks of one connection never run
//! concurrently, and none runs once [`crate::Server::shutdown`] has returned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::codec::TransportKind;

use crate::{Connection, Error};

/// Decides whether a connection attempt (a WebSocket upgrade or a plain-HTTP request) is
/// accepted, and which callbacks serve it.
#[async_trait]
pub trait Callbacks: Send + Sync + 'static {
    /// Called for every WebSocket upgrade request and every plain-HTTP request, before its
    /// body is read: check credentials here (answer [`ConnectionResponse::unauthorized`] on
    /// failure, as spec §"Authentication" requires) or shed load
    /// ([`ConnectionResponse::unavailable`]).
    ///
    /// For a plain-HTTP agent whose session already exists the returned callbacks are
    /// ignored: the session keeps the ones it started with.
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse;
}

/// Callbacks of one connection (a WebSocket connection, or a plain-HTTP agent's session that
/// lasts across its polls). Every method has a default that does nothing.
#[async_trait]
pub trait ConnectionCallbacks: Send + Sync + 'static {
    /// The connection is established (WebSocket: after the upgrade, before the agent's first
    /// message; plain HTTP: when the first request of a new session arrives).
    async fn on_connected(&self, conn: &Connection) {
        let _ = conn;
    }

    /// A message from the agent. [`Connection::status`] already includes it.
    ///
    /// The returned message (if any) is merged into the reply the server builds anyway (which
    /// carries the server capabilities on the first reply, `ReportFullState` after a sequence
    /// gap, pending offers, …). Offers in it become the agent's desired offers, sent again
    /// while the agent reports a different hash. Returning an `error_response` replies with
    /// that error alone.
    async fn on_message(
        &self,
        conn: &Connection,
        message: &AgentToServer,
    ) -> Option<ServerToAgent> {
        let _ = (conn, message);
        None
    }

    /// The connection ended (or the plain-HTTP session: agent disconnect, silence, server
    /// decision or shutdown). Called once; no other callback of the connection follows.
    async fn on_close(&self, conn: &Connection, reason: CloseReason) {
        let _ = (conn, reason);
    }

    /// A message from the agent could not be used: undecodable, a text WebSocket message, a
    /// bad instance UID. The agent was answered with a `BAD_REQUEST` error response.
    async fn on_read_message_error(&self, conn: &Connection, error: &Error) {
        let _ = (conn, error);
    }

    /// A message for the agent could not be sent (e.g. it is over the size limit; spec
    /// §"WebSocket Message Size Limits" says to drop it and record the fact).
    async fn on_message_response_error(
        &self,
        conn: &Connection,
        response: &ServerToAgent,
        error: &Error,
    ) {
        let _ = (conn, response, error);
    }
}

/// Connection callbacks that do nothing beyond the protocol rules the server applies itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopConnectionCallbacks;

impl ConnectionCallbacks for NoopConnectionCallbacks {}

/// Why a connection or plain-HTTP session ended.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The agent sent `agent_disconnect` (spec §"Closing Connection").
    AgentDisconnect,
    /// The agent closed the WebSocket or the connection broke.
    PeerClosed,
    /// The agent stayed silent for more than the configured number of heartbeat intervals.
    Gone,
    /// The WebSocket did not answer a ping in time (half-open connection).
    Unresponsive,
    /// [`Connection::disconnect`] was called.
    Disconnected,
    /// The agent's instance UID is used by another connection and the policy rejects or
    /// replaces duplicates.
    DuplicateInstanceUid,
    /// The agent sent a message over the size limit (WebSocket closed with 1009).
    MessageTooLarge,
    /// Reading or writing the connection failed, or a write timed out.
    TransportError(String),
    /// The server is shutting down (WebSocket closed with 1001).
    ServerShutdown,
}

/// The request of a connection attempt, as [`Callbacks::on_connecting`] sees it.
#[derive(Debug)]
pub struct ConnectingRequest<'a> {
    parts: &'a Parts,
    remote_addr: Option<SocketAddr>,
    transport: TransportKind,
}

impl<'a> ConnectingRequest<'a> {
    pub(crate) fn new(
        parts: &'a Parts,
        remote_addr: Option<SocketAddr>,
        transport: TransportKind,
    ) -> Self {
        Self {
            parts,
            remote_addr,
            transport,
        }
    }

    /// The request headers (e.g. `Authorization`, an API key header).
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A header's value as text, if present and valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request extensions (e.g. values a middleware added).
    pub fn extensions(&self) -> &http::Extensions {
        &self.parts.extensions
    }

    /// The peer's address, when known (always in standalone mode; when attached, from a
    /// [`RemoteAddr`] or `SocketAddr` request extension).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// Plain HTTP or WebSocket.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// The client certificate chain verified during the TLS handshake (mutual TLS), leaf
    /// first; `None` without TLS or without a client certificate.
    #[cfg(feature = "tls")]
    pub fn peer_certificates(&self) -> Option<&PeerCertificates> {
        self.parts.extensions.get::<PeerCertificates>()
    }
}

/// The peer address of a request, as a request extension. The standalone listener adds it;
/// when attaching to another server, add it in a middleware to make
/// [`ConnectingRequest::remote_addr`] and [`Connection::remote_addr`] known (a plain
/// `SocketAddr` extension works too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The certificate chain a client presented and TLS verified, leaf first, as a request
/// extension added by the standalone TLS listener.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<crate::tls::rustls::pki_types::CertificateDer<'static>>>);

/// The answer of [`Callbacks::on_connecting`]: accept with callbacks, or reject with an HTTP
/// status.
#[derive(Clone)]
pub struct ConnectionResponse {
    pub(crate) decision: Decision,
}

#[derive(Clone)]
pub(crate) enum Decision {
    Accept(Arc<dyn ConnectionCallbacks>),
    Reject {
        status: StatusCode,
        headers: HeaderMap,
    },
}

impl std::fmt::Debug for ConnectionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.decision {
            Decision::Accept(_) => f.write_str("ConnectionResponse::Accept"),
            Decision::Reject { status, headers } => f
                .debug_struct("ConnectionResponse::Reject")
                .field("status", status)
                .field("headers", headers)
                .finish(),
        }
    }
}

impl ConnectionResponse {
    /// Accepts the connection, served by `callbacks`.
    pub fn accept(callbacks: impl ConnectionCallbacks) -> Self {
        Self::accept_shared(Arc::new(callbacks))
    }

    /// Accepts the connection, served by shared `callbacks`.
    pub fn accept_shared(callbacks: Arc<dyn ConnectionCallbacks>) -> Self {
        Self {
            decision: Decision::Accept(callbacks),
        }
    }

    /// Rejects the connection with `status` (e.g. 403).
    pub fn reject(status: StatusCode) -> Self {
        Self {
            decision: Decision::Reject {
                status,
                headers: HeaderMap::new(),
            },
        }
    }

    /// Rejects with `401 Unauthorized` (spec §"Authentication": required on failed
    /// authentication).
    pub fn unauthorized() -> Self {
        Self::reject(StatusCode::UNAUTHORIZED)
    }

    /// Rejects for load shedding with `status` (429 or 503) and, when given, `Retry-After`
    /// in whole seconds (rounded up), per spec §"Throttling".
    pub fn unavailable(status: StatusCode, retry_after: Option<Duration>) -> Self {
        let mut response = Self::reject(status);
        if let Some(wait) = retry_after {
            let value = opamp_transport::codec::format_retry_after(wait);
            if let Ok(value) = HeaderValue::from_str(&value) {
                response = response.with_header(http::header::RETRY_AFTER, value);
            }
        }
        response
    }

    /// Adds a response header to a rejection (ignored when accepting).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if let Decision::Reject { headers, .. } = &mut self.decision {
            headers.append(name, value);
        }
        self
    }

    /// True if the connection is accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self.decision, Decision::Accept(_))
    }

    /// The rejection status, if rejected.
    pub fn status(&self) -> Option<StatusCode> {
        match &self.decision {
            Decision::Reject { status, .. } => Some(*status),
            Decision::Accept(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_carry_status_and_headers() {
        let r = ConnectionResponse::unavailable(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_millis(2500)),
        );
        assert!(!r.is_accepted());
        assert_eq!(r.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        match &r.decision {
            Decision::Reject { headers, .. } => assert_eq!(headers[http::header::RETRY_AFTER], "3"),
            Decision::Accept(_) => unreachable!(),
        }
        assert_eq!(
            ConnectionResponse::unauthorized().status(),
            Some(StatusCode::UNAUTHORIZED)
        );
        let accepted = ConnectionResponse::accept(NoopConnectionCallbacks).with_header(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("b"),
        );
        assert!(accepted.is_accepted());
        assert_eq!(accepted.status(), None);
    }

    #[test]
    fn request_accessors() {
        let (parts, ()) = http::Request::post("/v1/opamp?x=1")
            .header("x-api-key", "k")
            .body(())
            .unwrap()
            .into_parts();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let req = ConnectingRequest::new(&parts, Some(addr), TransportKind::PlainHttp);
        assert_eq!(req.header_str("x-api-key"), Some("k"));
        assert_eq!(req.uri().query(), Some("x=1"));
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.remote_addr(), Some(addr));
        assert_eq!(req.transport(), TransportKind::PlainHttp);
        assert!(req.extensions().is_empty());
    }
}
