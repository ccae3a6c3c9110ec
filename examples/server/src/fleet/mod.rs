//! [`Fleet`]: the fleet's state (agents, named configurations, rollouts) in memory, backed by
//! a [`Store`], and the rules that connect them: which configuration each agent gets, when a
//! rollout admits it, and what is offered over OpAMP.
//!
//! Every change goes through one lock, is written to the store before the lock is released,
//! and is announced on an event channel (the dashboard's live updates).

mod actions;
mod admission;
mod agents;
mod budget;
mod configs;
mod labels;
mod reconcile;
mod views;

pub use actions::{
    ConnectionSettingsRequest, CustomMessageRequest, MAX_CUSTOM_DATA, MAX_HEADERS,
    MAX_HEARTBEAT_SECONDS, OpampSettingsRequest, TelemetryRequest,
};
pub use admission::{MAX_TRACKED_SOURCES, RETRY_AFTER};
pub use budget::MAX_STATUS_TEXT;
pub use configs::{ConfigInput, MAX_CONFIGS};
pub use labels::{MAX_LABELS, validate_labels};
pub use views::{AgentDetail, AgentFilter, AgentSummary, FleetSummary, MAX_LIST};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use opamp_server::Connection;
use serde::Serialize;
use tokio::sync::{Mutex, MutexGuard, broadcast};

use crate::agent::AgentRecord;
use crate::audit::AuditEntry;
use crate::certs::ClientCertIssuer;
use crate::configs::NamedConfig;
use crate::error::FleetError;
use crate::logsafe::Untrusted;
use crate::metrics::Metrics;
use crate::rollout::Rollout;
use crate::store::Store;

/// Capacity of the event channel; a slower listener skips events and is told to resync.
pub const EVENT_CAPACITY: usize = 1024;

/// A change the dashboard should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `agent`, `config`, `rollout` or `audit`.
    pub kind: &'static str,
    /// The agent's instance UID or the configuration's name.
    pub id: String,
}

/// Default of [`FleetOptions::max_agent_bytes`].
pub const DEFAULT_MAX_AGENT_BYTES: usize = 256 * 1024;

/// Limits and options of the fleet.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Most agents remembered; beyond it the longest-offline agent is forgotten.
    pub max_agents: usize,
    /// OpAMP endpoint URL offered with connection settings when only other fields change
    /// (the spec requires a destination endpoint in every OpAMP settings offer). `{scheme}`
    /// is replaced by `ws` or `http` after the agent's transport. `None`: the URL of the
    /// listener.
    pub public_opamp_url: Option<String>,
    /// Most new instance UIDs admitted per minute from one source address (IPv4 address or
    /// IPv6 /64), as many at once; 0: unlimited. Default 600.
    pub new_agents_per_minute: u32,
    /// Most bytes of an agent's reports kept (as stored JSON); a part that would go over it
    /// is not stored, and the record says so. Default 256 KiB.
    pub max_agent_bytes: usize,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            max_agents: 10_000,
            public_opamp_url: None,
            new_agents_per_minute: 600,
            max_agent_bytes: DEFAULT_MAX_AGENT_BYTES,
        }
    }
}

/// A live connection and the configuration hash set on it.
#[derive(Debug, Clone)]
pub(crate) struct LiveConn {
    pub(crate) conn: Connection,
    pub(crate) offered_hash: Option<String>,
}

/// Everything behind the lock.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) agents: BTreeMap<String, AgentRecord>,
    pub(crate) conns: HashMap<String, LiveConn>,
    pub(crate) configs: BTreeMap<String, NamedConfig>,
    pub(crate) rollouts: BTreeMap<String, Rollout>,
    /// Agents whose `last_seen` changed since the last flush.
    pub(crate) seen_dirty: BTreeSet<String>,
}

/// Agents and rollouts changed by an operation, to be written and announced.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub(crate) agents: BTreeSet<String>,
    pub(crate) rollouts: BTreeSet<String>,
}

impl Dirty {
    pub(crate) fn merge(&mut self, other: Dirty) {
        self.agents.extend(other.agents);
        self.rollouts.extend(other.rollouts);
    }
}

/// The fleet: shared by the OpAMP callbacks, the JSON API and the dashboard.
pub struct Fleet {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) state: Mutex<State>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: FleetOptions,
    pub(crate) issuer: Option<ClientCertIssuer>,
    default_public_url: std::sync::OnceLock<String>,
    pub(crate) new_agents: std::sync::Mutex<admission::NewAgentLimiter>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Loads the fleet from `store`. Every agent starts offline until it connects again.
    pub async fn load(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        options: FleetOptions,
        issuer: Option<ClientCertIssuer>,
    ) -> Result<Self, FleetError> {
        let snapshot = store.load().await?;
        let mut state = State::default();
        for mut a in snapshot.agents {
            a.connection.connected = false;
            state.agents.insert(a.instance_uid.clone(), a);
        }
        for c in snapshot.configs {
            state.configs.insert(c.name.clone(), c);
        }
        for r in snapshot.rollouts {
            if state.configs.contains_key(&r.config) {
                state.rollouts.insert(r.config.clone(), r);
            }
        }
        tracing::info!(
            agents = state.agents.len(),
            configs = state.configs.len(),
            rollouts = state.rollouts.len(),
            "fleet loaded from the store"
        );
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Self {
            store,
            state: Mutex::new(state),
            events,
            metrics,
            new_agents: std::sync::Mutex::new(admission::NewAgentLimiter::new(
                options.new_agents_per_minute,
            )),
            options,
            issuer,
            default_public_url: std::sync::OnceLock::new(),
        })
    }

    /// Subscribes to change events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sets the OpAMP URL used when [`FleetOptions::public_opamp_url`] is `None` (once).
    pub fn set_default_public_url(&self, url: String) {
        let _ = self.default_public_url.set(url);
    }

    /// The OpAMP URL offered in connection settings (`{scheme}` not yet replaced).
    pub fn public_opamp_url(&self) -> String {
        self.options
            .public_opamp_url
            .clone()
            .or_else(|| self.default_public_url.get().cloned())
            .unwrap_or_else(|| "{scheme}://127.0.0.1:4320/v1/opamp".to_owned())
    }

    /// The metrics counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().await
    }

    pub(crate) fn emit(&self, kind: &'static str, id: &str) {
        // No subscriber is not an error.
        let _ = self.events.send(Event {
            kind,
            id: id.to_owned(),
        });
    }

    /// Writes the dirty agents and rollouts and announces them. Called with the lock held so
    /// that writes of one object happen in order.
    pub(crate) async fn persist(&self, state: &State, dirty: &Dirty) -> Result<(), FleetError> {
        for uid in &dirty.agents {
            if let Some(a) = state.agents.get(uid) {
                self.store.put_agent(a).await?;
            }
            self.emit("agent", uid);
        }
        for name in &dirty.rollouts {
            if let Some(r) = state.rollouts.get(name) {
                self.store.put_rollout(r).await?;
            }
            self.emit("rollout", name);
        }
        Ok(())
    }

    /// Appends to the audit log and announces it.
    pub(crate) async fn audit(&self, entry: AuditEntry) -> Result<(), FleetError> {
        tracing::info!(
            actor = %Untrusted(&entry.actor),
            action = %Untrusted(&entry.action),
            target = %Untrusted(&entry.target),
            old_hash = %Untrusted(entry.old_hash.as_deref().unwrap_or("-")),
            new_hash = %Untrusted(entry.new_hash.as_deref().unwrap_or("-")),
            details = %Untrusted(&entry.details),
            "audit"
        );
        self.store.append_audit(&entry).await?;
        self.emit("audit", &entry.target);
        Ok(())
    }

    /// The newest audit entries.
    pub async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, FleetError> {
        Ok(self.store.audit(limit.clamp(1, 1000), before).await?)
    }

    /// Writes agents whose `last_seen` moved since the last flush (heartbeats change nothing
    /// else, so they are not written one by one).
    pub async fn flush_last_seen(&self) -> Result<usize, FleetError> {
        let state = &mut *self.lock().await;
        let dirty = std::mem::take(&mut state.seen_dirty);
        for uid in &dirty {
            if let Some(a) = state.agents.get(uid) {
                self.store.put_agent(a).await?;
            }
        }
        Ok(dirty.len())
    }

    /// Flushes and closes the store (after the OpAMP server stopped).
    pub async fn close(&self) {
        if let Err(e) = self.flush_last_seen().await {
            tracing::warn!(error = %e, "flushing last-seen times failed");
        }
        self.store.close().await;
    }
}
