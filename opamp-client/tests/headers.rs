//! Headers: static headers on every attempt and request, a header provider called for every
//! WebSocket connection attempt and every HTTP request (token refresh), the
//! `OpAMP-Instance-UID` header and gzip request bodies over plain HTTP.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Recording, Seen, TestServer};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opamp_client::state::ConstantBackoff;
use opamp_client::{Client, ClientSettings};

fn token_provider(counter: Arc<AtomicUsize>) -> impl Fn() -> HeaderMap + Send + Sync + 'static {
    move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer token-{n}")).unwrap(),
        );
        headers
    }
}

fn settings(url: String, counter: Arc<AtomicUsize>) -> ClientSettings {
    ClientSettings::new(url)
        .try_with_header("X-API-Key", "secret-key")
        .unwrap()
        .with_header_provider(token_provider(counter))
        .with_backoff(ConstantBackoff(Duration::from_millis(50)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_attempts_each_get_fresh_provider_headers() {
    let server = TestServer::start().await;
    server.script(|s| {
        s.upgrade_refusals
            .push_back((StatusCode::UNAUTHORIZED, None));
        s.upgrade_refusals
            .push_back((StatusCode::UNAUTHORIZED, None));
    });
    let counter = Arc::new(AtomicUsize::new(0));
    let client = Client::start(settings(server.ws_url(), counter), Recording::default()).unwrap();
    for n in 1..=3 {
        let Seen::Upgrade { headers, .. } = server
            .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(headers["x-api-key"], "secret-key");
        assert_eq!(
            headers[header::AUTHORIZATION],
            format!("Bearer token-{n}").as_str()
        );
    }
    server.next_message().await;
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_each_get_fresh_provider_headers_and_the_instance_uid() {
    let server = TestServer::start().await;
    let counter = Arc::new(AtomicUsize::new(0));
    let client = Client::start(
        settings(server.http_url(), counter)
            .with_heartbeat_interval(Duration::from_millis(100))
            .with_compression(true),
        Recording::default(),
    )
    .unwrap();
    let uid = client.instance_uid().to_string();
    for n in 1..=3 {
        let Seen::Http { headers, msg, .. } = server.next().await else {
            panic!("expected an HTTP request");
        };
        assert_eq!(headers["x-api-key"], "secret-key");
        assert_eq!(
            headers[header::AUTHORIZATION],
            format!("Bearer token-{n}").as_str()
        );
        assert_eq!(headers["opamp-instance-uid"], uid.as_str());
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(msg.instance_uid, client.instance_uid().to_bytes());
    }
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_fails_the_attempt_which_is_retried() {
    let server = TestServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    struct Flaky(Arc<AtomicUsize>);
    #[async_trait::async_trait]
    impl opamp_client::HeaderProvider for Flaky {
        async fn headers(&self) -> Result<HeaderMap, opamp_client::CallbackError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                Err("token service down".into())
            } else {
                Ok(HeaderMap::new())
            }
        }
    }
    let recording = Recording::default();
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_header_provider(Flaky(Arc::clone(&calls)))
            .with_backoff(ConstantBackoff(Duration::from_millis(50))),
        recording.clone(),
    )
    .unwrap();
    server.next_message().await;
    assert_eq!(recording.0.connect_failures.load(Ordering::SeqCst), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    client.stop().await.unwrap();
}
