//! Agent traffic: messages and disconnections reported by the OpAMP callbacks.

use opamp_proto::AgentToServer;
use opamp_server::state::StatusChanges;
use opamp_server::{Connection, TransportKind};

use super::{Dirty, Fleet, LiveConn, State};
use crate::agent::{AgentRecord, ConnectionFacts};
use crate::logsafe::Untrusted;
use crate::now_ms;
use crate::rollout::ReportedStatus;

/// Most failed hashes remembered per agent.
const MAX_FAILED_HASHES: usize = 32;

/// `websocket` or `http`.
pub(crate) fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::PlainHttp => "http",
        _ => "websocket",
    }
}

impl State {
    /// Forgets the longest-offline agent when the registry is full; never one that holds
    /// operator-set state (its own configuration, labels).
    fn make_room(&mut self, max_agents: usize) -> Option<String> {
        if self.agents.len() < max_agents {
            return None;
        }
        let victim = self
            .agents
            .values()
            .filter(|a| !self.conns.contains_key(&a.instance_uid) && !a.holds_operator_state())
            .min_by_key(|a| a.connection.last_seen)
            .map(|a| a.instance_uid.clone())?;
        self.agents.remove(&victim);
        self.seen_dirty.remove(&victim);
        for r in self.rollouts.values_mut() {
            r.remove_target(&victim, now_ms());
        }
        Some(victim)
    }
}

impl Fleet {
    /// Handles a message from an agent (its merged status is already in `conn`).
    pub async fn agent_message(&self, conn: &Connection, msg: &AgentToServer) {
        let Some(uid) = conn.instance_uid() else {
            return;
        };
        let uid = uid.to_string();
        let status = conn.status();
        let changes = conn.last_changes();
        let now = now_ms();
        self.metrics.inc_messages();

        let state = &mut *self.lock().await;
        let mut dirty = Dirty::default();
        if !state.agents.contains_key(&uid) {
            if let Some(victim) = state.make_room(self.options.max_agents) {
                tracing::info!(agent = %victim, "registry full: forgetting the longest-offline agent");
                if let Err(e) = self.store.delete_agent(&victim).await {
                    tracing::warn!(error = %e, "store: cannot delete agent");
                }
            }
            tracing::info!(agent = %uid, transport = transport_name(conn.transport()), "new agent");
            state
                .agents
                .insert(uid.clone(), AgentRecord::new(uid.clone(), now));
        }
        let new_conn = state.conns.get(&uid).is_none_or(|l| l.conn != *conn);
        if new_conn {
            state.conns.insert(
                uid.clone(),
                LiveConn {
                    conn: conn.clone(),
                    offered_hash: None,
                },
            );
        }
        let offered_on_conn = state.conns.get(&uid).and_then(|l| l.offered_hash.clone());
        let Some(agent) = state.agents.get_mut(&uid) else {
            return;
        };
        agent.connection.last_seen = now;
        agent.connection.sequence_num = msg.sequence_num;
        if new_conn || !agent.connection.connected {
            agent.connection = ConnectionFacts {
                connected: true,
                transport: transport_name(conn.transport()).to_owned(),
                remote_addr: conn
                    .remote_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                connected_since: now,
                last_seen: now,
                sequence_num: msg.sequence_num,
            };
            dirty.agents.insert(uid.clone());
        }
        if new_conn || !changes.is_empty() {
            agent.update_from_status(&status);
            super::budget::enforce(agent, self.options.max_agent_bytes);
            dirty.agents.insert(uid.clone());
        }
        if let Some(m) = &msg.custom_message {
            agent.push_custom_message(m, now);
            dirty.agents.insert(uid.clone());
        }
        let mut fresh = None;
        if changes.contains(StatusChanges::REMOTE_CONFIG_STATUS)
            && let Some(st) = &agent.remote_config_status
        {
            {
                tracing::info!(agent = %uid, hash = %Untrusted(&st.hash), status = ?st.status, error = %Untrusted(&st.error), "remote config status");
                if st.status == ReportedStatus::Failed {
                    // The configuration that failed is the one this connection was offered
                    // (an agent that rolled back may report its previous hash).
                    let failed = offered_on_conn.unwrap_or_else(|| st.hash.clone());
                    if !failed.is_empty() {
                        agent.failed_hashes.insert(failed);
                        while agent.failed_hashes.len() > MAX_FAILED_HASHES {
                            agent.failed_hashes.pop_first();
                        }
                    }
                }
                fresh = Some(st.report());
            }
        }
        if dirty.agents.is_empty() {
            state.seen_dirty.insert(uid.clone());
        }
        if new_conn || !changes.is_empty() || fresh.is_some() {
            dirty.merge(state.reconcile_agent(&uid, fresh.as_ref(), now, &self.metrics));
        }
        if let Err(e) = self.persist(state, &dirty).await {
            tracing::error!(agent = %uid, error = %e, "store: cannot save agent");
        }
    }

    /// Handles the end of a connection.
    pub async fn agent_closed(&self, conn: &Connection) {
        let Some(uid) = conn.instance_uid() else {
            return;
        };
        let uid = uid.to_string();
        let now = now_ms();
        let state = &mut *self.lock().await;
        if !state.conns.get(&uid).is_some_and(|l| l.conn == *conn) {
            return; // an older connection of an agent that reconnected
        }
        state.conns.remove(&uid);
        state.seen_dirty.remove(&uid);
        let mut dirty = Dirty::default();
        if let Some(agent) = state.agents.get_mut(&uid) {
            agent.connection.connected = false;
            dirty.agents.insert(uid.clone());
        }
        tracing::info!(agent = %uid, "agent disconnected");
        dirty.merge(state.reconcile_agent(&uid, None, now, &self.metrics));
        if let Err(e) = self.persist(state, &dirty).await {
            tracing::error!(agent = %uid, error = %e, "store: cannot save agent");
        }
    }
}
