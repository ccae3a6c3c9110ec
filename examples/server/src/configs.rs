//! Configuration bodies: validation (YAML or JSON), SHA-256 hashing, conversion to OpAMP
//! messages, and the named configurations the fleet assigns by label selector.
//!
//! A configuration is a set of named files (spec §"Configuration Files"; a single-file agent
//! uses the name `""`). Each file is validated by its content type before anything is stored
//! or sent: YAML types are parsed as YAML, JSON types as JSON; a parse error names the file,
//! line and column. The hash is SHA-256 over a length-prefixed encoding of every file's name,
//! content type and body, in name order, so equal contents always give equal hashes.
//!
//! ```
//! use opamp_fleet_server::configs::{ConfigFile, ConfigFiles, config_hash, validate_files};
//!
//! let mut files = ConfigFiles::new();
//! files.insert(String::new(), ConfigFile::yaml("receivers:\n  otlp: {}\n"));
//! validate_files(&files)?;
//! assert_eq!(config_hash(&files).len(), 32);
//!
//! files.insert(String::new(), ConfigFile::yaml("receivers: [otlp"));
//! let err = validate_files(&files).unwrap_err();
//! assert!(err.to_string().contains("not valid YAML"));
//! # Ok::<(), opamp_fleet_server::configs::ConfigError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use opamp_proto::{AgentConfigFile, AgentConfigMap, AgentRemoteConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rollout::RolloutPolicy;
use crate::selector::{Selector, SelectorError};

/// Largest body of one configuration file.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most files in one configuration.
pub const MAX_FILES: usize = 16;
/// Longest file name.
pub const MAX_FILE_NAME: usize = 128;
/// Longest configuration name.
pub const MAX_CONFIG_NAME: usize = 64;
/// Longest description of a named configuration.
pub const MAX_DESCRIPTION: usize = 1024;

/// The content type used for YAML files.
pub const YAML: &str = "text/yaml";
/// The content type used for JSON files.
pub const JSON: &str = "application/json";

/// Why a configuration was refused. Nothing is stored or sent when validation fails.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A configuration without any file.
    #[error("the configuration has no file")]
    NoFiles,
    /// More than [`MAX_FILES`] files.
    #[error("the configuration has more than {MAX_FILES} files")]
    TooManyFiles,
    /// A file name longer than [`MAX_FILE_NAME`] or with control characters.
    #[error("invalid file name {0:?}")]
    InvalidFileName(String),
    /// A body larger than [`MAX_FILE_BYTES`].
    #[error("file {file:?} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        file: String,
    },
    /// An empty or blank body.
    #[error("file {file:?} is empty")]
    Empty {
        /// The file.
        file: String,
    },
    /// A content type other than YAML or JSON.
    #[error(
        "file {file:?}: unsupported content type {content_type:?} (use text/yaml or application/json)"
    )]
    UnsupportedContentType {
        /// The file.
        file: String,
        /// The refused content type.
        content_type: String,
    },
    /// The body does not parse as its content type says.
    #[error("file {file:?} is not valid {format}: {message} (line {line}, column {column})")]
    Parse {
        /// The file.
        file: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// An invalid configuration name.
    #[error("invalid configuration name {0:?} (1-64 characters: letters, digits, '.', '_', '-')")]
    InvalidName(String),
    /// A description longer than [`MAX_DESCRIPTION`].
    #[error("description is longer than {MAX_DESCRIPTION} characters")]
    DescriptionTooLong,
    /// The selector does not parse.
    #[error("invalid selector: {0}")]
    Selector(#[from] SelectorError),
    /// Invalid rollout settings.
    #[error("invalid rollout policy: {0}")]
    Rollout(String),
}

/// The syntax a configuration file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML (`text/yaml`, `application/yaml`, `application/x-yaml`, `text/x-yaml`).
    Yaml,
    /// JSON (`application/json`, `text/json`).
    Json,
}

impl ConfigFormat {
    /// The format of a content type (parameters such as `; charset=utf-8` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/yaml" | "application/yaml" | "application/x-yaml" | "text/x-yaml" => {
                Some(Self::Yaml)
            }
            "application/json" | "text/json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// One configuration file: its content type and text body.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// MIME type, e.g. `text/yaml`.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// The file's text.
    pub body: String,
}

fn default_content_type() -> String {
    YAML.to_owned()
}

impl fmt::Debug for ConfigFile {
    // Bodies may hold secrets: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl ConfigFile {
    /// A YAML file.
    pub fn yaml(body: impl Into<String>) -> Self {
        Self {
            content_type: YAML.to_owned(),
            body: body.into(),
        }
    }

    /// A JSON file.
    pub fn json(body: impl Into<String>) -> Self {
        Self {
            content_type: JSON.to_owned(),
            body: body.into(),
        }
    }
}

/// The files of one configuration, by name.
pub type ConfigFiles = BTreeMap<String, ConfigFile>;

/// Checks every file of a configuration: count, names, sizes and syntax.
pub fn validate_files(files: &ConfigFiles) -> Result<(), ConfigError> {
    if files.is_empty() {
        return Err(ConfigError::NoFiles);
    }
    if files.len() > MAX_FILES {
        return Err(ConfigError::TooManyFiles);
    }
    for (name, file) in files {
        if name.len() > MAX_FILE_NAME || name.chars().any(char::is_control) {
            return Err(ConfigError::InvalidFileName(name.clone()));
        }
        validate_file(name, file)?;
    }
    Ok(())
}

/// Checks one file's size and syntax.
pub fn validate_file(name: &str, file: &ConfigFile) -> Result<(), ConfigError> {
    if file.body.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            file: name.to_owned(),
        });
    }
    if file.body.trim().is_empty() {
        return Err(ConfigError::Empty {
            file: name.to_owned(),
        });
    }
    match ConfigFormat::from_content_type(&file.content_type) {
        Some(ConfigFormat::Yaml) => parse_yaml(name, &file.body),
        Some(ConfigFormat::Json) => parse_json(name, &file.body),
        None => Err(ConfigError::UnsupportedContentType {
            file: name.to_owned(),
            content_type: file.content_type.clone(),
        }),
    }
}

/// Deepest nesting of brackets/indentation accepted before parsing: keeps hostile input from
/// exhausting the stack of a recursive parser.
const MAX_NESTING: usize = 128;

fn nesting_depth(body: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in body.chars() {
        match c {
            '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn parse_yaml(name: &str, body: &str) -> Result<(), ConfigError> {
    if nesting_depth(body) > MAX_NESTING {
        return Err(ConfigError::Parse {
            file: name.to_owned(),
            format: "YAML",
            message: format!("nesting deeper than {MAX_NESTING} levels"),
            line: 1,
            column: 1,
        });
    }
    yaml_rust2::YamlLoader::load_from_str(body)
        .map(|_| ())
        .map_err(|e| {
            let marker = e.marker();
            ConfigError::Parse {
                file: name.to_owned(),
                format: "YAML",
                message: e.info().to_owned(),
                line: marker.line().max(1),
                column: marker.col() + 1,
            }
        })
}

fn parse_json(name: &str, body: &str) -> Result<(), ConfigError> {
    serde_json::from_str::<serde_json::Value>(body)
        .map(|_| ())
        .map_err(|e| ConfigError::Parse {
            file: name.to_owned(),
            format: "JSON",
            message: e.to_string(),
            line: e.line().max(1),
            column: e.column().max(1),
        })
}

/// SHA-256 over every file's name, content type and body (each preceded by its length as a
/// big-endian `u64`), in name order.
pub fn config_hash(files: &ConfigFiles) -> [u8; 32] {
    let mut h = Sha256::new();
    for (name, file) in files {
        for part in [
            name.as_bytes(),
            file.content_type.as_bytes(),
            file.body.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
    }
    h.finalize().into()
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The OpAMP config map of `files`.
pub fn to_config_map(files: &ConfigFiles) -> AgentConfigMap {
    AgentConfigMap {
        config_map: files
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    AgentConfigFile {
                        body: bytes::Bytes::from(f.body.clone().into_bytes()),
                        content_type: f.content_type.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// The OpAMP remote config offering `files`, with [`config_hash`] as its hash.
pub fn to_remote_config(files: &ConfigFiles) -> AgentRemoteConfig {
    AgentRemoteConfig {
        config: Some(to_config_map(files)),
        config_hash: bytes::Bytes::copy_from_slice(&config_hash(files)),
    }
}

/// Files of an OpAMP config map (an effective config), bodies decoded lossily as UTF-8.
pub fn from_config_map(map: &AgentConfigMap) -> ConfigFiles {
    map.config_map
        .iter()
        .map(|(name, f)| {
            (
                name.clone(),
                ConfigFile {
                    content_type: f.content_type.clone(),
                    body: String::from_utf8_lossy(&f.body).into_owned(),
                },
            )
        })
        .collect()
}

/// A configuration with the files and the hash the fleet offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedConfig {
    /// Where it comes from: `config:<name>` or `agent` (an override set on the agent page).
    pub source: String,
    /// Hex SHA-256 of the files.
    pub hash: String,
    /// The files.
    pub files: ConfigFiles,
}

impl OfferedConfig {
    /// An offer of `files` from `source`, hashed.
    pub fn new(source: impl Into<String>, files: ConfigFiles) -> Self {
        let hash = hex(&config_hash(&files));
        Self {
            source: source.into(),
            hash,
            files,
        }
    }
}

/// A named configuration assigned to every agent its selector matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedConfig {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Label selector over agent attributes (see [`crate::selector`]).
    #[serde(default)]
    pub selector: String,
    /// When several configurations match an agent, the highest priority wins (then the
    /// smallest name).
    #[serde(default)]
    pub priority: i32,
    /// The files.
    pub files: ConfigFiles,
    /// Hex SHA-256 of the files ([`config_hash`]).
    pub hash: String,
    /// Incremented on every change of the files.
    pub version: u64,
    /// How a new version reaches the matching agents.
    #[serde(default)]
    pub rollout: RolloutPolicy,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
    /// Who made the last change.
    pub updated_by: String,
}

impl NamedConfig {
    /// The parsed selector (validated when the configuration was stored).
    pub fn parsed_selector(&self) -> Selector {
        self.selector.parse().unwrap_or_default()
    }

    /// The offer this configuration makes.
    pub fn offer(&self) -> OfferedConfig {
        OfferedConfig {
            source: format!("config:{}", self.name),
            hash: self.hash.clone(),
            files: self.files.clone(),
        }
    }
}

/// Checks a configuration name.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_CONFIG_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(file: ConfigFile) -> ConfigFiles {
        let mut f = ConfigFiles::new();
        f.insert(String::new(), file);
        f
    }

    #[test]
    fn yaml_and_json_are_checked() {
        assert!(validate_files(&one(ConfigFile::yaml("a: 1\nb: [1, 2]\n"))).is_ok());
        assert!(validate_files(&one(ConfigFile::json("{\"a\": 1}"))).is_ok());
        match validate_files(&one(ConfigFile::yaml("a: 1\nb: [1, 2\n"))) {
            Err(ConfigError::Parse { format, line, .. }) => {
                assert_eq!(format, "YAML");
                assert!(line >= 2, "line {line}");
            }
            other => panic!("{other:?}"),
        }
        match validate_files(&one(ConfigFile::json("{\"a\": }"))) {
            Err(ConfigError::Parse {
                format,
                line,
                column,
                ..
            }) => {
                assert_eq!((format, line), ("JSON", 1));
                assert_eq!(column, 7);
            }
            other => panic!("{other:?}"),
        }
        // YAML with a tab indentation error.
        assert!(validate_files(&one(ConfigFile::yaml("a:\n\t- b"))).is_err());
    }

    #[test]
    fn limits_and_types() {
        assert_eq!(
            validate_files(&ConfigFiles::new()),
            Err(ConfigError::NoFiles)
        );
        assert!(matches!(
            validate_files(&one(ConfigFile::yaml("  \n"))),
            Err(ConfigError::Empty { .. })
        ));
        assert!(matches!(
            validate_files(&one(ConfigFile {
                content_type: "text/plain".into(),
                body: "x".into()
            })),
            Err(ConfigError::UnsupportedContentType { .. })
        ));
        assert!(matches!(
            validate_files(&one(ConfigFile::yaml("a".repeat(MAX_FILE_BYTES + 1)))),
            Err(ConfigError::TooLarge { .. })
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            validate_files(&one(ConfigFile::yaml(deep.clone()))),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            validate_files(&one(ConfigFile::json(deep))),
            Err(ConfigError::Parse { .. })
        ));
        let mut many = ConfigFiles::new();
        for i in 0..=MAX_FILES {
            many.insert(i.to_string(), ConfigFile::yaml("a: 1"));
        }
        assert_eq!(validate_files(&many), Err(ConfigError::TooManyFiles));
        assert!(ConfigFormat::from_content_type("application/yaml; charset=utf-8").is_some());
    }

    #[test]
    fn hash_is_deterministic_and_content_sensitive() {
        let a = one(ConfigFile::yaml("a: 1"));
        let b = one(ConfigFile::yaml("a: 2"));
        assert_eq!(config_hash(&a), config_hash(&a.clone()));
        assert_ne!(config_hash(&a), config_hash(&b));
        // Name/body boundaries are unambiguous.
        let mut c = ConfigFiles::new();
        c.insert("x".into(), ConfigFile::yaml("ya: 1"));
        let mut d = ConfigFiles::new();
        d.insert("xy".into(), ConfigFile::yaml("a: 1"));
        assert_ne!(config_hash(&c), config_hash(&d));
        let rc = to_remote_config(&a);
        assert_eq!(rc.config_hash.as_ref(), &config_hash(&a));
        assert_eq!(from_config_map(rc.config.as_ref().unwrap()), a);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn names() {
        assert!(validate_name("prod-eu.v2_1").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_bodies() {
        let f = ConfigFile::yaml("password: hunter2");
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
