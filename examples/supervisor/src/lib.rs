//! An OpAMP **supervisor**: a process that speaks OpAMP for a telemetry agent it runs and
//! manages (the supervised deployment model of the OpAMP walkthrough, for an OpenTelemetry
//! Collector or any agent with a configuration file and a health endpoint).
//!
//! The supervisor starts the agent on its last good configuration (even when the server is
//! unreachable), restarts it with backoff when it exits, polls its health endpoint and
//! reports `ComponentHealth` (with the tail of the agent's standard error when it fails). A
//! remote configuration is merged with the local base configuration ([`merge`]), written
//! atomically, and the agent restarted or signalled; it is reported `APPLYING`, then
//! `APPLIED` once the agent is healthy within a timeout, else `FAILED` with the reason, and
//! the last good configuration is restored ([`apply`]). Own-telemetry offers become part of
//! the configuration ([`own_telemetry`]); a new agent executable offered as a package is
//! swapped in the same way, with the previous one restored if the new one is not healthy
//! ([`packages`]). State survives restarts ([`state`]).
//!
//! The rollback logic is a state machine without IO, usable on its own:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//!
//! use opamp_supervisor::apply::{ApplyMachine, Desired, Step};
//! use opamp_supervisor::remote::RemoteConfig;
//!
//! let local = Desired::local("/usr/local/bin/otelcol");
//! let mut machine = ApplyMachine::new(local.clone(), local.clone(), None, Duration::from_secs(30));
//! let now = Instant::now();
//!
//! // A remote configuration arrives: deploy it and wait for the agent to be healthy.
//! let remote = RemoteConfig { hash: vec![1; 32], files: BTreeMap::new() };
//! let steps = machine.offer_remote(remote.clone(), now);
//! assert!(matches!(&steps[..], [Step::Deploy { rollback: false, .. }]));
//!
//! // The agent exits instead: the configuration failed, and the local one comes back.
//! let steps = machine.agent_exited("exit status 1", now);
//! assert!(matches!(&steps[0], Step::Failed { reason, .. } if reason == "exit status 1"));
//! assert_eq!(steps[1], Step::Deploy { desired: local, rollback: true });
//!
//! // The same configuration is not tried again.
//! assert!(machine.offer_remote(remote, now).is_empty());
//! ```
//!
//! Run it with `cargo run -p opamp-supervisor -- --config examples/supervisor/supervisor.yaml`
//! (see the README for the walkthrough with a collector or the bundled `fake-agent`).
//!
//! # Design
//!
//! * Pure parts, tested directly: [`config`] (checks with file and key in every error),
//!   [`backoff`], [`apply`], [`merge`], [`own_telemetry`], [`health::AgentHealth`].
//! * IO parts: [`process`] (spawn in its own process group, `SIGTERM`/`SIGKILL`, `SIGHUP`,
//!   stderr tail), [`launch`] (the agent dies with the supervisor), [`leftover`] (an agent
//!   left by a killed supervisor is stopped at start-up), [`health`]
//!   (HTTP probe), [`state`] (atomic JSON), [`packages`] (executable swap).
//! * [`Supervisor`]: one task owning the agent process and the state machine; the OpAMP
//!   client callbacks hand offers over through latest-value channels, so nothing queues.

pub use opamp_client::proto;

pub mod apply;
pub mod backoff;
mod callbacks;
pub mod config;
mod error;
pub mod health;
pub mod launch;
pub mod leftover;
pub mod merge;
pub mod own_telemetry;
pub mod packages;
pub mod process;
pub mod remote;
pub mod signature;
pub mod state;
mod supervisor;
pub mod tail;

pub use config::SupervisorConfig;
pub use error::Error;
pub use supervisor::Supervisor;
