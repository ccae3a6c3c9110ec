//! The Agent's reportable status: the current value of every compressible sub-message, and
//! which of them still have to reach the server (spec §"Agent Status Compression").

use opamp_proto::{
    AgentCapabilities, AgentDescription, AgentToServer, AvailableComponents, ComponentHealth,
    ConnectionSettingsStatus, CustomCapabilities, EffectiveConfig, PackageStatuses,
    RemoteConfigStatus,
};

/// A set of status parts (a small bit set).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Parts(u16);

impl Parts {
    /// Capabilities or flags changed: nothing extra to carry (both are in every message), but a
    /// message is due.
    pub(crate) const HEADER: Parts = Parts(1 << 0);
    pub(crate) const DESCRIPTION: Parts = Parts(1 << 1);
    pub(crate) const HEALTH: Parts = Parts(1 << 2);
    pub(crate) const EFFECTIVE_CONFIG: Parts = Parts(1 << 3);
    pub(crate) const REMOTE_CONFIG_STATUS: Parts = Parts(1 << 4);
    pub(crate) const PACKAGE_STATUSES: Parts = Parts(1 << 5);
    pub(crate) const CUSTOM_CAPABILITIES: Parts = Parts(1 << 6);
    pub(crate) const AVAILABLE_COMPONENTS: Parts = Parts(1 << 7);
    pub(crate) const CONNECTION_SETTINGS_STATUS: Parts = Parts(1 << 8);
    /// Everything a full status report carries.
    pub(crate) const ALL: Parts = Parts((1 << 9) - 1);

    pub(crate) const fn empty() -> Parts {
        Parts(0)
    }

    pub(crate) const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) const fn contains(self, other: Parts) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn insert(&mut self, other: Parts) {
        self.0 |= other.0;
    }

    /// The parts whose reporting depends on `capability`.
    pub(crate) fn gated_by(capability: AgentCapabilities) -> Parts {
        let mut parts = Parts::empty();
        for (cap, part) in GATES {
            if capability.contains(*cap) {
                parts.insert(*part);
            }
        }
        parts
    }
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [&str; 9] = [
            "HEADER",
            "DESCRIPTION",
            "HEALTH",
            "EFFECTIVE_CONFIG",
            "REMOTE_CONFIG_STATUS",
            "PACKAGE_STATUSES",
            "CUSTOM_CAPABILITIES",
            "AVAILABLE_COMPONENTS",
            "CONNECTION_SETTINGS_STATUS",
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Parts({})", names.join(" | "))
    }
}

/// Which capability each gated part needs.
const GATES: &[(AgentCapabilities, Parts)] = &[
    (AgentCapabilities::REPORTS_HEALTH, Parts::HEALTH),
    (
        AgentCapabilities::REPORTS_EFFECTIVE_CONFIG,
        Parts::EFFECTIVE_CONFIG,
    ),
    (
        AgentCapabilities::REPORTS_REMOTE_CONFIG,
        Parts::REMOTE_CONFIG_STATUS,
    ),
    (
        AgentCapabilities::REPORTS_PACKAGE_STATUSES,
        Parts::PACKAGE_STATUSES,
    ),
    (
        AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS,
        Parts::AVAILABLE_COMPONENTS,
    ),
    (
        AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS,
        Parts::CONNECTION_SETTINGS_STATUS,
    ),
];

/// The current value of every compressible sub-message.
#[derive(Debug, Default, Clone)]
pub(crate) struct Status {
    pub(crate) agent_description: Option<AgentDescription>,
    pub(crate) health: Option<ComponentHealth>,
    pub(crate) effective_config: Option<EffectiveConfig>,
    pub(crate) remote_config_status: Option<RemoteConfigStatus>,
    pub(crate) package_statuses: Option<PackageStatuses>,
    pub(crate) custom_capabilities: Option<CustomCapabilities>,
    pub(crate) available_components: Option<AvailableComponents>,
    pub(crate) connection_settings_status: Option<ConnectionSettingsStatus>,
}

impl Status {
    /// Copies the parts in `parts` into `msg`, skipping those `capabilities` do not allow and
    /// those never set. Available components carry only their hash unless `full_components`.
    /// Returns the parts actually written.
    pub(crate) fn fill(
        &self,
        parts: Parts,
        capabilities: AgentCapabilities,
        full_components: bool,
        msg: &mut AgentToServer,
    ) -> Parts {
        let allowed = |part: Parts| -> bool {
            if !parts.contains(part) {
                return false;
            }
            match GATES.iter().find(|(_, p)| *p == part) {
                Some((cap, _)) => capabilities.contains(*cap),
                None => true,
            }
        };
        let mut written = Parts::empty();
        macro_rules! copy {
            ($part:expr, $field:ident) => {
                if allowed($part)
                    && let Some(value) = &self.$field
                {
                    msg.$field = Some(value.clone());
                    written.insert($part);
                }
            };
        }
        copy!(Parts::DESCRIPTION, agent_description);
        copy!(Parts::HEALTH, health);
        copy!(Parts::EFFECTIVE_CONFIG, effective_config);
        copy!(Parts::REMOTE_CONFIG_STATUS, remote_config_status);
        copy!(Parts::PACKAGE_STATUSES, package_statuses);
        copy!(Parts::CUSTOM_CAPABILITIES, custom_capabilities);
        copy!(
            Parts::CONNECTION_SETTINGS_STATUS,
            connection_settings_status
        );
        if allowed(Parts::AVAILABLE_COMPONENTS)
            && let Some(components) = &self.available_components
        {
            msg.available_components = Some(if full_components {
                components.clone()
            } else {
                AvailableComponents {
                    components: Default::default(),
                    hash: components.hash.clone(),
                }
            });
            written.insert(Parts::AVAILABLE_COMPONENTS);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_and_debug() {
        let mut p = Parts::empty();
        assert!(p.is_empty());
        p.insert(Parts::HEALTH);
        p.insert(Parts::DESCRIPTION);
        assert!(p.contains(Parts::HEALTH));
        assert!(!p.contains(Parts::ALL));
        assert_eq!(format!("{p:?}"), "Parts(DESCRIPTION | HEALTH)");
        assert!(Parts::ALL.contains(Parts::CONNECTION_SETTINGS_STATUS));
    }

    #[test]
    fn fill_respects_capabilities_and_hash_only_components() {
        let status = Status {
            health: Some(ComponentHealth {
                healthy: true,
                ..Default::default()
            }),
            agent_description: Some(AgentDescription::default()),
            available_components: Some(AvailableComponents {
                components: [("a".to_owned(), Default::default())].into_iter().collect(),
                hash: vec![1, 2].into(),
            }),
            ..Default::default()
        };
        let mut msg = AgentToServer::default();
        let written = status.fill(
            Parts::ALL,
            AgentCapabilities::REPORTS_STATUS | AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS,
            false,
            &mut msg,
        );
        assert_eq!(written, {
            let mut p = Parts::DESCRIPTION;
            p.insert(Parts::AVAILABLE_COMPONENTS);
            p
        });
        assert!(msg.health.is_none(), "health needs ReportsHealth");
        let components = msg.available_components.unwrap();
        assert!(components.components.is_empty());
        assert_eq!(components.hash.as_ref(), &[1, 2]);
        assert_eq!(
            Parts::gated_by(AgentCapabilities::REPORTS_HEALTH | AgentCapabilities::REPORTS_STATUS),
            Parts::HEALTH
        );
    }
}
