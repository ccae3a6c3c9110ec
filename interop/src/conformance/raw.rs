//! Hand-driven sockets for the scenarios: raw WebSocket and HTTP/1.1 exchanges, a
//! well-behaved bystander agent, and RSS readings from `/proc`.

use std::time::Duration;

use futures_util::StreamExt;
use opamp_proto::{
    AgentCapabilities, AgentDescription, AgentToServer, InstanceUid, Message as _, ServerToAgent,
};
use opamp_transport::ws::{ClientWsConnection, WsConnectOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Answer, STEP};
use crate::Error;

/// Most bytes read from one raw HTTP response.
const MAX_HTTP_RESPONSE: usize = 16 << 20;

/// `host:port` and path of a `ws://` or `http://` URL.
pub(crate) fn split_url(url: &str) -> Result<(String, String), Error> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Error::violation(format!("not a ws:// or http:// URL: {url}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_owned(), path.to_owned()))
}

/// The `http://` URL of the same endpoint as a `ws://` one (and the other way round).
pub(crate) fn http_url_of(ws_url: &str) -> String {
    ws_url.replacen("ws://", "http://", 1)
}

/// A WebSocket connection driven by hand (no OpAMP framing checks on our side).
pub(crate) type RawWs = WebSocketStream<TcpStream>;

/// Opens a raw WebSocket connection to `url` (`ws://`).
pub(crate) async fn raw_ws(url: &str) -> Result<RawWs, Error> {
    let (authority, _) = split_url(url)?;
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(&authority))
        .await
        .map_err(|_| Error::timeout(format!("TCP connect to {authority}"), STEP))??;
    let config = WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    let (ws, _) = tokio::time::timeout(
        STEP,
        tokio_tungstenite::client_async_with_config(url, tcp, Some(config)),
    )
    .await
    .map_err(|_| Error::timeout("WebSocket upgrade", STEP))??;
    Ok(ws)
}

/// `0x00` header + the encoded message: a well-formed OpAMP WebSocket payload.
pub(crate) fn ws_payload<M: prost::Message>(msg: &M) -> Vec<u8> {
    let mut out = vec![0u8];
    msg.encode(&mut out).unwrap_or_default();
    out
}

/// A first report: description and capabilities.
pub(crate) fn hello(uid: InstanceUid, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: seq,
        capabilities: (AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
            | AgentCapabilities::REPORTS_REMOTE_CONFIG
            | AgentCapabilities::REPORTS_HEARTBEAT)
            .bits(),
        agent_description: Some(
            AgentDescription::builder()
                .service_name("opamp-conformance")
                .build(),
        ),
        ..Default::default()
    }
}

/// A heartbeat (UID and sequence number only).
pub(crate) fn heartbeat(uid: InstanceUid, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: seq,
        ..Default::default()
    }
}

/// Decodes a server's WebSocket payload (header must be `0x00`).
pub(crate) fn decode_server_payload(payload: &[u8]) -> Result<ServerToAgent, Error> {
    match payload.split_first() {
        Some((0, data)) => ServerToAgent::decode(data).map_err(|err| {
            Error::violation(format!("the server sent an undecodable message: {err}"))
        }),
        _ => Err(Error::violation(
            "the server sent a payload whose header is not 0x00",
        )),
    }
}

/// Classifies a decoded reply.
pub(crate) fn classify_reply(reply: &ServerToAgent) -> Answer {
    if let Some(error) = &reply.error_response {
        Answer::ErrorResponse {
            kind: error.r#type,
            message: error.error_message.clone(),
        }
    } else if reply.agent_identification.is_some() {
        Answer::NewInstanceUid
    } else {
        Answer::NormalReply
    }
}

/// Reads until the server answers: a data message, a close frame or the end of the
/// connection; [`Answer::Silent`] if nothing comes within `limit`.
pub(crate) async fn read_answer(ws: &mut RawWs, limit: Duration) -> Result<Answer, Error> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(Answer::Silent),
            Ok(next) => next,
        };
        match next {
            Some(Ok(Message::Binary(payload))) => {
                return Ok(classify_reply(&decode_server_payload(&payload)?));
            }
            Some(Ok(Message::Close(frame))) => {
                return Ok(match frame {
                    Some(frame) => Answer::Closed {
                        code: frame.code.into(),
                        reason: frame.reason.to_string(),
                    },
                    None => Answer::Closed {
                        code: 1005,
                        reason: String::new(),
                    },
                });
            }
            Some(Ok(Message::Text(_))) => {
                return Err(Error::violation("the server sent a text message"));
            }
            Some(Ok(_)) => continue,
            None
            | Some(Err(tungstenite::Error::ConnectionClosed))
            | Some(Err(tungstenite::Error::AlreadyClosed))
            | Some(Err(tungstenite::Error::Io(_)))
            | Some(Err(tungstenite::Error::Protocol(_))) => return Ok(Answer::Dropped),
            Some(Err(err)) => return Err(err.into()),
        }
    }
}

/// A raw HTTP/1.1 response (its status; the scenarios need nothing else).
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
}

/// POSTs `body` to `url` with `Content-Type: application/x-protobuf` and `extra` header lines
/// (each ending in `\r\n`) on a fresh connection, and reads the whole response.
pub(crate) async fn http_post(url: &str, extra: &str, body: &[u8]) -> Result<RawResponse, Error> {
    let (authority, path) = split_url(url)?;
    let mut tcp = tokio::time::timeout(STEP, TcpStream::connect(&authority))
        .await
        .map_err(|_| Error::timeout(format!("TCP connect to {authority}"), STEP))??;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let exchange = async {
        tcp.write_all(head.as_bytes()).await?;
        // The server may answer (413) and close before reading the whole body.
        let _ = tcp.write_all(body).await;
        let mut raw = Vec::new();
        (&mut tcp)
            .take(MAX_HTTP_RESPONSE as u64)
            .read_to_end(&mut raw)
            .await
            .map(|_| raw)
    };
    let raw = tokio::time::timeout(STEP, exchange)
        .await
        .map_err(|_| Error::timeout("an HTTP response", STEP))??;
    parse_response(&raw)
}

pub(crate) fn parse_response(raw: &[u8]) -> Result<RawResponse, Error> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::violation("the HTTP response has no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split("\r\n")
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::violation("the HTTP response has no status line"))?;
    Ok(RawResponse { status })
}

/// A well-behaved agent connected beside a misbehaving one; it must keep being served.
#[derive(Debug)]
pub struct Bystander {
    ws: ClientWsConnection,
    uid: InstanceUid,
    seq: u64,
}

impl Bystander {
    /// Connects to `ws_url` and reports its status.
    pub async fn connect(ws_url: &str) -> Result<Bystander, Error> {
        let (ws, _) = opamp_transport::ws::connect(ws_url, &WsConnectOptions::default()).await?;
        let mut bystander = Bystander {
            ws,
            uid: InstanceUid::new_v7(),
            seq: 0,
        };
        // No AcceptsRemoteConfig: offers pushed to the fleet by a scenario must not queue up
        // in this agent's socket between its heartbeats.
        let mut first = hello(bystander.uid, 0);
        first.capabilities =
            (AgentCapabilities::REPORTS_STATUS | AgentCapabilities::REPORTS_HEARTBEAT).bits();
        bystander.exchange(&first).await?;
        Ok(bystander)
    }

    async fn exchange(&mut self, msg: &AgentToServer) -> Result<ServerToAgent, Error> {
        self.ws.send(msg).await?;
        loop {
            let reply: ServerToAgent = tokio::time::timeout(STEP, self.ws.recv())
                .await
                .map_err(|_| Error::timeout("a reply to the bystander", STEP))??
                .ok_or_else(|| Error::violation("the server closed the bystander's connection"))?;
            // Offers pushed on the server's initiative may come first; the reply to a
            // heartbeat is any message echoing the UID.
            if reply.instance_uid == self.uid.to_bytes() {
                return Ok(reply);
            }
        }
    }

    /// Sends a heartbeat and checks the reply: the UID echoed, no error.
    pub async fn still_served(&mut self) -> Result<(), Error> {
        self.seq += 1;
        let beat = heartbeat(self.uid, self.seq);
        let reply = self.exchange(&beat).await?;
        if let Some(error) = reply.error_response {
            return Err(Error::violation(format!(
                "the bystander got an error: {}",
                error.error_message
            )));
        }
        Ok(())
    }
}

/// The resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
