//! Server-supplied durations never overflow the client's clock (issue 17, item 1): a
//! `heartbeat_interval_seconds` of `u64::MAX` used to panic the driver ("overflow when adding
//! duration to instant"), and over plain HTTP the offer was persisted first, so the client
//! died again after every restart. The value is clamped to `MAX_SERVER_INTERVAL`, in memory
//! and in what is persisted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{HttpReply, Push, Recording, TestServer, WAIT};
use opamp_client::persistence::{FileStateStore, StateStore};
use opamp_client::proto::{
    AgentCapabilities, ComponentHealth, ConnectionSettingsOffers, OpAmpConnectionSettings,
    ServerErrorResponse, ServerErrorResponseType, ServerToAgent, server_error_response,
};
use opamp_client::state::MAX_SERVER_INTERVAL;
use opamp_client::{Client, ClientSettings};

fn huge_heartbeat_offer() -> ServerToAgent {
    ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: vec![0xee].into(),
            opamp: Some(OpAmpConnectionSettings {
                heartbeat_interval_seconds: u64::MAX,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn health(n: u64) -> ComponentHealth {
    ComponentHealth {
        healthy: true,
        status: format!("step {n}"),
        ..Default::default()
    }
}

/// Sets the health and waits until the server sees it: the client is alive.
async fn still_alive(client: &Client, server: &TestServer, n: u64) {
    client.set_health(health(n)).unwrap();
    let wanted = format!("step {n}");
    let seen = tokio::time::timeout(WAIT, async {
        loop {
            let msg = server.next_message().await;
            if msg.health.as_ref().is_some_and(|h| h.status == wanted) {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "the client died: step {n} never arrived");
    assert!(client.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_heartbeat_over_http_is_clamped_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(dir.path()).unwrap());
    let server = TestServer::start().await;
    let settings = || {
        ClientSettings::new(server.http_url())
            .with_capabilities(
                AgentCapabilities::REPORTS_HEARTBEAT
                    | AgentCapabilities::REPORTS_HEALTH
                    | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
                    | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS,
            )
            .with_heartbeat_interval(Duration::from_millis(200))
            .with_state_store(Arc::clone(&store))
    };
    server.script(|s| {
        s.http_replies
            .push_back(HttpReply::Message(huge_heartbeat_offer()))
    });
    let client = Client::start(settings(), Recording::default()).unwrap();
    server.next_message().await;
    still_alive(&client, &server, 1).await;
    client.stop().await.unwrap();

    let persisted = store
        .load_connection_settings()
        .unwrap()
        .expect("persisted");
    let interval = persisted.snapshot.active.heartbeat_interval.unwrap();
    assert!(interval <= MAX_SERVER_INTERVAL, "{interval:?} persisted");

    // The next life of the agent starts from what was persisted, and survives it.
    let client = Client::start(settings(), Recording::default()).unwrap();
    server.next_message().await;
    still_alive(&client, &server, 2).await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_heartbeat_or_retry_delay_over_websocket_does_not_panic() {
    let server = TestServer::start().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(
                AgentCapabilities::REPORTS_HEARTBEAT | AgentCapabilities::REPORTS_HEALTH,
            )
            .with_heartbeat_interval(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.push(Push::Message(huge_heartbeat_offer())).await;
    still_alive(&client, &server, 1).await;

    // A retry_info of u64::MAX nanoseconds (584 years) is clamped too.
    let unavailable = ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: ServerErrorResponseType::Unavailable as i32,
            error_message: "go away".into(),
            details: Some(server_error_response::Details::RetryInfo(
                opamp_client::proto::RetryInfo {
                    retry_after_nanoseconds: u64::MAX,
                },
            )),
        }),
        ..Default::default()
    };
    server.push(Push::Message(unavailable)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.is_running(), "the driver must not panic");
    client.set_health(health(2)).unwrap();
    tokio::time::timeout(WAIT, client.stop())
        .await
        .expect("stop returns")
        .unwrap();
}
