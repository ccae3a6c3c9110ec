//! Label selectors over agent attributes, e.g. `environment=prod,region=eu`.
//!
//! The syntax follows Kubernetes label selectors, applied to the attributes of an agent's
//! `AgentDescription` (identifying and non-identifying together; an identifying attribute
//! wins when both carry the same key):
//!
//! | requirement | matches when |
//! | --- | --- |
//! | `key=value`, `key==value` | the attribute exists and equals `value` |
//! | `key!=value` | the attribute is absent or differs from `value` |
//! | `key in (a,b)` | the attribute equals one of the values |
//! | `key notin (a,b)` | the attribute is absent or equals none of the values |
//! | `key` | the attribute exists |
//! | `!key` | the attribute is absent |
//!
//! Requirements are separated by commas and must all hold. The empty selector matches every
//! agent. Attribute values that are not strings compare by their text form (`true`, `42`).
//!
//! **Trusted labels.** Attributes are what the agent says about itself: any holder of an
//! agent key can claim `environment=prod`. Keys written `label:KEY` match the *operator
//! labels* instead, which only an admin sets (agent page, or `PUT /api/agents/{uid}/labels`);
//! an attribute an agent reports under a `label:` key is ignored. A configuration that must
//! reach only vetted agents selects on them: `label:environment=prod,label:region=eu`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use opamp_fleet_server::selector::Selector;
//!
//! let sel: Selector = "environment=prod, region in (eu, us)".parse()?;
//! let mut attrs = BTreeMap::new();
//! attrs.insert("environment".to_owned(), "prod".to_owned());
//! attrs.insert("region".to_owned(), "eu".to_owned());
//! assert!(sel.matches(&attrs));
//! attrs.insert("region".to_owned(), "ap".to_owned());
//! assert!(!sel.matches(&attrs));
//! # Ok::<(), opamp_fleet_server::selector::SelectorError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Prefix of keys that match operator labels rather than agent-reported attributes.
pub const LABEL_PREFIX: &str = "label:";

/// Longest selector text accepted.
pub const MAX_SELECTOR_LEN: usize = 1024;
/// Most requirements in one selector.
pub const MAX_REQUIREMENTS: usize = 32;

/// Why a selector could not be parsed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The selector text is longer than [`MAX_SELECTOR_LEN`].
    #[error("selector is longer than {MAX_SELECTOR_LEN} characters")]
    TooLong,
    /// More than [`MAX_REQUIREMENTS`] requirements.
    #[error("selector has more than {MAX_REQUIREMENTS} requirements")]
    TooManyRequirements,
    /// A requirement has no key (e.g. `=prod`).
    #[error("requirement {0:?} has no key")]
    MissingKey(String),
    /// A key contains characters other than letters, digits, `.`, `_`, `-`, `/`.
    #[error("invalid attribute key {0:?} (allowed: letters, digits, '.', '_', '-', '/')")]
    InvalidKey(String),
    /// A value contains a character selectors cannot carry (`,`, `(`, `)`, `=`, `!`).
    #[error("invalid value {0:?} in requirement")]
    InvalidValue(String),
    /// `in`/`notin` without a parenthesised list.
    #[error("requirement {0:?}: expected a list like (a,b)")]
    ExpectedList(String),
    /// A requirement that is none of the accepted forms.
    #[error("cannot parse requirement {0:?}")]
    Unparsable(String),
}

/// One condition on one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The attribute equals the value.
    Equals(String, String),
    /// The attribute is absent or differs.
    NotEquals(String, String),
    /// The attribute equals one of the values.
    In(String, Vec<String>),
    /// The attribute is absent or equals none of the values.
    NotIn(String, Vec<String>),
    /// The attribute exists.
    Exists(String),
    /// The attribute is absent.
    NotExists(String),
}

impl Requirement {
    /// True if the attributes satisfy the requirement.
    pub fn matches(&self, attrs: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => attrs.get(k) == Some(v),
            Self::NotEquals(k, v) => attrs.get(k) != Some(v),
            Self::In(k, vs) => attrs.get(k).is_some_and(|a| vs.contains(a)),
            Self::NotIn(k, vs) => !attrs.get(k).is_some_and(|a| vs.contains(a)),
            Self::Exists(k) => attrs.contains_key(k),
            Self::NotExists(k) => !attrs.contains_key(k),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals(k, v) => write!(f, "{k}={v}"),
            Self::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Self::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Self::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Self::Exists(k) => write!(f, "{k}"),
            Self::NotExists(k) => write!(f, "!{k}"),
        }
    }
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every agent.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True if it has no requirement (matches every agent).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// True if the attributes satisfy every requirement.
    pub fn matches(&self, attrs: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(attrs))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(SelectorError::TooLong);
        }
        let mut requirements = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if requirements.len() == MAX_REQUIREMENTS {
                return Err(SelectorError::TooManyRequirements);
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// True for an attribute key (letters, digits, `.`, `_`, `-`, `/`, at most 256 bytes),
/// optionally prefixed by [`LABEL_PREFIX`].
fn valid_key(key: &str) -> bool {
    let key = key.strip_prefix(LABEL_PREFIX).unwrap_or(key);
    valid_label_key(key)
}

/// True for a key an operator label may have: letters, digits, `.`, `_`, `-`, `/`, at most
/// 256 bytes.
pub fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

fn check_key(part: &str, key: &str) -> Result<String, SelectorError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(SelectorError::MissingKey(part.to_owned()));
    }
    if !valid_key(key) {
        return Err(SelectorError::InvalidKey(key.to_owned()));
    }
    Ok(key.to_owned())
}

/// True for a value a selector can match (and so an operator label may have): at most 256
/// bytes, no `,`, `(`, `)`, `=`, `!`, no control characters, no surrounding spaces.
pub fn valid_label_value(value: &str) -> bool {
    value.trim() == value
        && !value.chars().any(char::is_control)
        && check_value(value).is_ok_and(|v| v == value)
}

fn check_value(value: &str) -> Result<String, SelectorError> {
    let value = value.trim();
    if value.len() > 256
        || value
            .chars()
            .any(|c| matches!(c, ',' | '(' | ')' | '=' | '!'))
    {
        return Err(SelectorError::InvalidValue(value.to_owned()));
    }
    Ok(value.to_owned())
}

fn parse_list(part: &str, rest: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::ExpectedList(part.to_owned()))?;
    let values = inner
        .split(',')
        .map(check_value)
        .collect::<Result<Vec<_>, _>>()?;
    if values.iter().any(String::is_empty) {
        return Err(SelectorError::ExpectedList(part.to_owned()));
    }
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if let Some((key, value)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(
            check_key(part, key)?,
            check_value(value)?,
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(
            check_key(part, key)?,
            check_value(value)?,
        ));
    }
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(check_key(part, key)?));
    }
    // `key in (...)` / `key notin (...)`
    let mut words = part.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(check_key(part, key)?));
    }
    if let Some(list) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(
            check_key(part, key)?,
            parse_list(part, list)?,
        ));
    }
    if let Some(list) = rest.strip_prefix("in") {
        return Ok(Requirement::In(
            check_key(part, key)?,
            parse_list(part, list)?,
        ));
    }
    Err(SelectorError::Unparsable(part.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_form() {
        let s: Selector = "a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g"
            .parse()
            .unwrap();
        assert_eq!(
            s.requirements(),
            &[
                Requirement::Equals("a".into(), "1".into()),
                Requirement::Equals("b".into(), "2".into()),
                Requirement::NotEquals("c".into(), "3".into()),
                Requirement::In("d".into(), vec!["x".into(), "y".into()]),
                Requirement::NotIn("e".into(), vec!["z".into()]),
                Requirement::Exists("f".into()),
                Requirement::NotExists("g".into()),
            ]
        );
        let again: Selector = s.to_string().parse().unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn matching() {
        let a = attrs(&[
            ("environment", "prod"),
            ("region", "eu"),
            ("service.name", "col"),
        ]);
        let yes = [
            "",
            "environment=prod",
            "environment=prod,region=eu",
            "region in (us,eu)",
            "region notin (us)",
            "service.name",
            "!missing",
            "missing!=x",
        ];
        for s in yes {
            assert!(s.parse::<Selector>().unwrap().matches(&a), "{s}");
        }
        let no = [
            "environment=dev",
            "environment=prod,region=us",
            "region in (us)",
            "region notin (eu)",
            "missing",
            "!region",
            "region!=eu",
        ];
        for s in no {
            assert!(!s.parse::<Selector>().unwrap().matches(&a), "{s}");
        }
    }

    #[test]
    fn label_keys() {
        let s: Selector = "label:environment=prod,!label:quarantined".parse().unwrap();
        assert_eq!(
            s.requirements()[0],
            Requirement::Equals("label:environment".into(), "prod".into())
        );
        assert!(s.matches(&attrs(&[("label:environment", "prod")])));
        assert!(!s.matches(&attrs(&[("environment", "prod")])));
        assert!("label:=x".parse::<Selector>().is_err());
        assert!("label:label:x=y".parse::<Selector>().is_err());
        assert!("other:x=y".parse::<Selector>().is_err());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            "=x".parse::<Selector>(),
            Err(SelectorError::MissingKey(_))
        ));
        assert!(matches!(
            "a b=c".parse::<Selector>(),
            Err(SelectorError::InvalidKey(_))
        ));
        assert!(matches!(
            "a in x".parse::<Selector>(),
            Err(SelectorError::ExpectedList(_))
        ));
        assert!(matches!(
            "a in ()".parse::<Selector>(),
            Err(SelectorError::ExpectedList(_))
        ));
        assert!(matches!(
            "a=b=c".parse::<Selector>(),
            Err(SelectorError::InvalidValue(_))
        ));
        assert!(matches!(
            "a foo (x)".parse::<Selector>(),
            Err(SelectorError::Unparsable(_))
        ));
        let long = "a=".to_owned() + &"x".repeat(MAX_SELECTOR_LEN);
        assert_eq!(long.parse::<Selector>(), Err(SelectorError::TooLong));
        let many = vec!["a"; MAX_REQUIREMENTS + 1].join(",");
        assert_eq!(
            many.parse::<Selector>(),
            Err(SelectorError::TooManyRequirements)
        );
    }
}
