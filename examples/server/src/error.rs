//! [`FleetError`]: every failure of the fleet server, one enum for the crate.

use crate::configs::ConfigError;
use crate::selector::SelectorError;
use crate::store::StoreError;

/// What went wrong. The JSON API maps each kind to an HTTP status ([`FleetError::status`]).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// No agent with this instance UID.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    /// No configuration with this name.
    #[error("unknown configuration {0:?}")]
    UnknownConfig(String),
    /// A configuration with this name exists already.
    #[error("configuration {0:?} exists already")]
    ConfigExists(String),
    /// The configuration (or its name, selector or rollout policy) is not valid.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// The selector does not parse.
    #[error("invalid selector: {0}")]
    InvalidSelector(#[from] SelectorError),
    /// The request is not valid (a missing field, a bad value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The agent is not connected, so nothing can be sent to it now.
    #[error("agent {0:?} is not connected")]
    NotConnected(String),
    /// The agent's capabilities do not allow this (e.g. restart without
    /// `AcceptsRestartCommand`).
    #[error("agent {agent:?} does not support this: it lacks {capability}")]
    NotSupported {
        /// The agent.
        agent: String,
        /// What it lacks.
        capability: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OpAMP server refused an operation.
    #[error("OpAMP server: {0}")]
    Server(#[from] opamp_server::Error),
    /// The settings are not usable (e.g. no agent keys on a public address), or the command
    /// line could not be parsed (the text is clap's usage message).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// `--help` or `--version` was asked for: the text to print, and nothing to run.
    #[error("{0}")]
    HelpRequested(String),
    /// A listener could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] opamp_transport::Error),
}

impl FleetError {
    /// The HTTP status the JSON API answers with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::UnknownAgent(_) | Self::UnknownConfig(_) => S::NOT_FOUND,
            Self::ConfigExists(_) | Self::NotConnected(_) | Self::NotSupported { .. } => {
                S::CONFLICT
            }
            Self::InvalidConfig(_) | Self::InvalidSelector(_) | Self::InvalidRequest(_) => {
                S::BAD_REQUEST
            }
            Self::Server(opamp_server::Error::ConnectionClosed) => S::CONFLICT,
            Self::Server(_) => S::UNPROCESSABLE_ENTITY,
            _ => S::INTERNAL_SERVER_ERROR,
        }
    }
}
