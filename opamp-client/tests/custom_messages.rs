//! Custom messages (spec §"Custom Messages"): one pending at a time, a future that completes
//! when the message went out, capability checks both ways.

mod common;

use std::time::Duration;

use common::{Push, Recording, Seen, TestServer};
use http::StatusCode;
use opamp_client::proto::{CustomCapabilities, CustomMessage, ServerToAgent};
use opamp_client::{Client, ClientSettings, Error};

fn message(n: u8) -> CustomMessage {
    CustomMessage {
        capability: "io.opentelemetry.pause".into(),
        r#type: "pause".into(),
        data: vec![n].into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_messages_go_out_one_at_a_time() {
    let server = TestServer::start().await;
    // The first attempt is throttled for a second: the message waits meanwhile.
    server.script(|s| {
        s.upgrade_refusals.push_back((
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(1)),
        ))
    });
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_custom_capabilities(["io.opentelemetry.pause"]),
        Recording::default(),
    )
    .unwrap();
    server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;

    let unsupported = CustomMessage {
        capability: "io.other".into(),
        ..message(0)
    };
    assert!(matches!(
        client.send_custom_message(unsupported),
        Err(Error::CustomCapabilityNotSupported(_))
    ));
    let sent = client.send_custom_message(message(1)).unwrap();
    assert!(client.custom_message_pending());
    assert!(matches!(
        client.send_custom_message(message(2)),
        Err(Error::CustomMessagePending)
    ));

    tokio::time::timeout(common::WAIT, sent)
        .await
        .unwrap()
        .unwrap();
    let first = server.next_message().await;
    assert_eq!(
        first.custom_capabilities,
        Some(CustomCapabilities {
            capabilities: vec!["io.opentelemetry.pause".into()]
        })
    );
    assert_eq!(first.custom_message, Some(message(1)));

    // Delivered: the next one may go.
    let sent = client.send_custom_message(message(2)).unwrap();
    tokio::time::timeout(common::WAIT, sent)
        .await
        .unwrap()
        .unwrap();
    let second = server.next_message().await;
    assert_eq!(second.custom_message, Some(message(2)));
    assert!(
        second.custom_capabilities.is_none(),
        "unchanged: not resent"
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_custom_message_fails_when_the_client_stops() {
    // Nothing listens: the message never goes out.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::start(
        ClientSettings::new(format!("http://127.0.0.1:{port}/v1/opamp"))
            .with_custom_capabilities(["io.opentelemetry.pause"]),
        Recording::default(),
    )
    .unwrap();
    let sent = client.send_custom_message(message(1)).unwrap();
    client.stop().await.unwrap();
    let result = tokio::time::timeout(common::WAIT, sent).await.unwrap();
    assert!(
        matches!(result, Err(Error::CustomMessageDropped | Error::Stopped)),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_messages_from_the_server_need_the_capability() {
    let server = TestServer::start().await;
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_custom_capabilities(["io.opentelemetry.pause"]),
        recording.clone(),
    )
    .unwrap();
    server.next_message().await;
    let unknown = CustomMessage {
        capability: "io.other".into(),
        ..message(9)
    };
    server
        .push(Push::Message(ServerToAgent {
            custom_message: Some(unknown),
            ..Default::default()
        }))
        .await;
    server
        .push(Push::Message(ServerToAgent {
            custom_message: Some(message(3)),
            ..Default::default()
        }))
        .await;
    common::eventually("delivery", || {
        !recording.0.messages.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let messages = recording.0.messages.lock().unwrap().clone();
    assert_eq!(
        messages.len(),
        1,
        "the unknown capability is filtered: {messages:?}"
    );
    assert_eq!(messages[0].custom_message, Some(message(3)));
    client.stop().await.unwrap();
}
