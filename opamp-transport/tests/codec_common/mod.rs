//! Helpers shared by the `codec_*` integration tests: the opamp-go vectors copied into
//! `tests/vectors/` (see `tests/vectors/README.md`), their index files and JSON forms.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use opamp_proto::{AgentToServer, ServerToAgent};

/// `tests/vectors/<sub>`.
pub(crate) fn vectors_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(sub)
}

pub(crate) fn read(sub: &str, name: &str) -> Vec<u8> {
    let path = vectors_dir(sub).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows of `<sub>/INDEX.tsv` as column-name -> value maps (header line skipped).
pub(crate) fn index(sub: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = String::from_utf8(read(sub, "INDEX.tsv")).unwrap();
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            columns
                .iter()
                .zip(line.split('\t'))
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub(crate) fn json(sub: &str, name: &str) -> serde_json::Value {
    serde_json::from_slice(&read(sub, name)).unwrap()
}

/// Standard base64 (protojson's encoding of `bytes`), with padding.
pub(crate) fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .unwrap_or_else(|| panic!("not base64: {text:?}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// protojson writes 64-bit integers as strings.
pub(crate) fn json_u64(value: &serde_json::Value) -> u64 {
    match value {
        serde_json::Value::String(s) => s.parse().unwrap(),
        serde_json::Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("not a u64: {other}"),
    }
}

/// Names (proto spelling) of the top-level fields of `msg` that are not at their default,
/// i.e. the keys protojson would print.
pub(crate) fn a2s_fields(msg: &AgentToServer) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    let mut add = |name, present: bool| {
        if present {
            set.insert(name);
        }
    };
    add("instance_uid", !msg.instance_uid.is_empty());
    add("sequence_num", msg.sequence_num != 0);
    add("agent_description", msg.agent_description.is_some());
    add("capabilities", msg.capabilities != 0);
    add("health", msg.health.is_some());
    add("effective_config", msg.effective_config.is_some());
    add("remote_config_status", msg.remote_config_status.is_some());
    add("package_statuses", msg.package_statuses.is_some());
    add("agent_disconnect", msg.agent_disconnect.is_some());
    add("flags", msg.flags != 0);
    add(
        "connection_settings_request",
        msg.connection_settings_request.is_some(),
    );
    add("custom_capabilities", msg.custom_capabilities.is_some());
    add("custom_message", msg.custom_message.is_some());
    add("available_components", msg.available_components.is_some());
    add(
        "connection_settings_status",
        msg.connection_settings_status.is_some(),
    );
    set
}

/// Like [`a2s_fields`] for `ServerToAgent`.
pub(crate) fn s2a_fields(msg: &ServerToAgent) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    let mut add = |name, present: bool| {
        if present {
            set.insert(name);
        }
    };
    add("instance_uid", !msg.instance_uid.is_empty());
    add("error_response", msg.error_response.is_some());
    add("remote_config", msg.remote_config.is_some());
    add("connection_settings", msg.connection_settings.is_some());
    add("packages_available", msg.packages_available.is_some());
    add("flags", msg.flags != 0);
    add("capabilities", msg.capabilities != 0);
    add("agent_identification", msg.agent_identification.is_some());
    add("command", msg.command.is_some());
    add("custom_capabilities", msg.custom_capabilities.is_some());
    add("custom_message", msg.custom_message.is_some());
    set
}

/// Top-level keys of a JSON object.
pub(crate) fn json_keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

pub(crate) fn as_str_set(set: &BTreeSet<&'static str>) -> BTreeSet<String> {
    set.iter().map(|s| s.to_string()).collect()
}

/// A recorded `.headers` file: the start line, then `Name: value` lines.
pub(crate) struct RecordedHeaders {
    pub(crate) start_line: String,
    pub(crate) headers: HeaderMap,
}

impl RecordedHeaders {
    pub(crate) fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let start_line = lines.next().unwrap().to_string();
        let mut headers = HeaderMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        Self {
            start_line,
            headers,
        }
    }

    /// The method of a request start line (`POST /v1/opamp HTTP/1.1`).
    pub(crate) fn method(&self) -> Method {
        let method = self.start_line.split(' ').next().unwrap();
        Method::from_bytes(method.as_bytes()).unwrap()
    }

    /// The status of a response start line (`HTTP/1.1 200 OK`).
    pub(crate) fn status(&self) -> u16 {
        self.start_line.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

/// Canonical UUID text of 16 bytes.
pub(crate) fn uuid_text(bytes: &[u8]) -> String {
    assert_eq!(bytes.len(), 16, "instance_uid must be 16 bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
