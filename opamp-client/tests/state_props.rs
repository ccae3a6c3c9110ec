//! Property tests of the sans-IO `ClientState`, over both transports: for any sequence of
//! setters, server messages, send failures, disconnections and time steps,
//!
//! * `sequence_num` only grows;
//! * no status change is lost: once the connection works again, the server ends up with the
//!   latest value of every part (unless the server refused that very value as a bad request,
//!   which the spec says not to retry);
//! * a `ServerToAgent` that changes nothing is never answered with a status report.
//!
//! The model server applies WebSocket messages only when it answers them, so messages
//! written into a connection that then breaks are lost, as on a half-open connection.

use std::time::{Duration, Instant};

use opamp_client::proto::{
    AgentCapabilities as Caps, AgentDescription, AgentRemoteConfig, AgentToServer, ComponentHealth,
    InstanceUid, KeyValue, RemoteConfigStatus, RetryInfo, ServerErrorResponse,
    ServerErrorResponseType, ServerToAgent, ServerToAgentFlags, server_error_response,
};
use opamp_client::state::{ClientState, ConstantBackoff, Failure, StateConfig, Transport};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Reply {
    Ack,
    FullState,
    RemoteConfigOffer,
    Unavailable(Option<u16>),
    BadRequest,
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Delivered(Reply),
    Transient,
    Throttled(Option<u16>),
    Rejected,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    SetDescription(u8),
    SetHealth(u8),
    SetRemoteConfigStatus(u8),
    HealthCapability(bool),
    Send(Outcome),
    ServerAnswers(Reply),
    Disconnect,
    Connect,
    ConnectFails(Option<u16>),
    Advance(u16),
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => Just(Reply::Ack),
        1 => Just(Reply::FullState),
        2 => Just(Reply::RemoteConfigOffer),
        1 => proptest::option::of(0u16..3000).prop_map(Reply::Unavailable),
        1 => Just(Reply::BadRequest),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..4).prop_map(Op::SetDescription),
        3 => (0u8..4).prop_map(Op::SetHealth),
        2 => (0u8..4).prop_map(Op::SetRemoteConfigStatus),
        1 => any::<bool>().prop_map(Op::HealthCapability),
        4 => prop_oneof![
            4 => reply().prop_map(Outcome::Delivered),
            1 => Just(Outcome::Transient),
            1 => proptest::option::of(0u16..3000).prop_map(Outcome::Throttled),
            1 => Just(Outcome::Rejected),
        ]
        .prop_map(Op::Send),
        3 => reply().prop_map(Op::ServerAnswers),
        1 => Just(Op::Disconnect),
        2 => Just(Op::Connect),
        1 => proptest::option::of(0u16..3000).prop_map(Op::ConnectFails),
        2 => (0u16..5000).prop_map(Op::Advance),
    ]
}

/// What the server knows of one part: the value from the newest message (by `sequence_num`)
/// that carried it, and whether that message was refused (a bad request, or dropped locally
/// as too large: not retried, as the spec says).
#[derive(Debug, Clone, PartialEq)]
struct View<T> {
    seq: u64,
    value: Option<T>,
    rejected: bool,
}

impl<T> Default for View<T> {
    fn default() -> Self {
        View {
            seq: 0,
            value: None,
            rejected: false,
        }
    }
}

#[derive(Default)]
struct Server {
    description: View<AgentDescription>,
    health: View<ComponentHealth>,
    remote_config_status: View<RemoteConfigStatus>,
}

impl Server {
    fn apply(&mut self, msg: &AgentToServer, rejected: bool) {
        fn put<T: Clone>(view: &mut View<T>, value: &Option<T>, seq: u64, rejected: bool) {
            if let Some(value) = value
                && seq > view.seq
            {
                *view = View {
                    seq,
                    value: Some(value.clone()),
                    rejected,
                };
            }
        }
        let seq = msg.sequence_num;
        put(&mut self.description, &msg.agent_description, seq, rejected);
        put(&mut self.health, &msg.health, seq, rejected);
        put(
            &mut self.remote_config_status,
            &msg.remote_config_status,
            seq,
            rejected,
        );
    }
}

fn answer(reply: Reply) -> ServerToAgent {
    let error = |kind: ServerErrorResponseType, retry: Option<u16>| ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: kind as i32,
            error_message: String::new(),
            details: retry.map(|ms| {
                server_error_response::Details::RetryInfo(RetryInfo {
                    retry_after_nanoseconds: u64::from(ms) * 1_000_000,
                })
            }),
        }),
        ..Default::default()
    };
    match reply {
        Reply::Ack => ServerToAgent::default(),
        Reply::FullState => ServerToAgent {
            flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
            ..Default::default()
        },
        Reply::RemoteConfigOffer => ServerToAgent {
            remote_config: Some(AgentRemoteConfig {
                config: None,
                config_hash: vec![1].into(),
            }),
            ..Default::default()
        },
        Reply::Unavailable(retry) => error(ServerErrorResponseType::Unavailable, retry),
        Reply::BadRequest => error(ServerErrorResponseType::BadRequest, None),
    }
}

/// Whether handling `reply` may legitimately make a report due.
fn changes_something(reply: Reply) -> bool {
    matches!(
        reply,
        Reply::FullState | Reply::Unavailable(_) | Reply::BadRequest
    )
}

struct Harness {
    transport: Transport,
    state: ClientState,
    now: Instant,
    server: Server,
    /// WebSocket messages written but not yet answered (lost if the connection breaks).
    in_transit: Vec<AgentToServer>,
    last_seq: u64,
    description: Option<AgentDescription>,
    health: Option<ComponentHealth>,
    remote_config_status: Option<RemoteConfigStatus>,
}

const CAPS: Caps = Caps::REPORTS_REMOTE_CONFIG.with(Caps::ACCEPTS_REMOTE_CONFIG);

impl Harness {
    fn new(transport: Transport) -> Harness {
        let state = ClientState::new(
            StateConfig::new(InstanceUid::from_array([3; 16]), transport)
                .with_capabilities(CAPS | Caps::REPORTS_HEALTH)
                // Far beyond the time the ops cover: no heartbeat or poll interferes.
                .with_heartbeat_interval(Duration::from_secs(24 * 3600))
                .with_min_throttle_delay(Duration::from_millis(500))
                .with_backoff(ConstantBackoff(Duration::from_millis(200))),
        );
        Harness {
            transport,
            state,
            now: Instant::now(),
            server: Server::default(),
            in_transit: Vec::new(),
            last_seq: 0,
            description: None,
            health: None,
            remote_config_status: None,
        }
    }

    fn check_seq(&mut self, msg: &AgentToServer) {
        assert!(
            msg.sequence_num > self.last_seq,
            "sequence_num went from {} to {}",
            self.last_seq,
            msg.sequence_num
        );
        self.last_seq = msg.sequence_num;
    }

    /// The client handles `reply`; checks that a reply changing nothing is not answered.
    fn deliver(&mut self, reply: Reply) {
        let pending_before = self.state.has_pending();
        self.state.handle_server_message(answer(reply), self.now);
        while self.state.poll_event().is_some() {}
        if !pending_before && !changes_something(reply) {
            assert!(
                !self.state.has_pending(),
                "{reply:?} changed nothing but a report is due"
            );
            if self.state.is_connected() {
                assert!(
                    self.state.poll_message(self.now).is_none(),
                    "answered {reply:?}"
                );
            }
        }
    }

    fn ws_close_if_asked(&mut self) {
        if self.state.wants_disconnect() {
            if let Some(bye) = self.state.poll_disconnect_message(self.now) {
                self.check_seq(&bye);
                self.state.on_send_succeeded(self.now);
            }
            self.in_transit.clear();
            self.state.on_disconnected(self.now);
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::SetDescription(n) => {
                let d = AgentDescription {
                    identifying_attributes: vec![KeyValue::new("service.name", i64::from(n))],
                    non_identifying_attributes: vec![],
                };
                self.state.set_agent_description(d.clone());
                self.description = Some(d);
            }
            Op::SetHealth(n) => {
                let h = ComponentHealth {
                    status: n.to_string(),
                    ..Default::default()
                };
                if self.state.set_health(h.clone()).is_ok() {
                    self.health = Some(h);
                }
            }
            Op::SetRemoteConfigStatus(n) => {
                let s = RemoteConfigStatus {
                    last_remote_config_hash: vec![n].into(),
                    status: 1,
                    error_message: String::new(),
                };
                self.state.set_remote_config_status(s.clone()).unwrap();
                self.remote_config_status = Some(s);
            }
            Op::HealthCapability(on) => {
                let caps = if on {
                    CAPS | Caps::REPORTS_HEALTH
                } else {
                    CAPS
                };
                self.state.set_capabilities(caps);
            }
            Op::Send(outcome) => {
                let Some(msg) = self.state.poll_message(self.now) else {
                    return;
                };
                self.check_seq(&msg);
                match (self.transport, outcome) {
                    (Transport::WebSocket, Outcome::Delivered(_)) => {
                        self.state.on_send_succeeded(self.now);
                        self.in_transit.push(msg);
                    }
                    (Transport::WebSocket, Outcome::Rejected) => {
                        self.server.apply(&msg, true);
                        self.state.on_send_failed(self.now, Failure::Rejected);
                    }
                    (Transport::WebSocket, _) => {
                        self.state.on_send_failed(self.now, Failure::Transient);
                        self.in_transit.clear();
                        self.state.on_disconnected(self.now);
                    }
                    (Transport::Http, Outcome::Delivered(reply)) => {
                        match reply {
                            Reply::Unavailable(_) => {}
                            Reply::BadRequest => self.server.apply(&msg, true),
                            _ => self.server.apply(&msg, false),
                        }
                        self.deliver(reply);
                    }
                    (Transport::Http, Outcome::Transient) => {
                        self.state.on_send_failed(self.now, Failure::Transient)
                    }
                    (Transport::Http, Outcome::Throttled(ms)) => self.state.on_send_failed(
                        self.now,
                        Failure::Throttled {
                            retry_after: ms.map(|ms| Duration::from_millis(u64::from(ms))),
                        },
                    ),
                    (Transport::Http, Outcome::Rejected) => {
                        self.server.apply(&msg, true);
                        self.state.on_send_failed(self.now, Failure::Rejected);
                    }
                }
            }
            Op::ServerAnswers(reply) => {
                if self.transport != Transport::WebSocket || !self.state.is_connected() {
                    return;
                }
                if matches!(reply, Reply::BadRequest) {
                    // Which message it answers is unknown over WebSocket; not modelled.
                    return;
                }
                let in_transit = std::mem::take(&mut self.in_transit);
                if !matches!(reply, Reply::Unavailable(_)) {
                    for msg in &in_transit {
                        self.server.apply(msg, false);
                    }
                }
                self.deliver(reply);
                self.ws_close_if_asked();
            }
            Op::Disconnect => {
                if self.transport == Transport::WebSocket && self.state.is_connected() {
                    self.in_transit.clear();
                    self.state.on_disconnected(self.now);
                }
            }
            Op::Connect => {
                if self.transport == Transport::WebSocket && self.state.can_connect(self.now) {
                    self.state.on_connecting(self.now);
                    self.state.on_connected(self.now);
                }
            }
            Op::ConnectFails(ms) => {
                if self.transport == Transport::WebSocket && self.state.can_connect(self.now) {
                    self.state.on_connecting(self.now);
                    let failure = match ms {
                        None => Failure::Transient,
                        Some(ms) => Failure::Throttled {
                            retry_after: Some(Duration::from_millis(u64::from(ms))),
                        },
                    };
                    self.state.on_connect_failed(self.now, failure);
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms)),
        }
    }

    /// Lets the connection work until nothing is pending.
    fn quiesce(&mut self) {
        self.state.set_capabilities(CAPS | Caps::REPORTS_HEALTH);
        for _ in 0..100 {
            if let Some(at) = self.state.poll_timeout()
                && at > self.now
                && at < self.now + Duration::from_secs(3600)
            {
                self.now = at;
            }
            match self.transport {
                Transport::WebSocket => {
                    self.ws_close_if_asked();
                    if self.state.can_connect(self.now) {
                        self.state.on_connecting(self.now);
                        self.state.on_connected(self.now);
                    }
                    while let Some(msg) = self.state.poll_message(self.now) {
                        self.check_seq(&msg);
                        self.state.on_send_succeeded(self.now);
                        self.in_transit.push(msg);
                    }
                    for msg in std::mem::take(&mut self.in_transit) {
                        self.server.apply(&msg, false);
                    }
                    self.deliver(Reply::Ack);
                }
                Transport::Http => {
                    if let Some(msg) = self.state.poll_message(self.now) {
                        self.check_seq(&msg);
                        self.server.apply(&msg, false);
                        self.deliver(Reply::Ack);
                    }
                }
            }
            if !self.state.has_pending() && self.state.is_connected() && self.in_transit.is_empty()
            {
                return;
            }
        }
        panic!("the client never settled");
    }

    fn check_nothing_lost(&self) {
        fn check<T: PartialEq + std::fmt::Debug>(what: &str, view: &View<T>, current: &Option<T>) {
            if let Some(current) = current {
                assert_eq!(
                    view.value.as_ref(),
                    Some(current),
                    "{what}: the server's newest value differs from the Agent's ({view:?})"
                );
            }
        }
        check("description", &self.server.description, &self.description);
        check("health", &self.server.health, &self.health);
        check(
            "remote config status",
            &self.server.remote_config_status,
            &self.remote_config_status,
        );
    }
}

fn run(transport: Transport, ops: Vec<Op>) {
    let mut harness = Harness::new(transport);
    for op in ops {
        harness.run(op);
    }
    harness.quiesce();
    harness.check_nothing_lost();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn websocket_rules_hold(ops in proptest::collection::vec(op(), 0..80)) {
        run(Transport::WebSocket, ops);
    }

    #[test]
    fn http_rules_hold(ops in proptest::collection::vec(op(), 0..80)) {
        run(Transport::Http, ops);
    }
}
