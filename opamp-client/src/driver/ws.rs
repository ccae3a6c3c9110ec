//! The WebSocket transport: one connection at a time, full duplex, heartbeats, and a ping
//! with a read deadline that detects half-open connections.

use std::time::{Duration, Instant};

use opamp_proto::ServerToAgent;
use opamp_transport::MaybeTlsStream;
use opamp_transport::ws::{self, ClientWsConnection, CloseCode, WsConfig, WsConnectOptions};
use opamp_transport::ws::{WsReceiver, WsSender};

use super::{Driver, Outcome, failure_of, proxy, sleep_until};
use crate::Error;
use crate::connection_settings::OpampConnectionParams;
use crate::state::Failure;

/// How long to wait for the server's close frame after sending ours.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(2);

/// Why a session ended.
enum SessionEnd {
    /// The connection broke (or the peer closed it); no close handshake from this side.
    Lost(Error),
    /// Close cleanly with `agent_disconnect`: stop requested.
    Stop,
    /// Close cleanly with `agent_disconnect`: new connection settings to try, or the server
    /// throttled us with `UNAVAILABLE`.
    Replace,
}

/// What woke the session loop.
enum Wake {
    Nudged,
    Received(Box<Result<Option<ServerToAgent>, opamp_transport::Error>>),
    Timer,
    Ping,
    Dead,
}

/// Errors of a received message that end the connection as a malformed message from the
/// server: the message is lost, so the client cannot know what it missed. Like opamp-go, the
/// client drops the connection and reconnects (the new connection opens with a status
/// report, which lets the server resend what matters), and backs off so that a server that
/// keeps sending such messages is not hammered.
fn malformed(err: &opamp_transport::Error) -> bool {
    use opamp_transport::Error as T;
    matches!(
        err,
        T::Decode(_)
            | T::NonZeroWsHeader(_)
            | T::TruncatedWsHeader
            | T::MissingWsHeader
            | T::MalformedWsHeader
    )
}

impl Driver {
    /// One connection attempt and, if it succeeds, the session on it.
    pub(super) async fn run_ws(&mut self, params: &OpampConnectionParams) -> Outcome {
        if self.wait_until_retry().await {
            return Outcome::Stop;
        }
        self.shared.state().on_connecting(Instant::now());
        let connection = match self.ws_connect(params).await {
            Ok(connection) => connection,
            Err(err) => {
                let failure = failure_of(&err);
                let failure = if failure == Failure::Rejected {
                    Failure::Transient
                } else {
                    failure
                };
                tracing::warn!(%err, endpoint = %params.endpoint, "OpAMP WebSocket connection failed");
                self.connect_failed(&err, failure).await;
                return Outcome::Reconnect;
            }
        };
        tracing::info!(endpoint = %params.endpoint, "OpAMP WebSocket connected");
        self.shared.state().on_connected(Instant::now());
        self.callbacks.on_connect().await;
        self.ws_session(connection).await
    }

    async fn ws_connect(
        &self,
        params: &OpampConnectionParams,
    ) -> Result<ClientWsConnection, Error> {
        let headers = self.connection_headers(params).await?;
        let config = WsConfig::default().with_limits(self.config.limits);
        let tls = self.tls_config(params)?;
        if let Some(proxy) = &params.proxy {
            return proxy::ws_connect(
                &params.endpoint,
                proxy,
                tls,
                headers,
                config,
                self.config.connect_timeout,
            )
            .await;
        }
        let mut options = WsConnectOptions::default()
            .with_config(config)
            .with_headers(headers)
            .with_connect_timeout(self.config.connect_timeout);
        if let Some(tls) = tls {
            options = options.with_tls(tls);
        }
        let (connection, _response) = ws::connect(&params.endpoint, &options).await?;
        Ok(connection)
    }

    async fn ws_session(&mut self, connection: ClientWsConnection) -> Outcome {
        let (mut tx, mut rx) = connection.split();
        let mut confirmed = false;
        let mut last_ping: Option<Instant> = None;
        let mut stop = self.shared.stop.subscribe();
        let end = loop {
            if let Err(err) = self.ws_flush(&mut tx).await {
                break SessionEnd::Lost(err);
            }
            if self.dispatch_events().await {
                break SessionEnd::Replace;
            }
            self.handle_requests().await;
            if self.shared.stop_requested() {
                break SessionEnd::Stop;
            }
            let (wants_disconnect, deadline, due) = {
                let state = self.shared.state();
                (
                    state.wants_disconnect(),
                    state.poll_timeout(),
                    state.has_pending(),
                )
            };
            if wants_disconnect {
                break SessionEnd::Replace;
            }
            if due {
                continue;
            }
            let last_received = rx.last_received();
            let ping_at = last_ping.map_or(last_received, |p| p.max(last_received))
                + self.config.ws_ping_interval;
            let dead_at = last_received + self.config.ws_read_timeout;
            let wake = tokio::select! {
                _ = self.shared.wake.notified() => Wake::Nudged,
                _ = stop.wait_for(|stop| *stop) => Wake::Nudged,
                received = rx.recv::<ServerToAgent>() => Wake::Received(Box::new(received)),
                () = sleep_until(deadline) => Wake::Timer,
                () = sleep_until(Some(ping_at)) => Wake::Ping,
                () = sleep_until(Some(dead_at)) => Wake::Dead,
            };
            match wake {
                Wake::Nudged | Wake::Timer => {}
                Wake::Received(received) => match *received {
                    Ok(Some(msg)) => {
                        let good = msg.error_response.is_none();
                        self.shared
                            .state()
                            .handle_server_message(msg, Instant::now());
                        if good && !confirmed {
                            confirmed = true;
                            self.connection_confirmed().await;
                        }
                    }
                    Ok(None) => {
                        let reason = rx
                            .peer_close_frame()
                            .map(|frame| format!("{} {}", frame.code, frame.reason))
                            .unwrap_or_default();
                        tracing::info!(%reason, "the server closed the WebSocket connection");
                        break SessionEnd::Lost(Error::Transport(
                            opamp_transport::Error::ConnectionClosed,
                        ));
                    }
                    Err(opamp_transport::Error::UnexpectedTextFrame) => {
                        // Not an OpAMP message at all: nothing was lost, the connection stays.
                        tracing::warn!("dropping a WebSocket text message from the server");
                    }
                    Err(err) => {
                        if malformed(&err) {
                            tracing::warn!(%err, "the server sent a message that does not decode; reconnecting");
                            self.shared.state().on_malformed_message();
                        }
                        break SessionEnd::Lost(err.into());
                    }
                },
                Wake::Ping => {
                    let sent = tokio::time::timeout(self.config.request_timeout, tx.ping()).await;
                    match sent {
                        Ok(Ok(())) => last_ping = Some(Instant::now()),
                        Ok(Err(err)) => break SessionEnd::Lost(err.into()),
                        Err(_) => {
                            break SessionEnd::Lost(Error::Transport(
                                opamp_transport::Error::Timeout {
                                    operation: "WebSocket ping",
                                    after: self.config.request_timeout,
                                },
                            ));
                        }
                    }
                }
                Wake::Dead => {
                    tracing::warn!(
                        silence = ?self.config.ws_read_timeout,
                        "nothing received, not even a pong: the WebSocket connection is half-open; replacing it"
                    );
                    break SessionEnd::Lost(Error::Transport(opamp_transport::Error::Timeout {
                        operation: "WebSocket read",
                        after: self.config.ws_read_timeout,
                    }));
                }
            }
        };
        match &end {
            SessionEnd::Stop | SessionEnd::Replace => self.ws_close(&mut tx, &mut rx).await,
            SessionEnd::Lost(err) => tracing::warn!(%err, "OpAMP WebSocket connection lost"),
        }
        self.shared.state().on_disconnected(Instant::now());
        if let SessionEnd::Lost(err) = &end {
            self.callbacks.on_connection_lost(err).await;
            if !confirmed {
                self.candidate_failed(err).await;
            }
        }
        match end {
            SessionEnd::Stop => Outcome::Stop,
            SessionEnd::Lost(_) | SessionEnd::Replace => Outcome::Reconnect,
        }
    }

    /// Sends every message that is due.
    async fn ws_flush(&self, tx: &mut WsSender<MaybeTlsStream>) -> Result<(), Error> {
        loop {
            let msg = {
                let mut state = self.shared.state();
                if state.wants_disconnect() {
                    return Ok(());
                }
                state.poll_message(Instant::now())
            };
            let Some(msg) = msg else {
                return Ok(());
            };
            tracing::trace!(sequence_num = msg.sequence_num, "sending AgentToServer");
            let sent = tokio::time::timeout(self.config.request_timeout, tx.send(&msg)).await;
            let now = Instant::now();
            match sent {
                Ok(Ok(())) => self.shared.state().on_send_succeeded(now),
                Ok(Err(err)) if err.is_too_large() => {
                    tracing::error!(%err, "dropping an AgentToServer over the size limit");
                    self.shared.state().on_send_failed(now, Failure::Rejected);
                }
                Ok(Err(err)) => {
                    self.shared.state().on_send_failed(now, Failure::Transient);
                    return Err(err.into());
                }
                Err(_) => {
                    self.shared.state().on_send_failed(now, Failure::Transient);
                    return Err(Error::Transport(opamp_transport::Error::Timeout {
                        operation: "WebSocket write",
                        after: self.config.request_timeout,
                    }));
                }
            }
        }
    }

    /// The client-initiated close (spec §"Closing Connection"): `agent_disconnect`, then the
    /// close frame, then the server's close reply (briefly).
    async fn ws_close(
        &self,
        tx: &mut WsSender<MaybeTlsStream>,
        rx: &mut WsReceiver<MaybeTlsStream>,
    ) {
        let timeout = self.config.stop_timeout;
        let msg = self.shared.state().poll_disconnect_message(Instant::now());
        if let Some(msg) = msg {
            let sent = tokio::time::timeout(timeout, tx.send(&msg)).await;
            let now = Instant::now();
            match sent {
                Ok(Ok(())) => self.shared.state().on_send_succeeded(now),
                _ => {
                    tracing::debug!("could not send agent_disconnect");
                    self.shared.state().on_send_failed(now, Failure::Transient);
                }
            }
        }
        if let Err(err) = tx.close(CloseCode::Normal, "agent disconnect").await {
            tracing::debug!(%err, "could not send the WebSocket close frame");
            return;
        }
        let drain = async { while let Ok(Some(_)) = rx.recv::<ServerToAgent>().await {} };
        let _ = tokio::time::timeout(CLOSE_REPLY_WAIT.min(timeout), drain).await;
    }
}
