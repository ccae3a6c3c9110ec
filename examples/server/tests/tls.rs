//! TLS and mutual TLS on the OpAMP listener, client certificate rotation offers, and the
//! dashboard and its API served over HTTPS.

mod common;

use std::sync::Arc;

use common::{AgentSpec, TestAgent, eventually};
use opamp_fleet_server::FleetServer;
use opamp_fleet_server::settings::TlsFiles;
use opamp_transport::tls::{PemSource, TlsClientSettings};
use opamp_transport::ws::{WsConnectOptions, connect};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

struct Pki {
    ca_pem: String,
    ca_key_pem: String,
    server_pem: String,
    server_key_pem: String,
    client_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, KeyPair::from_pem(&ca_key.serialize_pem()).unwrap());
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, "agent");
    let client = client.signed_by(&client_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        server_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_certificate_rotation() {
    let p = pki();
    let files = PemFiles::new();
    let tls = files.server(&p);
    let config = common::config(":memory:")
        .with_tls(Some(tls.clone()))
        .with_client_ca(
            Some(files.write("ca.pem", &p.ca_pem)),
            Some(files.write("ca.key", &p.ca_key_pem)),
        )
        .with_http_tls(Some(tls));
    let handle = FleetServer::start(config).await.unwrap();
    let url = handle.opamp_ws_url();
    assert!(url.starts_with("wss://"));

    // Without a client certificate the handshake fails.
    let no_cert = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(p.ca_pem.clone()))
        .build()
        .unwrap();
    assert!(
        connect(&url, &WsConnectOptions::default().with_tls(no_cert))
            .await
            .is_err()
    );

    // With one: connected; the agent is then offered a new certificate.
    let with_cert = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(p.ca_pem.clone()))
        .with_client_cert(
            PemSource::memory(p.client_pem.clone()),
            PemSource::memory(p.client_key_pem.clone()),
        )
        .build()
        .unwrap();
    let spec = AgentSpec::new(&[("environment", "secure")]);
    let agent = TestAgent::ws_with(
        &url,
        spec.clone(),
        WsConnectOptions::default().with_tls(Arc::clone(&with_cert)),
    )
    .await
    .unwrap();

    let fleet = Arc::clone(handle.fleet());
    eventually("agent over mTLS", || async {
        (fleet.summary().await.healthy == 1).then_some(())
    })
    .await;

    let req: opamp_fleet_server::fleet::ConnectionSettingsRequest = serde_json::from_value(json!({
        "opamp": {"rotate_client_certificate": true, "heartbeat_interval_seconds": 20}
    }))
    .unwrap();
    fleet
        .offer_connection_settings(&spec.uid(), req, "test")
        .await
        .unwrap();
    let cert = eventually("certificate offer", || async {
        let seen = agent.seen.lock().unwrap();
        seen.messages.iter().find_map(|m| {
            m.connection_settings
                .as_ref()
                .and_then(|c| c.opamp.as_ref())
                .and_then(|o| o.certificate.clone())
        })
    })
    .await;
    let cert_pem = String::from_utf8(cert.cert.to_vec()).unwrap();
    assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(String::from_utf8_lossy(&cert.private_key).contains("PRIVATE KEY"));
    assert_eq!(String::from_utf8_lossy(&cert.ca_cert), p.ca_pem);
    // The audit log records the fingerprint, never the key.
    let entries = fleet.audit_log(10, None).await.unwrap();
    let e = entries
        .iter()
        .find(|e| e.action == "agent.connection_settings")
        .unwrap();
    assert!(e.details.contains("client certificate"));
    assert!(!e.details.contains("PRIVATE"));

    // The issued certificate is accepted by the listener.
    let rotated = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(p.ca_pem.clone()))
        .with_client_cert(
            PemSource::memory(cert.cert.to_vec()),
            PemSource::memory(cert.private_key.to_vec()),
        )
        .build()
        .unwrap();
    let mut spec2 = spec.clone();
    spec2.uid = opamp_proto::InstanceUid::new_v7();
    let agent2 = TestAgent::ws_with(&url, spec2, WsConnectOptions::default().with_tls(rotated))
        .await
        .unwrap();
    eventually("second agent", || async {
        (fleet.summary().await.total == 2).then_some(())
    })
    .await;
    agent.stop().await;
    agent2.stop().await;
    handle.shutdown().await;
}

/// One HTTP/1.1 GET over TLS to `addr`, trusting only `ca_pem`; the raw response.
async fn https_get(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    path: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(ca_pem.to_owned()))
        .build()?;
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = opamp_transport::tls::rustls::pki_types::ServerName::try_from("localhost")?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A peer may end TLS without close_notify once the body is sent: keep what was read.
    let _ = tls.read_to_end(&mut response).await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// PEM files in a temporary directory (removed when this is dropped).
struct PemFiles(tempfile::TempDir);

impl PemFiles {
    fn new() -> Self {
        PemFiles(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, pem: &str) -> std::path::PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// The server's certificate and key, as the fleet server's TLS settings.
    fn server(&self, p: &Pki) -> TlsFiles {
        TlsFiles {
            cert: self.write("server.pem", &p.server_pem),
            key: self.write("server.key", &p.server_key_pem),
        }
    }
}

#[tokio::test]
async fn dashboard_and_api_are_served_over_https() {
    let p = pki();
    let files = PemFiles::new();
    let tls = files.server(&p);
    let handle = FleetServer::start(common::config(":memory:").with_http_tls(Some(tls)))
        .await
        .unwrap();
    let addr = handle.http_addr();

    let page = https_get(addr, &p.ca_pem, "/").await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.to_ascii_lowercase().contains("<html"), "{page}");
    let api = https_get(addr, &p.ca_pem, "/api/summary").await.unwrap();
    assert!(api.starts_with("HTTP/1.1 200"), "{api}");
    assert!(api.contains("\"total\""), "{api}");

    // A client that does not trust the server's CA gets no page.
    let other = pki();
    assert!(https_get(addr, &other.ca_pem, "/").await.is_err());
    // Plain HTTP on the HTTPS port gets no page either.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(common::WAIT, plain.read_to_end(&mut answer)).await;
        assert!(!String::from_utf8_lossy(&answer).contains("<html"));
    }
    handle.shutdown().await;
}
