//! TLS and mutual TLS on the standalone listener: `wss://` and `https://`, the client
//! certificate visible to `on_connecting`, and handshake failures for clients that present
//! none where one is required.

#![cfg(feature = "tls")]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use opamp_server::proto::InstanceUid;
use opamp_server::tls::{ClientAuth, PemSource, TlsClientSettings, TlsServerSettings};
use opamp_server::{
    Callbacks, ConnectingRequest, ConnectionResponse, NoopConnectionCallbacks, Server,
    ServerSettings, async_trait,
};
use opamp_transport::http::{HttpClient, HttpClientSettings, HttpRequestOptions};
use opamp_transport::ws::{WsConnectOptions, connect};

struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "opamp-server test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "agent-7");
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// Accepts only clients that presented a certificate; records the chain length.
#[derive(Default, Clone)]
struct CertAuth {
    seen: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl Callbacks for CertAuth {
    async fn on_connecting(&self, request: &ConnectingRequest<'_>) -> ConnectionResponse {
        match request.peer_certificates() {
            Some(chain) => {
                self.seen.lock().unwrap().push(chain.0.len());
                ConnectionResponse::accept(NoopConnectionCallbacks)
            }
            None => ConnectionResponse::unauthorized(),
        }
    }
}

fn client_tls(pki: &Pki, with_cert: bool) -> TlsClientSettings {
    let settings = TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(pki.ca.clone()));
    if with_cert {
        settings.with_client_cert(
            PemSource::memory(pki.client_cert.clone()),
            PemSource::memory(pki.client_key.clone()),
        )
    } else {
        settings
    }
}

async fn tls_server(pki: &Pki, auth: ClientAuth, callbacks: CertAuth) -> (Server, u16) {
    let tls = TlsServerSettings::new(
        PemSource::memory(pki.server_cert.clone()),
        PemSource::memory(pki.server_key.clone()),
    )
    .with_client_auth(auth)
    .build()
    .unwrap();
    let settings = ServerSettings::default()
        .with_listen_addr("127.0.0.1:0".parse().unwrap())
        .with_tls(tls);
    let server = Server::new(settings, callbacks).unwrap();
    let port = server.start().await.unwrap().port();
    (server, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_identity_reaches_on_connecting() {
    let pki = pki();
    let auth = CertAuth::default();
    let (server, port) = tls_server(
        &pki,
        ClientAuth::Optional(vec![PemSource::memory(pki.ca.clone())]),
        auth.clone(),
    )
    .await;
    let ws_url = format!("wss://localhost:{port}/v1/opamp");
    let https_url = format!("https://localhost:{port}/v1/opamp");

    // wss:// with a client certificate.
    let options = WsConnectOptions::default().with_tls(client_tls(&pki, true).build().unwrap());
    let (mut ws, _) = connect(&ws_url, &options).await.unwrap();
    let uid = InstanceUid::new_v7();
    let reply = exchange(&mut ws, &full_status(uid, 0)).await;
    assert_eq!(reply.instance_uid, uid.to_bytes());

    // https:// with a client certificate.
    let client = HttpClient::new(
        &HttpClientSettings::default().with_tls(client_tls(&pki, true).build().unwrap()),
    );
    let http_uid = InstanceUid::new_v7();
    let reply = client
        .round_trip::<_, opamp_server::proto::ServerToAgent>(
            &https_url,
            &full_status(http_uid, 0),
            &HttpRequestOptions::default().with_timeout(LIMIT),
        )
        .await
        .unwrap();
    assert_eq!(reply.message.instance_uid, http_uid.to_bytes());
    assert_eq!(*auth.seen.lock().unwrap(), vec![1, 1]);

    // Without a certificate TLS succeeds (optional) but on_connecting refuses: 401.
    let options = WsConnectOptions::default().with_tls(client_tls(&pki, false).build().unwrap());
    let err = connect(&ws_url, &options).await.unwrap_err();
    assert!(
        matches!(err, opamp_transport::Error::HttpStatus { status, .. } if status == http::StatusCode::UNAUTHORIZED),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificate_is_enforced_by_the_handshake() {
    let pki = pki();
    let auth = CertAuth::default();
    let (server, port) = tls_server(
        &pki,
        ClientAuth::Required(vec![PemSource::memory(pki.ca.clone())]),
        auth.clone(),
    )
    .await;
    let ws_url = format!("wss://localhost:{port}/v1/opamp");
    let options = WsConnectOptions::default().with_tls(client_tls(&pki, false).build().unwrap());
    assert!(connect(&ws_url, &options).await.is_err());
    assert!(auth.seen.lock().unwrap().is_empty());
    let options = WsConnectOptions::default().with_tls(client_tls(&pki, true).build().unwrap());
    let (mut ws, _) = connect(&ws_url, &options).await.unwrap();
    let uid = InstanceUid::new_v7();
    exchange(&mut ws, &full_status(uid, 0)).await;
    assert_eq!(*auth.seen.lock().unwrap(), vec![1]);
    server.shutdown().await;
}
