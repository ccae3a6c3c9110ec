//! What protects the dashboard and API listener from other web pages the admin's browser
//! visits, in front of authentication:
//!
//! - **Cross-site requests (CSRF).** A state-changing request (any method but `GET`, `HEAD`
//!   and `OPTIONS`) is served only with evidence that a page of this origin, or a program
//!   that is not a browser, sent it: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to
//!   the `Host`, or a header a cross-origin page cannot send without a CORS preflight (which
//!   this server never grants): `X-Requested-With`, a `Content-Type` other than the three
//!   "simple" ones, or `Authorization: Bearer`. A request a browser marks as cross-site, or
//!   whose `Origin` differs from its `Host`, is refused whatever else it carries. Browsers
//!   add the admin's Basic credentials to a cross-site form post by themselves; they never
//!   add these.
//! - **DNS rebinding (demo mode).** Without credentials (loopback demo), a request whose
//!   `Host` is neither `localhost` nor a loopback address (with the bound port) is refused,
//!   reads included: a page on `evil.example` whose name was re-pointed to 127.0.0.1 sends
//!   `Host: evil.example`.
//! - **Hardening headers** on every response: a `Content-Security-Policy` allowing only this
//!   origin's script and style (no inline code, no framing), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The `Content-Security-Policy` of every response.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The listener's rules.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// The bound address (its port is the only one accepted in `Host` in demo mode).
    addr: SocketAddr,
    /// No credentials: check `Host` (DNS rebinding).
    demo: bool,
}

impl Guard {
    /// The rules of a listener bound to `addr`; `demo` when it runs without credentials.
    pub(crate) fn new(addr: SocketAddr, demo: bool) -> Self {
        Self { addr, demo }
    }

    /// Wraps `router`.
    pub(crate) fn wrap(self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(Arc::new(self), check))
    }

    /// True if `Host` names this server in a way DNS rebinding cannot produce: `localhost`
    /// or a loopback IP literal (or the bound IP), with the bound port if a port is given.
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port.is_some_and(|p| p != self.addr.port()) {
            return false;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        name.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == self.addr.ip())
    }
}

/// `name[:port]` or `[v6][:port]` → (name, port). `None` if the port is not a number.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let host = host.trim();
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&host[..=end], port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!name.is_empty()).then_some((name, port))
}

/// Methods that change nothing (they are still authenticated).
fn is_safe(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD || method == Method::OPTIONS
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A header that a page on another origin cannot make a browser send without a CORS
/// preflight.
fn has_non_simple_header(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-requested-with") {
        return true;
    }
    if let Some(ct) = header_str(headers, "content-type") {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            essence.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ) {
            return true;
        }
    }
    header_str(headers, "authorization").is_some_and(|a| {
        a.split_once(' ')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
    })
}

/// Why a state-changing request is refused, if it is.
pub(crate) fn cross_origin_refusal(headers: &HeaderMap) -> Option<String> {
    match header_str(headers, "sec-fetch-site") {
        Some(s) if s.eq_ignore_ascii_case("same-origin") => return None,
        Some(s) if !s.eq_ignore_ascii_case("none") => {
            return Some(format!(
                "cross-origin request refused (Sec-Fetch-Site: {s})"
            ));
        }
        _ => {}
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = header_str(headers, "host");
        return match (authority, host) {
            (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
            _ => Some(format!(
                "cross-origin request refused (Origin {origin:?} is not this server)"
            )),
        };
    }
    if has_non_simple_header(headers) {
        return None;
    }
    Some(
        "state-changing requests need a same-origin Origin or Sec-Fetch-Site, or a header \
         such as X-Requested-With, Content-Type: application/json or Authorization: Bearer"
            .to_owned(),
    )
}

fn refuse(kind: &'static str, message: String) -> Response {
    ApiError {
        status: StatusCode::FORBIDDEN,
        kind,
        message,
    }
    .into_response()
}

/// Sets the hardening headers (see the module docs).
pub(crate) fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let refusal = if guard.demo && !guard.host_allowed(req.headers()) {
        let host = header_str(req.headers(), "host").unwrap_or("").to_owned();
        tracing::warn!(
            host = %crate::logsafe::Untrusted(&host),
            "dashboard request refused: Host is not this server (DNS rebinding?)"
        );
        Some(refuse(
            "host_not_allowed",
            "in demo mode (no credentials) the dashboard answers only to localhost or its \
             loopback address"
                .to_owned(),
        ))
    } else if !is_safe(req.method()) {
        cross_origin_refusal(req.headers()).map(|why| {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), reason = %crate::logsafe::Untrusted(&why), "dashboard request refused");
            refuse("cross_origin", why)
        })
    } else {
        None
    };
    let mut resp = match refusal {
        Some(r) => r,
        None => next.run(req).await,
    };
    harden(resp.headers_mut());
    resp
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
    fn cross_origin_rules() {
        let host = ("host", "127.0.0.1:4321");
        assert!(
            cross_origin_refusal(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_none()
        );
        assert!(
            cross_origin_refusal(&headers(&[
                host,
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json")
            ]))
            .is_some()
        );
        assert!(cross_origin_refusal(&headers(&[host, ("sec-fetch-site", "same-site")])).is_some());
        assert!(
            cross_origin_refusal(&headers(&[host, ("origin", "http://127.0.0.1:4321")])).is_none()
        );
        assert!(
            cross_origin_refusal(&headers(&[host, ("origin", "http://evil.example")])).is_some()
        );
        assert!(
            cross_origin_refusal(&headers(&[
                host,
                ("origin", "null"),
                ("x-requested-with", "x")
            ]))
            .is_some()
        );
        assert!(cross_origin_refusal(&headers(&[host])).is_some());
        assert!(
            cross_origin_refusal(&headers(&[
                host,
                ("content-type", "text/plain;charset=UTF-8")
            ]))
            .is_some()
        );
        assert!(
            cross_origin_refusal(&headers(&[host, ("content-type", "application/json")])).is_none()
        );
        assert!(cross_origin_refusal(&headers(&[host, ("x-requested-with", "curl")])).is_none());
        assert!(cross_origin_refusal(&headers(&[host, ("authorization", "Bearer t")])).is_none());
        assert!(cross_origin_refusal(&headers(&[host, ("authorization", "Basic YTpi")])).is_some());
    }

    #[test]
    fn demo_hosts() {
        let g = Guard::new("127.0.0.1:4321".parse().unwrap(), true);
        for ok in [
            "127.0.0.1:4321",
            "localhost:4321",
            "LOCALHOST:4321",
            "[::1]:4321",
            "localhost",
            "127.0.0.2:4321",
        ] {
            assert!(g.host_allowed(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example:4321",
            "evil.example",
            "localhost:80",
            "127.0.0.1:x",
            "10.0.0.1:4321",
            "",
            "localhost.evil.example:4321",
        ] {
            assert!(!g.host_allowed(&headers(&[("host", bad)])), "{bad}");
        }
        assert!(!g.host_allowed(&HeaderMap::new()));
    }
}
