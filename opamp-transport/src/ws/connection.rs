//! An open WebSocket connection carrying OpAMP messages, usable whole or split into a sending
//! and a receiving half.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::ready;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::WsConfig;
use crate::Error;
use crate::codec::ws::{decode_ws_message_bytes, encode_ws_message};

/// Longest close reason (a close frame's payload is at most 125 bytes, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// State shared by the two halves: the tungstenite stream behind a mutex that is only held
/// while one `poll` runs, never across an `.await` (so a pending receive does not block sends).
struct Shared<S> {
    ws: Mutex<WebSocketStream<S>>,
    config: WsConfig,
}

impl<S> Shared<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn lock(&self) -> MutexGuard<'_, WebSocketStream<S>> {
        // A panic while polling cannot leave the stream half-updated in a way that matters
        // more than the panic itself: keep using it.
        self.ws.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` and flushes it (and any queued pong or close reply).
    async fn send(&self, message: WsMessage) -> Result<(), WsError> {
        let mut message = Some(message);
        poll_fn(|cx| {
            let mut ws = self.lock();
            if message.is_some() {
                ready!(ws.poll_ready_unpin(cx))?;
                if let Some(message) = message.take() {
                    ws.start_send_unpin(message)?;
                }
            }
            ws.poll_flush_unpin(cx)
        })
        .await
    }

    async fn flush(&self) -> Result<(), WsError> {
        poll_fn(|cx| self.lock().poll_flush_unpin(cx)).await
    }

    async fn next(&self) -> Option<Result<WsMessage, WsError>> {
        poll_fn(|cx| self.lock().poll_next_unpin(cx)).await
    }

    /// Sends a close frame, waiting at most the configured close timeout. Errors are logged:
    /// this runs when the connection is ending anyway.
    async fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let frame = CloseFrame {
            code,
            reason: clip_reason(reason).into(),
        };
        let timeout = self.config.close_timeout;
        match tokio::time::timeout(timeout, self.send(WsMessage::Close(Some(frame)))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(from_ws_error(err)),
            Err(_) => Err(Error::Timeout {
                operation: "WebSocket close",
                after: timeout,
            }),
        }
    }
}

fn clip_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Maps a tungstenite error to the crate's error.
pub(crate) fn from_ws_error(err: WsError) -> Error {
    match err {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Error::MessageTooLarge {
                size: size as u64,
                limit: max_size as u64,
            }
        }
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::SendAfterClosing) => Error::ConnectionClosed,
        WsError::Io(err) => Error::Io(err),
        WsError::Http(response) => super::client::refused_upgrade(&response),
        other => Error::WebSocket(Box::new(other)),
    }
}

/// The sending half of a [`WsConnection`]: sends messages, pings and the close frame.
///
/// Meant to be owned by one writer task. A `send` that is cancelled midway may leave a message
/// partly written: treat the connection as broken then.
pub struct WsSender<S> {
    shared: Arc<Shared<S>>,
}

/// What the receiving half knows about the state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    /// A message over the limit arrived: a 1009 close is due (kept here so that a `recv`
    /// cancelled while sending it finishes it on the next call), then the error is returned.
    Oversize {
        size: u64,
        limit: u64,
    },
    /// The connection ended normally (close frame or end of stream).
    Closed,
    /// A fatal error was returned; the connection is unusable.
    Failed,
}

/// The receiving half of a [`WsConnection`]: receives and decodes messages.
///
/// Pings are answered automatically while receiving; pongs and pings count as activity for
/// [`WsReceiver::last_received`], so a caller can implement a read deadline by wrapping
/// [`WsReceiver::recv`] in `tokio::time::timeout` (it is cancellation safe) and checking it.
pub struct WsReceiver<S> {
    shared: Arc<Shared<S>>,
    state: RecvState,
    last_received: Instant,
    peer_close: Option<CloseFrame>,
}

/// An open WebSocket connection carrying OpAMP messages: `AgentToServer` out and
/// `ServerToAgent` in on a client, the reverse on a server (the methods are generic over
/// `prost::Message`).
///
/// Built by [`crate::ws::connect`] on the client side and by [`WsConnection::from_upgraded`]
/// (see [`crate::ws::accept`]) on the server side. [`WsConnection::split`] gives independent
/// halves so that one task can own the sending side while another receives.
pub struct WsConnection<S> {
    sender: WsSender<S>,
    receiver: WsReceiver<S>,
}

impl<S> fmt::Debug for WsConnection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnection")
            .field("config", &self.sender.shared.config)
            .field("state", &self.receiver.state)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WsSender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsSender")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WsReceiver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsReceiver")
            .field("config", &self.shared.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<S> WsConnection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps a tungstenite stream whose handshake is done. The stream should have been created
    /// with `config.websocket_config()` so that its limits match `config.limits`.
    pub fn from_websocket(ws: WebSocketStream<S>, config: WsConfig) -> Self {
        let shared = Arc::new(Shared {
            ws: Mutex::new(ws),
            config,
        });
        Self {
            sender: WsSender {
                shared: Arc::clone(&shared),
            },
            receiver: WsReceiver {
                shared,
                state: RecvState::Open,
                last_received: Instant::now(),
                peer_close: None,
            },
        }
    }

    /// Wraps a raw stream on which the opening handshake already happened, for `role`.
    pub async fn from_raw_socket(stream: S, role: Role, config: WsConfig) -> Self {
        let ws =
            WebSocketStream::from_raw_socket(stream, role, Some(config.websocket_config())).await;
        Self::from_websocket(ws, config)
    }

    /// Splits into a sending and a receiving half, each usable from its own task.
    pub fn split(self) -> (WsSender<S>, WsReceiver<S>) {
        (self.sender, self.receiver)
    }

    /// The settings of this connection.
    pub fn config(&self) -> &WsConfig {
        &self.sender.shared.config
    }

    /// See [`WsSender::send`].
    pub async fn send<M: prost::Message>(&mut self, msg: &M) -> Result<(), Error> {
        self.sender.send(msg).await
    }

    /// See [`WsSender::ping`].
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.sender.ping().await
    }

    /// See [`WsSender::close`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.sender.close(code, reason).await
    }

    /// See [`WsReceiver::recv`].
    pub async fn recv<M: prost::Message + Default>(&mut self) -> Result<Option<M>, Error> {
        self.receiver.recv().await
    }

    /// See [`WsReceiver::last_received`].
    pub fn last_received(&self) -> Instant {
        self.receiver.last_received()
    }

    /// See [`WsReceiver::peer_close_frame`].
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.receiver.peer_close_frame()
    }

    /// Runs `f` on the underlying stream, e.g. to read its peer address or TLS state.
    pub fn with_stream<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        self.sender.with_stream(f)
    }
}

impl<S> WsSender<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Encodes `msg` (varint header 0 and protobuf, spec §"WebSocket Message Format") and sends
    /// it as one binary message, flushed.
    ///
    /// A message over the limit is not sent: [`Error::MessageTooLarge`], and the connection
    /// stays usable. After the connection closed: [`Error::ConnectionClosed`].
    pub async fn send<M: prost::Message>(&mut self, msg: &M) -> Result<(), Error> {
        let payload = encode_ws_message(msg, &self.shared.config.limits)?;
        self.send_payload(payload).await
    }

    async fn send_payload(&mut self, payload: Bytes) -> Result<(), Error> {
        self.shared
            .send(WsMessage::Binary(payload))
            .await
            .map_err(from_ws_error)
    }

    /// Sends a ping with an empty payload. The peer's pong updates
    /// [`WsReceiver::last_received`] when the receiving half reads it.
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.shared
            .send(WsMessage::Ping(Bytes::new()))
            .await
            .map_err(from_ws_error)
    }

    /// Sends a close frame with `code` and `reason` (cut to 123 bytes) and flushes it, waiting
    /// at most [`WsConfig::close_timeout`]. The peer's close reply is read by the receiving
    /// half, whose `recv` then returns `Ok(None)`; sending is no longer possible.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.close(code, reason).await
    }

    /// Runs `f` on the underlying stream.
    pub fn with_stream<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(self.shared.lock().get_ref())
    }
}

impl<S> WsReceiver<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Receives the next OpAMP message.
    ///
    /// * `Ok(Some(msg))`: a binary message, decoded (spec §"WebSocket Message Format").
    /// * `Ok(None)`: the peer closed the connection (close frame, whose reply is sent, or end of
    ///   stream); every later call returns `Ok(None)` too.
    /// * [`Error::MessageTooLarge`]: a message over the limit was announced; the connection is
    ///   closed with code 1009 (Message Too Big, spec §"WebSocket Message Size Limits") and
    ///   unusable afterwards. The payload is not read into memory.
    /// * [`Error::UnexpectedTextFrame`] and the codec's decoding errors
    ///   ([`Error::NonZeroWsHeader`], [`Error::TruncatedWsHeader`], [`Error::Decode`], ...):
    ///   the message is dropped and the connection stays open; the caller decides whether to
    ///   close it.
    /// * Other errors (IO, WebSocket protocol violations) are fatal: later calls return
    ///   [`Error::ConnectionClosed`].
    ///
    /// Pings are answered and pings/pongs skipped. Cancellation safe: if the future is dropped
    /// before it completes, no message is lost (partly read frames stay buffered) and a due
    /// 1009 close is completed by the next call.
    pub async fn recv<M: prost::Message + Default>(&mut self) -> Result<Option<M>, Error> {
        loop {
            match self.state {
                RecvState::Open => {}
                RecvState::Oversize { size, limit } => {
                    if let Err(err) = self
                        .shared
                        .close(CloseCode::Size, "message exceeds the size limit")
                        .await
                    {
                        tracing::debug!(%err, "could not send the 1009 close frame");
                    }
                    self.state = RecvState::Failed;
                    return Err(Error::MessageTooLarge { size, limit });
                }
                RecvState::Closed => return Ok(None),
                RecvState::Failed => return Err(Error::ConnectionClosed),
            }
            let Some(item) = self.shared.next().await else {
                self.state = RecvState::Closed;
                return Ok(None);
            };
            match item {
                Ok(WsMessage::Binary(payload)) => {
                    self.last_received = Instant::now();
                    match decode_ws_message_bytes::<M>(payload, &self.shared.config.limits) {
                        Ok(msg) => return Ok(Some(msg)),
                        Err(Error::MessageTooLarge { size, limit }) => {
                            self.state = RecvState::Oversize { size, limit };
                        }
                        Err(err) => return Err(err),
                    }
                }
                Ok(WsMessage::Text(_)) => {
                    self.last_received = Instant::now();
                    return Err(Error::UnexpectedTextFrame);
                }
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => {
                    self.last_received = Instant::now();
                }
                Ok(WsMessage::Close(frame)) => {
                    self.last_received = Instant::now();
                    tracing::debug!(?frame, "WebSocket closed by the peer");
                    self.peer_close = frame;
                    self.state = RecvState::Closed;
                    // tungstenite queued the close reply; send it now, within the close
                    // timeout (a peer that stopped reading must not block us).
                    let timeout = self.shared.config.close_timeout;
                    match tokio::time::timeout(timeout, self.shared.flush()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => tracing::debug!(%err, "could not send the close reply"),
                        Err(_) => tracing::debug!("timed out sending the close reply"),
                    }
                    return Ok(None);
                }
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                    tracing::debug!(size, max_size, "refusing an oversize WebSocket message");
                    self.state = RecvState::Oversize {
                        size: size as u64,
                        limit: max_size as u64,
                    };
                }
                Err(err) => {
                    self.state = RecvState::Failed;
                    return Err(from_ws_error(err));
                }
            }
        }
    }

    /// When the last frame of any kind (message, ping, pong, close) was received, or when the
    /// connection was opened if none was.
    pub fn last_received(&self) -> Instant {
        self.last_received
    }

    /// The close frame the peer sent, once `recv` has returned `Ok(None)` because of it.
    pub fn peer_close_frame(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref()
    }

    /// Whether `recv` will only return `Ok(None)` or errors from now on.
    pub fn is_terminated(&self) -> bool {
        self.state != RecvState::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let clipped = clip_reason(&long);
        assert!(clipped.len() <= MAX_CLOSE_REASON);
        assert_eq!(clipped.len(), 122);
        assert_eq!(clip_reason("short"), "short");
    }
}
