//! WebSocket connections: the upgrade, then one task per connection that reads, writes and
//! runs the connection's callbacks in turn (so they never run concurrently).
//!
//! The task owns the socket: it is the connection's only writer. Messages for the agent wait
//! in the connection's state (merged, see [`crate::Connection::send`]) until the task picks
//! them up, so senders never wait on a slow agent; a write that takes longer than
//! [`crate::ServerSettings::write_timeout`] ends the connection.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use opamp_proto::{AgentToServer, InstanceUid, ServerToAgent};
use opamp_transport::codec::{TransportKind, encode_ws_message, ws_payload_data};
use opamp_transport::ws::{CloseCode, upgrade_error_response, upgrade_response};
use prost::Message as _;

use super::process::{Reply, process_message};
use super::read_ahead::ReadAhead;
use super::ws_frame::FrameWrite;
use super::{ResponseBody, admit, at_capacity};
use crate::Error;
use crate::callbacks::CloseReason;
use crate::connection::{Connection, Outgoing};
use crate::gate::GateGuard;
use crate::server::Shared;
use crate::state::{bad_request, has_content};

/// Answers a WebSocket upgrade request and starts the connection's task.
pub(super) async fn handle_upgrade<B>(
    shared: Arc<Shared>,
    request: Request<B>,
    remote: Option<std::net::SocketAddr>,
) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let (guard, callbacks) = match admit(&shared, &parts, remote, TransportKind::WebSocket).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let mut request = Request::from_parts(parts, body);
    let response = match upgrade_response(&request) {
        Ok(response) => response,
        Err(err) => return upgrade_error_response(&err),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    drop(request);
    let Some(conn) = shared.new_connection(TransportKind::WebSocket, remote, callbacks) else {
        return at_capacity(&shared);
    };
    shared.spawn(connection_task(
        Arc::clone(&shared),
        conn,
        guard,
        on_upgrade,
    ));
    response
}

/// The task of one WebSocket connection: waits for the upgrade, then drives the connection.
///
/// Written so that the task holds one `WebSocketStream` and little else: every idle agent
/// carries this future, so its size is per-agent memory.
async fn connection_task(
    shared: Arc<Shared>,
    conn: Connection,
    guard: GateGuard,
    on_upgrade: OnUpgrade,
) {
    let _guard = guard;
    // Scoped so that the moved-from values take no room in the task once connected.
    let mut ws = {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(%err, "WebSocket upgrade did not complete");
                shared.remove(&conn);
                conn.mark_closed();
                return;
            }
        };
        let config = shared.ws_config.websocket_config();
        let stream = ReadAhead::new(TokioIo::new(upgraded));
        WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await
    };
    run(&shared, &conn, &mut ws).await;
}

/// What the read side decided.
enum Step {
    Continue,
    Close(CloseReason, Option<(CloseCode, &'static str)>),
}

impl Step {
    /// Go on after a write that went out; a failed write ends the connection (no close
    /// frame: the socket may be mid-frame).
    fn after_write(written: Result<(), Error>) -> Self {
        match written {
            Ok(()) => Step::Continue,
            Err(err) => Step::Close(CloseReason::TransportError(err.to_string()), None),
        }
    }
}

/// What the task does after a wake-up, decided without waiting.
///
/// Doing it (sending, running callbacks) happens in a boxed future, one per wake-up: the
/// task of an idle connection then holds only what waiting needs (every agent carries it).
enum Action {
    /// Send what waits for the agent.
    Flush,
    /// Close as the embedder asked (`Connection::disconnect`).
    CloseRequested(crate::connection::CloseRequest),
    /// A binary message from the agent.
    Payload(Bytes),
    /// Something the agent should not have sent, answered with `BAD_REQUEST`.
    BadMessage(Error),
    /// The agent pinged: send the pong tungstenite queued.
    SendPong,
    /// The agent closed: send tungstenite's queued close reply, then stop.
    PeerClosed,
    /// The connection was quiet for the ping interval.
    Ping,
    /// Stop, with a close frame if given.
    Close(CloseReason, Option<(CloseCode, &'static str)>),
}

/// Drives one WebSocket connection until it ends, then runs `on_close`.
async fn run<S>(shared: &Shared, conn: &Connection, ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(conn = conn.id(), remote = ?conn.remote_addr(), "WebSocket connected");
    conn.inner.callbacks.on_connected(conn).await;
    let reason = drive(shared, conn, ws).await;
    shared.remove(conn);
    conn.finish(reason).await;
}

async fn drive<S>(shared: &Shared, conn: &Connection, ws: &mut WebSocketStream<S>) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut last_read = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    // The timer is armed lazily: it is moved earlier when needed, never later. When it fires
    // too early (messages arrived meanwhile), the checks below find nothing due and it is
    // re-armed, so a busy connection touches the timer about once per deadline period, not
    // once per message.
    let mut sleep = pin!(tokio::time::sleep(Duration::ZERO));
    let mut armed: Option<Instant> = None;
    // Kept registered across iterations so that waiting costs nothing per message.
    let mut wake = pin!(conn.inner.wake.notified());
    loop {
        if let Some(wanted) = next_deadline(shared, conn, last_read, ping_sent)
            && armed.is_none_or(|at| at > wanted)
        {
            sleep.as_mut().reset(wanted.into());
            armed = Some(wanted);
        }
        // Scoped: the wake-up's values are moved into the boxed future before it is awaited.
        let acting = {
            let action = tokio::select! {
                biased;
                () = &mut wake => {
                    wake.set(conn.inner.wake.notified());
                    match conn.take_close_request() {
                        Some(request) => Some(Action::CloseRequested(request)),
                        None => Some(Action::Flush),
                    }
                }
                item = ws.next() => {
                    last_read = Instant::now();
                    ping_sent = None;
                    read_action(conn, item)
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    let action = timer_action(shared, conn, last_read, ping_sent);
                    if matches!(action, Some(Action::Ping)) {
                        ping_sent = Some(Instant::now());
                    }
                    action
                }
            };
            let Some(action) = action else {
                continue;
            };
            Box::pin(act(shared, conn, ws, action))
        };
        if let Err(reason) = acting.await {
            return reason;
        }
    }
}

/// What to do with what the WebSocket yielded (`None`: nothing).
fn read_action(
    conn: &Connection,
    item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Action> {
    Some(match item {
        None => Action::Close(CloseReason::PeerClosed, None),
        Some(Ok(Message::Binary(payload))) => Action::Payload(payload),
        Some(Ok(Message::Text(_))) => Action::BadMessage(Error::TextMessage),
        Some(Ok(Message::Close(frame))) => {
            tracing::debug!(conn = conn.id(), ?frame, "agent closed the WebSocket");
            Action::PeerClosed
        }
        // tungstenite queued the answer: send it now, so that its output buffer is empty
        // whenever the task writes a frame of its own.
        Some(Ok(Message::Ping(_))) => Action::SendPong,
        Some(Ok(_)) => return None, // a pong
        Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(err))) => {
            tracing::debug!(conn = conn.id(), %err, "oversize message from the agent");
            Action::Close(
                CloseReason::MessageTooLarge,
                Some((CloseCode::Size, "message exceeds the size limit")),
            )
        }
        Some(Err(err)) => Action::Close(CloseReason::TransportError(err.to_string()), None),
    })
}

/// What the timer found due, if anything: the agent gone silent, a ping unanswered, a ping
/// to send.
fn timer_action(
    shared: &Shared,
    conn: &Connection,
    last_read: Instant,
    ping_sent: Option<Instant>,
) -> Option<Action> {
    let settings = &shared.settings;
    let now = Instant::now();
    let (gone, silent) = {
        let state = conn.lock();
        (
            state.agent.is_gone(now),
            state.agent.awaiting_first_message(),
        )
    };
    if gone && silent {
        tracing::debug!(conn = conn.id(), "no first message from the agent in time");
        Some(Action::Close(
            CloseReason::Gone,
            Some((CloseCode::Policy, "no message received")),
        ))
    } else if gone {
        tracing::debug!(conn = conn.id(), uid = ?conn.instance_uid(), "agent missed its heartbeats");
        Some(Action::Close(
            CloseReason::Gone,
            Some((CloseCode::Away, "no heartbeat received")),
        ))
    } else if ping_sent.is_some_and(|sent| now >= sent + settings.ws_pong_timeout) {
        tracing::debug!(
            conn = conn.id(),
            "no answer to the ping: half-open connection"
        );
        Some(Action::Close(CloseReason::Unresponsive, None))
    } else if ping_sent.is_none()
        && settings
            .ws_ping_interval
            .is_some_and(|i| now >= last_read + i)
    {
        Some(Action::Ping)
    } else {
        None
    }
}

/// Does what a wake-up decided; `Err` ends the connection with that reason.
async fn act<S>(
    shared: &Shared,
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    action: Action,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let step = match action {
        Action::Flush => Step::after_write(flush(shared, conn, ws).await),
        Action::CloseRequested(request) => {
            close(shared, ws, request.code, request.message).await;
            return Err(request.reason);
        }
        Action::Payload(payload) => on_payload(shared, conn, ws, payload).await,
        Action::BadMessage(err) => on_bad_message(shared, conn, ws, err).await,
        Action::SendPong => Step::after_write(within_write_timeout(shared, ws.flush()).await),
        Action::PeerClosed => {
            let _ = tokio::time::timeout(shared.settings.close_timeout, ws.flush()).await;
            return Err(CloseReason::PeerClosed);
        }
        Action::Ping => Step::after_write(write(shared, ws, Message::Ping(Bytes::new())).await),
        Action::Close(reason, code) => Step::Close(reason, code),
    };
    match step {
        Step::Continue => Ok(()),
        Step::Close(reason, code) => {
            if let Some((code, message)) = code {
                close(shared, ws, code, message).await;
            }
            Err(reason)
        }
    }
}

/// The next time the task must wake without input: ping due, pong overdue or heartbeat
/// deadline (`None`: nothing to wait for).
fn next_deadline(
    shared: &Shared,
    conn: &Connection,
    last_read: Instant,
    ping_sent: Option<Instant>,
) -> Option<Instant> {
    let settings = &shared.settings;
    let ping = match ping_sent {
        Some(sent) => Some(sent + settings.ws_pong_timeout),
        None => settings.ws_ping_interval.map(|i| last_read + i),
    };
    let gone = conn.lock().agent.liveness_deadline();
    match (ping, gone) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn on_payload<S>(
    shared: &Shared,
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    payload: Bytes,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Decoded straight into its box: the message stays behind a pointer while the callbacks
    // run.
    let msg = match decode_boxed(payload, shared) {
        Ok(msg) => msg,
        Err(err) if err.is_too_large() => {
            return Step::Close(
                CloseReason::MessageTooLarge,
                Some((CloseCode::Size, "message exceeds the size limit")),
            );
        }
        Err(err) => return on_bad_message(shared, conn, ws, err).await,
    };
    let processed = process_message(shared, conn, msg, Instant::now()).await;
    let sent = match processed.reply {
        Reply::Ack(uid) if uid.len() == InstanceUid::LEN => {
            write_binary(shared, ws, conn.ack_frame(&uid)).await
        }
        reply => send(shared, conn, ws, &reply.into_message()).await,
    };
    if sent.is_err() {
        return Step::after_write(sent);
    }
    if let Some(reason) = processed.close {
        let code = if reason == CloseReason::DuplicateInstanceUid {
            (CloseCode::Policy, "instance_uid already in use")
        } else {
            (CloseCode::Normal, "agent disconnected")
        };
        return Step::Close(reason, Some(code));
    }
    Step::after_write(flush(shared, conn, ws).await)
}

/// Decodes a WebSocket payload (spec §"WebSocket Message Format") into a boxed
/// `AgentToServer`, sharing the payload's memory for `bytes` fields.
fn decode_boxed(payload: Bytes, shared: &Shared) -> Result<Box<AgentToServer>, Error> {
    let data_len = ws_payload_data(&payload, &shared.limits)?.len();
    let data = payload.slice(payload.len() - data_len..);
    let mut msg = Box::<AgentToServer>::default();
    msg.merge(data)?;
    Ok(msg)
}

/// Answers an unusable message with `BAD_REQUEST` (spec §"Bad Request"), keeps the connection.
async fn on_bad_message<S>(
    shared: &Shared,
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    err: Error,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(conn = conn.id(), %err, "unusable message from the agent");
    let uid = conn
        .instance_uid()
        .map(|u| u.to_bytes())
        .unwrap_or_default();
    let reply = bad_request(uid, err.to_string());
    conn.inner.callbacks.on_read_message_error(conn, &err).await;
    Step::after_write(send(shared, conn, ws, &reply).await)
}

/// Most messages sent in one go before the task looks at its input again.
const FLUSH_BATCH: usize = 16;

/// Sends what waits for the agent (at most [`FLUSH_BATCH`] messages; the rest on the next
/// wake-up, so reading is never starved).
async fn flush<S>(
    shared: &Shared,
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for _ in 0..FLUSH_BATCH {
        let Some(outgoing) = conn.next_outgoing() else {
            return Ok(());
        };
        match outgoing {
            Outgoing::Message(msg) => send(shared, conn, ws, &msg).await?,
            Outgoing::Frame(frame) => write_binary(shared, ws, frame).await?,
        }
    }
    conn.inner.wake.notify_one();
    Ok(())
}

/// Encodes and sends `msg`; an oversize message is dropped and reported (spec §"WebSocket
/// Message Size Limits"), the connection stays.
async fn send<S>(
    shared: &Shared,
    conn: &Connection,
    ws: &mut WebSocketStream<S>,
    msg: &ServerToAgent,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if msg.instance_uid.len() == InstanceUid::LEN && !has_content(msg) {
        return write_binary(shared, ws, conn.ack_frame(&msg.instance_uid)).await;
    }
    match encode_ws_message(msg, &shared.limits) {
        Ok(payload) => write_binary(shared, ws, payload).await,
        Err(err) => {
            tracing::warn!(conn = conn.id(), %err, "dropping a message over the size limit");
            let err = Error::Transport(err);
            conn.inner
                .callbacks
                .on_message_response_error(conn, msg, &err)
                .await;
            Ok(())
        }
    }
}

/// Sends a message through tungstenite (control frames).
async fn write<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    message: Message,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    within_write_timeout(shared, ws.send(message)).await
}

/// Sends one binary message, framed and written by the task itself (see [`super::ws_frame`]).
///
/// tungstenite's output buffer is empty here: its own writes (pings, pongs, closes) are
/// always awaited to the end, so frames never interleave.
async fn write_binary<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    payload: Bytes,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut frame = FrameWrite::new(&payload);
    let stream = ws.get_mut();
    let writing = poll_fn(|cx| {
        frame
            .poll_write(stream, cx)
            .map_err(tokio_tungstenite::tungstenite::Error::Io)
    });
    within_write_timeout(shared, writing).await
}

/// Runs a write, limited to [`crate::ServerSettings::write_timeout`].
async fn within_write_timeout<F>(shared: &Shared, write: F) -> Result<(), Error>
where
    F: Future<Output = Result<(), tokio_tungstenite::tungstenite::Error>>,
{
    let mut writing = pin!(write);
    // Most writes complete at once (the socket buffer has room): no timer for them.
    if let Poll::Ready(result) = poll_fn(|cx| Poll::Ready(writing.as_mut().poll(cx))).await {
        return result.map_err(Error::WebSocket);
    }
    match tokio::time::timeout(shared.settings.write_timeout, writing).await {
        Ok(result) => result.map_err(Error::WebSocket),
        Err(_) => Err(Error::WriteTimeout),
    }
}

/// Sends a close frame and waits (briefly) for the agent's close reply.
async fn close<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &'static str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = shared.settings.close_timeout;
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(timeout, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Callbacks, ConnectingRequest, ConnectionResponse, NoopConnectionCallbacks, Server,
        ServerSettings,
    };

    struct Accept;

    #[async_trait::async_trait]
    impl Callbacks for Accept {
        async fn on_connecting(&self, _: &ConnectingRequest<'_>) -> ConnectionResponse {
            ConnectionResponse::accept(NoopConnectionCallbacks)
        }
    }

    /// The task of an idle WebSocket connection stays small: what processing one message
    /// needs (the decoded message, the reply) is boxed for that message only.
    #[tokio::test]
    async fn idle_connection_task_is_small() {
        let server = Server::new(ServerSettings::default(), Accept).unwrap();
        let shared = &server.shared;
        let conn = shared
            .new_connection(
                TransportKind::WebSocket,
                None,
                Arc::new(NoopConnectionCallbacks),
            )
            .unwrap();
        let (io, _peer) = tokio::io::duplex(64);
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let ws_size = std::mem::size_of_val(&ws);
        let task = run(shared, &conn, &mut ws);
        let size = ws_size + std::mem::size_of_val(&task);
        // Under 0.8 KiB in release builds; unoptimized builds lay futures out more loosely.
        let bound = if cfg!(debug_assertions) { 4096 } else { 1024 };
        assert!(size <= bound, "connection task future is {size} bytes");
    }
}
