//! The conformance kit's misbehaving agents against our server.

use std::time::Duration;

use opamp_interop::conformance::{Answer, server};
use opamp_interop::harness::{own_rss, rss_growth_since};
use opamp_interop::{RecordingServer, remote_config};
use opamp_server::ServerSettings;

const LIMIT_BYTES: usize = 256 * 1024;

async fn ours(settings: ServerSettings) -> RecordingServer {
    RecordingServer::start(settings.with_max_message_size(LIMIT_BYTES), None)
        .await
        .expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_websocket_messages_get_bad_request() -> Result<(), opamp_interop::Error> {
    let ours = ours(ServerSettings::default()).await;
    for outcome in [
        server::non_zero_ws_header(&ours.ws_url()).await?,
        server::truncated_varint(&ours.ws_url()).await?,
        server::garbage_protobuf(&ours.ws_url()).await?,
        server::text_frame(&ours.ws_url()).await?,
    ] {
        println!("{outcome}");
        // Our server answers every malformed message with BAD_REQUEST and keeps the
        // connection (as opamp-go does).
        assert!(
            matches!(outcome.answer, Answer::ErrorResponse { kind: 1, .. }),
            "{outcome}"
        );
    }
    ours.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_get_1009_and_413() -> Result<(), opamp_interop::Error> {
    let ours = ours(ServerSettings::default()).await;
    let ws = server::oversize_ws_message(&ours.ws_url(), LIMIT_BYTES).await?;
    println!("{ws}");
    let http = server::oversize_http_body(&ours.ws_url(), LIMIT_BYTES).await?;
    println!("{http}");
    assert_eq!(http.answer, Answer::HttpStatus(413));
    ours.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bombs_are_cut_at_the_limit() -> Result<(), opamp_interop::Error> {
    let ours = ours(ServerSettings::default()).await;
    let before = own_rss();
    for _ in 0..3 {
        let outcome = server::gzip_bomb(&ours.ws_url(), LIMIT_BYTES).await?;
        println!("{outcome}");
        assert_eq!(outcome.answer, Answer::HttpStatus(413));
    }
    let growth = rss_growth_since(before);
    // Three bombs of 1 MiB inflated each; the server stops at 256 KiB. Generous bound.
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes");
    ours.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_reads_does_not_hold_others_up() -> Result<(), opamp_interop::Error> {
    let settings = ServerSettings::default().with_write_timeout(Duration::from_secs(2));
    let ours = ours(settings).await;
    let before = own_rss();
    let mut n = 0u32;
    let outcome = server::never_reading_agent(&ours.ws_url(), Duration::from_secs(6), || {
        n += 1;
        // 200 KiB configs (under the 256 KiB limit), a new one every 100 ms.
        let body = format!("# version {n}\n{}", "x".repeat(200 * 1024));
        ours.offer_to_all(remote_config("big.yaml", "text/yaml", &body));
    })
    .await?;
    println!("{outcome}");
    let growth = rss_growth_since(before);
    // 60 pushes of 200 KiB = 12 MiB if queued; merged, at most a few are in flight.
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes");
    assert!(
        matches!(
            outcome.answer,
            Answer::Dropped | Answer::Silent | Answer::Closed { .. }
        ),
        "{outcome}"
    );
    ours.shutdown().await;
    Ok(())
}

fn silent_settings() -> ServerSettings {
    ServerSettings::default()
        .with_header_read_timeout(Duration::from_secs(1))
        // The bystanders heartbeat no faster than this: they must outlive the silent peers.
        .with_heartbeat_interval(Some(Duration::from_secs(30)))
        // Pings stay at their default: the bystanders read only when they exchange a message,
        // so they answer pings late.
        .with_first_message_timeout(Some(Duration::from_secs(2)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_client_that_never_sends_is_closed() -> Result<(), opamp_interop::Error> {
    let ours = ours(silent_settings()).await;
    let tcp = server::silent_tcp_client(&ours.ws_url(), Duration::from_secs(15)).await?;
    println!("{tcp}");
    ours.shutdown().await;
    Ok(())
}

// A WebSocket that upgrades and answers pings but never sends an OpAMP message must not be kept
// forever: `first_message_timeout` closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_agent_that_never_sends_is_closed() -> Result<(), opamp_interop::Error> {
    let ours = ours(silent_settings()).await;
    let ws = server::silent_ws_agent(&ours.ws_url(), Duration::from_secs(15)).await?;
    println!("{ws}");
    ours.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_instance_uid_gets_a_new_uid() -> Result<(), opamp_interop::Error> {
    let ours = ours(ServerSettings::default()).await;
    let outcome = server::duplicate_instance_uid(&ours.ws_url()).await?;
    println!("{outcome}");
    assert_eq!(outcome.answer, Answer::NewInstanceUid);
    ours.shutdown().await;
    Ok(())
}
