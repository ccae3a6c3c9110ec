//! The protocol's server-side rules for one agent, as a sans-IO state machine.
//!
//! [`AgentState`] does no IO and reads no clock: the service feeds it every decoded
//! `AgentToServer` with the time it arrived ([`AgentState::handle_message`]), asks it for the
//! reply ([`AgentState::respond`]) or for a message to push on its own
//! ([`AgentState::push`]), and hands it what the embedder wants the agent to have
//! ([`AgentState::offer_remote_config`], [`AgentState::queue`], …). It applies:
//!
//! | rule | spec section |
//! | --- | --- |
//! | server capabilities in the first `ServerToAgent`, `instance_uid` echoed | §"ServerToAgent.capabilities", §"ServerToAgent.instance_uid" |
//! | `sequence_num` gap ⇒ `ReportFullState` | §"Agent Status Compression" |
//! | compressed reports merged into [`AgentStatus`] | §"Agent Status Compression" |
//! | hash-only available components ⇒ `ReportAvailableComponents` | §"AvailableComponents Message" |
//! | remote config / packages / connection settings offered again while the hash differs | §"Configuration", §"Packages", §"Connection Settings Management" |
//! | offers and commands only to agents whose capabilities accept them | §"Interoperability of Partial Implementations" |
//! | `RequestInstanceUid` ⇒ new UUIDv7 in `agent_identification` | §"AgentToServer.flags", §"ServerToAgent.agent_identification" |
//! | heartbeat interval offered, silence ⇒ gone | §"OpAMPConnectionSettings.heartbeat_interval_seconds" |
//! | one merged pending message, error responses and commands alone | §"Retrying Messages", §"ServerToAgent.command" |
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use opamp_proto::{AgentCapabilities, AgentToServer, InstanceUid, ServerToAgentFlags};
//! use opamp_server::state::{AgentState, StateConfig};
//!
//! let mut agent = AgentState::new(Arc::new(StateConfig::default()), Instant::now());
//! let uid = InstanceUid::new_v7();
//! let first = AgentToServer {
//!     instance_uid: uid.to_bytes(),
//!     sequence_num: 0,
//!     capabilities: AgentCapabilities::REPORTS_STATUS.bits(),
//!     ..Default::default()
//! };
//! agent.handle_message(&first, Instant::now())?;
//! let reply = agent.respond(None);
//! assert_eq!(reply.instance_uid, uid.to_bytes());
//! assert_ne!(reply.capabilities, 0); // first reply carries the server capabilities
//!
//! // A message is lost: sequence_num jumps from 0 to 5.
//! let later = AgentToServer { sequence_num: 5, ..first };
//! agent.handle_message(&later, Instant::now())?;
//! assert!(agent.respond(None).typed_flags().contains(ServerToAgentFlags::REPORT_FULL_STATE));
//! # Ok::<(), opamp_server::Error>(())
//! ```

mod identity;
mod liveness;
mod offers;
mod outbound;
mod registry;
mod status;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use opamp_proto::{
    AgentCapabilities, AgentIdentification, AgentRemoteConfig, AgentToServer, AgentToServerFlags,
    ConnectionSettingsOffers, CustomCapabilities, InstanceUid, PackagesAvailable,
    ServerCapabilities, ServerErrorResponse, ServerToAgent, ServerToAgentFlags,
};

use crate::Error;

pub use identity::UidAssignmentReason;
pub use liveness::Liveness;
pub use offers::config_hash;
pub use registry::{Claim, DuplicateUidPolicy, UidRegistry};
pub use status::{AgentStatus, StatusChanges};

pub(crate) use offers::{with_config_hash, with_packages_hash};
pub(crate) use outbound::{has_content, merge_into};

use identity::{Identity, Observed};
use offers::OfferSlot;
use outbound::{Pending, QueueRejection, gate};

/// Heartbeat interval the spec recommends, assumed when the server offers none.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Wait for the first message of a connection assumed when none is configured.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Server-wide inputs of every [`AgentState`]; shared through an `Arc`.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Capabilities sent in the first `ServerToAgent` of every connection. `AcceptsStatus` is
    /// always added.
    pub capabilities: ServerCapabilities,
    /// Custom capabilities of the server, sent in the first `ServerToAgent` when not empty.
    pub custom_capabilities: Vec<String>,
    /// Heartbeat interval offered to agents with `ReportsHeartbeat` through
    /// `OpAMPConnectionSettings.heartbeat_interval_seconds`. `None`: nothing is offered and the
    /// agent's own interval (30 s by default) is assumed; `Some(ZERO)`: heartbeats are
    /// disabled. Whole seconds are sent (at least 1).
    pub heartbeat_interval: Option<Duration>,
    /// How many heartbeat intervals of silence make an agent gone.
    pub missed_heartbeats: u32,
    /// Longest wait for the first `AgentToServer` of a WebSocket connection (the spec has the
    /// agent send it at once after connecting): past it the agent counts as gone. `None`: no
    /// limit. Not used for polling states, which start with a message.
    pub first_message_timeout: Option<Duration>,
    /// True for plain-HTTP agents, which poll at the heartbeat interval even without
    /// `ReportsHeartbeat` (spec §"Plain HTTP Transport").
    pub polling: bool,
    /// Ask for the full component map when an agent reports only an unknown hash.
    pub request_available_components: bool,
    /// Generator of new instance UIDs (UUIDv7 by default).
    pub new_uid: fn() -> InstanceUid,
    /// The heartbeat-only settings offer (no base offer), built once and shared by every agent
    /// of this configuration; keyed by the interval in seconds in case the field changed.
    heartbeat_offer: OnceLock<(u64, Arc<ConnectionSettingsOffers>)>,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            capabilities: default_server_capabilities(),
            custom_capabilities: Vec::new(),
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            missed_heartbeats: 3,
            first_message_timeout: Some(DEFAULT_FIRST_MESSAGE_TIMEOUT),
            polling: false,
            request_available_components: true,
            new_uid: InstanceUid::new_v7,
            heartbeat_offer: OnceLock::new(),
        }
    }
}

impl StateConfig {
    /// Sets [`StateConfig::capabilities`].
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: ServerCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets [`StateConfig::custom_capabilities`].
    #[must_use]
    pub fn with_custom_capabilities(mut self, capabilities: Vec<String>) -> Self {
        self.custom_capabilities = capabilities;
        self
    }

    /// Sets [`StateConfig::heartbeat_interval`].
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`StateConfig::missed_heartbeats`].
    #[must_use]
    pub fn with_missed_heartbeats(mut self, missed: u32) -> Self {
        self.missed_heartbeats = missed;
        self
    }

    /// Sets [`StateConfig::first_message_timeout`].
    #[must_use]
    pub fn with_first_message_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.first_message_timeout = timeout;
        self
    }

    /// Sets [`StateConfig::polling`].
    #[must_use]
    pub fn with_polling(mut self, polling: bool) -> Self {
        self.polling = polling;
        self
    }

    /// Sets [`StateConfig::request_available_components`].
    #[must_use]
    pub fn with_request_available_components(mut self, request: bool) -> Self {
        self.request_available_components = request;
        self
    }

    /// Sets [`StateConfig::new_uid`].
    #[must_use]
    pub fn with_new_uid(mut self, new_uid: fn() -> InstanceUid) -> Self {
        self.new_uid = new_uid;
        self
    }

    /// The offer of `seconds` as heartbeat interval with no other settings, shared.
    fn heartbeat_only_offer(&self, seconds: u64) -> Arc<ConnectionSettingsOffers> {
        let (cached_seconds, offer) = self
            .heartbeat_offer
            .get_or_init(|| (seconds, Arc::new(offers::with_heartbeat(None, seconds))));
        if *cached_seconds == seconds {
            Arc::clone(offer)
        } else {
            Arc::new(offers::with_heartbeat(None, seconds))
        }
    }

    /// The heartbeat interval to put in offers, in whole seconds (`Some(0)` disables).
    fn heartbeat_offer_seconds(&self) -> Option<u64> {
        self.heartbeat_interval
            .map(|i| if i.is_zero() { 0 } else { i.as_secs().max(1) })
    }
}

/// Capabilities of a server that does everything this crate supports.
pub fn default_server_capabilities() -> ServerCapabilities {
    ServerCapabilities::ACCEPTS_STATUS
        | ServerCapabilities::OFFERS_REMOTE_CONFIG
        | ServerCapabilities::ACCEPTS_EFFECTIVE_CONFIG
        | ServerCapabilities::OFFERS_PACKAGES
        | ServerCapabilities::ACCEPTS_PACKAGES_STATUS
        | ServerCapabilities::OFFERS_CONNECTION_SETTINGS
}

/// What one `AgentToServer` meant, from [`AgentState::handle_message`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageOutcome {
    /// The instance UID in the message.
    pub instance_uid: InstanceUid,
    /// The first message of this state.
    pub first: bool,
    /// Which parts of the status changed.
    pub changes: StatusChanges,
    /// `sequence_num` did not follow the previous one (or the state was lost), so the reply
    /// asks for the full state.
    pub sequence_gap: bool,
    /// The agent switched to the UID the server assigned: `(old, new)`.
    pub adopted: Option<(InstanceUid, InstanceUid)>,
    /// A UID newly assigned while handling this message (requested by the agent).
    pub assigned: Option<InstanceUid>,
    /// The agent announced it disconnects (`agent_disconnect`).
    pub disconnect: bool,
}

/// The protocol state of one agent on one connection (or one plain-HTTP session).
#[derive(Debug)]
pub struct AgentState {
    config: Arc<StateConfig>,
    identity: Identity,
    status: Arc<AgentStatus>,
    last_seq: Option<u64>,
    first_response_sent: bool,
    custom_capabilities_sent: bool,
    remote_config: OfferSlot<AgentRemoteConfig>,
    packages: OfferSlot<PackagesAvailable>,
    settings_base: Option<Arc<ConnectionSettingsOffers>>,
    settings: OfferSlot<ConnectionSettingsOffers>,
    pending: Pending,
    reply_flags: ServerToAgentFlags,
    liveness: Liveness,
    last_changes: StatusChanges,
    messages: u64,
    disconnected: bool,
}

impl AgentState {
    /// A state for a connection that opened at `now`.
    pub fn new(config: Arc<StateConfig>, now: Instant) -> Self {
        let interval = if config.polling {
            Some(polling_interval(&config))
        } else {
            None
        };
        let liveness = Liveness::new(now, interval, config.missed_heartbeats);
        Self {
            config,
            identity: Identity::default(),
            status: Arc::new(AgentStatus::default()),
            last_seq: None,
            first_response_sent: false,
            custom_capabilities_sent: false,
            remote_config: OfferSlot::default(),
            packages: OfferSlot::default(),
            settings_base: None,
            settings: OfferSlot::default(),
            pending: Pending::default(),
            reply_flags: ServerToAgentFlags::empty(),
            liveness,
            last_changes: StatusChanges::empty(),
            messages: 0,
            disconnected: false,
        }
    }

    /// The configuration this state was created with.
    pub fn config(&self) -> &Arc<StateConfig> {
        &self.config
    }

    /// The instance UID the agent uses, once it sent a message.
    pub fn instance_uid(&self) -> Option<InstanceUid> {
        self.identity.current()
    }

    /// A UID the server assigned that the agent has not adopted yet.
    pub fn assigned_instance_uid(&self) -> Option<(InstanceUid, UidAssignmentReason)> {
        self.identity.assignment().map(|a| (a.new_uid, a.reason))
    }

    /// The merged status (cheap to clone; a snapshot that later messages do not change).
    pub fn status(&self) -> &Arc<AgentStatus> {
        &self.status
    }

    /// What the last message changed.
    pub fn last_changes(&self) -> StatusChanges {
        self.last_changes
    }

    /// The last `sequence_num` received.
    pub fn last_sequence_num(&self) -> Option<u64> {
        self.last_seq
    }

    /// Number of messages handled.
    pub fn messages_handled(&self) -> u64 {
        self.messages
    }

    /// True once the agent sent `agent_disconnect`.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// True once the first non-error `ServerToAgent` (with the server capabilities) went out.
    pub fn first_response_sent(&self) -> bool {
        self.first_response_sent
    }

    /// Liveness of the agent.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// When the agent becomes gone if it stays silent (`None`: it is not expected to send
    /// regularly). A WebSocket connection that has not sent its first message yet has the end
    /// of [`StateConfig::first_message_timeout`] instead.
    pub fn liveness_deadline(&self) -> Option<Instant> {
        // A plain-HTTP session starts with its first message: the limit is for connections.
        if self.messages == 0 && !self.config.polling {
            return self
                .config
                .first_message_timeout
                .and_then(|t| self.liveness.last_seen().checked_add(t));
        }
        self.liveness.deadline()
    }

    /// True if the agent stayed silent past its deadline at `now`.
    pub fn is_gone(&self, now: Instant) -> bool {
        self.liveness_deadline()
            .is_some_and(|deadline| now >= deadline)
    }

    /// True until the first message of the connection arrived.
    pub fn awaiting_first_message(&self) -> bool {
        self.messages == 0
    }

    /// True if something waits for delivery (`push` would return a message).
    pub fn has_pending(&self) -> bool {
        if self.identity.current().is_none() {
            return false;
        }
        !self.pending.is_empty() || !self.reply_flags.is_empty() || self.offers_due()
    }

    /// Takes in one message from the agent, received at `now`.
    ///
    /// Peer errors (a UID that is not 16 bytes, a UID switch the server did not assign) leave
    /// the state unchanged; answer them with [`bad_request`].
    pub fn handle_message(
        &mut self,
        msg: &AgentToServer,
        now: Instant,
    ) -> Result<MessageOutcome, Error> {
        let uid = InstanceUid::try_from(msg.instance_uid.as_ref()).map_err(|_| {
            Error::InvalidInstanceUid {
                len: msg.instance_uid.len(),
            }
        })?;
        let observed = self
            .identity
            .observe(uid)
            .map_err(|expected| Error::InstanceUidMismatch { expected, got: uid })?;
        self.messages += 1;
        self.liveness.record(now);

        let sequence_gap = match self.last_seq {
            // Spec §"Agent Status Compression": anything but exactly +1, a repeat included, means
            // the server may lack part of the status.
            Some(last) => msg.sequence_num != last.wrapping_add(1),
            // A state without history meets an agent that already sent messages (e.g. the
            // server restarted): unless this report describes the agent, ask for everything.
            None => msg.sequence_num != 0 && msg.agent_description.is_none(),
        };
        self.last_seq = Some(msg.sequence_num);
        if sequence_gap {
            self.reply_flags |= ServerToAgentFlags::REPORT_FULL_STATE;
        }

        let changes = if self.status.would_change(msg) {
            Arc::make_mut(&mut self.status).merge_from(msg)
        } else {
            StatusChanges::empty()
        };
        self.last_changes = changes;
        if changes.contains(StatusChanges::CAPABILITIES) || matches!(observed, Observed::First) {
            self.capabilities_changed();
        }
        if changes.contains(StatusChanges::AVAILABLE_COMPONENTS)
            && self.config.request_available_components
            && self
                .status
                .has_capability(AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS)
            && self.status.available_components_incomplete()
        {
            self.reply_flags |= ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS;
        }

        // Hashes the agent reports explicitly in this message decide whether offers go again.
        if let Some(s) = &msg.remote_config_status {
            self.remote_config
                .observe_report(&s.last_remote_config_hash);
        }
        if let Some(s) = &msg.package_statuses {
            self.packages
                .observe_report(&s.server_provided_all_packages_hash);
        }
        if let Some(s) = &msg.connection_settings_status {
            self.settings
                .observe_report(&s.last_connection_settings_hash);
        }

        let mut assigned = None;
        if msg
            .typed_flags()
            .contains(AgentToServerFlags::REQUEST_INSTANCE_UID)
            && !matches!(observed, Observed::Adopted { .. })
        {
            let (assignment, fresh) = self
                .identity
                .assign(self.config.new_uid, UidAssignmentReason::Requested);
            if fresh {
                assigned = Some(assignment.new_uid);
            }
        }

        if msg.agent_disconnect.is_some() {
            self.disconnected = true;
        }

        Ok(MessageOutcome {
            instance_uid: uid,
            first: matches!(observed, Observed::First),
            changes,
            sequence_gap,
            adopted: match observed {
                Observed::Adopted { old, new } => Some((old, new)),
                _ => None,
            },
            assigned,
            disconnect: msg.agent_disconnect.is_some(),
        })
    }

    /// Assigns a new instance UID to the agent (kept until it adopts it; an assignment
    /// already pending is kept). Returns the UID in force.
    pub fn assign_instance_uid(&mut self, reason: UidAssignmentReason) -> InstanceUid {
        let new_uid = self.identity.assign(self.config.new_uid, reason).0.new_uid;
        let _ = self.pending.push(ServerToAgent {
            agent_identification: Some(AgentIdentification {
                new_instance_uid: new_uid.to_bytes(),
            }),
            ..Default::default()
        });
        new_uid
    }

    /// The reply to the message just handled, with `user` (the embedder's answer) merged in.
    ///
    /// Always returns a message: at least an acknowledgement carrying `instance_uid`. An error
    /// response (from `user` or queued) goes out alone; whatever else waits stays pending.
    pub fn respond(&mut self, user: Option<ServerToAgent>) -> ServerToAgent {
        let uid = self.uid_bytes();
        if user.is_none() && self.is_quiet() {
            // The common case (a heartbeat with nothing to say back): a bare acknowledgement,
            // without assembling and filtering a message.
            return ServerToAgent {
                instance_uid: uid,
                ..Default::default()
            };
        }
        let mut user = user;
        if let Some(error) = user.as_mut().and_then(|u| u.error_response.take()) {
            return error_only(uid, error);
        }
        if let Some(error) = self.pending.take_error() {
            if let Some(user) = user {
                // Keep the embedder's answer for the next message.
                let _ = self.queue(user);
            }
            return error_only(uid, error);
        }
        let mut msg = self.pending.take_body().unwrap_or_default();
        if let Some(user) = user {
            let user = self.absorb(user);
            if let Some(command) = user.command {
                let mut without = user;
                self.pending_command(command);
                without.command = None;
                merge_into(&mut msg, without);
            } else {
                merge_into(&mut msg, user);
            }
        }
        msg.instance_uid = uid;
        self.complete(&mut msg);
        self.add_identification(&mut msg);
        if self.pending.has_command() && !has_body(&msg) {
            msg.command = self.pending.take_command();
            gate(&mut msg, &self.status);
        }
        msg
    }

    /// A message to send to the agent on the server's own initiative (WebSocket), if anything
    /// waits. `None` before the agent's first message: the first message of a connection is
    /// the agent's (spec §"Status Reporting").
    pub fn push(&mut self) -> Option<ServerToAgent> {
        if !self.has_pending() {
            return None;
        }
        let uid = self.uid_bytes();
        if let Some(error) = self.pending.take_error() {
            return Some(error_only(uid, error));
        }
        let mut msg = self.pending.take_body().unwrap_or_default();
        msg.instance_uid = uid;
        self.complete(&mut msg);
        if has_content(&msg) {
            // A pending UID assignment rides along, but never makes a message by itself
            // (it is repeated in every reply until the agent switches).
            self.add_identification(&mut msg);
            return Some(msg);
        }
        if let Some(command) = self.pending.take_command() {
            msg.command = Some(command);
            gate(&mut msg, &self.status);
            if msg.command.is_some() {
                return Some(msg);
            }
        }
        None
    }

    /// Queues `msg` for delivery (merged with whatever already waits). Offers in it become the
    /// agent's desired offers (see [`AgentState::offer_remote_config`]).
    pub fn queue(&mut self, msg: ServerToAgent) -> Result<(), Error> {
        if let Some(custom) = &msg.custom_message {
            if self.identity.current().is_some()
                && !self.status.has_custom_capability(&custom.capability)
            {
                return Err(Error::NotAccepted("this custom capability"));
            }
            if self.pending.has_custom_message() {
                return Err(Error::CustomMessagePending);
            }
        }
        if msg.command.is_some()
            && self.identity.current().is_some()
            && !self
                .status
                .has_capability(AgentCapabilities::ACCEPTS_RESTART_COMMAND)
        {
            return Err(Error::NotAccepted("the restart command"));
        }
        let msg = self.absorb(msg);
        self.pending.push(msg).map_err(|e| match e {
            QueueRejection::CustomMessagePending => Error::CustomMessagePending,
        })
    }

    /// Makes `config` the remote configuration the agent should run. It is sent (to agents
    /// with `AcceptsRemoteConfig`) and sent again whenever the agent reports another
    /// `last_remote_config_hash`. An empty `config_hash` is filled with [`config_hash`].
    pub fn offer_remote_config(&mut self, config: AgentRemoteConfig) {
        self.set_remote_config(Arc::new(offers::with_config_hash(config)));
    }

    /// Like [`AgentState::offer_remote_config`] with a shared offer (hash already set).
    pub fn set_remote_config(&mut self, config: Arc<AgentRemoteConfig>) {
        self.remote_config.set(config);
    }

    /// The remote configuration offered to the agent.
    pub fn remote_config(&self) -> Option<&Arc<AgentRemoteConfig>> {
        self.remote_config.desired()
    }

    /// Marks the current remote config offer as sent (it went out in a prepared broadcast).
    pub(crate) fn mark_remote_config_sent(&mut self) {
        self.remote_config.mark_sent();
    }

    /// True if the remote config offer would go out now.
    pub(crate) fn remote_config_due(&self) -> bool {
        self.status
            .has_capability(AgentCapabilities::ACCEPTS_REMOTE_CONFIG)
            && self
                .remote_config
                .due(self.status.last_remote_config_hash())
    }

    /// Like [`AgentState::offer_packages`] with a shared offer (hash already set).
    pub fn set_packages(&mut self, packages: Arc<PackagesAvailable>) {
        self.packages.set(packages);
    }

    /// True if the packages offer would go out now.
    pub(crate) fn packages_due(&self) -> bool {
        self.status
            .has_capability(AgentCapabilities::ACCEPTS_PACKAGES)
            && self.packages.due(self.status.last_all_packages_hash())
    }

    /// Marks the current packages offer as sent (it went out in a prepared broadcast).
    pub(crate) fn mark_packages_sent(&mut self) {
        self.packages.mark_sent();
    }

    /// Makes `packages` the packages the agent should have; sent to agents with
    /// `AcceptsPackages` while their `server_provided_all_packages_hash` differs. An empty
    /// `all_packages_hash` is filled with a SHA-256 of the offer.
    pub fn offer_packages(&mut self, packages: PackagesAvailable) {
        self.packages
            .set(Arc::new(offers::with_packages_hash(packages)));
    }

    /// The packages offered to the agent.
    pub fn packages(&self) -> Option<&Arc<PackagesAvailable>> {
        self.packages.desired()
    }

    /// Makes `offers` the connection settings the agent should use; sent (the parts its
    /// capabilities accept) while its `last_connection_settings_hash` differs. An empty `hash`
    /// is filled with a SHA-256 of the offer. The server's heartbeat interval is added to the
    /// `opamp` settings unless they set one.
    pub fn offer_connection_settings(&mut self, offers: ConnectionSettingsOffers) {
        self.settings_base = Some(Arc::new(offers::with_settings_hash(offers)));
        self.refresh_settings_offer();
    }

    /// The connection settings offered to the agent (with the heartbeat interval, if any).
    pub fn connection_settings(&self) -> Option<&Arc<ConnectionSettingsOffers>> {
        self.settings.desired()
    }

    /// Forgets every offer.
    pub fn clear_offers(&mut self) {
        self.remote_config.clear();
        self.packages.clear();
        self.settings_base = None;
        self.refresh_settings_offer();
    }

    // ---- internals ----

    /// True if a reply would carry nothing but the instance UID.
    pub(crate) fn is_quiet(&self) -> bool {
        self.first_response_sent
            && self.custom_capabilities_sent
            && self.identity.assignment().is_none()
            && self.pending.is_empty()
            && self.reply_flags.is_empty()
            && !self.offers_due()
    }

    fn uid_bytes(&self) -> Bytes {
        self.identity
            .current()
            .map(|u| u.to_bytes())
            .unwrap_or_default()
    }

    fn pending_command(&mut self, command: opamp_proto::ServerToAgentCommand) {
        let _ = self.pending.push(ServerToAgent {
            command: Some(command),
            ..Default::default()
        });
    }

    /// Moves the offers out of `msg` into the offer slots.
    fn absorb(&mut self, mut msg: ServerToAgent) -> ServerToAgent {
        if let Some(config) = msg.remote_config.take() {
            self.offer_remote_config(config);
        }
        if let Some(packages) = msg.packages_available.take() {
            self.offer_packages(packages);
        }
        if let Some(settings) = msg.connection_settings.take() {
            self.offer_connection_settings(settings);
        }
        msg
    }

    fn capabilities_changed(&mut self) {
        let interval = if self
            .status
            .has_capability(AgentCapabilities::REPORTS_HEARTBEAT)
        {
            match self.config.heartbeat_interval {
                Some(i) if i.is_zero() => None,
                Some(i) => Some(i.max(Duration::from_secs(1))),
                None => Some(DEFAULT_HEARTBEAT_INTERVAL),
            }
        } else if self.config.polling {
            Some(polling_interval(&self.config))
        } else {
            None
        };
        self.liveness.set_interval(interval);
        self.refresh_settings_offer();
    }

    fn refresh_settings_offer(&mut self) {
        let heartbeat = self
            .status
            .has_capability(AgentCapabilities::REPORTS_HEARTBEAT)
            .then(|| self.config.heartbeat_offer_seconds())
            .flatten();
        let effective = match (heartbeat, &self.settings_base) {
            (Some(seconds), None) => Some(self.config.heartbeat_only_offer(seconds)),
            (Some(seconds), Some(base)) => {
                Some(Arc::new(offers::with_heartbeat(Some(base), seconds)))
            }
            (None, Some(base)) => Some(base.clone()),
            (None, None) => None,
        };
        match effective {
            Some(offer) => self.settings.set(offer),
            None => self.settings.clear(),
        }
    }

    fn offers_due(&self) -> bool {
        self.remote_config_due()
            || self.packages_due()
            || self
                .settings
                .due(self.status.last_connection_settings_hash())
    }

    /// Adds the pending UID assignment to `msg`.
    fn add_identification(&self, msg: &mut ServerToAgent) {
        if msg.error_response.is_none()
            && let Some(assignment) = self.identity.assignment()
        {
            msg.agent_identification = Some(AgentIdentification {
                new_instance_uid: assignment.new_uid.to_bytes(),
            });
        }
    }

    /// Adds to `msg` what every outgoing message needs: flags, first-message capabilities,
    /// due offers; then removes what the agent does not accept.
    fn complete(&mut self, msg: &mut ServerToAgent) {
        msg.flags |= std::mem::take(&mut self.reply_flags).bits();
        if !self.first_response_sent {
            msg.capabilities |=
                (self.config.capabilities | ServerCapabilities::ACCEPTS_STATUS).bits();
            self.first_response_sent = true;
        }
        if !self.custom_capabilities_sent {
            self.custom_capabilities_sent = true;
            if msg.custom_capabilities.is_none() && !self.config.custom_capabilities.is_empty() {
                msg.custom_capabilities = Some(CustomCapabilities {
                    capabilities: self.config.custom_capabilities.clone(),
                });
            }
        }
        if self.remote_config_due()
            && let Some(config) = self.remote_config.desired()
        {
            msg.remote_config = Some(AgentRemoteConfig::clone(config));
            self.remote_config.mark_sent();
        }
        if self.packages_due()
            && let Some(packages) = self.packages.desired()
        {
            msg.packages_available = Some(PackagesAvailable::clone(packages));
            self.packages.mark_sent();
        }
        if self
            .settings
            .due(self.status.last_connection_settings_hash())
            && let Some(settings) = self.settings.desired()
        {
            msg.connection_settings = Some(ConnectionSettingsOffers::clone(settings));
            self.settings.mark_sent();
        }
        let gated = gate(msg, &self.status);
        if gated.any() {
            tracing::debug!(
                ?gated,
                "parts of a message the agent does not accept were dropped"
            );
        }
    }
}

fn polling_interval(config: &StateConfig) -> Duration {
    match config.heartbeat_interval {
        Some(i) if !i.is_zero() => i.max(Duration::from_secs(1)),
        _ => DEFAULT_HEARTBEAT_INTERVAL,
    }
}

/// True if `msg` carries anything a command must not be combined with.
fn has_body(msg: &ServerToAgent) -> bool {
    msg.error_response.is_some()
        || msg.remote_config.is_some()
        || msg.connection_settings.is_some()
        || msg.packages_available.is_some()
        || msg.flags != 0
        || msg.agent_identification.is_some()
        || msg.custom_capabilities.is_some()
        || msg.custom_message.is_some()
}

fn error_only(instance_uid: Bytes, error: ServerErrorResponse) -> ServerToAgent {
    ServerToAgent {
        instance_uid,
        error_response: Some(error),
        ..Default::default()
    }
}

/// A `BAD_REQUEST` error response (spec §"Bad Request") for `instance_uid` (may be empty when
/// the message could not be decoded).
pub fn bad_request(instance_uid: Bytes, message: impl Into<String>) -> ServerToAgent {
    error_only(
        instance_uid,
        ServerErrorResponse {
            r#type: opamp_proto::ServerErrorResponseType::BadRequest as i32,
            error_message: message.into(),
            details: None,
        },
    )
}

/// An `UNAVAILABLE` error response (spec §"Throttling") asking the agent to retry after
/// `retry_after` (sent as `retry_info` when given).
pub fn unavailable(instance_uid: Bytes, retry_after: Option<Duration>) -> ServerToAgent {
    error_only(
        instance_uid,
        ServerErrorResponse {
            r#type: opamp_proto::ServerErrorResponseType::Unavailable as i32,
            error_message: "the server is overloaded; retry later".into(),
            details: retry_after.map(|d| {
                opamp_proto::server_error_response::Details::RetryInfo(opamp_proto::RetryInfo {
                    retry_after_nanoseconds: u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
                })
            }),
        },
    )
}

#[cfg(test)]
mod tests;
