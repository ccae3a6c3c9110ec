//! Shared fixtures for the OpAMP benchmarks: realistic messages of known shape and size.
//!
//! ```
//! use opamp_benches::sample;
//! use opamp_proto::Message;
//!
//! let report = sample::full_state_report();
//! let size = report.encoded_len();
//! assert!((9 * 1024..=11 * 1024).contains(&size), "{size} bytes");
//! ```

pub mod sample;
