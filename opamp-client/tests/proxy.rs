//! HTTP `CONNECT` proxies (spec §"ProxyConnectionSettings Message"): configured in the
//! settings or offered by the server, over both transports; unsupported proxies are refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Push, Recording, Seen, TestServer};
use opamp_client::connection_settings::ProxyParams;
use opamp_client::proto::{
    AgentCapabilities, ConnectionSettingsOffers, ConnectionSettingsStatuses, Header, Headers,
    OpAmpConnectionSettings, ProxyConnectionSettings, ServerToAgent,
};
use opamp_client::{Client, ClientSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A minimal CONNECT proxy: records each request head, then relays bytes both ways.
async fn start_proxy() -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(head.clone()).await;
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, rx)
}

fn proxy_params(addr: SocketAddr) -> ProxyParams {
    let mut proxy = ProxyParams::new(format!("http://{addr}"));
    proxy
        .connect_headers
        .push(("Proxy-Authorization".into(), "Basic dXNlcjpwdw==".into()));
    proxy
}

async fn next_head(rx: &mut mpsc::Receiver<String>) -> String {
    tokio::time::timeout(common::WAIT, rx.recv())
        .await
        .expect("no CONNECT")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_a_configured_proxy() {
    let server = TestServer::start().await;
    let (proxy, mut heads) = start_proxy().await;
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_proxy(proxy_params(proxy)),
        Recording::default(),
    )
    .unwrap();
    let head = next_head(&mut heads).await;
    assert!(
        head.starts_with(&format!("CONNECT {} HTTP/1.1\r\n", server.addr)),
        "{head}"
    );
    assert!(
        head.contains("Proxy-Authorization: Basic dXNlcjpwdw==\r\n"),
        "{head}"
    );
    assert_eq!(server.next_message().await.sequence_num, 1);
    client.stop().await.unwrap();
    let bye = server.next_message().await;
    assert!(bye.agent_disconnect.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_through_a_configured_proxy() {
    let server = TestServer::start().await;
    let (proxy, mut heads) = start_proxy().await;
    let client = Client::start(
        ClientSettings::new(server.http_url())
            .with_proxy(proxy_params(proxy))
            .with_compression(true)
            .with_heartbeat_interval(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    for _ in 0..2 {
        let head = next_head(&mut heads).await;
        assert!(head.starts_with("CONNECT "), "{head}");
        let Seen::Http { headers, msg, .. } = server.next().await else {
            panic!("expected an HTTP request");
        };
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(msg.instance_uid, client.instance_uid().to_bytes());
    }
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_proxy_is_used_and_unsupported_ones_refused() {
    let old = TestServer::start().await;
    let new = TestServer::start().await;
    let (proxy, mut heads) = start_proxy().await;
    let client = Client::start(
        ClientSettings::new(old.ws_url()).with_capabilities(
            AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
                | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS,
        ),
        Recording::default(),
    )
    .unwrap();
    old.next_message().await;
    let offer = |hash: &[u8], endpoint: String, url: String| ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: hash.to_vec().into(),
            opamp: Some(OpAmpConnectionSettings {
                destination_endpoint: endpoint,
                proxy: Some(ProxyConnectionSettings {
                    url,
                    connect_headers: Some(Headers {
                        headers: vec![Header {
                            key: "X-Proxy-Token".into(),
                            value: "p".into(),
                        }],
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    old.push(Push::Message(offer(
        b"socks",
        new.ws_url(),
        "socks5://127.0.0.1:1080".into(),
    )))
    .await;
    let refused = old.next_message().await;
    assert!(refused.agent_disconnect.is_none());
    let status = refused.connection_settings_status.unwrap();
    assert_eq!(status.status(), ConnectionSettingsStatuses::Failed);
    assert!(
        status.error_message.contains("proxy"),
        "{}",
        status.error_message
    );

    old.push(Push::Message(offer(
        b"http",
        new.ws_url(),
        format!("http://{proxy}"),
    )))
    .await;
    let head = next_head(&mut heads).await;
    assert!(head.contains("X-Proxy-Token: p\r\n"), "{head}");
    let applied = new
        .next_matching(|s| {
            s.message()
                .and_then(|m| m.connection_settings_status.as_ref())
                .is_some_and(|s| s.status() == ConnectionSettingsStatuses::Applied)
        })
        .await;
    assert!(applied.message().is_some());
    assert!(client.connection_params().proxy.is_some());
    client.stop().await.unwrap();
}

/// `https://` proxies (TLS to the proxy) and SOCKS proxies are refused with a typed error when
/// the client starts, and nothing is contacted.
#[test]
fn tls_and_socks_proxies_are_refused_at_start() {
    use opamp_client::Error;
    use opamp_client::connection_settings::ConnectionSettingsError;
    for (url, expected) in [
        ("https://127.0.0.1:8443", "https"),
        ("socks5://127.0.0.1:1080", "socks5"),
        ("socks5h://127.0.0.1:1080", "socks5h"),
    ] {
        let settings =
            ClientSettings::new("ws://127.0.0.1:1/v1/opamp").with_proxy(ProxyParams::new(url));
        match Client::start(settings, Recording::default()) {
            Err(Error::ConnectionSettings(ConnectionSettingsError::UnsupportedProxy {
                url: got,
                scheme,
            })) => {
                assert_eq!(got, url);
                assert_eq!(scheme, expected);
            }
            Err(other) => panic!("{url}: {other:?}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
    let settings = ClientSettings::new("ws://127.0.0.1:1/v1/opamp")
        .with_proxy(ProxyParams::new("ftp://127.0.0.1:21"));
    assert!(matches!(
        Client::start(settings, Recording::default()),
        Err(opamp_client::Error::ConnectionSettings(
            ConnectionSettingsError::InvalidProxy(_)
        ))
    ));
}
