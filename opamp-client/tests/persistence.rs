//! The persistence hooks as the client uses them: the remote config status is saved when the
//! Agent sets it and reported again after a restart, so the server does not resend a
//! configuration the Agent already runs.

mod common;

use std::sync::Arc;

use common::{Recording, TestServer};
use opamp_client::persistence::{FileStateStore, StateStore};
use opamp_client::proto::{AgentCapabilities, RemoteConfigStatus, RemoteConfigStatuses};
use opamp_client::{Client, ClientSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_config_status_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::new(dir.path()).unwrap());
    let server = TestServer::start().await;
    let settings = || {
        ClientSettings::new(server.http_url())
            .with_capabilities(
                AgentCapabilities::ACCEPTS_REMOTE_CONFIG | AgentCapabilities::REPORTS_REMOTE_CONFIG,
            )
            .with_state_store(Arc::clone(&store))
    };
    let client = Client::start(settings(), Recording::default()).unwrap();
    let first = server.next_message().await;
    assert!(first.remote_config_status.is_none());
    let applied = RemoteConfigStatus {
        last_remote_config_hash: vec![0xab; 32].into(),
        status: RemoteConfigStatuses::Applied as i32,
        error_message: String::new(),
    };
    client.set_remote_config_status(applied.clone()).unwrap();
    assert_eq!(
        server.next_message().await.remote_config_status,
        Some(applied.clone())
    );
    client.stop().await.unwrap();
    assert_eq!(
        store.load_remote_config_status().unwrap(),
        Some(applied.clone())
    );

    let restarted = Client::start(settings(), Recording::default()).unwrap();
    let report = server
        .next_matching(|s| s.message().is_some_and(|m| m.agent_disconnect.is_none()))
        .await;
    assert_eq!(
        report.message().unwrap().remote_config_status,
        Some(applied)
    );
    restarted.stop().await.unwrap();
}
