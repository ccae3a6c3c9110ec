//! `capabilities:`: one boolean per OpAMP capability, named as in the collector's OpAMP
//! extension (`reports_effective_config`, `accepts_remote_config`, ...).

use std::path::Path;

use opamp_client::proto::AgentCapabilities;
use serde::Deserialize;

use crate::yaml::{ConfigError, join_key};

/// The `capabilities:` section. A key left out takes the program's default; a capability the
/// program cannot honour is refused when set to `true`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // one field per capability, named after it
pub struct CapabilitiesSection {
    pub reports_effective_config: Option<bool>,
    pub reports_health: Option<bool>,
    pub reports_remote_config: Option<bool>,
    pub accepts_remote_config: Option<bool>,
    pub accepts_restart_command: Option<bool>,
    pub accepts_opamp_connection_settings: Option<bool>,
    pub accepts_other_connection_settings: Option<bool>,
    pub reports_connection_settings_status: Option<bool>,
    pub reports_heartbeat: Option<bool>,
    pub reports_own_metrics: Option<bool>,
    pub reports_own_traces: Option<bool>,
    pub reports_own_logs: Option<bool>,
    pub accepts_packages: Option<bool>,
    pub reports_package_statuses: Option<bool>,
    pub reports_available_components: Option<bool>,
}

impl CapabilitiesSection {
    fn entries(&self) -> [(&'static str, AgentCapabilities, Option<bool>); 15] {
        use AgentCapabilities as C;
        [
            (
                "reports_effective_config",
                C::REPORTS_EFFECTIVE_CONFIG,
                self.reports_effective_config,
            ),
            ("reports_health", C::REPORTS_HEALTH, self.reports_health),
            (
                "reports_remote_config",
                C::REPORTS_REMOTE_CONFIG,
                self.reports_remote_config,
            ),
            (
                "accepts_remote_config",
                C::ACCEPTS_REMOTE_CONFIG,
                self.accepts_remote_config,
            ),
            (
                "accepts_restart_command",
                C::ACCEPTS_RESTART_COMMAND,
                self.accepts_restart_command,
            ),
            (
                "accepts_opamp_connection_settings",
                C::ACCEPTS_OPAMP_CONNECTION_SETTINGS,
                self.accepts_opamp_connection_settings,
            ),
            (
                "accepts_other_connection_settings",
                C::ACCEPTS_OTHER_CONNECTION_SETTINGS,
                self.accepts_other_connection_settings,
            ),
            (
                "reports_connection_settings_status",
                C::REPORTS_CONNECTION_SETTINGS_STATUS,
                self.reports_connection_settings_status,
            ),
            (
                "reports_heartbeat",
                C::REPORTS_HEARTBEAT,
                self.reports_heartbeat,
            ),
            (
                "reports_own_metrics",
                C::REPORTS_OWN_METRICS,
                self.reports_own_metrics,
            ),
            (
                "reports_own_traces",
                C::REPORTS_OWN_TRACES,
                self.reports_own_traces,
            ),
            (
                "reports_own_logs",
                C::REPORTS_OWN_LOGS,
                self.reports_own_logs,
            ),
            (
                "accepts_packages",
                C::ACCEPTS_PACKAGES,
                self.accepts_packages,
            ),
            (
                "reports_package_statuses",
                C::REPORTS_PACKAGE_STATUSES,
                self.reports_package_statuses,
            ),
            (
                "reports_available_components",
                C::REPORTS_AVAILABLE_COMPONENTS,
                self.reports_available_components,
            ),
        ]
    }

    /// The capabilities: `defaults`, changed by the keys that are set. A key set to `true` for
    /// a capability outside `supported` is an error naming the key. `ReportsStatus` is always
    /// included.
    pub fn resolve(
        &self,
        file: &Path,
        prefix: &str,
        defaults: AgentCapabilities,
        supported: AgentCapabilities,
    ) -> Result<AgentCapabilities, ConfigError> {
        let mut caps = defaults & supported;
        for (name, cap, value) in self.entries() {
            match value {
                Some(true) if !supported.contains(cap) => {
                    return Err(ConfigError::invalid(
                        file,
                        join_key(prefix, name),
                        "this capability is not supported by this program",
                    ));
                }
                Some(true) => caps |= cap,
                Some(false) => caps &= !cap,
                None => {}
            }
        }
        Ok(caps | AgentCapabilities::REPORTS_STATUS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentCapabilities as C;

    #[test]
    fn defaults_and_overrides() {
        let section = CapabilitiesSection {
            accepts_remote_config: Some(true),
            reports_health: Some(false),
            ..Default::default()
        };
        let caps = section
            .resolve(
                Path::new("a.yaml"),
                "capabilities",
                C::REPORTS_HEALTH | C::REPORTS_EFFECTIVE_CONFIG,
                C::REPORTS_HEALTH | C::REPORTS_EFFECTIVE_CONFIG | C::ACCEPTS_REMOTE_CONFIG,
            )
            .unwrap();
        assert_eq!(
            caps,
            C::REPORTS_STATUS | C::REPORTS_EFFECTIVE_CONFIG | C::ACCEPTS_REMOTE_CONFIG
        );
    }

    #[test]
    fn unsupported_capability_is_named() {
        let section = CapabilitiesSection {
            accepts_packages: Some(true),
            ..Default::default()
        };
        let err = section
            .resolve(
                Path::new("a.yaml"),
                "x.capabilities",
                C::empty(),
                C::REPORTS_HEALTH,
            )
            .unwrap_err();
        assert_eq!(err.key(), Some("x.capabilities.accepts_packages"));
        // Turning an unsupported capability off is fine.
        let off = CapabilitiesSection {
            accepts_packages: Some(false),
            ..Default::default()
        };
        assert!(
            off.resolve(Path::new("a.yaml"), "", C::empty(), C::empty())
                .is_ok()
        );
    }
}
