//! The OpAMP client callbacks of one agent instance: they hand offers and commands to the
//! instance task through channels that keep only the latest value, so they return at once
//! and nothing queues up.

use std::sync::Arc;

use async_trait::async_trait;
use opamp_client::proto::{
    AgentRemoteConfig, CommandType, OpAmpConnectionSettings, ServerErrorResponse,
    ServerToAgentCommand,
};
use opamp_client::{CallbackError, Callbacks, MessageData};
use tokio::sync::{Notify, watch};

/// The instance's side of the callbacks.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// The latest remote configuration offer.
    pub(crate) remote_config: watch::Receiver<Option<AgentRemoteConfig>>,
    /// Set when the server asked for a restart.
    pub(crate) restart: Arc<Notify>,
}

/// Callbacks of one agent instance.
#[derive(Debug)]
pub(crate) struct AgentCallbacks {
    name: String,
    remote_config: watch::Sender<Option<AgentRemoteConfig>>,
    restart: Arc<Notify>,
}

impl AgentCallbacks {
    pub(crate) fn new(name: String) -> (Self, Inbox) {
        let (remote_tx, remote_rx) = watch::channel(None);
        let restart = Arc::new(Notify::new());
        (
            AgentCallbacks {
                name,
                remote_config: remote_tx,
                restart: Arc::clone(&restart),
            },
            Inbox {
                remote_config: remote_rx,
                restart,
            },
        )
    }
}

#[async_trait]
impl Callbacks for AgentCallbacks {
    async fn on_connect(&self) {
        tracing::info!(agent = %self.name, "connected to the OpAMP server");
    }

    async fn on_connect_failed(&self, error: &opamp_client::Error) {
        tracing::warn!(agent = %self.name, %error, "cannot reach the OpAMP server; retrying");
    }

    async fn on_connection_lost(&self, error: &opamp_client::Error) {
        tracing::warn!(agent = %self.name, %error, "lost the connection to the OpAMP server; reconnecting");
    }

    async fn on_error(&self, error: &ServerErrorResponse) {
        tracing::warn!(agent = %self.name, message = %error.error_message, "the server reported an error");
    }

    async fn on_message(&self, msg: MessageData) {
        if let Some(config) = msg.remote_config {
            tracing::info!(agent = %self.name, hash = %hex(&config.config_hash), "remote configuration received");
            self.remote_config.send_replace(Some(config));
        }
        if let Some(id) = msg.agent_identification {
            tracing::info!(agent = %self.name, new_uid = ?id.new_instance_uid, "the server assigned a new instance UID");
        }
    }

    async fn on_opamp_connection_settings(
        &self,
        settings: &OpAmpConnectionSettings,
    ) -> Result<(), CallbackError> {
        tracing::info!(
            agent = %self.name,
            endpoint = %settings.destination_endpoint,
            "the server offered new OpAMP connection settings; trying them"
        );
        Ok(())
    }

    async fn on_opamp_connection_settings_outcome(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => tracing::info!(agent = %self.name, "new OpAMP connection settings in use"),
            Err(reason) => {
                tracing::warn!(agent = %self.name, %reason, "offered OpAMP connection settings not used");
            }
        }
    }

    async fn on_command(&self, command: &ServerToAgentCommand) {
        if command.r#type() == CommandType::Restart {
            tracing::info!(agent = %self.name, "restart requested by the server");
            self.restart.notify_one();
        }
    }
}

/// Lowercase hex of a hash, for logs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
