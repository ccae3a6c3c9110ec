//! `ReportFullState` is answered with everything (spec §"Agent Status Compression"), and a
//! `ServerToAgent` that changes nothing is never answered (§"Status Reporting").

mod common;

use std::time::Duration;

use common::{HttpReply, Push, Recording, TestServer};
use opamp_client::proto::{
    AgentCapabilities, AgentDescription, AgentRemoteConfig, ComponentHealth, KeyValue,
    ServerToAgent, ServerToAgentFlags,
};
use opamp_client::{Client, ClientSettings};

fn description() -> AgentDescription {
    AgentDescription {
        identifying_attributes: vec![KeyValue::new("service.name", "full")],
        non_identifying_attributes: vec![KeyValue::new("os.type", "linux")],
    }
}

fn health() -> ComponentHealth {
    ComponentHealth {
        healthy: true,
        status: "running".into(),
        ..Default::default()
    }
}

fn settings(url: String) -> ClientSettings {
    ClientSettings::new(url)
        .with_capabilities(
            AgentCapabilities::REPORTS_HEALTH | AgentCapabilities::ACCEPTS_REMOTE_CONFIG,
        )
        .with_agent_description(description())
        .with_health(health())
        .with_custom_capabilities(["io.example.cap"])
        .with_heartbeat_interval(Duration::from_secs(60))
}

fn full_state() -> ServerToAgent {
    ServerToAgent {
        flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_report_full_state_resends_everything() {
    let server = TestServer::start().await;
    let client = Client::start(settings(server.ws_url()), Recording::default()).unwrap();
    let first = server.next_message().await;
    assert_eq!(first.health, Some(health()));
    client
        .set_health(ComponentHealth {
            healthy: false,
            ..health()
        })
        .unwrap();
    let second = server.next_message().await;
    assert!(second.agent_description.is_none(), "compressed: {second:?}");
    assert!(second.custom_capabilities.is_none());

    server.push(Push::Message(full_state())).await;
    let full = server.next_message().await;
    assert_eq!(full.sequence_num, 3);
    assert_eq!(full.agent_description, Some(description()));
    assert_eq!(
        full.health,
        Some(ComponentHealth {
            healthy: false,
            ..health()
        })
    );
    assert_eq!(
        full.custom_capabilities.unwrap().capabilities,
        ["io.example.cap"]
    );
    assert_eq!(full.capabilities, client.capabilities().bits());
    server.assert_quiet(Duration::from_millis(400)).await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_report_full_state_is_answered_at_once() {
    let server = TestServer::start().await;
    server.script(|s| s.http_replies.push_back(HttpReply::Message(full_state())));
    let client = Client::start(settings(server.http_url()), Recording::default()).unwrap();
    let first = server.next().await;
    // Not after the 60 s polling interval: right away, with everything.
    let full = server.next().await;
    assert!(full.at() - first.at() < Duration::from_secs(30));
    let full = full.message().unwrap();
    assert_eq!(full.agent_description, Some(description()));
    assert_eq!(full.health, Some(health()));
    server.assert_quiet(Duration::from_millis(400)).await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_changes_nothing_is_not_answered() {
    let server = TestServer::start().await;
    let recording = Recording::default();
    let client = Client::start(settings(server.ws_url()), recording.clone()).unwrap();
    server.next_message().await;
    let offer = ServerToAgent {
        remote_config: Some(AgentRemoteConfig {
            config: None,
            config_hash: vec![1, 2, 3].into(),
        }),
        ..Default::default()
    };
    for _ in 0..3 {
        server.push(Push::Message(offer.clone())).await;
    }
    common::eventually("three offers delivered", || {
        recording.0.messages.lock().unwrap().len() == 3
    })
    .await;
    server.assert_quiet(Duration::from_millis(500)).await;
    client.stop().await.unwrap();
}
