//! OpAMP transports for both sides of the protocol: WebSocket and plain HTTP, over tokio,
//! hyper 1 and rustls, on top of a synchronous, allocation-bounded codec.
//!
//! # Quick start
//!
//! A server that upgrades a request to WebSocket and answers every `AgentToServer`, and a
//! client that talks to it, over a loopback socket:
//!
//! ```
//! use hyper::server::conn::http1;
//! use hyper::service::service_fn;
//! use hyper_util::rt::TokioIo;
//! use opamp_proto::{AgentToServer, ServerToAgent};
//! use opamp_transport::ws::{self, CloseCode, WsConfig, WsConnectOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/v1/opamp", listener.local_addr()?);
//!
//! // Server: accept the upgrade, then echo the instance UID back.
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let service = service_fn(|mut request| async move {
//!         let (response, pending) = ws::accept(&mut request, WsConfig::default())?;
//!         tokio::spawn(async move {
//!             let mut connection = pending.connection().await?;
//!             while let Some(msg) = connection.recv::<AgentToServer>().await? {
//!                 let reply = ServerToAgent {
//!                     instance_uid: msg.instance_uid,
//!                     ..Default::default()
//!                 };
//!                 connection.send(&reply).await?;
//!             }
//!             Ok::<_, opamp_transport::Error>(())
//!         });
//!         Ok::<_, opamp_transport::Error>(response)
//!     });
//!     http1::Builder::new()
//!         .serve_connection(TokioIo::new(tcp), service)
//!         .with_upgrades()
//!         .await?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! });
//!
//! // Client.
//! let (mut connection, _response) = ws::connect(&url, &WsConnectOptions::default()).await?;
//! let hello = AgentToServer {
//!     instance_uid: vec![1; 16].into(),
//!     sequence_num: 1,
//!     ..Default::default()
//! };
//! connection.send(&hello).await?;
//! let reply: ServerToAgent = connection.recv().await?.expect("a reply");
//! assert_eq!(&reply.instance_uid[..], &[1; 16]);
//! connection.close(CloseCode::Normal, "bye").await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! The crate is layered, each layer thin and testable on its own:
//!
//! | layer | what | IO |
//! | --- | --- | --- |
//! | [`codec`] | OpAMP framing: WebSocket varint header + protobuf, HTTP bodies with gzip, request classification, `Retry-After`, [`codec::Limits`] | none: bytes in, message or typed [`Error`] out |
//! | [`ws`] | WebSocket connections: [`ws::connect`] for clients (`ws://`, `wss://`), [`ws::accept`] for hyper 1 servers, [`ws::WsConnection`] splitting into sender and receiver halves | tokio-tungstenite |
//! | [`http`] | plain HTTP: [`http::HttpClient`] (keep-alive pool, gzip), and the server helpers [`http::read_request`], [`http::protobuf_response`], [`http::error_response`] | hyper 1 |
//! | `tls` | rustls client and server configurations from PEM, mTLS, a `TlsAcceptor` for servers (feature `tls`) | tokio-rustls |
//!
//! The IO layers only move bytes: every rule about sizes and formats lives in the codec, so
//! that the same checks apply on both sides and to both transports. Every buffer is bounded:
//! incoming WebSocket messages are refused from their frame header before the payload is read
//! (and the connection closed with 1009), HTTP bodies are read up to a cap on the wire and
//! inflated up to the limit, the tungstenite buffers are set explicitly (4 KiB read buffer by
//! default, see [`ws::WsConfig`]). Nothing here applies protocol policy (sequence numbers,
//! heartbeats, reconnection, authentication): the `opamp-client` and `opamp-server` crates do.
//!
//! One error type, [`Error`], covers everything; [`Error::is_peer_misbehaviour`] separates
//! what the other side got wrong from local and IO problems, and [`Error::http_status`] gives
//! the status a server answers a bad request with.
//!
//! # Features
//!
//! * `tls-ring` (default) / `tls-aws-lc`: TLS with rustls and the named crypto provider
//!   (aws-lc-rs wins when both are on). `tls` alone enables TLS with the process-default
//!   provider.
//! * `tls-webpki-roots` (default): trust Mozilla's root certificates.
//! * `tls-native-roots`: trust the operating system's root store.
//!
//! Without any TLS feature, `wss://` and `https://` URLs fail with [`Error::TlsNotEnabled`].

pub mod codec;
mod error;
pub mod http;
mod stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod ws;

pub use codec::Limits;
pub use error::Error;
pub use stream::MaybeTlsStream;
