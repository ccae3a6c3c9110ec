//! The supervisor's persisted state, in `<storage>/supervisor_state.json`, written atomically
//! (readable by its owner only: configurations may hold secrets).
//!
//! Kept: the last remote configuration received, the last good state (the configuration
//! layers and executable that last became healthy), the hash of the remote configuration that
//! failed last, the latest own-telemetry destinations, and the executable configured when the
//! state was written. The OpAMP client keeps the instance UID, the reported remote config
//! status and the OpAMP connection settings in `<storage>/client/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::apply::Desired;
use crate::own_telemetry::OwnTelemetry;
use crate::remote::RemoteConfig;

/// The state file name.
pub const STATE_FILE: &str = "supervisor_state.json";
/// The largest state file read: it holds two remote configurations of at most
/// [`MAX_REMOTE_CONFIG`](crate::remote::MAX_REMOTE_CONFIG) bytes each, escaped as JSON.
pub const MAX_STATE_FILE: u64 = 128 * 1024 * 1024;

/// The persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersistedState {
    /// `agent.executable` when this was written: when the configured executable changes,
    /// installed packages no longer apply.
    pub configured_executable: Option<PathBuf>,
    /// The last good state.
    pub last_good: Option<Desired>,
    /// The last remote configuration received.
    pub last_received_remote: Option<RemoteConfig>,
    /// The latest own-telemetry destinations offered.
    pub telemetry: Option<OwnTelemetry>,
    /// The hash (hex) of the remote configuration that failed last.
    pub failed_remote_hash: Option<String>,
}

/// Errors of the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state this supervisor wrote.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The state file of a storage directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file in `storage_dir`.
    pub fn new(storage_dir: &Path) -> Self {
        StateFile {
            path: storage_dir.join(STATE_FILE),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state; a missing file is the default state.
    pub fn load(&self) -> Result<PersistedState, StateError> {
        use std::io::Read;
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PersistedState::default());
            }
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StateError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_STATE_FILE {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                reason: format!("larger than {MAX_STATE_FILE} bytes"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|err| StateError::Corrupt {
            path: self.path.clone(),
            reason: err.to_string(),
        })
    }

    /// Reads the state; a corrupt file is moved aside (`.corrupt`) and the default state
    /// returned, so that the supervisor still starts the agent on its local configuration.
    pub fn load_or_recover(&self) -> Result<PersistedState, StateError> {
        match self.load() {
            Err(StateError::Corrupt { reason, .. }) => {
                let aside = self.path.with_extension("json.corrupt");
                tracing::error!(file = %self.path.display(), %reason, moved_to = %aside.display(), "corrupt supervisor state; starting from the local configuration");
                std::fs::rename(&self.path, &aside).map_err(|source| StateError::Io {
                    action: "move aside",
                    path: self.path.clone(),
                    source,
                })?;
                Ok(PersistedState::default())
            }
            other => other,
        }
    }

    /// Writes the state atomically.
    pub fn save(&self, state: &PersistedState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|err| StateError::Corrupt {
            path: self.path.clone(),
            reason: err.to_string(),
        })?;
        opamp_client::persistence::write_atomic(&self.path, &bytes, true).map_err(|source| {
            StateError::Io {
                action: "write",
                path: self.path.clone(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::remote::ConfigFile;

    #[test]
    fn round_trip_and_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        assert_eq!(file.load().unwrap(), PersistedState::default());
        let remote = RemoteConfig {
            hash: vec![0xab],
            files: BTreeMap::from([(
                "c.yaml".to_owned(),
                ConfigFile {
                    body: "a: 1\n".into(),
                    content_type: "text/yaml".into(),
                },
            )]),
        };
        let state = PersistedState {
            configured_executable: Some("/bin/agent".into()),
            last_good: Some(Desired {
                remote: Some(remote.clone()),
                ..Desired::local("/bin/agent")
            }),
            last_received_remote: Some(remote),
            telemetry: None,
            failed_remote_hash: Some("cd".into()),
        };
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), state);

        std::fs::write(file.path(), b"{not json").unwrap();
        assert!(matches!(file.load(), Err(StateError::Corrupt { .. })));
        assert_eq!(file.load_or_recover().unwrap(), PersistedState::default());
        assert!(dir.path().join("supervisor_state.json.corrupt").exists());
    }
}
