//! OpAMP server SDK: what a control plane embeds to manage a fleet of agents.
//!
//! ```
//! use opamp_server::proto::ServerToAgent;
//!
//! let acknowledgement = ServerToAgent::default();
//! assert!(acknowledgement.error_response.is_none());
//! ```
//!
//! The server state machine and its service are being built; this crate currently re-exports
//! the message types it will speak.

pub use opamp_proto as proto;
