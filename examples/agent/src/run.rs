//! Running one or many agents in one process (`--count N`, for demos and load).

use std::path::PathBuf;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config_file::AgentConfig;
use crate::error::Error;
use crate::instance::{InstanceOptions, run_instance};
use crate::yaml::env::process_env;

/// The most agents one process runs.
pub const MAX_AGENTS: usize = 10_000;

/// What to run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// How many agents (each with its own instance UID and connection).
    pub count: usize,
    /// Where state is kept. Needed with `count > 1`: agent `i` keeps its client state in
    /// `<dir>/agent-<i>/state` and writes remote configurations to
    /// `<dir>/agent-<i>/config.yaml` (the shared file stays as it is). With one agent, the
    /// client state goes to `<dir>` and remote configurations to the configuration file.
    pub state_dir: Option<PathBuf>,
}

impl RunOptions {
    /// One agent reading `config`.
    pub fn new(config: impl Into<PathBuf>) -> Self {
        RunOptions {
            config: config.into(),
            count: 1,
            state_dir: None,
        }
    }

    /// Runs `count` agents.
    #[must_use]
    pub fn with_count(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    /// Keeps state in `dir`.
    #[must_use]
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The options of each agent, after checking that they fit together (and that the
    /// configuration file is valid, so that errors show before anything starts).
    pub fn instances(&self) -> Result<Vec<InstanceOptions>, Error> {
        if self.count == 0 || self.count > MAX_AGENTS {
            return Err(Error::Options(format!(
                "--count must be between 1 and {MAX_AGENTS}"
            )));
        }
        let config = AgentConfig::load(&self.config, &process_env)?;
        if self.count == 1 {
            let mut options = InstanceOptions::new("agent-0", &self.config);
            if let Some(dir) = &self.state_dir {
                options = options.with_state_dir(dir);
            }
            return Ok(vec![options]);
        }
        let Some(dir) = &self.state_dir else {
            return Err(Error::Options(
                "--count greater than 1 needs --state-dir (each agent keeps its own state and configuration)".into(),
            ));
        };
        if config.opamp.instance_uid.is_some() {
            return Err(Error::Options(
                "extensions.opamp.instance_uid is set: several agents cannot share one instance UID".into(),
            ));
        }
        (0..self.count)
            .map(|i| {
                let agent_dir = dir.join(format!("agent-{i}"));
                std::fs::create_dir_all(&agent_dir).map_err(|source| Error::Io {
                    action: "create directory",
                    path: agent_dir.clone(),
                    source,
                })?;
                Ok(InstanceOptions::new(format!("agent-{i}"), &self.config)
                    .with_write_path(agent_dir.join("config.yaml"))
                    .with_state_dir(agent_dir.join("state")))
            })
            .collect()
    }
}

/// Runs the agents until `shutdown` turns `true`. Returns the first error of an agent that
/// stopped on its own (the others keep running until shutdown).
pub async fn run_agents(options: RunOptions, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
    let instances = options.instances()?;
    let mut tasks = JoinSet::new();
    for instance in instances {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let name = instance.name.clone();
            (name, run_instance(instance, shutdown).await)
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(err))) => {
                tracing::error!(agent = %name, error = %err, "agent stopped with an error");
                first_error.get_or_insert(err);
            }
            Err(err) => tracing::error!(%err, "agent task failed"),
        }
    }
    first_error.map_or(Ok(()), Err)
}
