//! The client runs inside someone else's agent and must not die silently (issue 17, item 2):
//! a panicking callback is caught, logged and reported through `on_callback_panic`, and the
//! client keeps working; if the driver itself ever ends, the handle says so (`ended`,
//! `is_running`, `is_connected`, setters fail).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Push, TestServer, WAIT};
use http::StatusCode;
use opamp_client::proto::{AgentCapabilities, AgentRemoteConfig, ComponentHealth, ServerToAgent};
use opamp_client::state::BackoffPolicy;
use opamp_client::{Callbacks, Client, ClientSettings, Error, MessageData};

#[derive(Clone, Default)]
struct Panicky {
    panics: Arc<Mutex<Vec<(String, String)>>>,
}

#[opamp_client::async_trait]
impl Callbacks for Panicky {
    async fn on_message(&self, _msg: MessageData) {
        panic!("the agent's on_message is buggy");
    }

    async fn on_callback_panic(&self, callback: &'static str, panic: &str) {
        self.panics
            .lock()
            .unwrap()
            .push((callback.to_owned(), panic.to_owned()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_callback_is_reported_and_the_client_keeps_running() {
    let server = TestServer::start().await;
    let callbacks = Panicky::default();
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_capabilities(
            AgentCapabilities::ACCEPTS_REMOTE_CONFIG | AgentCapabilities::REPORTS_HEALTH,
        ),
        callbacks.clone(),
    )
    .unwrap();
    server.next_message().await;
    server
        .push(Push::Message(ServerToAgent {
            remote_config: Some(AgentRemoteConfig {
                config_hash: vec![1].into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await;
    common::eventually("the panic reported", || {
        !callbacks.panics.lock().unwrap().is_empty()
    })
    .await;
    let (callback, panic) = callbacks.panics.lock().unwrap()[0].clone();
    assert_eq!(callback, "on_message");
    assert!(panic.contains("buggy"), "{panic}");

    // Still reading, writing and reporting.
    client
        .set_health(ComponentHealth {
            healthy: true,
            ..Default::default()
        })
        .unwrap();
    let msg = server.next_message().await;
    assert!(msg.health.is_some(), "{msg:?}");
    assert!(client.is_running() && client.is_connected());
    client.stop().await.unwrap();
    assert!(client.ended().await.is_ok(), "a stop is a normal end");
}

/// A backoff policy that panics: a bug inside the driver itself, not in a callback.
#[derive(Debug)]
struct PanickingBackoff;

impl BackoffPolicy for PanickingBackoff {
    fn next_backoff(&mut self) -> Duration {
        panic!("backoff bug");
    }

    fn reset(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_ends_by_a_panic_says_so() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.upgrade_refusals
            .push_back((StatusCode::INTERNAL_SERVER_ERROR, None))
    });
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_capabilities(AgentCapabilities::REPORTS_HEALTH)
            .with_backoff(PanickingBackoff),
        common::Recording::default(),
    )
    .unwrap();
    let ended = tokio::time::timeout(WAIT, client.ended())
        .await
        .expect("the end is observable");
    match ended {
        Err(Error::Ended(reason)) => assert!(reason.contains("backoff bug"), "{reason}"),
        other => panic!("expected Ended, got {other:?}"),
    }
    assert!(!client.is_running());
    assert!(!client.is_connected());
    assert!(matches!(
        client.set_health(ComponentHealth::default()),
        Err(Error::Ended(_))
    ));
    tokio::time::timeout(WAIT, client.stop())
        .await
        .expect("stop returns at once")
        .unwrap();
}
