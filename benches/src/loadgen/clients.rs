//! `idle-clients` mode: N real [`opamp_client::Client`]s in this process, connected and idle,
//! to measure what one idle client costs in memory.

use std::time::{Duration, Instant};

use opamp_client::proto::{AgentCapabilities, AgentDescription, InstanceUid};
use opamp_client::{Client, ClientSettings, NoopCallbacks};
use serde_json::{Value, json};

use super::procfs;

/// Starts `n` clients against `url`, waits until all are connected (at most `limit`), lets
/// them idle for `idle`, and reports this process's RSS growth per client.
pub async fn idle_clients(
    url: &str,
    n: usize,
    limit: Duration,
    idle: Duration,
    out: &mut serde_json::Map<String, Value>,
) -> Result<(), String> {
    let before = procfs::own().map(|s| s.rss);
    let started = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let settings = ClientSettings::new(url)
            .with_instance_uid(InstanceUid::new_v7())
            .with_agent_description(
                AgentDescription::builder()
                    .service_name("idle-client")
                    .identifying("service.instance.id", i.to_string())
                    .build(),
            )
            .with_capabilities(
                AgentCapabilities::REPORTS_STATUS
                    | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
                    | AgentCapabilities::REPORTS_REMOTE_CONFIG
                    | AgentCapabilities::REPORTS_HEARTBEAT,
            )
            .with_heartbeat_interval(Duration::from_secs(30));
        clients.push(Client::start(settings, NoopCallbacks).map_err(|e| e.to_string())?);
    }
    let deadline = Instant::now() + limit;
    loop {
        let connected = clients.iter().filter(|c| c.is_connected()).count();
        if connected == n || Instant::now() >= deadline {
            out.insert("clients_connected".into(), json!(connected));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.insert(
        "clients_connect_s".into(),
        json!(started.elapsed().as_secs_f64()),
    );
    tokio::time::sleep(idle).await;
    let after = procfs::own().map(|s| s.rss);
    if let (Some(before), Some(after)) = (before, after) {
        out.insert("clients_rss_before".into(), json!(before));
        out.insert("clients_rss_after".into(), json!(after));
        out.insert(
            "client_rss_each_bytes".into(),
            json!((after.saturating_sub(before)) as f64 / n.max(1) as f64),
        );
    }
    for client in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), client.stop()).await;
    }
    Ok(())
}
