//! The effective parameters of the OpAMP connection, and how an offer changes them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConnectionSettingsError;
use super::validate;
use crate::proto::{Headers, OpAmpConnectionSettings, TlsConnectionSettings};

/// Everything the client needs to open the OpAMP connection: where, with which headers,
/// client certificate, TLS and proxy settings, and the heartbeat interval.
///
/// The [`ConnectionSettingsManager`](super::ConnectionSettingsManager) keeps the active
/// parameters and the candidate of a pending offer; the driver opens connections with
/// [`ConnectionSettingsManager::connect_params`](super::ConnectionSettingsManager::connect_params).
///
/// `Debug` prints header names but not their values, and never prints the private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpampConnectionParams {
    /// The OpAMP server URL (`ws`, `wss`, `http` or `https`).
    pub endpoint: String,
    /// Headers sent on every connection attempt and HTTP request, in order.
    pub headers: Vec<(String, String)>,
    /// The client certificate for mutual TLS, if any.
    pub client_certificate: Option<ClientCertificate>,
    /// TLS settings offered by the server; `None` means the client's own TLS configuration.
    pub tls: Option<TlsParams>,
    /// A proxy to connect through, if any.
    pub proxy: Option<ProxyParams>,
    /// The heartbeat interval offered by the server; `None` means the client's configured
    /// interval. `Some(Duration::ZERO)` disables WebSocket heartbeats (plain HTTP then polls
    /// at the client's configured interval).
    pub heartbeat_interval: Option<Duration>,
}

impl OpampConnectionParams {
    /// Parameters for `endpoint` with no headers, certificate, TLS or proxy settings.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            client_certificate: None,
            tls: None,
            proxy: None,
            heartbeat_interval: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the client certificate.
    #[must_use]
    pub fn with_client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.client_certificate = Some(certificate);
        self
    }

    /// Sets the TLS settings.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsParams) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the proxy.
    #[must_use]
    pub fn with_proxy(mut self, proxy: ProxyParams) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Sets the heartbeat interval.
    #[must_use]
    pub fn with_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// Checks every field: the endpoint URL, header names and values, PEM certificates and
    /// key (and that they belong together), TLS versions and cipher suites, the proxy URL.
    pub fn validate(&self) -> Result<(), ConnectionSettingsError> {
        validate::endpoint(&self.endpoint)?;
        validate::headers(&self.headers)?;
        if let Some(cert) = &self.client_certificate {
            validate::client_certificate(cert)?;
        }
        if let Some(tls) = &self.tls {
            validate::tls(tls)?;
        }
        if let Some(proxy) = &self.proxy {
            validate::proxy(proxy)?;
        }
        Ok(())
    }

    /// The parameters that result from applying `offer` to `self`, validated.
    ///
    /// Merge rules (spec §"OpAMPConnectionSettings", §"TLSConnectionSettings Message",
    /// §"ProxyConnectionSettings Message"):
    /// * `destination_endpoint`: replaces the endpoint; an empty one keeps the current endpoint
    ///   unless [`MergeOptions::require_endpoint`] is set (servers such as opamp-go's example
    ///   server send certificate-only or TLS-only offers with an empty endpoint).
    /// * `headers`: when present, the offered list replaces the headers (the server owns the
    ///   whole set, so it can also withdraw a bootstrap credential); absent keeps them.
    /// * `certificate`: when present, replaces the client certificate. An empty `private_key`
    ///   means the key of an earlier CSR (`csr_private_key`) is used (spec
    ///   §"Agent-initiated CSR Flow" step 7). Absent keeps the current certificate, or drops
    ///   it when [`MergeOptions::drop_certificate_when_omitted`] is set.
    /// * `tls`, `proxy`: present replaces, absent keeps.
    /// * `heartbeat_interval_seconds`: replaces the interval, and `0` becomes
    ///   `Some(Duration::ZERO)`, "heartbeats disabled" (spec
    ///   §"OpAMPConnectionSettings.heartbeat_interval_seconds": a server that sets 0 disables
    ///   heartbeats; proto3 cannot tell an unset field from 0, so an offer that does not
    ///   mention heartbeats disables them too, as in opamp-go). Only an absent
    ///   `OpAMPConnectionSettings` leaves the interval alone. Over plain HTTP, where the
    ///   heartbeat is the polling interval and polling cannot stop, zero means the client's
    ///   configured polling interval.
    pub fn merged_with(
        &self,
        offer: &OpAmpConnectionSettings,
        options: &MergeOptions,
        csr_private_key: Option<&str>,
    ) -> Result<Self, ConnectionSettingsError> {
        let mut merged = self.clone();
        if offer.destination_endpoint.is_empty() {
            if options.require_endpoint {
                return Err(ConnectionSettingsError::InvalidEndpoint {
                    endpoint: String::new(),
                    reason: "the offer has no destination endpoint",
                });
            }
        } else {
            merged.endpoint = offer.destination_endpoint.clone();
        }
        if let Some(headers) = &offer.headers {
            merged.headers = headers_from_proto(headers);
        }
        match &offer.certificate {
            Some(cert) => {
                if options.ephemeral_storage {
                    return Err(ConnectionSettingsError::EphemeralStorage);
                }
                let cert_pem = pem_text(&cert.cert, "the offered certificate")?;
                let private_key_pem = if cert.private_key.is_empty() {
                    csr_private_key
                        .ok_or(ConnectionSettingsError::MissingPrivateKey)?
                        .to_owned()
                } else {
                    pem_text(&cert.private_key, "the offered private key")?
                };
                let ca_cert_pem = if cert.ca_cert.is_empty() {
                    None
                } else {
                    Some(pem_text(&cert.ca_cert, "the offered CA certificate")?)
                };
                merged.client_certificate = Some(ClientCertificate {
                    cert_pem,
                    private_key_pem,
                    ca_cert_pem,
                });
            }
            None if options.drop_certificate_when_omitted => merged.client_certificate = None,
            None => {}
        }
        if let Some(tls) = &offer.tls {
            merged.tls = Some(TlsParams::from_proto(tls)?);
        }
        if let Some(proxy) = &offer.proxy {
            merged.proxy = Some(ProxyParams {
                url: proxy.url.clone(),
                connect_headers: proxy
                    .connect_headers
                    .as_ref()
                    .map(headers_from_proto)
                    .unwrap_or_default(),
            });
        }
        merged.heartbeat_interval = Some(Duration::from_secs(offer.heartbeat_interval_seconds));
        merged.validate()?;
        Ok(merged)
    }

    /// Whether `self` and `other` open the same connection (they may differ in the
    /// heartbeat interval, which applies without reconnecting).
    pub fn same_connection(&self, other: &Self) -> bool {
        self.endpoint == other.endpoint
            && self.headers == other.headers
            && self.client_certificate == other.client_certificate
            && self.tls == other.tls
            && self.proxy == other.proxy
    }
}

impl fmt::Debug for OpampConnectionParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpampConnectionParams")
            .field("endpoint", &self.endpoint)
            .field("headers", &HeaderNames(&self.headers))
            .field("client_certificate", &self.client_certificate)
            .field("tls", &self.tls)
            .field("proxy", &self.proxy)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish()
    }
}

/// Options for [`OpampConnectionParams::merged_with`] and the
/// [`ConnectionSettingsManager`](super::ConnectionSettingsManager).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeOptions {
    /// The client can only keep settings in ephemeral storage: certificate offers are
    /// refused, as the spec recommends (a restart would lose the only valid certificate).
    pub ephemeral_storage: bool,
    /// Refuse offers whose `destination_endpoint` is empty (the spec says it MUST be set;
    /// off by default for interoperability with servers that omit it).
    pub require_endpoint: bool,
    /// Stop using a client certificate when an offer has none (the spec's literal reading;
    /// off by default: the certificate is kept, as opamp-go's example agent does).
    pub drop_certificate_when_omitted: bool,
}

impl MergeOptions {
    /// Sets [`MergeOptions::ephemeral_storage`].
    #[must_use]
    pub fn with_ephemeral_storage(mut self, ephemeral: bool) -> Self {
        self.ephemeral_storage = ephemeral;
        self
    }

    /// Sets [`MergeOptions::require_endpoint`].
    #[must_use]
    pub fn with_require_endpoint(mut self, require: bool) -> Self {
        self.require_endpoint = require;
        self
    }

    /// Sets [`MergeOptions::drop_certificate_when_omitted`].
    #[must_use]
    pub fn with_drop_certificate_when_omitted(mut self, drop: bool) -> Self {
        self.drop_certificate_when_omitted = drop;
        self
    }
}

/// A client certificate for mutual TLS, PEM encoded.
///
/// `Debug` never prints the private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientCertificate {
    /// The certificate (chain, leaf first), PEM.
    pub cert_pem: String,
    /// The private key of the leaf certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: String,
    /// The CA that signed the certificate, PEM, when the server sent it.
    pub ca_cert_pem: Option<String>,
}

impl ClientCertificate {
    /// A certificate and its key, both PEM.
    pub fn new(cert_pem: impl Into<String>, private_key_pem: impl Into<String>) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            private_key_pem: private_key_pem.into(),
            ca_cert_pem: None,
        }
    }

    /// Sets the CA certificate.
    #[must_use]
    pub fn with_ca_cert(mut self, ca_cert_pem: impl Into<String>) -> Self {
        self.ca_cert_pem = Some(ca_cert_pem.into());
        self
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("private_key_pem", &format_args!("<redacted>"))
            .field(
                "ca_cert_pem",
                &self.ca_cert_pem.as_ref().map(|_| "<present>"),
            )
            .finish()
    }
}

/// A TLS protocol version bound. rustls speaks TLS 1.2 and 1.3 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// TLS settings offered by the server (spec §"TLSConnectionSettings Message").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TlsParams {
    /// Extra CA certificates to trust, PEM.
    pub ca_pem: Option<String>,
    /// Whether the system's (default) roots are trusted too.
    pub include_system_ca: bool,
    /// **Dangerous**: skip server certificate verification.
    pub insecure_skip_verify: bool,
    /// Lowest TLS version to use; `None` means the library default.
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version to use; `None` means the library default.
    pub max_version: Option<TlsVersion>,
    /// Allowed cipher suites by IANA/rustls name; empty means the library default.
    pub cipher_suites: Vec<String>,
}

impl TlsParams {
    /// Converts and checks the offered TLS settings.
    ///
    /// Version strings `1.2`, `1.3`, `TLSv1.2`, `TLSv1.3` (any case) are understood. A
    /// minimum of `1.0` or `1.1` is raised to 1.2 (rustls has nothing older); a maximum below
    /// 1.2 cannot be honoured and is refused.
    pub fn from_proto(tls: &TlsConnectionSettings) -> Result<Self, ConnectionSettingsError> {
        let min_version = match parse_version(&tls.min_version)? {
            ParsedVersion::Unset => None,
            ParsedVersion::Legacy => Some(TlsVersion::Tls12),
            ParsedVersion::Version(v) => Some(v),
        };
        let max_version = match parse_version(&tls.max_version)? {
            ParsedVersion::Unset => None,
            ParsedVersion::Legacy => {
                return Err(ConnectionSettingsError::InvalidTls(format!(
                    "max_version {:?} is below TLS 1.2, the oldest version supported",
                    tls.max_version
                )));
            }
            ParsedVersion::Version(v) => Some(v),
        };
        let params = Self {
            ca_pem: (!tls.ca_pem_contents.is_empty()).then(|| tls.ca_pem_contents.clone()),
            include_system_ca: tls.include_system_ca_certs_pool,
            insecure_skip_verify: tls.insecure_skip_verify,
            min_version,
            max_version,
            cipher_suites: tls.cipher_suites.clone(),
        };
        validate::tls(&params)?;
        Ok(params)
    }
}

enum ParsedVersion {
    Unset,
    Legacy,
    Version(TlsVersion),
}

fn parse_version(text: &str) -> Result<ParsedVersion, ConnectionSettingsError> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_prefix("tlsv").unwrap_or(&t);
    Ok(match t {
        "" => ParsedVersion::Unset,
        "1" | "1.0" | "1.1" => ParsedVersion::Legacy,
        "1.2" => ParsedVersion::Version(TlsVersion::Tls12),
        "1.3" => ParsedVersion::Version(TlsVersion::Tls13),
        _ => {
            return Err(ConnectionSettingsError::InvalidTls(format!(
                "unknown TLS version {text:?}"
            )));
        }
    })
}

/// A proxy for the OpAMP connection (spec §"ProxyConnectionSettings Message").
///
/// `Debug` prints header names but not their values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProxyParams {
    /// Proxy URL: `http://host[:port]` or `host:port`, an HTTP `CONNECT` proxy. `https://`
    /// and SOCKS URLs are valid in offers (spec §"ProxyConnectionSettings Message") but
    /// refused as [`ConnectionSettingsError::UnsupportedProxy`].
    pub url: String,
    /// Headers for the HTTP `CONNECT` request.
    pub connect_headers: Vec<(String, String)>,
}

impl ProxyParams {
    /// A proxy at `url` without CONNECT headers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            connect_headers: Vec::new(),
        }
    }

    /// Checks that the client can use this proxy: an HTTP `CONNECT` proxy
    /// (`http://host[:port]` or `host:port`; [`ConnectionSettingsError::UnsupportedProxy`]
    /// for `https://` and SOCKS proxies) with valid `CONNECT` headers.
    pub fn validate(&self) -> Result<(), ConnectionSettingsError> {
        validate::proxy(self)
    }
}

impl fmt::Debug for ProxyParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyParams")
            .field("url", &self.url)
            .field("connect_headers", &HeaderNames(&self.connect_headers))
            .finish()
    }
}

struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: <redacted>")))
            .finish()
    }
}

fn headers_from_proto(headers: &Headers) -> Vec<(String, String)> {
    headers
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect()
}

fn pem_text(bytes: &[u8], what: &'static str) -> Result<String, ConnectionSettingsError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ConnectionSettingsError::NotUtf8(what))
}
