//! One agent's connection: a WebSocket or a keep-alive plain-HTTP connection, from a source
//! address spread over 127.0.0.1–127.0.0.250 so that ephemeral ports do not run out.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opamp_proto::{AgentToServer, Message as _, ServerToAgent};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Largest server message accepted (the configs pushed are 2 KiB).
const MAX_MESSAGE: usize = 4 << 20;

/// What went wrong on one connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Socket IO.
    #[error("IO: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer.
    #[error("WebSocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The HTTP layer.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The server answered HTTP with another status than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A message that does not decode.
    #[error("bad message: {0}")]
    Decode(String),
    /// The connection was closed.
    #[error("closed")]
    Closed,
    /// Nothing came in time.
    #[error("timed out")]
    Timeout,
}

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket (`ws://`).
    WebSocket,
    /// Plain HTTP polling (`http://`).
    Http,
}

/// Where agents connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The transport of its scheme.
    pub transport: Transport,
    /// Server socket address.
    pub addr: SocketAddr,
    /// `host:port` as written in the URL.
    pub authority: String,
    /// Request path.
    pub path: String,
}

impl Target {
    /// Parses `ws://HOST:PORT/PATH` or `http://HOST:PORT/PATH` (the host must resolve to an
    /// IPv4 address).
    pub async fn parse(url: &str) -> Result<Target, String> {
        let (transport, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (Transport::WebSocket, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Transport::Http, rest)
        } else {
            return Err(format!("URL must start with ws:// or http://: {url}"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/v1/opamp"),
        };
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{authority} has no IPv4 address"))?;
        Ok(Target {
            url: url.to_owned(),
            transport,
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Connects a TCP socket from `127.0.0.(1 + index % 250)` (any port) to `addr`.
pub async fn tcp_from_spread_source(index: usize, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if addr.ip().is_loopback() {
        let last = u8::try_from(1 + index % 250).unwrap_or(1);
        socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0)))?;
    }
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

/// A connected agent.
pub enum Conn {
    /// WebSocket.
    Ws(Box<WebSocketStream<TcpStream>>),
    /// Plain HTTP (one keep-alive connection).
    Http {
        /// The request sender.
        sender: SendRequest<Full<Bytes>>,
        /// The connection task.
        task: tokio::task::JoinHandle<()>,
    },
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Conn::Http { task, .. } = self {
            task.abort();
        }
    }
}

/// Opens agent `index`'s connection to `target`.
pub async fn connect(index: usize, target: &Target) -> Result<Conn, ConnError> {
    let tcp = tcp_from_spread_source(index, target.addr).await?;
    match target.transport {
        Transport::WebSocket => {
            // Small buffers: thousands of agents share the process with the server.
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0)
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE));
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(target.url.as_str(), tcp, Some(config))
                    .await?;
            Ok(Conn::Ws(Box::new(ws)))
        }
        Transport::Http => {
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Conn::Http { sender, task })
        }
    }
}

fn ws_frame(msg: &AgentToServer) -> Bytes {
    let mut out = Vec::with_capacity(1 + msg.encoded_len());
    out.push(0);
    msg.encode(&mut out).unwrap_or_default();
    out.into()
}

/// Decodes a server WebSocket payload (`0x00` header + `ServerToAgent`).
pub fn decode_ws(payload: &[u8]) -> Result<ServerToAgent, ConnError> {
    match payload.split_first() {
        Some((0, data)) => {
            ServerToAgent::decode(data).map_err(|e| ConnError::Decode(e.to_string()))
        }
        _ => Err(ConnError::Decode("header is not 0".into())),
    }
}

impl Conn {
    /// Sends `msg` over WebSocket (no reply awaited).
    pub async fn ws_send(&mut self, msg: &AgentToServer) -> Result<(), ConnError> {
        match self {
            Conn::Ws(ws) => Ok(ws.send(Message::Binary(ws_frame(msg))).await?),
            Conn::Http { .. } => Err(ConnError::Decode("not a WebSocket".into())),
        }
    }

    /// The next server message over WebSocket.
    pub async fn ws_recv(&mut self) -> Result<ServerToAgent, ConnError> {
        let Conn::Ws(ws) = self else {
            return Err(ConnError::Decode("not a WebSocket".into()));
        };
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(payload))) => return decode_ws(&payload),
                Some(Ok(Message::Close(_))) | None => return Err(ConnError::Closed),
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.into()),
            }
        }
    }

    /// One request/response exchange: WebSocket send then the next message, or one HTTP
    /// POST.
    pub async fn exchange(
        &mut self,
        target: &Target,
        msg: &AgentToServer,
        limit: Duration,
    ) -> Result<ServerToAgent, ConnError> {
        let work = async {
            match self {
                Conn::Ws(_) => {
                    self.ws_send(msg).await?;
                    self.ws_recv().await
                }
                Conn::Http { sender, .. } => http_post(sender, target, msg).await,
            }
        };
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| ConnError::Timeout)?
    }
}

async fn http_post(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    msg: &AgentToServer,
) -> Result<ServerToAgent, ConnError> {
    sender.ready().await?;
    let request = http::Request::post(target.path.as_str())
        .header(http::header::HOST, target.authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(msg.encode_to_vec())))
        .map_err(|e| ConnError::Decode(e.to_string()))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Bounded read: the body is at most MAX_MESSAGE.
    let body = http_body_util::Limited::new(response.into_body(), MAX_MESSAGE)
        .collect()
        .await
        .map_err(|e| ConnError::Decode(e.to_string()))?
        .to_bytes();
    if status != 200 {
        return Err(ConnError::Status(status));
    }
    ServerToAgent::decode(body).map_err(|e| ConnError::Decode(e.to_string()))
}
