//! Package downloads over HTTPS: a trusted server works (and resumes), an untrusted one fails
//! the package.

mod packages_support;

use std::sync::Arc;
use std::time::Duration;

use opamp_client::packages::{DownloadSettings, FsPackagesStateProvider, PackageSyncer};
use opamp_client::proto::PackageStatusEnum;
use packages_support::{Behaviour, FileServer, Recorder, content, offer, package};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn pki() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

fn server_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn downloads_over_https_with_the_configured_trust() {
    let (ca, cert, key) = pki();
    let server = FileServer::start_tls(server_config(&cert, &key)).await;
    let data = content(150_000, 21);
    server.put("/pkg.tgz", data.clone());
    server.set(Behaviour {
        cut_times: 1,
        cut_after: 70_000,
        ..Default::default()
    });
    let available = offer("h", vec![("p", package(&server, "/pkg.tgz", "1", &data))]);
    assert!(
        available.packages["p"]
            .file
            .as_ref()
            .unwrap()
            .download_url
            .starts_with("https://")
    );

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPackagesStateProvider::open(dir.path()).await.unwrap());
    let settings = DownloadSettings::default()
        .with_tls_config(client_config(&ca))
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let syncer =
        PackageSyncer::new(store.clone(), Arc::new(Recorder::default())).with_settings(settings);
    let report = tokio::time::timeout(Duration::from_secs(30), syncer.sync(&available))
        .await
        .unwrap()
        .unwrap();
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(
        std::fs::read(store.content_path("p").unwrap()).unwrap(),
        data.as_ref()
    );
    let requests = server.requests_for("/pkg.tgz");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].range(), Some("bytes=70000-"));

    // A client that trusts another CA refuses the server.
    let (other_ca, _, _) = pki();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPackagesStateProvider::open(dir.path()).await.unwrap());
    let settings = DownloadSettings::default()
        .with_tls_config(client_config(&other_ca))
        .with_max_attempts(1);
    let syncer = PackageSyncer::new(store, Arc::new(Recorder::default())).with_settings(settings);
    let report = tokio::time::timeout(Duration::from_secs(30), syncer.sync(&available))
        .await
        .unwrap()
        .unwrap();
    let status = &report.statuses.packages["p"];
    assert_eq!(status.status(), PackageStatusEnum::InstallFailed);
    assert!(
        status.error_message.contains("cannot connect"),
        "{}",
        status.error_message
    );
}

#[tokio::test]
async fn a_redirect_from_https_to_http_is_refused() {
    let (ca, cert, key) = pki();
    let tls = FileServer::start_tls(server_config(&cert, &key)).await;
    let plain = FileServer::start().await;
    let data = content(5_000, 22);
    plain.put("/pkg.tgz", data.clone());
    tls.set(Behaviour {
        redirects: [("/pkg.tgz".to_string(), plain.url("/pkg.tgz"))].into(),
        ..Default::default()
    });
    assert!(plain.url("/pkg.tgz").starts_with("http://"));
    let available = offer("h", vec![("p", package(&tls, "/pkg.tgz", "1", &data))]);

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPackagesStateProvider::open(dir.path()).await.unwrap());
    let settings = DownloadSettings::default()
        .with_tls_config(client_config(&ca))
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .with_require_signature(false);
    let syncer = PackageSyncer::new(store, Arc::new(Recorder::default())).with_settings(settings);
    let report = tokio::time::timeout(Duration::from_secs(30), syncer.sync(&available))
        .await
        .unwrap()
        .unwrap();
    let status = &report.statuses.packages["p"];
    assert_eq!(status.status(), PackageStatusEnum::InstallFailed);
    assert!(
        status.error_message.contains("https to http"),
        "{}",
        status.error_message
    );
    // The plain HTTP server was never asked, and the redirect was not retried.
    assert!(plain.log().is_empty());
    assert_eq!(tls.requests_for("/pkg.tgz").len(), 1);
}
