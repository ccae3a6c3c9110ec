//! From connection parameters to the transport's TLS client settings.

use std::sync::Arc;

use opamp_transport::tls::rustls::SupportedCipherSuite;
use opamp_transport::tls::rustls::crypto::CryptoProvider;
use opamp_transport::tls::{PemSource, TlsClientSettings, default_crypto_provider};

use super::params::{OpampConnectionParams, TlsParams, TlsVersion};
use super::{ConnectionSettingsError, canonical_cipher_suite};

impl OpampConnectionParams {
    /// The TLS client settings for this connection: `base` (the client's own TLS
    /// configuration) with the client certificate and the offered TLS settings applied.
    ///
    /// * The client certificate, when set, replaces the one of `base`.
    /// * Offered TLS settings: `ca_pem` is trusted; the default roots stay trusted when
    ///   `include_system_ca` is set or no CA was offered; `insecure_skip_verify` is copied;
    ///   TLS versions and cipher suites restrict the crypto provider's cipher suites (a TLS
    ///   version is usable only while one of its suites is left).
    ///
    /// Fails when no crypto provider is available or no cipher suite is left.
    pub fn tls_client_settings(
        &self,
        base: TlsClientSettings,
    ) -> Result<TlsClientSettings, ConnectionSettingsError> {
        let mut settings = base;
        if let Some(cert) = &self.client_certificate {
            settings = settings.with_client_cert(
                PemSource::memory(cert.cert_pem.clone().into_bytes()),
                PemSource::memory(cert.private_key_pem.clone().into_bytes()),
            );
        }
        let Some(tls) = &self.tls else {
            return Ok(settings);
        };
        if let Some(ca) = &tls.ca_pem {
            settings = settings.with_ca(PemSource::memory(ca.clone().into_bytes()));
        }
        settings = settings
            .with_default_roots(tls.include_system_ca || tls.ca_pem.is_none())
            .with_insecure_skip_verify(tls.insecure_skip_verify);
        if tls.min_version.is_some() || tls.max_version.is_some() || !tls.cipher_suites.is_empty() {
            let provider = match &settings.crypto_provider {
                Some(provider) => Arc::clone(provider),
                None => default_crypto_provider()
                    .map_err(|e| ConnectionSettingsError::InvalidTls(e.to_string()))?,
            };
            settings = settings.with_crypto_provider(Arc::new(restrict(&provider, tls)?));
        }
        Ok(settings)
    }
}

/// `provider` with only the cipher suites the TLS settings allow.
fn restrict(
    provider: &CryptoProvider,
    tls: &TlsParams,
) -> Result<CryptoProvider, ConnectionSettingsError> {
    let wanted: Vec<&str> = tls
        .cipher_suites
        .iter()
        .filter_map(|name| canonical_cipher_suite(name))
        .collect();
    let mut restricted = provider.clone();
    restricted.cipher_suites.retain(|suite| {
        let version = match suite {
            SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
            _ => TlsVersion::Tls12,
        };
        let name = suite.suite().as_str().unwrap_or("");
        tls.min_version.is_none_or(|min| version >= min)
            && tls.max_version.is_none_or(|max| version <= max)
            && (wanted.is_empty() || wanted.contains(&name))
    });
    if restricted.cipher_suites.is_empty() {
        return Err(ConnectionSettingsError::InvalidTls(
            "no cipher suite of the crypto provider fits the offered TLS versions and cipher suites"
                .to_owned(),
        ));
    }
    Ok(restricted)
}
