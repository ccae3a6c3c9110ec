//! A model-based check of the sans-IO `ClientState`, driven by an arbitrary byte string.
//!
//! Shared by `tests/client_state_model.rs` (proptest, and a short form that runs in CI on
//! stable) and `fuzz/fuzz_targets/client_state.rs` (cargo-fuzz, which includes this file by
//! path). It depends on `opamp-client` only.
//!
//! The bytes decode into a sequence of steps: setters for every status part, capability
//! changes, custom messages, sends that are delivered, fail, are refused or throttled, server
//! messages of every kind (acknowledgements, `ReportFullState` after the server lost its
//! state, `UNAVAILABLE`, bad requests, commands, offers, new instance UIDs), WebSocket
//! connections that break or fail to open, and time steps. A model server merges what it
//! reads, as a real one does with status compression.
//!
//! After every step:
//! * the state's values are what the setters accepted (a setter fails exactly when the
//!   capability it needs is missing);
//! * nothing is left in flight, and only one message is ever in flight (`poll_message`
//!   returns nothing while one is);
//! * `sequence_num` grows by exactly one per message;
//! * each accepted custom message gets exactly one `CustomMessageSent` or
//!   `CustomMessageDropped`, and `Dropped` only when the message carrying it was refused or
//!   the client stopped;
//! * the first message after `ReportFullState` carries every part that is set and allowed;
//! * a server message that changes nothing is not answered (no ping-pong).
//!
//! At the end (and at "settle" steps) the connection is allowed to work until nothing is
//! pending, which must happen within a bounded number of rounds; then the server's merged
//! view equals the Agent's state for every part the capabilities allow (status compression
//! lost nothing), except parts whose last message the server refused as a bad request (not
//! retried, as the spec says) until they change again; then the client stops and every
//! custom message still open is reported dropped.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use opamp_client::Error;
use opamp_client::proto::{
    AgentCapabilities as Caps, AgentDescription, AgentIdentification, AgentRemoteConfig,
    AgentToServer, AvailableComponents, ComponentHealth, ConnectionSettingsStatus, CustomMessage,
    EffectiveConfig, InstanceUid, KeyValue, Message, PackageStatuses, RemoteConfigStatus,
    RetryInfo, ServerErrorResponse, ServerErrorResponseType, ServerToAgent, ServerToAgentCommand,
    ServerToAgentFlags, server_error_response,
};
use opamp_client::state::{ClientState, ConstantBackoff, Event, Failure, StateConfig, Transport};

/// The status parts of `AgentToServer` that compression may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Description,
    Health,
    EffectiveConfig,
    RemoteConfigStatus,
    PackageStatuses,
    CustomCapabilities,
    AvailableComponents,
    ConnectionSettingsStatus,
}

impl Part {
    const ALL: [Part; 8] = [
        Part::Description,
        Part::Health,
        Part::EffectiveConfig,
        Part::RemoteConfigStatus,
        Part::PackageStatuses,
        Part::CustomCapabilities,
        Part::AvailableComponents,
        Part::ConnectionSettingsStatus,
    ];

    /// The capability that gates reporting the part, if any.
    fn gate(self) -> Option<Caps> {
        match self {
            Part::Description | Part::CustomCapabilities => None,
            Part::Health => Some(Caps::REPORTS_HEALTH),
            Part::EffectiveConfig => Some(Caps::REPORTS_EFFECTIVE_CONFIG),
            Part::RemoteConfigStatus => Some(Caps::REPORTS_REMOTE_CONFIG),
            Part::PackageStatuses => Some(Caps::REPORTS_PACKAGE_STATUSES),
            Part::AvailableComponents => Some(Caps::REPORTS_AVAILABLE_COMPONENTS),
            Part::ConnectionSettingsStatus => Some(Caps::REPORTS_CONNECTION_SETTINGS_STATUS),
        }
    }

    fn allowed(self, caps: Caps) -> bool {
        self.gate().is_none_or(|gate| caps.contains(gate))
    }
}

/// The parts present in a message, each encoded (available components: the hash only).
fn parts_of(msg: &AgentToServer) -> BTreeMap<Part, Vec<u8>> {
    let mut parts = BTreeMap::new();
    let mut put = |part, value: Option<Vec<u8>>| {
        if let Some(value) = value {
            parts.insert(part, value);
        }
    };
    put(
        Part::Description,
        msg.agent_description.as_ref().map(Message::encode_to_vec),
    );
    put(
        Part::Health,
        msg.health.as_ref().map(Message::encode_to_vec),
    );
    put(
        Part::EffectiveConfig,
        msg.effective_config.as_ref().map(Message::encode_to_vec),
    );
    put(
        Part::RemoteConfigStatus,
        msg.remote_config_status
            .as_ref()
            .map(Message::encode_to_vec),
    );
    put(
        Part::PackageStatuses,
        msg.package_statuses.as_ref().map(Message::encode_to_vec),
    );
    put(
        Part::CustomCapabilities,
        msg.custom_capabilities.as_ref().map(Message::encode_to_vec),
    );
    put(
        Part::AvailableComponents,
        msg.available_components.as_ref().map(|c| c.hash.to_vec()),
    );
    put(
        Part::ConnectionSettingsStatus,
        msg.connection_settings_status
            .as_ref()
            .map(Message::encode_to_vec),
    );
    parts
}

/// The state's current value of every part, encoded like [`parts_of`].
fn current_of(state: &ClientState) -> BTreeMap<Part, Vec<u8>> {
    let msg = AgentToServer {
        agent_description: state.agent_description().cloned(),
        health: state.health().cloned(),
        effective_config: state.effective_config().cloned(),
        remote_config_status: state.remote_config_status().cloned(),
        package_statuses: state.package_statuses().cloned(),
        custom_capabilities: state.custom_capabilities().cloned(),
        available_components: state.available_components().cloned(),
        connection_settings_status: state.connection_settings_status().cloned(),
        ..Default::default()
    };
    parts_of(&msg)
}

/// The capabilities a step may switch on and off.
const TOGGLED: [Caps; 8] = [
    Caps::REPORTS_HEALTH,
    Caps::REPORTS_EFFECTIVE_CONFIG,
    Caps::REPORTS_REMOTE_CONFIG,
    Caps::REPORTS_PACKAGE_STATUSES,
    Caps::REPORTS_AVAILABLE_COMPONENTS,
    Caps::REPORTS_CONNECTION_SETTINGS_STATUS,
    Caps::ACCEPTS_RESTART_COMMAND,
    Caps::ACCEPTS_REMOTE_CONFIG,
];

const CUSTOM: &str = "io.example.custom";

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Ack,
    /// The server lost its state and asks for everything.
    FullState,
    ReportAvailableComponents,
    Unavailable(u8),
    BadRequest,
    Command,
    RemoteConfigOffer,
    NewUid(u8),
}

impl Reply {
    fn decode(kind: u8, arg: u8) -> Reply {
        match kind % 8 {
            0 => Reply::Ack,
            1 => Reply::FullState,
            2 => Reply::ReportAvailableComponents,
            3 => Reply::Unavailable(arg),
            4 => Reply::BadRequest,
            5 => Reply::Command,
            6 => Reply::RemoteConfigOffer,
            _ => Reply::NewUid(arg),
        }
    }

    /// Whether the server did not process the message(s) it answers.
    fn refuses(self) -> bool {
        matches!(self, Reply::BadRequest)
    }

    /// Whether handling the reply may make a message due.
    fn may_ask_for_a_report(self) -> bool {
        matches!(
            self,
            Reply::FullState
                | Reply::ReportAvailableComponents
                | Reply::Unavailable(_)
                | Reply::BadRequest
        )
    }

    fn message(self) -> ServerToAgent {
        let error = |kind: ServerErrorResponseType, retry: Option<u8>| ServerToAgent {
            error_response: Some(ServerErrorResponse {
                r#type: kind as i32,
                error_message: String::new(),
                details: retry.map(|ms| {
                    server_error_response::Details::RetryInfo(RetryInfo {
                        retry_after_nanoseconds: u64::from(ms) * 10_000_000,
                    })
                }),
            }),
            ..Default::default()
        };
        match self {
            Reply::Ack => ServerToAgent::default(),
            Reply::FullState => ServerToAgent {
                flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
                ..Default::default()
            },
            Reply::ReportAvailableComponents => ServerToAgent {
                flags: ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS.bits(),
                ..Default::default()
            },
            Reply::Unavailable(ms) => error(ServerErrorResponseType::Unavailable, Some(ms)),
            Reply::BadRequest => error(ServerErrorResponseType::BadRequest, None),
            Reply::Command => ServerToAgent {
                command: Some(ServerToAgentCommand { r#type: 0 }),
                ..Default::default()
            },
            Reply::RemoteConfigOffer => ServerToAgent {
                remote_config: Some(AgentRemoteConfig {
                    config: None,
                    config_hash: vec![1].into(),
                }),
                ..Default::default()
            },
            Reply::NewUid(n) => ServerToAgent {
                agent_identification: Some(AgentIdentification {
                    new_instance_uid: vec![n | 1; 16].into(),
                }),
                ..Default::default()
            },
        }
    }
}

/// The model: the state under test, the model server, and the bookkeeping of the checks.
pub struct Model {
    transport: Transport,
    state: ClientState,
    now: Instant,
    /// What the setters accepted.
    current: BTreeMap<Part, Vec<u8>>,
    /// The server's merged view.
    server: BTreeMap<Part, Vec<u8>>,
    /// Parts whose last sent value the server refused: excused until they change.
    refused: BTreeSet<Part>,
    last_seq: u64,
    /// WebSocket messages written and not yet read by the server.
    in_transit: Vec<AgentToServer>,
    /// Custom messages accepted and not yet reported sent or dropped.
    open_custom: BTreeSet<u64>,
    /// Custom messages reported sent or dropped.
    closed_custom: BTreeSet<u64>,
    /// Custom messages whose carrier was refused (their `Dropped` is legitimate).
    may_drop: BTreeSet<u64>,
    /// The custom message the next taken message carries, if any (its id).
    pending_custom: Option<u64>,
    /// The next message taken must carry every part set and allowed.
    full_report_due: bool,
    stopped: bool,
}

impl Model {
    /// A client over `transport` with every gated capability on.
    pub fn new(transport: Transport) -> Model {
        let mut caps = Caps::empty();
        for cap in TOGGLED {
            caps |= cap;
        }
        let state = ClientState::new(
            StateConfig::new(InstanceUid::from_array([3; 16]), transport)
                .with_capabilities(caps)
                // Far beyond the time the steps cover: no heartbeat or poll interferes.
                .with_heartbeat_interval(Duration::from_secs(24 * 3600))
                .with_min_throttle_delay(Duration::from_millis(500))
                .with_stable_connection_time(Duration::from_secs(1))
                .with_backoff(ConstantBackoff(Duration::from_millis(200))),
        );
        let mut model = Model {
            transport,
            state,
            now: Instant::now(),
            current: BTreeMap::new(),
            server: BTreeMap::new(),
            refused: BTreeSet::new(),
            last_seq: 0,
            in_transit: Vec::new(),
            open_custom: BTreeSet::new(),
            closed_custom: BTreeSet::new(),
            may_drop: BTreeSet::new(),
            pending_custom: None,
            full_report_due: true,
            stopped: false,
        };
        if transport == Transport::Http {
            // What the driver does when it starts using an endpoint.
            model.state.on_connected(model.now);
        }
        model
    }

    fn caps(&self) -> Caps {
        self.state.capabilities()
    }

    // ------------------------------------------------------------ sending and receiving

    /// Takes the next message, if one is due, and checks the invariants of every message.
    fn take(&mut self, disconnect: bool) -> Option<AgentToServer> {
        let msg = if disconnect {
            self.state.poll_disconnect_message(self.now)?
        } else {
            self.state.poll_message(self.now)?
        };
        assert_eq!(
            msg.sequence_num,
            self.last_seq + 1,
            "sequence_num must grow by one per message"
        );
        self.last_seq = msg.sequence_num;
        assert!(self.state.is_sending());
        assert!(
            self.state.poll_message(self.now).is_none(),
            "only one message may be in flight"
        );
        assert_eq!(msg.instance_uid, self.state.instance_uid().to_bytes());
        assert_eq!(msg.capabilities, self.caps().bits());
        if self.full_report_due {
            let carried = parts_of(&msg);
            for (part, value) in &self.current {
                if part.allowed(self.caps()) {
                    assert_eq!(
                        carried.get(part),
                        Some(value),
                        "{part:?} missing from the report after ReportFullState: {msg:?}"
                    );
                }
            }
            self.full_report_due = false;
        }
        self.pending_custom = if msg.custom_message.is_some() {
            let open = self.open_custom.iter().next_back().copied();
            assert!(open.is_some(), "a custom message nobody sent");
            open
        } else {
            None
        };
        Some(msg)
    }

    /// The server refused `msg` (or it was dropped as too large): not retried.
    fn refused(&mut self, msg: &AgentToServer) {
        for part in parts_of(msg).into_keys() {
            self.refused.insert(part);
        }
        if msg.custom_message.is_some()
            && let Some(id) = self.pending_custom
        {
            self.may_drop.insert(id);
        }
    }

    /// The server read `msg`.
    fn server_reads(&mut self, msg: &AgentToServer) {
        for (part, value) in parts_of(msg) {
            self.server.insert(part, value);
        }
    }

    /// The server lost its state: it knows nothing, and asks for everything.
    fn server_forgets(&mut self) {
        self.server.clear();
        self.refused.clear();
        self.full_report_due = true;
    }

    /// The client handles `reply`; checks that a reply that changes nothing is not answered.
    fn client_handles(&mut self, reply: Reply) {
        let pending_before = self.state.has_pending();
        self.state.handle_server_message(reply.message(), self.now);
        self.drain_events();
        if !pending_before && !reply.may_ask_for_a_report() {
            assert!(
                !self.state.has_pending(),
                "{reply:?} changed nothing, yet a report is due (ping-pong)"
            );
            if self.state.is_connected() {
                assert!(
                    self.state.poll_message(self.now).is_none(),
                    "{reply:?} was answered (ping-pong)"
                );
            }
        }
    }

    /// Hands out every event; checks the custom message accounting.
    fn drain_events(&mut self) {
        while let Some(event) = self.state.poll_event() {
            match event {
                Event::CustomMessageSent(id) | Event::CustomMessageDropped(id) => {
                    let dropped = matches!(event, Event::CustomMessageDropped(_));
                    let id = id.get();
                    assert!(
                        self.open_custom.remove(&id),
                        "custom message {id} reported twice, or never accepted"
                    );
                    assert!(self.closed_custom.insert(id));
                    if dropped {
                        assert!(
                            self.stopped || self.may_drop.contains(&id),
                            "custom message {id} dropped although it was never refused"
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends one message with `outcome`: 0 delivered, 1 transient failure, 2 refused, 3
    /// throttled (plain HTTP; a transient failure over WebSocket).
    fn send(&mut self, outcome: u8, arg: u8) {
        let Some(msg) = self.take(false) else {
            return;
        };
        match (self.transport, outcome % 4) {
            (Transport::WebSocket, 0) => {
                self.state.on_send_succeeded(self.now);
                self.in_transit.push(msg);
            }
            (Transport::WebSocket, 2) => {
                // Over the local size limit: dropped, the connection stays.
                self.refused(&msg);
                self.state.on_send_failed(self.now, Failure::Rejected);
            }
            (Transport::WebSocket, _) => {
                self.state.on_send_failed(self.now, Failure::Transient);
                self.lose_connection();
            }
            (Transport::Http, 0) => {
                let reply = Reply::decode(arg, arg);
                self.http_answer(&msg, reply);
            }
            (Transport::Http, 1) => self.state.on_send_failed(self.now, Failure::Transient),
            (Transport::Http, 2) => {
                self.refused(&msg);
                self.state.on_send_failed(self.now, Failure::Rejected);
            }
            (Transport::Http, _) => self.state.on_send_failed(
                self.now,
                Failure::Throttled {
                    retry_after: Some(Duration::from_millis(u64::from(arg) * 10)),
                },
            ),
        }
        self.drain_events();
    }

    /// The plain-HTTP server answers `msg` with `reply`.
    fn http_answer(&mut self, msg: &AgentToServer, reply: Reply) {
        match reply {
            Reply::Unavailable(_) => {}
            Reply::BadRequest => self.refused(msg),
            Reply::FullState => {
                self.server_reads(msg);
                self.server_forgets();
            }
            _ => self.server_reads(msg),
        }
        self.client_handles(reply);
    }

    /// The WebSocket server reads what was written and sends `reply`.
    fn ws_server_sends(&mut self, reply: Reply) {
        if !self.state.is_connected() {
            return;
        }
        let read = std::mem::take(&mut self.in_transit);
        match reply {
            // Overloaded: what it got is not processed; the client reports in full later.
            Reply::Unavailable(_) => {}
            Reply::BadRequest => {
                for msg in &read {
                    self.refused(msg);
                }
            }
            Reply::FullState => {
                for msg in &read {
                    self.server_reads(msg);
                }
                self.server_forgets();
            }
            _ => {
                for msg in &read {
                    self.server_reads(msg);
                }
            }
        }
        self.client_handles(reply);
        self.ws_close_if_asked();
    }

    /// After `UNAVAILABLE`: `agent_disconnect`, close, reconnect later.
    fn ws_close_if_asked(&mut self) {
        if self.state.wants_disconnect() {
            if self.take(true).is_some() {
                self.state.on_send_succeeded(self.now);
            }
            self.in_transit.clear();
            self.state.on_disconnected(self.now);
            self.drain_events();
        }
    }

    /// The WebSocket connection breaks: what was written and not read is lost.
    fn lose_connection(&mut self) {
        self.in_transit.clear();
        self.state.on_disconnected(self.now);
        self.drain_events();
    }

    // ------------------------------------------------------------ setters

    /// Applies a setter's outcome to the model: accepted iff the capability is there.
    fn setter(&mut self, part: Part, result: Result<(), Error>) {
        let allowed = part.gate().is_none_or(|gate| self.caps().contains(gate));
        match result {
            Ok(()) => {
                assert!(allowed, "{part:?} set without its capability");
                let value = current_of(&self.state).remove(&part);
                if value != self.current.get(&part).cloned() {
                    self.refused.remove(&part);
                }
                match value {
                    Some(value) => self.current.insert(part, value),
                    None => self.current.remove(&part),
                };
            }
            Err(Error::CapabilityNotSet { .. }) => {
                assert!(!allowed, "{part:?} refused although its capability is set");
            }
            Err(err) => panic!("unexpected error setting {part:?}: {err}"),
        }
    }

    fn set(&mut self, which: u8, n: u8) {
        let text = |what: &str| format!("{what} {n}");
        match which % 8 {
            0 => {
                self.state.set_agent_description(AgentDescription {
                    identifying_attributes: vec![KeyValue::new("service.name", i64::from(n % 4))],
                    non_identifying_attributes: vec![],
                });
                self.setter(Part::Description, Ok(()));
            }
            1 => {
                let result = self.state.set_health(ComponentHealth {
                    status: text("health"),
                    healthy: n.is_multiple_of(2),
                    ..Default::default()
                });
                self.setter(Part::Health, result);
            }
            2 => {
                let result = self.state.set_effective_config(EffectiveConfig {
                    config_map: Some(opamp_client::proto::AgentConfigMap {
                        config_map: [(
                            text("file"),
                            opamp_client::proto::AgentConfigFile::default(),
                        )]
                        .into_iter()
                        .collect(),
                    }),
                });
                self.setter(Part::EffectiveConfig, result);
            }
            3 => {
                let result = self.state.set_remote_config_status(RemoteConfigStatus {
                    last_remote_config_hash: vec![n % 4].into(),
                    status: 1,
                    error_message: String::new(),
                });
                self.setter(Part::RemoteConfigStatus, result);
            }
            4 => {
                let result = self.state.set_package_statuses(PackageStatuses {
                    server_provided_all_packages_hash: vec![n % 4].into(),
                    ..Default::default()
                });
                self.setter(Part::PackageStatuses, result);
            }
            5 => {
                let result = self
                    .state
                    .set_connection_settings_status(ConnectionSettingsStatus {
                        last_connection_settings_hash: vec![n % 4].into(),
                        status: 1,
                        error_message: String::new(),
                    });
                self.setter(Part::ConnectionSettingsStatus, result);
            }
            6 => {
                let capabilities = match n % 3 {
                    0 => vec![CUSTOM.to_owned()],
                    1 => vec![CUSTOM.to_owned(), "io.example.other".to_owned()],
                    _ => vec!["io.example.other".to_owned()],
                };
                self.state
                    .set_custom_capabilities(opamp_client::proto::CustomCapabilities {
                        capabilities,
                    });
                self.setter(Part::CustomCapabilities, Ok(()));
            }
            _ => {
                let result = self.state.set_available_components(AvailableComponents {
                    components: Default::default(),
                    hash: vec![n % 4, 1].into(),
                });
                self.setter(Part::AvailableComponents, result);
            }
        }
    }

    fn toggle(&mut self, which: u8) {
        let cap = TOGGLED[usize::from(which) % TOGGLED.len()];
        let caps = self.caps() ^ cap;
        self.state.set_capabilities(caps);
        assert_eq!(self.caps(), caps | Caps::REPORTS_STATUS);
    }

    fn send_custom(&mut self, n: u8) {
        let ours = self
            .state
            .custom_capabilities()
            .is_some_and(|c| c.capabilities.iter().any(|c| c == CUSTOM));
        let pending = self.state.custom_message_pending();
        let result = self.state.send_custom_message(CustomMessage {
            capability: CUSTOM.into(),
            r#type: "t".into(),
            data: vec![n].into(),
        });
        match result {
            Ok(id) => {
                assert!(ours && !pending);
                assert!(self.open_custom.insert(id.get()), "custom id reused");
            }
            Err(Error::CustomCapabilityNotSupported(_)) => assert!(!ours),
            Err(Error::CustomMessagePending) => assert!(pending),
            Err(err) => panic!("unexpected custom message error: {err}"),
        }
    }

    // ------------------------------------------------------------ connections and time

    fn ws_connect(&mut self, fail: bool) {
        if self.transport != Transport::WebSocket || !self.state.can_connect(self.now) {
            return;
        }
        self.state.on_connecting(self.now);
        if fail {
            self.state.on_connect_failed(self.now, Failure::Transient);
        } else {
            self.state.on_connected(self.now);
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// Moves the clock to the state's next deadline, if it is in the future.
    fn advance_to_deadline(&mut self) {
        if let Some(at) = self.state.poll_timeout()
            && at > self.now
        {
            self.now = at;
        }
    }

    // ------------------------------------------------------------ steps

    /// Runs one step decoded from `op` and `arg`, then the per-step checks.
    pub fn step(&mut self, op: u8, arg: u8) {
        match op % 16 {
            0..=3 => self.set(arg, arg / 8),
            4 => self.toggle(arg),
            5 => self.send_custom(arg),
            6..=8 => self.send(arg % 4, arg / 4),
            9 | 10 => match self.transport {
                Transport::WebSocket => self.ws_server_sends(Reply::decode(arg, arg / 8)),
                Transport::Http => {
                    if let Some(msg) = self.take(false) {
                        self.http_answer(&msg, Reply::decode(arg, arg / 8));
                    }
                }
            },
            11 => {
                if self.transport == Transport::WebSocket && self.state.is_connected() {
                    self.lose_connection();
                }
            }
            12 => self.ws_connect(arg.is_multiple_of(4)),
            13 => self.advance(u64::from(arg) * 20),
            14 => self.state.set_request_instance_uid(arg.is_multiple_of(2)),
            _ => {
                self.settle();
                self.check_nothing_lost();
            }
        }
        self.drain_events();
        assert!(!self.state.is_sending(), "a message left in flight");
        assert_eq!(
            current_of(&self.state),
            self.current,
            "the state's values differ from what the setters accepted"
        );
    }

    /// Lets the connection work until nothing is pending (bounded).
    pub fn settle(&mut self) {
        for _ in 0..200 {
            self.drain_events();
            match self.transport {
                Transport::WebSocket => {
                    self.ws_close_if_asked();
                    if !self.state.is_connected() {
                        if self.state.can_connect(self.now) {
                            self.ws_connect(false);
                        } else {
                            self.advance_to_deadline();
                        }
                        continue;
                    }
                    while let Some(msg) = self.take(false) {
                        self.state.on_send_succeeded(self.now);
                        self.in_transit.push(msg);
                        self.drain_events();
                    }
                    self.ws_server_sends(Reply::Ack);
                    if !self.state.has_pending()
                        && self.state.is_connected()
                        && self.in_transit.is_empty()
                    {
                        return;
                    }
                }
                Transport::Http => {
                    if let Some(msg) = self.take(false) {
                        self.http_answer(&msg, Reply::Ack);
                        continue;
                    }
                    if !self.state.has_pending() && self.state.is_connected() {
                        return;
                    }
                    self.advance_to_deadline();
                }
            }
        }
        panic!("the client never settled: {:?}", self.state);
    }

    /// After [`settle`](Self::settle): the server knows the Agent's state.
    pub fn check_nothing_lost(&mut self) {
        let caps = self.caps();
        for (part, value) in &self.current {
            if !part.allowed(caps) || self.refused.contains(part) {
                continue;
            }
            assert_eq!(
                self.server.get(part),
                Some(value),
                "{part:?}: the server's merged view differs from the Agent's state"
            );
        }
        assert!(
            !self.state.custom_message_pending(),
            "a custom message still pending after settling"
        );
        assert!(
            self.open_custom.is_empty(),
            "custom messages {:?} neither sent nor dropped",
            self.open_custom
        );
        if self.transport == Transport::WebSocket {
            // No ping-pong on a quiet connection either.
            self.client_handles(Reply::Ack);
        }
    }

    /// Stops the client: every custom message still open is reported dropped.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.state.stop();
        self.drain_events();
        assert!(
            self.open_custom.is_empty(),
            "custom messages {:?} lost at stop",
            self.open_custom
        );
        assert!(self.state.poll_message(self.now).is_none());
    }
}

/// Runs the steps `data` encodes (the first byte picks the transport), settles, checks that
/// nothing was lost, and stops. Panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let transport = if first % 2 == 0 {
        Transport::WebSocket
    } else {
        Transport::Http
    };
    let mut model = Model::new(transport);
    for pair in rest.chunks(2) {
        model.step(pair[0], pair.get(1).copied().unwrap_or(0));
    }
    model.settle();
    model.check_nothing_lost();
    model.stop();
}
