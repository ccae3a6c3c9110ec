//! Graceful shutdown: close frames to every WebSocket, running callbacks awaited, `on_close`
//! for everyone, nothing afterwards.

mod common;

use std::time::Duration;

use common::*;
use opamp_server::proto::{InstanceUid, ServerToAgent};
use opamp_server::{CloseReason, ServerSettings};
use opamp_transport::ws::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_100_agents_connected() {
    let recorder = Recorder::new();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;

    let mut agents = Vec::new();
    for _ in 0..100 {
        let mut ws = ws_agent(addr).await;
        exchange(&mut ws, &full_status(InstanceUid::new_v7(), 0)).await;
        agents.push(ws);
    }
    // A few plain-HTTP sessions too.
    for _ in 0..5 {
        let uid = InstanceUid::new_v7();
        HttpAgent::new(addr, uid)
            .post(&full_status(uid, 0))
            .await
            .unwrap();
    }
    assert_eq!(server.connection_count(), 105);

    tokio::time::timeout(LIMIT, server.shutdown())
        .await
        .expect("shutdown timed out");

    // Every connection got on_close(ServerShutdown), exactly once.
    let closed = recorder.count(|e| {
        matches!(
            e,
            Event::Closed {
                reason: CloseReason::ServerShutdown,
                ..
            }
        )
    });
    assert_eq!(closed, 105);
    assert_eq!(recorder.count(|e| matches!(e, Event::Closed { .. })), 105);
    assert_eq!(server.connection_count(), 0);

    // Every WebSocket agent received a close frame with 1001 Going Away.
    for mut ws in agents {
        let end = tokio::time::timeout(LIMIT, ws.recv::<ServerToAgent>())
            .await
            .expect("no close frame");
        assert!(matches!(end, Ok(None)), "{end:?}");
        assert_eq!(ws.peer_close_frame().map(|f| f.code), Some(CloseCode::Away));
    }

    // Nothing runs afterwards, and nothing new is accepted.
    let events = recorder.events().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.events().len(), events);
    assert!(
        opamp_transport::ws::connect(&ws_url(addr), &Default::default())
            .await
            .is_err()
    );
    assert!(!recorder.saw_overlap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_callbacks() {
    let recorder = Recorder::slow(Duration::from_millis(600));
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    ws.send(&full_status(uid, 0)).await.unwrap();
    // Wait until the message is being processed (connected, no Message event yet).
    recorder
        .wait_for("connected", |e| {
            e.iter().any(|e| matches!(e, Event::Connected(_)))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(recorder.count(|e| matches!(e, Event::Message { .. })), 0);

    tokio::time::timeout(LIMIT, server.shutdown())
        .await
        .expect("shutdown timed out");
    // The slow on_message finished before shutdown returned, and on_close came after it.
    let events = recorder.events();
    let message = events
        .iter()
        .position(|e| matches!(e, Event::Message { .. }))
        .expect("on_message finished before shutdown returned");
    let closed = events
        .iter()
        .position(|e| matches!(e, Event::Closed { .. }))
        .expect("on_close ran");
    assert!(message < closed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorder.events().len(), events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_service_refuses_requests_after_shutdown() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let service = server.attach();
    server.shutdown().await;
    let request = http::Request::post("/v1/opamp")
        .header("content-type", "application/x-protobuf")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = tower_call(service, request).await;
    assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    let _ = addr;
}

async fn tower_call(
    mut service: opamp_server::OpampService,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> http::Response<opamp_server::ResponseBody> {
    use tower_service::Service;
    std::future::poll_fn(|cx| {
        Service::<http::Request<http_body_util::Full<bytes::Bytes>>>::poll_ready(&mut service, cx)
    })
    .await
    .unwrap();
    service.call(request).await.unwrap()
}
