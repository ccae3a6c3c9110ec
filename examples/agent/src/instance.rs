//! One agent: loads its configuration file, runs an OpAMP client, applies remote
//! configurations to the file and restarts on request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opamp_client::persistence::{FileStateStore, StateStore};
use opamp_client::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentRemoteConfig, ComponentHealth,
    EffectiveConfig, RemoteConfigStatus, RemoteConfigStatuses,
};
use opamp_client::{Client, ClientSettings};
use tokio::sync::watch;

use crate::callbacks::{AgentCallbacks, Inbox, hex};
use crate::config_file::AgentConfig;
use crate::error::Error;
use crate::yaml::env::process_env;

/// How one agent instance runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InstanceOptions {
    /// A name for logs (e.g. `agent-0`).
    pub name: String,
    /// The configuration file read at start.
    pub config_path: PathBuf,
    /// Where remote configurations are written; read at start instead of `config_path` when
    /// it exists. The same file as `config_path` for a single agent.
    pub write_path: PathBuf,
    /// Where the OpAMP client keeps its state (instance UID, remote config status,
    /// connection settings). `None`: nothing survives a restart of the process.
    pub state_dir: Option<PathBuf>,
}

impl InstanceOptions {
    /// An agent that reads and rewrites `config_path`, without persisted state.
    pub fn new(name: impl Into<String>, config_path: impl Into<PathBuf>) -> Self {
        let config_path = config_path.into();
        InstanceOptions {
            name: name.into(),
            write_path: config_path.clone(),
            config_path,
            state_dir: None,
        }
    }

    /// Writes remote configurations to `path` instead of the configuration file.
    #[must_use]
    pub fn with_write_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.write_path = path.into();
        self
    }

    /// Persists the client state in `dir`.
    #[must_use]
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    fn source(&self) -> &Path {
        if self.write_path != self.config_path && self.write_path.exists() {
            &self.write_path
        } else {
            &self.config_path
        }
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The health of a running agent: healthy, with one component per pipeline.
pub fn health_of(config: &AgentConfig, started: SystemTime) -> ComponentHealth {
    let start = unix_nanos(started);
    let now = unix_nanos(SystemTime::now());
    ComponentHealth {
        healthy: true,
        start_time_unix_nano: start,
        status: "running".into(),
        status_time_unix_nano: now,
        component_health_map: config
            .pipelines
            .iter()
            .map(|name| {
                (
                    format!("pipeline:{name}"),
                    ComponentHealth {
                        healthy: true,
                        start_time_unix_nano: start,
                        status: "running".into(),
                        status_time_unix_nano: now,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// The effective configuration report: the file's text under its file name.
pub fn effective_config_of(config: &AgentConfig) -> EffectiveConfig {
    let name = config.path.file_name().map_or_else(
        || "config.yaml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    EffectiveConfig {
        config_map: Some(AgentConfigMap {
            config_map: [(
                name,
                AgentConfigFile {
                    body: Bytes::from(config.text.clone()),
                    content_type: "text/yaml".into(),
                },
            )]
            .into(),
        }),
    }
}

enum Exit {
    Shutdown,
    Restart,
}

/// A running client and what the instance knows about it.
struct Running {
    client: Client,
    config: AgentConfig,
    started: SystemTime,
    /// Hash of the last remote configuration handled (applied or failed): a repeated offer
    /// is not applied again.
    handled_hash: Bytes,
}

impl Running {
    fn has(&self, capability: AgentCapabilities) -> bool {
        self.config.opamp.capabilities.contains(capability)
    }

    fn report_status(&self, hash: &Bytes, status: RemoteConfigStatuses, message: &str) {
        if !self.has(AgentCapabilities::REPORTS_REMOTE_CONFIG) {
            return;
        }
        let status = RemoteConfigStatus {
            last_remote_config_hash: hash.clone(),
            status: status as i32,
            error_message: message.to_owned(),
        };
        if let Err(err) = self.client.set_remote_config_status(status) {
            tracing::warn!(%err, "cannot report the remote config status");
        }
    }

    fn report_state(&self) {
        if self.has(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG)
            && let Err(err) = self
                .client
                .set_effective_config(effective_config_of(&self.config))
        {
            tracing::warn!(%err, "cannot report the effective configuration");
        }
        if self.has(AgentCapabilities::REPORTS_HEALTH)
            && let Err(err) = self
                .client
                .set_health(health_of(&self.config, self.started))
        {
            tracing::warn!(%err, "cannot report health");
        }
    }

    /// Applies a remote configuration: checks it, writes it atomically, reports the outcome.
    fn apply(&mut self, name: &str, write_path: &Path, offer: AgentRemoteConfig) {
        let hash = offer.config_hash.clone();
        if !hash.is_empty() && hash == self.handled_hash {
            tracing::debug!(agent = %name, hash = %hex(&hash), "remote configuration already handled");
            return;
        }
        self.handled_hash = hash.clone();
        self.report_status(&hash, RemoteConfigStatuses::Applying, "");
        let result = offer
            .config
            .as_ref()
            .ok_or_else(|| "the offer has no configuration".to_owned())
            .and_then(|map| self.config.with_remote(map))
            .and_then(|text| {
                let checked = AgentConfig::from_text(write_path, text, &process_env)
                    .map_err(|err| err.to_string())?;
                opamp_client::persistence::write_atomic(write_path, checked.text.as_bytes(), true)
                    .map_err(|err| format!("cannot write {}: {err}", write_path.display()))?;
                Ok(checked)
            });
        match result {
            Ok(config) => {
                tracing::info!(agent = %name, hash = %hex(&hash), file = %write_path.display(), pipelines = ?config.pipelines, "remote configuration applied");
                self.config = config;
                self.report_status(&hash, RemoteConfigStatuses::Applied, "");
                self.report_state();
            }
            Err(reason) => {
                tracing::warn!(agent = %name, hash = %hex(&hash), %reason, "remote configuration refused");
                self.report_status(&hash, RemoteConfigStatuses::Failed, &reason);
            }
        }
    }
}

fn start(options: &InstanceOptions) -> Result<(Running, Inbox), Error> {
    let config = AgentConfig::load(options.source(), &process_env)?;
    let started = SystemTime::now();
    let (callbacks, inbox) = AgentCallbacks::new(options.name.clone());
    let mut settings: ClientSettings = config.opamp.client_settings();
    let mut handled_hash = Bytes::new();
    if let Some(dir) = &options.state_dir {
        let store = FileStateStore::new(dir)?;
        match store.load_remote_config_status() {
            Ok(Some(status)) => handled_hash = status.last_remote_config_hash,
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "cannot read the persisted remote config status"),
        }
        settings = settings.with_state_store(Arc::new(store));
    }
    if config
        .opamp
        .capabilities
        .contains(AgentCapabilities::REPORTS_HEALTH)
    {
        settings = settings.with_health(health_of(&config, started));
    }
    let client = Client::start(settings, callbacks)?;
    tracing::info!(
        agent = %options.name,
        uid = %client.instance_uid(),
        server = %config.opamp.endpoint.url,
        file = %config.path.display(),
        "agent started"
    );
    let running = Running {
        client,
        config,
        started,
        handled_hash,
    };
    running.report_state();
    Ok((running, inbox))
}

/// Runs one agent until `shutdown` turns `true` (or its sender is dropped). A restart command
/// stops the client, reads the configuration file again and starts anew.
pub async fn run_instance(
    options: InstanceOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    loop {
        let (mut running, mut inbox) = start(&options)?;
        let exit = loop {
            tokio::select! {
                changed = shutdown.wait_for(|stop| *stop) => {
                    let _ = changed;
                    break Exit::Shutdown;
                }
                () = inbox.restart.notified() => break Exit::Restart,
                changed = inbox.remote_config.changed() => {
                    if changed.is_err() {
                        break Exit::Shutdown;
                    }
                    let offer = inbox.remote_config.borrow_and_update().clone();
                    if let Some(offer) = offer {
                        running.apply(&options.name, &options.write_path, offer);
                    }
                }
            }
        };
        running.client.stop().await?;
        match exit {
            Exit::Shutdown => {
                tracing::info!(agent = %options.name, "agent stopped");
                return Ok(());
            }
            Exit::Restart => tracing::info!(agent = %options.name, "restarting the agent"),
        }
    }
}
