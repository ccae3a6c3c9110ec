//! An agent with the OpAMP client **inside its process** (the integrated deployment model, as
//! the OpenTelemetry Collector's OpAMP extension does it).
//!
//! The agent reads a collector-shaped configuration file whose `extensions.opamp` section
//! holds the OpAMP settings ([`settings`]); it reports its description, health (one component
//! per pipeline) and effective configuration; it applies a remote configuration by checking
//! it, writing it atomically to its configuration file and reporting `APPLIED` or `FAILED`;
//! it restarts on the server's command and follows OpAMP connection settings offers.
//! `--count N` runs N agents in one process.
//!
//! ```
//! use opamp_example_agent::config_file::AgentConfig;
//! use opamp_example_agent::proto::AgentCapabilities;
//!
//! let text = r#"
//! extensions:
//!   opamp:
//!     server:
//!       ws:
//!         endpoint: ws://127.0.0.1:4320/v1/opamp
//!         headers:
//!           X-API-Key: ${OPAMP_API_KEY:-dev-key}
//!     capabilities:
//!       accepts_remote_config: true
//!       reports_remote_config: true
//!     heartbeat_interval: 30s
//! receivers:
//!   otlp: {}
//! exporters:
//!   debug: {}
//! service:
//!   extensions: [opamp]
//!   pipelines:
//!     traces: { receivers: [otlp], exporters: [debug] }
//! "#;
//! let lookup = |_: &str| None; // an empty environment: the default applies
//! let config = AgentConfig::from_text("agent.yaml".as_ref(), text.into(), &lookup)?;
//! assert_eq!(config.opamp.endpoint.headers["x-api-key"], "dev-key");
//! assert!(config.opamp.capabilities.contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG));
//! assert_eq!(config.pipelines, ["traces"]);
//!
//! // A typo is reported with the file and the key.
//! let bad = text.replace("heartbeat_interval", "heartbeat_intervall");
//! let err = AgentConfig::from_text("agent.yaml".as_ref(), bad, &lookup).unwrap_err();
//! assert!(err.to_string().starts_with("agent.yaml: extensions.opamp.heartbeat_intervall: unknown field"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Run it with `cargo run -p opamp-example-agent -- --config examples/agent/agent.yaml`
//! (see the README for a server to connect to).
//!
//! # Design
//!
//! * [`yaml`]: file reading with limits, `${ENV}` expansion, durations and errors naming the
//!   file and key (shared with the supervisor example).
//! * [`settings`]: the OpAMP settings sections and their checks, turned into
//!   `ClientSettings`.
//! * [`config_file`] and [`pipelines`]: the whole file, and the collector-style checks of
//!   its pipelines, applied to the local file at start and to every remote configuration.
//! * [`instance`]: one agent's task; the client callbacks hand offers over through
//!   latest-value channels, so callbacks never block and nothing queues.
//! * [`process`]: logging set-up and the stop signal of the example programs.

pub use opamp_client::proto;

mod callbacks;
pub mod config_file;
mod error;
pub mod instance;
pub mod pipelines;
pub mod process;
pub mod run;
pub mod settings;
pub mod yaml;

pub use error::Error;
pub use instance::{InstanceOptions, run_instance};
pub use run::{RunOptions, run_agents};
