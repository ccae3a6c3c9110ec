//! What the fleet remembers about one agent, in a JSON-friendly form: attributes, health tree,
//! effective config, remote config status, packages, components, connection facts, and what
//! the fleet offered it. Kept across disconnects and restarts (through the store).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use opamp_proto::any_value::Value;
use opamp_proto::{
    AgentCapabilities, AnyValue, AvailableComponents, ComponentDetails, ComponentHealth, KeyValue,
    PackageStatuses, RemoteConfigStatus,
};
use serde::{Deserialize, Serialize};

use crate::configs::{ConfigFiles, OfferedConfig, from_config_map, hex};
use crate::rollout::{Report, ReportedStatus};

/// Deepest health or component tree kept (deeper levels are cut).
pub const MAX_TREE_DEPTH: usize = 16;
/// Custom messages kept per agent (the oldest is dropped).
pub const MAX_CUSTOM_MESSAGES: usize = 20;
/// Largest custom message payload kept (longer ones are cut).
pub const MAX_CUSTOM_MESSAGE_BYTES: usize = 4096;
/// Longest capability or type name of a custom message kept (longer ones are cut).
pub const MAX_CUSTOM_NAME_BYTES: usize = 256;

/// A node of the component health tree (spec §"ComponentHealth Message").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HealthView {
    /// Healthy or not.
    pub healthy: bool,
    /// Start time, Unix nanoseconds (0: not running).
    pub start_time_unix_nano: u64,
    /// Last error.
    pub last_error: String,
    /// Free-form status.
    pub status: String,
    /// Time of the status, Unix nanoseconds.
    pub status_time_unix_nano: u64,
    /// Attributes of the component.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Sub-components.
    #[serde(default)]
    pub components: BTreeMap<String, HealthView>,
}

impl HealthView {
    /// The view of a health tree, cut at [`MAX_TREE_DEPTH`].
    pub fn from_proto(h: &ComponentHealth) -> Self {
        Self::build(h, 0)
    }

    fn build(h: &ComponentHealth, depth: usize) -> Self {
        Self {
            healthy: h.healthy,
            start_time_unix_nano: h.start_time_unix_nano,
            last_error: h.last_error.clone(),
            status: h.status.clone(),
            status_time_unix_nano: h.status_time_unix_nano,
            attributes: attributes(&h.attributes),
            components: if depth + 1 >= MAX_TREE_DEPTH {
                BTreeMap::new()
            } else {
                h.component_health_map
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::build(v, depth + 1)))
                    .collect()
            },
        }
    }
}

/// The last `RemoteConfigStatus` an agent reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStatusView {
    /// Hex of `last_remote_config_hash`.
    pub hash: String,
    /// The status.
    pub status: ReportedStatus,
    /// `error_message`.
    pub error: String,
}

impl RemoteStatusView {
    /// The view of a status message.
    pub fn from_proto(s: &RemoteConfigStatus) -> Self {
        use opamp_proto::RemoteConfigStatuses as S;
        let status = match S::try_from(s.status) {
            Ok(S::Applied) => ReportedStatus::Applied,
            Ok(S::Applying) => ReportedStatus::Applying,
            Ok(S::Failed) => ReportedStatus::Failed,
            _ => ReportedStatus::Unset,
        };
        Self {
            hash: hex(&s.last_remote_config_hash),
            status,
            error: s.error_message.clone(),
        }
    }

    /// As a rollout report.
    pub fn report(&self) -> Report {
        Report {
            hash: self.hash.clone(),
            status: self.status,
            error: self.error.clone(),
        }
    }
}

/// One package of `PackageStatuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageView {
    /// Version the agent has.
    pub agent_has_version: String,
    /// Hash the agent has (hex).
    pub agent_has_hash: String,
    /// Version the server offered.
    pub server_offered_version: String,
    /// Status name (`INSTALLED`, `INSTALLING`, …).
    pub status: String,
    /// Error message.
    pub error: String,
    /// Download progress in percent, while downloading.
    pub download_percent: Option<f64>,
}

/// `PackageStatuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PackagesView {
    /// Per package name.
    pub packages: BTreeMap<String, PackageView>,
    /// Hash of the server's package set the agent last saw (hex).
    pub server_provided_all_packages_hash: String,
    /// Error message.
    pub error: String,
}

impl PackagesView {
    /// The view of a status message.
    pub fn from_proto(p: &PackageStatuses) -> Self {
        Self {
            packages: p
                .packages
                .iter()
                .map(|(name, s)| {
                    let status = opamp_proto::PackageStatusEnum::try_from(s.status)
                        .map(|e| e.as_str_name().to_owned())
                        .unwrap_or_else(|_| format!("UNKNOWN({})", s.status));
                    (
                        name.clone(),
                        PackageView {
                            agent_has_version: s.agent_has_version.clone(),
                            agent_has_hash: hex(&s.agent_has_hash),
                            server_offered_version: s.server_offered_version.clone(),
                            status,
                            error: s.error_message.clone(),
                            download_percent: s
                                .download_details
                                .as_ref()
                                .map(|d| d.download_percent),
                        },
                    )
                })
                .collect(),
            server_provided_all_packages_hash: hex(&p.server_provided_all_packages_hash),
            error: p.error_message.clone(),
        }
    }
}

/// A component of `AvailableComponents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ComponentView {
    /// Metadata attributes.
    pub metadata: BTreeMap<String, String>,
    /// Sub-components.
    pub components: BTreeMap<String, ComponentView>,
}

impl ComponentView {
    fn build(d: &ComponentDetails, depth: usize) -> Self {
        Self {
            metadata: attributes(&d.metadata),
            components: if depth + 1 >= MAX_TREE_DEPTH {
                BTreeMap::new()
            } else {
                d.sub_component_map
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::build(v, depth + 1)))
                    .collect()
            },
        }
    }
}

/// `AvailableComponents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ComponentsView {
    /// Hash of the set (hex).
    pub hash: String,
    /// The components (empty when the agent sent only the hash).
    pub components: BTreeMap<String, ComponentView>,
}

impl ComponentsView {
    /// The view of an `AvailableComponents` message.
    pub fn from_proto(c: &AvailableComponents) -> Self {
        Self {
            hash: hex(&c.hash),
            components: c
                .components
                .iter()
                .map(|(k, v)| (k.clone(), ComponentView::build(v, 0)))
                .collect(),
        }
    }
}

/// `ConnectionSettingsStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettingsStatusView {
    /// Hex of the last settings hash.
    pub hash: String,
    /// Status name.
    pub status: String,
    /// Error message.
    pub error: String,
}

/// How the agent is (or was last) connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConnectionFacts {
    /// Connected now.
    pub connected: bool,
    /// `websocket` or `http`.
    pub transport: String,
    /// Peer address.
    pub remote_addr: String,
    /// Start of the current (or last) connection, Unix milliseconds.
    pub connected_since: i64,
    /// Last message, Unix milliseconds.
    pub last_seen: i64,
    /// `sequence_num` of the last message.
    pub sequence_num: u64,
}

/// A custom message the agent sent (spec §"Custom Messages").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomMessageView {
    /// Capability.
    pub capability: String,
    /// Message type.
    pub r#type: String,
    /// Payload as text (lossy UTF-8, cut at [`MAX_CUSTOM_MESSAGE_BYTES`]).
    pub data: String,
    /// Arrival, Unix milliseconds.
    pub received_at: i64,
}

/// Everything the fleet knows about one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentRecord {
    /// Instance UID (hyphenated UUID).
    pub instance_uid: String,
    /// Identifying attributes, values as text.
    pub identifying: BTreeMap<String, String>,
    /// Non-identifying attributes, values as text.
    pub non_identifying: BTreeMap<String, String>,
    /// Capability bits.
    pub capabilities: u64,
    /// Component health tree.
    pub health: Option<HealthView>,
    /// Effective configuration files.
    pub effective_config: Option<ConfigFiles>,
    /// Last remote config status.
    pub remote_config_status: Option<RemoteStatusView>,
    /// Package statuses.
    pub package_statuses: Option<PackagesView>,
    /// Available components.
    pub available_components: Option<ComponentsView>,
    /// Custom capabilities.
    pub custom_capabilities: Vec<String>,
    /// Status of the last connection settings offer.
    pub connection_settings_status: Option<ConnectionSettingsStatusView>,
    /// Connection facts.
    pub connection: ConnectionFacts,
    /// First message ever, Unix milliseconds.
    pub first_seen: i64,
    /// The configuration the fleet last offered.
    pub offered: Option<OfferedConfig>,
    /// A configuration pushed to this agent alone (wins over named configurations).
    pub override_config: Option<OfferedConfig>,
    /// Hashes the agent reported `FAILED` for: never offered to it again automatically.
    pub failed_hashes: BTreeSet<String>,
    /// Recent custom messages from the agent.
    pub custom_messages: VecDeque<CustomMessageView>,
    /// Operator labels: set on the agent page or through the API, never by the agent.
    /// Selectors see them as `label:KEY` (see [`crate::selector`]).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Parts of the agent's last report that were not stored because the record would have
    /// gone over the per-agent limit (`--max-agent-bytes`), each with its size.
    #[serde(default)]
    pub oversized: Vec<String>,
}

impl AgentRecord {
    /// A new record.
    pub fn new(instance_uid: String, now: i64) -> Self {
        Self {
            instance_uid,
            first_seen: now,
            ..Default::default()
        }
    }

    /// The capability set.
    pub fn caps(&self) -> AgentCapabilities {
        AgentCapabilities::from_bits(self.capabilities)
    }

    /// What label selectors match: the agent's identifying and non-identifying attributes
    /// together (identifying wins), and the operator labels as `label:KEY`. An attribute the
    /// agent reports under a `label:` key is left out, so only the operator sets those.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let reported = self.non_identifying.iter().chain(&self.identifying);
        let mut all: BTreeMap<String, String> = reported
            .filter(|(k, _)| !k.starts_with(crate::selector::LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.extend(
            self.labels
                .iter()
                .map(|(k, v)| (format!("{}{k}", crate::selector::LABEL_PREFIX), v.clone())),
        );
        all
    }

    /// True if the record holds something an operator set (its own configuration or
    /// labels): such a record is never forgotten to make room for another agent.
    pub fn holds_operator_state(&self) -> bool {
        self.override_config.is_some() || !self.labels.is_empty()
    }

    /// Health of the whole agent, if reported.
    pub fn healthy(&self) -> Option<bool> {
        self.health.as_ref().map(|h| h.healthy)
    }

    /// `service.name`, or the instance UID.
    pub fn display_name(&self) -> &str {
        self.identifying
            .get("service.name")
            .map(String::as_str)
            .unwrap_or(&self.instance_uid)
    }

    /// Keeps a received custom message, dropping the oldest beyond the limit.
    pub fn push_custom_message(&mut self, m: &opamp_proto::CustomMessage, now: i64) {
        let cut = m.data.len().min(MAX_CUSTOM_MESSAGE_BYTES);
        if self.custom_messages.len() >= MAX_CUSTOM_MESSAGES {
            self.custom_messages.pop_front();
        }
        let name = |s: &str| {
            let mut end = s.len().min(MAX_CUSTOM_NAME_BYTES);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        };
        self.custom_messages.push_back(CustomMessageView {
            capability: name(&m.capability),
            r#type: name(&m.r#type),
            data: String::from_utf8_lossy(&m.data[..cut]).into_owned(),
            received_at: now,
        });
    }

    /// Refreshes every reported part from the server's merged status of the agent.
    pub fn update_from_status(&mut self, s: &opamp_server::state::AgentStatus) {
        if !s.capabilities.is_empty() {
            self.capabilities = s.capabilities.bits();
        }
        if let Some(d) = &s.agent_description {
            self.identifying = attributes(&d.identifying_attributes);
            self.non_identifying = attributes(&d.non_identifying_attributes);
        }
        if let Some(h) = &s.health {
            self.health = Some(HealthView::from_proto(h));
        }
        if let Some(c) = &s.effective_config {
            self.effective_config = c.config_map.as_ref().map(from_config_map);
        }
        if let Some(r) = &s.remote_config_status {
            self.remote_config_status = Some(RemoteStatusView::from_proto(r));
        }
        if let Some(p) = &s.package_statuses {
            self.package_statuses = Some(PackagesView::from_proto(p));
        }
        if let Some(c) = &s.available_components {
            self.available_components = Some(ComponentsView::from_proto(c));
        }
        if let Some(c) = &s.custom_capabilities {
            self.custom_capabilities = c.capabilities.clone();
        }
        if let Some(c) = &s.connection_settings_status {
            let status = opamp_proto::ConnectionSettingsStatuses::try_from(c.status)
                .map(|e| e.as_str_name().to_owned())
                .unwrap_or_else(|_| format!("UNKNOWN({})", c.status));
            self.connection_settings_status = Some(ConnectionSettingsStatusView {
                hash: hex(&c.last_connection_settings_hash),
                status,
                error: c.error_message.clone(),
            });
        }
    }
}

/// Attributes as a map of key to text value (the last value wins for repeated keys).
pub fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(any_to_string).unwrap_or_default(),
            )
        })
        .collect()
}

/// The text form of an attribute value: strings as they are, numbers and booleans printed,
/// bytes in hex, lists and maps as JSON.
pub fn any_to_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        Some(_) => any_to_json(v, 0).to_string(),
    }
}

fn any_to_json(v: &AnyValue, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if depth >= MAX_TREE_DEPTH {
        return J::Null;
    }
    match &v.value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => J::from(*d),
        Some(Value::BytesValue(b)) => J::String(hex(b)),
        Some(Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|x| any_to_json(x, depth + 1)).collect())
        }
        Some(Value::KvlistValue(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .map(|x| any_to_json(x, depth + 1))
                            .unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_as_text() {
        let kvs = vec![
            KeyValue {
                key: "s".into(),
                value: Some(AnyValue::string("x")),
            },
            KeyValue {
                key: "i".into(),
                value: Some(AnyValue::int(42)),
            },
            KeyValue {
                key: "b".into(),
                value: Some(AnyValue::bool(true)),
            },
            KeyValue {
                key: "a".into(),
                value: Some(AnyValue::array([AnyValue::int(1), AnyValue::string("y")])),
            },
        ];
        let m = attributes(&kvs);
        assert_eq!(m["s"], "x");
        assert_eq!(m["i"], "42");
        assert_eq!(m["b"], "true");
        assert_eq!(m["a"], "[1,\"y\"]");
    }

    #[test]
    fn deep_health_trees_are_cut() {
        let mut h = ComponentHealth::default();
        for i in 0..50 {
            let mut parent = ComponentHealth {
                healthy: true,
                ..Default::default()
            };
            parent.component_health_map.insert(format!("c{i}"), h);
            h = parent;
        }
        let v = HealthView::from_proto(&h);
        let mut depth = 0;
        let mut cur = &v;
        while let Some(next) = cur.components.values().next() {
            cur = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_TREE_DEPTH - 1);
    }

    #[test]
    fn custom_messages_are_bounded() {
        let mut r = AgentRecord::new("u".into(), 0);
        let m = opamp_proto::CustomMessage {
            capability: "c".into(),
            r#type: "t".into(),
            data: vec![b'x'; MAX_CUSTOM_MESSAGE_BYTES * 2].into(),
        };
        for i in 0..(MAX_CUSTOM_MESSAGES + 5) {
            r.push_custom_message(&m, i as i64);
        }
        assert_eq!(r.custom_messages.len(), MAX_CUSTOM_MESSAGES);
        assert_eq!(r.custom_messages[0].received_at, 5);
        assert_eq!(r.custom_messages[0].data.len(), MAX_CUSTOM_MESSAGE_BYTES);
    }
}
