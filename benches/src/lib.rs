//! Benchmarks for the OpAMP crates: shared fixtures for the criterion benchmarks, the load
//! generator (`loadgen` binary) and the minimal server it targets (`minimal-server` binary).
//!
//! ```
//! use opamp_benches::sample;
//! use opamp_proto::Message;
//!
//! let report = sample::full_state_report();
//! let size = report.encoded_len();
//! assert!((9 * 1024..=11 * 1024).contains(&size), "{size} bytes");
//! ```

pub mod loadgen;
pub mod minimal_server;
pub mod sample;
