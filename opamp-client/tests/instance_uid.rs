//! Instance UID (spec §"AgentToServer.instance_uid", §"ServerToAgent.agent_identification"):
//! a new UUIDv7 by default and persisted, `RequestInstanceUid`, and a server-assigned UID
//! adopted, persisted through the hook and used after a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{HttpReply, Push, Recording, TestServer};
use opamp_client::persistence::{FileStateStore, MemoryStateStore, StateStore};
use opamp_client::proto::{
    AgentCapabilities, AgentIdentification, ComponentHealth, InstanceUid, ServerToAgent,
};
use opamp_client::{Client, ClientSettings};

fn assign(uid: InstanceUid) -> ServerToAgent {
    ServerToAgent {
        agent_identification: Some(AgentIdentification {
            new_instance_uid: uid.to_bytes(),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_new_instance_uid_is_adopted_persisted_and_kept_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(dir.path()).unwrap());
    let server = TestServer::start().await;
    let recording = Recording::default();
    let settings = || {
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
            .with_state_store(Arc::clone(&store))
            .with_request_instance_uid(true)
    };
    let client = Client::start(settings(), recording.clone()).unwrap();
    let generated = client.instance_uid();
    assert_eq!(
        generated.to_uuid().get_version_num(),
        7,
        "a UUIDv7 by default"
    );
    assert_eq!(
        store.load_instance_uid().unwrap(),
        Some(generated),
        "persisted at start"
    );
    let first = server.next_message().await;
    assert_eq!(first.instance_uid, generated.to_bytes());
    assert_eq!(first.flags, 1, "RequestInstanceUid");

    let assigned = InstanceUid::new_v7();
    server.push(Push::Message(assign(assigned))).await;
    common::eventually("the callback", || {
        recording.0.uids.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(recording.0.uids.lock().unwrap()[0], assigned);
    assert_eq!(client.instance_uid(), assigned);
    assert_eq!(store.load_instance_uid().unwrap(), Some(assigned));

    client
        .set_health(ComponentHealth {
            healthy: true,
            ..Default::default()
        })
        .unwrap();
    let next = server.next_message().await;
    assert_eq!(next.instance_uid, assigned.to_bytes());
    assert_eq!(next.flags, 0, "RequestInstanceUid cleared");
    client.stop().await.unwrap();

    // A restarted client keeps the assigned UID.
    let restarted = Client::start(settings(), Recording::default()).unwrap();
    assert_eq!(restarted.instance_uid(), assigned);
    let msg = server
        .next_matching(|s| s.message().is_some_and(|m| m.agent_disconnect.is_none()))
        .await;
    assert_eq!(msg.message().unwrap().instance_uid, assigned.to_bytes());
    restarted.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_new_instance_uid_is_used_from_the_next_request() {
    let store = Arc::new(MemoryStateStore::new());
    let configured = InstanceUid::new_v7();
    let assigned = InstanceUid::new_v7();
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies
            .push_back(HttpReply::Message(assign(assigned)))
    });
    let client = Client::start(
        ClientSettings::new(server.http_url())
            .with_instance_uid(configured)
            .with_state_store(store.clone())
            .with_heartbeat_interval(Duration::from_millis(100)),
        Recording::default(),
    )
    .unwrap();
    let first = server.next_message().await;
    assert_eq!(first.instance_uid, configured.to_bytes());
    let poll = server.next_message().await;
    assert_eq!(poll.instance_uid, assigned.to_bytes());
    assert_eq!(store.load_instance_uid().unwrap(), Some(assigned));
    client.stop().await.unwrap();
}
