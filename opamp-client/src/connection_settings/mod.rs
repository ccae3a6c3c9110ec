//! OpAMP connection settings: the server's offers of new settings for the OpAMP connection
//! (spec §"Connection Settings Management", §"OpAMP Connection Setting Offer Flow") and the
//! agent-initiated certificate signing request (§"Agent-initiated CSR Flow").
//!
//! * [`OpampConnectionParams`] describes the connection: endpoint, headers, client
//!   certificate, TLS, proxy, heartbeat. [`OpampConnectionParams::merged_with`] applies an
//!   offered `OpAMPConnectionSettings` to it and checks the result.
//! * [`ConnectionSettingsManager`] is the offer flow as a sans-IO state machine: candidate,
//!   reconnect, keep (`APPLIED`) or revert (`FAILED`), with a persistable
//!   [`ConnectionSettingsSnapshot`].
//! * [`csr`] generates the key pair and CSR of the agent-initiated flow; the manager keeps
//!   the key for the certificate the server sends back without one.
//!
//! Own-telemetry and "other" connection offers are not handled here: the client hands them
//! to the agent's callbacks.

mod error;
mod manager;
mod params;
mod tls;
mod validate;

pub mod csr;

pub use error::ConnectionSettingsError;
pub use manager::{
    Candidate, CandidateOutcome, ConnectionSettingsManager, ConnectionSettingsSnapshot,
    DEFAULT_MAX_CANDIDATE_ATTEMPTS, OfferDecision, StoredStatus,
};
pub use params::{
    ClientCertificate, MergeOptions, OpampConnectionParams, ProxyParams, TlsParams, TlsVersion,
};
pub use validate::canonical_cipher_suite;
pub(crate) use validate::proxy_address;
