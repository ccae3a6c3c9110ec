//! [`Connection`]: the embedder's handle on one agent's connection.
//!
//! Sending works the same over both transports: over WebSocket the connection's writer sends
//! at once; over plain HTTP the message waits for the agent's next poll. Either way whatever
//! waits is merged into one pending message (spec §"Retrying Messages"), so a slow or silent
//! agent never makes memory grow.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use opamp_proto::{
    AgentRemoteConfig, ConnectionSettingsOffers, CustomMessage, InstanceUid, PackagesAvailable,
    ServerToAgent, ServerToAgentCommand, ServerToAgentFlags,
};
use opamp_transport::codec::TransportKind;
use opamp_transport::ws::CloseCode;

use crate::Error;
use crate::broadcast::PreparedMessage;
use crate::callbacks::{CloseReason, ConnectionCallbacks};
use crate::server::Shared;
use crate::state::{AgentState, AgentStatus, StatusChanges, UidAssignmentReason};

/// Most prepared broadcast frames waiting for one WebSocket agent; an older one is merged
/// into the agent's pending message instead.
const MAX_PREPARED: usize = 4;

/// A handle on one agent connection: a WebSocket connection, or a plain-HTTP agent's session
/// (which lasts across its polls). Cheap to clone; equal handles refer to the same connection.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
}

pub(crate) struct ConnInner {
    pub(crate) id: u64,
    pub(crate) transport: TransportKind,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) callbacks: Arc<dyn ConnectionCallbacks>,
    state: Mutex<ConnState>,
    /// Wakes the WebSocket task: something to send, or a close request.
    pub(crate) wake: Notify,
    /// Serializes the callbacks of a plain-HTTP session (a WebSocket connection runs them in
    /// its own task).
    pub(crate) serial: tokio::sync::Mutex<()>,
    /// Set once `on_close` ran or is running.
    closed: AtomicBool,
    pub(crate) server: Weak<Shared>,
}

pub(crate) struct ConnState {
    pub(crate) agent: AgentState,
    prepared: VecDeque<PreparedMessage>,
    close: Option<CloseRequest>,
    /// The encoded WebSocket acknowledgement (header + `instance_uid` only), reused for every
    /// bare reply such as the answer to a heartbeat.
    ack: Option<Bytes>,
}

/// A request to close the connection, performed by its task (WebSocket) or by the server
/// (plain HTTP).
#[derive(Debug, Clone)]
pub(crate) struct CloseRequest {
    pub(crate) reason: CloseReason,
    pub(crate) code: CloseCode,
    pub(crate) message: &'static str,
}

/// What the WebSocket writer sends next.
pub(crate) enum Outgoing {
    Message(Box<ServerToAgent>),
    Frame(Bytes),
}

impl Connection {
    pub(crate) fn new(
        id: u64,
        transport: TransportKind,
        remote_addr: Option<SocketAddr>,
        callbacks: Arc<dyn ConnectionCallbacks>,
        agent: AgentState,
        server: Weak<Shared>,
    ) -> Self {
        Self {
            inner: Arc::new(ConnInner {
                id,
                transport,
                remote_addr,
                callbacks,
                state: Mutex::new(ConnState {
                    agent,
                    prepared: VecDeque::new(),
                    close: None,
                    ack: None,
                }),
                wake: Notify::new(),
                serial: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
                server,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A number unique among the server's connections.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The instance UID the agent uses, once it sent its first message.
    pub fn instance_uid(&self) -> Option<InstanceUid> {
        self.lock().agent.instance_uid()
    }

    /// The peer's address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// Plain HTTP or WebSocket.
    pub fn transport(&self) -> TransportKind {
        self.inner.transport
    }

    /// The agent's full current status: every sub-message at its last reported value. A
    /// snapshot: later messages do not change it.
    pub fn status(&self) -> Arc<AgentStatus> {
        Arc::clone(self.lock().agent.status())
    }

    /// What the agent's last message changed in its status.
    pub fn last_changes(&self) -> StatusChanges {
        self.lock().agent.last_changes()
    }

    /// When the agent's last message arrived (or the connection opened).
    pub fn last_seen(&self) -> Instant {
        self.lock().agent.liveness().last_seen()
    }

    /// Runs `f` on the protocol state of the agent (offers, liveness, …). Do not call other
    /// methods of this connection from `f`.
    pub fn with_state<R>(&self, f: impl FnOnce(&AgentState) -> R) -> R {
        f(&self.lock().agent)
    }

    /// True once the connection ended (its `on_close` ran or is running).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Sends `msg` to the agent: at once over WebSocket, with the reply to its next poll over
    /// plain HTTP. Whatever is not yet delivered is merged into one pending message.
    ///
    /// The server fills `instance_uid` and the capabilities, and drops what the agent's
    /// capabilities do not accept. Offers in `msg` become the agent's desired offers (see
    /// [`Connection::offer_remote_config`]). Errors: [`Error::CustomMessagePending`],
    /// [`Error::NotAccepted`] (e.g. a restart command to an agent without
    /// `AcceptsRestartCommand`), [`Error::ConnectionClosed`].
    pub fn send(&self, msg: ServerToAgent) -> Result<(), Error> {
        self.update(|agent| agent.queue(msg))
    }

    /// Makes `config` the agent's remote configuration: sent to an agent with
    /// `AcceptsRemoteConfig`, and sent again whenever it reports a different
    /// `last_remote_config_hash` (spec §"Configuration"). An empty `config_hash` is filled with
    /// [`crate::state::config_hash`].
    pub fn offer_remote_config(&self, config: AgentRemoteConfig) -> Result<(), Error> {
        self.update(|agent| {
            agent.offer_remote_config(config);
            Ok(())
        })
    }

    /// The remote configuration offered to the agent.
    pub fn remote_config(&self) -> Option<Arc<AgentRemoteConfig>> {
        self.lock().agent.remote_config().cloned()
    }

    /// Makes `packages` the agent's packages, offered while its
    /// `server_provided_all_packages_hash` differs (spec §"Packages").
    pub fn offer_packages(&self, packages: PackagesAvailable) -> Result<(), Error> {
        self.update(|agent| {
            agent.offer_packages(packages);
            Ok(())
        })
    }

    /// Makes `offers` the agent's connection settings, offered (the parts its capabilities
    /// accept) while its `last_connection_settings_hash` differs (spec §"Connection Settings
    /// Management").
    pub fn offer_connection_settings(&self, offers: ConnectionSettingsOffers) -> Result<(), Error> {
        self.update(|agent| {
            agent.offer_connection_settings(offers);
            Ok(())
        })
    }

    /// Sends a custom message (spec §"Custom Messages"). The agent must have advertised
    /// `message.capability`; one custom message at a time waits for delivery.
    pub fn send_custom_message(&self, message: CustomMessage) -> Result<(), Error> {
        self.send(ServerToAgent {
            custom_message: Some(message),
            ..Default::default()
        })
    }

    /// Asks the agent to restart (spec §"ServerToAgentCommand Message"); only for agents with
    /// `AcceptsRestartCommand`. The command travels in a message of its own.
    pub fn restart(&self) -> Result<(), Error> {
        self.send(ServerToAgent {
            command: Some(ServerToAgentCommand {
                r#type: opamp_proto::CommandType::Restart as i32,
            }),
            ..Default::default()
        })
    }

    /// Asks the agent to report its full state again (`ReportFullState`).
    pub fn request_full_state(&self) -> Result<(), Error> {
        self.send(ServerToAgent {
            flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
            ..Default::default()
        })
    }

    /// Gives the agent a new instance UID (a UUIDv7) through `agent_identification`; it is
    /// reachable under both UIDs until it switches.
    pub fn assign_instance_uid(&self) -> Result<InstanceUid, Error> {
        let new_uid =
            self.update(|agent| Ok(agent.assign_instance_uid(UidAssignmentReason::Embedder)))?;
        if let Some(server) = self.inner.server.upgrade() {
            server.claim_assigned(self, new_uid);
        }
        Ok(new_uid)
    }

    /// Ends the connection: a WebSocket gets a close frame (1000), a plain-HTTP session is
    /// forgotten (the agent's next poll starts a new one). `on_close` runs with
    /// [`CloseReason::Disconnected`].
    pub fn disconnect(&self) {
        self.request_close(CloseRequest {
            reason: CloseReason::Disconnected,
            code: CloseCode::Normal,
            message: "disconnected by the server",
        });
        if self.inner.transport == TransportKind::PlainHttp
            && let Some(server) = self.inner.server.upgrade()
        {
            server.end_http_session(self, CloseReason::Disconnected);
        }
    }

    // ---- crate internals ----

    /// Applies `f` to the agent state and wakes the writer.
    fn update<R>(&self, f: impl FnOnce(&mut AgentState) -> Result<R, Error>) -> Result<R, Error> {
        if self.is_closed() {
            return Err(Error::ConnectionClosed);
        }
        let result = {
            let mut state = self.lock();
            if state.close.is_some() {
                return Err(Error::ConnectionClosed);
            }
            f(&mut state.agent)?
        };
        self.inner.wake.notify_one();
        Ok(result)
    }

    /// Records a close request (the first one wins) and wakes the task.
    pub(crate) fn request_close(&self, request: CloseRequest) {
        {
            let mut state = self.lock();
            if state.close.is_none() {
                state.close = Some(request);
            }
        }
        self.inner.wake.notify_one();
    }

    pub(crate) fn take_close_request(&self) -> Option<CloseRequest> {
        self.lock().close.take()
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Marks the connection closed; true the first time (the caller runs `on_close`).
    pub(crate) fn mark_closed(&self) -> bool {
        !self.inner.closed.swap(true, Ordering::AcqRel)
    }

    /// Runs `on_close` unless it already ran.
    pub(crate) async fn finish(&self, reason: CloseReason) {
        if self.mark_closed() {
            tracing::debug!(conn = self.id(), uid = ?self.instance_uid(), ?reason, "connection closed");
            self.inner.callbacks.on_close(self, reason).await;
        }
    }

    /// Queues a prepared broadcast frame (WebSocket), merging the oldest into the pending
    /// message when too many wait.
    pub(crate) fn push_prepared(state: &mut ConnState, prepared: PreparedMessage) {
        if state.prepared.len() >= MAX_PREPARED
            && let Some(oldest) = state.prepared.pop_front()
        {
            let _ = state.agent.queue(oldest.message().clone());
        }
        state.prepared.push_back(prepared);
    }

    /// The WebSocket payload of a bare acknowledgement carrying `uid` (16 bytes), encoded once
    /// per connection.
    pub(crate) fn ack_frame(&self, uid: &[u8]) -> Bytes {
        let mut state = self.lock();
        match &state.ack {
            Some(frame) if frame.get(3..) == Some(uid) => frame.clone(),
            _ => {
                let mut frame = Vec::with_capacity(3 + uid.len());
                // WebSocket header 0, then field 1 (instance_uid, LEN) of 16 bytes.
                frame.extend_from_slice(&[0x00, 0x0A, 0x10]);
                frame.extend_from_slice(uid);
                let frame = Bytes::from(frame);
                state.ack = Some(frame.clone());
                frame
            }
        }
    }

    /// The next thing for the WebSocket writer to send, if any.
    pub(crate) fn next_outgoing(&self) -> Option<Outgoing> {
        let mut state = self.lock();
        if let Some(msg) = state.agent.push() {
            return Some(Outgoing::Message(Box::new(msg)));
        }
        let uid = state.agent.instance_uid()?;
        state
            .prepared
            .pop_front()
            .map(|p| Outgoing::Frame(p.frame_for(&uid)))
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for Connection {}

impl std::hash::Hash for Connection {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("transport", &self.inner.transport)
            .field("remote_addr", &self.inner.remote_addr)
            .field("instance_uid", &self.instance_uid())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::NoopConnectionCallbacks;
    use crate::state::StateConfig;
    use opamp_transport::codec::{Limits, decode_ws_message};

    fn conn() -> Connection {
        Connection::new(
            1,
            TransportKind::WebSocket,
            None,
            Arc::new(NoopConnectionCallbacks),
            AgentState::new(Arc::new(StateConfig::default()), Instant::now()),
            Weak::new(),
        )
    }

    #[test]
    fn ack_frame_is_a_bare_reply_and_follows_the_uid() {
        let conn = conn();
        for uid in [
            InstanceUid::from_array([1; 16]),
            InstanceUid::from_array([2; 16]),
        ] {
            let frame = conn.ack_frame(uid.as_bytes());
            let decoded: ServerToAgent = decode_ws_message(&frame, &Limits::default()).unwrap();
            assert_eq!(
                decoded,
                ServerToAgent {
                    instance_uid: uid.to_bytes(),
                    ..Default::default()
                }
            );
            // Cached: the same allocation is handed out again.
            assert_eq!(conn.ack_frame(uid.as_bytes()).as_ptr(), frame.as_ptr());
        }
    }

    #[test]
    fn prepared_frames_are_bounded_and_merged() {
        let conn = conn();
        let limits = Limits::default();
        {
            let mut state = conn.lock();
            for flag in 0..10u64 {
                let msg = ServerToAgent {
                    flags: 1 << flag,
                    ..Default::default()
                };
                Connection::push_prepared(&mut state, PreparedMessage::new(msg, &limits).unwrap());
            }
            assert_eq!(state.prepared.len(), MAX_PREPARED);
        }
        // Nothing goes out before the agent's first message.
        assert!(conn.next_outgoing().is_none());
        let first = opamp_proto::AgentToServer {
            instance_uid: InstanceUid::from_array([3; 16]).to_bytes(),
            ..Default::default()
        };
        conn.lock()
            .agent
            .handle_message(&first, Instant::now())
            .unwrap();
        // The six oldest were merged into the pending message, which rides on the reply; the
        // four frames follow.
        let reply = conn.lock().agent.respond(None);
        assert_eq!(reply.flags, (1 << 6) - 1);
        let mut flags = reply.flags;
        let mut count = 0;
        while let Some(out) = conn.next_outgoing() {
            count += 1;
            flags |= match out {
                Outgoing::Message(m) => m.flags,
                Outgoing::Frame(f) => {
                    decode_ws_message::<ServerToAgent>(&f, &limits)
                        .unwrap()
                        .flags
                }
            };
        }
        assert_eq!(count, MAX_PREPARED);
        assert_eq!(flags, (1 << 10) - 1);
    }

    #[test]
    fn closed_connections_refuse_sends() {
        let conn = conn();
        conn.disconnect();
        assert!(conn.close_requested());
        assert!(matches!(
            conn.send(ServerToAgent::default()),
            Err(Error::ConnectionClosed)
        ));
        assert!(conn.take_close_request().is_some());
        assert!(conn.mark_closed());
        assert!(!conn.mark_closed());
        assert!(conn.is_closed());
    }
}
