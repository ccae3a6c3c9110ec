//! The fake agent's configuration: the pipelines check, the health endpoint and the
//! `fake_agent:` section.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opamp_example_agent::pipelines;
use opamp_example_agent::yaml::{self, Value, duration};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The `fake_agent:` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Behaviour {
    pub(crate) fail: Option<String>,
    #[serde(default)]
    pub(crate) unhealthy: bool,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub(crate) start_delay: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub(crate) crash_after: Option<Duration>,
    pub(crate) crash_if_exists: Option<PathBuf>,
    pub(crate) start_log: Option<PathBuf>,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct FakeSettings {
    pub(crate) health_endpoint: String,
    pub(crate) behaviour: Behaviour,
    pub(crate) sha256: String,
}

impl FakeSettings {
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = yaml::read_file(path).map_err(|e| e.to_string())?;
        let sha256: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut document = yaml::parse(path, &text).map_err(|e| e.to_string())?;
        let behaviour = match document
            .as_mapping_mut()
            .and_then(|m| m.remove("fake_agent"))
        {
            Some(section) => {
                yaml::deserialize(path, "fake_agent", section).map_err(|e| e.to_string())?
            }
            None => Behaviour::default(),
        };
        if let Some(reason) = &behaviour.fail {
            return Err(format!("fake_agent.fail: {reason}"));
        }
        pipelines::validate(&document).map_err(|e| e.to_string())?;
        let health_endpoint = yaml::get_path(&document, "extensions.health_check.endpoint")
            .and_then(Value::as_str)
            .ok_or("extensions.health_check.endpoint: missing (the fake agent needs it)")?
            .to_owned();
        Ok(FakeSettings {
            health_endpoint,
            behaviour,
            sha256,
        })
    }
}
