//! [`RecordingServer`]: our OpAMP server (opamp-server) as the interop tests' peer, recording
//! what every agent reported.
//!
//! It offers a remote configuration to every agent that accepts one, asks once per connection
//! for the full state of an agent it has no description of, and records per instance UID the
//! merged status and the arrival time of every message (to tell a request loop from normal
//! polling).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opamp_proto::{
    AgentConfigFile, AgentConfigMap, AgentDescription, AgentRemoteConfig, AgentToServer,
    ComponentHealth, EffectiveConfig, InstanceUid, RemoteConfigStatus, ServerToAgent,
    ServerToAgentFlags,
};
use opamp_server::{
    BroadcastReport, Callbacks, CloseReason, ConnectingRequest, Connection, ConnectionCallbacks,
    ConnectionResponse, Server, ServerSettings, TransportKind, async_trait,
};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::Error;

/// Most message arrival times kept per agent.
const MAX_TIMES: usize = 10_000;
/// Most agents recorded.
const MAX_AGENTS: usize = 10_000;

/// What one agent (by instance UID) reported, merged over all its messages.
#[derive(Debug, Clone, Default)]
pub struct AgentRecord {
    /// Messages received.
    pub messages: u64,
    /// When they arrived (the first 10,000).
    pub arrivals: Vec<Instant>,
    /// The transport of the last message.
    pub transport: Option<TransportKind>,
    /// The last reported capabilities.
    pub capabilities: u64,
    /// The agent's description.
    pub description: Option<AgentDescription>,
    /// The agent's health.
    pub health: Option<ComponentHealth>,
    /// The agent's effective configuration.
    pub effective_config: Option<EffectiveConfig>,
    /// The status of the last remote configuration.
    pub remote_config_status: Option<RemoteConfigStatus>,
    /// Messages that carried `agent_disconnect`.
    pub disconnects: u64,
    /// Times the callbacks asked this agent for its full state.
    pub full_state_requests: u64,
    /// Times a connection of this agent closed, with the reasons.
    pub closes: Vec<CloseReason>,
}

impl AgentRecord {
    /// An identifying attribute of the description, as a string.
    pub fn identifying(&self, key: &str) -> Option<String> {
        let description = self.description.as_ref()?;
        description
            .identifying_attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Messages that arrived at or after `since`.
    pub fn messages_since(&self, since: Instant) -> usize {
        self.arrivals.iter().filter(|t| **t >= since).count()
    }

    /// The reported remote config hash and status (`RemoteConfigStatuses` as i32).
    pub fn remote_config_state(&self) -> Option<(Vec<u8>, i32)> {
        self.remote_config_status
            .as_ref()
            .map(|s| (s.last_remote_config_hash.to_vec(), s.status))
    }
}

#[derive(Default)]
struct Records {
    agents: Mutex<HashMap<InstanceUid, AgentRecord>>,
    changed: Notify,
    config: Mutex<Option<AgentRemoteConfig>>,
}

impl Records {
    fn agents(&self) -> MutexGuard<'_, HashMap<InstanceUid, AgentRecord>> {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn config(&self) -> Option<AgentRemoteConfig> {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, uid: InstanceUid, f: impl FnOnce(&mut AgentRecord)) {
        {
            let mut agents = self.agents();
            if agents.len() >= MAX_AGENTS && !agents.contains_key(&uid) {
                tracing::warn!(%uid, "too many agents recorded; not recording this one");
                return;
            }
            f(agents.entry(uid).or_default());
        }
        self.changed.notify_waiters();
    }
}

/// A remote configuration of one file, hashed with SHA-256 over the body.
pub fn remote_config(name: &str, content_type: &str, body: &str) -> AgentRemoteConfig {
    let hash = Sha256::digest(body.as_bytes());
    AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [(
                name.to_owned(),
                AgentConfigFile {
                    body: body.to_owned().into_bytes().into(),
                    content_type: content_type.to_owned(),
                },
            )]
            .into(),
        }),
        config_hash: hash.to_vec().into(),
    }
}

struct Admit(Arc<Records>);

#[async_trait]
impl Callbacks for Admit {
    async fn on_connecting(&self, _request: &ConnectingRequest<'_>) -> ConnectionResponse {
        ConnectionResponse::accept(PerConnection {
            records: Arc::clone(&self.0),
            asked_full_state: AtomicBool::new(false),
        })
    }
}

struct PerConnection {
    records: Arc<Records>,
    asked_full_state: AtomicBool,
}

#[async_trait]
impl ConnectionCallbacks for PerConnection {
    async fn on_message(&self, conn: &Connection, msg: &AgentToServer) -> Option<ServerToAgent> {
        let status = conn.status();
        let mut reply = ServerToAgent::default();
        let ask_full_state = status.agent_description.is_none()
            && !self.asked_full_state.swap(true, Ordering::Relaxed);
        if ask_full_state {
            reply.flags |= ServerToAgentFlags::REPORT_FULL_STATE.bits();
        }
        // The server state machine offers it (and again while another hash is reported)
        // only to agents with AcceptsRemoteConfig.
        if conn.remote_config().is_none()
            && let Some(config) = self.records.config()
        {
            reply.remote_config = Some(config);
        }
        if let Ok(uid) = InstanceUid::try_from(msg.instance_uid.as_ref()) {
            let transport = conn.transport();
            self.records.update(uid, |record| {
                record.messages += 1;
                if record.arrivals.len() < MAX_TIMES {
                    record.arrivals.push(Instant::now());
                }
                record.transport = Some(transport);
                record.capabilities = status.capabilities.bits();
                record.description.clone_from(&status.agent_description);
                record.health.clone_from(&status.health);
                record.effective_config.clone_from(&status.effective_config);
                record
                    .remote_config_status
                    .clone_from(&status.remote_config_status);
                if msg.agent_disconnect.is_some() {
                    record.disconnects += 1;
                }
                if ask_full_state {
                    record.full_state_requests += 1;
                }
            });
        }
        Some(reply)
    }

    async fn on_close(&self, conn: &Connection, reason: CloseReason) {
        if let Some(uid) = conn.instance_uid() {
            self.records.update(uid, |record| {
                if record.closes.len() < MAX_TIMES {
                    record.closes.push(reason);
                }
            });
        }
    }
}

/// Our OpAMP server on `127.0.0.1:0`, recording every agent.
pub struct RecordingServer {
    server: Server,
    addr: SocketAddr,
    records: Arc<Records>,
}

impl std::fmt::Debug for RecordingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RecordingServer {
    /// Starts a server with `settings` (its listen address is replaced by `127.0.0.1:0`)
    /// offering `config` to every agent that accepts remote configuration.
    pub async fn start(
        settings: ServerSettings,
        config: Option<AgentRemoteConfig>,
    ) -> Result<RecordingServer, Error> {
        let records = Arc::new(Records::default());
        *records
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = config;
        let settings = settings.with_listen_addr(SocketAddr::from(([127, 0, 0, 1], 0)));
        let server = Server::new(settings, Admit(Arc::clone(&records)))?;
        let addr = server.start().await?;
        Ok(RecordingServer {
            server,
            addr,
            records,
        })
    }

    /// The plain-HTTP endpoint, `http://127.0.0.1:PORT/v1/opamp`.
    pub fn http_url(&self) -> String {
        format!("http://{}{}", self.addr, self.server.settings().path)
    }

    /// The WebSocket endpoint, `ws://127.0.0.1:PORT/v1/opamp`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, self.server.settings().path)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server itself.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// What `uid` reported so far.
    pub fn agent(&self, uid: &InstanceUid) -> Option<AgentRecord> {
        self.records.agents().get(uid).cloned()
    }

    /// Every agent recorded so far.
    pub fn agents(&self) -> HashMap<InstanceUid, AgentRecord> {
        self.records.agents().clone()
    }

    /// Makes `config` every agent's remote configuration: connected WebSocket agents get it at
    /// once, plain-HTTP agents on their next poll, agents connecting later in their first
    /// reply.
    pub fn offer_to_all(&self, config: AgentRemoteConfig) -> BroadcastReport {
        *self
            .records
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(config.clone());
        self.server.offer_remote_config_to_all(config)
    }

    /// Waits (at most `limit`) until `check` returns `Some` for the record of `uid`.
    pub async fn wait_for_agent<T>(
        &self,
        uid: &InstanceUid,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&AgentRecord) -> Option<T>,
    ) -> Result<T, Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.records.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = self.records.agents().get(uid).and_then(&mut check) {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Error::timeout(format!("{what} (agent {uid})"), limit));
            }
        }
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
