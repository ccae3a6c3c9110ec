//! The one pending server-to-agent message of an agent, and the capability filter.
//!
//! Spec §"Retrying Messages": the server keeps one up-to-date message of each kind for an
//! agent, never a growing queue. Messages sent to an agent that cannot take them yet are merged
//! here field by field (newer values win, flags are OR-ed). An error response and a command
//! travel alone (spec §"ServerToAgent.error_response", §"ServerToAgent.command"), so they are
//! kept apart and delivered in their own message.

use opamp_proto::{AgentCapabilities, ServerErrorResponse, ServerToAgent, ServerToAgentCommand};

use super::AgentStatus;

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueRejection {
    /// A custom message is already waiting for delivery.
    CustomMessagePending,
}

/// What is waiting to be delivered to one agent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    error: Option<ServerErrorResponse>,
    body: Option<Box<ServerToAgent>>,
    command: Option<ServerToAgentCommand>,
}

impl Pending {
    /// True if nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.error.is_none() && self.body.is_none() && self.command.is_none()
    }

    /// True if a custom message waits.
    pub(crate) fn has_custom_message(&self) -> bool {
        self.body
            .as_ref()
            .is_some_and(|b| b.custom_message.is_some())
    }

    /// Merges `msg` (offers already taken out of it) into what waits. Nothing changes if it is
    /// rejected.
    pub(crate) fn push(&mut self, mut msg: ServerToAgent) -> Result<(), QueueRejection> {
        if msg.custom_message.is_some() && self.has_custom_message() {
            return Err(QueueRejection::CustomMessagePending);
        }
        if let Some(error) = msg.error_response.take() {
            // An error response carries nothing else (spec §"ServerToAgent.error_response").
            self.error = Some(error);
            return Ok(());
        }
        if let Some(command) = msg.command.take() {
            self.command = Some(command);
        }
        msg.instance_uid.clear();
        if has_content(&msg) {
            match &mut self.body {
                Some(body) => merge_into(body, msg),
                None => self.body = Some(Box::new(msg)),
            }
        }
        Ok(())
    }

    /// Takes the pending error response.
    pub(crate) fn take_error(&mut self) -> Option<ServerErrorResponse> {
        self.error.take()
    }

    /// Takes the pending body (everything but error and command).
    pub(crate) fn take_body(&mut self) -> Option<ServerToAgent> {
        self.body.take().map(|b| *b)
    }

    /// Takes the pending command.
    pub(crate) fn take_command(&mut self) -> Option<ServerToAgentCommand> {
        self.command.take()
    }

    /// True if a command waits.
    pub(crate) fn has_command(&self) -> bool {
        self.command.is_some()
    }
}

/// Merges `newer` into `into`: every field `newer` sets replaces the older value, flags and
/// capabilities are OR-ed.
pub(crate) fn merge_into(into: &mut ServerToAgent, newer: ServerToAgent) {
    let ServerToAgent {
        instance_uid,
        error_response,
        remote_config,
        connection_settings,
        packages_available,
        flags,
        capabilities,
        agent_identification,
        command,
        custom_capabilities,
        custom_message,
    } = newer;
    if !instance_uid.is_empty() {
        into.instance_uid = instance_uid;
    }
    replace_if_some(&mut into.error_response, error_response);
    replace_if_some(&mut into.remote_config, remote_config);
    replace_if_some(&mut into.connection_settings, connection_settings);
    replace_if_some(&mut into.packages_available, packages_available);
    into.flags |= flags;
    into.capabilities |= capabilities;
    replace_if_some(&mut into.agent_identification, agent_identification);
    replace_if_some(&mut into.command, command);
    replace_if_some(&mut into.custom_capabilities, custom_capabilities);
    replace_if_some(&mut into.custom_message, custom_message);
}

fn replace_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Clears `slot` unless `caps` contains `needed`; true if it removed something.
fn clear_unless<T>(
    slot: &mut Option<T>,
    caps: AgentCapabilities,
    needed: AgentCapabilities,
) -> bool {
    if slot.is_some() && !caps.contains(needed) {
        *slot = None;
        true
    } else {
        false
    }
}

/// True if `msg` says anything beyond its `instance_uid`.
pub(crate) fn has_content(msg: &ServerToAgent) -> bool {
    msg.error_response.is_some()
        || msg.remote_config.is_some()
        || msg.connection_settings.is_some()
        || msg.packages_available.is_some()
        || msg.flags != 0
        || msg.capabilities != 0
        || msg.agent_identification.is_some()
        || msg.command.is_some()
        || msg.custom_capabilities.is_some()
        || msg.custom_message.is_some()
}

/// What [`gate`] removed from a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gated {
    pub(crate) remote_config: bool,
    pub(crate) packages: bool,
    pub(crate) connection_settings: bool,
    pub(crate) command: bool,
    pub(crate) custom_message: bool,
}

impl Gated {
    pub(crate) fn any(&self) -> bool {
        self.remote_config
            || self.packages
            || self.connection_settings
            || self.command
            || self.custom_message
    }
}

/// Removes from `msg` every part the agent's capabilities say it does not accept (spec
/// §"Interoperability of Partial Implementations", §"Configuration", §"Packages",
/// §"Connection Settings Management", §"ServerToAgentCommand Message", §"Custom Messages").
///
/// An agent that reports heartbeats but does not accept OpAMP connection settings still gets
/// `opamp.heartbeat_interval_seconds`, with the rest of the `opamp` settings removed (spec
/// §"OpAMPConnectionSettings.heartbeat_interval_seconds").
pub(crate) fn gate(msg: &mut ServerToAgent, status: &AgentStatus) -> Gated {
    let caps = status.capabilities;
    let mut gated = Gated::default();
    if msg.remote_config.is_some() && !caps.contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG) {
        msg.remote_config = None;
        gated.remote_config = true;
    }
    if msg.packages_available.is_some() && !caps.contains(AgentCapabilities::ACCEPTS_PACKAGES) {
        msg.packages_available = None;
        gated.packages = true;
    }
    if let Some(offers) = &mut msg.connection_settings {
        let mut removed = false;
        if let Some(opamp) = &mut offers.opamp
            && !caps.contains(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS)
        {
            let heartbeat_interval_seconds = opamp.heartbeat_interval_seconds;
            if caps.contains(AgentCapabilities::REPORTS_HEARTBEAT)
                && heartbeat_interval_seconds != 0
            {
                let only_heartbeat = opamp_proto::OpAmpConnectionSettings {
                    heartbeat_interval_seconds,
                    ..Default::default()
                };
                if *opamp != only_heartbeat {
                    *opamp = only_heartbeat;
                    removed = true;
                }
            } else {
                offers.opamp = None;
                removed = true;
            }
        }
        removed |= clear_unless(
            &mut offers.own_metrics,
            caps,
            AgentCapabilities::REPORTS_OWN_METRICS,
        );
        removed |= clear_unless(
            &mut offers.own_traces,
            caps,
            AgentCapabilities::REPORTS_OWN_TRACES,
        );
        removed |= clear_unless(
            &mut offers.own_logs,
            caps,
            AgentCapabilities::REPORTS_OWN_LOGS,
        );
        if !offers.other_connections.is_empty()
            && !caps.contains(AgentCapabilities::ACCEPTS_OTHER_CONNECTION_SETTINGS)
        {
            offers.other_connections.clear();
            removed = true;
        }
        gated.connection_settings = removed;
        let empty = offers.opamp.is_none()
            && offers.own_metrics.is_none()
            && offers.own_traces.is_none()
            && offers.own_logs.is_none()
            && offers.other_connections.is_empty();
        if empty {
            msg.connection_settings = None;
        }
    }
    if msg.command.is_some() && !caps.contains(AgentCapabilities::ACCEPTS_RESTART_COMMAND) {
        msg.command = None;
        gated.command = true;
    }
    if let Some(custom) = &msg.custom_message
        && !status.has_custom_capability(&custom.capability)
    {
        msg.custom_message = None;
        gated.custom_message = true;
    }
    gated
}

#[cfg(test)]
mod tests {
    use super::*;
    use opamp_proto::{
        AgentRemoteConfig, Bytes, ConnectionSettingsOffers, CustomCapabilities, CustomMessage,
        OpAmpConnectionSettings, TelemetryConnectionSettings,
    };

    fn status(caps: AgentCapabilities) -> AgentStatus {
        AgentStatus {
            capabilities: caps,
            ..Default::default()
        }
    }

    #[test]
    fn merge_keeps_newest_and_ors_flags() {
        let mut pending = Pending::default();
        pending
            .push(ServerToAgent {
                flags: 1,
                remote_config: Some(AgentRemoteConfig {
                    config_hash: Bytes::from_static(b"a"),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        pending
            .push(ServerToAgent {
                flags: 2,
                remote_config: Some(AgentRemoteConfig {
                    config_hash: Bytes::from_static(b"b"),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        let body = pending.take_body().unwrap();
        assert_eq!(body.flags, 3);
        assert_eq!(
            body.remote_config.unwrap().config_hash,
            Bytes::from_static(b"b")
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn error_and_command_are_kept_apart() {
        let mut pending = Pending::default();
        pending
            .push(ServerToAgent {
                command: Some(ServerToAgentCommand::default()),
                flags: 1,
                ..Default::default()
            })
            .unwrap();
        pending
            .push(ServerToAgent {
                error_response: Some(ServerErrorResponse::default()),
                flags: 2,
                ..Default::default()
            })
            .unwrap();
        assert!(pending.has_command());
        assert!(pending.take_error().is_some());
        assert_eq!(pending.take_body().unwrap().flags, 1);
        assert!(pending.take_command().is_some());
        assert!(pending.is_empty());
    }

    #[test]
    fn second_custom_message_is_rejected_atomically() {
        let mut pending = Pending::default();
        let custom = |t: &str| ServerToAgent {
            custom_message: Some(CustomMessage {
                capability: "c".into(),
                r#type: t.into(),
                data: Bytes::new(),
            }),
            flags: 4,
            ..Default::default()
        };
        pending.push(custom("one")).unwrap();
        assert_eq!(
            pending.push(custom("two")),
            Err(QueueRejection::CustomMessagePending)
        );
        let body = pending.take_body().unwrap();
        assert_eq!(body.custom_message.unwrap().r#type, "one");
        pending.push(custom("two")).unwrap();
    }

    #[test]
    fn gate_by_capabilities() {
        let mut msg = ServerToAgent {
            remote_config: Some(AgentRemoteConfig::default()),
            command: Some(ServerToAgentCommand::default()),
            custom_message: Some(CustomMessage {
                capability: "io.x".into(),
                ..Default::default()
            }),
            connection_settings: Some(ConnectionSettingsOffers {
                own_metrics: Some(TelemetryConnectionSettings::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let gated = gate(&mut msg, &status(AgentCapabilities::REPORTS_STATUS));
        assert!(gated.remote_config && gated.command && gated.custom_message);
        assert!(gated.connection_settings && gated.any());
        assert!(!has_content(&msg));

        let mut msg = ServerToAgent {
            remote_config: Some(AgentRemoteConfig::default()),
            custom_message: Some(CustomMessage {
                capability: "io.x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut st = status(AgentCapabilities::ACCEPTS_REMOTE_CONFIG);
        st.custom_capabilities = Some(CustomCapabilities {
            capabilities: vec!["io.x".into()],
        });
        assert!(!gate(&mut msg, &st).any());
        assert!(msg.remote_config.is_some() && msg.custom_message.is_some());
    }

    #[test]
    fn heartbeat_survives_without_opamp_settings_capability() {
        let offer = || ServerToAgent {
            connection_settings: Some(ConnectionSettingsOffers {
                hash: Bytes::from_static(b"h"),
                opamp: Some(OpAmpConnectionSettings {
                    destination_endpoint: "wss://elsewhere".into(),
                    heartbeat_interval_seconds: 30,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut msg = offer();
        gate(&mut msg, &status(AgentCapabilities::REPORTS_HEARTBEAT));
        let opamp = msg.connection_settings.unwrap().opamp.unwrap();
        assert_eq!(opamp.heartbeat_interval_seconds, 30);
        assert!(opamp.destination_endpoint.is_empty());

        let mut msg = offer();
        gate(&mut msg, &status(AgentCapabilities::REPORTS_STATUS));
        assert!(msg.connection_settings.is_none());

        let mut msg = offer();
        let gated = gate(
            &mut msg,
            &status(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS),
        );
        assert!(!gated.any());
        assert_eq!(
            msg.connection_settings
                .unwrap()
                .opamp
                .unwrap()
                .destination_endpoint,
            "wss://elsewhere"
        );
    }
}
