//! The supervisor's error type.

use std::path::PathBuf;

use opamp_example_agent::yaml::ConfigError;

use crate::state::StateError;

/// Why the supervisor could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `supervisor.yaml` (or the base configuration) cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OpAMP client refused its settings.
    #[error("OpAMP client: {0}")]
    Client(#[from] opamp_client::Error),
    /// The persisted state cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The package store cannot be opened.
    #[error("package store: {0}")]
    Packages(#[from] opamp_client::packages::PackagesError),
    /// A directory or file cannot be created or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}
