//! Test harness: a recording embedder and test agents written on opamp-transport only.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opamp_server::proto::{
    AgentCapabilities, AgentDescription, AgentToServer, InstanceUid, ServerToAgent,
};
use opamp_server::{
    Callbacks, CloseReason, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse,
    Error, Server, ServerSettings, TransportKind, async_trait,
};
use opamp_transport::http::{HttpClient, HttpClientSettings, HttpRequestOptions};
use opamp_transport::ws::{ClientWsConnection, WsConnectOptions, connect};
use tokio::sync::Notify;

/// Generous limit used only to avoid hanging forever.
pub const LIMIT: Duration = Duration::from_secs(30);

pub const API_KEY: &str = "x-api-key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connecting(TransportKind),
    Connected(u64),
    Message { conn: u64, seq: u64 },
    Closed { conn: u64, reason: CloseReason },
    ReadError { conn: u64, error: String },
    ResponseError { conn: u64 },
}

type OnMessage = dyn Fn(&Connection, &AgentToServer) -> Option<ServerToAgent> + Send + Sync;

/// Records every callback; optionally requires an API key and answers messages.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    events: Mutex<Vec<Event>>,
    changed: Notify,
    require_key: bool,
    on_message: Option<Box<OnMessage>>,
    /// Callbacks running right now, and the most seen at once per connection.
    running: Mutex<std::collections::HashMap<u64, usize>>,
    overlap: std::sync::atomic::AtomicBool,
    slow_message: Option<Duration>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn requiring_key() -> Self {
        Self::build(true, None, None)
    }

    pub fn with_on_message(
        f: impl Fn(&Connection, &AgentToServer) -> Option<ServerToAgent> + Send + Sync + 'static,
    ) -> Self {
        Self::build(false, Some(Box::new(f)), None)
    }

    pub fn slow(delay: Duration) -> Self {
        Self::build(false, None, Some(delay))
    }

    fn build(
        require_key: bool,
        on_message: Option<Box<OnMessage>>,
        slow: Option<Duration>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                require_key,
                on_message,
                slow_message: slow,
                ..Default::default()
            }),
        }
    }

    fn push(&self, event: Event) {
        self.inner.events.lock().unwrap().push(event);
        self.inner.changed.notify_waiters();
    }

    pub fn events(&self) -> Vec<Event> {
        self.inner.events.lock().unwrap().clone()
    }

    /// True if two callbacks of one connection ever overlapped.
    pub fn saw_overlap(&self) -> bool {
        self.inner.overlap.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits (at most [`LIMIT`]) until `pred` holds for the events.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let wait = async {
            loop {
                let notified = self.inner.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if pred(&self.inner.events.lock().unwrap()) {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(LIMIT, wait).await.is_err() {
            panic!("timed out waiting for {what}; events: {:?}", self.events());
        }
    }

    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.inner
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }

    fn enter(&self, conn: &Connection) {
        let mut running = self.inner.running.lock().unwrap();
        let n = running.entry(conn.id()).or_default();
        *n += 1;
        if *n > 1 {
            self.inner
                .overlap
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn leave(&self, conn: &Connection) {
        let mut running = self.inner.running.lock().unwrap();
        if let Some(n) = running.get_mut(&conn.id()) {
            *n -= 1;
        }
    }
}

#[async_trait]
impl Callbacks for Recorder {
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
        self.push(Event::Connecting(request.transport()));
        if self.inner.require_key && request.header_str(API_KEY).is_none_or(str::is_empty) {
            return ConnectionResponse::unauthorized();
        }
        ConnectionResponse::accept(self.clone())
    }
}

#[async_trait]
impl ConnectionCallbacks for Recorder {
    async fn on_connected(&self, conn: &Connection) {
        self.enter(conn);
        self.push(Event::Connected(conn.id()));
        self.leave(conn);
    }

    async fn on_message(
        &self,
        conn: &Connection,
        message: &AgentToServer,
    ) -> Option<ServerToAgent> {
        self.enter(conn);
        if let Some(delay) = self.inner.slow_message {
            tokio::time::sleep(delay).await;
        }
        self.push(Event::Message {
            conn: conn.id(),
            seq: message.sequence_num,
        });
        let reply = self
            .inner
            .on_message
            .as_ref()
            .and_then(|f| f(conn, message));
        self.leave(conn);
        reply
    }

    async fn on_close(&self, conn: &Connection, reason: CloseReason) {
        self.enter(conn);
        self.push(Event::Closed {
            conn: conn.id(),
            reason,
        });
        self.leave(conn);
    }

    async fn on_read_message_error(&self, conn: &Connection, error: &Error) {
        self.enter(conn);
        self.push(Event::ReadError {
            conn: conn.id(),
            error: error.to_string(),
        });
        self.leave(conn);
    }

    async fn on_message_response_error(&self, conn: &Connection, _: &ServerToAgent, _: &Error) {
        self.push(Event::ResponseError { conn: conn.id() });
    }
}

/// Starts a server on 127.0.0.1:0.
pub async fn start(settings: ServerSettings, recorder: Recorder) -> (Server, SocketAddr) {
    let settings = settings.with_listen_addr("127.0.0.1:0".parse().unwrap());
    let server = Server::new(settings, recorder).unwrap();
    let addr = server.start().await.unwrap();
    (server, addr)
}

pub fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/v1/opamp")
}

pub fn http_url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1/opamp")
}

pub fn caps() -> AgentCapabilities {
    AgentCapabilities::REPORTS_STATUS
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_HEALTH
}

/// A full status report.
pub fn full_status(uid: InstanceUid, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: seq,
        capabilities: caps().bits(),
        agent_description: Some(
            AgentDescription::builder()
                .service_name("test-agent")
                .identifying("environment", "test")
                .build(),
        ),
        ..Default::default()
    }
}

/// A heartbeat (compressed report: everything unchanged omitted).
pub fn heartbeat(uid: InstanceUid, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: seq,
        capabilities: caps().bits(),
        ..Default::default()
    }
}

pub async fn ws_agent(addr: SocketAddr) -> ClientWsConnection {
    ws_agent_with(addr, WsConnectOptions::default()).await
}

pub async fn ws_agent_with(addr: SocketAddr, options: WsConnectOptions) -> ClientWsConnection {
    let (conn, _) = tokio::time::timeout(LIMIT, connect(&ws_url(addr), &options))
        .await
        .expect("connect timed out")
        .expect("connect");
    conn
}

/// Receives the next message (at most [`LIMIT`]).
pub async fn recv(ws: &mut ClientWsConnection) -> ServerToAgent {
    tokio::time::timeout(LIMIT, ws.recv::<ServerToAgent>())
        .await
        .expect("recv timed out")
        .expect("recv failed")
        .expect("connection closed")
}

/// Sends `msg` and returns the reply.
pub async fn exchange(ws: &mut ClientWsConnection, msg: &AgentToServer) -> ServerToAgent {
    ws.send(msg).await.expect("send");
    recv(ws).await
}

/// A plain-HTTP agent.
pub struct HttpAgent {
    pub client: HttpClient,
    pub url: String,
    pub options: HttpRequestOptions,
}

impl HttpAgent {
    pub fn new(addr: SocketAddr, uid: InstanceUid) -> Self {
        Self {
            client: HttpClient::new(&HttpClientSettings::default()),
            url: http_url(addr),
            options: HttpRequestOptions::default()
                .with_instance_uid(uid.to_string())
                .with_timeout(LIMIT),
        }
    }

    pub async fn post(&self, msg: &AgentToServer) -> Result<ServerToAgent, opamp_transport::Error> {
        self.client
            .round_trip::<_, ServerToAgent>(&self.url, msg, &self.options)
            .await
            .map(|r| r.message)
    }
}

/// Installs a tracing subscriber once (RUST_LOG controls it).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
