//! The rustls configuration of a connection: the client's TLS settings, with the client
//! certificate and TLS settings of offered OpAMP connection settings applied on top.

use std::sync::Arc;

use opamp_transport::tls::rustls::{ClientConfig, ProtocolVersion};
use opamp_transport::tls::{PemSource, TlsClientSettings, default_crypto_provider};

use crate::Error;
use crate::connection_settings::{OpampConnectionParams, TlsVersion, canonical_cipher_suite};

/// Builds the TLS configuration for a connection with `params`, starting from `base`.
///
/// * A client certificate in `params` replaces the one of `base`.
/// * TLS settings in `params` (spec §"TLSConnectionSettings Message") replace the trust
///   anchors (`ca_pem` plus the default roots when `include_system_ca`), the verification
///   switch, and restrict the protocol versions and cipher suites.
pub(crate) fn client_config(
    base: &TlsClientSettings,
    params: &OpampConnectionParams,
) -> Result<Arc<ClientConfig>, Error> {
    let mut settings = base.clone();
    if let Some(cert) = &params.client_certificate {
        settings = settings.with_client_cert(
            PemSource::memory(cert.cert_pem.as_bytes()),
            PemSource::memory(cert.private_key_pem.as_bytes()),
        );
    }
    if let Some(tls) = &params.tls {
        settings.ca_certs.clear();
        if let Some(ca) = &tls.ca_pem {
            settings = settings.with_ca(PemSource::memory(ca.as_bytes()));
        }
        settings.default_roots = tls.include_system_ca;
        settings.insecure_skip_verify = tls.insecure_skip_verify;
        let mut provider = match &base.crypto_provider {
            Some(provider) => (**provider).clone(),
            None => (*default_crypto_provider()?).clone(),
        };
        let wanted: Vec<&str> = tls
            .cipher_suites
            .iter()
            .filter_map(|name| canonical_cipher_suite(name))
            .collect();
        let version_ok = |v: ProtocolVersion| {
            let rank = |t: TlsVersion| match t {
                TlsVersion::Tls12 => ProtocolVersion::TLSv1_2,
                TlsVersion::Tls13 => ProtocolVersion::TLSv1_3,
            };
            let at_least = tls
                .min_version
                .is_none_or(|min| rank(min) == v || (rank(min) == ProtocolVersion::TLSv1_2));
            let at_most = tls
                .max_version
                .is_none_or(|max| rank(max) == v || (rank(max) == ProtocolVersion::TLSv1_3));
            at_least && at_most
        };
        provider.cipher_suites.retain(|suite| {
            let name = format!("{:?}", suite.suite());
            let by_name = wanted.is_empty() || wanted.contains(&name.as_str());
            by_name && version_ok(suite.version().version)
        });
        if provider.cipher_suites.is_empty() {
            return Err(Error::InvalidSettings(
                "the offered TLS versions and cipher suites leave nothing to negotiate".into(),
            ));
        }
        settings = settings.with_crypto_provider(Arc::new(provider));
    }
    Ok(settings.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection_settings::TlsParams;

    fn params_with(tls: TlsParams) -> OpampConnectionParams {
        OpampConnectionParams::new("wss://example.com/v1/opamp").with_tls(tls)
    }

    #[test]
    fn versions_and_suites_restrict_the_provider() {
        let base = TlsClientSettings::default();
        let mut tls = TlsParams {
            include_system_ca: true,
            min_version: Some(TlsVersion::Tls13),
            ..Default::default()
        };
        let config = client_config(&base, &params_with(tls.clone())).unwrap();
        assert!(
            config
                .crypto_provider()
                .cipher_suites
                .iter()
                .all(|s| s.version().version == ProtocolVersion::TLSv1_3)
        );
        tls.min_version = None;
        tls.max_version = Some(TlsVersion::Tls12);
        tls.cipher_suites = vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()];
        let config = client_config(&base, &params_with(tls.clone())).unwrap();
        let names: Vec<String> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        tls.cipher_suites = vec!["TLS13_AES_128_GCM_SHA256".into()];
        assert!(
            client_config(&base, &params_with(tls)).is_err(),
            "1.3 suite with max 1.2"
        );
    }

    #[test]
    fn tls_without_any_trust_anchor_fails() {
        let tls = TlsParams::default();
        assert!(client_config(&TlsClientSettings::default(), &params_with(tls)).is_err());
    }
}
