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

/// Spec §"OpAMPConnectionSettings.heartbeat_interval_seconds": a server that offers 0
/// disables heartbeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_offered_zero_disables_heartbeats() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEARTBEAT)
            .with_heartbeat_interval(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.next_message().await; // a heartbeat: they run
    server.push(Push::Message(offer(0))).await;
    // A heartbeat racing with the offer may still arrive; let it, then expect silence for
    // many intervals.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while tokio::time::timeout(Duration::from_millis(50), server.next())
        .await
        .is_ok()
    {}
    server.assert_quiet(Duration::from_millis(1500)).await;
    client.stop().await.unwrap();
}

/// Plain HTTP must keep polling: after an offered 0 the client polls at its configured
/// interval again (not at the interval offered before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_offered_zero_polls_at_the_configured_interval() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies.push_back(HttpReply::Message(offer(2)));
        s.http_replies.push_back(HttpReply::Message(offer(0)));
    });
    let client = Client::start(
        ClientSettings::new(server.http_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEARTBEAT)
            .with_heartbeat_interval(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    let first = server.next().await.at();
    let second = server.next().await.at();
    assert!(
        second - first >= Duration::from_secs(1),
        "the offered 2 s applies first: {:?}",
        second - first
    );
    // Now at 200 ms: several polls within 3 s (at the offered 2 s there would be one).
    let mut polls = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while polls < 4 {
        match tokio::time::timeout_at(until, server.next()).await {
            Ok(_) => polls += 1,
            Err(_) => panic!("only {polls} polls in 3 s after an offered 0"),
        }
    }
    client.stop().await.unwrap();
}
