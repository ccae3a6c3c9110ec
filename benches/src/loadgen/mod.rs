//! The load generator behind the `loadgen` binary: N simulated agents over WebSocket or plain
//! HTTP against any OpAMP server URL.
//!
//! Modes ([`Mode`]):
//! * `hold`: agents connect at a given rate, send a full status report (description, health,
//!   a 2 KiB effective config), then heartbeat; reports connect time and failures;
//! * `throughput`: closed-loop agents (the next heartbeat when the previous reply arrives);
//!   reports messages per second and p50/p99 latency;
//! * `fanout`: held agents; a URL is POSTed to make the server push a new config to all;
//!   reports the time until every agent received it and (with an "applied" URL) until the
//!   server saw every `APPLIED`;
//! * `storm`: held agents while a command restarts the server; reports the time until all
//!   are back and the peak reconnect rate;
//! * `idle-clients`: real `opamp_client::Client`s in this process, connected and idle;
//!   reports this process's RSS per client.
//!
//! Given the server's PID (or a PID file), every mode reports the server's RSS and CPU seconds
//! from `/proc`, beside the load generator's own.

pub mod agent;
pub mod clients;
pub mod conn;
pub mod procfs;
mod run;
pub mod stats;

pub use conn::{Target, Transport};
pub use procfs::{ProcSample, ServerPid};
pub use run::{Config, Mode, Report, run};
