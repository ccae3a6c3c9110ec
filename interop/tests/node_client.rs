//! `@elastic/opamp-client-node` (0.5.0) against our server over plain HTTP.
//!
//! Quirk handled: the Node client has no `ReportsEffectiveConfig` and never reports an
//! effective config; the server must not keep asking for it (no `ReportFullState` loop).

use std::time::{Duration, Instant};

use opamp_interop::harness::{ClientPeer, ClientSession, hex, start_client_session};
use opamp_interop::{Peers, remote_config};
use opamp_proto::{AgentCapabilities, RemoteConfigStatuses};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_reports_and_applies_configs_without_loops() -> Result<(), opamp_interop::Error>
{
    let Some(peers) = Peers::locate()? else {
        return Ok(());
    };
    let first = remote_config(
        "elastic",
        "application/json",
        r#"{"logging_level":"debug"}"#,
    );
    let ClientSession {
        server,
        mut peer,
        uid,
    } = start_client_session(&peers, ClientPeer::Node, "node-cart", first.clone(), LIMIT).await?;

    let record = server
        .wait_for_agent(&uid, "the Node agent's description", LIMIT, |a| {
            a.description.as_ref().map(|_| a.clone())
        })
        .await?;
    assert_eq!(
        record.identifying("service.name").as_deref(),
        Some("node-cart")
    );
    let has = |cap: AgentCapabilities| record.capabilities & cap.bits() != 0;
    assert!(has(AgentCapabilities::ACCEPTS_REMOTE_CONFIG));
    assert!(!has(AgentCapabilities::REPORTS_EFFECTIVE_CONFIG));

    // The first config (in the reply to its first report) reaches it; APPLIED comes back.
    let offered = peer.wait_for_event("remote_config", LIMIT).await?;
    assert_eq!(offered["hash"], hex(&first.config_hash));
    server
        .wait_for_agent(&uid, "APPLIED for the first config", LIMIT, |a| {
            (a.remote_config_state()
                == Some((
                    first.config_hash.to_vec(),
                    RemoteConfigStatuses::Applied as i32,
                )))
            .then_some(())
        })
        .await?;

    // A config pushed later reaches it on its next poll.
    let second = remote_config("elastic", "application/json", r#"{"logging_level":"warn"}"#);
    server.offer_to_all(second.clone());
    peer.wait_for("the second config", LIMIT, |e| {
        e["event"] == "remote_config" && e["hash"] == hex(&second.config_hash)
    })
    .await?;
    server
        .wait_for_agent(&uid, "APPLIED for the second config", LIMIT, |a| {
            (a.remote_config_state()
                == Some((
                    second.config_hash.to_vec(),
                    RemoteConfigStatuses::Applied as i32,
                )))
            .then_some(())
        })
        .await?;

    // No loop although it never reports an effective config.
    let window_start = Instant::now();
    peer.drain_for(Duration::from_secs(5)).await?;
    let record = server.agent(&uid).expect("recorded");
    assert!(record.effective_config.is_none());
    let recent = record.messages_since(window_start);
    assert!(
        (1..=15).contains(&recent),
        "{recent} requests in 5 s with a 1 s heartbeat"
    );
    let asked = peer
        .events_of("response")
        .iter()
        .filter(|e| e["report_full_state"] == true)
        .count();
    assert!(asked <= 1, "ReportFullState asked {asked} times");
    let offers = peer.events_of("remote_config").len();
    assert!(offers <= 3, "configs offered {offers} times");
    assert!(peer.events_of("send_failed").is_empty());

    peer.stop(Duration::from_secs(10)).await?;
    server.shutdown().await;
    Ok(())
}
