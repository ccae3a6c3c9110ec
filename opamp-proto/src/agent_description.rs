//! [`AgentDescriptionBuilder`]: builds an [`AgentDescription`].

use crate::{AgentDescription, AnyValue, KeyValue};

/// Builds an [`AgentDescription`] from identifying and non-identifying
/// attributes. Setting a key a second time replaces its value, so no key
/// appears twice in a list.
///
/// See spec §AgentDescription Message for which attributes belong where.
///
/// ```
/// use opamp_proto::AgentDescription;
///
/// let desc = AgentDescription::builder()
///     .service_name("io.example.agent")
///     .service_version("1.2.3")
///     .host_name("web-1")
///     .os_type_from_host()
///     .non_identifying("deployment.environment.name", "prod")
///     .build();
/// assert_eq!(desc.identifying_attribute("service.name").and_then(|v| v.as_str()), Some("io.example.agent"));
/// assert_eq!(desc.non_identifying_attribute("host.name").and_then(|v| v.as_str()), Some("web-1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentDescriptionBuilder {
    description: AgentDescription,
}

/// Replaces the value of `key` in `list`, or appends the pair.
fn upsert(list: &mut Vec<KeyValue>, key: String, value: AnyValue) {
    match list.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(value),
        None => list.push(KeyValue {
            key,
            value: Some(value),
        }),
    }
}

impl AgentDescriptionBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an identifying attribute.
    #[must_use]
    pub fn identifying(mut self, key: impl Into<String>, value: impl Into<AnyValue>) -> Self {
        upsert(
            &mut self.description.identifying_attributes,
            key.into(),
            value.into(),
        );
        self
    }

    /// Sets a non-identifying attribute.
    #[must_use]
    pub fn non_identifying(mut self, key: impl Into<String>, value: impl Into<AnyValue>) -> Self {
        upsert(
            &mut self.description.non_identifying_attributes,
            key.into(),
            value.into(),
        );
        self
    }

    /// Identifying `service.name`: the Agent type, ideally a reverse domain
    /// name such as `io.opentelemetry.collector`.
    #[must_use]
    pub fn service_name(self, name: impl Into<String>) -> Self {
        self.identifying("service.name", name.into())
    }

    /// Identifying `service.namespace`.
    #[must_use]
    pub fn service_namespace(self, namespace: impl Into<String>) -> Self {
        self.identifying("service.namespace", namespace.into())
    }

    /// Identifying `service.version`: the Agent's build version.
    #[must_use]
    pub fn service_version(self, version: impl Into<String>) -> Self {
        self.identifying("service.version", version.into())
    }

    /// Identifying `service.instance.id`, often the instance UID as a string.
    #[must_use]
    pub fn service_instance_id(self, id: impl Into<String>) -> Self {
        self.identifying("service.instance.id", id.into())
    }

    /// Non-identifying `host.name`.
    #[must_use]
    pub fn host_name(self, name: impl Into<String>) -> Self {
        self.non_identifying("host.name", name.into())
    }

    /// Non-identifying `host.arch` (semantic-convention value such as `amd64`).
    #[must_use]
    pub fn host_arch(self, arch: impl Into<String>) -> Self {
        self.non_identifying("host.arch", arch.into())
    }

    /// Non-identifying `host.arch` for the machine this code was built for,
    /// mapped to semantic-convention values (`amd64`, `arm64`, ...).
    #[must_use]
    pub fn host_arch_from_host(self) -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "x86",
            "arm" => "arm32",
            "powerpc" => "ppc32",
            "powerpc64" => "ppc64",
            other => other,
        };
        self.host_arch(arch)
    }

    /// Non-identifying `os.type` (semantic-convention value such as `linux`).
    #[must_use]
    pub fn os_type(self, os_type: impl Into<String>) -> Self {
        self.non_identifying("os.type", os_type.into())
    }

    /// Non-identifying `os.type` for the operating system this code was built
    /// for (`macos` is reported as `darwin`, as the conventions require).
    #[must_use]
    pub fn os_type_from_host(self) -> Self {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            "illumos" | "solaris" => "solaris",
            other => other,
        };
        self.os_type(os)
    }

    /// Non-identifying `os.version`.
    #[must_use]
    pub fn os_version(self, version: impl Into<String>) -> Self {
        self.non_identifying("os.version", version.into())
    }

    /// Non-identifying `os.description`.
    #[must_use]
    pub fn os_description(self, description: impl Into<String>) -> Self {
        self.non_identifying("os.description", description.into())
    }

    /// The finished description.
    pub fn build(self) -> AgentDescription {
        self.description
    }
}

impl AgentDescription {
    /// A builder for an `AgentDescription`.
    pub fn builder() -> AgentDescriptionBuilder {
        AgentDescriptionBuilder::new()
    }

    /// The value of the identifying attribute `key` (first match).
    pub fn identifying_attribute(&self, key: &str) -> Option<&AnyValue> {
        find(&self.identifying_attributes, key)
    }

    /// The value of the non-identifying attribute `key` (first match).
    pub fn non_identifying_attribute(&self, key: &str) -> Option<&AnyValue> {
        find(&self.non_identifying_attributes, key)
    }
}

fn find<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_places_attributes_and_replaces_duplicates() {
        let desc = AgentDescription::builder()
            .service_name("a")
            .service_namespace("ns")
            .service_version("1")
            .service_instance_id("id")
            .service_name("b")
            .host_name("h")
            .host_arch("arm64")
            .os_type("linux")
            .os_version("6.1")
            .os_description("Debian")
            .identifying("custom", 3i64)
            .build();
        let keys: Vec<_> = desc
            .identifying_attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "service.name",
                "service.namespace",
                "service.version",
                "service.instance.id",
                "custom"
            ]
        );
        assert_eq!(
            desc.identifying_attribute("service.name")
                .and_then(AnyValue::as_str),
            Some("b")
        );
        let keys: Vec<_> = desc
            .non_identifying_attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "host.name",
                "host.arch",
                "os.type",
                "os.version",
                "os.description"
            ]
        );
        assert!(desc.identifying_attribute("host.name").is_none());
        assert_eq!(
            desc.identifying_attribute("custom")
                .and_then(AnyValue::as_i64),
            Some(3)
        );
    }

    #[test]
    fn host_values_are_semconv() {
        let desc = AgentDescription::builder()
            .os_type_from_host()
            .host_arch_from_host()
            .build();
        let os = desc
            .non_identifying_attribute("os.type")
            .and_then(AnyValue::as_str)
            .unwrap();
        assert_ne!(os, "macos");
        assert!(!os.is_empty());
        let arch = desc
            .non_identifying_attribute("host.arch")
            .and_then(AnyValue::as_str)
            .unwrap();
        assert_ne!(arch, "x86_64");
        assert_ne!(arch, "aarch64");
    }
}
