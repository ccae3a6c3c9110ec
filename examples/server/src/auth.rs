//! Credentials: API keys for agents (checked in `on_connecting`), and HTTP Basic or a bearer
//! token for the dashboard and JSON API.
//!
//! On a loopback address the demo runs open when no credential is configured (and says so
//! in its log); on any other address it refuses to start without them. Configured
//! credentials are always required, loopback or not.

use std::fmt;
use std::net::SocketAddr;

use base64::Engine;
use http::HeaderMap;

use crate::error::FleetError;

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Agent authentication by API key (`X-API-Key`, or `Authorization: Bearer`).
pub struct AgentAuth {
    keys: Vec<String>,
}

impl fmt::Debug for AgentAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentAuth")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl AgentAuth {
    /// Keys for a listener on `addr`. Without keys only a loopback address is allowed.
    pub fn new(keys: Vec<String>, addr: SocketAddr) -> Result<Self, FleetError> {
        if keys.is_empty() {
            if !addr.ip().is_loopback() {
                return Err(FleetError::Settings(format!(
                    "OpAMP listens on {addr}, which is not loopback: give agent API keys (--agent-api-key)"
                )));
            }
            tracing::warn!(%addr, "OpAMP on loopback without API keys: accepting every agent (demo mode)");
        }
        Ok(Self { keys })
    }

    /// True if every agent is accepted.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// True if the request carries an accepted key (or no key is configured).
    pub fn check(&self, headers: &HeaderMap) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| bearer(headers));
        presented.is_some_and(|p| {
            self.keys.iter().fold(false, |ok, k| {
                ok | constant_time_eq(k.as_bytes(), p.as_bytes())
            })
        })
    }
}

/// Dashboard and API authentication.
pub struct AdminAuth {
    user: String,
    password: Option<String>,
    token: Option<String>,
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminAuth")
            .field("user", &self.user)
            .field("password", &self.password.is_some())
            .field("token", &self.token.is_some())
            .finish()
    }
}

impl AdminAuth {
    /// Credentials for a listener on `addr`. Without any only a loopback address is allowed.
    pub fn new(
        user: String,
        password: Option<String>,
        token: Option<String>,
        addr: SocketAddr,
    ) -> Result<Self, FleetError> {
        let password = password.filter(|p| !p.is_empty());
        let token = token.filter(|t| !t.is_empty());
        if password.is_none() && token.is_none() {
            if !addr.ip().is_loopback() {
                return Err(FleetError::Settings(format!(
                    "the dashboard listens on {addr}, which is not loopback: give --admin-password or --api-token"
                )));
            }
            tracing::warn!(%addr, "dashboard on loopback without credentials: open to local users (demo mode)");
        }
        Ok(Self {
            user,
            password,
            token,
        })
    }

    /// True if no credential is required.
    pub fn is_open(&self) -> bool {
        self.password.is_none() && self.token.is_none()
    }

    /// Who makes the request (for the audit log), or `None` if the credentials are missing or
    /// wrong.
    pub fn check(&self, headers: &HeaderMap) -> Option<String> {
        if self.is_open() {
            return Some("local".to_owned());
        }
        if let (Some(token), Some(given)) = (&self.token, bearer(headers))
            && constant_time_eq(token.as_bytes(), given.as_bytes())
        {
            return Some("api-token".to_owned());
        }
        let password = self.password.as_ref()?;
        let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, b64) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        let ok = constant_time_eq(user.as_bytes(), self.user.as_bytes())
            & constant_time_eq(pass.as_bytes(), password.as_bytes());
        ok.then(|| user.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn agent_keys() {
        let lo: SocketAddr = "127.0.0.1:4320".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:4320".parse().unwrap();
        assert!(AgentAuth::new(vec![], public).is_err());
        let open = AgentAuth::new(vec![], lo).unwrap();
        assert!(open.is_open() && open.check(&HeaderMap::new()));
        let a = AgentAuth::new(vec!["k1".into(), "k2".into()], public).unwrap();
        assert!(a.check(&headers(&[("x-api-key", "k2")])));
        assert!(a.check(&headers(&[("authorization", "Bearer k1")])));
        assert!(!a.check(&headers(&[("x-api-key", "k3")])));
        assert!(!a.check(&headers(&[("authorization", "Basic k1")])));
        assert!(!a.check(&HeaderMap::new()));
    }

    #[test]
    fn admin_credentials() {
        let public: SocketAddr = "0.0.0.0:4321".parse().unwrap();
        assert!(AdminAuth::new("admin".into(), None, None, public).is_err());
        let a = AdminAuth::new(
            "admin".into(),
            Some("pw".into()),
            Some("tok".into()),
            public,
        )
        .unwrap();
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:pw");
        assert_eq!(
            a.check(&headers(&[("authorization", &format!("Basic {basic}"))])),
            Some("admin".to_owned())
        );
        let wrong = base64::engine::general_purpose::STANDARD.encode("admin:nope");
        assert_eq!(
            a.check(&headers(&[("authorization", &format!("Basic {wrong}"))])),
            None
        );
        assert_eq!(
            a.check(&headers(&[("authorization", "Bearer tok")])),
            Some("api-token".to_owned())
        );
        assert_eq!(a.check(&headers(&[("authorization", "Bearer x")])), None);
        assert_eq!(a.check(&HeaderMap::new()), None);
    }
}
