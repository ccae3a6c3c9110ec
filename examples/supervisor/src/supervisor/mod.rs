//! The supervisor loop: one task that owns the agent process and the apply state machine,
//! and reacts to server offers, agent exits, health checks and timers.

mod report;
mod startup;
mod steps;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opamp_client::Client;
use opamp_client::proto::{
    AgentCapabilities, AgentRemoteConfig, ComponentHealth, RemoteConfigStatus, RemoteConfigStatuses,
};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::apply::{ApplyMachine, Desired};
use crate::backoff::{RestartBackoff, jitter};
use crate::callbacks::Inbox;
use crate::config::SupervisorConfig;
use crate::error::Error;
use crate::health::{AgentHealth, HealthProbe};
use crate::packages::InstallRequest;
use crate::process::{AgentProcess, describe_exit};
use crate::remote::{RemoteConfig, hex};
use crate::state::StateFile;

/// Sub-directories of the storage directory.
const CLIENT_DIR: &str = "client";
const PACKAGES_DIR: &str = "packages";
const BIN_DIR: &str = "bin";

enum Event {
    Shutdown,
    AgentExited(std::io::Result<std::process::ExitStatus>),
    Probed(Result<(), String>),
    Deadline,
    RestartDue,
    RemoteConfig,
    Telemetry,
    RestartCommand,
    Install(InstallRequest),
}

/// The supervisor: run it with [`Supervisor::run`].
#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    launcher: Option<PathBuf>,
}

struct Loop {
    config: SupervisorConfig,
    launcher: Option<PathBuf>,
    client: Client,
    inbox: Inbox,
    installs: mpsc::Receiver<InstallRequest>,
    state_file: StateFile,
    machine: ApplyMachine,
    last_received_remote: Option<RemoteConfig>,
    last_offer_hash: Option<Bytes>,
    agent: Option<AgentProcess>,
    deployed: Option<Desired>,
    health: AgentHealth,
    last_health: Option<ComponentHealth>,
    probe: HealthProbe,
    next_probe: Option<Instant>,
    restart_at: Option<Instant>,
    backoff: RestartBackoff,
    pending_install: Option<InstallRequest>,
    last_status: Option<RemoteConfigStatus>,
}

fn io_error(action: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

impl Supervisor {
    /// A supervisor with checked settings. It starts the agent directly; see
    /// [`with_launcher`](Self::with_launcher).
    pub fn new(config: SupervisorConfig) -> Self {
        Supervisor {
            config,
            launcher: None,
        }
    }

    /// Starts the agent through `launcher`, an executable that calls
    /// [`exec_agent_if_asked`](crate::launch::exec_agent_if_asked) first (normally the
    /// supervisor's own, [`default_launcher`](crate::launch::default_launcher)), so that the
    /// agent gets `SIGTERM` when the supervisor dies, even by `SIGKILL` (Linux).
    #[must_use]
    pub fn with_launcher(mut self, launcher: Option<PathBuf>) -> Self {
        self.launcher = launcher;
        self
    }

    /// Runs until `shutdown` turns `true` (or its sender is dropped): stops an agent left
    /// running by a previous supervisor ([`leftover`](crate::leftover)), starts the agent on
    /// the last good configuration (without waiting for the server), then follows the
    /// server. On shutdown the agent is stopped and the client disconnects.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let mut lp = Loop::start(self.config, self.launcher).await?;
        lp.run(shutdown).await
    }
}

impl Loop {
    fn has(&self, capability: AgentCapabilities) -> bool {
        self.config.capabilities.contains(capability)
    }

    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let steps = self.machine.start(Instant::now());
        self.execute(steps).await;
        loop {
            let event = self.next_event(&mut shutdown).await;
            let now = Instant::now();
            match event {
                Event::Shutdown => break,
                Event::AgentExited(result) => self.on_exit(result, now).await,
                Event::Probed(result) => self.on_probe(result, now).await,
                Event::Deadline => {
                    let steps = self.machine.tick(now);
                    self.execute(steps).await;
                }
                Event::RestartDue => {
                    self.restart_at = None;
                    let mut work = VecDeque::new();
                    self.start_agent(&mut work).await;
                    self.run_steps(work).await;
                }
                Event::RemoteConfig => self.on_remote_config(now).await,
                Event::Telemetry => {
                    let telemetry = self.inbox.telemetry.borrow_and_update().clone();
                    let steps = self.machine.offer_telemetry(telemetry, now);
                    self.execute(steps).await;
                }
                Event::RestartCommand => {
                    tracing::info!("restarting the agent (server command)");
                    self.backoff.reset();
                    let mut work = VecDeque::new();
                    self.restart_agent(&mut work).await;
                    self.run_steps(work).await;
                }
                Event::Install(request) => {
                    if request.executable == self.machine.good().executable {
                        let _ = request.reply.send(Ok(()));
                    } else {
                        let executable = request.executable.clone();
                        if let Some(old) = self.pending_install.replace(request) {
                            let _ = old.reply.send(Err("superseded by another package".into()));
                        }
                        let steps = self.machine.offer_executable(executable, now);
                        self.execute(steps).await;
                    }
                }
            }
            self.report_health();
        }
        self.shutdown().await;
        Ok(())
    }

    async fn next_event(&mut self, shutdown: &mut watch::Receiver<bool>) -> Event {
        let far = Instant::now() + Duration::from_secs(86_400);
        let probe_at = self.next_probe.filter(|_| self.agent.is_some());
        let deadline = self.machine.deadline();
        let restart_at = self.restart_at;
        let probe = &self.probe;
        let agent = &mut self.agent;
        let inbox = &mut self.inbox;
        let installs = &mut self.installs;
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
            result = async {
                match agent {
                    Some(process) => process.wait().await,
                    None => std::future::pending().await,
                }
            } => Event::AgentExited(result),
            result = async {
                sleep_until(probe_at.unwrap_or(far).into()).await;
                probe.check().await
            }, if probe_at.is_some() => Event::Probed(result),
            () = sleep_until(deadline.unwrap_or(far).into()), if deadline.is_some() => Event::Deadline,
            () = sleep_until(restart_at.unwrap_or(far).into()), if restart_at.is_some() => Event::RestartDue,
            Ok(()) = inbox.remote_config.changed() => Event::RemoteConfig,
            Ok(()) = inbox.telemetry.changed() => Event::Telemetry,
            () = inbox.restart.notified() => Event::RestartCommand,
            Some(request) = installs.recv() => Event::Install(request),
        }
    }

    async fn on_exit(&mut self, result: std::io::Result<std::process::ExitStatus>, now: Instant) {
        let Some(mut process) = self.agent.take() else {
            return;
        };
        crate::leftover::AgentRecord::remove(&self.config.storage_dir);
        process.drain_output().await;
        let how = match &result {
            Ok(status) => describe_exit(status),
            Err(err) => format!("cannot wait for it: {err}"),
        };
        let tail = process.stderr_tail();
        let reason = if tail.is_empty() {
            format!("agent exited ({how})")
        } else {
            format!("agent exited ({how}); last lines of its standard error:\n{tail}")
        };
        tracing::warn!(pid = process.pid(), %how, "agent process exited");
        self.next_probe = None;
        self.health = AgentHealth::Exited {
            reason: reason.clone(),
        };
        let ran_for = process.started().elapsed();
        let steps = self.machine.agent_exited(&reason, now);
        if steps.is_empty() {
            self.schedule_restart(ran_for, now);
        } else {
            self.execute(steps).await;
        }
    }

    fn schedule_restart(&mut self, ran_for: Duration, now: Instant) {
        let delay = jitter(self.backoff.next_delay(ran_for), rand::random::<f64>());
        tracing::info!(
            delay = %opamp_example_agent::yaml::duration::format_duration(delay),
            failures = self.backoff.failures(),
            "restarting the agent after a delay"
        );
        self.restart_at = Some(now + delay);
    }

    async fn on_probe(&mut self, result: Result<(), String>, now: Instant) {
        self.next_probe = Some(now + self.config.agent.health_check_interval);
        match result {
            Ok(()) => {
                if !self.health.is_healthy() {
                    tracing::info!("agent is healthy");
                }
                self.health = AgentHealth::Healthy;
                let steps = self.machine.healthy(now);
                self.execute(steps).await;
            }
            Err(error) => {
                self.machine.unhealthy();
                self.health = match &self.health {
                    AgentHealth::Healthy | AgentHealth::Unhealthy { .. } => {
                        if self.health.is_healthy() {
                            tracing::warn!(%error, "agent is not healthy");
                        }
                        AgentHealth::Unhealthy { last_error: error }
                    }
                    AgentHealth::Starting { last_error } => {
                        if last_error.as_ref() != Some(&error) {
                            tracing::info!(%error, "agent is not healthy yet");
                        }
                        AgentHealth::Starting {
                            last_error: Some(error),
                        }
                    }
                    other => other.clone(),
                };
            }
        }
    }

    async fn on_remote_config(&mut self, now: Instant) {
        let offer: Option<AgentRemoteConfig> = self.inbox.remote_config.borrow_and_update().clone();
        let Some(offer) = offer else {
            return;
        };
        if self.last_offer_hash.as_ref() == Some(&offer.config_hash) {
            return;
        }
        self.last_offer_hash = Some(offer.config_hash.clone());
        match RemoteConfig::from_proto(&offer) {
            Err(reason) => {
                tracing::warn!(hash = %hex(&offer.config_hash), %reason, "remote configuration refused");
                self.report_status(&offer.config_hash, RemoteConfigStatuses::Failed, &reason);
            }
            Ok(remote) => {
                self.last_received_remote = Some(remote.clone());
                let hash = remote.hash.clone();
                let steps = self.machine.offer_remote(remote, now);
                if steps.is_empty()
                    && self.machine.candidate().is_none()
                    && self.machine.good().remote_hash() == hash.as_slice()
                {
                    // Offered again (e.g. after a failure of another one): it is running.
                    self.report_status(&hash, RemoteConfigStatuses::Applied, "");
                }
                self.save_state();
                self.execute(steps).await;
            }
        }
    }

    async fn shutdown(&mut self) {
        tracing::info!("supervisor stopping");
        if let Some(request) = self.pending_install.take() {
            let _ = request.reply.send(Err("the supervisor stopped".into()));
        }
        self.stop_agent().await;
        self.health = AgentHealth::Stopped;
        self.report_health();
        self.save_state();
        if let Err(err) = self.client.stop().await {
            tracing::warn!(%err, "cannot stop the OpAMP client cleanly");
        }
        tracing::info!("supervisor stopped");
    }
}
