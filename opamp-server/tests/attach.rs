//! The service mounts into an existing axum router and serves both transports there.

mod common;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use common::*;
use opamp_server::proto::InstanceUid;
use opamp_server::{RemoteAddr, Server, ServerSettings, TransportKind};

/// Makes the peer address known to the OpAMP service.
async fn remote_addr(mut request: Request, next: Next) -> axum::response::Response {
    if let Some(ConnectInfo(addr)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        request.extensions_mut().insert(RemoteAddr(addr));
    }
    next.run(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_into_an_axum_router() {
    let recorder = Recorder::new();
    let server = Server::new(ServerSettings::default(), recorder.clone()).unwrap();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route_service("/v1/opamp", server.attach())
        .layer(axum::middleware::from_fn(remote_addr));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let http = tokio::spawn({
        let stop = stop.clone();
        async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
        }
    });

    // WebSocket through axum.
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    let reply = exchange(&mut ws, &full_status(uid, 0)).await;
    assert_eq!(reply.instance_uid, uid.to_bytes());
    let conn = server.connection(&uid).unwrap();
    assert_eq!(conn.transport(), TransportKind::WebSocket);
    assert_eq!(conn.remote_addr().map(|a| a.ip()), Some(addr.ip()));
    // The push path works when attached too.
    conn.request_full_state().unwrap();
    assert_ne!(recv(&mut ws).await.flags, 0);

    // Plain HTTP through axum.
    let http_uid = InstanceUid::new_v7();
    let reply = HttpAgent::new(addr, http_uid)
        .post(&full_status(http_uid, 0))
        .await
        .unwrap();
    assert_eq!(reply.instance_uid, http_uid.to_bytes());
    assert_eq!(
        server.connection(&http_uid).unwrap().transport(),
        TransportKind::PlainHttp
    );
    assert!(
        server.local_addr().is_none(),
        "attached: the server itself listens nowhere"
    );

    server.shutdown().await;
    assert_eq!(recorder.count(|e| matches!(e, Event::Closed { .. })), 2);
    stop.cancel();
    let _ = tokio::time::timeout(LIMIT, http).await;
}
