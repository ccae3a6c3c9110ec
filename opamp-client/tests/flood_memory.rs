//! Issue 17, item 6: a server that floods the client with messages just under the size limit
//! does not make the client's memory grow with the flood: messages are read, handed to the
//! callbacks and dropped one at a time (TCP backpressure holds the rest), and the event queue
//! is drained after each message. The whole process's allocations are measured (this test
//! binary has this one test, so nothing else allocates meanwhile).

use std::alloc::System;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cap::Cap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opamp_client::proto::{AgentToServer, CustomMessage, ServerToAgent};
use opamp_client::{Callbacks, Client, ClientSettings, MessageData};
use opamp_transport::ws::{self, WsConfig};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const LIMIT: usize = 1024 * 1024;
const MESSAGES: usize = 100;

/// Counts custom messages handed to the Agent.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

#[opamp_client::async_trait]
impl Callbacks for Counter {
    async fn on_message(&self, msg: MessageData) {
        if msg.custom_message.is_some() {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A WebSocket server that answers the first message with `MESSAGES` large messages.
async fn flooding_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|mut req| async move {
                    let (response, pending) = ws::accept(&mut req, WsConfig::default()).unwrap();
                    tokio::spawn(async move {
                        let Ok(connection) = pending.connection().await else {
                            return;
                        };
                        let (mut tx, mut rx) = connection.split();
                        let _ = rx.recv::<AgentToServer>().await;
                        let big = ServerToAgent {
                            custom_message: Some(CustomMessage {
                                capability: "io.example.flood".into(),
                                r#type: "t".into(),
                                // Just under the limit, with room for the header and framing.
                                data: vec![7u8; LIMIT - 1024].into(),
                            }),
                            ..Default::default()
                        };
                        for _ in 0..MESSAGES {
                            if tx.send(&big).await.is_err() {
                                return;
                            }
                        }
                        while let Ok(Some(_)) = rx.recv::<AgentToServer>().await {}
                    });
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_uses_bounded_memory() {
    let addr = flooding_server().await;
    let counter = Counter::default();
    let before = ALLOCATOR.allocated();
    let client = Client::start(
        ClientSettings::new(format!("ws://{addr}/v1/opamp"))
            .with_custom_capabilities(["io.example.flood"])
            .with_max_message_size(LIMIT),
        counter.clone(),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while counter.0.load(Ordering::SeqCst) < MESSAGES {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {MESSAGES} messages arrived",
            counter.0.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = ALLOCATOR.max_allocated().saturating_sub(before);
    client.stop().await.unwrap();
    // About 100 MiB went through; the client holds a few messages at most (the read buffer,
    // the decoded message, the callback's copy) and the server one encoded message.
    assert!(
        peak < 16 * LIMIT,
        "peak {} MiB over the baseline for {MESSAGES} messages of 1 MiB",
        peak / LIMIT
    );
    println!(
        "flood of {MESSAGES} x 1 MiB: peak {:.1} MiB over baseline",
        peak as f64 / LIMIT as f64
    );
}
