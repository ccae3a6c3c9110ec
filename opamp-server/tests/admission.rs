//! Admission over both transports: 401 for bad credentials, 503 with `Retry-After` and
//! `UNAVAILABLE` with `retry_info` for load shedding, connection caps.

mod common;

use std::time::Duration;

use common::*;
use opamp_server::proto::{InstanceUid, ServerErrorResponseType, server_error_response};
use opamp_server::{ServerSettings, TransportKind};
use opamp_transport::ws::WsConnectOptions;

fn status_of(err: &opamp_transport::Error) -> (u16, Option<Duration>) {
    match err {
        opamp_transport::Error::HttpStatus {
            status,
            retry_after,
            ..
        } => (status.as_u16(), *retry_after),
        other => panic!("expected an HTTP status error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_401_on_both_transports() {
    let recorder = Recorder::requiring_key();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;

    let err = opamp_transport::ws::connect(&ws_url(addr), &WsConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).0, 401);

    let uid = InstanceUid::new_v7();
    let agent = HttpAgent::new(addr, uid);
    let err = agent.post(&full_status(uid, 0)).await.unwrap_err();
    assert_eq!(status_of(&err).0, 401);
    assert_eq!(recorder.count(|e| matches!(e, Event::Connected(_))), 0);
    assert_eq!(
        recorder.count(|e| *e == Event::Connecting(TransportKind::WebSocket)),
        1
    );
    assert_eq!(
        recorder.count(|e| *e == Event::Connecting(TransportKind::PlainHttp)),
        1
    );

    // With the key both transports are served.
    let options =
        WsConnectOptions::default().with_header(API_KEY.parse().unwrap(), "k".parse().unwrap());
    let mut ws = ws_agent_with(addr, options).await;
    let reply = exchange(&mut ws, &full_status(InstanceUid::new_v7(), 0)).await;
    assert!(reply.error_response.is_none());
    let mut agent = HttpAgent::new(addr, uid);
    agent.options = agent
        .options
        .clone()
        .with_header(API_KEY.parse().unwrap(), "k".parse().unwrap());
    let reply = agent.post(&full_status(uid, 0)).await.unwrap();
    assert_eq!(reply.instance_uid, uid.to_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shedding_answers_503_and_unavailable() {
    let recorder = Recorder::new();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    exchange(&mut ws, &full_status(uid, 0)).await;

    server.set_load_shedding(Some(Duration::from_secs(45)));
    // New WebSocket connections: 503 with Retry-After.
    let err = opamp_transport::ws::connect(&ws_url(addr), &WsConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), (503, Some(Duration::from_secs(45))));
    // Plain HTTP: 503 with Retry-After.
    let http_uid = InstanceUid::new_v7();
    let err = HttpAgent::new(addr, http_uid)
        .post(&full_status(http_uid, 0))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), (503, Some(Duration::from_secs(45))));
    // An open WebSocket: UNAVAILABLE with retry_info, no callback.
    let before = recorder.count(|e| matches!(e, Event::Message { .. }));
    let reply = exchange(&mut ws, &heartbeat(uid, 1)).await;
    let error = reply.error_response.expect("error response");
    assert_eq!(error.r#type, ServerErrorResponseType::Unavailable as i32);
    let Some(server_error_response::Details::RetryInfo(retry)) = error.details else {
        panic!("no retry_info");
    };
    assert_eq!(retry.retry_after_nanoseconds, 45_000_000_000);
    assert_eq!(reply.instance_uid, uid.to_bytes());
    assert_eq!(
        recorder.count(|e| matches!(e, Event::Message { .. })),
        before
    );

    server.set_load_shedding(None);
    let reply = exchange(&mut ws, &heartbeat(uid, 2)).await;
    assert!(reply.error_response.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_refuses_with_retry_after() {
    let settings = ServerSettings::default()
        .with_max_connections(Some(1))
        .with_retry_after(Duration::from_secs(60));
    let (server, addr) = start(settings, Recorder::new()).await;
    let mut first = ws_agent(addr).await;
    exchange(&mut first, &full_status(InstanceUid::new_v7(), 0)).await;

    let err = opamp_transport::ws::connect(&ws_url(addr), &WsConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), (503, Some(Duration::from_secs(60))));
    let uid = InstanceUid::new_v7();
    let err = HttpAgent::new(addr, uid)
        .post(&full_status(uid, 0))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).0, 503);
    assert_eq!(server.connection_count(), 1);
    server.shutdown().await;
}
