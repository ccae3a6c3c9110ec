//! Capability bit sets: [`AgentCapabilities`] and [`ServerCapabilities`].

use crate::bitset::bit_set;
use crate::generated;
use crate::{AgentToServer, ServerToAgent};

bit_set! {
    /// The capability bits an Agent sends in `AgentToServer.capabilities`.
    ///
    /// See spec §AgentToServer.capabilities. Bits this crate does not know
    /// are kept (never rejected), so a newer peer's capabilities survive a
    /// round trip.
    ///
    /// ```
    /// use opamp_proto::AgentCapabilities;
    ///
    /// let caps = AgentCapabilities::REPORTS_STATUS | AgentCapabilities::ACCEPTS_REMOTE_CONFIG;
    /// assert!(caps.contains(AgentCapabilities::REPORTS_STATUS));
    /// assert_eq!(caps.bits(), 0x3);
    /// assert_eq!(
    ///     format!("{:?}", AgentCapabilities::from_bits(0x1_0001)),
    ///     "AgentCapabilities(REPORTS_STATUS | 0x10000)"
    /// );
    /// ```
    AgentCapabilities from generated::AgentCapabilities {
        /// Reports status; every Agent must set this bit.
        REPORTS_STATUS = 0x1, ReportsStatus;
        /// Accepts remote configuration.
        ACCEPTS_REMOTE_CONFIG = 0x2, AcceptsRemoteConfig;
        /// Reports its effective configuration.
        REPORTS_EFFECTIVE_CONFIG = 0x4, ReportsEffectiveConfig;
        /// Accepts package offers.
        ACCEPTS_PACKAGES = 0x8, AcceptsPackages;
        /// Reports package statuses.
        REPORTS_PACKAGE_STATUSES = 0x10, ReportsPackageStatuses;
        /// Sends its own traces where the Server says.
        REPORTS_OWN_TRACES = 0x20, ReportsOwnTraces;
        /// Sends its own metrics where the Server says.
        REPORTS_OWN_METRICS = 0x40, ReportsOwnMetrics;
        /// Sends its own logs where the Server says.
        REPORTS_OWN_LOGS = 0x80, ReportsOwnLogs;
        /// Accepts connection settings for the OpAMP connection.
        ACCEPTS_OPAMP_CONNECTION_SETTINGS = 0x100, AcceptsOpAmpConnectionSettings;
        /// Accepts connection settings for other destinations.
        ACCEPTS_OTHER_CONNECTION_SETTINGS = 0x200, AcceptsOtherConnectionSettings;
        /// Accepts the restart command.
        ACCEPTS_RESTART_COMMAND = 0x400, AcceptsRestartCommand;
        /// Reports health.
        REPORTS_HEALTH = 0x800, ReportsHealth;
        /// Reports the status of remote configuration.
        REPORTS_REMOTE_CONFIG = 0x1000, ReportsRemoteConfig;
        /// Sends heartbeats.
        REPORTS_HEARTBEAT = 0x2000, ReportsHeartbeat;
        /// Reports its available components.
        REPORTS_AVAILABLE_COMPONENTS = 0x4000, ReportsAvailableComponents;
        /// Reports the status of offered connection settings.
        REPORTS_CONNECTION_SETTINGS_STATUS = 0x8000, ReportsConnectionSettingsStatus;
    }
}

bit_set! {
    /// The capability bits a Server sends in `ServerToAgent.capabilities`.
    ///
    /// See spec §ServerToAgent.capabilities. Unknown bits are kept.
    ServerCapabilities from generated::ServerCapabilities {
        /// Accepts status reports; every Server must set this bit.
        ACCEPTS_STATUS = 0x1, AcceptsStatus;
        /// Offers remote configuration.
        OFFERS_REMOTE_CONFIG = 0x2, OffersRemoteConfig;
        /// Accepts effective configuration reports.
        ACCEPTS_EFFECTIVE_CONFIG = 0x4, AcceptsEffectiveConfig;
        /// Offers packages.
        OFFERS_PACKAGES = 0x8, OffersPackages;
        /// Accepts package statuses.
        ACCEPTS_PACKAGES_STATUS = 0x10, AcceptsPackagesStatus;
        /// Offers connection settings.
        OFFERS_CONNECTION_SETTINGS = 0x20, OffersConnectionSettings;
        /// Accepts connection settings requests.
        ACCEPTS_CONNECTION_SETTINGS_REQUEST = 0x40, AcceptsConnectionSettingsRequest;
    }
}

impl AgentToServer {
    /// `capabilities` as an [`AgentCapabilities`] set.
    pub fn typed_capabilities(&self) -> AgentCapabilities {
        AgentCapabilities::from_bits(self.capabilities)
    }
}

impl ServerToAgent {
    /// `capabilities` as a [`ServerCapabilities`] set.
    pub fn typed_capabilities(&self) -> ServerCapabilities {
        ServerCapabilities::from_bits(self.capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lists_names_and_unknown_bits() {
        let caps = AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::REPORTS_HEARTBEAT
            | AgentCapabilities::from_bits(0x8000_0000_0001_0000);
        assert_eq!(
            format!("{caps:?}"),
            "AgentCapabilities(REPORTS_STATUS | REPORTS_HEARTBEAT | 0x8000000000010000)"
        );
        assert_eq!(
            format!("{:?}", ServerCapabilities::empty()),
            "ServerCapabilities(empty)"
        );
        assert_eq!(
            format!("{:?}", ServerCapabilities::from_bits(0x80)),
            "ServerCapabilities(0x80)"
        );
    }

    #[test]
    fn unknown_bits_are_kept_through_operations() {
        let mut caps = AgentCapabilities::from_bits(0x1_0001);
        assert_eq!(caps.unknown_bits(), 0x1_0000);
        caps.insert(AgentCapabilities::REPORTS_HEALTH);
        caps.remove(AgentCapabilities::REPORTS_STATUS);
        assert_eq!(caps.bits(), 0x1_0800);
        assert_eq!((caps & !AgentCapabilities::REPORTS_HEALTH).bits(), 0x1_0000);
        assert_eq!((caps - AgentCapabilities::REPORTS_HEALTH).bits(), 0x1_0000);
        assert!(caps.contains(AgentCapabilities::REPORTS_HEALTH));
        assert!(!caps.contains(AgentCapabilities::REPORTS_STATUS));
    }

    #[test]
    fn all_known_covers_every_proto_value() {
        assert_eq!(AgentCapabilities::all_known().bits(), 0xFFFF);
        assert_eq!(ServerCapabilities::all_known().bits(), 0x7F);
        assert_eq!(AgentCapabilities::NAMED.len(), 16);
        assert_eq!(ServerCapabilities::NAMED.len(), 7);
        assert_eq!(
            AgentCapabilities::from(generated::AgentCapabilities::ReportsHeartbeat),
            AgentCapabilities::REPORTS_HEARTBEAT
        );
        assert!(AgentCapabilities::from(generated::AgentCapabilities::Unspecified).is_empty());
        let collected: AgentCapabilities = [
            AgentCapabilities::REPORTS_STATUS,
            AgentCapabilities::REPORTS_HEALTH,
        ]
        .into_iter()
        .collect();
        assert_eq!(collected.bits(), 0x801);
    }

    #[test]
    fn message_accessors() {
        let msg = AgentToServer {
            capabilities: 0x2001,
            ..Default::default()
        };
        assert_eq!(
            msg.typed_capabilities(),
            AgentCapabilities::REPORTS_STATUS | AgentCapabilities::REPORTS_HEARTBEAT
        );
        let msg = ServerToAgent {
            capabilities: 0x41,
            ..Default::default()
        };
        assert_eq!(
            msg.typed_capabilities(),
            ServerCapabilities::ACCEPTS_STATUS
                | ServerCapabilities::ACCEPTS_CONNECTION_SETTINGS_REQUEST
        );
    }
}
