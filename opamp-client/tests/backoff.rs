//! Retries (spec §"Establishing Connection", §"Restoring WebSocket Connection"): failed
//! attempts back off exponentially; a connection that worked for a while and breaks is
//! retried at once; one that dies young (a server that answers once and closes, or sends
//! something oversized) counts as a failed attempt, so there is no hot reconnect loop; a
//! refusal of the credentials waits as long as a throttling answer.

mod common;

use std::time::Duration;

use common::{Push, Recording, Seen, TestServer};
use http::StatusCode;
use opamp_client::proto::{CustomMessage, ServerToAgent, ServerToAgentFlags};
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
        ClientSettings::new(server.ws_url())
            .with_backoff(ConstantBackoff(backoff))
            .with_stable_connection_time(Duration::from_millis(200)),
        Recording::default(),
    )
    .unwrap();
    server.next_message().await;
    // Up for longer than the stable connection time: its loss is retried at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
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

/// The times of the next `n` WebSocket upgrades.
async fn upgrades(server: &TestServer, n: usize) -> Vec<std::time::Instant> {
    let mut at = Vec::new();
    while at.len() < n {
        at.push(
            server
                .next_matching(|s| matches!(s, Seen::Upgrade { .. }))
                .await
                .at(),
        );
    }
    at
}

fn gaps(at: &[std::time::Instant]) -> Vec<Duration> {
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Issue 17, item 3: a server that accepts, answers once and closes (a duplicate-UID kick, a
/// policy close) used to get thousands of upgrades per second, since the good answer reset
/// the backoff and the next failure waited zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_once_and_closes_is_not_hammered() {
    let server = TestServer::start().await;
    server.script(|s| s.ws_close_after_first = true);
    let backoff = ExponentialBackoff::new()
        .with_initial_interval(Duration::from_millis(100))
        .with_multiplier(2.0)
        .with_jitter(FixedJitter(0.5));
    let client = Client::start(
        ClientSettings::new(server.ws_url()).with_backoff(backoff),
        Recording::default(),
    )
    .unwrap();
    let gaps = gaps(&upgrades(&server, 5).await);
    for (gap, expected) in gaps.iter().zip([100, 200, 400, 800]) {
        assert!(
            *gap >= Duration::from_millis(expected * 9 / 10),
            "backoff keeps growing while reconnections fail: {gaps:?}"
        );
    }
    client.stop().await.unwrap();
}

/// Issue 17, item 3: a message over the size limit after a good one is malformed (spec
/// §"WebSocket Message Size Limits"), so the connection never counted as working and the
/// next attempt backs off (even with a stable connection time of zero).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_after_a_good_one_backs_off() {
    let server = TestServer::start().await;
    let full_state = ServerToAgent {
        flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
        ..Default::default()
    };
    let oversized = ServerToAgent {
        custom_message: Some(CustomMessage {
            capability: "x".into(),
            r#type: "y".into(),
            data: vec![0u8; 8192].into(),
        }),
        ..Default::default()
    };
    server.script(|s| {
        for _ in 0..50 {
            // The good answer asks for a full report; the answer to that is too large.
            s.ws_replies.push_back(full_state.clone());
            s.ws_replies.push_back(oversized.clone());
        }
    });
    let backoff = Duration::from_millis(300);
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_backoff(ConstantBackoff(backoff))
            .with_stable_connection_time(Duration::ZERO)
            .with_max_message_size(4096),
        Recording::default(),
    )
    .unwrap();
    let gaps = gaps(&upgrades(&server, 4).await);
    assert!(
        gaps.iter().all(|gap| *gap >= backoff * 9 / 10),
        "reconnected without backing off: {gaps:?}"
    );
    client.stop().await.unwrap();
}

/// Issue 12 (first hour): a 401 used to be retried every 0.5-2 s like an unreachable server.
/// Refused credentials wait like any refusal: at least the minimum throttle delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_back_off_like_a_refusal() {
    let server = TestServer::start().await;
    server.script(|s| {
        for _ in 0..3 {
            s.upgrade_refusals
                .push_back((StatusCode::UNAUTHORIZED, None));
        }
    });
    let throttle = Duration::from_millis(700);
    let client = Client::start(
        ClientSettings::new(server.ws_url())
            .with_backoff(ConstantBackoff(Duration::from_millis(20)))
            .with_min_throttle_delay(throttle),
        Recording::default(),
    )
    .unwrap();
    let gaps = gaps(&upgrades(&server, 3).await);
    assert!(
        gaps.iter().all(|gap| *gap >= throttle * 9 / 10),
        "401 retried too fast: {gaps:?}"
    );
    client.stop().await.unwrap();
}
