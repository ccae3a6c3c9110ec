//! OpAMP client SDK: what an agent (or its supervisor) embeds to be managed by an OpAMP
//! server, over WebSocket or plain HTTP.
//!
//! # Quick start
//!
//! The settings below are those of a typical OpenTelemetry Collector OpAMP extension: a
//! `wss://` endpoint with an API key header, a private CA and a client certificate from files,
//! an instance UID from the environment, identifying and non-identifying attributes, the
//! capabilities to report health and configuration and to accept remote configuration,
//! restarts and connection settings, and a 30 s heartbeat.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use opamp_client::proto::{
//!     AgentCapabilities, AgentDescription, ComponentHealth, InstanceUid, RemoteConfigStatus,
//!     RemoteConfigStatuses,
//! };
//! use opamp_client::transport::tls::{PemSource, TlsClientSettings};
//! use opamp_client::{Callbacks, Client, ClientSettings, MessageData};
//!
//! /// The Agent's side: apply remote configurations and say how it went.
//! struct Collector {
//!     client: Client,
//! }
//!
//! #[async_trait::async_trait]
//! impl Callbacks for Collector {
//!     async fn on_message(&self, msg: MessageData) {
//!         if let Some(config) = msg.remote_config {
//!             // ... merge and apply `config.config` here ...
//!             let status = RemoteConfigStatus {
//!                 last_remote_config_hash: config.config_hash,
//!                 status: RemoteConfigStatuses::Applied as i32,
//!                 error_message: String::new(),
//!             };
//!             if let Err(err) = self.client.set_remote_config_status(status) {
//!                 eprintln!("cannot report the remote config status: {err}");
//!             }
//!         }
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let instance_uid = match std::env::var("INSTANCE_ID") {
//!     Ok(id) => id.parse::<InstanceUid>()?,
//!     Err(_) => InstanceUid::new_v7(),
//! };
//! let description = AgentDescription::builder()
//!     .identifying("service.name", "otel-collector")
//!     .identifying("environment", "production")
//!     .identifying("region", "us-east-1")
//!     .identifying("k8s.cluster.name", "prod-cluster")
//!     .non_identifying("os.type", "linux")
//!     .non_identifying("host.arch", "amd64")
//!     .build();
//! let settings = ClientSettings::new("wss://opamp-server.example.com:4320/v1/opamp")
//!     .try_with_header("X-API-Key", &std::env::var("OPAMP_API_KEY")?)?
//!     .with_tls(
//!         TlsClientSettings::default()
//!             .with_default_roots(false)
//!             .with_ca(PemSource::file("/etc/certs/ca.crt"))
//!             .with_client_cert(
//!                 PemSource::file("/etc/certs/client.crt"),
//!                 PemSource::file("/etc/certs/client.key"),
//!             ),
//!     )
//!     .with_instance_uid(instance_uid)
//!     .with_agent_description(description)
//!     .with_capabilities(
//!         AgentCapabilities::REPORTS_EFFECTIVE_CONFIG
//!             | AgentCapabilities::REPORTS_HEALTH
//!             | AgentCapabilities::REPORTS_REMOTE_CONFIG
//!             | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
//!             | AgentCapabilities::ACCEPTS_RESTART_COMMAND
//!             | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
//!             | AgentCapabilities::REPORTS_HEARTBEAT,
//!     )
//!     .with_heartbeat_interval(Duration::from_secs(30));
//!
//! // Returns at once; connects (and reconnects) in the background.
//! let client = Client::start_with(settings, |client| Collector { client })?;
//! client.set_health(ComponentHealth { healthy: true, ..Default::default() })?;
//! // ... run the agent ...
//! client.stop().await?; // agent_disconnect, close; no callback runs after this
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! * [`state::ClientState`] holds the protocol's client-side rules without IO or clock reads
//!   (the sans-IO style of quinn-proto): one pending `AgentToServer` merged from every change,
//!   `sequence_num`, status compression, `ReportFullState`, capability checks, the instance
//!   UID, custom messages, available components, heartbeat and polling deadlines, and retry
//!   decisions (backoff with jitter, `Retry-After`, `UNAVAILABLE` with `retry_info`,
//!   `BAD_REQUEST` not retried). It is tested on virtual time, including property tests.
//! * A driver task per [`Client`] moves messages between the state and the network
//!   (WebSocket or plain HTTP, chosen by the URL scheme, through `opamp-transport`), runs the
//!   timers, pings the WebSocket with a read deadline to replace half-open connections, and
//!   calls the [`Callbacks`], one at a time.
//! * The flows the spec leaves to agents run inside the library: [`packages`] (download with
//!   resume, SHA-256 and signature checks, install, statuses) and [`connection_settings`]
//!   (candidate, reconnect, keep or revert; the CSR flow).
//! * [`persistence::StateStore`] keeps the instance UID, the remote config status and the
//!   connection settings across restarts.
//!
//! Every buffer is bounded: one pending message (never a queue), a size limit on every
//! message (64 MiB by default), a bounded event queue in the state machine.

pub use opamp_proto as proto;
pub use opamp_transport as transport;

pub mod callbacks;
mod client;
pub mod connection_settings;
mod driver;
mod error;
pub mod packages;
pub mod persistence;
pub mod settings;
pub mod state;

/// The attribute macro to implement [`Callbacks`] (and the other async traits of this crate)
/// without depending on `async-trait` directly: `#[opamp_client::async_trait]`.
pub use async_trait::async_trait;
pub use callbacks::{CallbackError, Callbacks, MessageData, NoopCallbacks};
pub use client::{Client, CustomMessageSent};
pub use error::Error;
pub use settings::{ClientSettings, HeaderProvider, PackagesSettings};
