//! The OpAMP client callbacks: they hand offers and commands to the supervisor loop through
//! latest-value channels, so they return at once and nothing queues up.

use std::sync::Arc;

use async_trait::async_trait;
use opamp_client::proto::{
    AgentRemoteConfig, CommandType, OpAmpConnectionSettings, ServerErrorResponse,
    ServerToAgentCommand,
};
use opamp_client::{CallbackError, Callbacks, MessageData};
use tokio::sync::{Notify, watch};

use crate::own_telemetry::{OwnTelemetry, TelemetryOffers};
use crate::remote::hex;

/// The supervisor loop's side.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) remote_config: watch::Receiver<Option<AgentRemoteConfig>>,
    pub(crate) telemetry: watch::Receiver<OwnTelemetry>,
    pub(crate) restart: Arc<Notify>,
}

/// The client callbacks.
#[derive(Debug)]
pub(crate) struct SupervisorCallbacks {
    remote_config: watch::Sender<Option<AgentRemoteConfig>>,
    telemetry: watch::Sender<OwnTelemetry>,
    restart: Arc<Notify>,
}

impl SupervisorCallbacks {
    /// Callbacks whose own-telemetry offers apply on top of `telemetry`.
    pub(crate) fn new(telemetry: OwnTelemetry) -> (Self, Inbox) {
        let (remote_tx, remote_rx) = watch::channel(None);
        let (telemetry_tx, telemetry_rx) = watch::channel(telemetry);
        let restart = Arc::new(Notify::new());
        (
            SupervisorCallbacks {
                remote_config: remote_tx,
                telemetry: telemetry_tx,
                restart: Arc::clone(&restart),
            },
            Inbox {
                remote_config: remote_rx,
                telemetry: telemetry_rx,
                restart,
            },
        )
    }
}

#[async_trait]
impl Callbacks for SupervisorCallbacks {
    async fn on_connect(&self) {
        tracing::info!("connected to the OpAMP server");
    }

    async fn on_connect_failed(&self, error: &opamp_client::Error) {
        tracing::warn!(%error, "cannot reach the OpAMP server; retrying");
    }

    async fn on_connection_lost(&self, error: &opamp_client::Error) {
        tracing::warn!(%error, "lost the connection to the OpAMP server; reconnecting");
    }

    async fn on_error(&self, error: &ServerErrorResponse) {
        tracing::warn!(message = %error.error_message, "the server reported an error");
    }

    async fn on_message(&self, msg: MessageData) {
        if let Some(config) = msg.remote_config {
            tracing::info!(hash = %hex(&config.config_hash), "received a remote configuration");
            self.remote_config.send_replace(Some(config));
        }
        let offers = TelemetryOffers {
            metrics: msg.own_metrics,
            traces: msg.own_traces,
            logs: msg.own_logs,
        };
        if offers != TelemetryOffers::default() {
            self.telemetry.send_if_modified(|telemetry| {
                let before = telemetry.clone();
                telemetry.apply(&offers);
                let changed = *telemetry != before;
                if changed {
                    tracing::info!(?telemetry, "own telemetry destinations changed");
                }
                changed
            });
        }
    }

    async fn on_opamp_connection_settings(
        &self,
        settings: &OpAmpConnectionSettings,
    ) -> Result<(), CallbackError> {
        tracing::info!(endpoint = %settings.destination_endpoint, "trying the offered OpAMP connection settings");
        Ok(())
    }

    async fn on_opamp_connection_settings_outcome(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => tracing::info!("offered OpAMP connection settings in use"),
            Err(reason) => tracing::warn!(%reason, "offered OpAMP connection settings not used"),
        }
    }

    async fn on_command(&self, command: &ServerToAgentCommand) {
        if command.r#type() == CommandType::Restart {
            tracing::info!("the server asked to restart the agent");
            self.restart.notify_one();
        }
    }
}
