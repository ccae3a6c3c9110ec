//! Reading YAML configuration files with errors that name the file and the key.
//!
//! The steps, each with its own error:
//!
//! 1. [`read_file`]: at most [`MAX_CONFIG_FILE_SIZE`] bytes of UTF-8 text;
//! 2. [`parse`]: YAML syntax (the error carries the line and column);
//! 3. [`expand_env`]: `${ENV}` references in string values (see [`env`](mod@env));
//! 4. [`deserialize`]: into typed settings whose structs refuse unknown keys; the error names
//!    the key path, e.g. `extensions.opamp.server.ws.endpoint`.
//!
//! These helpers are shared with the `opamp-supervisor` example.

pub mod duration;
pub mod env;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
pub use serde_norway::{Mapping, Value};

use self::env::Lookup;

/// The largest configuration file read (larger files are refused, not truncated).
pub const MAX_CONFIG_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// A configuration file that cannot be used. `Display` starts with the file name and, for
/// bad values, the key path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_FILE_SIZE`] or not UTF-8.
    #[error("{}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not valid YAML.
    #[error("{}{}: invalid YAML: {message}", path.display(), location(*line, *column))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown, missing, or has a bad value.
    #[error("{}: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key path, e.g. `server.ws.endpoint` (`.` for the whole document).
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

impl ConfigError {
    /// A bad value at `key` in `path`.
    pub fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key path of an [`Invalid`](Self::Invalid) error.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Joins a key path and a key (`""` + `a` is `a`, `a` + `b` is `a.b`).
pub fn join_key(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty() || key == ".") {
        (true, _) => key.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{key}"),
    }
}

/// Reads a configuration file: at most [`MAX_CONFIG_FILE_SIZE`] bytes of UTF-8.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_SIZE {
        return Err(ConfigError::Unreadable {
            path: path.to_owned(),
            reason: format!("larger than {MAX_CONFIG_FILE_SIZE} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|_| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: "not UTF-8 text".into(),
    })
}

/// Parses YAML text (an empty document is an empty mapping).
pub fn parse(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let value: Value = serde_norway::from_str(text).map_err(|err| {
        let loc = err.location();
        ConfigError::Syntax {
            path: path.to_owned(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_location(&err.to_string()),
        }
    })?;
    Ok(match value {
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    })
}

/// serde_norway appends " at line L column C" to its messages; the error keeps them apart.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message.to_owned(),
    }
}

/// A mapping key as text (non-string keys are written as YAML).
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Expands `${ENV}` references in every string value under `value` (keys are left alone). A
/// value that is exactly one reference is retyped after expansion, so `${PORT}` can be a
/// number and `${ENABLED}` a boolean. `prefix` is the key path of `value`, for errors.
pub fn expand_env(
    path: &Path,
    prefix: &str,
    value: &Value,
    lookup: Lookup<'_>,
) -> Result<Value, ConfigError> {
    Ok(match value {
        Value::String(text) => {
            let expanded = env::expand(text, lookup)
                .map_err(|err| ConfigError::invalid(path, key_or_root(prefix), err.to_string()))?;
            if env::is_single_reference(text) {
                retype(expanded)
            } else {
                Value::String(expanded)
            }
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| expand_env(path, &format!("{prefix}[{i}]"), item, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = Mapping::with_capacity(map.len());
            for (key, item) in map {
                let item_key = join_key(prefix, &key_text(key));
                out.insert(key.clone(), expand_env(path, &item_key, item, lookup)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(tagged) => Value::Tagged(Box::new(serde_norway::value::TaggedValue {
            tag: tagged.tag.clone(),
            value: expand_env(path, prefix, &tagged.value, lookup)?,
        })),
        other => other.clone(),
    })
}

fn retype(text: String) -> Value {
    match serde_norway::from_str::<Value>(&text) {
        Ok(value @ (Value::Bool(_) | Value::Number(_))) => value,
        _ => Value::String(text),
    }
}

fn key_or_root(prefix: &str) -> &str {
    if prefix.is_empty() { "." } else { prefix }
}

/// Deserializes `value` (found at key path `prefix` of `path`) into `T`. Errors name the key
/// path of the bad value; for an unknown key, the unknown key itself.
pub fn deserialize<T: DeserializeOwned>(
    path: &Path,
    prefix: &str,
    value: Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let message = strip_location(&err.inner().to_string());
        // For an unknown key, the path already ends with that key.
        let key = join_key(prefix, if inner == "." { "" } else { &inner });
        ConfigError::invalid(path, key_or_root(&key), message)
    })
}

/// Loads a whole file: read, parse, expand `${ENV}`, deserialize.
pub fn load<T: DeserializeOwned>(path: &Path, lookup: Lookup<'_>) -> Result<T, ConfigError> {
    let text = read_file(path)?;
    let value = parse(path, &text)?;
    let value = expand_env(path, "", &value, lookup)?;
    deserialize(path, "", value)
}

/// Deep-merges `overlay` into `base`: mappings merge key by key (recursively); any other
/// value of `overlay` (scalar, list, null) replaces the one in `base`. Lists are replaced,
/// not concatenated, so that a layer can remove list items.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Mapping(base), Value::Mapping(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The value at a dotted path of mapping keys (`service.pipelines`), if every step exists.
pub fn get_path<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(value, |current, key| current.as_mapping()?.get(key))
}

/// Resolves a path written in a configuration file: relative paths are relative to the
/// directory of that file.
pub fn resolve_path(config_file: &Path, written: &Path) -> PathBuf {
    if written.is_absolute() {
        return written.to_owned();
    }
    match config_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(written),
        _ => written.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialized
    struct Outer {
        server: Inner,
        #[serde(default)]
        list: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialized
    struct Inner {
        endpoint: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default, deserialize_with = "duration::deserialize_option")]
        interval: Option<std::time::Duration>,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        port: u16,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields exist to be deserialized
    struct Item {
        key: String,
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k".into()),
            "ON" => Some("true".into()),
            "PORT" => Some("4320".into()),
            _ => None,
        }
    }

    fn load_text(text: &str) -> Result<Outer, ConfigError> {
        let path = Path::new("conf.yaml");
        let value = parse(path, text)?;
        let value = expand_env(path, "", &value, &env)?;
        deserialize(path, "", value)
    }

    #[test]
    fn loads_and_expands() {
        let outer = load_text(
            "server:\n  endpoint: ws://h/v1/opamp\n  headers:\n    X-Key: k-${TOKEN}\n  \
             interval: 1m\n  enabled: ${ON}\n  port: ${PORT}\n",
        )
        .unwrap();
        assert_eq!(outer.server.headers["X-Key"], "k-t0k");
        assert_eq!(
            outer.server.interval,
            Some(std::time::Duration::from_secs(60))
        );
        assert!(outer.server.enabled);
        assert_eq!(outer.server.port, 4320);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_text("server:\n  endpoint: x\n  endpont: y\n").unwrap_err();
        assert_eq!(err.key(), Some("server.endpont"), "{err}");
        assert!(
            err.to_string()
                .starts_with("conf.yaml: server.endpont: unknown field")
        );
    }

    #[test]
    fn bad_value_is_named() {
        let err = load_text("server:\n  endpoint: x\n  interval: 30\n").unwrap_err();
        assert_eq!(err.key(), Some("server.interval"), "{err}");
        assert!(err.to_string().contains("missing unit"), "{err}");
        let err = load_text("server:\n  endpoint: x\nlist:\n  - key: a\n  - kee: b\n").unwrap_err();
        assert_eq!(err.key(), Some("list[1].kee"), "{err}");
    }

    #[test]
    fn missing_key_and_env() {
        let err = load_text("server: {}\n").unwrap_err();
        assert_eq!(err.key(), Some("server"), "{err}");
        assert!(
            err.to_string().contains("missing field `endpoint`"),
            "{err}"
        );
        let err = load_text("server:\n  endpoint: ${NOPE}\n").unwrap_err();
        assert_eq!(err.key(), Some("server.endpoint"), "{err}");
        assert!(err.to_string().contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn syntax_error_has_location() {
        let err = load_text("server:\n  endpoint: [x\n").unwrap_err();
        match &err {
            ConfigError::Syntax { line, .. } => assert!(line.is_some()),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with("conf.yaml:"), "{err}");
    }

    #[test]
    fn read_file_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin.yaml");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_file(&path).unwrap_err().to_string().contains("UTF-8"));
        let missing = read_file(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(missing.to_string().contains("missing.yaml"), "{missing}");
    }

    #[test]
    fn merge_is_deep_and_replaces_lists() {
        let mut base = parse(
            Path::new("a"),
            "a:\n  b: 1\n  c: [1, 2]\n  keep: x\nlist: [a]\n",
        )
        .unwrap();
        let overlay = parse(Path::new("b"), "a:\n  b: 2\n  c: [3]\n  new: y\n").unwrap();
        merge(&mut base, overlay);
        let expected = parse(
            Path::new("c"),
            "a:\n  b: 2\n  c: [3]\n  keep: x\n  new: y\nlist: [a]\n",
        )
        .unwrap();
        assert_eq!(base, expected);
        assert_eq!(get_path(&base, "a.keep").and_then(Value::as_str), Some("x"));
        assert!(get_path(&base, "a.missing").is_none());
    }

    #[test]
    fn paths_resolve_next_to_the_file() {
        assert_eq!(
            resolve_path(Path::new("/etc/a/conf.yaml"), Path::new("ca.pem")),
            PathBuf::from("/etc/a/ca.pem")
        );
        assert_eq!(
            resolve_path(Path::new("conf.yaml"), Path::new("ca.pem")),
            PathBuf::from("ca.pem")
        );
        assert_eq!(
            resolve_path(Path::new("/etc/conf.yaml"), Path::new("/x.pem")),
            PathBuf::from("/x.pem")
        );
    }
}
