//! Retries (spec §"Establishing Connection", §"Restoring WebSocket Connection"): failed
//! attempts back off exponentially; a working connection that breaks is retried at once.

mod common;

use std::time::Duration;

use common::{Push, Recording, Seen, TestServer};
use http::StatusCode;
use opamp_client::state::{ConstantBackoff, ExponentialBackoff, FixedJitter};
use opamp_client::{Client, ClientSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_back_off_exponentially() {
    let server = TestServer::start().await;
    server.script(|s| {
        for _ in 0..3 {
            s.upgrade_refusals
                .push_back((StatusCode::INTERNAL_SERVER_ERROR, None));
        }
    });
    let backoff = ExponentialBackoff::new()
        .with_initial_interval(Duration::from_millis(200))
        .with_multiplier(2.0)
        .with_jitter(FixedJitter(0.5));
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_backoff(backoff),
        Recording::default(),
    )
    .unwrap();
    let mut attempts = Vec::new();
    for _ in 0..4 {
        attempts.push(
            server
                .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
                .await
                .at(),
        );
    }
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, expected) in gaps.iter().zip([200, 400, 800]) {
        assert!(*gap >= Duration::from_millis(expected), "gaps {gaps:?}");
    }
    assert!(gaps[2] > gaps[0], "delays grow: {gaps:?}");
    client.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_working_connection_is_retried_at_once_then_with_backoff() {
    let server = TestServer::start().await;
    let backoff = Duration::from_secs(3);
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_backoff(ConstantBackoff(backoff)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    server.script(|s| {
        s.upgrade_refusals
            .push_back((StatusCode::INTERNAL_SERVER_ERROR, None))
    });
    server.push(Push::Close).await;
    let closed = server
        .next_matching(|s| matches!(s, Seen::WsClosed { .. }))
        .await;
    let retry = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    assert!(
        retry.at() - closed.at() < backoff,
        "reconnected at once, not after the backoff: {:?}",
        retry.at() - closed.at()
    );
    let next = server
        .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
        .await;
    assert!(
        next.at() - retry.at() >= backoff,
        "then backoff: {:?}",
        next.at() - retry.at()
    );
    client.stop().await.unwrap();
}
