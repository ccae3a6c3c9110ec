//! Read-only views for the API and the dashboard.

use std::collections::BTreeMap;

use opamp_proto::AgentCapabilities;
use serde::Serialize;

use super::{Fleet, State};
use crate::agent::AgentRecord;
use crate::error::FleetError;
use crate::rollout::{AgentProgress, RolloutState};
use crate::selector::Selector;

/// One row of the agent table.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSummary {
    /// Instance UID.
    pub instance_uid: String,
    /// `service.name`, or the instance UID.
    pub name: String,
    /// `service.version`.
    pub version: String,
    /// `healthy`, `unhealthy`, `unknown` (no health reported) or `offline`.
    pub status: &'static str,
    /// Connected now.
    pub connected: bool,
    /// `websocket` or `http`.
    pub transport: String,
    /// Last message, Unix milliseconds.
    pub last_seen: i64,
    /// The named configuration its attributes select.
    pub assigned_config: Option<String>,
    /// Hash of what the fleet offered it.
    pub offered_hash: Option<String>,
    /// Last reported remote config status (`APPLIED`, …).
    pub remote_config_status: Option<String>,
    /// Identifying and non-identifying attributes together (what filters apply to).
    pub attributes: BTreeMap<String, String>,
}

/// The agent page.
#[derive(Debug, Clone, Serialize)]
pub struct AgentDetail {
    /// Everything recorded.
    #[serde(flatten)]
    pub record: AgentRecord,
    /// `healthy`, `unhealthy`, `unknown` or `offline`.
    pub status: &'static str,
    /// Names of the capability bits.
    pub capability_names: Vec<&'static str>,
    /// The named configuration its attributes select.
    pub assigned_config: Option<String>,
    /// Its progress in that configuration's rollout.
    pub rollout: Option<AgentProgress>,
    /// Hash of the configuration the fleet wants it to have now.
    pub desired_hash: Option<String>,
}

/// Fleet totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetSummary {
    /// All agents known.
    pub total: usize,
    /// Connected and reporting healthy.
    pub healthy: usize,
    /// Connected and reporting unhealthy.
    pub unhealthy: usize,
    /// Connected, not reporting health.
    pub unknown: usize,
    /// Not connected.
    pub offline: usize,
    /// Connected over WebSocket.
    pub websocket: usize,
    /// Connected over plain HTTP.
    pub http: usize,
    /// Named configurations.
    pub configs: usize,
    /// Rollouts admitting batches.
    pub rollouts_in_progress: usize,
    /// Rollouts halted by failures.
    pub rollouts_halted: usize,
}

/// Filters of the agent list.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    /// Label selector over attributes.
    pub selector: Selector,
    /// Text that must appear in the instance UID or an attribute value.
    pub text: String,
    /// Only agents in this status.
    pub status: Option<String>,
}

impl State {
    pub(crate) fn status_of(&self, a: &AgentRecord) -> &'static str {
        if !self.conns.contains_key(&a.instance_uid) {
            "offline"
        } else {
            match a.healthy() {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "unknown",
            }
        }
    }

    fn summary_of(&self, a: &AgentRecord) -> AgentSummary {
        AgentSummary {
            instance_uid: a.instance_uid.clone(),
            name: a.display_name().to_owned(),
            version: a
                .identifying
                .get("service.version")
                .cloned()
                .unwrap_or_default(),
            status: self.status_of(a),
            connected: self.conns.contains_key(&a.instance_uid),
            transport: a.connection.transport.clone(),
            last_seen: a.connection.last_seen,
            assigned_config: self.chosen_config(a).map(|c| c.name.clone()),
            offered_hash: a.offered.as_ref().map(|o| o.hash.clone()),
            remote_config_status: a
                .remote_config_status
                .as_ref()
                .map(|s| format!("{:?}", s.status).to_uppercase()),
            attributes: a.attributes(),
        }
    }

    pub(crate) fn fleet_summary(&self) -> FleetSummary {
        let mut s = FleetSummary {
            total: self.agents.len(),
            configs: self.configs.len(),
            ..Default::default()
        };
        for a in self.agents.values() {
            match self.status_of(a) {
                "healthy" => s.healthy += 1,
                "unhealthy" => s.unhealthy += 1,
                "unknown" => s.unknown += 1,
                _ => s.offline += 1,
            }
        }
        for l in self.conns.values() {
            match super::agents::transport_name(l.conn.transport()) {
                "http" => s.http += 1,
                _ => s.websocket += 1,
            }
        }
        for r in self.rollouts.values() {
            match r.state {
                RolloutState::InProgress => s.rollouts_in_progress += 1,
                RolloutState::Halted => s.rollouts_halted += 1,
                _ => {}
            }
        }
        s
    }
}

impl AgentFilter {
    fn matches(&self, s: &AgentSummary) -> bool {
        if !self.selector.matches(&s.attributes) {
            return false;
        }
        if self.status.as_deref().is_some_and(|st| st != s.status) {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        let needle = self.text.to_lowercase();
        s.instance_uid.contains(&needle)
            || s.attributes
                .values()
                .any(|v| v.to_lowercase().contains(&needle))
    }
}

/// Most agents in one list answer.
pub const MAX_LIST: usize = 5000;

impl Fleet {
    /// Agents matching `filter`, by name, at most [`MAX_LIST`].
    pub async fn agents(&self, filter: &AgentFilter) -> Vec<AgentSummary> {
        let state = self.lock().await;
        let mut out: Vec<AgentSummary> = state
            .agents
            .values()
            .map(|a| state.summary_of(a))
            .filter(|s| filter.matches(s))
            .take(MAX_LIST)
            .collect();
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.instance_uid.cmp(&b.instance_uid))
        });
        out
    }

    /// One agent in full.
    pub async fn agent(&self, uid: &str) -> Result<AgentDetail, FleetError> {
        let state = self.lock().await;
        let a = state
            .agents
            .get(uid)
            .ok_or_else(|| FleetError::UnknownAgent(uid.to_owned()))?;
        let assigned = state.chosen_config(a).map(|c| c.name.clone());
        let rollout = assigned
            .as_ref()
            .and_then(|n| state.rollouts.get(n))
            .and_then(|r| r.agents.get(uid))
            .cloned();
        Ok(AgentDetail {
            record: a.clone(),
            status: state.status_of(a),
            capability_names: AgentCapabilities::from_bits(a.capabilities)
                .names()
                .collect(),
            assigned_config: assigned,
            rollout,
            desired_hash: state.desired_config(a).map(|d| d.hash),
        })
    }

    /// Fleet totals.
    pub async fn summary(&self) -> FleetSummary {
        self.lock().await.fleet_summary()
    }

    /// The named configuration each agent's attributes select (agents that accept remote
    /// configuration only).
    pub async fn assignments(&self) -> BTreeMap<String, String> {
        let state = self.lock().await;
        state
            .agents
            .values()
            .filter_map(|a| {
                state
                    .chosen_config(a)
                    .map(|c| (a.instance_uid.clone(), c.name.clone()))
            })
            .collect()
    }

    /// Counts for the metrics page: (agents per remote config status, connected per
    /// transport, summary).
    pub async fn metric_gauges(&self) -> (BTreeMap<String, usize>, FleetSummary) {
        let state = self.lock().await;
        let mut statuses = BTreeMap::new();
        for a in state.agents.values() {
            if let Some(s) = &a.remote_config_status {
                *statuses
                    .entry(format!("{:?}", s.status).to_uppercase())
                    .or_insert(0) += 1;
            }
        }
        (statuses, state.fleet_summary())
    }
}
