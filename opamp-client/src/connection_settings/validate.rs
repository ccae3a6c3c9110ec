//! Checks of connection parameters, so that a bad offer is refused (and reported FAILED)
//! before the client disconnects to try it.

use rcgen::PublicKeyData;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ConnectionSettingsError;
use super::params::{ClientCertificate, ProxyParams, TlsParams};

/// Cipher suites rustls implements, by rustls name, with the names Go (and so opamp-go based
/// servers) uses for the same suites.
const CIPHER_SUITES: &[(&str, &[&str])] = &[
    ("TLS13_AES_128_GCM_SHA256", &["TLS_AES_128_GCM_SHA256"]),
    ("TLS13_AES_256_GCM_SHA384", &["TLS_AES_256_GCM_SHA384"]),
    (
        "TLS13_CHACHA20_POLY1305_SHA256",
        &["TLS_CHACHA20_POLY1305_SHA256"],
    ),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", &[]),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", &[]),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        &["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"],
    ),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", &[]),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", &[]),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        &["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"],
    ),
];

/// The rustls name of a cipher suite given by its rustls, IANA or Go name (any case), or
/// `None` when rustls does not implement it.
pub fn canonical_cipher_suite(name: &str) -> Option<&'static str> {
    let name = name.trim();
    CIPHER_SUITES
        .iter()
        .find(|(canonical, aliases)| {
            canonical.eq_ignore_ascii_case(name)
                || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|(canonical, _)| *canonical)
}

pub(crate) fn endpoint(endpoint: &str) -> Result<(), ConnectionSettingsError> {
    let invalid = |reason| ConnectionSettingsError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    if endpoint.is_empty() {
        return Err(invalid("empty"));
    }
    let uri: http::Uri = endpoint.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("ws" | "wss" | "http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be ws, wss, http or https")),
        None => return Err(invalid("not an absolute URL")),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(invalid("no host")),
    }
}

pub(crate) fn headers(headers: &[(String, String)]) -> Result<(), ConnectionSettingsError> {
    for (name, value) in headers {
        let invalid = |reason| ConnectionSettingsError::InvalidHeader {
            name: name.clone(),
            reason,
        };
        http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("not a valid header name"))?;
        http::HeaderValue::from_str(value)
            .map_err(|_| invalid("the value has characters HTTP does not allow"))?;
    }
    Ok(())
}

/// Parses the certificates of a PEM text; at least one is required, each must be X.509.
pub(crate) fn certificates(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConnectionSettingsError> {
    let invalid = |reason: String| ConnectionSettingsError::InvalidCertificate { what, reason };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no CERTIFICATE block".to_owned()));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert)
            .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    }
    Ok(certs)
}

pub(crate) fn client_certificate(cert: &ClientCertificate) -> Result<(), ConnectionSettingsError> {
    let chain = certificates(&cert.cert_pem, "client certificate")?;
    PrivateKeyDer::from_pem_slice(cert.private_key_pem.as_bytes())
        .map_err(|e| ConnectionSettingsError::InvalidPrivateKey(e.to_string()))?;
    if let Some(ca) = &cert.ca_cert_pem {
        certificates(ca, "CA certificate")?;
    }
    // Compare the leaf's public key with the key's. rcgen reads PKCS#8 keys (what the CSR
    // flow generates and what most servers send); other encodings are checked by the TLS
    // handshake itself, whose failure reverts the offer.
    if let Ok(key) = rcgen::KeyPair::from_pem(&cert.private_key_pem) {
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| {
            ConnectionSettingsError::InvalidCertificate {
                what: "client certificate",
                reason: e.to_string(),
            }
        })?;
        if leaf.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(ConnectionSettingsError::KeyMismatch);
        }
    }
    Ok(())
}

pub(crate) fn tls(tls: &TlsParams) -> Result<(), ConnectionSettingsError> {
    if let Some(ca) = &tls.ca_pem {
        certificates(ca, "CA certificate")?;
    }
    if let (Some(min), Some(max)) = (tls.min_version, tls.max_version)
        && min > max
    {
        return Err(ConnectionSettingsError::InvalidTls(
            "min_version is above max_version".to_owned(),
        ));
    }
    for suite in &tls.cipher_suites {
        if canonical_cipher_suite(suite).is_none() {
            return Err(ConnectionSettingsError::InvalidTls(format!(
                "unsupported cipher suite {suite:?}"
            )));
        }
    }
    Ok(())
}

pub(crate) fn proxy(proxy: &ProxyParams) -> Result<(), ConnectionSettingsError> {
    proxy_address(&proxy.url)?;
    headers(&proxy.connect_headers)
}

/// Host and port of a proxy URL the client can use: an HTTP `CONNECT` proxy given as
/// `http://host[:port]` (default port 80) or `host:port`. `https://` proxies (TLS to the
/// proxy) and SOCKS proxies are refused with [`ConnectionSettingsError::UnsupportedProxy`].
pub(crate) fn proxy_address(url: &str) -> Result<(String, u16), ConnectionSettingsError> {
    let invalid =
        |reason: &str| ConnectionSettingsError::InvalidProxy(format!("{url:?}: {reason}"));
    if url.is_empty() {
        return Err(ConnectionSettingsError::InvalidProxy(
            "the URL is empty".to_owned(),
        ));
    }
    if url.contains("://") {
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        match scheme.as_deref() {
            Some("http") => {}
            Some(scheme @ ("https" | "socks5" | "socks5h")) => {
                return Err(ConnectionSettingsError::UnsupportedProxy {
                    url: url.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
            _ => {
                return Err(invalid(
                    "the scheme must be http (or https, socks5, socks5h)",
                ));
            }
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("no host"))?;
        Ok((host.to_owned(), uri.port_u16().unwrap_or(80)))
    } else {
        let authority: http::uri::Authority = url.parse().map_err(|_| invalid("not host:port"))?;
        let port = authority.port_u16().ok_or_else(|| invalid("no port"))?;
        Ok((authority.host().to_owned(), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(endpoint("wss://example.com:4320/v1/opamp").is_ok());
        assert!(endpoint("HTTP://127.0.0.1/v1/opamp").is_ok());
        for bad in [
            "",
            "ftp://example.com/",
            "/v1/opamp",
            "example.com",
            "ws://",
        ] {
            assert!(endpoint(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cipher_suite_names() {
        assert_eq!(
            canonical_cipher_suite("tls_aes_128_gcm_sha256"),
            Some("TLS13_AES_128_GCM_SHA256")
        );
        assert_eq!(
            canonical_cipher_suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        );
        assert_eq!(canonical_cipher_suite("TLS_RSA_WITH_RC4_128_SHA"), None);
    }

    #[test]
    fn proxies() {
        assert!(proxy(&ProxyParams::new("http://proxy:3128")).is_ok());
        assert!(proxy(&ProxyParams::new("127.0.0.1:8443")).is_ok());
        assert!(proxy(&ProxyParams::new("")).is_err());
        assert!(proxy(&ProxyParams::new("ftp://proxy:21")).is_err());
        assert!(proxy(&ProxyParams::new("proxy")).is_err());
        assert_eq!(
            proxy_address("http://proxy:3128").unwrap(),
            ("proxy".into(), 3128)
        );
        assert_eq!(proxy_address("HTTP://proxy").unwrap(), ("proxy".into(), 80));
        assert_eq!(
            proxy_address("10.0.0.1:8080").unwrap(),
            ("10.0.0.1".into(), 8080)
        );
        assert!(matches!(
            proxy_address("ftp://proxy:21"),
            Err(ConnectionSettingsError::InvalidProxy(_))
        ));
    }

    #[test]
    fn tls_and_socks_proxies_are_refused_as_unsupported() {
        for (url, expected) in [
            ("https://proxy.example.com:8443", "https"),
            ("HTTPS://proxy:443", "https"),
            ("socks5://127.0.0.1:1080", "socks5"),
            ("socks5h://proxy:1080", "socks5h"),
        ] {
            match proxy(&ProxyParams::new(url)) {
                Err(ConnectionSettingsError::UnsupportedProxy { url: got, scheme }) => {
                    assert_eq!(got, url);
                    assert_eq!(scheme, expected);
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let shown = proxy(&ProxyParams::new("https://p:1"))
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("https") && shown.contains("http://"),
            "{shown}"
        );
    }

    #[test]
    fn headers_are_checked() {
        assert!(headers(&[("Authorization".into(), "Bearer x".into())]).is_ok());
        assert!(headers(&[("bad name".into(), "x".into())]).is_err());
        assert!(headers(&[("X-Ok".into(), "line\nbreak".into())]).is_err());
    }
}
