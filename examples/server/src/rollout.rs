//! Staged rollouts of a named configuration: a pure state machine, no IO and no clock.
//!
//! A [`Rollout`] follows one version (hash) of a configuration across the agents its
//! selector matches. Agents are admitted in batches ([`Strategy`]); an admitted agent is
//! offered the configuration and moves through [`AgentPhase`]s as it reports its
//! `RemoteConfigStatus`. The next batch is admitted only once every agent of the current
//! batch has finished (applied and, with [`RolloutPolicy::require_healthy`], healthy; or
//! failed; or gone offline), and the rollout halts by itself when the failures pass
//! [`RolloutPolicy::max_failures`]. Agents that match later join the queue; once the rollout
//! completed they are admitted at once.
//!
//! The caller feeds it: [`Rollout::sync_targets`] (who matches, who is online and healthy),
//! [`Rollout::record_report`] (status reports), and calls [`Rollout::advance`], which returns
//! the agents to offer the configuration to now.
//!
//! ```
//! use std::collections::BTreeMap;
//! use opamp_fleet_server::rollout::*;
//!
//! let policy = RolloutPolicy { strategy: Strategy::Batch { size: 1 }, ..Default::default() };
//! let mut r = Rollout::new("prod", "h1", 1, policy, 0);
//! let mut targets = BTreeMap::new();
//! targets.insert("a".to_owned(), Target::online(Some(true)));
//! targets.insert("b".to_owned(), Target::online(Some(true)));
//! r.sync_targets(&targets, 0);
//! assert_eq!(r.advance(0), vec!["a".to_owned()]);
//! assert!(r.advance(0).is_empty()); // "a" has not applied yet
//! r.record_report("a", &Report::applied("h1"), 1);
//! assert_eq!(r.advance(1), vec!["b".to_owned()]);
//! r.record_report("b", &Report::applied("h1"), 2);
//! r.advance(2);
//! assert_eq!(r.state, RolloutState::Completed);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many agents each batch admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// Every matching agent at once.
    #[default]
    All,
    /// A fixed number of agents per batch.
    Batch {
        /// Agents per batch (at least 1).
        size: u32,
    },
    /// A percentage of the matching agents per batch (rounded up, at least one agent).
    Percent {
        /// 1 to 100.
        percent: u8,
    },
}

/// How a configuration version is rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutPolicy {
    /// Batch sizes.
    pub strategy: Strategy,
    /// The rollout halts when more agents than this failed to apply the configuration
    /// (`None`: never halts).
    pub max_failures: Option<u32>,
    /// A batch is finished only when its agents also report healthy (agents that do not
    /// report health count as healthy).
    pub require_healthy: bool,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            strategy: Strategy::All,
            max_failures: None,
            require_healthy: true,
        }
    }
}

impl RolloutPolicy {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        match self.strategy {
            Strategy::Batch { size: 0 } => Err("batch size must be at least 1".into()),
            Strategy::Percent { percent } if percent == 0 || percent > 100 => {
                Err("percent must be between 1 and 100".into())
            }
            _ => Ok(()),
        }
    }
}

/// Where one agent is in the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentPhase {
    /// Waiting for its batch.
    Pending,
    /// Admitted; the configuration was offered, no report yet.
    Offered,
    /// The agent reported `APPLYING`.
    Applying,
    /// The agent reported `APPLIED`.
    Applied,
    /// The agent reported `FAILED`.
    Failed,
}

/// The progress of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProgress {
    /// Its phase.
    pub phase: AgentPhase,
    /// The batch that admitted it (1-based), if admitted.
    pub batch: Option<u32>,
    /// The error the agent reported with `FAILED`.
    pub error: Option<String>,
    /// Last known health (`None`: the agent does not report health).
    pub healthy: Option<bool>,
    /// Whether the agent is connected.
    pub online: bool,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
}

/// The state of a whole rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Admitting batches.
    InProgress,
    /// Stopped by an operator; no new batch.
    Paused,
    /// Stopped because failures passed the threshold; no new batch.
    Halted,
    /// Every matching agent was admitted and finished.
    Completed,
}

/// What the caller knows about a matching agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Health (`None`: not reported).
    pub healthy: Option<bool>,
    /// Connected now.
    pub online: bool,
}

impl Target {
    /// A connected agent.
    pub fn online(healthy: Option<bool>) -> Self {
        Self {
            healthy,
            online: true,
        }
    }

    /// A disconnected agent.
    pub fn offline(healthy: Option<bool>) -> Self {
        Self {
            healthy,
            online: false,
        }
    }
}

/// A remote config status report, as the rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Hex of `last_remote_config_hash`.
    pub hash: String,
    /// The reported status.
    pub status: ReportedStatus,
    /// `error_message`.
    pub error: String,
}

/// `RemoteConfigStatuses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportedStatus {
    /// UNSET.
    Unset,
    /// APPLIED.
    Applied,
    /// APPLYING.
    Applying,
    /// FAILED.
    Failed,
}

impl Report {
    /// `APPLIED` for `hash`.
    pub fn applied(hash: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            status: ReportedStatus::Applied,
            error: String::new(),
        }
    }

    /// `FAILED` for `hash` with `error`.
    pub fn failed(hash: &str, error: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            status: ReportedStatus::Failed,
            error: error.to_owned(),
        }
    }
}

/// Counts of agents per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RolloutCounts {
    /// Waiting for a batch.
    pub pending: usize,
    /// Offered, no report.
    pub offered: usize,
    /// Applying.
    pub applying: usize,
    /// Applied.
    pub applied: usize,
    /// Failed.
    pub failed: usize,
}

/// The rollout of one configuration version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The configuration's name.
    pub config: String,
    /// The version's hash (hex).
    pub hash: String,
    /// The configuration version.
    pub version: u64,
    /// The policy.
    pub policy: RolloutPolicy,
    /// The state.
    pub state: RolloutState,
    /// Why it halted.
    pub halt_reason: Option<String>,
    /// Number of the last admitted batch (0: none yet).
    pub current_batch: u32,
    /// Failures an operator accepted when resuming a halted rollout; only failures beyond
    /// them count towards the threshold.
    pub acknowledged_failures: u32,
    /// Per agent (instance UID) progress.
    pub agents: BTreeMap<String, AgentProgress>,
    /// Start time, Unix milliseconds.
    pub started_at: i64,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
}

impl Rollout {
    /// A new rollout of version `version` (hash `hash`) of configuration `config`.
    pub fn new(config: &str, hash: &str, version: u64, policy: RolloutPolicy, now: i64) -> Self {
        Self {
            config: config.to_owned(),
            hash: hash.to_owned(),
            version,
            policy,
            state: RolloutState::InProgress,
            halt_reason: None,
            current_batch: 0,
            acknowledged_failures: 0,
            agents: BTreeMap::new(),
            started_at: now,
            updated_at: now,
        }
    }

    /// True if `uid` was admitted (it should have this configuration offered), unless it
    /// failed it.
    pub fn admits(&self, uid: &str) -> bool {
        self.agents
            .get(uid)
            .is_some_and(|p| !matches!(p.phase, AgentPhase::Pending))
    }

    /// Agents per phase.
    pub fn counts(&self) -> RolloutCounts {
        let mut c = RolloutCounts::default();
        for p in self.agents.values() {
            match p.phase {
                AgentPhase::Pending => c.pending += 1,
                AgentPhase::Offered => c.offered += 1,
                AgentPhase::Applying => c.applying += 1,
                AgentPhase::Applied => c.applied += 1,
                AgentPhase::Failed => c.failed += 1,
            }
        }
        c
    }

    /// Updates the set of matching agents: new ones join as pending; agents that no longer
    /// match leave; health and connectivity are refreshed. True if anything changed.
    pub fn sync_targets(&mut self, targets: &BTreeMap<String, Target>, now: i64) -> bool {
        let before = self.agents.len();
        self.agents.retain(|uid, _| targets.contains_key(uid));
        let mut changed = before != self.agents.len();
        for (uid, t) in targets {
            changed |= self.upsert_target(uid, *t, now);
        }
        if changed {
            self.updated_at = now;
        }
        changed
    }

    /// Adds one matching agent (as pending) or refreshes its health and connectivity. True if
    /// anything changed.
    pub fn upsert_target(&mut self, uid: &str, t: Target, now: i64) -> bool {
        match self.agents.get_mut(uid) {
            Some(entry) => {
                if entry.healthy == t.healthy && entry.online == t.online {
                    return false;
                }
                entry.healthy = t.healthy;
                entry.online = t.online;
            }
            None => {
                self.agents.insert(
                    uid.to_owned(),
                    AgentProgress {
                        phase: AgentPhase::Pending,
                        batch: None,
                        error: None,
                        healthy: t.healthy,
                        online: t.online,
                        updated_at: now,
                    },
                );
            }
        }
        self.updated_at = now;
        true
    }

    /// Removes an agent that no longer matches. True if it was there.
    pub fn remove_target(&mut self, uid: &str, now: i64) -> bool {
        let removed = self.agents.remove(uid).is_some();
        if removed {
            self.updated_at = now;
        }
        removed
    }

    /// Records a status report of `uid`. A report for this rollout's hash sets the phase; a
    /// `FAILED` report for another hash while the agent is applying this one (an agent that
    /// rolled back) is a failure too. True if the phase changed.
    pub fn record_report(&mut self, uid: &str, report: &Report, now: i64) -> bool {
        let Some(p) = self.agents.get_mut(uid) else {
            return false;
        };
        if p.phase == AgentPhase::Pending {
            return false;
        }
        let (phase, error) = if report.hash == self.hash {
            match report.status {
                ReportedStatus::Applied => (AgentPhase::Applied, None),
                ReportedStatus::Applying => (AgentPhase::Applying, None),
                ReportedStatus::Failed => (AgentPhase::Failed, Some(report.error.clone())),
                ReportedStatus::Unset => return false,
            }
        } else if report.status == ReportedStatus::Failed
            && matches!(p.phase, AgentPhase::Offered | AgentPhase::Applying)
        {
            (AgentPhase::Failed, Some(report.error.clone()))
        } else {
            return false;
        };
        if p.phase == phase && p.error == error {
            return false;
        }
        p.phase = phase;
        p.error = error;
        p.updated_at = now;
        self.updated_at = now;
        true
    }

    fn failures(&self) -> u32 {
        let n = self
            .agents
            .values()
            .filter(|p| p.phase == AgentPhase::Failed)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn batch_size(&self) -> usize {
        let total = self.agents.len();
        match self.policy.strategy {
            Strategy::All => total.max(1),
            Strategy::Batch { size } => (size as usize).max(1),
            Strategy::Percent { percent } => {
                (total * usize::from(percent.min(100))).div_ceil(100).max(1)
            }
        }
    }

    /// True if the agent no longer holds its batch back.
    fn finished(&self, p: &AgentProgress) -> bool {
        match p.phase {
            AgentPhase::Failed => true,
            AgentPhase::Applied => !self.policy.require_healthy || p.healthy != Some(false),
            AgentPhase::Offered | AgentPhase::Applying => !p.online,
            AgentPhase::Pending => false,
        }
    }

    /// Moves the rollout forward: halts on too many failures, admits the next batch when the
    /// current one finished, completes when nothing is left. Returns the agents admitted now
    /// (to be offered the configuration).
    pub fn advance(&mut self, now: i64) -> Vec<String> {
        let mut admitted = Vec::new();
        match self.state {
            RolloutState::Paused | RolloutState::Halted => return admitted,
            RolloutState::Completed => {
                // Agents that matched after completion get the configuration at once.
                for (uid, p) in &mut self.agents {
                    if p.phase == AgentPhase::Pending && p.online {
                        p.phase = AgentPhase::Offered;
                        p.batch = Some(self.current_batch.max(1));
                        p.updated_at = now;
                        admitted.push(uid.clone());
                    }
                }
                if !admitted.is_empty() {
                    self.updated_at = now;
                }
                return admitted;
            }
            RolloutState::InProgress => {}
        }
        if let Some(max) = self.policy.max_failures {
            let failures = self.failures().saturating_sub(self.acknowledged_failures);
            if failures > max {
                self.state = RolloutState::Halted;
                self.halt_reason = Some(format!(
                    "{failures} agents failed to apply the configuration (threshold {max})"
                ));
                self.updated_at = now;
                return admitted;
            }
        }
        let batch_done = self
            .agents
            .values()
            .filter(|p| p.phase != AgentPhase::Pending)
            .all(|p| self.finished(p));
        if !batch_done {
            return admitted;
        }
        let size = self.batch_size();
        let next = self.current_batch + 1;
        for (uid, p) in &mut self.agents {
            if admitted.len() == size {
                break;
            }
            if p.phase == AgentPhase::Pending && p.online {
                p.phase = AgentPhase::Offered;
                p.batch = Some(next);
                p.updated_at = now;
                admitted.push(uid.clone());
            }
        }
        if !admitted.is_empty() {
            self.current_batch = next;
            self.updated_at = now;
        } else if self.agents.values().all(|p| p.phase != AgentPhase::Pending) {
            self.state = RolloutState::Completed;
            self.updated_at = now;
        }
        admitted
    }

    /// Stops admitting batches (an operator's decision).
    pub fn pause(&mut self, now: i64) -> bool {
        if self.state == RolloutState::InProgress {
            self.state = RolloutState::Paused;
            self.updated_at = now;
            true
        } else {
            false
        }
    }

    /// Resumes a paused or halted rollout; the failures so far are accepted and only new
    /// ones count towards the threshold.
    pub fn resume(&mut self, now: i64) -> bool {
        if matches!(self.state, RolloutState::Paused | RolloutState::Halted) {
            self.acknowledged_failures = self.failures();
            self.state = RolloutState::InProgress;
            self.halt_reason = None;
            self.updated_at = now;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(n: usize) -> BTreeMap<String, Target> {
        (0..n)
            .map(|i| (format!("a{i:02}"), Target::online(Some(true))))
            .collect()
    }

    fn staged(strategy: Strategy, max_failures: Option<u32>) -> Rollout {
        Rollout::new(
            "c",
            "h",
            1,
            RolloutPolicy {
                strategy,
                max_failures,
                require_healthy: true,
            },
            0,
        )
    }

    #[test]
    fn all_at_once() {
        let mut r = staged(Strategy::All, None);
        r.sync_targets(&targets(5), 0);
        assert_eq!(r.advance(0).len(), 5);
        for i in 0..5 {
            r.record_report(&format!("a{i:02}"), &Report::applied("h"), 1);
        }
        assert!(r.advance(1).is_empty());
        assert_eq!(r.state, RolloutState::Completed);
        assert_eq!(r.counts().applied, 5);
    }

    #[test]
    fn percent_batches_wait_for_applied_and_healthy() {
        let mut r = staged(Strategy::Percent { percent: 30 }, None);
        let mut t = targets(10);
        r.sync_targets(&t, 0);
        let b1 = r.advance(0);
        assert_eq!(b1.len(), 3);
        for uid in &b1 {
            assert_eq!(r.advance(0), Vec::<String>::new());
            r.record_report(uid, &Report::applied("h"), 1);
        }
        // Applied but one is unhealthy: the batch is not finished.
        t.insert(b1[0].clone(), Target::online(Some(false)));
        r.sync_targets(&t, 2);
        assert!(r.advance(2).is_empty());
        t.insert(b1[0].clone(), Target::online(Some(true)));
        r.sync_targets(&t, 3);
        let b2 = r.advance(3);
        assert_eq!(b2.len(), 3);
        assert!(b2.iter().all(|u| r.agents[u].batch == Some(2)));
        assert_eq!(r.counts().pending, 4);
    }

    #[test]
    fn applying_is_tracked_and_other_hashes_are_ignored() {
        let mut r = staged(Strategy::Batch { size: 1 }, None);
        r.sync_targets(&targets(2), 0);
        let uid = r.advance(0).remove(0);
        let applying = Report {
            hash: "h".into(),
            status: ReportedStatus::Applying,
            error: String::new(),
        };
        assert!(r.record_report(&uid, &applying, 1));
        assert_eq!(r.agents[&uid].phase, AgentPhase::Applying);
        assert!(!r.record_report(&uid, &Report::applied("other"), 1));
        assert!(
            !r.record_report("a01", &Report::applied("h"), 1),
            "pending agent"
        );
        assert!(
            !r.record_report("zz", &Report::applied("h"), 1),
            "unknown agent"
        );
    }

    #[test]
    fn halts_when_failures_pass_the_threshold_and_resumes() {
        let mut r = staged(Strategy::Batch { size: 2 }, Some(1));
        r.sync_targets(&targets(6), 0);
        let b1 = r.advance(0);
        r.record_report(&b1[0], &Report::failed("h", "bad receiver"), 1);
        r.record_report(&b1[1], &Report::applied("h"), 1);
        // One failure is within the threshold: the next batch goes.
        let b2 = r.advance(1);
        assert_eq!(b2.len(), 2);
        r.record_report(&b2[0], &Report::failed("other-hash", "rolled back"), 2);
        assert!(r.advance(2).is_empty());
        assert_eq!(r.state, RolloutState::Halted);
        assert!(
            r.halt_reason
                .as_deref()
                .unwrap()
                .contains("2 agents failed")
        );
        assert_eq!(r.agents[&b2[0]].error.as_deref(), Some("rolled back"));
        // Nothing moves while halted.
        r.record_report(&b2[1], &Report::applied("h"), 3);
        assert!(r.advance(3).is_empty());
        assert!(r.resume(4));
        assert_eq!(r.advance(4).len(), 2);
    }

    #[test]
    fn pause_stops_batches() {
        let mut r = staged(Strategy::Batch { size: 1 }, None);
        r.sync_targets(&targets(2), 0);
        let b1 = r.advance(0);
        r.record_report(&b1[0], &Report::applied("h"), 1);
        assert!(r.pause(1));
        assert!(!r.pause(1));
        assert!(r.advance(1).is_empty());
        assert!(r.resume(2));
        assert_eq!(r.advance(2).len(), 1);
    }

    #[test]
    fn offline_agents_neither_join_nor_block() {
        let mut r = staged(Strategy::Batch { size: 1 }, None);
        let mut t = targets(3);
        t.insert("a00".into(), Target::offline(None));
        r.sync_targets(&t, 0);
        let b1 = r.advance(0);
        assert_eq!(b1, vec!["a01".to_owned()]);
        // a01 disconnects before applying: it no longer holds the rollout back.
        t.insert("a01".into(), Target::offline(Some(true)));
        r.sync_targets(&t, 1);
        assert_eq!(r.advance(1), vec!["a02".to_owned()]);
    }

    #[test]
    fn late_agents_join_and_completed_rollouts_admit_them_at_once() {
        let mut r = staged(Strategy::Batch { size: 5 }, None);
        let mut t = targets(1);
        r.sync_targets(&t, 0);
        let b1 = r.advance(0);
        r.record_report(&b1[0], &Report::applied("h"), 1);
        r.advance(1);
        assert_eq!(r.state, RolloutState::Completed);
        t.insert("late".into(), Target::online(None));
        assert!(r.sync_targets(&t, 2));
        assert_eq!(r.advance(2), vec!["late".to_owned()]);
        assert!(r.admits("late"));
        // Agents that stop matching leave the rollout.
        t.remove("late");
        r.sync_targets(&t, 3);
        assert!(!r.agents.contains_key("late"));
    }

    #[test]
    fn policy_validation() {
        assert!(RolloutPolicy::default().validate().is_ok());
        let bad = |strategy| RolloutPolicy {
            strategy,
            ..Default::default()
        };
        assert!(bad(Strategy::Batch { size: 0 }).validate().is_err());
        assert!(bad(Strategy::Percent { percent: 0 }).validate().is_err());
        assert!(bad(Strategy::Percent { percent: 101 }).validate().is_err());
    }
}
