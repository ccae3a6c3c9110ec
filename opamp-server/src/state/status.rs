//! The merged status of one agent: every compressible sub-message at its last reported value.
//!
//! Spec §"Agent Status Compression": an agent may omit a sub-message that did not change since
//! it last reported it. The server therefore keeps the last value of each one and replaces it
//! only when the agent sends a new one, so [`AgentStatus`] always describes the agent in full.

use std::fmt;

use opamp_proto::{
    AgentCapabilities, AgentDescription, AgentToServer, AnyValue, AvailableComponents,
    ComponentHealth, ConnectionSettingsStatus, CustomCapabilities, EffectiveConfig,
    PackageStatuses, RemoteConfigStatus,
};

/// Everything an agent has reported about itself, merged over all its messages.
///
/// A sub-message the agent omitted keeps its previous value (spec §"Agent Status
/// Compression"), so this is the agent's full current description. `None` means the agent
/// never reported that part.
#[non_exhaustive]
#[derive(Clone, Default, PartialEq)]
pub struct AgentStatus {
    /// The agent's capabilities (`AgentToServer.capabilities`), as last reported. A message
    /// that carries `0` (no bits, as in a minimal heartbeat) keeps the previous value.
    pub capabilities: AgentCapabilities,
    /// Identifying and non-identifying attributes.
    pub agent_description: Option<AgentDescription>,
    /// The health tree of the agent.
    pub health: Option<ComponentHealth>,
    /// The configuration the agent runs with.
    pub effective_config: Option<EffectiveConfig>,
    /// Status of the last remote configuration the agent received.
    pub remote_config_status: Option<RemoteConfigStatus>,
    /// Status of the packages the agent has or is installing.
    pub package_statuses: Option<PackageStatuses>,
    /// Custom capabilities the agent supports.
    pub custom_capabilities: Option<CustomCapabilities>,
    /// Components available in the agent. When the agent sends only the hash of a set the
    /// server already knows in full, the full set is kept.
    pub available_components: Option<AvailableComponents>,
    /// Status of the last connection settings offer.
    pub connection_settings_status: Option<ConnectionSettingsStatus>,
}

impl AgentStatus {
    /// True if the agent reported every capability in `capabilities`.
    pub fn has_capability(&self, capabilities: AgentCapabilities) -> bool {
        self.capabilities.contains(capabilities)
    }

    /// The value of an identifying attribute of the agent description.
    pub fn identifying_attribute(&self, key: &str) -> Option<&AnyValue> {
        self.agent_description
            .as_ref()
            .and_then(|d| d.identifying_attribute(key))
    }

    /// The value of a non-identifying attribute of the agent description.
    pub fn non_identifying_attribute(&self, key: &str) -> Option<&AnyValue> {
        self.agent_description
            .as_ref()
            .and_then(|d| d.non_identifying_attribute(key))
    }

    /// `last_remote_config_hash` of the last remote config status, if any.
    pub fn last_remote_config_hash(&self) -> Option<&[u8]> {
        self.remote_config_status
            .as_ref()
            .map(|s| s.last_remote_config_hash.as_ref())
    }

    /// `server_provided_all_packages_hash` of the last package statuses, if any.
    pub fn last_all_packages_hash(&self) -> Option<&[u8]> {
        self.package_statuses
            .as_ref()
            .map(|s| s.server_provided_all_packages_hash.as_ref())
    }

    /// `last_connection_settings_hash` of the last connection settings status, if any.
    pub fn last_connection_settings_hash(&self) -> Option<&[u8]> {
        self.connection_settings_status
            .as_ref()
            .map(|s| s.last_connection_settings_hash.as_ref())
    }

    /// True if the agent advertised the custom capability `capability`.
    pub fn has_custom_capability(&self, capability: &str) -> bool {
        self.custom_capabilities
            .as_ref()
            .is_some_and(|c| c.capabilities.iter().any(|c| c == capability))
    }

    /// True if the agent reported the hash of its available components but the server does
    /// not hold the full component map for that hash.
    pub fn available_components_incomplete(&self) -> bool {
        self.available_components
            .as_ref()
            .is_some_and(|c| c.components.is_empty() && !c.hash.is_empty())
    }

    /// Merges the compressible sub-messages of `msg` into this status and reports what
    /// changed. Sub-messages absent from `msg` keep their value.
    pub(crate) fn merge_from(&mut self, msg: &AgentToServer) -> StatusChanges {
        let mut changes = StatusChanges::empty();
        let caps = msg.typed_capabilities();
        if !caps.is_empty() && caps != self.capabilities {
            self.capabilities = caps;
            changes |= StatusChanges::CAPABILITIES;
        }
        if replace(&mut self.agent_description, &msg.agent_description) {
            changes |= StatusChanges::AGENT_DESCRIPTION;
        }
        if replace(&mut self.health, &msg.health) {
            changes |= StatusChanges::HEALTH;
        }
        if replace(&mut self.effective_config, &msg.effective_config) {
            changes |= StatusChanges::EFFECTIVE_CONFIG;
        }
        if replace(&mut self.remote_config_status, &msg.remote_config_status) {
            changes |= StatusChanges::REMOTE_CONFIG_STATUS;
        }
        if replace(&mut self.package_statuses, &msg.package_statuses) {
            changes |= StatusChanges::PACKAGE_STATUSES;
        }
        if replace(&mut self.custom_capabilities, &msg.custom_capabilities) {
            changes |= StatusChanges::CUSTOM_CAPABILITIES;
        }
        if replace(
            &mut self.connection_settings_status,
            &msg.connection_settings_status,
        ) {
            changes |= StatusChanges::CONNECTION_SETTINGS_STATUS;
        }
        if let Some(new) = &msg.available_components
            && merge_components(&mut self.available_components, new)
        {
            changes |= StatusChanges::AVAILABLE_COMPONENTS;
        }
        changes
    }

    /// True if merging `msg` would change nothing, without cloning anything.
    pub(crate) fn would_change(&self, msg: &AgentToServer) -> bool {
        let caps = msg.capabilities;
        (caps != 0 && caps != self.capabilities.bits())
            || differs(&self.agent_description, &msg.agent_description)
            || differs(&self.health, &msg.health)
            || differs(&self.effective_config, &msg.effective_config)
            || differs(&self.remote_config_status, &msg.remote_config_status)
            || differs(&self.package_statuses, &msg.package_statuses)
            || differs(&self.custom_capabilities, &msg.custom_capabilities)
            || differs(
                &self.connection_settings_status,
                &msg.connection_settings_status,
            )
            || msg
                .available_components
                .as_ref()
                .is_some_and(|new| components_differ(&self.available_components, new))
    }
}

impl fmt::Debug for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Effective config bodies are never printed (AgentConfigFile's Debug hides them).
        f.debug_struct("AgentStatus")
            .field("capabilities", &self.capabilities)
            .field("agent_description", &self.agent_description)
            .field("health", &self.health)
            .field("effective_config", &self.effective_config)
            .field("remote_config_status", &self.remote_config_status)
            .field("package_statuses", &self.package_statuses)
            .field("custom_capabilities", &self.custom_capabilities)
            .field("available_components", &self.available_components)
            .field(
                "connection_settings_status",
                &self.connection_settings_status,
            )
            .finish()
    }
}

fn differs<T: PartialEq>(current: &Option<T>, new: &Option<T>) -> bool {
    matches!(new, Some(new) if current.as_ref() != Some(new))
}

/// Replaces `slot` with `new` when `new` is present and different; true if it changed.
fn replace<T: PartialEq + Clone>(slot: &mut Option<T>, new: &Option<T>) -> bool {
    match new {
        Some(new) if slot.as_ref() != Some(new) => {
            *slot = Some(new.clone());
            true
        }
        _ => false,
    }
}

/// Spec §"AvailableComponents Message" / §"Initial Handshake": a hash-only report of a set the
/// server already holds in full keeps the full set; anything else replaces it.
fn merge_components(slot: &mut Option<AvailableComponents>, new: &AvailableComponents) -> bool {
    if !components_differ(slot, new) {
        return false;
    }
    *slot = Some(new.clone());
    true
}

fn components_differ(current: &Option<AvailableComponents>, new: &AvailableComponents) -> bool {
    match current {
        Some(current) if new.components.is_empty() && current.hash == new.hash => false,
        current => current.as_ref() != Some(new),
    }
}

/// Which parts of an [`AgentStatus`] one message changed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusChanges(u16);

impl StatusChanges {
    /// `capabilities` changed.
    pub const CAPABILITIES: Self = Self(1 << 0);
    /// `agent_description` changed.
    pub const AGENT_DESCRIPTION: Self = Self(1 << 1);
    /// `health` changed.
    pub const HEALTH: Self = Self(1 << 2);
    /// `effective_config` changed.
    pub const EFFECTIVE_CONFIG: Self = Self(1 << 3);
    /// `remote_config_status` changed.
    pub const REMOTE_CONFIG_STATUS: Self = Self(1 << 4);
    /// `package_statuses` changed.
    pub const PACKAGE_STATUSES: Self = Self(1 << 5);
    /// `custom_capabilities` changed.
    pub const CUSTOM_CAPABILITIES: Self = Self(1 << 6);
    /// `available_components` changed.
    pub const AVAILABLE_COMPONENTS: Self = Self(1 << 7);
    /// `connection_settings_status` changed.
    pub const CONNECTION_SETTINGS_STATUS: Self = Self(1 << 8);

    const NAMES: [(Self, &'static str); 9] = [
        (Self::CAPABILITIES, "CAPABILITIES"),
        (Self::AGENT_DESCRIPTION, "AGENT_DESCRIPTION"),
        (Self::HEALTH, "HEALTH"),
        (Self::EFFECTIVE_CONFIG, "EFFECTIVE_CONFIG"),
        (Self::REMOTE_CONFIG_STATUS, "REMOTE_CONFIG_STATUS"),
        (Self::PACKAGE_STATUSES, "PACKAGE_STATUSES"),
        (Self::CUSTOM_CAPABILITIES, "CUSTOM_CAPABILITIES"),
        (Self::AVAILABLE_COMPONENTS, "AVAILABLE_COMPONENTS"),
        (
            Self::CONNECTION_SETTINGS_STATUS,
            "CONNECTION_SETTINGS_STATUS",
        ),
    ];

    /// No change.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// True if nothing changed.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True if every change in `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if `self` and `other` share a change.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for StatusChanges {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for StatusChanges {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for StatusChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatusChanges(")?;
        let mut first = true;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("empty")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opamp_proto::{Bytes, ComponentDetails};

    fn description(name: &str) -> AgentDescription {
        AgentDescription::builder().service_name(name).build()
    }

    #[test]
    fn omitted_sub_messages_keep_their_value() {
        let mut status = AgentStatus::default();
        let first = AgentToServer {
            capabilities: 0x801,
            agent_description: Some(description("a")),
            health: Some(ComponentHealth {
                healthy: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let changes = status.merge_from(&first);
        assert!(changes.contains(
            StatusChanges::CAPABILITIES | StatusChanges::AGENT_DESCRIPTION | StatusChanges::HEALTH
        ));
        let heartbeat = AgentToServer::default();
        assert!(!status.would_change(&heartbeat));
        assert!(status.merge_from(&heartbeat).is_empty());
        assert_eq!(status.capabilities.bits(), 0x801);
        assert_eq!(status.agent_description, Some(description("a")));
        assert!(status.health.as_ref().unwrap().healthy);

        let unhealthy = AgentToServer {
            health: Some(ComponentHealth::default()),
            ..Default::default()
        };
        assert!(status.would_change(&unhealthy));
        assert_eq!(status.merge_from(&unhealthy), StatusChanges::HEALTH);
        assert!(!status.health.as_ref().unwrap().healthy);
        assert_eq!(status.agent_description, Some(description("a")));
    }

    #[test]
    fn hash_only_components_keep_the_known_full_set() {
        let mut status = AgentStatus::default();
        let full = AvailableComponents {
            hash: Bytes::from_static(b"h1"),
            components: [("receivers".to_owned(), ComponentDetails::default())].into(),
        };
        status.merge_from(&AgentToServer {
            available_components: Some(full.clone()),
            ..Default::default()
        });
        let hash_only = AvailableComponents {
            hash: Bytes::from_static(b"h1"),
            ..Default::default()
        };
        let msg = AgentToServer {
            available_components: Some(hash_only),
            ..Default::default()
        };
        assert!(!status.would_change(&msg));
        assert!(status.merge_from(&msg).is_empty());
        assert_eq!(status.available_components, Some(full));
        assert!(!status.available_components_incomplete());

        let other_hash = AgentToServer {
            available_components: Some(AvailableComponents {
                hash: Bytes::from_static(b"h2"),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            status.merge_from(&other_hash),
            StatusChanges::AVAILABLE_COMPONENTS
        );
        assert!(status.available_components_incomplete());
    }

    #[test]
    fn accessors() {
        let mut status = AgentStatus::default();
        status.merge_from(&AgentToServer {
            agent_description: Some(
                AgentDescription::builder()
                    .identifying("environment", "prod")
                    .non_identifying("os.type", "linux")
                    .build(),
            ),
            remote_config_status: Some(RemoteConfigStatus {
                last_remote_config_hash: Bytes::from_static(b"rc"),
                ..Default::default()
            }),
            custom_capabilities: Some(CustomCapabilities {
                capabilities: vec!["io.example.cap".into()],
            }),
            ..Default::default()
        });
        assert_eq!(
            status
                .identifying_attribute("environment")
                .and_then(AnyValue::as_str),
            Some("prod")
        );
        assert_eq!(
            status
                .non_identifying_attribute("os.type")
                .and_then(AnyValue::as_str),
            Some("linux")
        );
        assert_eq!(status.last_remote_config_hash(), Some(&b"rc"[..]));
        assert_eq!(status.last_all_packages_hash(), None);
        assert!(status.has_custom_capability("io.example.cap"));
        assert!(!status.has_custom_capability("io.example.other"));
    }

    #[test]
    fn debug_names_changes() {
        assert_eq!(
            format!("{:?}", StatusChanges::HEALTH | StatusChanges::CAPABILITIES),
            "StatusChanges(CAPABILITIES | HEALTH)"
        );
        assert_eq!(
            format!("{:?}", StatusChanges::empty()),
            "StatusChanges(empty)"
        );
    }
}
