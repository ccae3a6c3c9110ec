//! A scripted OpAMP server for the client's integration tests, written with opamp-transport
//! only. One listener on `127.0.0.1:0` serves both transports: plain HTTP (by
//! `Content-Type: application/x-protobuf`) and WebSocket upgrades. The test scripts the
//! answers through [`TestServer::control`] and watches what the client did through
//! [`TestServer::next`].

#![allow(dead_code, unreachable_pub, clippy::large_enum_variant)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opamp_client::proto::{AgentToServer, ServerToAgent};
use opamp_transport::codec::Limits;
use opamp_transport::http::{ServerHttpBody, error_response, protobuf_response, read_request};
use opamp_transport::ws::{self, CloseCode, PendingWsUpgrade, WsConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Generous limit for anything the tests wait for (the machine may be slow and shared).
pub const WAIT: Duration = Duration::from_secs(20);

/// A reply to one plain-HTTP request.
#[derive(Debug, Clone)]
pub enum HttpReply {
    Message(ServerToAgent),
    Status(StatusCode, Option<Duration>),
}

/// What the server pushes to the current WebSocket connection.
#[derive(Debug, Clone)]
pub enum Push {
    Message(ServerToAgent),
    /// Close the connection (the server side of a broken connection).
    Close,
}

/// Scripted behaviour; queues are consumed front first, defaults apply when they are empty.
#[derive(Debug, Default)]
pub struct Script {
    /// Refuse the next upgrades with these statuses (and `Retry-After`).
    pub upgrade_refusals: VecDeque<(StatusCode, Option<Duration>)>,
    /// Answer the next HTTP requests with these; default: an acknowledgement.
    pub http_replies: VecDeque<HttpReply>,
    /// Answer the next WebSocket messages with these; default: an acknowledgement.
    pub ws_replies: VecDeque<ServerToAgent>,
    /// Accept the next upgrades, then never read or write (a half-open connection).
    pub ws_silent: usize,
    /// Do not answer WebSocket messages at all.
    pub ws_no_ack: bool,
    /// Close every WebSocket connection right after its first message was answered.
    pub ws_close_after_first: bool,
}

/// What the server saw.
#[derive(Debug, Clone)]
pub enum Seen {
    Upgrade {
        conn: usize,
        headers: HeaderMap,
        at: Instant,
        refused: Option<StatusCode>,
    },
    Http {
        headers: HeaderMap,
        msg: AgentToServer,
        at: Instant,
    },
    Ws {
        conn: usize,
        msg: AgentToServer,
        at: Instant,
    },
    WsClosed {
        conn: usize,
        at: Instant,
    },
}

impl Seen {
    pub fn at(&self) -> Instant {
        match self {
            Seen::Upgrade { at, .. }
            | Seen::Http { at, .. }
            | Seen::Ws { at, .. }
            | Seen::WsClosed { at, .. } => *at,
        }
    }

    /// The `AgentToServer` of an HTTP request or WebSocket message.
    pub fn message(&self) -> Option<&AgentToServer> {
        match self {
            Seen::Http { msg, .. } | Seen::Ws { msg, .. } => Some(msg),
            _ => None,
        }
    }
}

struct Inner {
    script: Mutex<Script>,
    seen: mpsc::Sender<Seen>,
    push: Mutex<Option<mpsc::Sender<Push>>>,
    conns: AtomicUsize,
}

pub struct TestServer {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    seen: tokio::sync::Mutex<mpsc::Receiver<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An acknowledgement: only the instance UID (and the server capabilities).
pub fn ack(msg: &AgentToServer) -> ServerToAgent {
    ServerToAgent {
        instance_uid: msg.instance_uid.clone(),
        capabilities: 0x7f,
        ..Default::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_inner(None).await
    }

    /// A server that speaks TLS (`wss://`, `https://`).
    pub async fn start_tls(tls: opamp_transport::tls::TlsServerSettings) -> TestServer {
        let acceptor = opamp_transport::tls::TlsAcceptor::from_settings(&tls).unwrap();
        Self::start_inner(Some(acceptor)).await
    }

    async fn start_inner(acceptor: Option<opamp_transport::tls::TlsAcceptor>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(4096);
        let inner = Arc::new(Inner {
            script: Mutex::new(Script::default()),
            seen: tx,
            push: Mutex::new(None),
            conns: AtomicUsize::new(0),
        });
        let served = Arc::clone(&inner);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let inner = Arc::clone(&served);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, Arc::clone(&inner)));
                    let builder = http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(tcp), service)
                                .with_upgrades()
                                .await;
                        }
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection(TokioIo::new(tls), service)
                                .with_upgrades()
                                .await;
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            inner,
            seen: tokio::sync::Mutex::new(rx),
            task,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/opamp", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/v1/opamp", self.addr)
    }

    /// The `wss://` URL under the name `localhost` (what test certificates are issued for).
    pub fn wss_url(&self) -> String {
        format!("wss://localhost:{}/v1/opamp", self.addr.port())
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}/v1/opamp", self.addr.port())
    }

    /// Changes the script.
    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.inner.script.lock().unwrap());
    }

    /// Pushes to the current WebSocket connection.
    pub async fn push(&self, push: Push) {
        let sender = self.inner.push.lock().unwrap().clone();
        sender
            .expect("no WebSocket connection")
            .send(push)
            .await
            .expect("connection gone");
    }

    /// The next thing the server saw (fails the test after [`WAIT`]).
    pub async fn next(&self) -> Seen {
        let mut rx = self.seen.lock().await;
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("timed out waiting for the client")
            .expect("server gone")
    }

    /// The next `AgentToServer`, skipping upgrades and closes.
    pub async fn next_message(&self) -> AgentToServer {
        loop {
            if let Some(msg) = self.next().await.message() {
                return msg.clone();
            }
        }
    }

    /// The next event matching `pred`, skipping others.
    pub async fn next_matching(&self, pred: impl Fn(&Seen) -> bool) -> Seen {
        loop {
            let seen = self.next().await;
            if pred(&seen) {
                return seen;
            }
        }
    }

    /// Nothing more seen within `within`.
    pub async fn assert_quiet(&self, within: Duration) {
        let mut rx = self.seen.lock().await;
        if let Ok(Some(seen)) = tokio::time::timeout(within, rx.recv()).await {
            panic!("unexpected: {seen:?}");
        }
    }
}

async fn handle(
    mut req: Request<Incoming>,
    inner: Arc<Inner>,
) -> Result<Response<ServerHttpBody>, Infallible> {
    let limits = Limits::default();
    let is_http = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/x-protobuf");
    if is_http {
        let headers = req.headers().clone();
        let msg: AgentToServer = match read_request(req, &limits).await {
            Ok((_, msg)) => msg,
            Err(err) => return Ok(opamp_transport::http::error_response_for(&err)),
        };
        let reply = inner.script.lock().unwrap().http_replies.pop_front();
        let _ = inner
            .seen
            .send(Seen::Http {
                headers,
                msg: msg.clone(),
                at: Instant::now(),
            })
            .await;
        return Ok(
            match reply.unwrap_or_else(|| HttpReply::Message(ack(&msg))) {
                HttpReply::Message(reply) => protobuf_response(&reply, false, &limits).unwrap(),
                HttpReply::Status(status, retry_after) => error_response(status, retry_after),
            },
        );
    }
    let conn = inner.conns.fetch_add(1, Ordering::SeqCst);
    let (refusal, silent) = {
        let mut script = inner.script.lock().unwrap();
        let refusal = script.upgrade_refusals.pop_front();
        let silent = refusal.is_none() && script.ws_silent > 0;
        if silent {
            script.ws_silent -= 1;
        }
        (refusal, silent)
    };
    let _ = inner
        .seen
        .send(Seen::Upgrade {
            conn,
            headers: req.headers().clone(),
            at: Instant::now(),
            refused: refusal.map(|(s, _)| s),
        })
        .await;
    if let Some((status, retry_after)) = refusal {
        return Ok(error_response(status, retry_after));
    }
    match ws::accept(&mut req, WsConfig::default()) {
        Ok((response, pending)) => {
            tokio::spawn(ws_connection(conn, pending, inner, silent));
            Ok(response)
        }
        Err(err) => Ok(ws::upgrade_error_response(&err)),
    }
}

async fn ws_connection(conn: usize, pending: PendingWsUpgrade, inner: Arc<Inner>, silent: bool) {
    let Ok(connection) = pending.connection().await else {
        return;
    };
    if silent {
        // Keep the socket open without ever reading: pings go unanswered.
        tokio::time::sleep(Duration::from_secs(120)).await;
        drop(connection);
        return;
    }
    let (push_tx, mut push_rx) = mpsc::channel(64);
    *inner.push.lock().unwrap() = Some(push_tx);
    let (mut tx, mut rx) = connection.split();
    let mut answered = 0usize;
    loop {
        tokio::select! {
            received = rx.recv::<AgentToServer>() => match received {
                Ok(Some(msg)) => {
                    let _ = inner.seen.send(Seen::Ws { conn, msg: msg.clone(), at: Instant::now() }).await;
                    let (no_ack, reply, close_after_first) = {
                        let mut script = inner.script.lock().unwrap();
                        (script.ws_no_ack, script.ws_replies.pop_front(), script.ws_close_after_first)
                    };
                    if msg.agent_disconnect.is_some() || no_ack {
                        continue;
                    }
                    if tx.send(&reply.unwrap_or_else(|| ack(&msg))).await.is_err() {
                        break;
                    }
                    answered += 1;
                    if close_after_first && answered == 1 {
                        let _ = tx.close(CloseCode::Away, "scripted close").await;
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            },
            push = push_rx.recv() => match push {
                Some(Push::Message(msg)) => {
                    if tx.send(&msg).await.is_err() {
                        break;
                    }
                }
                Some(Push::Close) => {
                    let _ = tx.close(CloseCode::Away, "scripted close").await;
                    break;
                }
                None => break,
            },
        }
    }
    let _ = inner
        .seen
        .send(Seen::WsClosed {
            conn,
            at: Instant::now(),
        })
        .await;
}

/// Callbacks that count and record what the client told the Agent.
#[derive(Default)]
pub struct Recorder {
    pub connects: AtomicUsize,
    pub connect_failures: AtomicUsize,
    pub errors: Mutex<Vec<opamp_client::proto::ServerErrorResponse>>,
    pub messages: Mutex<Vec<opamp_client::MessageData>>,
    pub uids: Mutex<Vec<opamp_client::proto::InstanceUid>>,
    pub outcomes: Mutex<Vec<Result<(), String>>>,
    /// Set by the test when `stop` returned; a callback seeing it is a bug.
    pub stopped: std::sync::atomic::AtomicBool,
    pub after_stop: AtomicUsize,
}

impl Recorder {
    fn check_stop(&self) {
        if self.stopped.load(Ordering::SeqCst) {
            self.after_stop.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Shares a [`Recorder`] with the client.
#[derive(Clone, Default)]
pub struct Recording(pub Arc<Recorder>);

#[async_trait::async_trait]
impl opamp_client::Callbacks for Recording {
    async fn on_connect(&self) {
        self.0.check_stop();
        self.0.connects.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_connect_failed(&self, _error: &opamp_client::Error) {
        self.0.check_stop();
        self.0.connect_failures.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_error(&self, error: &opamp_client::proto::ServerErrorResponse) {
        self.0.check_stop();
        self.0.errors.lock().unwrap().push(error.clone());
    }

    async fn on_message(&self, msg: opamp_client::MessageData) {
        self.0.check_stop();
        self.0.messages.lock().unwrap().push(msg);
    }

    async fn on_opamp_connection_settings_outcome(&self, outcome: Result<(), &str>) {
        self.0.check_stop();
        self.0
            .outcomes
            .lock()
            .unwrap()
            .push(outcome.map_err(str::to_owned));
    }

    async fn on_instance_uid_changed(&self, uid: opamp_client::proto::InstanceUid) {
        self.0.check_stop();
        self.0.uids.lock().unwrap().push(uid);
    }
}

/// Polls `cond` until it holds (fails the test after [`WAIT`]).
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
