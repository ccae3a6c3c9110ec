//! Our client (opamp-client) over plain HTTP against `@elastic/mockopampserver` (0.5.0):
//! connects, reports its description, receives the remote config the mock offers, reports
//! it APPLIED, and keeps polling without a loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opamp_client::proto::{
    AgentDescription, AgentRemoteConfig, InstanceUid, RemoteConfigStatus, RemoteConfigStatuses,
};
use opamp_client::{Callbacks, Client, ClientSettings, MessageData};
use opamp_interop::Peers;
use opamp_interop::harness::{config_agent_capabilities, hex};

const LIMIT: Duration = Duration::from_secs(30);

/// Applies every offered config and reports APPLIED.
struct Agent {
    client: Client,
    received: Arc<Mutex<Vec<AgentRemoteConfig>>>,
}

#[async_trait::async_trait]
impl Callbacks for Agent {
    async fn on_message(&self, msg: MessageData) {
        if let Some(config) = msg.remote_config {
            let status = RemoteConfigStatus {
                last_remote_config_hash: config.config_hash.clone(),
                status: RemoteConfigStatuses::Applied as i32,
                error_message: String::new(),
            };
            self.received.lock().unwrap().push(config);
            self.client
                .set_remote_config_status(status)
                .expect("ReportsRemoteConfig is set");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_the_elastic_mock_server() -> Result<(), opamp_interop::Error> {
    let Some(peers) = Peers::locate()? else {
        return Ok(());
    };
    let config_body = r#"{"transaction_sample_rate":"0.3"}"#;
    let config_json = serde_json::json!({
        "elastic": {"body": config_body, "content_type": "application/json"}
    })
    .to_string();
    let mut mock = peers.mock_server(&["--config-json", &config_json, "--duration", "90"])?;
    let listening = mock.wait_for_event("listening", LIMIT).await?;
    let endpoint = listening["endpoint"].as_str().expect("endpoint").to_owned();
    let mock_hash = listening["config_hash"].as_str().expect("hash").to_owned();

    let uid = InstanceUid::new_v7();
    let received = Arc::new(Mutex::new(Vec::new()));
    let settings = ClientSettings::new(endpoint)
        .with_instance_uid(uid)
        .with_agent_description(
            AgentDescription::builder()
                .identifying("service.name", "rust-interop-agent")
                .non_identifying("os.type", "linux")
                .build(),
        )
        .with_capabilities(config_agent_capabilities())
        .with_heartbeat_interval(Duration::from_secs(1));
    let seen = Arc::clone(&received);
    let client = Client::start_with(settings, |client| Agent {
        client,
        received: seen,
    })?;
    let uid_hex = hex(&uid.to_bytes());

    // The mock sees our description.
    let first = mock
        .wait_for("our first report", LIMIT, |e| {
            e["event"] == "request" && e["instance_uid"] == uid_hex && !e["identifying"].is_null()
        })
        .await?;
    assert_eq!(first["status"], 200);
    assert_eq!(first["identifying"]["service.name"], "rust-interop-agent");
    assert_eq!(first["non_identifying"]["os.type"], "linux");

    // What the mock offers reaches our callbacks, with the mock's hash.
    let deadline = Instant::now() + LIMIT;
    let config = loop {
        if let Some(config) = received.lock().unwrap().first().cloned() {
            break config;
        }
        assert!(Instant::now() < deadline, "no remote config received");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(hex(&config.config_hash), mock_hash);
    let file = &config.config.expect("config map").config_map["elastic"];
    assert_eq!(file.body.as_ref(), config_body.as_bytes());
    assert_eq!(file.content_type, "application/json");

    // Our APPLIED status reaches the mock, which then stops offering.
    mock.wait_for("our APPLIED status", LIMIT, |e| {
        e["event"] == "request"
            && e["instance_uid"] == uid_hex
            && e["remote_config_status"]["hash"] == mock_hash
            && e["remote_config_status"]["status"] == RemoteConfigStatuses::Applied as i32
    })
    .await?;

    // Polling goes on at the heartbeat pace, not in a loop, every request accepted.
    let window_start = mock.events().len();
    mock.drain_for(Duration::from_secs(5)).await?;
    let ours: Vec<_> = mock.events()[window_start..]
        .iter()
        .filter(|e| e["event"] == "request" && e["instance_uid"] == uid_hex)
        .collect();
    assert!(
        (2..=15).contains(&ours.len()),
        "{} requests in 5 s with a 1 s heartbeat",
        ours.len()
    );
    assert!(ours.iter().all(|e| e["status"] == 200));
    assert!(
        ours.iter()
            .all(|e| e["reply"]["remote_config_hash"].is_null()),
        "the mock kept offering: our status did not stick"
    );
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "the config was delivered again"
    );

    client.stop().await?;
    mock.wait_for("our agent_disconnect", LIMIT, |e| {
        e["event"] == "request" && e["instance_uid"] == uid_hex && e["disconnect"] == true
    })
    .await?;
    mock.stop(Duration::from_secs(10)).await?;
    Ok(())
}
