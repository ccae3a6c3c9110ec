//! The agent example's error type.

use std::path::PathBuf;

use crate::yaml::ConfigError;

/// Why an agent could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The OpAMP client refused its settings or failed.
    #[error("OpAMP client: {0}")]
    Client(#[from] opamp_client::Error),
    /// A file could not be written or a directory created.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The command-line options do not fit together.
    #[error("invalid options: {0}")]
    Options(String),
}
