//! Flag bit sets: [`AgentToServerFlags`] and [`ServerToAgentFlags`].

use crate::bitset::bit_set;
use crate::generated;
use crate::{AgentToServer, ServerToAgent};

bit_set! {
    /// The flag bits of `AgentToServer.flags`.
    ///
    /// See spec §AgentToServer.flags. Unknown bits are kept.
    AgentToServerFlags from generated::AgentToServerFlags {
        /// Asks the Server to assign a new instance UID.
        REQUEST_INSTANCE_UID = 0x1, RequestInstanceUid;
    }
}

bit_set! {
    /// The flag bits of `ServerToAgent.flags`.
    ///
    /// See spec §ServerToAgent.flags. Unknown bits are kept.
    ServerToAgentFlags from generated::ServerToAgentFlags {
        /// Asks the Agent to send every part of its status again.
        REPORT_FULL_STATE = 0x1, ReportFullState;
        /// Asks the Agent for its full list of available components.
        REPORT_AVAILABLE_COMPONENTS = 0x2, ReportAvailableComponents;
    }
}

impl AgentToServer {
    /// `flags` as an [`AgentToServerFlags`] set.
    pub fn typed_flags(&self) -> AgentToServerFlags {
        AgentToServerFlags::from_bits(self.flags)
    }
}

impl ServerToAgent {
    /// `flags` as a [`ServerToAgentFlags`] set.
    pub fn typed_flags(&self) -> ServerToAgentFlags {
        ServerToAgentFlags::from_bits(self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lists_names_and_unknown_bits() {
        let flags = ServerToAgentFlags::from_bits(0x13);
        assert_eq!(
            format!("{flags:?}"),
            "ServerToAgentFlags(REPORT_FULL_STATE | REPORT_AVAILABLE_COMPONENTS | 0x10)"
        );
        assert_eq!(
            format!("{:?}", AgentToServerFlags::REQUEST_INSTANCE_UID),
            "AgentToServerFlags(REQUEST_INSTANCE_UID)"
        );
        assert_eq!(
            format!("{:?}", AgentToServerFlags::default()),
            "AgentToServerFlags(empty)"
        );
    }

    #[test]
    fn set_operations() {
        let mut flags = ServerToAgentFlags::empty();
        flags |= ServerToAgentFlags::REPORT_FULL_STATE;
        flags.set(ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS, true);
        assert_eq!(flags, ServerToAgentFlags::all_known());
        flags.set(ServerToAgentFlags::REPORT_FULL_STATE, false);
        assert_eq!(flags.bits(), 0x2);
        assert!(flags.intersects(ServerToAgentFlags::all_known()));
        assert_eq!(
            flags.names().collect::<Vec<_>>(),
            ["REPORT_AVAILABLE_COMPONENTS"]
        );
        flags &= ServerToAgentFlags::REPORT_FULL_STATE;
        assert!(flags.is_empty());
    }

    #[test]
    fn message_accessors() {
        let msg = AgentToServer {
            flags: 0x5,
            ..Default::default()
        };
        assert!(
            msg.typed_flags()
                .contains(AgentToServerFlags::REQUEST_INSTANCE_UID)
        );
        assert_eq!(msg.typed_flags().unknown_bits(), 0x4);
        let msg = ServerToAgent {
            flags: 0x1,
            ..Default::default()
        };
        assert_eq!(msg.typed_flags(), ServerToAgentFlags::REPORT_FULL_STATE);
    }
}
