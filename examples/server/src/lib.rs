//! The OpAMP fleet server: a web dashboard, a JSON API and an OpAMP endpoint (WebSocket and
//! plain HTTP) for fleets of agents, with label-selector configurations, staged rollouts, an
//! audit log and an embedded SQLite store.
//!
//! ```
//! use opamp_fleet_server::{FleetConfig, FleetServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Free ports and an in-memory store, so the example runs anywhere.
//! let config = FleetConfig::default()
//!     .with_opamp_addr("127.0.0.1:0".parse()?)
//!     .with_http_addr("127.0.0.1:0".parse()?)
//!     .with_store(":memory:");
//! let handle = FleetServer::start(config).await?;
//! println!("agents connect to {}", handle.opamp_ws_url());
//! println!("dashboard at http://{}/", handle.http_addr());
//! assert_eq!(handle.fleet().summary().await.total, 0);
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! One file per concern: [`settings`] (flags and TOML file), [`auth`] (agent API keys,
//! dashboard credentials), [`store`] (the [`store::Store`] trait and its SQLite
//! implementation with embedded migrations), [`selector`] (label selectors), [`configs`]
//! (validation and SHA-256 hashing), [`rollout`] (the staged-rollout state machine, pure and
//! tested directly), [`fleet`] (the state and the rules tying agents, configurations and
//! rollouts together), the OpAMP callbacks (on the `opamp-server` SDK), the JSON API and
//! dashboard (axum, static files embedded in the binary), [`metrics`] (Prometheus text) and
//! [`audit`].

pub mod agent;
mod api;
pub mod audit;
pub mod auth;
pub mod certs;
pub mod configs;
mod dashboard;
mod error;
pub mod fleet;
pub mod logsafe;
pub mod metrics;
mod opamp;
pub mod rollout;
pub mod selector;
mod server;
pub mod settings;
pub mod store;

pub use error::FleetError;
pub use fleet::Fleet;
pub use server::{FleetHandle, FleetServer};
pub use settings::FleetConfig;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
