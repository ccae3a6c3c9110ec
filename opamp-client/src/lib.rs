//! OpAMP client SDK: what an agent (or its supervisor) embeds to be managed by an OpAMP server.
//!
//! ```
//! use opamp_client::proto::AgentToServer;
//!
//! let first_report = AgentToServer::default();
//! assert_eq!(first_report.sequence_num, 0);
//! ```
//!
//! The client state machine and its drivers are being built; this crate currently re-exports
//! the message types it will speak.

pub use opamp_proto as proto;
