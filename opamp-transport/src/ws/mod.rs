//! WebSocket transport over tokio (spec §"WebSocket Transport"): a thin async layer over
//! [`crate::codec::ws`] and tokio-tungstenite, for both sides.
//!
//! * Client: [`connect`] opens `ws://` or `wss://` connections with custom headers, a connect
//!   timeout, and typed errors for refused upgrades ([`crate::Error::HttpStatus`] with the
//!   status and `Retry-After`).
//! * Server: [`accept`] validates an upgrade request received by a hyper 1 server and turns
//!   the upgraded connection into a [`ServerWsConnection`].
//! * Both: [`WsConnection`] sends and receives OpAMP messages (one binary WebSocket message
//!   each: varint header 0, then the protobuf), enforces the size limit in both directions
//!   (an oversize incoming message closes the connection with code 1009, Message Too Big) and
//!   splits into a [`WsSender`] and a [`WsReceiver`] for a writer task and a reader task.
//!
//! Buffers are bounded and set explicitly through [`WsConfig`].

mod client;
mod config;
mod connection;
mod server;

pub(crate) use client::retry_after;
pub use client::{ClientWsConnection, WsConnectOptions, connect};
pub use config::WsConfig;
pub use connection::{WsConnection, WsReceiver, WsSender};
pub use server::{
    PendingWsUpgrade, ServerStream, ServerWsConnection, accept, upgrade_accept_key,
    upgrade_error_response, upgrade_response,
};
pub use tokio_tungstenite::tungstenite;
pub use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
pub use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
