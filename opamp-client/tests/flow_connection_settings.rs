//! The OpAMP connection settings offer flow end to end through the driver (spec §"OpAMP
//! Connection Setting Offer Flow"): a candidate is tried by reconnecting, kept on success
//! (`APPLIED`, persisted) and reverted on failure (`FAILED`); plus the CSR flow.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{HttpReply, Push, Recording, Seen, TestServer};
use opamp_client::connection_settings::csr::CsrRequest;
use opamp_client::persistence::{MemoryStateStore, StateStore};
use opamp_client::proto::{
    AgentCapabilities, AgentToServer, ConnectionSettingsOffers, ConnectionSettingsStatuses, Header,
    Headers, OpAmpConnectionSettings, ServerToAgent, TlsCertificate,
};
use opamp_client::state::ConstantBackoff;
use opamp_client::{Client, ClientSettings};

fn caps() -> AgentCapabilities {
    AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
        | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS
}

fn offer(hash: &[u8], endpoint: String, token: &str) -> ServerToAgent {
    ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: hash.to_vec().into(),
            opamp: Some(OpAmpConnectionSettings {
                destination_endpoint: endpoint,
                headers: Some(Headers {
                    headers: vec![Header {
                        key: "X-Token".into(),
                        value: token.into(),
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status_of(msg: &AgentToServer) -> Option<(ConnectionSettingsStatuses, Vec<u8>)> {
    msg.connection_settings_status
        .as_ref()
        .map(|s| (s.status(), s.last_connection_settings_hash.to_vec()))
}

fn settings(url: String, store: Arc<MemoryStateStore>) -> ClientSettings {
    ClientSettings::new(url)
        .with_capabilities(caps())
        .with_state_store(store)
        .with_backoff(ConstantBackoff(Duration::from_millis(50)))
        .with_connection_settings_attempts(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_offer_is_tried_applied_and_persisted() {
    let old = TestServer::start().await;
    let new = TestServer::start().await;
    let store = Arc::new(MemoryStateStore::new());
    let recording = Recording::default();
    let client = Client::start(settings(old.ws_url(), store.clone()), recording.clone()).unwrap();
    old.next_message().await;

    old.push(Push::Message(offer(b"h1", new.ws_url(), "new-token")))
        .await;
    // APPLYING goes out with agent_disconnect, then the old connection closes.
    let bye = old.next_message().await;
    assert!(bye.agent_disconnect.is_some(), "{bye:?}");
    assert_eq!(
        status_of(&bye),
        Some((ConnectionSettingsStatuses::Applying, b"h1".to_vec()))
    );
    old.next_matching(|s| matches!(s, Seen::WsClosed { .. }))
        .await;

    // The new server gets the offered header and the full status...
    let Seen::Upgrade { headers, .. } = new
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(headers["x-token"], "new-token");
    let first = new.next_message().await;
    assert_eq!(first.capabilities, client.capabilities().bits());
    // ... then APPLIED once it answered.
    let applied = new.next_message().await;
    assert_eq!(
        status_of(&applied),
        Some((ConnectionSettingsStatuses::Applied, b"h1".to_vec()))
    );
    assert_eq!(client.connection_params().endpoint, new.ws_url());
    common::eventually("the outcome callback", || {
        !recording.0.outcomes.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(recording.0.outcomes.lock().unwrap()[0], Ok(()));
    let persisted = store
        .load_connection_settings()
        .unwrap()
        .expect("persisted");
    assert_eq!(persisted.base_url, old.ws_url());
    assert_eq!(persisted.snapshot.active.endpoint, new.ws_url());
    client.stop().await.unwrap();

    // A restart with the same settings goes straight to the new server.
    let restarted =
        Client::start(settings(old.ws_url(), store.clone()), Recording::default()).unwrap();
    new.next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    let first = new.next_message().await;
    assert_eq!(
        status_of(&first),
        Some((ConnectionSettingsStatuses::Applied, b"h1".to_vec()))
    );
    restarted.stop().await.unwrap();
    old.assert_quiet(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_offer_that_fails_is_reverted_and_reported() {
    let old = TestServer::start().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}/v1/opamp", listener.local_addr().unwrap())
    };
    let store = Arc::new(MemoryStateStore::new());
    let recording = Recording::default();
    let client = Client::start(settings(old.ws_url(), store.clone()), recording.clone()).unwrap();
    old.next_message().await;

    old.push(Push::Message(offer(b"h2", dead.clone(), "t")))
        .await;
    let bye = old.next_message().await;
    assert!(bye.agent_disconnect.is_some());
    // Two failed attempts with the candidate, then back to the old server.
    old.next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    let report = old.next_message().await;
    let report = if status_of(&report).map(|s| s.0) == Some(ConnectionSettingsStatuses::Failed) {
        report
    } else {
        old.next_message().await
    };
    assert_eq!(
        status_of(&report),
        Some((ConnectionSettingsStatuses::Failed, b"h2".to_vec()))
    );
    assert!(
        !report
            .connection_settings_status
            .unwrap()
            .error_message
            .is_empty()
    );
    assert_eq!(client.connection_params().endpoint, old.ws_url());
    common::eventually("the outcome callback", || {
        !recording.0.outcomes.lock().unwrap().is_empty()
    })
    .await;
    assert!(recording.0.outcomes.lock().unwrap()[0].is_err());
    let persisted = store.load_connection_settings().unwrap().unwrap();
    assert_eq!(persisted.snapshot.active.endpoint, old.ws_url());
    assert!(persisted.snapshot.candidate.is_none());
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_offer_is_refused_without_disconnecting() {
    let server = TestServer::start().await;
    let client = Client::start(
        settings(server.ws_url(), Arc::new(MemoryStateStore::new())),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server
        .push(Push::Message(offer(b"h3", "ftp://nowhere/".into(), "t")))
        .await;
    let report = server.next_message().await;
    assert!(report.agent_disconnect.is_none());
    assert_eq!(
        status_of(&report),
        Some((ConnectionSettingsStatuses::Failed, b"h3".to_vec()))
    );
    // The same offer again is a duplicate: no new report.
    server
        .push(Push::Message(offer(b"h3", "ftp://nowhere/".into(), "t")))
        .await;
    server.assert_quiet(Duration::from_millis(400)).await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_offer_switches_endpoints() {
    let old = TestServer::start().await;
    let new = TestServer::start().await;
    old.script(|s| {
        s.http_replies
            .push_back(HttpReply::Message(offer(b"h4", new.http_url(), "tok")))
    });
    let client = Client::start(
        settings(old.http_url(), Arc::new(MemoryStateStore::new()))
            .with_heartbeat_interval(Duration::from_secs(60)),
        Recording::default(),
    )
    .unwrap();
    old.next_message().await;
    let bye = old.next_message().await;
    assert!(
        bye.agent_disconnect.is_some(),
        "SHOULD before switching: {bye:?}"
    );
    let Seen::Http { headers, msg, .. } = new.next().await else {
        panic!("expected an HTTP request");
    };
    assert_eq!(headers["x-token"], "tok");
    assert!(msg.agent_disconnect.is_none());
    let applied = new.next_message().await;
    assert_eq!(
        status_of(&applied),
        Some((ConnectionSettingsStatuses::Applied, b"h4".to_vec()))
    );
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_is_generated_sent_and_its_certificate_applied() {
    let server = TestServer::start().await;
    let client = Client::start(
        settings(server.ws_url(), Arc::new(MemoryStateStore::new())),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    client
        .request_client_certificate(
            CsrRequest::new("opamp-agent").with_instance_uid(client.instance_uid()),
        )
        .await
        .unwrap();
    let request = server.next_message().await;
    let csr = request
        .connection_settings_request
        .and_then(|r| r.opamp)
        .and_then(|o| o.certificate_request)
        .expect("a CSR")
        .csr;
    let csr = std::str::from_utf8(&csr).unwrap();
    assert!(csr.contains("BEGIN CERTIFICATE REQUEST"));

    // The server signs it with its CA and offers the certificate without a private key.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let signed = rcgen::CertificateSigningRequestParams::from_pem(csr)
        .unwrap()
        .signed_by(&issuer)
        .unwrap();
    let certificate = ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: b"cert".to_vec().into(),
            opamp: Some(OpAmpConnectionSettings {
                certificate: Some(TlsCertificate {
                    cert: signed.pem().into_bytes().into(),
                    private_key: Default::default(),
                    ca_cert: ca.pem().into_bytes().into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    server.push(Push::Message(certificate)).await;
    let applied = server
        .next_matching(|s| {
            s.message()
                .and_then(status_of)
                .is_some_and(|s| s.0 == ConnectionSettingsStatuses::Applied)
        })
        .await;
    assert_eq!(status_of(applied.message().unwrap()).unwrap().1, b"cert");
    let params = client.connection_params();
    let cert = params.client_certificate.expect("the certificate is kept");
    assert_eq!(cert.cert_pem, signed.pem());
    assert!(
        cert.private_key_pem.contains("PRIVATE KEY"),
        "combined with the CSR key"
    );
    client.stop().await.unwrap();
}
