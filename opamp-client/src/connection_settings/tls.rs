//! From connection parameters to the transport's TLS client settings and the rustls
//! configuration: the one place where the client's own TLS configuration and the TLS parts
//! of offered connection settings are combined.

use std::sync::Arc;

use opamp_transport::tls::rustls::crypto::CryptoProvider;
use opamp_transport::tls::rustls::{ClientConfig, SupportedCipherSuite};
use opamp_transport::tls::{PemSource, TlsClientSettings, default_crypto_provider};

use super::params::{OpampConnectionParams, TlsParams, TlsVersion};
use super::{ConnectionSettingsError, canonical_cipher_suite};

impl OpampConnectionParams {
    /// The TLS client settings for this connection: `base` (the client's own TLS
    /// configuration, [`ClientSettings::tls`](crate::ClientSettings::tls)) with the client
    /// certificate and the offered TLS settings applied.
    ///
    /// * The client certificate, when set, replaces the one of `base`.
    /// * Offered TLS settings replace what they speak about (spec §"TLSConnectionSettings
    ///   Message": the previous TLS settings are forgotten):
    ///   * trust anchors: an offered `ca_pem` replaces the CAs of `base`, and the default
    ///     roots (webpki-roots or the operating system's store, per the crate features) are
    ///     trusted only when `include_system_ca` is set. An offer without `ca_pem` keeps the
    ///     trust anchors of `base`, and adds the default roots when `include_system_ca` is
    ///     set. So an offer never widens trust beyond what it asks for: a client configured
    ///     with a private CA and no default roots keeps exactly that when the server only
    ///     restricts TLS versions;
    ///   * `insecure_skip_verify` is copied;
    ///   * TLS versions and cipher suites restrict the crypto provider's cipher suites (a
    ///     TLS version is usable only while one of its suites is left).
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
        match &tls.ca_pem {
            Some(ca) => {
                settings.ca_certs.clear();
                settings = settings
                    .with_ca(PemSource::memory(ca.clone().into_bytes()))
                    .with_default_roots(tls.include_system_ca);
            }
            None => {
                let default_roots = settings.default_roots || tls.include_system_ca;
                settings = settings.with_default_roots(default_roots);
            }
        }
        settings = settings.with_insecure_skip_verify(tls.insecure_skip_verify);
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

    /// The rustls configuration for a `wss://` or `https://` connection with these
    /// parameters: [`tls_client_settings`](Self::tls_client_settings) of `base`, built (CA
    /// and client certificate files are read now).
    pub fn tls_client_config(
        &self,
        base: &TlsClientSettings,
    ) -> Result<Arc<ClientConfig>, crate::Error> {
        Ok(self.tls_client_settings(base.clone())?.build()?)
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

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "wss://example.com/v1/opamp";
    const BASE_CA: &[u8] = b"base CA";
    const OFFERED_CA: &str = "offered CA";

    fn sources(settings: &TlsClientSettings) -> Vec<PemSource> {
        settings.ca_certs.clone()
    }

    fn with(tls: TlsParams, base: TlsClientSettings) -> TlsClientSettings {
        OpampConnectionParams::new(ENDPOINT)
            .with_tls(tls)
            .tls_client_settings(base)
            .unwrap()
    }

    /// A client configured with a private CA and no default roots.
    fn private_base() -> TlsClientSettings {
        TlsClientSettings::default()
            .with_default_roots(false)
            .with_ca(PemSource::memory(BASE_CA.to_vec()))
    }

    #[test]
    fn without_offered_tls_the_base_is_kept() {
        for base in [TlsClientSettings::default(), private_base()] {
            let settings = OpampConnectionParams::new(ENDPOINT)
                .tls_client_settings(base.clone())
                .unwrap();
            assert_eq!(settings.default_roots, base.default_roots);
            assert_eq!(sources(&settings), sources(&base));
        }
        assert!(TlsClientSettings::default().default_roots);
    }

    #[test]
    fn an_offered_ca_replaces_the_trust_anchors() {
        let offered = TlsParams {
            ca_pem: Some(OFFERED_CA.into()),
            ..Default::default()
        };
        let only_offered = vec![PemSource::memory(OFFERED_CA.as_bytes().to_vec())];
        for base in [TlsClientSettings::default(), private_base()] {
            let settings = with(offered.clone(), base);
            assert!(!settings.default_roots, "include_system_ca not set");
            assert_eq!(sources(&settings), only_offered);
        }
        let settings = with(
            TlsParams {
                include_system_ca: true,
                ..offered
            },
            private_base(),
        );
        assert!(settings.default_roots, "include_system_ca set");
        assert_eq!(sources(&settings), only_offered);
    }

    #[test]
    fn an_offer_without_ca_keeps_the_anchors_and_may_add_the_default_roots() {
        let restrict_only = TlsParams {
            min_version: Some(TlsVersion::Tls13),
            ..Default::default()
        };
        let settings = with(restrict_only.clone(), private_base());
        assert!(!settings.default_roots, "trust must not widen");
        assert_eq!(sources(&settings), sources(&private_base()));
        assert!(with(restrict_only.clone(), TlsClientSettings::default()).default_roots);
        let settings = with(
            TlsParams {
                include_system_ca: true,
                ..restrict_only
            },
            private_base(),
        );
        assert!(settings.default_roots);
        assert_eq!(sources(&settings), sources(&private_base()));
    }

    #[test]
    fn insecure_skip_verify_follows_the_offer() {
        let insecure = TlsParams {
            insecure_skip_verify: true,
            ..Default::default()
        };
        assert!(with(insecure, TlsClientSettings::default()).insecure_skip_verify);
        let base = TlsClientSettings::default().with_insecure_skip_verify(true);
        assert!(!with(TlsParams::default(), base).insecure_skip_verify);
    }

    #[test]
    fn the_config_builds_and_refuses_what_cannot_be_negotiated() {
        let params = OpampConnectionParams::new(ENDPOINT).with_tls(TlsParams {
            max_version: Some(TlsVersion::Tls12),
            ..Default::default()
        });
        let config = params
            .tls_client_config(&TlsClientSettings::default())
            .unwrap();
        assert!(
            config
                .crypto_provider()
                .cipher_suites
                .iter()
                .all(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
        );
        let nothing_left = OpampConnectionParams::new(ENDPOINT).with_tls(TlsParams {
            max_version: Some(TlsVersion::Tls12),
            cipher_suites: vec!["TLS13_AES_128_GCM_SHA256".into()],
            ..Default::default()
        });
        assert!(matches!(
            nothing_left.tls_client_config(&TlsClientSettings::default()),
            Err(crate::Error::ConnectionSettings(
                ConnectionSettingsError::InvalidTls(_)
            ))
        ));
    }
}
