//! TLS and mutual TLS on real sockets, for `wss://` and `https://`, with certificates made by
//! rcgen for each run: server verification against a private CA (and its failure with the wrong
//! CA, unless verification is skipped), and a server that requires client certificates
//! (refusing clients without one, accepting clients with one).

#![cfg(feature = "tls")]

mod io_support;

use http::StatusCode;
use hyper::Request;
use hyper::body::Incoming;
use io_support::{
    Pki, TestServer, accept_ws, agent_message, echo_session, limits, pki, within, ws_config,
};
use opamp_proto::{AgentToServer, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::http::{
    HttpClient, HttpClientSettings, HttpRequestOptions, error_response_for, protobuf_response,
    read_request,
};
use opamp_transport::tls::{
    ClientAuth, PemSource, TlsAcceptor, TlsClientSettings, TlsServerSettings,
};
use opamp_transport::ws::{self, CloseCode, WsConnectOptions};

/// Serves WebSocket upgrades (echo) and plain-HTTP posts on the same endpoint.
async fn handler(
    request: Request<Incoming>,
) -> http::Response<opamp_transport::http::ServerHttpBody> {
    if request.headers().contains_key(http::header::UPGRADE) {
        return accept_ws(request, ws_config(), echo_session);
    }
    match read_request::<AgentToServer, _>(request, &limits()).await {
        Ok((_, message)) => {
            let reply = ServerToAgent {
                flags: message.sequence_num,
                ..Default::default()
            };
            protobuf_response(&reply, false, &limits()).unwrap()
        }
        Err(err) => error_response_for(&err),
    }
}

fn server_settings(pki: &Pki) -> TlsServerSettings {
    TlsServerSettings::new(
        PemSource::memory(pki.server_cert.clone()),
        PemSource::memory(pki.server_key.clone()),
    )
}

fn trusting(ca: &str) -> TlsClientSettings {
    TlsClientSettings::default()
        .with_default_roots(false)
        .with_ca(PemSource::memory(ca.to_owned()))
}

fn with_client_cert(settings: TlsClientSettings, pki: &Pki) -> TlsClientSettings {
    settings.with_client_cert(
        PemSource::memory(pki.client_cert.clone()),
        PemSource::memory(pki.client_key.clone()),
    )
}

async fn ws_round_trip(url: &str, tls: &TlsClientSettings) -> Result<(), Error> {
    let options = WsConnectOptions::default()
        .with_config(ws_config())
        .with_tls(tls.build()?);
    let (mut connection, _) = within(ws::connect(url, &options)).await?;
    within(connection.send(&agent_message(5))).await?;
    let reply: ServerToAgent = within(connection.recv())
        .await?
        .ok_or(Error::ConnectionClosed)?;
    assert_eq!(reply.flags, 5);
    assert!(connection.with_stream(|stream| stream.is_tls()));
    connection.close(CloseCode::Normal, "").await
}

async fn http_round_trip(url: &str, tls: &TlsClientSettings) -> Result<(), Error> {
    let client = HttpClient::new(&HttpClientSettings::default().with_tls(tls.build()?));
    let options = HttpRequestOptions::default().with_limits(limits());
    let response =
        within(client.round_trip::<_, ServerToAgent>(url, &agent_message(6), &options)).await?;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.message.flags, 6);
    Ok(())
}

#[tokio::test]
async fn server_verified_against_a_private_ca() {
    let pki = pki();
    let acceptor = TlsAcceptor::from_settings(&server_settings(&pki)).expect("server config");
    let server = TestServer::tls(acceptor, handler).await;
    let tls = trusting(&pki.ca);

    // By name and by IP address (the certificate has both).
    ws_round_trip(&server.localhost_url("wss"), &tls)
        .await
        .expect("wss by name");
    ws_round_trip(&server.url("wss"), &tls)
        .await
        .expect("wss by IP");
    http_round_trip(&server.localhost_url("https"), &tls)
        .await
        .expect("https");
}

#[tokio::test]
async fn untrusted_server_is_refused_unless_verification_is_skipped() {
    let pki = pki();
    let acceptor = TlsAcceptor::from_settings(&server_settings(&pki)).expect("server config");
    let server = TestServer::tls(acceptor, handler).await;
    let wrong_ca = trusting(&pki.other_ca);

    let result = ws_round_trip(&server.localhost_url("wss"), &wrong_ca).await;
    assert!(
        matches!(
            result,
            Err(Error::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )))
        ),
        "{result:?}"
    );
    let result = http_round_trip(&server.localhost_url("https"), &wrong_ca).await;
    assert!(
        matches!(
            result,
            Err(Error::Tls(rustls::Error::InvalidCertificate(_)))
        ),
        "{result:?}"
    );

    let insecure = wrong_ca.with_insecure_skip_verify(true);
    ws_round_trip(&server.localhost_url("wss"), &insecure)
        .await
        .expect("wss without verification");
    http_round_trip(&server.localhost_url("https"), &insecure)
        .await
        .expect("https without verification");
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki();
    let settings =
        server_settings(&pki).with_client_auth(ClientAuth::Required(vec![PemSource::memory(
            pki.ca.clone(),
        )]));
    let acceptor = TlsAcceptor::from_settings(&settings).expect("server config");
    let server = TestServer::tls(acceptor, handler).await;

    // Without a client certificate: refused on both transports, and the server's handshake
    // fails with a TLS error.
    let anonymous = trusting(&pki.ca);
    let result = ws_round_trip(&server.localhost_url("wss"), &anonymous).await;
    assert!(
        result.is_err(),
        "wss without a client certificate: {result:?}"
    );
    let result = http_round_trip(&server.localhost_url("https"), &anonymous).await;
    assert!(
        result.is_err(),
        "https without a client certificate: {result:?}"
    );
    let errors = server.take_tls_errors();
    assert!(!errors.is_empty());
    for error in &errors {
        assert!(
            matches!(error, Error::Tls(rustls::Error::NoCertificatesPresented)),
            "{error:?}"
        );
    }

    // With one signed by the CA the server trusts: accepted.
    let authenticated = with_client_cert(trusting(&pki.ca), &pki);
    ws_round_trip(&server.localhost_url("wss"), &authenticated)
        .await
        .expect("wss with a client certificate");
    http_round_trip(&server.localhost_url("https"), &authenticated)
        .await
        .expect("https with a client certificate");
    assert!(server.take_tls_errors().is_empty());
}

#[tokio::test]
async fn optional_client_auth_accepts_both_kinds_of_clients() {
    let pki = pki();
    let settings =
        server_settings(&pki).with_client_auth(ClientAuth::Optional(vec![PemSource::memory(
            pki.ca.clone(),
        )]));
    let server = TestServer::tls(TlsAcceptor::from_settings(&settings).unwrap(), handler).await;
    ws_round_trip(&server.localhost_url("wss"), &trusting(&pki.ca))
        .await
        .expect("anonymous client");
    ws_round_trip(
        &server.localhost_url("wss"),
        &with_client_cert(trusting(&pki.ca), &pki),
    )
    .await
    .expect("client with a certificate");
}

#[tokio::test]
async fn settings_read_pem_files_and_report_bad_input() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("opamp-transport-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, &pki.server_cert).unwrap();
    std::fs::write(&key_path, &pki.server_key).unwrap();

    let from_files =
        TlsServerSettings::new(PemSource::file(&cert_path), PemSource::file(&key_path));
    assert!(from_files.build().is_ok());

    let missing = TlsServerSettings::new(
        PemSource::file(dir.join("nope.pem")),
        PemSource::file(&key_path),
    );
    assert!(matches!(missing.build(), Err(Error::ReadFile { .. })));

    // A certificate where the key should be.
    let swapped = TlsServerSettings::new(PemSource::file(&cert_path), PemSource::file(&cert_path));
    assert!(matches!(
        swapped.build(),
        Err(Error::Pem {
            what: "private key",
            ..
        })
    ));

    let no_roots = TlsClientSettings::default().with_default_roots(false);
    assert!(matches!(no_roots.build(), Err(Error::InvalidTlsConfig(_))));
    let not_pem = TlsClientSettings::default().with_ca(PemSource::memory("hello"));
    assert!(not_pem.build().is_err());

    // Key material never shows in Debug output.
    let debug = format!("{:?}", with_client_cert(TlsClientSettings::default(), &pki));
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    std::fs::remove_dir_all(&dir).unwrap();
}
