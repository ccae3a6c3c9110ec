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

/// One enabled `health_check` extension: where it listens and the path it answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    pub(crate) id: String,
    pub(crate) endpoint: String,
    pub(crate) path: String,
}

/// The health check extensions enabled in `service.extensions` (`health_check` and
/// `health_check/<name>`), with the collector's defaults (`localhost:13133`, `/`).
fn health_checks(document: &Value) -> Result<Vec<HealthCheck>, String> {
    let enabled = yaml::get_path(document, "service.extensions")
        .and_then(Value::as_sequence)
        .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for id in enabled {
        if id != "health_check" && !id.starts_with("health_check/") {
            continue;
        }
        let section = document
            .get("extensions")
            .and_then(|e| e.get(id))
            .ok_or_else(|| format!("service.extensions: {id} is not configured"))?;
        let text = |key: &str, default: &str| -> Result<String, String> {
            match section.get(key) {
                None | Some(Value::Null) => Ok(default.to_owned()),
                Some(value) => value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("extensions.{id}.{key}: expected a string")),
            }
        };
        checks.push(HealthCheck {
            id: id.to_owned(),
            endpoint: text("endpoint", "localhost:13133")?,
            path: text("path", "/")?,
        });
    }
    if checks.is_empty() {
        return Err(
            "no health_check extension in service.extensions (the fake agent needs one)".into(),
        );
    }
    Ok(checks)
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct FakeSettings {
    pub(crate) health_checks: Vec<HealthCheck>,
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
        let health_checks = health_checks(&document)?;
        Ok(FakeSettings {
            health_checks,
            behaviour,
            sha256,
        })
    }
}
