//! The agent-initiated CSR flow: the CSR parses back with the requested subject, the kept
//! private key is the CSR's key, and a certificate offered without a private key is
//! combined with it.

use opamp_client::connection_settings::csr::{
    self, CsrRequest, InstanceUidPlacement, KeyAlgorithm,
};
use opamp_client::connection_settings::{
    CandidateOutcome, ConnectionSettingsManager, OfferDecision, OpampConnectionParams,
};
use opamp_client::proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, InstanceUid, OpAmpConnectionSettings,
    TlsCertificate,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
    PublicKeyData,
};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, GeneralName, X509CertificationRequest};

fn parse_csr(pem: &str) -> (String, Vec<String>, Vec<u8>) {
    let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref()).unwrap();
    csr.verify_signature()
        .expect("the CSR is signed by its own key");
    let info = &csr.certification_request_info;
    let cn = info
        .subject
        .iter_common_name()
        .next()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .unwrap_or_default();
    let mut uris = Vec::new();
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    if let GeneralName::URI(uri) = name {
                        uris.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    (cn, uris, info.subject_pki.raw.to_vec())
}

#[test]
fn csr_parses_back_and_the_key_matches() {
    let uid: InstanceUid = "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e".parse().unwrap();
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let generated = csr::generate(
            &CsrRequest::new("collector-1")
                .with_organization("Example Corp")
                .with_instance_uid(uid)
                .with_key_algorithm(algorithm),
        )
        .unwrap();
        let (cn, uris, spki) = parse_csr(generated.csr_pem());
        assert_eq!(cn, "collector-1");
        assert_eq!(uris, ["urn:uuid:01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e"]);
        let key = KeyPair::from_pem(generated.private_key_pem()).unwrap();
        assert_eq!(spki, key.subject_public_key_info(), "{algorithm:?}");
        assert!(!format!("{generated:?}").contains("PRIVATE KEY"));

        let request = generated.to_request();
        let csr_bytes = request.opamp.unwrap().certificate_request.unwrap().csr;
        assert_eq!(csr_bytes.as_ref(), generated.csr_pem().as_bytes());
    }

    // The instance UID as common name.
    let generated = csr::generate(
        &CsrRequest::new("ignored")
            .with_instance_uid(uid)
            .with_instance_uid_placement(InstanceUidPlacement::CommonName),
    )
    .unwrap();
    let (cn, uris, _) = parse_csr(generated.csr_pem());
    assert_eq!(cn, uid.to_string());
    assert!(uris.is_empty());

    // Two CSRs never share a key.
    let a = csr::generate(&CsrRequest::default()).unwrap();
    let b = csr::generate(&CsrRequest::default()).unwrap();
    assert_ne!(a.private_key_pem(), b.private_key_pem());
}

/// A CA that signs CSRs, as a server would (spec step 6).
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        }
    }

    fn sign(&self, csr_pem: &[u8]) -> String {
        let csr = CertificateSigningRequestParams::from_pem(std::str::from_utf8(csr_pem).unwrap())
            .unwrap();
        csr.signed_by(&self.issuer).unwrap().pem()
    }
}

fn certificate_offer(
    hash: &'static [u8],
    cert_pem: String,
    ca_pem: &str,
) -> ConnectionSettingsOffers {
    ConnectionSettingsOffers {
        hash: Bytes::from_static(hash),
        opamp: Some(OpAmpConnectionSettings {
            certificate: Some(TlsCertificate {
                cert: Bytes::from(cert_pem.into_bytes()),
                private_key: Bytes::new(),
                ca_cert: Bytes::from(ca_pem.as_bytes().to_vec()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn offered_certificate_without_key_uses_the_kept_csr_key() {
    let caps =
        AgentCapabilities::REPORTS_STATUS | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS;
    let ca = TestCa::new();
    let mut m = ConnectionSettingsManager::new(OpampConnectionParams::new(
        "wss://opamp.example.com/v1/opamp",
    ));

    // Without a CSR, a key-less certificate cannot be used.
    let stray = ca.sign(
        csr::generate(&CsrRequest::default())
            .unwrap()
            .csr_pem()
            .as_bytes(),
    );
    assert!(matches!(
        m.handle_offer(&certificate_offer(b"stray", stray, &ca.cert_pem), caps),
        OfferDecision::Rejected { .. }
    ));

    let request = m
        .begin_csr(&CsrRequest::new("agent").with_instance_uid(InstanceUid::new_v7()))
        .unwrap();
    assert!(m.has_pending_csr());
    let kept_key = m.snapshot().csr_private_key_pem.clone().unwrap();
    let csr_pem = request.opamp.unwrap().certificate_request.unwrap().csr;

    // The server signs a different CSR: the certificate does not match the kept key.
    let other = ca.sign(
        csr::generate(&CsrRequest::default())
            .unwrap()
            .csr_pem()
            .as_bytes(),
    );
    let decision = m.handle_offer(&certificate_offer(b"wrong", other, &ca.cert_pem), caps);
    let OfferDecision::Rejected { error, .. } = decision else {
        panic!("expected Rejected, got {decision:?}");
    };
    assert!(error.contains("does not belong"), "{error}");
    assert!(m.has_pending_csr(), "a refused certificate keeps the key");

    // The server signs our CSR.
    let cert_pem = ca.sign(&csr_pem);
    let decision = m.handle_offer(
        &certificate_offer(b"ours", cert_pem.clone(), &ca.cert_pem),
        caps,
    );
    let OfferDecision::Reconnect { params, .. } = decision else {
        panic!("expected Reconnect, got {decision:?}");
    };
    let cert = params.client_certificate.as_ref().unwrap();
    assert_eq!(cert.cert_pem, cert_pem);
    assert_eq!(cert.private_key_pem, kept_key);
    assert_eq!(cert.ca_cert_pem.as_deref(), Some(ca.cert_pem.as_str()));

    let Some(CandidateOutcome::Applied { params, .. }) = m.on_connected() else {
        panic!("expected Applied");
    };
    assert_eq!(params.client_certificate.unwrap().private_key_pem, kept_key);
    assert!(
        !m.has_pending_csr(),
        "the key moved into the active settings"
    );
}
