//! A protojson-style rendering of the generated types, written for the tests.
//!
//! It follows Go's `protojson.MarshalOptions{UseProtoNames: true}` output:
//! proto field names, 64-bit integers as strings, bytes as standard base64,
//! enums by name (unknown values as numbers), fields at their default value
//! left out, present empty sub-messages as `{}`, oneof members always shown.
//! Every field of every message is rendered, so comparing with the Go JSON
//! checks the whole decoded message.

#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use opamp_proto::generated::*;
use opamp_proto::{Bytes, any_value, server_error_response};
use serde_json::{Map, Value};

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Renders a value as protojson.
pub trait ToJson {
    /// The JSON value.
    fn to_json(&self) -> Value;
}

/// Builder for one JSON object that skips default-valued fields.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(mut self, name: &str, value: Value) -> Self {
        self.0.insert(name.to_owned(), value);
        self
    }
    fn bytes(self, name: &str, v: &Bytes) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(name, Value::String(base64(v)))
        }
    }
    fn string(self, name: &str, v: &str) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(name, Value::String(v.to_owned()))
        }
    }
    fn strings(self, name: &str, v: &[String]) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(name, Value::from(v.to_vec()))
        }
    }
    fn u64(self, name: &str, v: u64) -> Self {
        if v == 0 {
            self
        } else {
            self.put(name, Value::String(v.to_string()))
        }
    }
    fn bool(self, name: &str, v: bool) -> Self {
        if v {
            self.put(name, Value::Bool(true))
        } else {
            self
        }
    }
    fn f64(self, name: &str, v: f64) -> Self {
        if v.to_bits() == 0 {
            self
        } else {
            self.put(name, double(v))
        }
    }
    fn enumeration(self, name: &str, v: i32, known: Option<&str>) -> Self {
        match (v, known) {
            (0, _) => self,
            (_, Some(n)) => self.put(name, Value::String(n.to_owned())),
            (_, None) => self.put(name, Value::from(v)),
        }
    }
    fn msg<T: ToJson>(self, name: &str, v: Option<&T>) -> Self {
        match v {
            Some(m) => self.put(name, m.to_json()),
            None => self,
        }
    }
    fn list<T: ToJson>(self, name: &str, v: &[T]) -> Self {
        if v.is_empty() {
            self
        } else {
            self.put(name, Value::Array(v.iter().map(ToJson::to_json).collect()))
        }
    }
    fn map<T: ToJson>(self, name: &str, v: &BTreeMap<String, T>) -> Self {
        if v.is_empty() {
            self
        } else {
            let m = v.iter().map(|(k, x)| (k.clone(), x.to_json())).collect();
            self.put(name, Value::Object(m))
        }
    }
    fn map_str(self, name: &str, v: &BTreeMap<String, String>) -> Self {
        if v.is_empty() {
            self
        } else {
            let m = v
                .iter()
                .map(|(k, x)| (k.clone(), Value::String(x.clone())))
                .collect();
            self.put(name, Value::Object(m))
        }
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn double(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        Value::from(v)
    }
}

/// Protojson name of a known enum value, `None` for unknown values.
macro_rules! enum_name {
    ($ty:ty, $v:expr) => {
        <$ty>::try_from($v).ok().map(|e| e.as_str_name())
    };
}

impl ToJson for AnyValue {
    fn to_json(&self) -> Value {
        use any_value::Value as V;
        let o = Obj::default();
        match &self.value {
            None => o,
            Some(V::StringValue(s)) => o.put("string_value", Value::String(s.clone())),
            Some(V::BoolValue(b)) => o.put("bool_value", Value::Bool(*b)),
            Some(V::IntValue(i)) => o.put("int_value", Value::String(i.to_string())),
            Some(V::DoubleValue(d)) => o.put("double_value", double(*d)),
            Some(V::ArrayValue(a)) => o.put("array_value", a.to_json()),
            Some(V::KvlistValue(l)) => o.put("kvlist_value", l.to_json()),
            Some(V::BytesValue(b)) => o.put("bytes_value", Value::String(base64(b))),
        }
        .done()
    }
}

impl ToJson for ArrayValue {
    fn to_json(&self) -> Value {
        Obj::default().list("values", &self.values).done()
    }
}

impl ToJson for KeyValueList {
    fn to_json(&self) -> Value {
        Obj::default().list("values", &self.values).done()
    }
}

impl ToJson for KeyValue {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("key", &self.key)
            .msg("value", self.value.as_ref())
            .done()
    }
}

impl ToJson for AgentToServer {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("instance_uid", &self.instance_uid)
            .u64("sequence_num", self.sequence_num)
            .msg("agent_description", self.agent_description.as_ref())
            .u64("capabilities", self.capabilities)
            .msg("health", self.health.as_ref())
            .msg("effective_config", self.effective_config.as_ref())
            .msg("remote_config_status", self.remote_config_status.as_ref())
            .msg("package_statuses", self.package_statuses.as_ref())
            .msg("agent_disconnect", self.agent_disconnect.as_ref())
            .u64("flags", self.flags)
            .msg(
                "connection_settings_request",
                self.connection_settings_request.as_ref(),
            )
            .msg("custom_capabilities", self.custom_capabilities.as_ref())
            .msg("custom_message", self.custom_message.as_ref())
            .msg("available_components", self.available_components.as_ref())
            .msg(
                "connection_settings_status",
                self.connection_settings_status.as_ref(),
            )
            .done()
    }
}

impl ToJson for AgentDisconnect {
    fn to_json(&self) -> Value {
        Obj::default().done()
    }
}

impl ToJson for ConnectionSettingsRequest {
    fn to_json(&self) -> Value {
        Obj::default().msg("opamp", self.opamp.as_ref()).done()
    }
}

impl ToJson for OpAmpConnectionSettingsRequest {
    fn to_json(&self) -> Value {
        Obj::default()
            .msg("certificate_request", self.certificate_request.as_ref())
            .done()
    }
}

impl ToJson for CertificateRequest {
    fn to_json(&self) -> Value {
        Obj::default().bytes("csr", &self.csr).done()
    }
}

impl ToJson for AvailableComponents {
    fn to_json(&self) -> Value {
        Obj::default()
            .map("components", &self.components)
            .bytes("hash", &self.hash)
            .done()
    }
}

impl ToJson for ComponentDetails {
    fn to_json(&self) -> Value {
        Obj::default()
            .list("metadata", &self.metadata)
            .map("sub_component_map", &self.sub_component_map)
            .done()
    }
}

impl ToJson for ServerToAgent {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("instance_uid", &self.instance_uid)
            .msg("error_response", self.error_response.as_ref())
            .msg("remote_config", self.remote_config.as_ref())
            .msg("connection_settings", self.connection_settings.as_ref())
            .msg("packages_available", self.packages_available.as_ref())
            .u64("flags", self.flags)
            .u64("capabilities", self.capabilities)
            .msg("agent_identification", self.agent_identification.as_ref())
            .msg("command", self.command.as_ref())
            .msg("custom_capabilities", self.custom_capabilities.as_ref())
            .msg("custom_message", self.custom_message.as_ref())
            .done()
    }
}

impl ToJson for OpAmpConnectionSettings {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("destination_endpoint", &self.destination_endpoint)
            .msg("headers", self.headers.as_ref())
            .msg("certificate", self.certificate.as_ref())
            .u64(
                "heartbeat_interval_seconds",
                self.heartbeat_interval_seconds,
            )
            .msg("tls", self.tls.as_ref())
            .msg("proxy", self.proxy.as_ref())
            .done()
    }
}

impl ToJson for TelemetryConnectionSettings {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("destination_endpoint", &self.destination_endpoint)
            .msg("headers", self.headers.as_ref())
            .msg("certificate", self.certificate.as_ref())
            .msg("tls", self.tls.as_ref())
            .msg("proxy", self.proxy.as_ref())
            .done()
    }
}

impl ToJson for OtherConnectionSettings {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("destination_endpoint", &self.destination_endpoint)
            .msg("headers", self.headers.as_ref())
            .msg("certificate", self.certificate.as_ref())
            .map_str("other_settings", &self.other_settings)
            .msg("tls", self.tls.as_ref())
            .msg("proxy", self.proxy.as_ref())
            .done()
    }
}

impl ToJson for TlsConnectionSettings {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("ca_pem_contents", &self.ca_pem_contents)
            .bool(
                "include_system_ca_certs_pool",
                self.include_system_ca_certs_pool,
            )
            .bool("insecure_skip_verify", self.insecure_skip_verify)
            .string("min_version", &self.min_version)
            .string("max_version", &self.max_version)
            .strings("cipher_suites", &self.cipher_suites)
            .done()
    }
}

impl ToJson for ProxyConnectionSettings {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("url", &self.url)
            .msg("connect_headers", self.connect_headers.as_ref())
            .done()
    }
}

impl ToJson for Headers {
    fn to_json(&self) -> Value {
        Obj::default().list("headers", &self.headers).done()
    }
}

impl ToJson for Header {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("key", &self.key)
            .string("value", &self.value)
            .done()
    }
}

impl ToJson for TlsCertificate {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("cert", &self.cert)
            .bytes("private_key", &self.private_key)
            .bytes("ca_cert", &self.ca_cert)
            .done()
    }
}

impl ToJson for ConnectionSettingsOffers {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("hash", &self.hash)
            .msg("opamp", self.opamp.as_ref())
            .msg("own_metrics", self.own_metrics.as_ref())
            .msg("own_traces", self.own_traces.as_ref())
            .msg("own_logs", self.own_logs.as_ref())
            .map("other_connections", &self.other_connections)
            .done()
    }
}

impl ToJson for PackagesAvailable {
    fn to_json(&self) -> Value {
        Obj::default()
            .map("packages", &self.packages)
            .bytes("all_packages_hash", &self.all_packages_hash)
            .done()
    }
}

impl ToJson for PackageAvailable {
    fn to_json(&self) -> Value {
        Obj::default()
            .enumeration("type", self.r#type, enum_name!(PackageType, self.r#type))
            .string("version", &self.version)
            .msg("file", self.file.as_ref())
            .bytes("hash", &self.hash)
            .done()
    }
}

impl ToJson for DownloadableFile {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("download_url", &self.download_url)
            .bytes("content_hash", &self.content_hash)
            .bytes("signature", &self.signature)
            .msg("headers", self.headers.as_ref())
            .done()
    }
}

impl ToJson for ServerErrorResponse {
    fn to_json(&self) -> Value {
        let o = Obj::default()
            .enumeration(
                "type",
                self.r#type,
                enum_name!(ServerErrorResponseType, self.r#type),
            )
            .string("error_message", &self.error_message);
        match &self.details {
            Some(server_error_response::Details::RetryInfo(r)) => o.put("retry_info", r.to_json()),
            None => o,
        }
        .done()
    }
}

impl ToJson for RetryInfo {
    fn to_json(&self) -> Value {
        Obj::default()
            .u64("retry_after_nanoseconds", self.retry_after_nanoseconds)
            .done()
    }
}

impl ToJson for ServerToAgentCommand {
    fn to_json(&self) -> Value {
        Obj::default()
            .enumeration("type", self.r#type, enum_name!(CommandType, self.r#type))
            .done()
    }
}

impl ToJson for AgentDescription {
    fn to_json(&self) -> Value {
        Obj::default()
            .list("identifying_attributes", &self.identifying_attributes)
            .list(
                "non_identifying_attributes",
                &self.non_identifying_attributes,
            )
            .done()
    }
}

impl ToJson for ComponentHealth {
    fn to_json(&self) -> Value {
        Obj::default()
            .bool("healthy", self.healthy)
            .u64("start_time_unix_nano", self.start_time_unix_nano)
            .string("last_error", &self.last_error)
            .string("status", &self.status)
            .u64("status_time_unix_nano", self.status_time_unix_nano)
            .map("component_health_map", &self.component_health_map)
            .list("attributes", &self.attributes)
            .done()
    }
}

impl ToJson for EffectiveConfig {
    fn to_json(&self) -> Value {
        Obj::default()
            .msg("config_map", self.config_map.as_ref())
            .done()
    }
}

impl ToJson for RemoteConfigStatus {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("last_remote_config_hash", &self.last_remote_config_hash)
            .enumeration(
                "status",
                self.status,
                enum_name!(RemoteConfigStatuses, self.status),
            )
            .string("error_message", &self.error_message)
            .done()
    }
}

impl ToJson for ConnectionSettingsStatus {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes(
                "last_connection_settings_hash",
                &self.last_connection_settings_hash,
            )
            .enumeration(
                "status",
                self.status,
                enum_name!(ConnectionSettingsStatuses, self.status),
            )
            .string("error_message", &self.error_message)
            .done()
    }
}

impl ToJson for PackageStatuses {
    fn to_json(&self) -> Value {
        Obj::default()
            .map("packages", &self.packages)
            .bytes(
                "server_provided_all_packages_hash",
                &self.server_provided_all_packages_hash,
            )
            .string("error_message", &self.error_message)
            .done()
    }
}

impl ToJson for PackageStatus {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("name", &self.name)
            .string("agent_has_version", &self.agent_has_version)
            .bytes("agent_has_hash", &self.agent_has_hash)
            .string("server_offered_version", &self.server_offered_version)
            .bytes("server_offered_hash", &self.server_offered_hash)
            .enumeration(
                "status",
                self.status,
                enum_name!(PackageStatusEnum, self.status),
            )
            .string("error_message", &self.error_message)
            .msg("download_details", self.download_details.as_ref())
            .done()
    }
}

impl ToJson for PackageDownloadDetails {
    fn to_json(&self) -> Value {
        Obj::default()
            .f64("download_percent", self.download_percent)
            .f64("download_bytes_per_second", self.download_bytes_per_second)
            .done()
    }
}

impl ToJson for AgentIdentification {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("new_instance_uid", &self.new_instance_uid)
            .done()
    }
}

impl ToJson for AgentRemoteConfig {
    fn to_json(&self) -> Value {
        Obj::default()
            .msg("config", self.config.as_ref())
            .bytes("config_hash", &self.config_hash)
            .done()
    }
}

impl ToJson for AgentConfigMap {
    fn to_json(&self) -> Value {
        Obj::default().map("config_map", &self.config_map).done()
    }
}

impl ToJson for AgentConfigFile {
    fn to_json(&self) -> Value {
        Obj::default()
            .bytes("body", &self.body)
            .string("content_type", &self.content_type)
            .done()
    }
}

impl ToJson for CustomCapabilities {
    fn to_json(&self) -> Value {
        Obj::default()
            .strings("capabilities", &self.capabilities)
            .done()
    }
}

impl ToJson for CustomMessage {
    fn to_json(&self) -> Value {
        Obj::default()
            .string("capability", &self.capability)
            .string("type", &self.r#type)
            .bytes("data", &self.data)
            .done()
    }
}

/// Compares two JSON values, treating numbers as equal when their `f64`
/// values are (Go may print `100` where serde_json builds `100.0`). Returns
/// the path of the first difference.
pub fn diff(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => {
            (a.as_f64() != b.as_f64()).then(|| format!("{path}: expected {a}, got {b}"))
        }
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let sub = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = diff(x, y, &sub) {
                            return Some(d);
                        }
                    }
                    (Some(x), None) => return Some(format!("{sub}: missing (expected {x})")),
                    (None, Some(y)) => return Some(format!("{sub}: unexpected {y}")),
                    (None, None) => unreachable!(),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{path}: expected {} elements, got {}",
                    a.len(),
                    b.len()
                ));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| diff(x, y, &format!("{path}[{i}]")))
        }
        _ => (expected != actual).then(|| format!("{path}: expected {expected}, got {actual}")),
    }
}
