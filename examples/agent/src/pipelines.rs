//! Checks a collector-shaped telemetry configuration the way the OpenTelemetry Collector does
//! before it starts: known top-level sections, component IDs of the form `type[/name]`, and
//! pipelines that only use components defined in their sections.
//!
//! ```yaml
//! receivers:  { otlp: { protocols: { grpc: {} } } }
//! exporters:  { debug: {} }
//! service:
//!   pipelines:
//!     traces: { receivers: [otlp], exporters: [debug] }
//! ```

use std::fmt;

use serde_norway::{Mapping, Value};

use crate::yaml::{join_key, key_text};

/// The top-level sections of a collector configuration.
pub const TOP_LEVEL_KEYS: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];

/// The signals a pipeline can carry (the part of its ID before `/`).
pub const SIGNALS: [&str; 4] = ["traces", "metrics", "logs", "profiles"];

/// A configuration problem at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    /// Key path, e.g. `service.pipelines.traces.exporters[0]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for PipelineError {}

fn error(key: impl Into<String>, message: impl Into<String>) -> PipelineError {
    PipelineError {
        key: key.into(),
        message: message.into(),
    }
}

/// Whether `id` is a component ID: `type` or `type/name`, where the type is lowercase
/// letters, digits and `_`, starting with a letter, and the name is non-empty.
pub fn valid_component_id(id: &str) -> bool {
    let (kind, name) = match id.split_once('/') {
        Some((kind, name)) => (kind, Some(name)),
        None => (id, None),
    };
    let mut chars = kind.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.is_none_or(|n| !n.is_empty() && !n.contains('/'))
}

fn section<'a>(root: &'a Mapping, name: &str) -> Result<Option<&'a Mapping>, PipelineError> {
    match root.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(map)) => Ok(Some(map)),
        Some(_) => Err(error(name, "must be a mapping")),
    }
}

fn component_ids(section_name: &str, map: Option<&Mapping>) -> Result<Vec<String>, PipelineError> {
    let mut ids = Vec::new();
    for (key, value) in map.into_iter().flatten() {
        let id = key_text(key);
        let path = join_key(section_name, &id);
        if !valid_component_id(&id) {
            return Err(error(
                path,
                "invalid component ID (expected type or type/name)",
            ));
        }
        if !matches!(value, Value::Null | Value::Mapping(_)) {
            return Err(error(path, "component settings must be a mapping"));
        }
        ids.push(id);
    }
    Ok(ids)
}

fn id_list(value: Option<&Value>, path: &str) -> Result<Vec<String>, PipelineError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| error(format!("{path}[{i}]"), "must be a component ID"))
            })
            .collect(),
        Some(_) => Err(error(path, "must be a list of component IDs")),
    }
}

/// Checks `config`; returns the pipeline IDs in order.
pub fn validate(config: &Value) -> Result<Vec<String>, PipelineError> {
    let root = config
        .as_mapping()
        .ok_or_else(|| error(".", "the configuration must be a mapping"))?;
    for key in root.keys() {
        let key = key_text(key);
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            return Err(error(
                key,
                format!(
                    "unknown section (expected one of {})",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            ));
        }
    }
    let receivers = component_ids("receivers", section(root, "receivers")?)?;
    let processors = component_ids("processors", section(root, "processors")?)?;
    let exporters = component_ids("exporters", section(root, "exporters")?)?;
    let connectors = component_ids("connectors", section(root, "connectors")?)?;
    let extensions = component_ids("extensions", section(root, "extensions")?)?;

    let service = section(root, "service")?.ok_or_else(|| error("service", "missing"))?;
    for key in service.keys() {
        let key = key_text(key);
        if !["extensions", "pipelines", "telemetry"].contains(&key.as_str()) {
            return Err(error(
                join_key("service", &key),
                "unknown key (expected extensions, pipelines or telemetry)",
            ));
        }
    }
    for (i, id) in id_list(service.get("extensions"), "service.extensions")?
        .iter()
        .enumerate()
    {
        if !extensions.contains(id) {
            return Err(error(
                format!("service.extensions[{i}]"),
                format!("extension {id:?} is not defined in extensions"),
            ));
        }
    }
    let pipelines = match service.get("pipelines") {
        Some(Value::Mapping(map)) if !map.is_empty() => map,
        Some(Value::Mapping(_)) | None | Some(Value::Null) => {
            return Err(error(
                "service.pipelines",
                "at least one pipeline is needed",
            ));
        }
        Some(_) => return Err(error("service.pipelines", "must be a mapping")),
    };
    let mut names = Vec::new();
    for (key, pipeline) in pipelines {
        let name = key_text(key);
        let path = join_key("service.pipelines", &name);
        let signal = name.split('/').next().unwrap_or_default();
        if !SIGNALS.contains(&signal) || !valid_component_id(&name) {
            return Err(error(
                path,
                format!(
                    "invalid pipeline ID (expected {}[/name])",
                    SIGNALS.join("|")
                ),
            ));
        }
        let pipeline = pipeline
            .as_mapping()
            .ok_or_else(|| error(&path, "a pipeline must be a mapping"))?;
        for key in pipeline.keys() {
            let key = key_text(key);
            if !["receivers", "processors", "exporters"].contains(&key.as_str()) {
                return Err(error(
                    join_key(&path, &key),
                    "unknown key (expected receivers, processors or exporters)",
                ));
            }
        }
        for (role, defined, also, required) in [
            ("receivers", &receivers, &connectors, true),
            ("processors", &processors, &Vec::new(), false),
            ("exporters", &exporters, &connectors, true),
        ] {
            let list_path = join_key(&path, role);
            let ids = id_list(pipeline.get(role), &list_path)?;
            if required && ids.is_empty() {
                return Err(error(list_path, "a pipeline needs at least one"));
            }
            for (i, id) in ids.iter().enumerate() {
                if !defined.contains(id) && !also.contains(id) {
                    return Err(error(
                        format!("{list_path}[{i}]"),
                        format!("{id:?} is not defined in {role}"),
                    ));
                }
            }
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Vec<String>, PipelineError> {
        validate(&serde_norway::from_str(text).unwrap())
    }

    const GOOD: &str = "receivers:\n  otlp:\n    protocols: {grpc: {}}\n\
        processors:\n  batch: {}\n\
        exporters:\n  debug: {verbosity: basic}\n  otlp/tempo: {endpoint: x}\n\
        extensions:\n  health_check: {}\n\
        service:\n  extensions: [health_check]\n  pipelines:\n    traces:\n      \
        receivers: [otlp]\n      processors: [batch]\n      exporters: [debug, otlp/tempo]\n    \
        metrics/own:\n      receivers: [otlp]\n      exporters: [debug]\n";

    #[test]
    fn accepts_a_collector_config() {
        assert_eq!(check(GOOD).unwrap(), vec!["traces", "metrics/own"]);
    }

    #[test]
    fn names_undefined_components() {
        let bad = GOOD.replace(
            "exporters: [debug, otlp/tempo]",
            "exporters: [debug, otlp/nope]",
        );
        let err = check(&bad).unwrap_err();
        assert_eq!(err.key, "service.pipelines.traces.exporters[1]");
        assert!(err.message.contains("otlp/nope"));

        let bad = GOOD.replace("extensions: [health_check]", "extensions: [pprof]");
        assert_eq!(check(&bad).unwrap_err().key, "service.extensions[0]");
    }

    #[test]
    fn structural_errors() {
        assert_eq!(check("receivers: {}\n").unwrap_err().key, "service");
        assert_eq!(check("bogus: 1\nservice: {}\n").unwrap_err().key, "bogus");
        assert_eq!(
            check("service:\n  pipelines: {}\n").unwrap_err().key,
            "service.pipelines"
        );
        assert_eq!(
            check("receivers: {r: {}}\nexporters: {e: {}}\nservice:\n  pipelines:\n    spans:\n      receivers: [r]\n      exporters: [e]\n")
                .unwrap_err()
                .key,
            "service.pipelines.spans"
        );
        assert_eq!(
            check("receivers: {r: {}}\nservice:\n  pipelines:\n    logs:\n      receivers: [r]\n")
                .unwrap_err()
                .key,
            "service.pipelines.logs.exporters"
        );
        assert_eq!(check("- a\n").unwrap_err().key, ".");
    }

    #[test]
    fn component_ids() {
        for good in ["otlp", "otlp/2", "health_check", "prometheus/own_metrics"] {
            assert!(valid_component_id(good), "{good}");
        }
        for bad in ["", "OTLP", "otlp/", "/x", "a/b/c", "1abc"] {
            assert!(!valid_component_id(bad), "{bad}");
        }
    }
}
