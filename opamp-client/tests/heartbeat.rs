//! Heartbeats (WebSocket, with `ReportsHeartbeat`) and polling (plain HTTP) at the configured
//! interval, replaced by the interval the server offers (spec
//! §"OpAMPConnectionSettings.heartbeat_interval_seconds").
//!
//! The interval counts from when the client sent its last message, and the server sees
//! messages a variable delay later, so gaps are checked against half the interval: enough to
//! tell the interval from back-to-back sends and from a much longer configured one.

mod common;

use std::time::Duration;

use common::{HttpReply, Push, Recording, TestServer};
use opamp_client::proto::{
    AgentCapabilities, ConnectionSettingsOffers, OpAmpConnectionSettings, ServerToAgent,
};
use opamp_client::{Client, ClientSettings};

fn offer(seconds: u64) -> ServerToAgent {
    ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: vec![seconds as u8].into(),
            opamp: Some(OpAmpConnectionSettings {
                heartbeat_interval_seconds: seconds,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_heartbeats_only_with_the_capability() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_heartbeat_interval(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.assert_quiet(Duration::from_millis(800)).await;

    client
        .set_capabilities(AgentCapabilities::REPORTS_HEARTBEAT)
        .unwrap();
    let changed = server.next().await;
    let beat = server.next().await;
    assert!(beat.at() - changed.at() >= Duration::from_millis(100));
    let beat = beat.message().unwrap();
    assert!(
        beat.agent_description.is_none() && beat.health.is_none(),
        "{beat:?}"
    );
    assert_eq!(beat.capabilities, client.capabilities().bits());
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_server_offered_interval_wins() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEARTBEAT)
            .with_heartbeat_interval(Duration::from_secs(600)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.push(Push::Message(offer(1))).await;
    let a = server.next().await;
    let b = server.next().await;
    assert!(
        b.at() - a.at() >= Duration::from_millis(500),
        "{:?}",
        b.at() - a.at()
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_polls_at_the_interval_and_the_server_offer_wins() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.http_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEARTBEAT)
            .with_heartbeat_interval(Duration::from_millis(300)),
        Recording::default(),
    )
    .unwrap();
    let first = server.next().await;
    let poll = server.next().await;
    assert!(
        poll.at() - first.at() >= Duration::from_millis(150),
        "{first:?} {poll:?}"
    );
    let polled = poll.message().unwrap();
    assert!(
        polled.agent_description.is_none(),
        "a poll carries no status: {polled:?}"
    );

    server.script(|s| s.http_replies.push_back(HttpReply::Message(offer(1))));
    let offered_at = server.next().await.at();
    let next = server.next().await;
    assert!(
        next.at() - offered_at >= Duration::from_millis(500),
        "{:?}",
        next.at() - offered_at
    );
    client.stop().await.unwrap();
}
