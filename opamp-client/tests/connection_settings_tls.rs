//! Connection parameters turned into TLS client settings: offered versions and cipher suites
//! restrict the provider, and a certificate obtained through the CSR flow passes a real
//! mutual-TLS handshake on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use opamp_client::connection_settings::csr::{self, CsrRequest};
use opamp_client::connection_settings::{
    CandidateOutcome, ClientCertificate, ConnectionSettingsManager, OfferDecision,
    OpampConnectionParams, TlsParams,
};
use opamp_client::proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, OpAmpConnectionSettings, TlsCertificate,
    TlsConnectionSettings,
};
use opamp_transport::tls::{PemSource, TlsClientSettings};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
};
use rustls::SupportedCipherSuite;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn base() -> TlsClientSettings {
    TlsClientSettings::default()
        .with_crypto_provider(ring())
        .with_default_roots(false)
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn server_cert(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn tls_offer(tls: TlsConnectionSettings) -> TlsParams {
    TlsParams::from_proto(&tls).unwrap()
}

#[test]
fn offered_versions_and_suites_restrict_the_provider() {
    let ca = Ca::new();
    let params = OpampConnectionParams::new("wss://127.0.0.1/v1/opamp").with_tls(tls_offer(
        TlsConnectionSettings {
            ca_pem_contents: ca.pem.clone(),
            min_version: "1.3".into(),
            ..Default::default()
        },
    ));
    let settings = params.tls_client_settings(base()).unwrap();
    assert!(
        !settings.default_roots,
        "an offered CA without the system pool replaces the roots"
    );
    let provider = settings.crypto_provider.clone().unwrap();
    assert!(!provider.cipher_suites.is_empty());
    assert!(
        provider
            .cipher_suites
            .iter()
            .all(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
    );
    settings.build().unwrap();

    let params = OpampConnectionParams::new("wss://127.0.0.1/v1/opamp").with_tls(tls_offer(
        TlsConnectionSettings {
            include_system_ca_certs_pool: true,
            cipher_suites: vec![
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_AES_256_GCM_SHA384".into(),
            ],
            ..Default::default()
        },
    ));
    let settings = params.tls_client_settings(base()).unwrap();
    assert!(settings.default_roots);
    let names: Vec<_> = settings
        .crypto_provider
        .unwrap()
        .cipher_suites
        .iter()
        .map(|s| s.suite().as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"TLS13_AES_256_GCM_SHA384"));
    assert!(names.contains(&"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"));

    // TLS 1.3 only, but only a TLS 1.2 suite allowed: nothing left.
    let params = OpampConnectionParams::new("wss://127.0.0.1/v1/opamp").with_tls(tls_offer(
        TlsConnectionSettings {
            min_version: "TLSv1.3".into(),
            cipher_suites: vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()],
            ..Default::default()
        },
    ));
    assert!(params.tls_client_settings(base()).is_err());

    // No offered TLS settings: the base stays as it is.
    let plain = OpampConnectionParams::new("wss://127.0.0.1/v1/opamp");
    let settings = plain.tls_client_settings(base()).unwrap();
    assert!(settings.client_cert.is_none() && settings.ca_certs.is_empty());
}

/// A TLS server on 127.0.0.1 that requires a client certificate signed by `client_ca`.
async fn mtls_server(
    server_ca: &Ca,
    client_ca_pem: &str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<bool>>) {
    let (cert_pem, key_pem) = server_ca.server_cert();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            outcomes.push(acceptor.accept(tcp).await.is_ok());
        }
        outcomes
    });
    (addr, task)
}

async fn handshake(settings: &TlsClientSettings, addr: std::net::SocketAddr) -> bool {
    let config = settings.build().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .is_ok()
}

#[tokio::test]
async fn csr_certificate_passes_a_mutual_tls_handshake() {
    let server_ca = Ca::new();
    let client_ca = Ca::new();
    let (addr, server) = mtls_server(&server_ca, &client_ca.pem).await;
    let caps =
        AgentCapabilities::REPORTS_STATUS | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS;
    let base = base().with_ca(PemSource::memory(server_ca.pem.clone().into_bytes()));

    let mut manager = ConnectionSettingsManager::new(OpampConnectionParams::new(format!(
        "wss://{addr}/v1/opamp"
    )));
    // Without a client certificate the server refuses the handshake (with TLS 1.3 the
    // client may only learn it later, so the server side is what is checked).
    let without = manager
        .connect_params()
        .tls_client_settings(base.clone())
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), handshake(&without, addr))
        .await
        .unwrap();

    // CSR flow: the CA signs our CSR, the offer carries no private key.
    let request = manager.begin_csr(&CsrRequest::new("agent")).unwrap();
    let csr_pem = request.opamp.unwrap().certificate_request.unwrap().csr;
    let signed = CertificateSigningRequestParams::from_pem(std::str::from_utf8(&csr_pem).unwrap())
        .unwrap()
        .signed_by(&client_ca.issuer)
        .unwrap()
        .pem();
    let offer = ConnectionSettingsOffers {
        hash: Bytes::from_static(b"cert-1"),
        opamp: Some(OpAmpConnectionSettings {
            certificate: Some(TlsCertificate {
                cert: Bytes::from(signed.into_bytes()),
                private_key: Bytes::new(),
                ca_cert: Bytes::from(client_ca.pem.clone().into_bytes()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(matches!(
        manager.handle_offer(&offer, caps),
        OfferDecision::Reconnect { .. }
    ));
    let with = manager.connect_params().tls_client_settings(base).unwrap();
    let accepted = tokio::time::timeout(Duration::from_secs(20), handshake(&with, addr))
        .await
        .unwrap();
    assert!(matches!(
        manager.on_connected(),
        Some(CandidateOutcome::Applied { .. })
    ));

    let server_side = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !server_side[0],
        "the server must refuse a client without certificate"
    );
    assert!(
        accepted && server_side[1],
        "the CSR certificate must be accepted"
    );
}

#[test]
fn a_server_issued_key_pair_is_applied_to_the_settings() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["agent".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let params = OpampConnectionParams::new("wss://127.0.0.1/v1/opamp")
        .with_client_certificate(ClientCertificate::new(cert.pem(), key.serialize_pem()));
    let settings = params
        .tls_client_settings(base().with_insecure_skip_verify(true))
        .unwrap();
    assert!(settings.client_cert.is_some());
    let config = settings.build().unwrap();
    assert!(config.client_auth_cert_resolver.has_certs());
    // A generated CSR key is PKCS#8 PEM that rustls loads.
    let generated = csr::generate(&CsrRequest::default()).unwrap();
    PrivateKeyDer::from_pem_slice(generated.private_key_pem().as_bytes()).unwrap();
}
