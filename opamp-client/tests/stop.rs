//! `stop()` sends `agent_disconnect` over both transports, closes cleanly, and no callback
//! runs after it returns.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Recording, Seen, TestServer};
use opamp_client::proto::{AgentDescription, KeyValue};
use opamp_client::{Client, ClientSettings, Error};

fn description() -> AgentDescription {
    AgentDescription {
        identifying_attributes: vec![KeyValue::new("service.name", "stop-test")],
        non_identifying_attributes: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_stop_sends_agent_disconnect_then_close() {
    let server = TestServer::start().await;
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_agent_description(description()),
        recording.clone(),
    )
    .unwrap();
    let first = server.next_message().await;
    assert_eq!(first.sequence_num, 1);
    assert_eq!(first.agent_description, Some(description()));
    assert!(first.agent_disconnect.is_none());
    common::eventually("on_connect", || {
        recording.0.connects.load(Ordering::SeqCst) == 1
    })
    .await;

    client.stop().await.unwrap();
    recording.0.stopped.store(true, Ordering::SeqCst);
    let last = server.next_message().await;
    assert!(last.agent_disconnect.is_some(), "{last:?}");
    assert_eq!(last.sequence_num, 2);
    let closed = server.next().await;
    assert!(matches!(closed, Seen::WsClosed { .. }), "{closed:?}");

    assert!(matches!(
        client.set_agent_description(description()),
        Err(Error::Stopped)
    ));
    assert!(client.is_stopped());
    server.assert_quiet(Duration::from_millis(500)).await;
    assert_eq!(recording.0.after_stop.load(Ordering::SeqCst), 0);
    // Stopping twice is fine.
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_stop_sends_agent_disconnect() {
    let server = TestServer::start().await;
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(server.http_url()).with_agent_description(description()),
        recording.clone(),
    )
    .unwrap();
    let first = server.next_message().await;
    assert_eq!(first.agent_description, Some(description()));
    common::eventually("on_connect", || {
        recording.0.connects.load(Ordering::SeqCst) == 1
    })
    .await;

    client.stop().await.unwrap();
    recording.0.stopped.store(true, Ordering::SeqCst);
    let last = server.next_message().await;
    assert!(last.agent_disconnect.is_some(), "{last:?}");
    assert!(last.sequence_num > first.sequence_num);
    server.assert_quiet(Duration::from_millis(500)).await;
    assert_eq!(recording.0.after_stop.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_unreachable_returns_promptly() {
    // A port nothing listens on: every attempt fails.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(format!("ws://127.0.0.1:{port}/v1/opamp")),
        recording.clone(),
    )
    .unwrap();
    common::eventually("a failed attempt", || {
        recording.0.connect_failures.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::timeout(common::WAIT, client.stop())
        .await
        .expect("stop hangs")
        .unwrap();
    recording.0.stopped.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recording.0.after_stop.load(Ordering::SeqCst), 0);
}

/// Callbacks that stop the client from inside a callback.
struct StopOnConnect(Client);

#[async_trait::async_trait]
impl opamp_client::Callbacks for StopOnConnect {
    async fn on_connect(&self) {
        self.0.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_from_a_callback_does_not_deadlock() {
    let server = TestServer::start().await;
    let client = Client::start_with(ClientSettings::new(server.ws_url()), StopOnConnect).unwrap();
    let client = Arc::new(client);
    let last = server
        .next_matching(|s| s.message().is_some_and(|m| m.agent_disconnect.is_some()))
        .await;
    assert!(last.message().unwrap().agent_disconnect.is_some());
    tokio::time::timeout(common::WAIT, client.stop())
        .await
        .expect("stop hangs")
        .unwrap();
}
