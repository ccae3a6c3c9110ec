//! A pending status change is never lost across a failed send or a reconnect (spec
//! §"Retrying Messages": one up-to-date message, sent at the first opportunity).

mod common;

use std::time::Duration;

use common::{HttpReply, Push, Recording, Seen, TestServer};
use http::StatusCode;
use opamp_client::proto::{AgentCapabilities, ComponentHealth};
use opamp_client::state::ConstantBackoff;
use opamp_client::{Client, ClientSettings};

fn health(status: &str) -> ComponentHealth {
    ComponentHealth {
        healthy: status == "ok",
        status: status.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_change_made_while_disconnected_arrives_after_reconnect() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
            .with_health(health("ok"))
            .with_backoff(ConstantBackoff(Duration::from_millis(300))),
        Recording::default(),
    )
    .unwrap();
    assert_eq!(server.next_message().await.health, Some(health("ok")));
    // Break the connection; the immediate reconnect is refused, so the client is
    // disconnected while the Agent's health changes twice.
    server.script(|s| {
        s.upgrade_refusals
            .push_back((StatusCode::BAD_GATEWAY, None))
    });
    server.push(Push::Close).await;
    server
        .next_matching(|s| {
            matches!(
                s,
                Seen::Upgrade {
                    refused: Some(_),
                    ..
                }
            )
        })
        .await;
    client.set_health(health("degraded")).unwrap();
    client.set_health(health("down")).unwrap();
    server
        .next_matching(|s| matches!(s, Seen::Upgrade { refused: None, .. }))
        .await;
    let report = server.next_message().await;
    assert_eq!(
        report.health,
        Some(health("down")),
        "the latest value, once"
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_change_in_a_failed_request_is_sent_again() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.http_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
            .with_heartbeat_interval(Duration::from_secs(60))
            .with_backoff(ConstantBackoff(Duration::from_millis(100))),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.script(|s| {
        s.http_replies
            .push_back(HttpReply::Status(StatusCode::INTERNAL_SERVER_ERROR, None));
        s.http_replies
            .push_back(HttpReply::Status(StatusCode::BAD_GATEWAY, None));
    });
    client.set_health(health("down")).unwrap();
    for _ in 0..3 {
        let msg = server.next_message().await;
        assert_eq!(
            msg.health,
            Some(health("down")),
            "sent until answered: {msg:?}"
        );
    }
    server.assert_quiet(Duration::from_millis(500)).await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_report_written_into_a_half_open_connection_is_resent() {
    let server = TestServer::start().await;
    server.script(|s| s.ws_silent = 1);
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
            .with_health(health("ok"))
            .with_ws_liveness(Duration::from_millis(200), Duration::from_millis(700)),
        Recording::default(),
    )
    .unwrap();
    let silent = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    // The silent server never answers pings: the client replaces the connection.
    let replaced = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    assert!(replaced.at() - silent.at() >= Duration::from_millis(700));
    let report = server.next_message().await;
    assert_eq!(
        report.health,
        Some(health("ok")),
        "the unanswered report is sent again"
    );
    client.stop().await.unwrap();
}
