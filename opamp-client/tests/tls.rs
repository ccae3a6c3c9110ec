//! TLS: `wss://` and `https://` with a private CA and a client certificate (mutual TLS), from
//! PEM files, as a collector configuration would set them.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Recording, Seen, TestServer};
use opamp_client::state::ConstantBackoff;
use opamp_client::{Client, ClientSettings};
use opamp_transport::tls::{ClientAuth, PemSource, TlsClientSettings, TlsServerSettings};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// Writes `ca.crt`, `server.crt`/`.key` (for `localhost`) and `client.crt`/`.key` to `dir`.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    for (name, sans) in [("server", vec!["localhost".to_owned()]), ("client", vec![])] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

async fn mtls_server(dir: &Path) -> TestServer {
    TestServer::start_tls(
        TlsServerSettings::new(
            PemSource::file(dir.join("server.crt")),
            PemSource::file(dir.join("server.key")),
        )
        .with_client_auth(ClientAuth::Required(vec![PemSource::file(
            dir.join("ca.crt"),
        )])),
    )
    .await
}

fn client_tls(dir: &Path, with_cert: bool) -> TlsClientSettings {
    let tls = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::file(dir.join("ca.crt")));
    if with_cert {
        tls.with_client_cert(
            PemSource::file(dir.join("client.crt")),
            PemSource::file(dir.join("client.key")),
        )
    } else {
        tls
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let server = mtls_server(dir.path()).await;
    let client = Client::start(
        ClientSettings::new(server.wss_url())
            .try_with_header("X-API-Key", "k")
            .unwrap()
            .with_tls(client_tls(dir.path(), true)),
        Recording::default(),
    )
    .unwrap();
    let Seen::Upgrade { headers, .. } = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(headers["x-api-key"], "k");
    assert_eq!(server.next_message().await.sequence_num, 1);
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let server = mtls_server(dir.path()).await;
    let client = Client::start(
        ClientSettings::new(server.https_url()).with_tls(client_tls(dir.path(), true)),
        Recording::default(),
    )
    .unwrap();
    let Seen::Http { msg, .. } = server.next().await else {
        panic!("expected an HTTP request");
    };
    assert_eq!(msg.sequence_num, 1);
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_client_certificate_the_server_refuses() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let server = mtls_server(dir.path()).await;
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(server.wss_url())
            .with_tls(client_tls(dir.path(), false))
            .with_backoff(ConstantBackoff(Duration::from_millis(100))),
        recording.clone(),
    )
    .unwrap();
    common::eventually("failed attempts", || {
        recording.0.connect_failures.load(Ordering::SeqCst) >= 2
    })
    .await;
    server.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(recording.0.connects.load(Ordering::SeqCst), 0);
    client.stop().await.unwrap();
}
