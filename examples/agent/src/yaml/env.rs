//! `${ENV}` expansion in configuration values, as the collector's configuration does it.
//!
//! Syntax:
//!
//! * `${NAME}` and `${env:NAME}`: the value of the environment variable `NAME`; an unset
//!   variable is an error (a silent empty value hides typos in secrets and endpoints);
//! * `${NAME:-default}`: the value of `NAME`, or `default` when it is unset or empty;
//! * `$$`: a literal `$`; a `$` followed by anything else is kept as it is.
//!
//! Names start with a letter or `_` and continue with letters, digits and `_`.

use std::fmt;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvError {
    /// `${` without its closing `}`.
    Unterminated,
    /// A reference whose name is not a valid variable name.
    InvalidName(String),
    /// A variable that is not set (and has no default).
    Unset(String),
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Unterminated => f.write_str("`${` without a closing `}`"),
            EnvError::InvalidName(name) => write!(f, "invalid environment variable name {name:?}"),
            EnvError::Unset(name) => write!(
                f,
                "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
            ),
        }
    }
}

impl std::error::Error for EnvError {}

/// Looks up environment variables; [`process_env`] reads the process environment, tests pass
/// a closure over a map.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the process environment (variables that are not valid UTF-8 count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands every reference in `input`.
pub fn expand(input: &str, lookup: Lookup<'_>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(EnvError::Unterminated)?;
            out.push_str(&resolve(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `input` is exactly one reference (then the expanded text may be retyped, e.g.
/// `${ENABLED}` becoming the boolean `true`).
pub fn is_single_reference(input: &str) -> bool {
    let trimmed = input.trim();
    trimmed.starts_with("${")
        && trimmed.ends_with('}')
        && trimmed[2..].find('}') == Some(trimmed.len() - 3)
}

fn resolve(reference: &str, lookup: Lookup<'_>) -> Result<String, EnvError> {
    let reference = reference.strip_prefix("env:").unwrap_or(reference);
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    if !valid_name(name) {
        return Err(EnvError::InvalidName(name.to_owned()));
    }
    match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(EnvError::Unset(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("secret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        assert_eq!(expand("Bearer ${KEY}", &env).unwrap(), "Bearer secret");
        assert_eq!(expand("${env:KEY}-${KEY}", &env).unwrap(), "secret-secret");
        assert_eq!(expand("${MISSING:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("no refs", &env).unwrap(), "no refs");
    }

    #[test]
    fn dollars() {
        assert_eq!(expand("$$KEY", &env).unwrap(), "$KEY");
        assert_eq!(expand("a$b $", &env).unwrap(), "a$b $");
    }

    #[test]
    fn errors() {
        assert_eq!(expand("${KEY", &env), Err(EnvError::Unterminated));
        assert_eq!(
            expand("${1X}", &env),
            Err(EnvError::InvalidName("1X".into()))
        );
        assert_eq!(
            expand("x ${NOPE} y", &env),
            Err(EnvError::Unset("NOPE".into()))
        );
        assert!(EnvError::Unset("NOPE".into()).to_string().contains("NOPE"));
    }

    #[test]
    fn single_reference() {
        assert!(is_single_reference("${A}"));
        assert!(is_single_reference(" ${env:A} "));
        assert!(!is_single_reference("${A}${B}"));
        assert!(!is_single_reference("x${A}"));
        assert!(!is_single_reference("${A"));
    }
}
