//! Which server an endpoint URL points at, for deciding where credentials may go.
//!
//! Headers configured for the OpAMP server (an API key, a bearer token) belong to that server:
//! an offer that moves the Agent to another origin does not take them along unless it brings
//! its own (issue of credential forwarding; the spec leaves it to the client). And an offer
//! must not silently move a `wss://`/`https://` connection to cleartext.

/// The origin of an OpAMP endpoint: whether it is encrypted, the host (lowercase) and the
/// port (defaulted by scheme). `ws`/`http` and `wss`/`https` name the same origin, since an
/// OpAMP server serves both transports on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    secure: bool,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of `endpoint`, `None` when it is not a usable OpAMP URL.
    pub(crate) fn of(endpoint: &str) -> Option<Origin> {
        let uri: http::Uri = endpoint.parse().ok()?;
        let secure = match uri.scheme_str()?.to_ascii_lowercase().as_str() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Some(Origin { secure, host, port })
    }

    /// Whether the connection is encrypted (`wss`, `https`).
    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }
}

/// Whether `a` and `b` are the same origin (unparsable URLs never are).
pub(crate) fn same_origin(a: &str, b: &str) -> bool {
    matches!((Origin::of(a), Origin::of(b)), (Some(a), Some(b)) if a == b)
}

/// Whether moving from `from` to `to` gives up encryption (`wss`/`https` to `ws`/`http`).
pub(crate) fn is_downgrade(from: &str, to: &str) -> bool {
    let secure = |url| Origin::of(url).is_some_and(|o| o.is_secure());
    secure(from) && !secure(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_host_port_and_security() {
        assert!(same_origin(
            "wss://H.example:443/v1/opamp",
            "https://h.example/other"
        ));
        assert!(same_origin("ws://h:80/a", "http://h/b"));
        assert!(!same_origin("wss://h/v1/opamp", "ws://h/v1/opamp"));
        assert!(!same_origin("wss://h/v1/opamp", "wss://h:4320/v1/opamp"));
        assert!(!same_origin(
            "wss://h/v1/opamp",
            "wss://evil.example/v1/opamp"
        ));
        assert!(!same_origin("not a url", "not a url"));
        assert!(is_downgrade("wss://h/", "ws://h/"));
        assert!(is_downgrade("https://h/", "ws://other/"));
        assert!(!is_downgrade("ws://h/", "wss://h/"));
        assert!(!is_downgrade("wss://h/", "https://h/"));
    }
}
