//! `agent_description:`: identifying and non-identifying attributes, written as in the
//! collector's OpAMP extension (`- key: service.name` / `string_value: otel-collector`).

use std::collections::BTreeSet;
use std::path::Path;

use opamp_client::proto::{AgentDescription, AnyValue};
use serde::Deserialize;

use crate::yaml::{ConfigError, join_key};

/// One attribute: a key and exactly one of the typed values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AttributeSection {
    /// The attribute key (semantic conventions, e.g. `service.name`).
    pub key: String,
    /// A string value.
    pub string_value: Option<String>,
    /// An integer value.
    pub int_value: Option<i64>,
    /// A boolean value.
    pub bool_value: Option<bool>,
    /// A floating-point value.
    pub double_value: Option<f64>,
}

impl AttributeSection {
    fn value(&self, file: &Path, key: &str) -> Result<AnyValue, ConfigError> {
        let values: Vec<AnyValue> = [
            self.string_value.clone().map(AnyValue::from),
            self.int_value.map(AnyValue::from),
            self.bool_value.map(AnyValue::from),
            self.double_value.map(AnyValue::from),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[AnyValue; 1]>::try_from(values) {
            Ok([value]) => Ok(value),
            Err(values) => Err(ConfigError::invalid(
                file,
                key,
                format!(
                    "expected exactly one of string_value, int_value, bool_value, double_value \
                     (found {})",
                    values.len()
                ),
            )),
        }
    }
}

/// The `agent_description:` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DescriptionSection {
    /// Attributes that identify the agent (spec §"AgentDescription Message").
    #[serde(default)]
    pub identifying_attributes: Vec<AttributeSection>,
    /// Attributes that describe the agent's environment.
    #[serde(default)]
    pub non_identifying_attributes: Vec<AttributeSection>,
}

impl DescriptionSection {
    /// The description: `defaults` (a builder with program defaults such as `service.name`,
    /// `os.type`), overridden by the attributes of this section. Empty or duplicate keys and
    /// attributes without exactly one value are errors naming the attribute.
    pub fn build(
        &self,
        file: &Path,
        prefix: &str,
        defaults: opamp_client::proto::AgentDescriptionBuilder,
    ) -> Result<AgentDescription, ConfigError> {
        let mut builder = defaults;
        for (list_name, list, identifying) in [
            ("identifying_attributes", &self.identifying_attributes, true),
            (
                "non_identifying_attributes",
                &self.non_identifying_attributes,
                false,
            ),
        ] {
            let mut seen = BTreeSet::new();
            for (i, attribute) in list.iter().enumerate() {
                let key = join_key(prefix, &format!("{list_name}[{i}]"));
                if attribute.key.trim().is_empty() {
                    return Err(ConfigError::invalid(file, key, "empty attribute key"));
                }
                if !seen.insert(attribute.key.as_str()) {
                    return Err(ConfigError::invalid(
                        file,
                        key,
                        format!("attribute {:?} appears twice", attribute.key),
                    ));
                }
                let value = attribute.value(file, &key)?;
                builder = if identifying {
                    builder.identifying(attribute.key.clone(), value)
                } else {
                    builder.non_identifying(attribute.key.clone(), value)
                };
            }
        }
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(key: &str, value: &str) -> AttributeSection {
        AttributeSection {
            key: key.into(),
            string_value: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn overrides_defaults() {
        let section = DescriptionSection {
            identifying_attributes: vec![attr("service.name", "otel-collector")],
            non_identifying_attributes: vec![AttributeSection {
                key: "cores".into(),
                int_value: Some(4),
                ..Default::default()
            }],
        };
        let desc = section
            .build(
                Path::new("a.yaml"),
                "d",
                AgentDescription::builder().service_name("default"),
            )
            .unwrap();
        assert_eq!(
            desc.identifying_attribute("service.name")
                .and_then(|v| v.as_str()),
            Some("otel-collector")
        );
        assert_eq!(
            desc.non_identifying_attribute("cores")
                .and_then(|v| v.as_i64()),
            Some(4)
        );
    }

    #[test]
    fn bad_attributes_are_named() {
        let two_values = DescriptionSection {
            identifying_attributes: vec![AttributeSection {
                key: "k".into(),
                string_value: Some("a".into()),
                bool_value: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = two_values
            .build(Path::new("a.yaml"), "d", AgentDescription::builder())
            .unwrap_err();
        assert_eq!(err.key(), Some("d.identifying_attributes[0]"));

        let duplicate = DescriptionSection {
            non_identifying_attributes: vec![attr("a", "1"), attr("a", "2")],
            ..Default::default()
        };
        let err = duplicate
            .build(Path::new("a.yaml"), "d", AgentDescription::builder())
            .unwrap_err();
        assert_eq!(err.key(), Some("d.non_identifying_attributes[1]"));
    }
}
