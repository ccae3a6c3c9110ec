//! A server endpoint: URL, headers (`${ENV}` already expanded) and `tls:`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opamp_transport::tls::{PemSource, TlsClientSettings};
use serde::Deserialize;

use crate::yaml::{ConfigError, duration, join_key, resolve_path};

/// The transport an endpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket (`ws://`, `wss://`).
    WebSocket,
    /// Plain HTTP polling (`http://`, `https://`).
    Http,
}

/// `tls:` as in the collector's TLS client settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSection {
    /// `true`: plaintext (`ws://` / `http://`); then no other TLS key may be set.
    #[serde(default)]
    pub insecure: bool,
    /// **Dangerous**: accept any server certificate. For labs only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// CA certificates (PEM) to trust, besides the default roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// An endpoint section: `endpoint`, `headers`, `tls` and, for plain HTTP, `polling_interval`.
/// `Debug` shows header names, never their values.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EndpointSection {
    /// The server URL, e.g. `wss://opamp.example.com:4320/v1/opamp`.
    pub endpoint: String,
    /// Headers sent with every connection or request (e.g. `X-API-Key: ${OPAMP_API_KEY}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Plain HTTP only: how often to poll the server.
    #[serde(default, deserialize_with = "duration::deserialize_option")]
    pub polling_interval: Option<Duration>,
}

/// A checked endpoint, ready for `ClientSettings`. Header values are marked sensitive, and
/// `Debug` shows header names only.
#[derive(Clone)]
#[non_exhaustive]
pub struct Endpoint {
    /// The URL.
    pub url: String,
    /// Its transport.
    pub transport: Transport,
    /// Headers.
    pub headers: HeaderMap,
    /// TLS settings (defaults for plaintext URLs).
    pub tls: TlsClientSettings,
    /// Plain HTTP polling interval, if set.
    pub polling_interval: Option<Duration>,
}

impl std::fmt::Debug for EndpointSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSection")
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("tls", &self.tls)
            .field("polling_interval", &self.polling_interval)
            .finish()
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("tls", &self.tls)
            .field("polling_interval", &self.polling_interval)
            .finish()
    }
}

impl EndpointSection {
    /// Checks the section found at `prefix` in `file`. `expected` restricts the transport
    /// (`server.ws` must be a WebSocket URL); `None` accepts both.
    pub fn check(
        &self,
        file: &Path,
        prefix: &str,
        expected: Option<Transport>,
    ) -> Result<Endpoint, ConfigError> {
        let key = |name: &str| join_key(prefix, name);
        let uri: http::Uri = self.endpoint.parse().map_err(|_| {
            ConfigError::invalid(
                file,
                key("endpoint"),
                format!("{:?} is not a URL", self.endpoint),
            )
        })?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid(
                file,
                key("endpoint"),
                "the URL has no host",
            ));
        }
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let (transport, secure) = match scheme.as_str() {
            "ws" => (Transport::WebSocket, false),
            "wss" => (Transport::WebSocket, true),
            "http" => (Transport::Http, false),
            "https" => (Transport::Http, true),
            _ => {
                return Err(ConfigError::invalid(
                    file,
                    key("endpoint"),
                    "the scheme must be ws, wss, http or https",
                ));
            }
        };
        if let Some(expected) = expected
            && expected != transport
        {
            let want = match expected {
                Transport::WebSocket => "ws:// or wss://",
                Transport::Http => "http:// or https://",
            };
            return Err(ConfigError::invalid(
                file,
                key("endpoint"),
                format!("this section needs a {want} URL"),
            ));
        }
        if self.polling_interval.is_some() && transport == Transport::WebSocket {
            return Err(ConfigError::invalid(
                file,
                key("polling_interval"),
                "only plain HTTP endpoints poll",
            ));
        }
        if self
            .polling_interval
            .is_some_and(|d| d < Duration::from_millis(100))
        {
            return Err(ConfigError::invalid(
                file,
                key("polling_interval"),
                "must be at least 100ms",
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let header_key = join_key(&key("headers"), name);
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::invalid(file, &header_key, "invalid header name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                ConfigError::invalid(
                    file,
                    &header_key,
                    "invalid header value (visible ASCII only)",
                )
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let tls = match &self.tls {
            Some(section) => section.check(file, &key("tls"), secure)?,
            None => TlsClientSettings::default(),
        };
        Ok(Endpoint {
            url: self.endpoint.clone(),
            transport,
            headers,
            tls,
            polling_interval: self.polling_interval,
        })
    }
}

impl TlsSection {
    /// Checks the section against the URL (`secure`: wss/https) and that the files exist.
    pub fn check(
        &self,
        file: &Path,
        prefix: &str,
        secure: bool,
    ) -> Result<TlsClientSettings, ConfigError> {
        let key = |name: &str| join_key(prefix, name);
        let has_files =
            self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        if self.insecure {
            if secure {
                return Err(ConfigError::invalid(
                    file,
                    key("insecure"),
                    "insecure: true means plaintext, but the endpoint is wss:// or https:// \
                     (use insecure_skip_verify to skip certificate checks)",
                ));
            }
            if has_files || self.insecure_skip_verify {
                return Err(ConfigError::invalid(
                    file,
                    key("insecure"),
                    "insecure: true (plaintext) cannot be combined with other TLS settings",
                ));
            }
            return Ok(TlsClientSettings::default());
        }
        if !secure && (has_files || self.insecure_skip_verify) {
            return Err(ConfigError::invalid(
                file,
                prefix,
                "TLS settings need a wss:// or https:// endpoint",
            ));
        }
        let existing = |name: &str, path: &Path| -> Result<PathBuf, ConfigError> {
            let resolved = resolve_path(file, path);
            std::fs::metadata(&resolved).map_err(|err| {
                ConfigError::invalid(file, key(name), format!("{}: {err}", resolved.display()))
            })?;
            Ok(resolved)
        };
        let mut tls =
            TlsClientSettings::default().with_insecure_skip_verify(self.insecure_skip_verify);
        if let Some(ca) = &self.ca_file {
            tls = tls.with_ca(PemSource::File(existing("ca_file", ca)?));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(private_key)) => {
                tls = tls.with_client_cert(
                    PemSource::File(existing("cert_file", cert)?),
                    PemSource::File(existing("key_file", private_key)?),
                );
            }
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    file,
                    key("key_file"),
                    "cert_file needs key_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    file,
                    key("cert_file"),
                    "key_file needs cert_file",
                ));
            }
            (None, None) => {}
        }
        // Read the PEM files now, so that a bad file is reported at start, with its key.
        tls.build().map_err(|err| {
            ConfigError::invalid(file, prefix, format!("unusable TLS settings: {err}"))
        })?;
        Ok(tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(endpoint: &str) -> EndpointSection {
        EndpointSection {
            endpoint: endpoint.into(),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_plain_endpoints() {
        let ep = section("ws://127.0.0.1:4320/v1/opamp")
            .check(Path::new("a.yaml"), "server.ws", Some(Transport::WebSocket))
            .unwrap();
        assert_eq!(ep.transport, Transport::WebSocket);
        let ep = section("https://h/v1/opamp")
            .check(Path::new("a.yaml"), "server", None)
            .unwrap();
        assert_eq!(ep.transport, Transport::Http);
    }

    #[test]
    fn scheme_errors_are_named() {
        let err = section("http://h/v1/opamp")
            .check(Path::new("a.yaml"), "server.ws", Some(Transport::WebSocket))
            .unwrap_err();
        assert_eq!(err.key(), Some("server.ws.endpoint"));
        let err = section("ftp://h/")
            .check(Path::new("a.yaml"), "server", None)
            .unwrap_err();
        assert_eq!(err.key(), Some("server.endpoint"));
        let err = section("not a url")
            .check(Path::new("a.yaml"), "server", None)
            .unwrap_err();
        assert_eq!(err.key(), Some("server.endpoint"));
    }

    #[test]
    fn header_errors_are_named() {
        let mut s = section("ws://h/v1/opamp");
        s.headers.insert("Bad Name".into(), "v".into());
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.headers.Bad Name"));
        let mut s = section("ws://h/v1/opamp");
        s.headers.insert("X-Key".into(), "line\nbreak".into());
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.headers.X-Key"));
    }

    #[test]
    fn tls_errors_are_named() {
        let mut s = section("wss://h/v1/opamp");
        s.tls = Some(TlsSection {
            insecure: true,
            ..Default::default()
        });
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.tls.insecure"));

        let mut s = section("wss://h/v1/opamp");
        s.tls = Some(TlsSection {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        });
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.tls.ca_file"));
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "not pem").unwrap();
        let mut s = section("wss://h/v1/opamp");
        s.tls = Some(TlsSection {
            cert_file: Some(cert.clone()),
            ..Default::default()
        });
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.tls.key_file"));

        let mut s = section("ws://h/v1/opamp");
        s.tls = Some(TlsSection {
            ca_file: Some(cert),
            ..Default::default()
        });
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.tls"));
    }

    #[test]
    fn debug_hides_header_values() {
        let mut s = section("ws://h/v1/opamp");
        s.headers
            .insert("Authorization".into(), "Bearer s3cret".into());
        assert!(!format!("{s:?}").contains("s3cret"));
        let ep = s.check(Path::new("a.yaml"), "server", None).unwrap();
        assert!(!format!("{ep:?}").contains("s3cret"));
        assert!(format!("{ep:?}").contains("authorization"));
    }

    #[test]
    fn polling_interval_only_for_http() {
        let mut s = section("ws://h/v1/opamp");
        s.polling_interval = Some(Duration::from_secs(5));
        let err = s.check(Path::new("a.yaml"), "server.ws", None).unwrap_err();
        assert_eq!(err.key(), Some("server.ws.polling_interval"));
    }
}
