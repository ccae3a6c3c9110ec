//! Replays of what opamp-go agents really sent (copies of the shared wire vectors).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use opamp_server::proto::{
    InstanceUid, Message as _, RemoteConfigStatuses, ServerCapabilities, ServerToAgent,
    ServerToAgentFlags,
};
use opamp_server::{CloseReason, ServerSettings};
use opamp_transport::codec::{ContentEncoding, Limits, decode_http_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

fn vector(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn decode_s2a(payload: &[u8]) -> ServerToAgent {
    assert_eq!(payload[0], 0, "WebSocket header");
    ServerToAgent::decode(&payload[1..]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opamp_go_websocket_session_replays_cleanly() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    let frames = [11, 13, 15, 17, 19, 22, 24, 26, 28, 30];
    let mut uid = None;
    for (i, n) in frames.iter().enumerate() {
        ws.send(Message::Binary(
            vector(&format!("ws-frames/{n:03}-a2s.bin")).into(),
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Binary(payload))) =
            tokio::time::timeout(LIMIT, ws.next()).await.unwrap()
        else {
            panic!("no reply to frame {n}")
        };
        let reply = decode_s2a(&payload);
        assert!(reply.error_response.is_none(), "frame {n}: {reply:?}");
        assert_eq!(
            reply.flags, 0,
            "frame {n}: contiguous sequence numbers, no full state"
        );
        let reply_uid = InstanceUid::try_from(&reply.instance_uid).unwrap();
        assert_eq!(*uid.get_or_insert(reply_uid), reply_uid);
        assert_eq!(
            reply
                .typed_capabilities()
                .contains(ServerCapabilities::ACCEPTS_STATUS),
            i == 0,
            "frame {n}"
        );
        if i == 0 {
            // The agent reports heartbeats: the interval is offered.
            let offer = reply.connection_settings.expect("heartbeat offer");
            assert_eq!(offer.opamp.unwrap().heartbeat_interval_seconds, 30);
        }
    }
    let conn = server.connection(&uid.unwrap()).unwrap();
    let status = conn.status();
    assert!(status.agent_description.is_some());
    assert!(status.health.is_some());
    assert_eq!(
        status.remote_config_status.as_ref().unwrap().status(),
        RemoteConfigStatuses::Applied
    );
    assert_eq!(conn.with_state(|s| s.last_sequence_num()), Some(9));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_disconnect_from_an_unknown_agent_is_answered_then_closed() {
    let recorder = Recorder::new();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    ws.send(Message::Binary(vector("ws-frames/010-a2s.bin").into()))
        .await
        .unwrap();
    let Some(Ok(Message::Binary(payload))) = ws.next().await else {
        panic!("no reply")
    };
    let reply = decode_s2a(&payload);
    // The server holds no state for this agent, whose sequence_num is past 0.
    assert!(
        reply
            .typed_flags()
            .contains(ServerToAgentFlags::REPORT_FULL_STATE)
    );
    let close = tokio::time::timeout(LIMIT, ws.next()).await.unwrap();
    assert!(matches!(close, Some(Ok(Message::Close(_)))), "{close:?}");
    recorder
        .wait_for("on_close", |e| {
            e.iter().any(|e| {
                matches!(
                    e,
                    Event::Closed {
                        reason: CloseReason::AgentDisconnect,
                        ..
                    }
                )
            })
        })
        .await;
    server.shutdown().await;
}

/// Posts a recorded request (its headers and gzip body) and decodes the response.
async fn replay_http(addr: std::net::SocketAddr, n: u32) -> ServerToAgent {
    let headers = String::from_utf8(vector(&format!("http/{n:03}-request.headers"))).unwrap();
    let body = vector(&format!("http/{n:03}-request.bin"));
    let mut head = String::from("POST /v1/opamp HTTP/1.1\r\n");
    for line in headers.lines().skip(1) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("content-length") || lower.starts_with("connection") {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "request {n}: {head}");
    let encoding = if head.contains("content-encoding: gzip") {
        ContentEncoding::Gzip
    } else {
        ContentEncoding::Identity
    };
    decode_http_body(&raw[split + 4..], encoding, &Limits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opamp_go_gzip_http_session_replays_cleanly() {
    let (server, addr) = start(
        ServerSettings::default().with_heartbeat_interval(Some(Duration::from_secs(30))),
        Recorder::new(),
    )
    .await;
    let uid: InstanceUid = "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e".parse().unwrap();
    for n in 7..=12 {
        let reply = replay_http(addr, n).await;
        assert_eq!(reply.instance_uid, uid.to_bytes(), "request {n}");
        assert!(reply.error_response.is_none());
        assert_eq!(reply.flags, 0, "request {n}");
        assert_eq!(reply.capabilities != 0, n == 7, "request {n}");
    }
    let conn = server
        .connection(&uid)
        .expect("one session across the polls");
    let status = conn.status();
    assert!(status.agent_description.is_some());
    assert!(status.effective_config.is_some());
    assert_eq!(conn.with_state(|s| s.messages_handled()), 6);
    server.shutdown().await;
}
