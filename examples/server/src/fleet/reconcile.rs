//! Which configuration each agent gets, and offering it.
//!
//! For an agent that accepts remote configuration the fleet offers, in this order, the first
//! candidate whose hash the agent has not reported `FAILED`:
//! 1. the configuration pushed to this agent alone (agent page),
//! 2. the named configuration its attributes select (highest priority, then smallest name),
//!    once that configuration's rollout admitted the agent,
//! 3. what it was offered before (an agent waiting for its batch keeps its configuration).
//!
//! A hash the agent reported `FAILED` is never offered to it again automatically (no offer
//! loop); an operator can retry it from the agent page.

use opamp_proto::AgentCapabilities;

use super::{Dirty, State};
use crate::agent::AgentRecord;
use crate::configs::{NamedConfig, OfferedConfig, to_remote_config};
use crate::metrics::Metrics;
use crate::rollout::{Report, Rollout, RolloutState, Target};
use crate::selector::Selector;

impl State {
    /// The named configuration the agent's attributes select, if it accepts remote config.
    pub(crate) fn chosen_config(&self, agent: &AgentRecord) -> Option<&NamedConfig> {
        if !agent
            .caps()
            .contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG)
        {
            return None;
        }
        let attrs = agent.attributes();
        self.configs
            .values()
            .filter(|c| {
                c.selector
                    .parse::<Selector>()
                    .is_ok_and(|s| s.matches(&attrs))
            })
            // Highest priority; on a tie the smallest name (max_by keeps the last maximum).
            .max_by(|a, b| a.priority.cmp(&b.priority).then(b.name.cmp(&a.name)))
    }

    /// The configuration the agent should have now (see the module docs).
    pub(crate) fn desired_config(&self, agent: &AgentRecord) -> Option<OfferedConfig> {
        let failed = |hash: &str| agent.failed_hashes.contains(hash);
        if let Some(o) = &agent.override_config
            && !failed(&o.hash)
        {
            return Some(o.clone());
        }
        if let Some(c) = self.chosen_config(agent) {
            let admitted = self
                .rollouts
                .get(&c.name)
                .is_some_and(|r| r.hash == c.hash && r.admits(&agent.instance_uid));
            if admitted && !failed(&c.hash) {
                return Some(c.offer());
            }
        }
        agent.offered.clone().filter(|o| !failed(&o.hash))
    }

    fn target(&self, agent: &AgentRecord) -> Target {
        Target {
            healthy: agent.healthy(),
            online: self.conns.contains_key(&agent.instance_uid),
        }
    }

    /// Puts the agent in the rollout of its chosen configuration (and out of the others) and
    /// feeds it the agent's status. Returns the chosen configuration's name.
    fn sync_membership(
        &mut self,
        uid: &str,
        fresh: Option<&Report>,
        now: i64,
        dirty: &mut Dirty,
    ) -> Option<String> {
        let agent = self.agents.get(uid)?;
        let chosen = self.chosen_config(agent).map(|c| c.name.clone());
        let target = self.target(agent);
        let current = agent.remote_config_status.as_ref().map(|s| s.report());
        for (name, r) in &mut self.rollouts {
            let changed = if Some(name) == chosen.as_ref() {
                let mut changed = r.upsert_target(uid, target, now);
                if let Some(report) = current.as_ref().filter(|c| c.hash == r.hash) {
                    changed |= r.record_report(uid, report, now);
                }
                if let Some(report) = fresh {
                    changed |= r.record_report(uid, report, now);
                }
                changed
            } else {
                r.remove_target(uid, now)
            };
            if changed {
                dirty.rollouts.insert(name.clone());
            }
        }
        chosen
    }

    /// Advances a rollout; returns the agents it admitted.
    fn advance(&mut self, name: &str, now: i64, dirty: &mut Dirty) -> Vec<String> {
        let Some(r) = self.rollouts.get_mut(name) else {
            return Vec::new();
        };
        let before = (r.state, r.current_batch);
        let admitted = advance_with_reports(r, &self.agents, now);
        if !admitted.is_empty() || before != (r.state, r.current_batch) {
            dirty.rollouts.insert(name.to_owned());
            if r.state == RolloutState::Halted && before.0 != RolloutState::Halted {
                tracing::warn!(
                    config = name,
                    reason = r.halt_reason.as_deref().unwrap_or(""),
                    "rollout halted"
                );
            }
        }
        admitted
    }

    /// Offers the desired configuration to a connected agent if its connection does not have
    /// it yet.
    pub(crate) fn apply_offer(&mut self, uid: &str, metrics: &Metrics, dirty: &mut Dirty) {
        let Some(agent) = self.agents.get(uid) else {
            return;
        };
        let Some(desired) = self.desired_config(agent) else {
            return;
        };
        let Some(live) = self.conns.get_mut(uid) else {
            return;
        };
        if live.offered_hash.as_deref() == Some(desired.hash.as_str()) {
            return;
        }
        match live
            .conn
            .offer_remote_config(to_remote_config(&desired.files))
        {
            Ok(()) => {
                tracing::info!(agent = uid, hash = %desired.hash, source = %desired.source, "offering remote config");
                live.offered_hash = Some(desired.hash.clone());
                metrics.inc_offers();
            }
            Err(e) => {
                tracing::debug!(agent = uid, error = %e, "cannot offer remote config");
                return;
            }
        }
        if let Some(agent) = self.agents.get_mut(uid)
            && agent.offered.as_ref() != Some(&desired)
        {
            agent.offered = Some(desired);
            dirty.agents.insert(uid.to_owned());
        }
    }

    /// Brings one agent up to date after it reported something or (dis)connected.
    pub(crate) fn reconcile_agent(
        &mut self,
        uid: &str,
        fresh: Option<&Report>,
        now: i64,
        metrics: &Metrics,
    ) -> Dirty {
        let mut dirty = Dirty::default();
        if let Some(name) = self.sync_membership(uid, fresh, now, &mut dirty) {
            for other in self.advance(&name, now, &mut dirty) {
                self.apply_offer(&other, metrics, &mut dirty);
            }
        }
        self.apply_offer(uid, metrics, &mut dirty);
        dirty
    }

    /// Brings every agent and rollout up to date (after a configuration change).
    pub(crate) fn reconcile_all(&mut self, now: i64, metrics: &Metrics) -> Dirty {
        let mut dirty = Dirty::default();
        let uids: Vec<String> = self.agents.keys().cloned().collect();
        for uid in &uids {
            self.sync_membership(uid, None, now, &mut dirty);
        }
        let names: Vec<String> = self.rollouts.keys().cloned().collect();
        for name in &names {
            self.advance(name, now, &mut dirty);
        }
        let connected: Vec<String> = self.conns.keys().cloned().collect();
        for uid in &connected {
            self.apply_offer(uid, metrics, &mut dirty);
        }
        dirty
    }
}

/// Advances `r`; agents it admits that already run its hash are recorded at once.
fn advance_with_reports(
    r: &mut Rollout,
    agents: &std::collections::BTreeMap<String, AgentRecord>,
    now: i64,
) -> Vec<String> {
    let admitted = r.advance(now);
    for uid in &admitted {
        if let Some(status) = agents
            .get(uid)
            .and_then(|a| a.remote_config_status.as_ref())
            && status.hash == r.hash
        {
            r.record_report(uid, &status.report(), now);
        }
    }
    admitted
}
