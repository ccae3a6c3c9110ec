//! OpAMP server SDK: what a control plane embeds to manage a fleet of agents over WebSocket
//! and plain HTTP.
//!
//! # Quick start
//!
//! Accept agents that present an API key, offer each a collector configuration chosen from
//! its `environment` and `region` identifying attributes (with a SHA-256 hash), and ask for
//! the agent's description and health when the server does not have them:
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//!
//! use opamp_server::proto::{
//!     AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentRemoteConfig, AgentToServer,
//!     ServerToAgent, ServerToAgentFlags,
//! };
//! use opamp_server::state::{AgentStatus, StatusChanges};
//! use opamp_server::{
//!     Callbacks, ConnectingRequest, Connection, ConnectionCallbacks, ConnectionResponse, Server,
//!     ServerSettings, async_trait,
//! };
//! use sha2::{Digest, Sha256};
//!
//! /// Admits agents that send a non-empty `X-API-Key` header; 401 for the others.
//! struct ApiKeyAuth;
//!
//! #[async_trait]
//! impl Callbacks for ApiKeyAuth {
//!     async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
//!         match request.header_str("x-api-key") {
//!             Some(key) if !key.is_empty() => ConnectionResponse::accept(CollectorConfig::default()),
//!             _ => ConnectionResponse::unauthorized(),
//!         }
//!     }
//! }
//!
//! /// Per-connection callbacks.
//! #[derive(Default)]
//! struct CollectorConfig {
//!     asked_full_state: AtomicBool,
//! }
//!
//! #[async_trait]
//! impl ConnectionCallbacks for CollectorConfig {
//!     async fn on_message(&self, conn: &Connection, _msg: &AgentToServer) -> Option<ServerToAgent> {
//!         // The merged status: parts the agent omitted keep their last reported value.
//!         let status = conn.status();
//!         let mut reply = ServerToAgent::default();
//!         let missing_health =
//!             status.has_capability(AgentCapabilities::REPORTS_HEALTH) && status.health.is_none();
//!         if (status.agent_description.is_none() || missing_health)
//!             && !self.asked_full_state.swap(true, Ordering::Relaxed)
//!         {
//!             reply.flags |= ServerToAgentFlags::REPORT_FULL_STATE.bits();
//!         }
//!         // (Re)compute the config when the description changes. The server resends it while
//!         // the agent reports another hash, and only to agents with AcceptsRemoteConfig.
//!         if conn.last_changes().contains(StatusChanges::AGENT_DESCRIPTION)
//!             || conn.remote_config().is_none()
//!         {
//!             reply.remote_config = Some(config_for(&status));
//!         }
//!         Some(reply)
//!     }
//! }
//!
//! fn attribute<'a>(status: &'a AgentStatus, key: &str) -> &'a str {
//!     status.identifying_attribute(key).and_then(|v| v.as_str()).unwrap_or("")
//! }
//!
//! /// The seed's per-environment collector configuration.
//! const TEMPLATE: &str = r#"receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         endpoint: 0.0.0.0:4317
//! processors:
//!   batch:
//!     timeout: 10s
//!   resource:
//!     attributes:
//!       - key: environment
//!         value: {env}
//!         action: upsert
//!       - key: region
//!         value: {region}
//!         action: upsert
//! exporters:
//!   otlp:
//!     endpoint: tempo-{env}-{region}.monitoring.svc:4317
//! service:
//!   pipelines:
//!     traces:
//!       receivers: [otlp]
//!       processors: [resource, batch]
//!       exporters: [otlp]
//! "#;
//!
//! /// For agents that did not describe themselves.
//! const DEFAULT_CONFIG: &str = r#"receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         endpoint: 0.0.0.0:4317
//! exporters:
//!   debug:
//!     verbosity: detailed
//! service:
//!   pipelines:
//!     traces:
//!       receivers: [otlp]
//!       exporters: [debug]
//! "#;
//!
//! fn config_for(status: &AgentStatus) -> AgentRemoteConfig {
//!     let body = if status.agent_description.is_some() {
//!         TEMPLATE
//!             .replace("{env}", attribute(status, "environment"))
//!             .replace("{region}", attribute(status, "region"))
//!     } else {
//!         DEFAULT_CONFIG.to_owned()
//!     };
//!     let file = AgentConfigFile { body: body.into(), content_type: "text/yaml".into() };
//!     let hash = Sha256::digest(&file.body);
//!     AgentRemoteConfig {
//!         config: Some(AgentConfigMap {
//!             config_map: [("collector.yaml".to_owned(), file)].into(),
//!         }),
//!         config_hash: hash.to_vec().into(),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Listen on 127.0.0.1:4320 (port 0 here, so the example runs anywhere), path /v1/opamp.
//! let settings = ServerSettings::default().with_listen_addr("127.0.0.1:0".parse()?);
//! let server = Server::new(settings, ApiKeyAuth)?;
//! let addr = server.start().await?;
//!
//! // An agent, written with opamp-transport only, in production and eu-west-1.
//! use opamp_server::proto::{AgentDescription, InstanceUid};
//! use opamp_transport::ws::{WsConnectOptions, connect};
//! let url = format!("ws://{addr}/v1/opamp");
//! let options = WsConnectOptions::default()
//!     .with_header("x-api-key".parse()?, "secret".parse()?);
//! let (mut agent, _) = connect(&url, &options).await?;
//! agent
//!     .send(&AgentToServer {
//!         instance_uid: InstanceUid::new_v7().to_bytes(),
//!         capabilities: (AgentCapabilities::REPORTS_STATUS
//!             | AgentCapabilities::ACCEPTS_REMOTE_CONFIG)
//!             .bits(),
//!         agent_description: Some(
//!             AgentDescription::builder()
//!                 .service_name("otel-collector")
//!                 .identifying("environment", "production")
//!                 .identifying("region", "eu-west-1")
//!                 .build(),
//!         ),
//!         ..Default::default()
//!     })
//!     .await?;
//! let reply: ServerToAgent = agent.recv().await?.expect("a reply");
//! let config = reply.remote_config.expect("a config offer");
//! let file = &config.config.as_ref().unwrap().config_map["collector.yaml"];
//! assert!(std::str::from_utf8(&file.body)?.contains("tempo-production-eu-west-1"));
//! assert_eq!(&config.config_hash[..], &Sha256::digest(&file.body)[..]);
//!
//! // Without the API key: 401.
//! let refused = connect(&url, &WsConnectOptions::default()).await.unwrap_err();
//! assert!(refused.to_string().contains("401"));
//!
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! `examples/quickstart.rs` is the same server as a program listening on `127.0.0.1:4320`.
//! To mount the endpoint into an existing axum router instead of listening, see
//! [`Server::attach`].
//!
//! # Design
//!
//! * **Sans-IO protocol state.** [`state::AgentState`] holds one agent's protocol state and
//!   applies the spec's server-side rules without IO or clock reads: server capabilities in
//!   the first reply, `instance_uid` echoed, `ReportFullState` on a `sequence_num` gap, the
//!   merged [`state::AgentStatus`], offers (remote config, packages, connection settings)
//!   sent again while the agent reports another hash and only to agents whose capabilities
//!   accept them, `RequestInstanceUid`, the heartbeat offer and liveness. It is tested
//!   directly, with property tests over arbitrary report sequences.
//! * **Service.** [`OpampService`] (a `tower` service) serves both transports on one
//!   endpoint: `Content-Type: application/x-protobuf` is plain HTTP, anything else a
//!   WebSocket upgrade. Plain-HTTP agents get a session keyed by instance UID that lasts
//!   across polls, so [`Connection::send`] works the same over both transports (over HTTP
//!   the message waits, merged, for the next poll). Request bodies may be gzip; responses
//!   are gzip when the agent accepts it. Size limits apply both ways (1009 / 413).
//! * **One task per WebSocket.** It reads, writes and runs the connection's callbacks in
//!   turn, so callbacks of one connection never run concurrently and the socket has one
//!   writer. Outbound messages wait merged in the connection state, never in a growing
//!   queue; tungstenite's buffers are set small and explicitly. Fleet-wide sends
//!   ([`Server::broadcast`], [`Server::offer_remote_config_to_all`]) encode once and never
//!   wait on an agent.
//! * **Shutdown.** [`Server::shutdown`] stops accepting, closes every WebSocket with 1001,
//!   waits for running callbacks, runs `on_close` everywhere and returns; no callback runs
//!   afterwards.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod broadcast;
mod callbacks;
mod connection;
mod error;
mod gate;
mod server;
mod service;
mod settings;
pub mod state;

pub use broadcast::{BroadcastReport, PreparedMessage};
#[cfg(feature = "tls")]
pub use callbacks::PeerCertificates;
pub use callbacks::{
    Callbacks, CloseReason, ConnectingRequest, ConnectionCallbacks, ConnectionResponse,
    NoopConnectionCallbacks, RemoteAddr,
};
pub use connection::Connection;
pub use error::Error;
pub use opamp_transport::codec::TransportKind;
pub use server::Server;
pub use service::{OpampService, ResponseBody};
pub use settings::{DEFAULT_PATH, DEFAULT_PORT, ServerSettings};
pub use state::DuplicateUidPolicy;

/// Re-export of the `async_trait` attribute used to implement [`Callbacks`] and
/// [`ConnectionCallbacks`].
pub use async_trait::async_trait;
/// The OpAMP message types.
pub use opamp_proto as proto;
/// TLS settings for [`ServerSettings::with_tls`] (rustls).
#[cfg(feature = "tls")]
pub use opamp_transport::tls;
