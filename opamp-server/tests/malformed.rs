//! Malformed and oversized input gets the right close code or status, and other agents keep
//! being served.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use opamp_server::ServerSettings;
use opamp_server::proto::{
    AgentToServer, Bytes, InstanceUid, Message as _, ServerErrorResponseType, ServerToAgent,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const LIMIT_BYTES: usize = 64 * 1024;

/// A plain HTTP/1.1 exchange on a fresh connection: status, headers, body.
async fn raw_http(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        tcp.write_all(body).await.unwrap();
    }
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut raw))
        .await
        .expect("response timed out")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn post_head(len: usize, extra: &str) -> String {
    format!(
        "POST /v1/opamp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {len}\r\nConnection: close\r\n{extra}\r\n"
    )
}

fn bad_request(body: &[u8]) -> ServerToAgent {
    let msg = ServerToAgent::decode(body).expect("a ServerToAgent body");
    let error = msg.error_response.clone().expect("error_response");
    assert_eq!(error.r#type, ServerErrorResponseType::BadRequest as i32);
    assert!(!error.error_message.is_empty());
    msg
}

/// A healthy agent that must keep being served while others misbehave.
struct Bystander {
    ws: opamp_transport::ws::ClientWsConnection,
    uid: InstanceUid,
    seq: u64,
}

impl Bystander {
    async fn new(addr: SocketAddr) -> Self {
        let uid = InstanceUid::new_v7();
        let mut ws = ws_agent(addr).await;
        exchange(&mut ws, &full_status(uid, 0)).await;
        Self { ws, uid, seq: 0 }
    }

    async fn still_served(&mut self) {
        self.seq += 1;
        let reply = exchange(&mut self.ws, &heartbeat(self.uid, self.seq)).await;
        assert_eq!(reply.instance_uid, self.uid.to_bytes());
        assert!(reply.error_response.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_websocket_messages_get_bad_request_and_oversize_gets_1009() {
    let recorder = Recorder::new();
    let settings = ServerSettings::default().with_max_message_size(LIMIT_BYTES);
    let (server, addr) = start(settings, recorder.clone()).await;
    let mut bystander = Bystander::new(addr).await;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut raw, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    let uid = InstanceUid::new_v7();
    let mut good = vec![0u8];
    good.extend(full_status(uid, 0).encode_to_vec());
    raw.send(Message::Binary(good.into())).await.unwrap();
    let Some(Ok(Message::Binary(first))) = raw.next().await else {
        panic!("no reply")
    };
    assert_eq!(first[0], 0);

    let mut malformed: Vec<Message> = [
        "bad-header-1",
        "bad-truncated-varint",
        "bad-protobuf",
        "bad-empty",
    ]
    .iter()
    .map(|name| {
        let path = format!(
            "{}/tests/vectors/ws-frames/{name}.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        Message::Binary(std::fs::read(path).unwrap().into())
    })
    .collect();
    malformed.push(Message::Text("not an OpAMP message".into()));
    let count = malformed.len();
    for message in malformed {
        raw.send(message).await.unwrap();
        let reply = tokio::time::timeout(LIMIT, raw.next()).await.unwrap();
        let Some(Ok(Message::Binary(payload))) = reply else {
            panic!("expected a BAD_REQUEST reply, got {reply:?}")
        };
        assert_eq!(payload[0], 0, "header");
        let msg = bad_request(&payload[1..]);
        assert_eq!(
            msg.instance_uid,
            uid.to_bytes(),
            "the connection's UID is echoed"
        );
        bystander.still_served().await;
    }
    recorder
        .wait_for("read errors", |e| {
            e.iter()
                .filter(|e| matches!(e, Event::ReadError { .. }))
                .count()
                >= count
        })
        .await;

    // Over the limit: close 1009, the bystander unaffected.
    raw.send(Message::Binary(vec![0u8; LIMIT_BYTES + 1].into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(LIMIT, async {
        loop {
            match raw.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed.map(|f| f.code), Some(CloseCode::Size));
    bystander.still_served().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_requests_get_the_right_status() {
    let settings = ServerSettings::default().with_max_message_size(LIMIT_BYTES);
    let (server, addr) = start(settings, Recorder::new()).await;
    let mut bystander = Bystander::new(addr).await;

    // Undecodable protobuf: 400 with a BAD_REQUEST body.
    let garbage = [0x0a, 0x10, 0x01, 0x93];
    let (status, _, body) = raw_http(addr, &post_head(garbage.len(), ""), &garbage).await;
    assert_eq!(status, 400);
    bad_request(&body);
    bystander.still_served().await;

    // A UID that is not 16 bytes: 400 with a BAD_REQUEST body.
    let short = AgentToServer {
        instance_uid: Bytes::from_static(b"abc"),
        ..Default::default()
    }
    .encode_to_vec();
    let (status, _, body) = raw_http(addr, &post_head(short.len(), ""), &short).await;
    assert_eq!(status, 400);
    bad_request(&body);

    // Invalid gzip: 400.
    let (status, _, _) =
        raw_http(addr, &post_head(5, "Content-Encoding: gzip\r\n"), b"nogzp").await;
    assert_eq!(status, 400);

    // Unsupported encoding: 415. Wrong method: 405. Neither HTTP nor upgrade: 400. Path: 404.
    let (status, _, _) = raw_http(addr, &post_head(1, "Content-Encoding: br\r\n"), b"x").await;
    assert_eq!(status, 415);
    let (status, _, _) = raw_http(
        addr,
        "GET /v1/opamp HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(status, 405);
    let (status, _, _) = raw_http(
        addr,
        "GET /v1/opamp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) =
        raw_http(addr, &post_head(0, "").replace("/v1/opamp", "/other"), b"").await;
    assert_eq!(status, 404);
    bystander.still_served().await;

    // Announced over the limit: 413 before the body is read.
    let (status, headers, _) = raw_http(addr, &post_head(LIMIT_BYTES + 1, ""), b"").await;
    assert_eq!(status, 413);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "connection" && v == "close")
    );
    // Over the limit once decompressed (a 71 KB gzip bomb of 70 MiB): 413.
    let bomb = std::fs::read(format!(
        "{}/tests/vectors/http/bad-gzip-bomb.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, _, _) = raw_http(
        addr,
        &post_head(bomb.len(), "Content-Encoding: gzip\r\n"),
        &bomb,
    )
    .await;
    assert_eq!(status, 413);
    bystander.still_served().await;

    // A healthy plain-HTTP agent is still served.
    let uid = InstanceUid::new_v7();
    let reply = HttpAgent::new(addr, uid)
        .post(&full_status(uid, 0))
        .await
        .unwrap();
    assert_eq!(reply.instance_uid, uid.to_bytes());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bomb_is_refused_at_the_default_limit() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let bomb = std::fs::read(format!(
        "{}/tests/vectors/http/bad-gzip-bomb.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, _, _) = raw_http(
        addr,
        &post_head(bomb.len(), "Content-Encoding: gzip\r\n"),
        &bomb,
    )
    .await;
    assert_eq!(status, 413);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_reply_is_dropped_and_reported() {
    // The embedder answers with a custom message far over the limit.
    let recorder = Recorder::with_on_message(|_, msg| {
        (msg.sequence_num == 1).then(|| ServerToAgent {
            custom_message: Some(opamp_server::proto::CustomMessage {
                capability: "io.big".into(),
                r#type: "big".into(),
                data: Bytes::from(vec![7u8; 2 * LIMIT_BYTES]),
            }),
            ..Default::default()
        })
    });
    let settings = ServerSettings::default().with_max_message_size(LIMIT_BYTES);
    let (server, addr) = start(settings, recorder.clone()).await;
    let uid = InstanceUid::new_v7();
    let mut msg = full_status(uid, 0);
    msg.custom_capabilities = Some(opamp_server::proto::CustomCapabilities {
        capabilities: vec!["io.big".into()],
    });

    // Plain HTTP: an UNKNOWN error response replaces it.
    let http = HttpAgent::new(addr, uid);
    http.post(&msg).await.unwrap();
    let reply = http.post(&heartbeat(uid, 1)).await.unwrap();
    assert_eq!(
        reply.error_response.map(|e| e.r#type),
        Some(ServerErrorResponseType::Unknown as i32)
    );

    // WebSocket: nothing is sent, the connection stays usable.
    let uid = InstanceUid::new_v7();
    msg.instance_uid = uid.to_bytes();
    let mut ws = ws_agent(addr).await;
    exchange(&mut ws, &msg).await;
    ws.send(&heartbeat(uid, 1)).await.unwrap();
    let next = exchange(&mut ws, &heartbeat(uid, 2)).await;
    assert!(next.custom_message.is_none());
    assert_eq!(next.instance_uid, uid.to_bytes());
    recorder
        .wait_for("two response errors", |e| {
            e.iter()
                .filter(|e| matches!(e, Event::ResponseError { .. }))
                .count()
                == 2
        })
        .await;
    let _ = Duration::ZERO;
    server.shutdown().await;
}
