//! Test harness: an opamp-server that records what agents report.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opamp_server::proto::{
    AgentConfigFile, AgentConfigMap, AgentRemoteConfig, AgentToServer, RemoteConfigStatus,
    ServerToAgent,
};
use opamp_server::state::AgentStatus;
use opamp_server::{
    Callbacks, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse, Server,
    ServerSettings, async_trait,
};
use sha2::{Digest, Sha256};

/// Generous limit, only to avoid hanging forever on a slow machine.
pub const LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Log {
    pub connects: AtomicUsize,
    pub statuses: Mutex<Vec<RemoteConfigStatus>>,
}

struct Accept(Arc<Log>);
struct Record(Arc<Log>);

#[async_trait]
impl Callbacks for Accept {
    async fn on_connecting(&self, _request: &ConnectingRequest<'_>) -> ConnectionResponse {
        ConnectionResponse::accept(Record(Arc::clone(&self.0)))
    }
}

#[async_trait]
impl ConnectionCallbacks for Record {
    async fn on_connected(&self, _conn: &Connection) {
        self.0.connects.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_message(&self, _conn: &Connection, msg: &AgentToServer) -> Option<ServerToAgent> {
        if let Some(status) = &msg.remote_config_status {
            self.0.statuses.lock().unwrap().push(status.clone());
        }
        None
    }
}

pub struct TestServer {
    pub server: Server,
    pub ws_url: String,
    pub http_url: String,
    pub log: Arc<Log>,
}

impl TestServer {
    pub async fn start() -> Self {
        let log = Arc::new(Log::default());
        // No heartbeat interval offer: the agents' own intervals (short in tests) apply.
        let settings = ServerSettings::default()
            .with_listen_addr("127.0.0.1:0".parse().unwrap())
            .with_heartbeat_interval(None);
        let server = Server::new(settings, Accept(Arc::clone(&log))).unwrap();
        let addr = server.start().await.unwrap();
        TestServer {
            server,
            ws_url: format!("ws://{addr}/v1/opamp"),
            http_url: format!("http://{addr}/v1/opamp"),
            log,
        }
    }

    /// Waits until some connection's merged status satisfies `pred`.
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&AgentStatus) -> bool,
    ) -> (Connection, Arc<AgentStatus>) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            for conn in self.server.connections() {
                let status = conn.status();
                if pred(&status) {
                    return (conn, status);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

pub fn yaml_config(body: &str) -> AgentRemoteConfig {
    let hash = Sha256::digest(body.as_bytes()).to_vec();
    AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [(
                "collector.yaml".to_owned(),
                AgentConfigFile {
                    body: body.to_owned().into(),
                    content_type: "text/yaml".into(),
                },
            )]
            .into(),
        }),
        config_hash: hash.into(),
    }
}

/// The text of the only file of an effective configuration.
pub fn effective_text(status: &AgentStatus) -> Option<String> {
    let map = status.effective_config.as_ref()?.config_map.as_ref()?;
    let file = map.config_map.values().next()?;
    Some(String::from_utf8_lossy(&file.body).into_owned())
}

pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
