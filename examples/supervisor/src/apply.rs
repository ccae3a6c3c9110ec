//! Applying changes with rollback, as a state machine without IO or clock reads.
//!
//! What the agent should run is a [`Desired`]: the remote configuration, the own-telemetry
//! destinations and the executable. The machine keeps the **last good** one (it became
//! healthy) and the **latest** one (what the server and package updates ask for), and tries
//! one **candidate** at a time:
//!
//! 1. a change makes a candidate; the supervisor deploys it ([`Step::Deploy`]) and reports
//!    `APPLYING`;
//! 2. the agent is healthy, and stays healthy for the stable time, before the apply timeout:
//!    the candidate is the new last good ([`Step::Applied`]). The stable time catches an
//!    agent that fails shortly after it first answers (or, with a reload by signal, an
//!    answer given before the reload took effect);
//! 3. the agent exits, or the timeout passes, or the candidate cannot be deployed: the
//!    candidate failed ([`Step::Failed`]), the parts that changed are refused (a failed remote
//!    hash is not tried again, offered telemetry and executable revert), and the last good is
//!    deployed again (rollback), so a bad change never leaves the agent down.
//!
//! Changes that arrive during an attempt wait (only the latest of each part is kept) and are
//! tried when the attempt ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::own_telemetry::OwnTelemetry;
use crate::remote::RemoteConfig;

/// What the agent runs: configuration layers and executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// The remote configuration (`None`: only the local layers).
    pub remote: Option<RemoteConfig>,
    /// Own telemetry destinations.
    pub telemetry: OwnTelemetry,
    /// The agent executable.
    pub executable: PathBuf,
}

impl Desired {
    /// Only the local configuration, with `executable`.
    pub fn local(executable: impl Into<PathBuf>) -> Self {
        Desired {
            remote: None,
            telemetry: OwnTelemetry::default(),
            executable: executable.into(),
        }
    }

    /// The remote configuration hash (empty without one).
    pub fn remote_hash(&self) -> &[u8] {
        self.remote.as_ref().map_or(&[], |r| &r.hash)
    }
}

/// What the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the configuration of `desired` and (re)start the agent on it.
    Deploy {
        /// What to run.
        desired: Desired,
        /// Whether this returns to the last good state after a failure.
        rollback: bool,
    },
    /// The candidate became healthy and is now the last good state.
    Applied {
        /// The last good state before.
        previous: Desired,
        /// The new last good state.
        applied: Desired,
    },
    /// The candidate failed.
    Failed {
        /// The last good state (deployed again unless another candidate follows).
        good: Desired,
        /// The candidate that failed.
        candidate: Desired,
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Attempt {
    candidate: Desired,
    deadline: Instant,
    healthy_since: Option<Instant>,
}

/// The apply/rollback state machine.
#[derive(Debug, Clone)]
pub struct ApplyMachine {
    timeout: Duration,
    stable: Duration,
    good: Desired,
    latest: Desired,
    failed_remote: Option<Vec<u8>>,
    attempt: Option<Attempt>,
}

impl ApplyMachine {
    /// A machine that last ran `good` healthily, is asked for `latest`, and knows that the
    /// remote configuration with hash `failed_remote` failed. `timeout`: how long a candidate
    /// has to become healthy.
    pub fn new(
        good: Desired,
        latest: Desired,
        failed_remote: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Self {
        ApplyMachine {
            timeout,
            stable: Duration::ZERO,
            good,
            latest,
            failed_remote,
            attempt: None,
        }
    }

    /// Requires a candidate to stay healthy for `stable` before it counts as applied
    /// (default: the first healthy check is enough).
    #[must_use]
    pub fn with_stable_time(mut self, stable: Duration) -> Self {
        self.stable = stable;
        self
    }

    /// The last good state.
    pub fn good(&self) -> &Desired {
        &self.good
    }

    /// What is asked for.
    pub fn latest(&self) -> &Desired {
        &self.latest
    }

    /// The hash of the remote configuration that failed last.
    pub fn failed_remote(&self) -> Option<&[u8]> {
        self.failed_remote.as_deref()
    }

    /// The candidate being tried.
    pub fn candidate(&self) -> Option<&Desired> {
        self.attempt.as_ref().map(|a| &a.candidate)
    }

    /// When [`tick`](Self::tick) has something to do: the attempt times out, or its stable
    /// time is over.
    pub fn deadline(&self) -> Option<Instant> {
        self.attempt.as_ref().map(|a| match a.healthy_since {
            Some(since) => a.deadline.min(since + self.stable),
            None => a.deadline,
        })
    }

    /// What to try next: the latest state, without a remote configuration known to fail.
    fn next_candidate(&self) -> Desired {
        let mut candidate = self.latest.clone();
        if candidate.remote.is_some()
            && self.failed_remote.as_deref() == Some(candidate.remote_hash())
        {
            candidate.remote = self.good.remote.clone();
        }
        candidate
    }

    fn try_next(&mut self, now: Instant) -> Vec<Step> {
        if self.attempt.is_some() {
            return Vec::new();
        }
        let candidate = self.next_candidate();
        if candidate == self.good {
            return Vec::new();
        }
        self.attempt = Some(Attempt {
            candidate: candidate.clone(),
            deadline: now + self.timeout,
            healthy_since: None,
        });
        vec![Step::Deploy {
            desired: candidate,
            rollback: false,
        }]
    }

    /// The first steps: try the latest state if it differs from the last good one (e.g. the
    /// supervisor stopped during an attempt), else run the last good one.
    pub fn start(&mut self, now: Instant) -> Vec<Step> {
        let steps = self.try_next(now);
        if steps.is_empty() {
            vec![Step::Deploy {
                desired: self.good.clone(),
                rollback: false,
            }]
        } else {
            steps
        }
    }

    /// The server offered a remote configuration.
    pub fn offer_remote(&mut self, remote: RemoteConfig, now: Instant) -> Vec<Step> {
        self.latest.remote = Some(remote);
        self.try_next(now)
    }

    /// The own-telemetry destinations changed.
    pub fn offer_telemetry(&mut self, telemetry: OwnTelemetry, now: Instant) -> Vec<Step> {
        self.latest.telemetry = telemetry;
        self.try_next(now)
    }

    /// A new executable was installed.
    pub fn offer_executable(&mut self, executable: PathBuf, now: Instant) -> Vec<Step> {
        self.latest.executable = executable;
        self.try_next(now)
    }

    /// A health check of the deployed agent succeeded.
    pub fn healthy(&mut self, now: Instant) -> Vec<Step> {
        let Some(attempt) = &mut self.attempt else {
            return Vec::new();
        };
        let since = *attempt.healthy_since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.stable {
            return Vec::new();
        }
        self.applied(now)
    }

    /// A health check of the deployed agent failed: the stable time starts again.
    pub fn unhealthy(&mut self) {
        if let Some(attempt) = &mut self.attempt {
            attempt.healthy_since = None;
        }
    }

    fn applied(&mut self, now: Instant) -> Vec<Step> {
        let Some(attempt) = self.attempt.take() else {
            return Vec::new();
        };
        let previous = std::mem::replace(&mut self.good, attempt.candidate.clone());
        let mut steps = vec![Step::Applied {
            previous,
            applied: attempt.candidate,
        }];
        steps.extend(self.try_next(now));
        steps
    }

    /// The agent exited (or could not start); during an attempt, the candidate failed.
    pub fn agent_exited(&mut self, reason: &str, now: Instant) -> Vec<Step> {
        self.fail(reason.to_owned(), now)
    }

    /// The candidate could not be deployed (e.g. its configuration cannot be built).
    pub fn deploy_failed(&mut self, reason: &str, now: Instant) -> Vec<Step> {
        self.fail(reason.to_owned(), now)
    }

    /// Time passed: an attempt healthy for its whole stable time is applied; an attempt past
    /// its deadline failed.
    pub fn tick(&mut self, now: Instant) -> Vec<Step> {
        match &self.attempt {
            Some(attempt)
                if attempt
                    .healthy_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= self.stable) =>
            {
                self.applied(now)
            }
            Some(attempt) if now >= attempt.deadline => self.fail(
                format!(
                    "the agent did not become healthy within {}",
                    opamp_example_agent::yaml::duration::format_duration(self.timeout)
                ),
                now,
            ),
            _ => Vec::new(),
        }
    }

    fn fail(&mut self, reason: String, now: Instant) -> Vec<Step> {
        let Some(attempt) = self.attempt.take() else {
            return Vec::new();
        };
        let candidate = attempt.candidate;
        if candidate.remote != self.good.remote
            && let Some(remote) = &candidate.remote
        {
            self.failed_remote = Some(remote.hash.clone());
        }
        if candidate.telemetry != self.good.telemetry {
            self.latest.telemetry = self.good.telemetry.clone();
        }
        if candidate.executable != self.good.executable {
            self.latest.executable = self.good.executable.clone();
        }
        let mut steps = vec![Step::Failed {
            good: self.good.clone(),
            candidate,
            reason,
        }];
        let next = self.try_next(now);
        if next.is_empty() {
            steps.push(Step::Deploy {
                desired: self.good.clone(),
                rollback: true,
            });
        } else {
            steps.extend(next);
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::own_telemetry::Destination;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn remote(hash: u8) -> RemoteConfig {
        RemoteConfig {
            hash: vec![hash],
            files: BTreeMap::new(),
        }
    }

    fn with_remote(hash: u8) -> Desired {
        Desired {
            remote: Some(remote(hash)),
            ..Desired::local("/bin/agent")
        }
    }

    fn machine() -> ApplyMachine {
        let local = Desired::local("/bin/agent");
        ApplyMachine::new(local.clone(), local, None, TIMEOUT)
    }

    fn deploy(desired: Desired, rollback: bool) -> Step {
        Step::Deploy { desired, rollback }
    }

    #[test]
    fn start_runs_the_last_good_state() {
        let mut m = machine();
        assert_eq!(
            m.start(Instant::now()),
            [deploy(Desired::local("/bin/agent"), false)]
        );
        assert!(m.deadline().is_none());
    }

    #[test]
    fn start_resumes_an_interrupted_attempt() {
        let good = with_remote(1);
        let mut m = ApplyMachine::new(good, with_remote(2), None, TIMEOUT);
        assert_eq!(m.start(Instant::now()), [deploy(with_remote(2), false)]);
        assert!(m.deadline().is_some());
    }

    #[test]
    fn a_healthy_candidate_becomes_good() {
        let mut m = machine();
        let now = Instant::now();
        assert_eq!(
            m.offer_remote(remote(1), now),
            [deploy(with_remote(1), false)]
        );
        assert_eq!(m.deadline(), Some(now + TIMEOUT));
        let steps = m.healthy(now + Duration::from_secs(1));
        assert_eq!(
            steps,
            [Step::Applied {
                previous: Desired::local("/bin/agent"),
                applied: with_remote(1)
            }]
        );
        assert_eq!(m.good(), &with_remote(1));
        assert!(m.deadline().is_none());
        // Healthy again: nothing more.
        assert!(m.healthy(now).is_empty());
    }

    #[test]
    fn an_exit_during_the_attempt_rolls_back() {
        let mut m = machine();
        let now = Instant::now();
        m.offer_remote(remote(1), now);
        let steps = m.agent_exited("exit status 1", now);
        assert_eq!(
            steps,
            [
                Step::Failed {
                    good: Desired::local("/bin/agent"),
                    candidate: with_remote(1),
                    reason: "exit status 1".into()
                },
                deploy(Desired::local("/bin/agent"), true),
            ]
        );
        assert_eq!(m.failed_remote(), Some(&[1u8][..]));
        // The failed configuration is not tried again, even when offered again.
        assert!(m.offer_remote(remote(1), now).is_empty());
        // A new one is.
        assert_eq!(
            m.offer_remote(remote(2), now),
            [deploy(with_remote(2), false)]
        );
    }

    #[test]
    fn the_timeout_fails_the_attempt() {
        let mut m = machine();
        let now = Instant::now();
        m.offer_remote(remote(1), now);
        assert!(m.tick(now + TIMEOUT - Duration::from_millis(1)).is_empty());
        let steps = m.tick(now + TIMEOUT);
        match &steps[0] {
            Step::Failed { reason, .. } => assert!(reason.contains("30s"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(steps[1], deploy(Desired::local("/bin/agent"), true));
        // After the attempt, a crash of the good agent is not a failure.
        assert!(m.agent_exited("crash", now).is_empty());
    }

    #[test]
    fn changes_during_an_attempt_wait_and_latest_wins() {
        let mut m = machine();
        let now = Instant::now();
        m.offer_remote(remote(1), now);
        assert!(m.offer_remote(remote(2), now).is_empty());
        assert!(m.offer_remote(remote(3), now).is_empty());
        let steps = m.healthy(now);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1], deploy(with_remote(3), false));
        // Its failure rolls back to the good state.
        let steps = m.agent_exited("bad", now);
        assert!(
            matches!(&steps[0], Step::Failed { candidate, .. } if *candidate == with_remote(3))
        );
        assert_eq!(steps[1], deploy(with_remote(1), true));
    }

    #[test]
    fn after_a_failure_a_waiting_change_goes_next() {
        let mut m = machine();
        let now = Instant::now();
        m.offer_remote(remote(1), now);
        m.offer_remote(remote(2), now);
        let steps = m.agent_exited("bad", now);
        assert!(
            matches!(&steps[0], Step::Failed { candidate, .. } if *candidate == with_remote(1))
        );
        assert_eq!(steps[1], deploy(with_remote(2), false));
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn a_failed_executable_reverts_and_a_good_one_sticks() {
        let mut m = machine();
        let now = Instant::now();
        let new_exe = Desired::local("/data/agent-v2");
        assert_eq!(
            m.offer_executable("/data/agent-v2".into(), now),
            [deploy(new_exe.clone(), false)]
        );
        let steps = m.tick(now + TIMEOUT);
        assert!(
            matches!(&steps[0], Step::Failed { candidate, .. } if candidate.executable == new_exe.executable)
        );
        assert_eq!(m.latest().executable, PathBuf::from("/bin/agent"));
        // A remote configuration offered later does not bring the bad binary back.
        assert_eq!(
            m.offer_remote(remote(1), now),
            [deploy(with_remote(1), false)]
        );
        m.healthy(now);
        assert_eq!(
            m.offer_executable("/data/agent-v3".into(), now),
            [deploy(
                Desired {
                    executable: "/data/agent-v3".into(),
                    ..with_remote(1)
                },
                false
            )]
        );
        m.healthy(now);
        assert_eq!(m.good().executable, PathBuf::from("/data/agent-v3"));
    }

    #[test]
    fn telemetry_changes_are_applied_and_reverted_like_configs() {
        let mut m = machine();
        let now = Instant::now();
        let telemetry = OwnTelemetry {
            metrics: Some(Destination {
                endpoint: "http://m/v1/metrics".into(),
                headers: BTreeMap::new(),
            }),
            ..Default::default()
        };
        assert_eq!(m.offer_telemetry(telemetry.clone(), now).len(), 1);
        let steps = m.deploy_failed("cannot write", now);
        assert_eq!(steps.len(), 2);
        assert_eq!(m.latest().telemetry, OwnTelemetry::default());
        assert_eq!(m.offer_telemetry(telemetry.clone(), now).len(), 1);
        m.healthy(now);
        assert_eq!(m.good().telemetry, telemetry);
    }

    #[test]
    fn the_stable_time_must_pass_without_a_failed_check() {
        let local = Desired::local("/bin/agent");
        let stable = Duration::from_secs(2);
        let mut m = ApplyMachine::new(local.clone(), local, None, TIMEOUT).with_stable_time(stable);
        let t0 = Instant::now();
        m.offer_remote(remote(1), t0);
        assert!(m.healthy(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(m.deadline(), Some(t0 + Duration::from_secs(3)));
        m.unhealthy();
        assert_eq!(m.deadline(), Some(t0 + TIMEOUT));
        assert!(m.healthy(t0 + Duration::from_secs(2)).is_empty());
        assert!(m.healthy(t0 + Duration::from_secs(3)).is_empty());
        // An exit within the stable time fails the attempt.
        let mut failing = m.clone();
        assert!(matches!(
            failing.agent_exited("crash", t0 + Duration::from_secs(3))[0],
            Step::Failed { .. }
        ));
        // Healthy long enough: applied, by a check or by the clock.
        let mut by_tick = m.clone();
        assert!(matches!(
            m.healthy(t0 + Duration::from_secs(4))[0],
            Step::Applied { .. }
        ));
        assert!(by_tick.tick(t0 + Duration::from_millis(3999)).is_empty());
        assert!(matches!(
            by_tick.tick(t0 + Duration::from_secs(4))[0],
            Step::Applied { .. }
        ));
    }

    #[test]
    fn a_stable_time_longer_than_the_timeout_fails() {
        let local = Desired::local("/bin/agent");
        let mut m = ApplyMachine::new(local.clone(), local, None, Duration::from_secs(5))
            .with_stable_time(Duration::from_secs(10));
        let t0 = Instant::now();
        m.offer_remote(remote(1), t0);
        m.healthy(t0);
        assert_eq!(m.deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(matches!(
            m.tick(t0 + Duration::from_secs(5))[0],
            Step::Failed { .. }
        ));
    }

    #[test]
    fn an_offer_equal_to_the_good_state_does_nothing() {
        let mut m = ApplyMachine::new(with_remote(1), with_remote(1), None, TIMEOUT);
        assert!(m.offer_remote(remote(1), Instant::now()).is_empty());
        assert!(m.tick(Instant::now() + TIMEOUT).is_empty());
    }
}
