//! The agent's configuration file: a collector-shaped telemetry configuration whose
//! `extensions.opamp` section holds the OpAMP settings ([`crate::settings`]).
//!
//! A remote configuration replaces everything but `extensions.opamp`: the server cannot change
//! where the agent connects or what it reports (it has connection settings offers for that).

use std::path::{Path, PathBuf};

use opamp_client::proto::AgentConfigMap;
use serde_norway::{Mapping, Value};

use crate::pipelines;
use crate::settings::{OpampExtensionSection, OpampSettings};
use crate::yaml::{self, ConfigError, env::Lookup};

/// Where the OpAMP settings live in the file.
pub const OPAMP_KEY: &str = "extensions.opamp";

/// Content types accepted for remote configuration files (empty means YAML too).
pub const YAML_CONTENT_TYPES: [&str; 5] = [
    "",
    "text/yaml",
    "application/yaml",
    "text/x-yaml",
    "application/x-yaml",
];

/// A loaded and checked configuration file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The file.
    pub path: PathBuf,
    /// The file's text, as written (`${ENV}` references unexpanded): what the agent reports
    /// as its effective configuration, so that secrets from the environment stay local.
    pub text: String,
    /// The document as written (unexpanded).
    pub document: Value,
    /// The checked OpAMP settings (`${ENV}` expanded).
    pub opamp: OpampSettings,
    /// The pipeline IDs of the telemetry configuration.
    pub pipelines: Vec<String>,
}

fn opamp_section(document: &Value) -> Option<&Value> {
    yaml::get_path(document, OPAMP_KEY)
}

impl AgentConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path, lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let text = yaml::read_file(path)?;
        Self::from_text(path, text, lookup)
    }

    /// Checks `text` as the content of `path`.
    pub fn from_text(path: &Path, text: String, lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let document = yaml::parse(path, &text)?;
        let section = opamp_section(&document).ok_or_else(|| {
            ConfigError::invalid(
                path,
                OPAMP_KEY,
                "missing: the agent needs its OpAMP settings",
            )
        })?;
        let expanded = yaml::expand_env(path, OPAMP_KEY, section, lookup)?;
        let raw: OpampExtensionSection = yaml::deserialize(path, OPAMP_KEY, expanded)?;
        let opamp = raw.check(path, OPAMP_KEY)?;
        let pipelines = pipelines::validate(&document)
            .map_err(|err| ConfigError::invalid(path, err.key, err.message))?;
        Ok(AgentConfig {
            path: path.to_owned(),
            text,
            document,
            opamp,
            pipelines,
        })
    }

    /// The file text for a remote configuration: the remote files (YAML, merged in name
    /// order) with this file's `extensions.opamp` section kept. Fails, with a message for
    /// `RemoteConfigStatus.error_message`, when a file is not YAML, sets `extensions.opamp`,
    /// or the result is not a valid telemetry configuration.
    pub fn with_remote(&self, remote: &AgentConfigMap) -> Result<String, String> {
        if remote.config_map.is_empty() {
            return Err("the remote configuration has no files".into());
        }
        let mut merged = Value::Mapping(Mapping::new());
        for (name, file) in &remote.config_map {
            if !YAML_CONTENT_TYPES.contains(&file.content_type.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "{name}: unsupported content type {:?} (expected YAML)",
                    file.content_type
                ));
            }
            let text =
                std::str::from_utf8(&file.body).map_err(|_| format!("{name}: not UTF-8 text"))?;
            let value = yaml::parse(Path::new(name), text).map_err(|err| err.to_string())?;
            if !value.is_mapping() {
                return Err(format!("{name}: the configuration must be a mapping"));
            }
            if opamp_section(&value).is_some() {
                return Err(format!(
                    "{name}: a remote configuration may not set {OPAMP_KEY}"
                ));
            }
            yaml::merge(&mut merged, value);
        }
        let local = opamp_section(&self.document)
            .cloned()
            .unwrap_or(Value::Mapping(Mapping::new()));
        let mut opamp = Mapping::new();
        opamp.insert("opamp".into(), local);
        let mut extensions = Mapping::new();
        extensions.insert("extensions".into(), Value::Mapping(opamp));
        yaml::merge(&mut merged, Value::Mapping(extensions));
        pipelines::validate(&merged).map_err(|err| format!("invalid configuration: {err}"))?;
        serde_norway::to_string(&merged).map_err(|err| format!("cannot write YAML: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use opamp_client::proto::AgentConfigFile;

    use super::*;

    const LOCAL: &str = "extensions:\n  opamp:\n    server:\n      ws:\n        endpoint: ws://127.0.0.1:4320/v1/opamp\n        headers:\n          X-API-Key: ${KEY}\n\
receivers:\n  otlp: {}\nexporters:\n  debug: {}\nservice:\n  extensions: [opamp]\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n";

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "secret".into())
    }

    fn remote(files: &[(&str, &str)]) -> AgentConfigMap {
        AgentConfigMap {
            config_map: files
                .iter()
                .map(|(name, body)| {
                    (
                        (*name).to_owned(),
                        AgentConfigFile {
                            body: body.as_bytes().to_vec().into(),
                            content_type: "text/yaml".into(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn loads_the_local_file() {
        let config = AgentConfig::from_text(Path::new("agent.yaml"), LOCAL.into(), &env).unwrap();
        assert_eq!(config.pipelines, vec!["traces"]);
        assert_eq!(config.opamp.endpoint.headers["x-api-key"], "secret");
        assert!(config.text.contains("${KEY}"), "the text stays unexpanded");
    }

    #[test]
    fn missing_opamp_section_is_named() {
        let err = AgentConfig::from_text(Path::new("agent.yaml"), "service: {}\n".into(), &env)
            .unwrap_err();
        assert_eq!(err.key(), Some("extensions.opamp"));
    }

    #[test]
    fn remote_keeps_the_opamp_section() {
        let config = AgentConfig::from_text(Path::new("agent.yaml"), LOCAL.into(), &env).unwrap();
        let text = config
            .with_remote(&remote(&[(
                "collector.yaml",
                "receivers: {otlp: {}}\nexporters: {otlp/tempo: {endpoint: t}}\nextensions: {}\n\
                 service:\n  extensions: [opamp]\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp/tempo]\n",
            )]))
            .unwrap();
        let reloaded = AgentConfig::from_text(Path::new("agent.yaml"), text.clone(), &env).unwrap();
        assert!(text.contains("${KEY}"), "{text}");
        assert!(text.contains("otlp/tempo"), "{text}");
        assert_eq!(reloaded.opamp.endpoint.url, config.opamp.endpoint.url);
    }

    #[test]
    fn remote_errors() {
        let config = AgentConfig::from_text(Path::new("agent.yaml"), LOCAL.into(), &env).unwrap();
        let err = config
            .with_remote(&remote(&[("a.yaml", "extensions:\n  opamp: {}\n")]))
            .unwrap_err();
        assert!(err.contains("may not set extensions.opamp"), "{err}");
        let err = config
            .with_remote(&remote(&[("a.yaml", "[1, 2")]))
            .unwrap_err();
        assert!(err.contains("invalid YAML"), "{err}");
        let err = config
            .with_remote(&remote(&[(
                "a.yaml",
                "receivers: {otlp: {}}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nope]\n",
            )]))
            .unwrap_err();
        assert!(err.contains("service.pipelines.traces.exporters"), "{err}");
        assert!(config.with_remote(&remote(&[])).is_err());
    }

    #[test]
    fn remote_files_merge_in_name_order() {
        let config = AgentConfig::from_text(Path::new("agent.yaml"), LOCAL.into(), &env).unwrap();
        let text = config
            .with_remote(&remote(&[
                (
                    "a.yaml",
                    "receivers: {otlp: {}}\nexporters: {debug: {verbosity: basic}}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n",
                ),
                ("b.yaml", "exporters: {debug: {verbosity: detailed}}\n"),
            ]))
            .unwrap();
        assert!(text.contains("detailed"), "{text}");
        assert!(!text.contains("basic"), "{text}");
    }
}
