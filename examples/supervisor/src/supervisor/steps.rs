//! Carrying out the state machine's steps: deploy (write the configuration, restart or
//! signal the agent), report applied and failed changes, start and stop the agent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use opamp_client::proto::RemoteConfigStatuses;

use super::{BIN_DIR, Loop};
use crate::apply::{Desired, Step};
use crate::config::ReloadMode;
use crate::health::AgentHealth;
use crate::leftover::AgentRecord;
use crate::merge::{HealthCheck, Layers, render};
use crate::packages::remove_other_executables;
use crate::process::{AgentProcess, LaunchSpec, describe_exit};
use crate::remote::hex;

impl Loop {
    /// Executes steps, and the steps they lead to.
    pub(super) async fn execute(&mut self, steps: Vec<Step>) {
        self.run_steps(steps.into()).await;
    }

    pub(super) async fn run_steps(&mut self, mut work: VecDeque<Step>) {
        while let Some(step) = work.pop_front() {
            match step {
                Step::Deploy { desired, rollback } => {
                    self.deploy(desired, rollback, &mut work).await;
                }
                Step::Applied { previous, applied } => {
                    // Persisted before the server is told, and before the previous
                    // executable is removed: a crash in between must not leave a state that
                    // names a deleted executable or disagrees with what was reported.
                    self.save_state();
                    tracing::info!(
                        remote_hash = %hex(applied.remote_hash()),
                        executable = %applied.executable.display(),
                        "the agent is healthy with the new configuration"
                    );
                    if let Some(remote) = &applied.remote {
                        self.report_status(&remote.hash, RemoteConfigStatuses::Applied, "");
                    }
                    if applied.executable != previous.executable {
                        if let Some(request) = self.pending_install.take() {
                            let _ = request.reply.send(Ok(()));
                        }
                        remove_other_executables(
                            &self.config.storage_dir.join(BIN_DIR),
                            &applied.executable,
                        );
                    }
                }
                Step::Failed {
                    good,
                    candidate,
                    reason,
                } => {
                    self.save_state();
                    let back_to = match &good.remote {
                        Some(remote) => format!("the remote configuration {}", remote.hash_hex()),
                        None => "the local configuration".into(),
                    };
                    tracing::warn!(%reason, rolled_back_to = %back_to, "the change failed; rolling back");
                    if candidate.remote != good.remote
                        && let Some(remote) = &candidate.remote
                    {
                        let message = format!("{reason}\n(rolled back to {back_to})");
                        self.report_status(&remote.hash, RemoteConfigStatuses::Failed, &message);
                    }
                    if candidate.executable != good.executable
                        && let Some(request) = self.pending_install.take()
                    {
                        let _ = request
                            .reply
                            .send(Err(format!("{reason} (previous executable restored)")));
                    }
                }
            }
        }
    }

    pub(super) fn render(&self, desired: &Desired) -> Result<String, String> {
        let agent = &self.config.agent;
        let endpoint = agent.health_check_endpoint();
        let check = HealthCheck {
            endpoint: &endpoint,
            port: agent.health_check_port(),
            path: agent.health_check_url.path(),
        };
        render(&Layers {
            base: agent.base_config.as_ref(),
            remote: desired.remote.as_ref(),
            telemetry: &desired.telemetry,
            own_metrics_target: &agent.own_metrics_target,
            health_check: agent.inject_health_check.then_some(check),
        })
    }

    pub(super) async fn deploy(
        &mut self,
        desired: Desired,
        rollback: bool,
        work: &mut VecDeque<Step>,
    ) {
        let now = Instant::now();
        if rollback && self.deployed.as_ref() == Some(&desired) && self.agent.is_some() {
            // The candidate never reached the agent: nothing to roll back.
            return;
        }
        let text = match self.render(&desired) {
            Ok(text) => text,
            Err(reason) if !rollback => {
                work.extend(self.machine.deploy_failed(&reason, now));
                return;
            }
            Err(reason) => {
                tracing::error!(%reason, "cannot build the last good configuration; using the local configuration only");
                let local = Desired::local(desired.executable.clone());
                self.render(&local).unwrap_or_else(|_| "{}\n".into())
            }
        };
        if !rollback
            && desired.remote != self.machine.good().remote
            && let Some(remote) = &desired.remote
        {
            tracing::info!(hash = %remote.hash_hex(), "applying a remote configuration");
            self.report_status(&remote.hash, RemoteConfigStatuses::Applying, "");
        }
        let file = &self.config.agent.config_file;
        if let Err(err) = opamp_client::persistence::write_atomic(file, text.as_bytes(), true) {
            let reason = format!("cannot write {}: {err}", file.display());
            tracing::error!(%reason);
            if !rollback {
                work.extend(self.machine.deploy_failed(&reason, now));
                return;
            }
        } else {
            tracing::info!(file = %file.display(), "effective configuration written");
        }
        self.report_effective_config(&text);
        let same_executable = self
            .deployed
            .as_ref()
            .is_some_and(|d| d.executable == desired.executable);
        self.deployed = Some(desired);
        if self.config.agent.reload == ReloadMode::Sighup
            && same_executable
            && let Some(agent) = &self.agent
        {
            match agent.reload() {
                Ok(()) => {
                    tracing::info!(
                        pid = agent.pid(),
                        "asked the agent to reload its configuration (SIGHUP)"
                    );
                    self.health = AgentHealth::Starting { last_error: None };
                    self.next_probe = Some(now + self.config.agent.health_check_interval);
                    return;
                }
                Err(err) => tracing::warn!(%err, "cannot signal the agent; restarting it"),
            }
        }
        self.restart_agent(work).await;
    }

    pub(super) async fn stop_agent(&mut self) {
        if let Some(process) = self.agent.take() {
            // Removed first: a supervisor killed during the stop finds no record, and the
            // parent death signal (or the stop under way) ends the agent.
            AgentRecord::remove(&self.config.storage_dir);
            let pid = process.pid();
            match process.stop(self.config.agent.stop_timeout).await {
                Ok(status) => {
                    tracing::info!(pid, how = %describe_exit(&status), "agent process stopped")
                }
                Err(err) => tracing::warn!(pid, %err, "cannot stop the agent process"),
            }
        }
        self.next_probe = None;
    }

    pub(super) async fn restart_agent(&mut self, work: &mut VecDeque<Step>) {
        self.stop_agent().await;
        self.start_agent(work).await;
    }

    pub(super) async fn start_agent(&mut self, work: &mut VecDeque<Step>) {
        self.restart_at = None;
        let Some(deployed) = &self.deployed else {
            return;
        };
        let agent = &self.config.agent;
        let spec = LaunchSpec {
            executable: deployed.executable.clone(),
            args: agent.args.clone(),
            env: agent.env.clone(),
            launcher: self.launcher.clone(),
        };
        let now = Instant::now();
        match AgentProcess::spawn(&spec) {
            Ok(process) => {
                if let Some(record) = process
                    .pid()
                    .and_then(|pid| AgentRecord::of(pid, &spec.executable))
                    && let Err(err) = record.save(&self.config.storage_dir)
                {
                    tracing::warn!(%err, "cannot record the agent process");
                }
                self.agent = Some(process);
                self.health = AgentHealth::Starting { last_error: None };
                self.next_probe =
                    Some(now + agent.health_check_interval.min(Duration::from_millis(500)));
            }
            Err(err) => {
                let reason = format!("cannot start {}: {err}", spec.executable.display());
                tracing::error!(%reason);
                self.health = AgentHealth::Exited {
                    reason: reason.clone(),
                };
                let steps = self.machine.agent_exited(&reason, now);
                if steps.is_empty() {
                    self.schedule_restart(Duration::ZERO, now);
                } else {
                    work.extend(steps);
                }
            }
        }
    }
}
