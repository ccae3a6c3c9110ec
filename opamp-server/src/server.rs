//! [`Server`]: the entry point, and the state shared by all connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use opamp_proto::{AgentRemoteConfig, InstanceUid, ServerToAgent};
use opamp_transport::codec::{Limits, TransportKind};
use opamp_transport::ws::{CloseCode, WsConfig};

use crate::Error;
use crate::broadcast::{BroadcastReport, Delivery, PreparedMessage};
use crate::callbacks::{Callbacks, CloseReason, ConnectionCallbacks};
use crate::connection::{CloseRequest, ConnState, Connection};
use crate::gate::Gate;
use crate::service::OpampService;
use crate::settings::ServerSettings;
use crate::state::{
    AgentState, Claim, DuplicateUidPolicy, MessageOutcome, StateConfig, UidAssignmentReason,
    UidRegistry,
};

/// An OpAMP server: serves agents over WebSocket and plain HTTP on one endpoint, applies the
/// protocol's rules for every agent, and calls the embedder's [`Callbacks`].
///
/// Run it standalone with [`Server::start`], or mount [`Server::attach`] into an existing
/// axum `Router` or hyper server. [`Server::shutdown`] (opamp-go's `Stop`) closes everything;
/// no callback runs after it returns. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr())
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// Connections by id and owners of instance UIDs.
#[derive(Default)]
struct Fleet {
    by_uid: UidRegistry<u64>,
    conns: HashMap<u64, Connection>,
}

/// What registering a connection's UID decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// The connection owns its UID (or a new one was assigned).
    Registered,
    /// A duplicate that the policy lets live without owning the UID.
    Unregistered,
    /// A duplicate that the policy rejects.
    Rejected,
}

pub(crate) struct Shared {
    pub(crate) settings: ServerSettings,
    pub(crate) limits: Limits,
    pub(crate) ws_config: WsConfig,
    pub(crate) ws_state: Arc<StateConfig>,
    pub(crate) http_state: Arc<StateConfig>,
    pub(crate) callbacks: Arc<dyn Callbacks>,
    fleet: Mutex<Fleet>,
    pub(crate) gate: Arc<Gate>,
    next_id: AtomicU64,
    /// Load shedding: retry-after in nanoseconds, 0 when off.
    shedding_nanos: AtomicU64,
    runtime: OnceLock<tokio::runtime::Handle>,
    sweeper_started: AtomicBool,
    listener_started: AtomicBool,
    pub(crate) stop: CancellationToken,
    local_addr: OnceLock<SocketAddr>,
    listener_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    self_ref: Weak<Shared>,
}

impl Server {
    /// A server with `settings`, calling `callbacks`. Nothing listens until
    /// [`Server::start`]; [`Server::attach`] works at once.
    pub fn new(settings: ServerSettings, callbacks: impl Callbacks) -> Result<Self, Error> {
        Self::with_shared_callbacks(settings, Arc::new(callbacks))
    }

    /// Like [`Server::new`] with shared callbacks.
    pub fn with_shared_callbacks(
        settings: ServerSettings,
        callbacks: Arc<dyn Callbacks>,
    ) -> Result<Self, Error> {
        settings.validate()?;
        let shared = Arc::new_cyclic(|self_ref| Shared {
            limits: settings.limits(),
            ws_config: settings.ws_config(),
            ws_state: Arc::new(settings.state_config(false)),
            http_state: Arc::new(settings.state_config(true)),
            settings,
            callbacks,
            fleet: Mutex::new(Fleet::default()),
            gate: Arc::new(Gate::default()),
            next_id: AtomicU64::new(1),
            shedding_nanos: AtomicU64::new(0),
            runtime: OnceLock::new(),
            sweeper_started: AtomicBool::new(false),
            listener_started: AtomicBool::new(false),
            stop: CancellationToken::new(),
            local_addr: OnceLock::new(),
            listener_task: Mutex::new(None),
            self_ref: self_ref.clone(),
        });
        Ok(Self { shared })
    }

    /// The settings in force.
    pub fn settings(&self) -> &ServerSettings {
        &self.shared.settings
    }

    /// Binds [`ServerSettings::listen_addr`] and serves [`ServerSettings::path`] (with TLS
    /// when [`ServerSettings::tls`] is set) in background tasks; returns the bound address.
    /// Needs a tokio runtime with IO and time enabled.
    pub async fn start(&self) -> Result<SocketAddr, Error> {
        if self.shared.stop.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        if self.shared.listener_started.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyStarted);
        }
        self.shared.remember_runtime();
        let listener = match bind(
            self.shared.settings.listen_addr,
            self.shared.settings.listen_backlog,
        ) {
            Ok(listener) => listener,
            Err(err) => {
                self.shared.listener_started.store(false, Ordering::Release);
                return Err(Error::Io(err));
            }
        };
        let addr = listener.local_addr()?;
        let _ = self.shared.local_addr.set(addr);
        let task = crate::service::listener::spawn(Arc::clone(&self.shared), listener)?;
        *lock(&self.shared.listener_task) = Some(task);
        tracing::info!(%addr, path = %self.shared.settings.path, "OpAMP server listening");
        Ok(addr)
    }

    /// The address [`Server::start`] bound, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr.get().copied()
    }

    /// A `tower` service answering OpAMP requests (both transports), to mount into another
    /// server, e.g. `axum::Router::new().route_service("/v1/opamp", server.attach())`. The
    /// hyper server under it must serve connections with upgrades (axum does).
    pub fn attach(&self) -> OpampService {
        OpampService::new(Arc::clone(&self.shared))
    }

    /// Stops the server (opamp-go's `Stop`): stops accepting connections, sends every
    /// WebSocket a close frame (1001 Going Away), waits for running callbacks, runs `on_close`
    /// for every connection and plain-HTTP session, and returns. No callback runs afterwards;
    /// requests arriving later are answered 503.
    #[doc(alias = "stop")]
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        shared.stop.cancel();
        shared.gate.close();
        for conn in shared.snapshot() {
            if conn.transport() == TransportKind::WebSocket {
                conn.request_close(CloseRequest {
                    reason: CloseReason::ServerShutdown,
                    code: CloseCode::Away,
                    message: "server shutting down",
                });
            }
        }
        shared.gate.wait_idle().await;
        for conn in shared.snapshot() {
            shared.remove(&conn);
            let _serial = conn.inner.serial.lock().await;
            conn.finish(CloseReason::ServerShutdown).await;
        }
        let task = lock(&shared.listener_task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        tracing::info!("OpAMP server stopped");
    }

    /// The connection of the agent with `uid` (also found under a UID it was assigned and
    /// has not adopted yet).
    pub fn connection(&self, uid: &InstanceUid) -> Option<Connection> {
        self.shared.lookup(uid)
    }

    /// Every open connection and plain-HTTP session.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared.snapshot()
    }

    /// Number of open connections and plain-HTTP sessions.
    pub fn connection_count(&self) -> usize {
        self.shared.fleet().conns.len()
    }

    /// Encodes `message` once for a fleet-wide send (see [`PreparedMessage::new`]).
    pub fn prepare(&self, message: ServerToAgent) -> Result<PreparedMessage, Error> {
        PreparedMessage::new(message, &self.shared.limits)
    }

    /// Sends `message` to every agent; never waits on any agent. See
    /// [`Server::broadcast_where`].
    pub fn broadcast(&self, message: &PreparedMessage) -> BroadcastReport {
        self.broadcast_where(message, |_| true)
    }

    /// Sends `message` to every agent for which `filter` is true, without waiting on any of
    /// them: WebSocket agents that accept all of it get the shared frame (one copy of the
    /// shared bytes plus their UID) through their writer; others get it merged into their
    /// pending message (plain-HTTP agents on their next poll), with what they do not accept
    /// removed. Offers in it become each agent's desired offers.
    pub fn broadcast_where(
        &self,
        message: &PreparedMessage,
        filter: impl FnMut(&Connection) -> bool,
    ) -> BroadcastReport {
        self.deliver_where(filter, |conn, state| {
            let framed = conn.transport() == TransportKind::WebSocket
                && state.agent.first_response_sent()
                && message.fits(state.agent.status());
            if framed {
                if let Some(config) = message.remote_config() {
                    state.agent.set_remote_config(Arc::clone(config));
                    state.agent.mark_remote_config_sent();
                }
                if let Some(packages) = message.packages() {
                    state.agent.set_packages(Arc::clone(packages));
                    state.agent.mark_packages_sent();
                }
                Connection::push_prepared(state, message.clone());
                Delivery::Framed
            } else if state.agent.queue(message.message().clone()).is_ok() {
                Delivery::Queued
            } else {
                Delivery::Skipped
            }
        })
    }

    /// Makes `config` the remote configuration of every agent (see
    /// [`Server::offer_remote_config_where`]).
    pub fn offer_remote_config_to_all(&self, config: AgentRemoteConfig) -> BroadcastReport {
        self.offer_remote_config_where(config, |_| true)
    }

    /// Makes `config` the remote configuration of every agent for which `filter` is true
    /// (e.g. by an identifying attribute of [`Connection::status`]). The message is encoded
    /// once; WebSocket agents that need it get it at once, plain-HTTP agents on their next
    /// poll, agents that already report its hash get nothing, and each is offered it again
    /// while it reports another hash. Never waits on any agent.
    pub fn offer_remote_config_where(
        &self,
        config: AgentRemoteConfig,
        filter: impl FnMut(&Connection) -> bool,
    ) -> BroadcastReport {
        let config = Arc::new(crate::state::with_config_hash(config));
        let mut prepared: Option<Option<PreparedMessage>> = None;
        self.deliver_where(filter, |conn, state| {
            state.agent.set_remote_config(Arc::clone(&config));
            if !state.agent.remote_config_due() {
                return Delivery::Skipped;
            }
            if conn.transport() == TransportKind::WebSocket && state.agent.first_response_sent() {
                let frame = prepared.get_or_insert_with(|| {
                    let msg = ServerToAgent {
                        remote_config: Some(AgentRemoteConfig::clone(&config)),
                        ..Default::default()
                    };
                    PreparedMessage::new(msg, &self.shared.limits)
                        .map_err(|err| tracing::warn!(%err, "remote config cannot be broadcast"))
                        .ok()
                });
                if let Some(frame) = frame {
                    state.agent.mark_remote_config_sent();
                    Connection::push_prepared(state, frame.clone());
                    Delivery::Framed
                } else {
                    Delivery::Skipped
                }
            } else {
                Delivery::Queued
            }
        })
    }

    /// The loop of the fleet-wide sends: runs `deliver` with the state of every open
    /// connection for which `filter` is true, wakes the connections it handed something to
    /// and counts the outcomes (closed and filtered-out connections count as skipped).
    fn deliver_where(
        &self,
        mut filter: impl FnMut(&Connection) -> bool,
        mut deliver: impl FnMut(&Connection, &mut ConnState) -> Delivery,
    ) -> BroadcastReport {
        let mut report = BroadcastReport::default();
        for conn in self.shared.snapshot() {
            if conn.is_closed() || !filter(&conn) {
                report.skipped += 1;
                continue;
            }
            let delivery = deliver(&conn, &mut conn.lock());
            match delivery {
                Delivery::Framed => report.framed += 1,
                Delivery::Queued => report.queued += 1,
                Delivery::Skipped => report.skipped += 1,
            }
            if delivery != Delivery::Skipped {
                conn.inner.wake.notify_one();
            }
        }
        report
    }

    /// Load shedding: while `Some(retry_after)`, new WebSocket upgrades and plain-HTTP
    /// requests are answered `503` with `Retry-After`, and messages on open WebSocket
    /// connections get an `UNAVAILABLE` error response with `retry_info` (spec
    /// §"Throttling"). `None` serves normally again.
    pub fn set_load_shedding(&self, retry_after: Option<Duration>) {
        let nanos = retry_after.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.shared.shedding_nanos.store(nanos, Ordering::Release);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn fleet(&self) -> MutexGuard<'_, Fleet> {
        lock(&self.fleet)
    }

    pub(crate) fn remember_runtime(&self) {
        if self.runtime.get().is_none()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let _ = self.runtime.set(handle);
        }
    }

    /// Spawns `future` on the server's runtime (the current one, or the one it was started
    /// or first used on).
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(future);
            }
            Err(_) => match self.runtime.get() {
                Some(handle) => {
                    handle.spawn(future);
                }
                None => tracing::warn!("no tokio runtime to run a server task on"),
            },
        }
    }

    pub(crate) fn shedding(&self) -> Option<Duration> {
        match self.shedding_nanos.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    pub(crate) fn at_capacity(&self) -> bool {
        self.settings
            .max_connections
            .is_some_and(|max| self.fleet().conns.len() >= max)
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new connection, registered unless the server is at capacity.
    pub(crate) fn new_connection(
        &self,
        transport: TransportKind,
        remote_addr: Option<SocketAddr>,
        callbacks: Arc<dyn ConnectionCallbacks>,
    ) -> Option<Connection> {
        let config = match transport {
            TransportKind::PlainHttp => Arc::clone(&self.http_state),
            TransportKind::WebSocket => Arc::clone(&self.ws_state),
        };
        let mut fleet = self.fleet();
        if self
            .settings
            .max_connections
            .is_some_and(|max| fleet.conns.len() >= max)
        {
            return None;
        }
        let conn = Connection::new(
            self.new_id(),
            transport,
            remote_addr,
            callbacks,
            AgentState::new(config, Instant::now()),
            self.self_ref.clone(),
        );
        fleet.conns.insert(conn.id(), conn.clone());
        drop(fleet);
        if transport == TransportKind::PlainHttp {
            self.start_sweeper();
        }
        Some(conn)
    }

    /// The plain-HTTP session of `uid`, or a new one (`true`). `None` at capacity.
    pub(crate) fn http_session(
        &self,
        uid: InstanceUid,
        remote_addr: Option<SocketAddr>,
        callbacks: Arc<dyn ConnectionCallbacks>,
    ) -> Option<(Connection, bool)> {
        {
            let fleet = self.fleet();
            if let Some(conn) = fleet.by_uid.owner(&uid).and_then(|id| fleet.conns.get(id))
                && conn.transport() == TransportKind::PlainHttp
                && !conn.is_closed()
                && !conn.close_requested()
            {
                return Some((conn.clone(), false));
            }
        }
        self.new_connection(TransportKind::PlainHttp, remote_addr, callbacks)
            .map(|c| (c, true))
    }

    /// Forgets `conn` and the UIDs it owns.
    pub(crate) fn remove(&self, conn: &Connection) {
        let (current, assigned) = {
            let state = conn.lock();
            (
                state.agent.instance_uid(),
                state.agent.assigned_instance_uid().map(|(uid, _)| uid),
            )
        };
        let mut fleet = self.fleet();
        fleet.conns.remove(&conn.id());
        for uid in [current, assigned].into_iter().flatten() {
            fleet.by_uid.release(uid, &conn.id());
        }
    }

    pub(crate) fn lookup(&self, uid: &InstanceUid) -> Option<Connection> {
        let fleet = self.fleet();
        fleet
            .by_uid
            .owner(uid)
            .and_then(|id| fleet.conns.get(id))
            .cloned()
    }

    pub(crate) fn snapshot(&self) -> Vec<Connection> {
        self.fleet().conns.values().cloned().collect()
    }

    /// Registers a UID the embedder assigned.
    pub(crate) fn claim_assigned(&self, conn: &Connection, uid: InstanceUid) {
        let _ = self.fleet().by_uid.claim(uid, conn.id());
    }

    /// Records the UIDs a message revealed and applies the duplicate policy.
    pub(crate) fn register(&self, conn: &Connection, outcome: &MessageOutcome) -> Registration {
        let me = conn.id();
        let held_by = {
            let mut fleet = self.fleet();
            if let Some((old, new)) = outcome.adopted {
                fleet.by_uid.release(old, &me);
                let _ = fleet.by_uid.claim(new, me);
            }
            if let Some(new) = outcome.assigned {
                let _ = fleet.by_uid.claim(new, me);
            }
            if !outcome.first {
                return Registration::Registered;
            }
            match fleet.by_uid.claim(outcome.instance_uid, me) {
                Claim::Claimed | Claim::AlreadyOwned => return Registration::Registered,
                Claim::HeldBy(other) => match fleet.conns.get(&other) {
                    Some(other) if !other.is_closed() && !other.close_requested() => other.clone(),
                    _ => {
                        // The owner is on its way out: take the UID over.
                        fleet.by_uid.take_over(outcome.instance_uid, me);
                        return Registration::Registered;
                    }
                },
            }
        };
        let uid = outcome.instance_uid;
        let policy = self.settings.duplicate_uid_policy;
        tracing::warn!(%uid, existing = held_by.id(), newcomer = me, ?policy, "duplicate instance_uid");
        match policy {
            DuplicateUidPolicy::AssignNewUid => {
                let new = conn
                    .lock()
                    .agent
                    .assign_instance_uid(UidAssignmentReason::Duplicate);
                let _ = self.fleet().by_uid.claim(new, me);
                Registration::Registered
            }
            DuplicateUidPolicy::Reject => Registration::Rejected,
            DuplicateUidPolicy::Allow => Registration::Unregistered,
            DuplicateUidPolicy::ReplaceExisting => {
                self.fleet().by_uid.take_over(uid, me);
                held_by.request_close(CloseRequest {
                    reason: CloseReason::DuplicateInstanceUid,
                    code: CloseCode::Policy,
                    message: "instance_uid taken over by a new connection",
                });
                if held_by.transport() == TransportKind::PlainHttp {
                    self.end_http_session(&held_by, CloseReason::DuplicateInstanceUid);
                }
                Registration::Registered
            }
        }
    }

    /// Ends a plain-HTTP session: forgets it now, runs `on_close` in a task (serialized with
    /// its other callbacks).
    pub(crate) fn end_http_session(&self, conn: &Connection, reason: CloseReason) {
        self.remove(conn);
        let Some(guard) = self.gate.enter() else {
            return;
        };
        let conn = conn.clone();
        self.spawn(async move {
            let _guard = guard;
            let _serial = conn.inner.serial.lock().await;
            conn.finish(reason).await;
        });
    }

    /// Starts the task that reports silent plain-HTTP agents gone (once).
    fn start_sweeper(&self) {
        if self.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let period = (self
            .http_state
            .heartbeat_interval
            .unwrap_or(crate::state::DEFAULT_HEARTBEAT_INTERVAL)
            / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(5));
        let weak = self.self_ref.clone();
        let stop = self.stop.clone();
        self.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Some(shared) = weak.upgrade() else { return };
                let now = Instant::now();
                let gone: Vec<Connection> = shared
                    .fleet()
                    .conns
                    .values()
                    .filter(|c| c.transport() == TransportKind::PlainHttp && c.lock().agent.is_gone(now))
                    .cloned()
                    .collect();
                for conn in gone {
                    tracing::debug!(conn = conn.id(), uid = ?conn.instance_uid(), "plain-HTTP agent gone");
                    shared.end_http_session(&conn, CloseReason::Gone);
                }
            }
        });
    }
}

/// Binds a listening socket with `backlog` pending connections at most (the kernel caps it at
/// `net.core.somaxconn`); address reuse lets a restarted server bind while old connections of
/// the previous one linger in `TIME_WAIT`.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
