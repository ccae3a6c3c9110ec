//! Interoperability tests against other OpAMP implementations, and a conformance kit of
//! misbehaving peers.
//!
//! * [`peers`]: the pinned third-party peers that `interop/setup.sh` installs (the Python
//!   `opentelemetry-opamp-client`, the npm `@elastic/opamp-client-node` and
//!   `@elastic/mockopampserver`) and the driver processes under `interop/peers/` that run them
//!   and print what they see as JSON lines.
//! * [`RecordingServer`]: our server (opamp-server) offering a remote configuration and
//!   recording what each agent reports, as the peer of third-party clients.
//! * [`harness`]: scaffolding the interoperability tests share.
//! * [`conformance`]: one function per misbehaving-peer scenario, run against any OpAMP
//!   server URL (misbehaving agents) or against our client (misbehaving servers).
//!
//! # Example
//!
//! Play a client that sends a WebSocket message with a non-zero header against our server:
//! the server must answer with a `BAD_REQUEST` error response and keep serving others.
//!
//! ```
//! use opamp_interop::RecordingServer;
//! use opamp_interop::conformance::server;
//! use opamp_server::ServerSettings;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), opamp_interop::Error> {
//! let ours = RecordingServer::start(ServerSettings::default(), None).await?;
//! let outcome = server::non_zero_ws_header(&ours.ws_url()).await?;
//! println!("{outcome}");
//! ours.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod conformance;
mod error;
pub mod harness;
pub mod peers;
mod recording;

pub use error::Error;
pub use peers::{PeerProcess, Peers};
pub use recording::{AgentRecord, RecordingServer, remote_config};
