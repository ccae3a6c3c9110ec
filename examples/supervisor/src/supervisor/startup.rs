//! Starting: the state to start from, and the OpAMP client with persistence and packages.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opamp_client::packages::{DownloadSettings, FsPackagesStateProvider};
use opamp_client::persistence::FileStateStore;
use opamp_client::proto::AgentCapabilities;
use opamp_client::{Client, ClientSettings, PackagesSettings};
use opamp_example_agent::settings::Transport;
use tokio::sync::mpsc;

use super::{BIN_DIR, CLIENT_DIR, Loop, PACKAGES_DIR, io_error};
use crate::apply::{ApplyMachine, Desired};
use crate::backoff::RestartBackoff;
use crate::callbacks::SupervisorCallbacks;
use crate::config::{SupervisorConfig, check_executable};
use crate::error::Error;
use crate::health::{AgentHealth, HealthProbe};
use crate::packages::{AgentPackages, InstallRequest};
use crate::remote::unhex;
use crate::state::{PersistedState, StateFile};

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
    pub(super) async fn start(config: SupervisorConfig) -> Result<Self, Error> {
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

    pub(super) async fn start_client(
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
            // opamp-client requires signed packages by default; the supervisor has no
            // verifier to configure yet, so it keeps accepting unsigned ones, explicitly.
            let download = DownloadSettings::default().with_require_signature(false);
            settings = settings.with_packages(
                PackagesSettings::new(Arc::new(provider)).with_download_settings(download),
            );
        }
        Ok(Client::start(settings, callbacks)?)
    }
}
