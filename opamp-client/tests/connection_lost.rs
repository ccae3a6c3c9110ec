//! Every error reaches the embedder: failures in the middle of a session go to
//! `on_connection_lost` and the client reconnects (a WebSocket server that drops the socket,
//! one that sends a message that does not decode, a plain-HTTP server that fails after
//! answering); HTTP statuses of refused attempts arrive as typed errors in
//! `on_connect_failed` (`ServerUnavailable` with `Retry-After`, `Unauthorized`).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{HttpReply, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use opamp_client::proto::ServerToAgent;
use opamp_client::state::ConstantBackoff;
use opamp_client::{Callbacks, Client, ClientSettings, Error};
use opamp_transport::codec::Limits;
use opamp_transport::codec::ws::encode_ws_message;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// What the callbacks saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Connected,
    ConnectFailed(Kind),
    Lost(Kind),
}

/// The error of a callback, reduced to what the tests check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The peer went away (closed, reset, or a WebSocket protocol error from it).
    Closed,
    /// A `ServerToAgent` that does not decode.
    Decode,
    Unavailable(StatusCode, Option<Duration>),
    Unauthorized(StatusCode),
    Status(StatusCode),
    Other(String),
}

fn kind(error: &Error) -> Kind {
    use opamp_transport::Error as T;
    match error {
        Error::Transport(T::ConnectionClosed | T::Io(_) | T::WebSocket(_)) => Kind::Closed,
        Error::Transport(T::Decode(_)) => Kind::Decode,
        Error::ServerUnavailable {
            status,
            retry_after,
        } => Kind::Unavailable(*status, *retry_after),
        Error::Unauthorized { status } => Kind::Unauthorized(*status),
        Error::HttpStatus { status, .. } => Kind::Status(*status),
        other => Kind::Other(format!("{other:?}")),
    }
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the log starts with `expected` (fails after [`WAIT`]).
    async fn wait_for(&self, expected: &[Seen]) {
        common::eventually(&format!("callbacks {expected:?}"), || {
            let seen = self.seen();
            seen.len() >= expected.len() && seen[..expected.len()] == *expected
        })
        .await;
        let seen = self.seen();
        assert_eq!(&seen[..expected.len()], expected, "{seen:?}");
    }
}

#[async_trait::async_trait]
impl Callbacks for Log {
    async fn on_connect(&self) {
        self.0.lock().unwrap().push(Seen::Connected);
    }

    async fn on_connect_failed(&self, error: &Error) {
        self.0
            .lock()
            .unwrap()
            .push(Seen::ConnectFailed(kind(error)));
    }

    async fn on_connection_lost(&self, error: &Error) {
        self.0.lock().unwrap().push(Seen::Lost(kind(error)));
    }
}

/// A WebSocket server on 127.0.0.1:0 that runs `first` on the first connection and keeps
/// later ones open, answering every message with an acknowledgement.
struct RawWsServer {
    addr: SocketAddr,
    attempts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

fn ack() -> Message {
    let bytes = encode_ws_message(&ServerToAgent::default(), &Limits::default()).unwrap();
    Message::Binary(bytes)
}

impl RawWsServer {
    async fn start<F, Fut>(first: F) -> Self
    where
        F: FnOnce(Ws) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&attempts);
        let task = tokio::spawn(async move {
            let mut first = Some(first);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                match first.take() {
                    Some(first) => {
                        tokio::spawn(first(ws));
                    }
                    None => {
                        tokio::spawn(async move {
                            let mut ws = ws;
                            while let Some(Ok(msg)) = ws.next().await {
                                if msg.is_binary() && ws.send(ack()).await.is_err() {
                                    return;
                                }
                            }
                        });
                    }
                }
            }
        });
        Self {
            addr,
            attempts,
            task,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/opamp", self.addr)
    }
}

impl Drop for RawWsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn settings(url: &str) -> ClientSettings {
    ClientSettings::new(url).with_backoff(ConstantBackoff(Duration::from_millis(200)))
}

async fn stop(client: Client) {
    tokio::time::timeout(WAIT, client.stop())
        .await
        .expect("stop hangs")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_dropped_mid_session_is_reported_and_the_client_reconnects() {
    let server = RawWsServer::start(|mut ws: Ws| async move {
        // Answer the first report, then drop the socket without a close frame.
        if let Some(Ok(_)) = ws.next().await {
            let _ = ws.send(ack()).await;
        }
        drop(ws);
    })
    .await;
    let log = Log::default();
    let client = Client::start(settings(&server.url()), log.clone()).unwrap();
    log.wait_for(&[Seen::Connected, Seen::Lost(Kind::Closed), Seen::Connected])
        .await;
    assert_eq!(server.attempts.load(Ordering::SeqCst), 2);
    stop(client).await;
    assert!(
        !log.seen()
            .iter()
            .any(|s| matches!(s, Seen::ConnectFailed(_))),
        "{:?}",
        log.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_undecodable_message_is_reported_and_the_client_reconnects() {
    let server = RawWsServer::start(|mut ws: Ws| async move {
        if let Some(Ok(_)) = ws.next().await {
            let _ = ws.send(ack()).await;
            // A valid OpAMP WebSocket header (0) followed by a truncated protobuf field.
            let _ = ws
                .send(Message::Binary(vec![0x00, 0x0a, 0xff].into()))
                .await;
        }
        // Keep the connection until the client goes.
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let log = Log::default();
    let client = Client::start(settings(&server.url()), log.clone()).unwrap();
    log.wait_for(&[Seen::Connected, Seen::Lost(Kind::Decode), Seen::Connected])
        .await;
    assert_eq!(server.attempts.load(Ordering::SeqCst), 2);
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_failure_after_an_answer_is_a_lost_connection() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies
            .push_back(HttpReply::Message(ServerToAgent::default()));
        s.http_replies
            .push_back(HttpReply::Status(StatusCode::INTERNAL_SERVER_ERROR, None));
        s.http_replies
            .push_back(HttpReply::Status(StatusCode::BAD_GATEWAY, None));
    });
    let log = Log::default();
    let client = Client::start(
        settings(&server.http_url()).with_heartbeat_interval(Duration::from_millis(200)),
        log.clone(),
    )
    .unwrap();
    // Answered, then a failure (lost), then one more while unreachable (connect failed), then
    // answered again.
    log.wait_for(&[
        Seen::Connected,
        Seen::Lost(Kind::Status(StatusCode::INTERNAL_SERVER_ERROR)),
        Seen::ConnectFailed(Kind::Status(StatusCode::BAD_GATEWAY)),
        Seen::Connected,
    ])
    .await;
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upgrades_are_typed_errors() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.upgrade_refusals.push_back((
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(1)),
        ));
        s.upgrade_refusals
            .push_back((StatusCode::UNAUTHORIZED, None));
        s.upgrade_refusals.push_back((StatusCode::FORBIDDEN, None));
    });
    let log = Log::default();
    let client = Client::start(settings(&server.ws_url()), log.clone()).unwrap();
    log.wait_for(&[
        Seen::ConnectFailed(Kind::Unavailable(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(1)),
        )),
        Seen::ConnectFailed(Kind::Unauthorized(StatusCode::UNAUTHORIZED)),
        Seen::ConnectFailed(Kind::Unauthorized(StatusCode::FORBIDDEN)),
        Seen::Connected,
    ])
    .await;
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_throttling_is_a_typed_error_with_retry_after() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.http_replies.push_back(HttpReply::Status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(1)),
        ));
    });
    let log = Log::default();
    let client = Client::start(settings(&server.http_url()), log.clone()).unwrap();
    log.wait_for(&[
        Seen::ConnectFailed(Kind::Unavailable(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(1)),
        )),
        Seen::Connected,
    ])
    .await;
    stop(client).await;
}
