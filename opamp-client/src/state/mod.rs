//! The client side of the protocol as a sans-IO state machine: [`ClientState`].
//!
//! [`ClientState`] holds every rule of the spec that does not need a socket or a clock: the one
//! pending `AgentToServer` merged from every change since the last send, `sequence_num`, status
//! compression, full reports, capability checks, the instance UID, custom messages, available
//! components, heartbeat and polling deadlines, and retry decisions (backoff, throttling).
//!
//! It never reads the clock: every input that depends on time takes `now`. It never does IO:
//! a driver (see [`crate::Client`]) feeds it what happens on the network and carries out what it
//! asks for.
//!
//! # Driving it
//!
//! * Setters (`set_health`, `send_custom_message`, ...) record changes; they fail with a typed
//!   error when the capabilities do not allow them.
//! * [`ClientState::poll_message`] returns the next message to send, if one is due. Exactly one
//!   message is in flight at a time: report the outcome with [`ClientState::on_send_succeeded`]
//!   (a WebSocket write went through), [`ClientState::on_send_failed`], or, over plain HTTP, by
//!   passing the response to [`ClientState::handle_server_message`].
//! * [`ClientState::handle_server_message`] processes a `ServerToAgent`; what the Agent must
//!   learn comes out of [`ClientState::poll_event`].
//! * WebSocket connections: [`ClientState::can_connect`], [`ClientState::on_connecting`],
//!   [`ClientState::on_connected`], [`ClientState::on_connect_failed`],
//!   [`ClientState::on_disconnected`], [`ClientState::wants_disconnect`].
//! * [`ClientState::poll_timeout`] tells when to call again if nothing else happens.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use opamp_client::state::{ClientState, StateConfig, Transport};
//! use opamp_client::proto::{InstanceUid, ServerToAgent};
//!
//! let mut state = ClientState::new(StateConfig::new(InstanceUid::new_v7(), Transport::Http));
//! let now = Instant::now();
//! let first = state.poll_message(now).expect("the first report is due at once");
//! assert_eq!(first.sequence_num, 1);
//! assert!(state.poll_message(now).is_none(), "one message in flight at a time");
//!
//! // The HTTP response completes the request; an empty answer changes nothing.
//! state.handle_server_message(ServerToAgent::default(), now);
//! assert!(state.poll_message(now).is_none(), "no report answers a message that changed nothing");
//! assert_eq!(state.poll_timeout(), Some(now + Duration::from_secs(30)), "next poll");
//! ```

mod backoff;
mod config;
mod event;
mod incoming;
mod link;
mod status;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use opamp_proto::{
    AgentCapabilities, AgentDescription, AgentDisconnect, AgentToServer, AgentToServerFlags,
    AvailableComponents, ComponentHealth, ConnectionSettingsRequest, ConnectionSettingsStatus,
    CustomCapabilities, CustomMessage, EffectiveConfig, InstanceUid, PackageStatuses,
    RemoteConfigStatus, ServerCapabilities,
};

pub use backoff::{
    BackoffPolicy, ConstantBackoff, ExponentialBackoff, FixedJitter, JitterSource, RandomJitter,
};
pub use config::{DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MIN_THROTTLE_DELAY, StateConfig, Transport};
pub use event::{CustomMessageId, Event};
pub use link::Failure;

use crate::Error;
use link::{Link, Retry};
use status::{Parts, Status};

/// At most this many events wait in the queue; older ones are dropped (with a log line) if the
/// driver does not drain them. A driver that calls `poll_event` after every input never gets
/// near it: one input produces at most a handful of events.
const MAX_QUEUED_EVENTS: usize = 256;

/// What the message in flight carried, to restore it if sending fails.
#[derive(Debug)]
struct InFlight {
    parts: Parts,
    full_components: bool,
    custom_message: Option<(CustomMessageId, CustomMessage)>,
    csr: Option<ConnectionSettingsRequest>,
}

/// The client side of OpAMP without IO. See the [module documentation](self).
#[derive(Debug)]
pub struct ClientState {
    uid: InstanceUid,
    previous_uid: Option<InstanceUid>,
    capabilities: AgentCapabilities,
    flags: AgentToServerFlags,
    transport: Transport,
    status: Status,
    /// Parts changed since they were last sent.
    dirty: Parts,
    /// Parts written to the WebSocket that no `ServerToAgent` has followed yet.
    unacked: Parts,
    unacked_full_components: bool,
    /// The next report of available components carries the full map.
    full_components: bool,
    custom_message: Option<(CustomMessageId, CustomMessage)>,
    next_custom_id: u64,
    csr: Option<ConnectionSettingsRequest>,
    in_flight: Option<InFlight>,
    last_seq: u64,
    server_capabilities: ServerCapabilities,
    link: Link,
    retry: Retry,
    configured_heartbeat: Duration,
    /// The interval offered by the server (`Some(ZERO)`: heartbeats disabled).
    offered_heartbeat: Option<Duration>,
    last_sent_at: Option<Instant>,
    /// A status report must be sent (first message after connecting).
    report_due: bool,
    /// The driver should close the WebSocket connection (throttled by `UNAVAILABLE`), then
    /// reconnect no earlier than this.
    disconnect_requested: Option<Instant>,
    /// The next connection opens with the full status (the server may have lost state).
    full_report_on_connect: bool,
    stopped: bool,
    events: VecDeque<Event>,
}

impl ClientState {
    /// A new state machine. The first message will carry the full status.
    pub fn new(config: StateConfig) -> Self {
        let mut flags = AgentToServerFlags::empty();
        flags.set(
            AgentToServerFlags::REQUEST_INSTANCE_UID,
            config.request_instance_uid,
        );
        ClientState {
            uid: config.instance_uid,
            previous_uid: None,
            capabilities: config.capabilities | AgentCapabilities::REPORTS_STATUS,
            flags,
            transport: config.transport,
            status: Status::default(),
            dirty: Parts::ALL,
            unacked: Parts::empty(),
            unacked_full_components: false,
            full_components: false,
            custom_message: None,
            next_custom_id: 1,
            csr: None,
            in_flight: None,
            last_seq: 0,
            server_capabilities: ServerCapabilities::empty(),
            link: Link::Disconnected { retry_at: None },
            retry: Retry::new(config.backoff, config.min_throttle_delay),
            configured_heartbeat: config.heartbeat_interval,
            offered_heartbeat: None,
            last_sent_at: None,
            report_due: true,
            disconnect_requested: None,
            full_report_on_connect: false,
            stopped: false,
            events: VecDeque::new(),
        }
    }

    // ---------------------------------------------------------------- accessors

    /// The instance UID used in messages.
    pub fn instance_uid(&self) -> InstanceUid {
        self.uid
    }

    /// The Agent's capabilities.
    pub fn capabilities(&self) -> AgentCapabilities {
        self.capabilities
    }

    /// The capabilities the server announced (empty until it did).
    pub fn server_capabilities(&self) -> ServerCapabilities {
        self.server_capabilities
    }

    /// The flags sent in every message.
    pub fn flags(&self) -> AgentToServerFlags {
        self.flags
    }

    /// The transport the state machine follows.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The `sequence_num` of the last message handed out (0 before the first).
    pub fn sequence_num(&self) -> u64 {
        self.last_seq
    }

    /// Whether the connection is up (WebSocket) or the last request was answered (HTTP).
    pub fn is_connected(&self) -> bool {
        self.link == Link::Connected
    }

    /// Whether a message is in flight.
    pub fn is_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether something is waiting to be sent (a change, a custom message, a CSR, or the
    /// status report that opens a connection).
    pub fn has_pending(&self) -> bool {
        self.report_due
            || !self.dirty.is_empty()
            || self.custom_message.is_some()
            || self.csr.is_some()
    }

    /// The interval between heartbeats (WebSocket) or polls (plain HTTP) in force, `None` when
    /// WebSocket heartbeats are off (no `ReportsHeartbeat`, or disabled by the server or the
    /// settings).
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        let heartbeats = self
            .capabilities
            .contains(AgentCapabilities::REPORTS_HEARTBEAT);
        let offered = self.offered_heartbeat.filter(|_| heartbeats);
        match self.transport {
            Transport::WebSocket => {
                if !heartbeats {
                    return None;
                }
                let interval = offered.unwrap_or(self.configured_heartbeat);
                (!interval.is_zero()).then_some(interval)
            }
            Transport::Http => Some(
                offered
                    .filter(|d| !d.is_zero())
                    .or_else(|| Some(self.configured_heartbeat).filter(|d| !d.is_zero()))
                    .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL),
            ),
        }
    }

    /// The current agent description.
    pub fn agent_description(&self) -> Option<&AgentDescription> {
        self.status.agent_description.as_ref()
    }

    /// The current health.
    pub fn health(&self) -> Option<&ComponentHealth> {
        self.status.health.as_ref()
    }

    /// The last effective configuration given.
    pub fn effective_config(&self) -> Option<&EffectiveConfig> {
        self.status.effective_config.as_ref()
    }

    /// The current remote config status.
    pub fn remote_config_status(&self) -> Option<&RemoteConfigStatus> {
        self.status.remote_config_status.as_ref()
    }

    /// The current package statuses.
    pub fn package_statuses(&self) -> Option<&PackageStatuses> {
        self.status.package_statuses.as_ref()
    }

    /// The current connection settings status.
    pub fn connection_settings_status(&self) -> Option<&ConnectionSettingsStatus> {
        self.status.connection_settings_status.as_ref()
    }

    /// The Agent's custom capabilities.
    pub fn custom_capabilities(&self) -> Option<&CustomCapabilities> {
        self.status.custom_capabilities.as_ref()
    }

    /// The current available components.
    pub fn available_components(&self) -> Option<&AvailableComponents> {
        self.status.available_components.as_ref()
    }

    // ---------------------------------------------------------------- setters

    fn require(&self, operation: &'static str, capability: AgentCapabilities) -> Result<(), Error> {
        if self.capabilities.contains(capability) {
            Ok(())
        } else {
            Err(Error::CapabilityNotSet {
                operation,
                capability,
            })
        }
    }

    fn update<T: PartialEq>(slot: &mut Option<T>, value: T, dirty: &mut Parts, part: Parts) {
        if slot.as_ref() != Some(&value) {
            *slot = Some(value);
            dirty.insert(part);
        }
    }

    /// Changes the capabilities (`ReportsStatus` is always kept; spec §"AgentToServer.
    /// capabilities": they may change at any time). A capability that is newly set makes the
    /// part it gates due again.
    pub fn set_capabilities(&mut self, capabilities: AgentCapabilities) {
        let capabilities = capabilities | AgentCapabilities::REPORTS_STATUS;
        if capabilities == self.capabilities {
            return;
        }
        let added = capabilities - self.capabilities;
        self.capabilities = capabilities;
        self.dirty.insert(Parts::HEADER);
        self.dirty.insert(Parts::gated_by(added));
    }

    /// Sets whether to ask the server for an instance UID (`RequestInstanceUid`). The flag is
    /// cleared when the server sends one.
    pub fn set_request_instance_uid(&mut self, request: bool) {
        let before = self.flags;
        self.flags
            .set(AgentToServerFlags::REQUEST_INSTANCE_UID, request);
        if self.flags != before {
            self.dirty.insert(Parts::HEADER);
        }
    }

    /// Replaces the instance UID (e.g. restored from storage before the first message).
    pub fn set_instance_uid(&mut self, uid: InstanceUid) {
        if uid != self.uid {
            self.previous_uid = Some(self.uid);
            self.uid = uid;
            self.dirty.insert(Parts::HEADER);
        }
    }

    /// Sets the agent description (sent when it differs from the last one).
    pub fn set_agent_description(&mut self, description: AgentDescription) {
        Self::update(
            &mut self.status.agent_description,
            description,
            &mut self.dirty,
            Parts::DESCRIPTION,
        );
    }

    /// Sets the health tree (needs `ReportsHealth`).
    pub fn set_health(&mut self, health: ComponentHealth) -> Result<(), Error> {
        self.require("set_health", AgentCapabilities::REPORTS_HEALTH)?;
        Self::update(
            &mut self.status.health,
            health,
            &mut self.dirty,
            Parts::HEALTH,
        );
        Ok(())
    }

    /// Sets the effective configuration (needs `ReportsEffectiveConfig`).
    pub fn set_effective_config(&mut self, config: EffectiveConfig) -> Result<(), Error> {
        self.require(
            "set_effective_config",
            AgentCapabilities::REPORTS_EFFECTIVE_CONFIG,
        )?;
        Self::update(
            &mut self.status.effective_config,
            config,
            &mut self.dirty,
            Parts::EFFECTIVE_CONFIG,
        );
        Ok(())
    }

    /// Sets the remote config status (needs `ReportsRemoteConfig`).
    pub fn set_remote_config_status(&mut self, status: RemoteConfigStatus) -> Result<(), Error> {
        self.require(
            "set_remote_config_status",
            AgentCapabilities::REPORTS_REMOTE_CONFIG,
        )?;
        Self::update(
            &mut self.status.remote_config_status,
            status,
            &mut self.dirty,
            Parts::REMOTE_CONFIG_STATUS,
        );
        Ok(())
    }

    /// Sets the package statuses (needs `ReportsPackageStatuses`).
    pub fn set_package_statuses(&mut self, statuses: PackageStatuses) -> Result<(), Error> {
        self.require(
            "set_package_statuses",
            AgentCapabilities::REPORTS_PACKAGE_STATUSES,
        )?;
        Self::update(
            &mut self.status.package_statuses,
            statuses,
            &mut self.dirty,
            Parts::PACKAGE_STATUSES,
        );
        Ok(())
    }

    /// Sets the connection settings status (needs `ReportsConnectionSettingsStatus`).
    pub fn set_connection_settings_status(
        &mut self,
        status: ConnectionSettingsStatus,
    ) -> Result<(), Error> {
        self.require(
            "set_connection_settings_status",
            AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS,
        )?;
        Self::update(
            &mut self.status.connection_settings_status,
            status,
            &mut self.dirty,
            Parts::CONNECTION_SETTINGS_STATUS,
        );
        Ok(())
    }

    /// Sets the Agent's custom capabilities (sent only when the list changes, spec
    /// §"CustomCapabilities").
    pub fn set_custom_capabilities(&mut self, capabilities: CustomCapabilities) {
        Self::update(
            &mut self.status.custom_capabilities,
            capabilities,
            &mut self.dirty,
            Parts::CUSTOM_CAPABILITIES,
        );
    }

    /// Sets the available components (needs `ReportsAvailableComponents`; the hash must be
    /// set). Messages carry only the hash until the server asks for the full map with the
    /// `ReportAvailableComponents` flag.
    pub fn set_available_components(
        &mut self,
        components: AvailableComponents,
    ) -> Result<(), Error> {
        self.require(
            "set_available_components",
            AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS,
        )?;
        if components.hash.is_empty() {
            return Err(Error::InvalidArgument {
                what: "available components",
                reason: "the hash must be set",
            });
        }
        let hash_changed = self
            .status
            .available_components
            .as_ref()
            .is_none_or(|current| current.hash != components.hash);
        if hash_changed {
            self.dirty.insert(Parts::AVAILABLE_COMPONENTS);
        }
        // The map may be refreshed without a hash change; only the hash is reported unasked.
        self.status.available_components = Some(components);
        Ok(())
    }

    /// Queues a custom message (spec §"Custom Messages"). Its capability must be among the
    /// Agent's custom capabilities, and only one custom message may be pending: until the
    /// previous one is delivered this fails with [`Error::CustomMessagePending`].
    pub fn send_custom_message(
        &mut self,
        message: CustomMessage,
    ) -> Result<CustomMessageId, Error> {
        let supported = self
            .status
            .custom_capabilities
            .as_ref()
            .is_some_and(|c| c.capabilities.contains(&message.capability));
        if !supported {
            return Err(Error::CustomCapabilityNotSupported(message.capability));
        }
        let in_flight = self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.custom_message.is_some());
        if self.custom_message.is_some() || in_flight {
            return Err(Error::CustomMessagePending);
        }
        let id = CustomMessageId(self.next_custom_id);
        self.next_custom_id += 1;
        self.custom_message = Some((id, message));
        Ok(id)
    }

    /// Whether a custom message is pending or in flight.
    pub fn custom_message_pending(&self) -> bool {
        self.custom_message.is_some()
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.custom_message.is_some())
    }

    /// Queues a connection settings request (the CSR flow, spec §"Agent-initiated CSR Flow";
    /// needs `AcceptsOpAMPConnectionSettings`, since the answer is an OpAMP settings offer). A
    /// request not yet sent is replaced.
    pub fn request_connection_settings(
        &mut self,
        request: ConnectionSettingsRequest,
    ) -> Result<(), Error> {
        self.require(
            "request_connection_settings",
            AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS,
        )?;
        let actionable = request
            .opamp
            .as_ref()
            .and_then(|o| o.certificate_request.as_ref())
            .is_some_and(|c| !c.csr.is_empty());
        if !actionable {
            return Err(Error::InvalidArgument {
                what: "connection settings request",
                reason: "opamp.certificate_request.csr must be set",
            });
        }
        self.csr = Some(request);
        Ok(())
    }

    /// Marks every part of the status as due, as if the server had set `ReportFullState`.
    pub fn report_full_state(&mut self) {
        self.dirty = Parts::ALL;
        if self.status.available_components.is_some() {
            self.full_components = true;
        }
    }

    /// Makes the next connection open with the full status (e.g. when it goes to a new
    /// endpoint, which may be a server that never heard of this Agent).
    pub fn report_full_state_on_connect(&mut self) {
        self.full_report_on_connect = true;
    }

    /// Sets the heartbeat interval as if the server had offered it (e.g. restored with
    /// persisted connection settings). `Some(ZERO)` disables WebSocket heartbeats; `None`
    /// returns to the configured interval.
    pub fn set_offered_heartbeat_interval(&mut self, interval: Option<Duration>) {
        self.offered_heartbeat = interval;
    }

    // ---------------------------------------------------------------- connection (WebSocket)

    /// Switches the transport (when offered connection settings move the Agent between a
    /// `ws(s)` and an `http(s)` endpoint). A message in flight is restored into the pending
    /// one; a retry delay in force is kept.
    pub fn set_transport(&mut self, transport: Transport) {
        if transport == self.transport {
            return;
        }
        if let Some(in_flight) = self.in_flight.take() {
            self.restore(in_flight);
        }
        self.dirty.insert(std::mem::take(&mut self.unacked));
        self.transport = transport;
        if !matches!(self.link, Link::Disconnected { .. }) {
            self.link = Link::Disconnected { retry_at: None };
        }
    }

    /// Whether a connection attempt may start now (WebSocket), or a request may be sent
    /// after a failure (plain HTTP).
    pub fn can_connect(&self, now: Instant) -> bool {
        !self.stopped
            && match self.link {
                Link::Disconnected { retry_at } => retry_at.is_none_or(|at| at <= now),
                Link::Connecting | Link::Connected => false,
            }
    }

    /// Whether a retry delay is running at `now` (after a failed attempt or throttling): no
    /// connection attempt or request should start before [`poll_timeout`](Self::poll_timeout).
    pub fn is_backing_off(&self, now: Instant) -> bool {
        !self.stopped && matches!(self.link, Link::Disconnected { retry_at: Some(at) } if at > now)
    }

    /// A connection attempt starts.
    pub fn on_connecting(&mut self, _now: Instant) {
        self.link = Link::Connecting;
    }

    /// A connection is established (WebSocket), or requests start going to a new endpoint
    /// (plain HTTP): a status report is due at once (spec §"Status Reporting": the first
    /// message after connecting). Parts unchanged since the last message of the previous
    /// connection are left out, as the spec allows for WebSocket reconnects, unless
    /// [`report_full_state_on_connect`](Self::report_full_state_on_connect) was called.
    pub fn on_connected(&mut self, _now: Instant) {
        if self.transport == Transport::WebSocket {
            self.link = Link::Connected;
        }
        self.report_due = true;
        self.disconnect_requested = None;
        if std::mem::take(&mut self.full_report_on_connect) {
            self.report_full_state();
        }
    }

    /// A connection attempt failed; the next one waits as `failure` requires.
    pub fn on_connect_failed(&mut self, now: Instant, failure: Failure) {
        let delay = self.retry.delay_after(failure);
        self.link = Link::Disconnected {
            retry_at: Some(now + delay),
        };
    }

    /// The connection closed. A message still in flight is restored into the pending one.
    /// After a working connection the next attempt may start at once, otherwise it backs off
    /// (spec §"Restoring WebSocket Connection"); after `UNAVAILABLE` it waits as asked.
    pub fn on_disconnected(&mut self, now: Instant) {
        if let Some(in_flight) = self.in_flight.take() {
            self.restore(in_flight);
        }
        self.dirty.insert(std::mem::take(&mut self.unacked));
        if std::mem::take(&mut self.unacked_full_components) {
            self.full_components = true;
        }
        let retry_at = match self.disconnect_requested.take() {
            Some(at) => at,
            None => now + self.retry.delay_after(Failure::Transient),
        };
        self.link = Link::Disconnected {
            retry_at: Some(retry_at),
        };
    }

    /// The server sent a message that does not decode, and the driver drops the connection
    /// (then calls [`on_disconnected`](Self::on_disconnected)). The connection does not
    /// count as working: the next attempt backs off instead of starting at once, so a server
    /// that keeps sending such messages is not reconnected to in a tight loop.
    pub fn on_malformed_message(&mut self) {
        self.retry.distrust();
    }

    /// Whether the driver should close the WebSocket connection (after `UNAVAILABLE`): send
    /// [`poll_disconnect_message`](Self::poll_disconnect_message), close, then call
    /// [`on_disconnected`](Self::on_disconnected).
    pub fn wants_disconnect(&self) -> bool {
        self.disconnect_requested.is_some()
    }

    // ---------------------------------------------------------------- outgoing

    fn heartbeat_due_at(&self) -> Option<Instant> {
        let interval = self.heartbeat_interval()?;
        Some(self.last_sent_at? + interval)
    }

    /// The next message to send, if one is due now: a change, a custom message, a CSR, the
    /// report that opens a connection, a heartbeat (WebSocket) or a poll (plain HTTP), or a
    /// retry after a failed request (plain HTTP). Every call that returns a message uses the
    /// next `sequence_num`, and the message is in flight until its outcome is reported.
    pub fn poll_message(&mut self, now: Instant) -> Option<AgentToServer> {
        if self.stopped || self.in_flight.is_some() {
            return None;
        }
        let due = match (self.transport, self.link) {
            (Transport::WebSocket, Link::Connected) => {
                self.has_pending() || self.heartbeat_due_at().is_some_and(|at| at <= now)
            }
            (Transport::WebSocket, _) => false,
            (Transport::Http, Link::Connected) => {
                self.has_pending() || self.heartbeat_due_at().is_none_or(|at| at <= now)
            }
            (Transport::Http, Link::Disconnected { retry_at }) => {
                retry_at.is_none_or(|at| at <= now)
            }
            (Transport::Http, Link::Connecting) => false,
        };
        if !due {
            return None;
        }
        Some(self.take_message(now, false))
    }

    /// The last message of a connection, with `agent_disconnect` set and every pending change
    /// (spec §"Closing Connection": WebSocket MUST, plain HTTP SHOULD). It is in flight like
    /// any other message. `None` while another message is in flight or after `stop`.
    pub fn poll_disconnect_message(&mut self, now: Instant) -> Option<AgentToServer> {
        if self.stopped || self.in_flight.is_some() {
            return None;
        }
        Some(self.take_message(now, true))
    }

    fn take_message(&mut self, now: Instant, disconnect: bool) -> AgentToServer {
        self.last_seq += 1;
        let mut msg = AgentToServer {
            instance_uid: self.uid.to_bytes(),
            sequence_num: self.last_seq,
            capabilities: self.capabilities.bits(),
            flags: self.flags.bits(),
            ..Default::default()
        };
        let full_components = self.full_components;
        let written = self
            .status
            .fill(self.dirty, self.capabilities, full_components, &mut msg);
        // Parts that could not be written (not set, or not allowed) are not pending either:
        // they become due again when set, or when their capability is added.
        let mut parts = written;
        if self.dirty.contains(Parts::HEADER) {
            parts.insert(Parts::HEADER);
        }
        self.dirty = Parts::empty();
        let sent_full = full_components && written.contains(Parts::AVAILABLE_COMPONENTS);
        if sent_full {
            self.full_components = false;
        }
        let custom_message = self.custom_message.take();
        if let Some((_, m)) = &custom_message {
            msg.custom_message = Some(m.clone());
        }
        let csr = self.csr.take();
        if let Some(request) = &csr {
            msg.connection_settings_request = Some(request.clone());
        }
        if disconnect {
            msg.agent_disconnect = Some(AgentDisconnect {});
        }
        self.in_flight = Some(InFlight {
            parts,
            full_components: sent_full,
            custom_message,
            csr,
        });
        self.report_due = false;
        self.last_sent_at = Some(now);
        msg
    }

    /// Restores what a failed message carried into the pending one (newer values win; a
    /// newer CSR replaces the failed one).
    fn restore(&mut self, in_flight: InFlight) {
        self.dirty.insert(in_flight.parts);
        if in_flight.full_components {
            self.full_components = true;
        }
        if let Some(custom) = in_flight.custom_message {
            // send_custom_message refuses a new one while this one is in flight.
            self.custom_message = Some(custom);
        }
        if self.csr.is_none() {
            self.csr = in_flight.csr;
        }
    }

    fn complete(&mut self, in_flight: InFlight) {
        if let Some((id, _)) = in_flight.custom_message {
            self.push_event(Event::CustomMessageSent(id));
        }
    }

    fn drop_in_flight(&mut self, in_flight: InFlight) {
        if let Some((id, _)) = in_flight.custom_message {
            self.push_event(Event::CustomMessageDropped(id));
        }
    }

    /// The message in flight was written to the WebSocket. (Over plain HTTP, pass the
    /// response to [`handle_server_message`](Self::handle_server_message) instead.)
    ///
    /// Until the server answers (any `ServerToAgent` counts), the status parts the message
    /// carried stay "unacknowledged": if the connection is lost first, they are sent again on
    /// the next connection (spec §"Retrying Messages"), so a message written into a half-open
    /// connection does not lose a status change.
    pub fn on_send_succeeded(&mut self, _now: Instant) {
        if let Some(in_flight) = self.in_flight.take() {
            self.unacked.insert(in_flight.parts);
            self.unacked_full_components |= in_flight.full_components;
            self.complete(in_flight);
        }
    }

    /// Sending the message in flight failed. Its content goes back into the pending message
    /// (so no change is lost), unless `failure` is [`Failure::Rejected`].
    ///
    /// Over plain HTTP the request counts as a connection attempt: the next one waits as
    /// `failure` requires. Over WebSocket the driver should then close the connection and
    /// call [`on_disconnected`](Self::on_disconnected) (except after `Rejected`, for a message
    /// over the local size limit, when the connection is still fine).
    pub fn on_send_failed(&mut self, now: Instant, failure: Failure) {
        if let Some(in_flight) = self.in_flight.take() {
            if failure == Failure::Rejected {
                tracing::warn!("dropping a message the server refused as bad or too large");
                self.drop_in_flight(in_flight);
            } else {
                self.restore(in_flight);
            }
        }
        if self.transport == Transport::Http {
            if failure == Failure::Rejected {
                // The server answered: it is reachable.
                self.link = Link::Connected;
            } else {
                let delay = self.retry.delay_after(failure);
                self.link = Link::Disconnected {
                    retry_at: Some(now + delay),
                };
            }
        }
    }

    /// When to call [`poll_message`](Self::poll_message) (or, for WebSocket while
    /// disconnected, [`can_connect`](Self::can_connect)) again if nothing else happens: the
    /// next heartbeat or poll, or the end of a retry delay. `None`: nothing is scheduled (a
    /// message is in flight, an action is possible right now, or the client is stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        match self.link {
            Link::Disconnected { retry_at } => retry_at,
            Link::Connecting => None,
            Link::Connected => {
                if self.in_flight.is_some() {
                    return None;
                }
                self.heartbeat_due_at()
            }
        }
    }

    /// The next event for the driver or the Agent.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            let dropped = self.events.pop_front();
            tracing::warn!(?dropped, "event queue full: dropping the oldest event");
        }
        self.events.push_back(event);
    }

    /// Stops the state machine: nothing more is sent (take the last message with
    /// [`poll_disconnect_message`](Self::poll_disconnect_message) before). A custom message
    /// still pending is reported as dropped.
    pub fn stop(&mut self) {
        self.stopped = true;
        if let Some((id, _)) = self.custom_message.take() {
            self.push_event(Event::CustomMessageDropped(id));
        }
        if let Some(in_flight) = self.in_flight.take()
            && let Some((id, _)) = in_flight.custom_message
        {
            self.push_event(Event::CustomMessageDropped(id));
        }
    }
}

#[cfg(test)]
mod tests;
