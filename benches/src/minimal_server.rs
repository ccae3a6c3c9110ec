//! A minimal OpAMP server on opamp-server, the load generator's default target: it accepts
//! every agent, answers every message (heartbeats included), and has a tiny control API to
//! push a new 2 KiB configuration to the whole fleet with opamp-server's broadcast API.
//!
//! Control API (plain HTTP on its own address):
//! * `POST /push`: makes a new 2 KiB config every agent's remote config
//!   ([`Server::offer_remote_config_to_all`]); answers `{"hash":…,"framed":…,"queued":…}`.
//! * `GET /applied`: `{"hash":…,"applied":N,"connections":M}`: agents whose status reports
//!   `APPLIED` for the current config.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use opamp_proto::{
    AgentConfigFile, AgentConfigMap, AgentRemoteConfig, AgentToServer, RemoteConfigStatuses,
    ServerToAgent,
};
use opamp_server::{
    Callbacks, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse, Server,
    ServerSettings, async_trait,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// Size of the pushed configuration.
pub const PUSH_CONFIG_SIZE: usize = 2048;

#[derive(Default)]
struct Fleet {
    /// Hash of the current pushed config.
    hash: Mutex<Vec<u8>>,
    /// Connection ids that reported APPLIED for it.
    applied: Mutex<HashSet<u64>>,
    version: AtomicU64,
}

impl Fleet {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Admit(Arc<Fleet>);

#[async_trait]
impl Callbacks for Admit {
    async fn on_connecting(&self, _request: &ConnectingRequest<'_>) -> ConnectionResponse {
        ConnectionResponse::accept(PerAgent(Arc::clone(&self.0)))
    }
}

struct PerAgent(Arc<Fleet>);

#[async_trait]
impl ConnectionCallbacks for PerAgent {
    async fn on_message(&self, conn: &Connection, msg: &AgentToServer) -> Option<ServerToAgent> {
        if let Some(status) = &msg.remote_config_status
            && status.status == RemoteConfigStatuses::Applied as i32
        {
            let current = Fleet::lock(&self.0.hash);
            if !current.is_empty() && status.last_remote_config_hash[..] == current[..] {
                drop(current);
                Fleet::lock(&self.0.applied).insert(conn.id());
            }
        }
        None
    }
}

/// A config of exactly [`PUSH_CONFIG_SIZE`] bytes, different for every `version`.
pub fn push_config(version: u64) -> AgentRemoteConfig {
    let mut body = format!(
        "# fleet-wide config version {version}\nreceivers:\n  otlp:\n    protocols:\n      grpc: {{}}\n"
    )
    .into_bytes();
    body.resize(PUSH_CONFIG_SIZE, b'#');
    if let Some(last) = body.last_mut() {
        *last = b'\n';
    }
    let hash = Sha256::digest(&body).to_vec();
    AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [(
                "collector.yaml".to_owned(),
                AgentConfigFile {
                    body: body.into(),
                    content_type: "text/yaml".to_owned(),
                },
            )]
            .into(),
        }),
        config_hash: hash.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The running minimal server.
pub struct MinimalServer {
    /// The OpAMP server.
    pub server: Server,
    /// Where agents connect (`/v1/opamp`).
    pub opamp_addr: SocketAddr,
    /// Where the control API listens.
    pub control_addr: SocketAddr,
    control: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for MinimalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimalServer")
            .field("opamp_addr", &self.opamp_addr)
            .field("control_addr", &self.control_addr)
            .finish_non_exhaustive()
    }
}

impl MinimalServer {
    /// Starts the OpAMP endpoint on `opamp_addr` and the control API on `control_addr`
    /// (port 0 for any).
    pub async fn start(
        settings: ServerSettings,
        opamp_addr: SocketAddr,
        control_addr: SocketAddr,
    ) -> Result<MinimalServer, Box<dyn std::error::Error + Send + Sync>> {
        let fleet = Arc::new(Fleet::default());
        let server = Server::new(
            settings.with_listen_addr(opamp_addr),
            Admit(Arc::clone(&fleet)),
        )?;
        let opamp_addr = server.start().await?;
        let listener = TcpListener::bind(control_addr).await?;
        let control_addr = listener.local_addr()?;
        let app = Router::new()
            .route("/push", post(push))
            .route("/applied", get(applied))
            .with_state((server.clone(), fleet));
        let control = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "control API stopped");
            }
        });
        Ok(MinimalServer {
            server,
            opamp_addr,
            control_addr,
            control,
        })
    }

    /// `ws://ADDR/v1/opamp`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/opamp", self.opamp_addr)
    }

    /// `http://CONTROL/push`.
    pub fn push_url(&self) -> String {
        format!("http://{}/push", self.control_addr)
    }

    /// `http://CONTROL/applied`.
    pub fn applied_url(&self) -> String {
        format!("http://{}/applied", self.control_addr)
    }

    /// Stops both listeners.
    pub async fn shutdown(self) {
        self.control.abort();
        self.server.shutdown().await;
    }
}

type Ctl = State<(Server, Arc<Fleet>)>;

async fn push(State((server, fleet)): Ctl) -> String {
    let version = fleet.version.fetch_add(1, Ordering::Relaxed) + 1;
    let config = push_config(version);
    *Fleet::lock(&fleet.hash) = config.config_hash.to_vec();
    Fleet::lock(&fleet.applied).clear();
    let report = server.offer_remote_config_to_all(config.clone());
    format!(
        "{{\"hash\":\"{}\",\"framed\":{},\"queued\":{},\"skipped\":{}}}",
        hex(&config.config_hash),
        report.framed,
        report.queued,
        report.skipped
    )
}

async fn applied(State((server, fleet)): Ctl) -> String {
    let hash = hex(&Fleet::lock(&fleet.hash));
    let applied = Fleet::lock(&fleet.applied).len();
    format!(
        "{{\"hash\":\"{hash}\",\"applied\":{applied},\"connections\":{}}}",
        server.connection_count()
    )
}
