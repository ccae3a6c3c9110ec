//! Misbehaving agents, run against an OpAMP server at a `ws://` URL (its plain-HTTP endpoint
//! is the same URL with `http://`).
//!
//! Each scenario connects a well-behaved [`Bystander`] first and checks afterwards that it is
//! still served. The accepted answers follow the spec (sections cited per scenario); anything
//! else is an [`Error::Violation`].

use std::io::Write as _;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use opamp_proto::{InstanceUid, ServerErrorResponseType};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::raw::{
    Bystander, RawWs, heartbeat, hello, http_post, http_url_of, raw_ws, read_answer, split_url,
    ws_payload,
};
use super::{Answer, Outcome, STEP};
use crate::Error;

const BAD_REQUEST: i32 = ServerErrorResponseType::BadRequest as i32;

/// Close codes a server may use for a malformed WebSocket message: protocol error (1002),
/// unsupported data (1003), invalid payload (1007), policy violation (1008).
const MALFORMED_CLOSE_CODES: [u16; 4] = [1002, 1003, 1007, 1008];

fn malformed_answer_ok(answer: &Answer) -> bool {
    match answer {
        Answer::ErrorResponse { kind, .. } => *kind == BAD_REQUEST,
        Answer::Closed { code, .. } => MALFORMED_CLOSE_CODES.contains(code),
        _ => false,
    }
}

/// Opens a raw connection that first sends a valid report (so the server knows the UID),
/// and reads the reply.
async fn introduced(ws_url: &str) -> Result<(RawWs, InstanceUid), Error> {
    let mut ws = raw_ws(ws_url).await?;
    let uid = InstanceUid::new_v7();
    ws.send(Message::Binary(ws_payload(&hello(uid, 0)).into()))
        .await?;
    match read_answer(&mut ws, STEP).await? {
        Answer::NormalReply | Answer::NewInstanceUid => Ok((ws, uid)),
        other => Err(Error::violation(format!(
            "a valid first report was answered with {other}"
        ))),
    }
}

/// Sends one malformed WebSocket message after a valid report and checks the answer.
async fn malformed_ws(
    scenario: &'static str,
    ws_url: &str,
    message: Message,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let (mut ws, _) = introduced(ws_url).await?;
    ws.send(message).await?;
    let answer = read_answer(&mut ws, STEP).await?;
    if !malformed_answer_ok(&answer) {
        return Err(Error::violation(format!(
            "{scenario}: expected a BAD_REQUEST error response or a close with one of \
             {MALFORMED_CLOSE_CODES:?}, got {answer}"
        )));
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario,
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A binary message whose header varint is 1 (spec §"WebSocket Message Format": the header
/// MUST be 0; a non-zero header is malformed).
pub async fn non_zero_ws_header(ws_url: &str) -> Result<Outcome, Error> {
    let mut payload = ws_payload(&heartbeat(InstanceUid::new_v7(), 1));
    payload[0] = 1;
    malformed_ws(
        "non-zero WebSocket header",
        ws_url,
        Message::Binary(payload.into()),
    )
    .await
}

/// A binary message that is only an unfinished header varint (`0x80`).
pub async fn truncated_varint(ws_url: &str) -> Result<Outcome, Error> {
    malformed_ws(
        "truncated header varint",
        ws_url,
        Message::Binary(vec![0x80u8].into()),
    )
    .await
}

/// A zero header followed by bytes that are not an `AgentToServer`.
pub async fn garbage_protobuf(ws_url: &str) -> Result<Outcome, Error> {
    malformed_ws(
        "garbage protobuf",
        ws_url,
        Message::Binary(vec![0x00, 0x0a, 0x10, 0x01, 0x93, 0xff, 0xff].into()),
    )
    .await
}

/// A text message (spec §"WebSocket Transport": OpAMP messages are binary).
pub async fn text_frame(ws_url: &str) -> Result<Outcome, Error> {
    malformed_ws(
        "text frame",
        ws_url,
        Message::Text("{\"instance_uid\":\"not protobuf\"}".into()),
    )
    .await
}

/// A WebSocket message one byte over `limit`, the server's message size limit: the server
/// must close with 1009 (spec §"WebSocket Message Size Limits").
pub async fn oversize_ws_message(ws_url: &str, limit: usize) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let (mut ws, _) = introduced(ws_url).await?;
    // The server may close while the frame is still being written.
    let _ = ws.send(Message::Binary(vec![0u8; limit + 1].into())).await;
    let answer = read_answer(&mut ws, STEP).await?;
    if !matches!(answer, Answer::Closed { code: 1009, .. }) {
        return Err(Error::violation(format!(
            "an oversize WebSocket message: expected close 1009, got {answer}"
        )));
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario: "oversize WebSocket message",
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A plain-HTTP body one byte over `limit`: the server must answer 413 (spec §"Plain HTTP
/// Message Size Limits").
pub async fn oversize_http_body(ws_url: &str, limit: usize) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let response = http_post(&http_url_of(ws_url), "", &vec![0u8; limit + 1]).await?;
    if response.status != 413 {
        return Err(Error::violation(format!(
            "an oversize HTTP body: expected 413, got {}",
            response.status
        )));
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario: "oversize HTTP body",
        answer: Answer::HttpStatus(413),
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A gzip body of a few KiB that inflates to four times `limit`: the server must stop
/// inflating at the limit and answer 413 (limits apply after decompression, spec §"Plain HTTP
/// Message Size Limits"); a 400 for an unusable body is accepted too.
pub async fn gzip_bomb(ws_url: &str, limit: usize) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 64 * 1024];
    let mut left = limit.saturating_mul(4).max(1 << 20);
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n])?;
        left -= n;
    }
    let bomb = encoder.finish()?;
    let response = http_post(&http_url_of(ws_url), "Content-Encoding: gzip\r\n", &bomb).await?;
    if response.status != 413 && response.status != 400 {
        return Err(Error::violation(format!(
            "a gzip bomb ({} bytes inflating to {}): expected 413, got {}",
            bomb.len(),
            limit.saturating_mul(4),
            response.status
        )));
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario: "gzip bomb",
        answer: Answer::HttpStatus(response.status),
        error: None,
        elapsed: start.elapsed(),
    })
}

/// An agent that reports, then never reads again while `push` makes the server send it
/// data (called every 100 ms for `hold`). The server must neither block others nor buffer
/// without bound: the bystander is served throughout. Answers [`Answer::Dropped`] if the
/// server gave the connection up, [`Answer::Silent`] if it kept it (with its outbound data
/// merged, not queued).
pub async fn never_reading_agent(
    ws_url: &str,
    hold: Duration,
    mut push: impl FnMut(),
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let (mut ws, _) = introduced(ws_url).await?;
    let until = Instant::now() + hold;
    let mut beats = 0u32;
    while Instant::now() < until {
        push();
        tokio::time::sleep(Duration::from_millis(100)).await;
        beats += 1;
        if beats.is_multiple_of(10) {
            bystander.still_served().await?;
        }
    }
    bystander.still_served().await?;
    // Now read: what the server buffered for us drains, then either the end or silence.
    let mut drained = 0usize;
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Err(_) => break Answer::Silent,
            Ok(None) | Ok(Some(Err(_))) => break Answer::Dropped,
            Ok(Some(Ok(Message::Close(frame)))) => {
                break Answer::Closed {
                    code: frame.as_ref().map_or(1005, |f| f.code.into()),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                };
            }
            Ok(Some(Ok(message))) => {
                drained += message.len();
                if drained > 1 << 30 {
                    return Err(Error::violation(
                        "more than 1 GiB was queued for an agent that does not read",
                    ));
                }
            }
        }
    };
    Ok(Outcome {
        scenario: "agent that never reads",
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A TCP client that connects and never sends a byte: the server must close it within
/// `limit` (e.g. its header read timeout plus slack).
pub async fn silent_tcp_client(ws_url: &str, limit: Duration) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let (authority, _) = split_url(ws_url)?;
    let mut tcp = TcpStream::connect(&authority).await?;
    let mut buf = [0u8; 1024];
    let answer = match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
        Err(_) => Answer::Silent,
        Ok(Ok(0)) | Ok(Err(_)) => Answer::Dropped,
        Ok(Ok(n)) => match super::raw::parse_response(&buf[..n]) {
            Ok(response) => Answer::HttpStatus(response.status),
            Err(_) => Answer::Dropped,
        },
    };
    if answer == Answer::Silent {
        return Err(Error::violation(format!(
            "a client that never sent a request was kept open for {limit:?}"
        )));
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario: "TCP client that never sends",
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}

/// A WebSocket client that completes the upgrade, answers pings, and never sends an OpAMP
/// message: the server must close it within `limit` (e.g. its liveness deadline plus slack).
pub async fn silent_ws_agent(ws_url: &str, limit: Duration) -> Result<Outcome, Error> {
    let start = Instant::now();
    let mut bystander = Bystander::connect(ws_url).await?;
    let mut ws = raw_ws(ws_url).await?;
    let answer = read_answer(&mut ws, limit).await?;
    match answer {
        Answer::Closed { .. } | Answer::Dropped => {}
        other => {
            return Err(Error::violation(format!(
                "a WebSocket client that never sent a message: expected the server to close \
                 it within {limit:?}, got {other}"
            )));
        }
    }
    bystander.still_served().await?;
    Ok(Outcome {
        scenario: "WebSocket agent that never sends",
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}

/// Two live WebSocket connections reporting the same instance UID. The server SHOULD detect
/// the duplicate and assign the newcomer a new UID, or MAY refuse it (spec §"Duplicate
/// instance_uid Detection", §"Duplicate WebSocket Connections"); serving both as if nothing
/// was wrong is a violation of the SHOULD. The first connection must stay served.
pub async fn duplicate_instance_uid(ws_url: &str) -> Result<Outcome, Error> {
    let start = Instant::now();
    let (mut first, uid) = introduced(ws_url).await?;
    let mut second = raw_ws(ws_url).await?;
    second
        .send(Message::Binary(ws_payload(&hello(uid, 0)).into()))
        .await?;
    let answer = read_answer(&mut second, STEP).await?;
    let accepted = match &answer {
        Answer::NewInstanceUid => true,
        Answer::ErrorResponse { kind, .. } => *kind == BAD_REQUEST,
        Answer::Closed { code, .. } => *code == 1008,
        Answer::Dropped => true,
        _ => false,
    };
    if !accepted {
        return Err(Error::violation(format!(
            "a second connection with a live instance UID: expected a new UID or a refusal, \
             got {answer}"
        )));
    }
    first
        .send(Message::Binary(ws_payload(&heartbeat(uid, 1)).into()))
        .await?;
    match read_answer(&mut first, STEP).await? {
        Answer::NormalReply => {}
        other => {
            return Err(Error::violation(format!(
                "the first owner of a duplicated UID was answered with {other}"
            )));
        }
    }
    Ok(Outcome {
        scenario: "same instance UID on two connections",
        answer,
        error: None,
        elapsed: start.elapsed(),
    })
}
