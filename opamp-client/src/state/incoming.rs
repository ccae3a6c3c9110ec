//! Processing a `ServerToAgent` message (spec §"ServerToAgent Message").

use std::time::{Duration, Instant};

use opamp_proto::{
    AgentCapabilities, AgentToServerFlags, InstanceUid, ServerCapabilities,
    ServerErrorResponseType, ServerToAgent, ServerToAgentFlags, server_error_response,
};

use super::link::Link;
use super::status::Parts;
use super::{ClientState, Event, Transport};
use crate::callbacks::MessageData;

impl ClientState {
    fn addressed_to_us(&self, uid: &[u8]) -> bool {
        // A server-initiated message may omit the UID (opamp-go's example server does).
        if uid.is_empty() {
            return true;
        }
        match InstanceUid::try_from(uid) {
            Ok(uid) => uid == self.uid || Some(uid) == self.previous_uid,
            Err(_) => false,
        }
    }

    /// Processes a message from the server.
    ///
    /// Over plain HTTP this is the response to the message in flight and completes it:
    /// delivered, dropped after `BAD_REQUEST` (spec §"Bad Request": not retried), or restored
    /// for a later retry after `UNAVAILABLE` (spec §"Throttling"). Over WebSocket, `UNAVAILABLE`
    /// asks the driver to disconnect and reconnect later ([`wants_disconnect`]), and the next
    /// connection reports the full status, since the server may have lost what it was sent.
    ///
    /// Offers for capabilities the Agent does not have are ignored; what remains comes out of
    /// [`poll_event`]. Only `ReportFullState` and `ReportAvailableComponents` make a report
    /// due: a message that changes nothing is never answered (spec §"Status Reporting").
    ///
    /// [`wants_disconnect`]: ClientState::wants_disconnect
    /// [`poll_event`]: ClientState::poll_event
    pub fn handle_server_message(&mut self, msg: ServerToAgent, now: Instant) {
        if self.stopped {
            return;
        }
        // Whatever the server says, it has read what came before (it answers in order).
        self.unacked = Parts::empty();
        self.unacked_full_components = false;
        let response_to = match self.transport {
            Transport::Http => self.in_flight.take(),
            Transport::WebSocket => None,
        };
        if !self.addressed_to_us(&msg.instance_uid) {
            tracing::warn!(
                instance_uid = ?msg.instance_uid,
                "ignoring a ServerToAgent addressed to another instance UID"
            );
            if let Some(in_flight) = response_to {
                // It still answers the request: retrying would get the same answer.
                self.complete(in_flight);
                self.link = Link::Connected;
            }
            return;
        }

        if let Some(error) = msg.error_response {
            match error.r#type() {
                ServerErrorResponseType::Unavailable => {
                    let retry_after = error.details.as_ref().map(|details| match details {
                        server_error_response::Details::RetryInfo(info) => {
                            Duration::from_nanos(info.retry_after_nanoseconds)
                        }
                    });
                    let delay = self.retry.delay_after_unavailable(retry_after);
                    match self.transport {
                        Transport::Http => {
                            if let Some(in_flight) = response_to {
                                self.restore(in_flight);
                            }
                            self.link = Link::Disconnected {
                                retry_at: Some(now + delay),
                            };
                        }
                        Transport::WebSocket => {
                            self.disconnect_requested = Some(now + delay);
                            self.full_report_on_connect = true;
                        }
                    }
                }
                ServerErrorResponseType::BadRequest | ServerErrorResponseType::Unknown => {
                    if let Some(in_flight) = response_to {
                        self.drop_in_flight(in_flight);
                    }
                    self.retry.succeeded();
                    if self.transport == Transport::Http {
                        self.link = Link::Connected;
                    }
                }
            }
            self.push_event(Event::ServerError(error));
            return;
        }

        if let Some(in_flight) = response_to {
            self.complete(in_flight);
        }
        if self.transport == Transport::Http {
            self.link = Link::Connected;
        }
        self.retry.succeeded();
        if msg.capabilities != 0 {
            self.server_capabilities = ServerCapabilities::from_bits(msg.capabilities);
        }

        // A command comes alone; anything else in the message is ignored (spec
        // §"ServerToAgent.command").
        if let Some(command) = msg.command {
            if self
                .capabilities
                .contains(AgentCapabilities::ACCEPTS_RESTART_COMMAND)
            {
                self.push_event(Event::Command(command));
            } else {
                tracing::debug!("ignoring a command: the Agent lacks AcceptsRestartCommand");
            }
            return;
        }

        let flags = ServerToAgentFlags::from_bits(msg.flags);
        if flags.contains(ServerToAgentFlags::REPORT_FULL_STATE) {
            self.report_full_state();
        }
        if flags.contains(ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS)
            && self
                .capabilities
                .contains(AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS)
            && self.status.available_components.is_some()
        {
            self.full_components = true;
            self.dirty.insert(Parts::AVAILABLE_COMPONENTS);
        }

        let caps = self.capabilities;
        let mut data = MessageData::default();

        if let Some(identification) = msg.agent_identification {
            match InstanceUid::try_from(identification.new_instance_uid.as_ref()) {
                Ok(new) if !new.is_nil() => {
                    self.flags.remove(AgentToServerFlags::REQUEST_INSTANCE_UID);
                    if new != self.uid {
                        let old = self.uid;
                        self.previous_uid = Some(old);
                        self.uid = new;
                        tracing::info!(%old, %new, "the server assigned a new instance UID");
                        self.push_event(Event::InstanceUidChanged { old, new });
                    }
                    data.agent_identification = Some(identification);
                }
                _ => tracing::warn!(
                    len = identification.new_instance_uid.len(),
                    "ignoring new_instance_uid: it must be 16 bytes and not nil"
                ),
            }
        }

        if let Some(offers) = msg.connection_settings {
            if let Some(opamp) = offers.opamp {
                // Spec §"OpAMPConnectionSettings.heartbeat_interval_seconds": with
                // ReportsHeartbeat the offered interval is used, and 0 disables heartbeats
                // (WebSocket; plain HTTP keeps polling at the configured interval, since it
                // uses the offered value only when it is not zero). An offer without
                // OpAMPConnectionSettings leaves the interval as it is.
                if caps.contains(AgentCapabilities::REPORTS_HEARTBEAT) {
                    self.offered_heartbeat =
                        Some(Duration::from_secs(opamp.heartbeat_interval_seconds));
                }
                if caps.contains(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS) {
                    self.push_event(Event::OpampConnectionSettings {
                        settings: Box::new(opamp),
                        hash: offers.hash.clone(),
                    });
                } else {
                    tracing::debug!("ignoring OpAMP connection settings: capability not set");
                }
            }
            if caps.contains(AgentCapabilities::REPORTS_OWN_METRICS) {
                data.own_metrics = offers.own_metrics;
            }
            if caps.contains(AgentCapabilities::REPORTS_OWN_TRACES) {
                data.own_traces = offers.own_traces;
            }
            if caps.contains(AgentCapabilities::REPORTS_OWN_LOGS) {
                data.own_logs = offers.own_logs;
            }
            if caps.contains(AgentCapabilities::ACCEPTS_OTHER_CONNECTION_SETTINGS) {
                data.other_connection_settings = offers.other_connections;
            }
            if data.own_metrics.is_some()
                || data.own_traces.is_some()
                || data.own_logs.is_some()
                || !data.other_connection_settings.is_empty()
            {
                data.connection_settings_hash = Some(offers.hash);
            }
        }

        if caps.contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG) {
            data.remote_config = msg.remote_config;
        }
        if caps.contains(AgentCapabilities::ACCEPTS_PACKAGES) {
            data.packages_available = msg.packages_available;
        }
        data.custom_capabilities = msg.custom_capabilities;
        if let Some(custom) = msg.custom_message {
            let ours = self
                .status
                .custom_capabilities
                .as_ref()
                .is_some_and(|c| c.capabilities.contains(&custom.capability));
            if ours {
                data.custom_message = Some(custom);
            } else {
                tracing::debug!(
                    capability = %custom.capability,
                    "ignoring a custom message for a capability the Agent lacks"
                );
            }
        }
        if !data.is_empty() {
            self.push_event(Event::Message(Box::new(data)));
        }
    }
}
