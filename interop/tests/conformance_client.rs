//! The conformance kit's misbehaving servers against our client.

use std::time::Duration;

use opamp_interop::conformance::Answer;
use opamp_interop::conformance::client::{self, Transport};
use opamp_interop::harness::{own_rss, rss_growth_since};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_503_forever_is_honoured() -> Result<(), opamp_interop::Error> {
    for transport in [Transport::Http, Transport::WebSocket] {
        let outcome = client::retry_after_forever(transport, Duration::from_secs(5)).await?;
        println!("{transport:?}: {outcome}");
        assert!(matches!(outcome.answer, Answer::BackedOff { .. }));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_mid_message_is_survived() -> Result<(), opamp_interop::Error> {
    for transport in [Transport::Http, Transport::WebSocket] {
        let outcome = client::close_mid_message(transport).await?;
        println!("{transport:?}: {outcome}");
        assert!(matches!(outcome.answer, Answer::Reconnected(n) if n >= 3));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_server_messages_are_dropped() -> Result<(), opamp_interop::Error> {
    let outcome = client::malformed_replies().await?;
    println!("{outcome}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_gzip_bomb_replies_are_refused() -> Result<(), opamp_interop::Error> {
    let outcome = client::oversize_reply(256 * 1024).await?;
    println!("{outcome}");
    let before = own_rss();
    let outcome = client::gzip_bomb_reply(1 << 20).await?;
    println!("{outcome}");
    let growth = rss_growth_since(before);
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_server_times_out() -> Result<(), opamp_interop::Error> {
    for transport in [Transport::Http, Transport::WebSocket] {
        let outcome = client::unresponsive_server(transport).await?;
        println!("{transport:?}: {outcome}");
    }
    Ok(())
}
