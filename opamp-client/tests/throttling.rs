//! Throttling (spec §"Throttling"): HTTP 429/503 with `Retry-After` on requests and at the
//! WebSocket upgrade, `UNAVAILABLE` with `retry_info` over both transports, and `BAD_REQUEST`
//! not retried (§"Bad Request"). Only lower bounds on delays are checked: a slow machine only
//! makes them longer.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{HttpReply, Recording, Seen, TestServer};
use http::StatusCode;
use opamp_client::proto::{
    AgentDescription, KeyValue, RetryInfo, ServerErrorResponse, ServerErrorResponseType,
    ServerToAgent, server_error_response,
};
use opamp_client::state::ConstantBackoff;
use opamp_client::{Client, ClientSettings};

fn description() -> AgentDescription {
    AgentDescription {
        identifying_attributes: vec![KeyValue::new("service.name", "throttled")],
        non_identifying_attributes: vec![],
    }
}

fn settings(url: String) -> ClientSettings {
    ClientSettings::new(url)
        .with_agent_description(description())
        .with_backoff(ConstantBackoff(Duration::from_millis(20)))
        .with_heartbeat_interval(Duration::from_secs(60))
}

fn error(kind: ServerErrorResponseType, retry_after: Option<Duration>) -> ServerToAgent {
    ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: kind as i32,
            error_message: "scripted".into(),
            details: retry_after.map(|d| {
                server_error_response::Details::RetryInfo(RetryInfo {
                    retry_after_nanoseconds: d.as_nanos() as u64,
                })
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_retry_after_delays_the_retry_which_keeps_the_status() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies.push_back(HttpReply::Status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(1)),
        ));
    });
    let client = Client::start(settings(server.http_url()), Recording::default()).unwrap();
    let first = server.next().await;
    let second = server.next().await;
    let gap = second.at() - first.at();
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert_eq!(
        first.message().unwrap().agent_description,
        Some(description())
    );
    assert_eq!(
        second.message().unwrap().agent_description,
        Some(description()),
        "the throttled report is sent again"
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_without_retry_after_waits_the_minimum_throttle_delay() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies
            .push_back(HttpReply::Status(StatusCode::SERVICE_UNAVAILABLE, None));
    });
    let client = Client::start(
        settings(server.http_url()).with_min_throttle_delay(Duration::from_millis(700)),
        Recording::default(),
    )
    .unwrap();
    let first = server.next().await;
    let second = server.next().await;
    let gap = second.at() - first.at();
    assert!(gap >= Duration::from_millis(700), "retried after {gap:?}");
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_503_retry_after_delays_the_next_attempt() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.upgrade_refusals.push_back((
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(1)),
        ));
        s.upgrade_refusals
            .push_back((StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1))));
    });
    let recording = Recording::default();
    let client = Client::start(settings(server.ws_url()), recording.clone()).unwrap();
    let a = server.next().await;
    let b = server.next().await;
    let c = server.next().await;
    assert!(matches!(
        a,
        Seen::Upgrade {
            refused: Some(StatusCode::SERVICE_UNAVAILABLE),
            ..
        }
    ));
    assert!(matches!(
        b,
        Seen::Upgrade {
            refused: Some(StatusCode::TOO_MANY_REQUESTS),
            ..
        }
    ));
    assert!(matches!(c, Seen::Upgrade { refused: None, .. }));
    assert!(
        b.at() - a.at() >= Duration::from_secs(1),
        "{:?}",
        b.at() - a.at()
    );
    assert!(
        c.at() - b.at() >= Duration::from_secs(1),
        "{:?}",
        c.at() - b.at()
    );
    assert_eq!(
        server.next_message().await.agent_description,
        Some(description())
    );
    assert_eq!(recording.0.connect_failures.load(Ordering::SeqCst), 2);
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_unavailable_disconnects_waits_retry_info_and_reports_full_state() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.ws_replies.push_back(error(
            ServerErrorResponseType::Unavailable,
            Some(Duration::from_millis(800)),
        ))
    });
    let recording = Recording::default();
    let client = Client::start(settings(server.ws_url()), recording.clone()).unwrap();
    let first = server.next_matching(|s| s.message().is_some()).await;
    assert_eq!(
        first.message().unwrap().agent_description,
        Some(description())
    );
    // Recorded before the answer went out: the client got it later.
    let answered_at = first.at();
    // The client disconnects cleanly...
    let bye = server.next_message().await;
    assert!(bye.agent_disconnect.is_some(), "{bye:?}");
    server
        .next_matching(|s| matches!(s, Seen::WsClosed { .. }))
        .await;
    // ... and comes back no earlier than asked, with its full status.
    let again = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    assert!(
        again.at() - answered_at >= Duration::from_millis(790),
        "{:?}",
        again.at() - answered_at
    );
    let report = server.next_message().await;
    assert_eq!(report.agent_description, Some(description()));
    assert_eq!(recording.0.errors.lock().unwrap().len(), 1);
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_unavailable_retry_info_delays_the_retry_which_keeps_the_status() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies.push_back(HttpReply::Message(error(
            ServerErrorResponseType::Unavailable,
            Some(Duration::from_millis(800)),
        )))
    });
    let client = Client::start(settings(server.http_url()), Recording::default()).unwrap();
    let first = server.next().await;
    let second = server.next().await;
    assert!(
        second.at() - first.at() >= Duration::from_millis(800),
        "{:?}",
        second.at() - first.at()
    );
    assert_eq!(
        second.message().unwrap().agent_description,
        Some(description())
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_request_is_not_retried() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies.push_back(HttpReply::Message(error(
            ServerErrorResponseType::BadRequest,
            None,
        )))
    });
    let recording = Recording::default();
    let client = Client::start(
        settings(server.http_url()).with_heartbeat_interval(Duration::from_millis(300)),
        recording.clone(),
    )
    .unwrap();
    let first = server.next_message().await;
    assert_eq!(first.agent_description, Some(description()));
    // The next request is the poll, 300 ms later, without the refused report.
    let poll = server.next().await;
    let poll = poll.message().unwrap();
    assert!(
        poll.agent_description.is_none(),
        "a bad request is not retried: {poll:?}"
    );
    assert_eq!(
        recording.0.errors.lock().unwrap()[0].r#type,
        ServerErrorResponseType::BadRequest as i32
    );
    client.stop().await.unwrap();
}
