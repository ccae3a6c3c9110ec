//! What the supervisor tells the server (remote config status, effective configuration,
//! health) and keeps on disk.

use std::time::SystemTime;

use bytes::Bytes;
use opamp_client::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, EffectiveConfig, RemoteConfigStatus,
    RemoteConfigStatuses,
};

use super::Loop;
use crate::health::same_health;
use crate::process::AgentProcess;
use crate::remote::hex;
use crate::state::PersistedState;

impl Loop {
    pub(super) fn report_status(
        &mut self,
        hash: &[u8],
        status: RemoteConfigStatuses,
        message: &str,
    ) {
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

    pub(super) fn report_effective_config(&self, text: &str) {
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

    pub(super) fn report_health(&mut self) {
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

    pub(super) fn save_state(&self) {
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
}
