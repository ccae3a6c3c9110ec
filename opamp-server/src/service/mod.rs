//! The hyper/tower service: one endpoint for both transports, told apart by `Content-Type`
//! (spec §"Plain HTTP Transport").

mod http;
pub(crate) mod listener;
mod process;
mod read_ahead;
mod ws;
mod ws_frame;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::{Request, Response, StatusCode};
use http_body::Body;

use opamp_transport::codec::{TransportKind, classify_request};
use opamp_transport::http::{ServerHttpBody, error_response, error_response_for};
use opamp_transport::ws::upgrade_error_response;

use crate::callbacks::{ConnectingRequest, ConnectionCallbacks, Decision, RemoteAddr};
use crate::gate::GateGuard;
use crate::server::Shared;

/// Body of every response of the service.
pub type ResponseBody = ServerHttpBody;

/// The OpAMP endpoint as a `tower` service, from [`crate::Server::attach`]. Mount it on the
/// OpAMP path of an existing server (opamp-go's `Attach`):
///
/// ```no_run
/// # async fn run(server: opamp_server::Server) -> std::io::Result<()> {
/// let app = axum::Router::new().route_service("/v1/opamp", server.attach());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:4320").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
///
/// The service answers whatever path it is mounted on. To make agents' addresses known, put
/// a [`RemoteAddr`] (or `SocketAddr`) into the request extensions in a middleware.
#[derive(Clone)]
pub struct OpampService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OpampService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpampService").finish_non_exhaustive()
    }
}

impl OpampService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> tower_service::Service<Request<B>> for OpampService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(handle(shared, request).await) })
    }
}

/// Answers one request on the OpAMP endpoint.
pub(crate) async fn handle<B>(shared: Arc<Shared>, request: Request<B>) -> Response<ResponseBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    shared.remember_runtime();
    if shared.gate.is_closed() {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, None);
    }
    let remote = remote_addr(&request);
    match classify_request(request.method(), request.headers()) {
        Ok(TransportKind::PlainHttp) => http::handle(shared, request, remote).await,
        Ok(TransportKind::WebSocket) => ws::handle_upgrade(shared, request, remote).await,
        Err(err @ opamp_transport::Error::UnsupportedRequest(_)) => {
            tracing::debug!(%err, "request is neither plain HTTP nor a WebSocket upgrade");
            upgrade_error_response(&err)
        }
        Err(err) => {
            tracing::debug!(%err, "unsupported request");
            error_response_for(&err)
        }
    }
}

fn remote_addr<B>(request: &Request<B>) -> Option<SocketAddr> {
    let ext = request.extensions();
    ext.get::<RemoteAddr>()
        .map(|r| r.0)
        .or_else(|| ext.get::<SocketAddr>().copied())
}

/// Admits a new request of either transport, in this order: the server must not be shutting
/// down, not shedding load (spec §"Throttling"), for a WebSocket upgrade not at its
/// connection limit (a plain-HTTP request may belong to an existing session, checked later),
/// and the `on_connecting` callback must accept it. Returns the shutdown guard to hold while
/// the request or connection lives and the connection's callbacks, or the refusal to send.
async fn admit(
    shared: &Shared,
    parts: &::http::request::Parts,
    remote: Option<SocketAddr>,
    kind: TransportKind,
) -> Result<(GateGuard, Arc<dyn ConnectionCallbacks>), Response<ResponseBody>> {
    let Some(guard) = shared.gate.enter() else {
        return Err(error_response(StatusCode::SERVICE_UNAVAILABLE, None));
    };
    if let Some(retry_after) = shared.shedding() {
        return Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(retry_after),
        ));
    }
    if kind == TransportKind::WebSocket && shared.at_capacity() {
        return Err(at_capacity(shared));
    }
    let request = ConnectingRequest::new(parts, remote, kind);
    match shared.callbacks.on_connecting(&request).await.decision {
        Decision::Accept(callbacks) => Ok((guard, callbacks)),
        Decision::Reject { status, headers } => Err(reject(status, headers)),
    }
}

/// The `503` with the configured `Retry-After` for a server at its connection limit.
fn at_capacity(shared: &Shared) -> Response<ResponseBody> {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        Some(shared.settings.retry_after),
    )
}

/// A rejection response with `status` and `headers`.
pub(crate) fn reject(status: StatusCode, headers: ::http::HeaderMap) -> Response<ResponseBody> {
    let mut response = error_response(status, None);
    response.headers_mut().extend(headers);
    response
}
