//! A remote configuration as the supervisor keeps it: text files by name, and the server's
//! hash. `Debug` never shows file bodies.

use std::collections::BTreeMap;
use std::fmt;

use opamp_client::proto::AgentRemoteConfig;
use serde::{Deserialize, Serialize};

/// The largest remote configuration accepted (all files together). The supervisor keeps two
/// (last received, last good) in its state file.
pub const MAX_REMOTE_CONFIG: usize = 8 * 1024 * 1024;

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase or uppercase hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Serde for a hash as a hex string.
pub mod hex_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes hex.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::hex(bytes))
    }

    /// Reads hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::unhex(&text).ok_or_else(|| serde::de::Error::custom("invalid hex"))
    }
}

/// One configuration file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The body (UTF-8 text).
    pub body: String,
    /// The content type (empty means YAML).
    pub content_type: String,
}

impl fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("body_len", &self.body.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// A remote configuration offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteConfig {
    /// The server's hash of the configuration (reported back in `RemoteConfigStatus`).
    #[serde(with = "hex_serde")]
    pub hash: Vec<u8>,
    /// The files, by name (merged in name order).
    pub files: BTreeMap<String, ConfigFile>,
}

impl RemoteConfig {
    /// Takes an offer; bodies must be UTF-8 text, [`MAX_REMOTE_CONFIG`] bytes at most.
    pub fn from_proto(offer: &AgentRemoteConfig) -> Result<Self, String> {
        let total: usize = offer
            .config
            .iter()
            .flat_map(|map| map.config_map.values())
            .map(|file| file.body.len())
            .sum();
        if total > MAX_REMOTE_CONFIG {
            return Err(format!(
                "the configuration is {total} bytes, more than the {MAX_REMOTE_CONFIG} accepted"
            ));
        }
        let mut files = BTreeMap::new();
        for (name, file) in offer.config.iter().flat_map(|map| &map.config_map) {
            let body = std::str::from_utf8(&file.body)
                .map_err(|_| format!("{name}: the configuration is not UTF-8 text"))?;
            files.insert(
                name.clone(),
                ConfigFile {
                    body: body.to_owned(),
                    content_type: file.content_type.clone(),
                },
            );
        }
        Ok(RemoteConfig {
            hash: offer.config_hash.to_vec(),
            files,
        })
    }

    /// The hash in hex (for logs and messages).
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }
}

#[cfg(test)]
mod tests {
    use opamp_client::proto::{AgentConfigFile, AgentConfigMap};

    use super::*;

    #[test]
    fn from_proto_and_debug_hides_bodies() {
        let offer = AgentRemoteConfig {
            config: Some(AgentConfigMap {
                config_map: [(
                    "a.yaml".to_owned(),
                    AgentConfigFile {
                        body: "secret: hunter2\n".into(),
                        content_type: "text/yaml".into(),
                    },
                )]
                .into(),
            }),
            config_hash: vec![0xab, 0x01].into(),
        };
        let remote = RemoteConfig::from_proto(&offer).unwrap();
        assert_eq!(remote.hash_hex(), "ab01");
        assert!(!format!("{remote:?}").contains("hunter2"));
        let json = serde_json::to_string(&remote).unwrap();
        assert_eq!(serde_json::from_str::<RemoteConfig>(&json).unwrap(), remote);

        let mut bad = offer.clone();
        bad.config
            .as_mut()
            .unwrap()
            .config_map
            .get_mut("a.yaml")
            .unwrap()
            .body = vec![0xff, 0xfe].into();
        assert!(
            RemoteConfig::from_proto(&bad)
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn too_large_is_refused() {
        let offer = AgentRemoteConfig {
            config: Some(AgentConfigMap {
                config_map: [(
                    "big.yaml".to_owned(),
                    AgentConfigFile {
                        body: vec![b'a'; MAX_REMOTE_CONFIG + 1].into(),
                        content_type: String::new(),
                    },
                )]
                .into(),
            }),
            config_hash: vec![1].into(),
        };
        assert!(
            RemoteConfig::from_proto(&offer)
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 1, 0xfe])), Some(vec![0, 1, 0xfe]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
