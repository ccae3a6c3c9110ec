//! The supervisor loop: one task that owns the agent process and the apply state machine,
//! and reacts to server offers, agent exits, health checks and timers.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use opamp_client::packages::FsPackagesStateProvider;
use opamp_client::persistence::FileStateStore;
use opamp_client::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentRemoteConfig, ComponentHealth,
    EffectiveConfig, RemoteConfigStatus, RemoteConfigStatuses,
};
use opamp_client::{Client, ClientSettings, PackagesSettings};
use opamp_example_agent::settings::Transport;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::apply::{ApplyMachine, Desired, Step};
use crate::backoff::{RestartBackoff, jitter};
use crate::callbacks::{Inbox, SupervisorCallbacks};
use crate::config::{ReloadMode, SupervisorConfig, check_executable};
use crate::error::Error;
use crate::health::{AgentHealth, HealthProbe, same_health};
use crate::merge::{Layers, render};
use crate::packages::{AgentPackages, InstallRequest, remove_other_executables};
use crate::process::{AgentProcess, LaunchSpec, describe_exit};
use crate::remote::{RemoteConfig, hex, unhex};
use crate::state::{PersistedState, StateFile};

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
}

struct Loop {
    config: SupervisorConfig,
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
    /// A supervisor with checked settings.
    pub fn new(config: SupervisorConfig) -> Self {
        Supervisor { config }
    }

    /// Runs until `shutdown` turns `true` (or its sender is dropped): starts the agent on the
    /// last good configuration (without waiting for the server), then follows the server.
    /// On shutdown the agent is stopped and the client disconnects.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let mut lp = Loop::start(self.config).await?;
        lp.run(shutdown).await
    }
}

/// The state to start from: persisted state, adjusted to the configuration.
fn initial_state(config: &SupervisorConfig, persisted: &PersistedState) -> (Desired, Desired) {
    let configured = &config.agent.executable;
    let mut good = persisted
        .last_good
        .clone()
        .unwrap_or_else(|| Desired::local(configured));
    let executable_still_valid = persisted.configured_executable.as_ref() == Some(configured)
        && check_executable(&good.executable).is_ok();
    if !executable_still_valid {
        good.executable = configured.clone();
    }
    let mut latest = good.clone();
    if let Some(remote) = &persisted.last_received_remote {
        latest.remote = Some(remote.clone());
    }
    if let Some(telemetry) = &persisted.telemetry {
        latest.telemetry = telemetry.clone();
    }
    (good, latest)
}

impl Loop {
    async fn start(config: SupervisorConfig) -> Result<Self, Error> {
        let storage = config.storage_dir.clone();
        std::fs::create_dir_all(&storage).map_err(io_error("create", storage.clone()))?;
        let state_file = StateFile::new(&storage);
        let persisted = state_file.load_or_recover()?;
        let (good, latest) = initial_state(&config, &persisted);
        let failed = persisted.failed_remote_hash.as_deref().and_then(unhex);
        let machine = ApplyMachine::new(
            good,
            latest.clone(),
            failed,
            config.agent.config_apply_timeout,
        )
        .with_stable_time(config.agent.config_stable_time);

        let (callbacks, inbox) = SupervisorCallbacks::new(latest.telemetry.clone());
        let (install_tx, installs) = mpsc::channel(1);
        let client = Self::start_client(&config, callbacks, install_tx).await?;
        tracing::info!(
            uid = %client.instance_uid(),
            server = %config.server.url,
            agent = %config.agent.executable.display(),
            "supervisor started"
        );
        let probe = HealthProbe::new(
            config.agent.health_check_url.clone(),
            config
                .agent
                .health_check_interval
                .clamp(Duration::from_secs(2), Duration::from_secs(10)),
        );
        let backoff = RestartBackoff::new(config.agent.restart_backoff);
        Ok(Loop {
            config,
            client,
            inbox,
            installs,
            state_file,
            machine,
            last_received_remote: persisted.last_received_remote,
            last_offer_hash: None,
            agent: None,
            deployed: None,
            health: AgentHealth::Stopped,
            last_health: None,
            probe,
            next_probe: None,
            restart_at: None,
            backoff,
            pending_install: None,
            last_status: None,
        })
    }

    async fn start_client(
        config: &SupervisorConfig,
        callbacks: SupervisorCallbacks,
        installs: mpsc::Sender<InstallRequest>,
    ) -> Result<Client, Error> {
        let storage = &config.storage_dir;
        let interval = match config.server.transport {
            Transport::Http => config
                .server
                .polling_interval
                .unwrap_or(config.heartbeat_interval),
            Transport::WebSocket => config.heartbeat_interval,
        };
        let mut settings = ClientSettings::new(config.server.url.clone())
            .with_headers(config.server.headers.clone())
            .with_tls(config.server.tls.clone())
            .with_capabilities(config.capabilities)
            .with_agent_description(config.agent.description.clone())
            .with_heartbeat_interval(interval)
            .with_state_store(Arc::new(FileStateStore::new(storage.join(CLIENT_DIR))?));
        if config
            .capabilities
            .contains(AgentCapabilities::REPORTS_HEALTH)
        {
            settings = settings.with_health(
                AgentHealth::Starting { last_error: None }
                    .component_health(None, SystemTime::now()),
            );
        }
        if config
            .capabilities
            .contains(AgentCapabilities::ACCEPTS_PACKAGES)
        {
            let store = FsPackagesStateProvider::open(storage.join(PACKAGES_DIR)).await?;
            // The syncer waits for the swap: the apply timeout, plus stopping and starting.
            let wait = config.agent.config_apply_timeout * 2
                + config.agent.stop_timeout * 2
                + Duration::from_secs(60);
            let provider = AgentPackages::new(store, storage.join(BIN_DIR), installs, wait);
            settings = settings.with_packages(PackagesSettings::new(Arc::new(provider)));
        }
        Ok(Client::start(settings, callbacks)?)
    }

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

    /// Executes steps, and the steps they lead to.
    async fn execute(&mut self, steps: Vec<Step>) {
        self.run_steps(steps.into()).await;
    }

    async fn run_steps(&mut self, mut work: VecDeque<Step>) {
        let mut state_changed = false;
        while let Some(step) = work.pop_front() {
            match step {
                Step::Deploy { desired, rollback } => {
                    self.deploy(desired, rollback, &mut work).await;
                }
                Step::Applied { previous, applied } => {
                    state_changed = true;
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
                    state_changed = true;
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
        if state_changed {
            self.save_state();
        }
    }

    fn render(&self, desired: &Desired) -> Result<String, String> {
        let agent = &self.config.agent;
        let endpoint = agent.health_check_endpoint();
        render(&Layers {
            base: agent.base_config.as_ref(),
            remote: desired.remote.as_ref(),
            telemetry: &desired.telemetry,
            own_metrics_target: &agent.own_metrics_target,
            health_check_endpoint: agent.inject_health_check.then_some(endpoint.as_str()),
        })
    }

    async fn deploy(&mut self, desired: Desired, rollback: bool, work: &mut VecDeque<Step>) {
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
        if let Err(err) = opamp_example_agent::fs::write_atomic(file, text.as_bytes(), true) {
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

    async fn stop_agent(&mut self) {
        if let Some(process) = self.agent.take() {
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

    async fn restart_agent(&mut self, work: &mut VecDeque<Step>) {
        self.stop_agent().await;
        self.start_agent(work).await;
    }

    async fn start_agent(&mut self, work: &mut VecDeque<Step>) {
        self.restart_at = None;
        let Some(deployed) = &self.deployed else {
            return;
        };
        let agent = &self.config.agent;
        let spec = LaunchSpec {
            executable: deployed.executable.clone(),
            args: agent.args.clone(),
            env: agent.env.clone(),
        };
        let now = Instant::now();
        match AgentProcess::spawn(&spec) {
            Ok(process) => {
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

    fn report_status(&mut self, hash: &[u8], status: RemoteConfigStatuses, message: &str) {
        if !self.has(AgentCapabilities::REPORTS_REMOTE_CONFIG) {
            return;
        }
        let status = RemoteConfigStatus {
            last_remote_config_hash: Bytes::copy_from_slice(hash),
            status: status as i32,
            error_message: message.to_owned(),
        };
        if self.last_status.as_ref() == Some(&status) {
            return;
        }
        match self.client.set_remote_config_status(status.clone()) {
            Ok(()) => self.last_status = Some(status),
            Err(err) => tracing::warn!(%err, "cannot report the remote config status"),
        }
    }

    fn report_effective_config(&self, text: &str) {
        if !self.has(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG) {
            return;
        }
        let name = self.config.agent.config_file.file_name().map_or_else(
            || "effective.yaml".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let config = EffectiveConfig {
            config_map: Some(AgentConfigMap {
                config_map: [(
                    name,
                    AgentConfigFile {
                        body: Bytes::from(text.to_owned()),
                        content_type: "text/yaml".into(),
                    },
                )]
                .into(),
            }),
        };
        if let Err(err) = self.client.set_effective_config(config) {
            tracing::warn!(%err, "cannot report the effective configuration");
        }
    }

    fn report_health(&mut self) {
        if !self.has(AgentCapabilities::REPORTS_HEALTH) {
            return;
        }
        let started = self.agent.as_ref().map(AgentProcess::started_at);
        let health = self.health.component_health(started, SystemTime::now());
        if self
            .last_health
            .as_ref()
            .is_some_and(|last| same_health(last, &health))
        {
            return;
        }
        match self.client.set_health(health.clone()) {
            Ok(()) => self.last_health = Some(health),
            Err(err) => tracing::warn!(%err, "cannot report health"),
        }
    }

    fn save_state(&self) {
        let state = PersistedState {
            configured_executable: Some(self.config.agent.executable.clone()),
            last_good: Some(self.machine.good().clone()),
            last_received_remote: self.last_received_remote.clone(),
            telemetry: Some(self.machine.latest().telemetry.clone()),
            failed_remote_hash: self.machine.failed_remote().map(hex),
        };
        if let Err(err) = self.state_file.save(&state) {
            tracing::error!(%err, "cannot persist the supervisor state");
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
