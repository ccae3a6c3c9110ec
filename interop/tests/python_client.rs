//! The Python `opentelemetry-opamp-client` (0.5b0) against our server over plain HTTP.
//!
//! Quirks handled: the Python client answers `ReportFullState` at once (so the server must ask
//! for it only when something is missing, never in a loop) and parses only JSON config bodies
//! (a YAML offer is reported `FAILED`, and the server must not offer it again and again).

use std::time::{Duration, Instant};

use opamp_interop::harness::{ClientPeer, ClientSession, hex, start_client_session};
use opamp_interop::{Peers, remote_config};
use opamp_proto::RemoteConfigStatuses;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_reports_applies_json_config_and_refuses_yaml_without_loops()
-> Result<(), opamp_interop::Error> {
    let Some(peers) = Peers::locate()? else {
        return Ok(());
    };
    let json = remote_config(
        "settings.json",
        "application/json",
        r#"{"sampling_ratio": 0.25, "log_level": "info"}"#,
    );
    let ClientSession {
        server,
        mut peer,
        uid,
    } = start_client_session(
        &peers,
        ClientPeer::Python,
        "py-checkout",
        json.clone(),
        LIMIT,
    )
    .await?;

    // Its description is seen.
    let service = server
        .wait_for_agent(&uid, "the Python agent's description", LIMIT, |a| {
            a.identifying("service.name")
        })
        .await?;
    assert_eq!(service, "py-checkout");

    // The JSON config reaches it, and it says so.
    let offered = peer.wait_for_event("remote_config", LIMIT).await?;
    assert_eq!(offered["hash"], hex(&json.config_hash));
    assert!(
        offered["files"]["settings.json"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("sampling_ratio"))
    );
    let status = peer.wait_for_event("config_status", LIMIT).await?;
    assert_eq!(status["status"], "APPLIED");

    // Its status comes back: APPLIED with the hash, and the effective config it now runs.
    server
        .wait_for_agent(&uid, "APPLIED for the JSON config", LIMIT, |a| {
            (a.remote_config_state()
                == Some((
                    json.config_hash.to_vec(),
                    RemoteConfigStatuses::Applied as i32,
                )))
            .then_some(())
        })
        .await?;
    let record = server
        .wait_for_agent(&uid, "the effective config", LIMIT, |a| {
            a.effective_config.clone().map(|_| a.clone())
        })
        .await?;
    let effective = record.effective_config.expect("effective config");
    let file = &effective.config_map.expect("config map").config_map["settings.json"];
    assert!(String::from_utf8_lossy(&file.body).contains("sampling_ratio"));

    // A YAML config: the Python client cannot parse it and reports FAILED.
    let yaml = remote_config("settings.yaml", "text/yaml", "sampling_ratio: 0.5\n");
    server.offer_to_all(yaml.clone());
    let failed = peer
        .wait_for("FAILED for the YAML config", LIMIT, |e| {
            e["event"] == "config_status" && e["hash"] == hex(&yaml.config_hash)
        })
        .await?;
    assert_eq!(failed["status"], "FAILED");
    server
        .wait_for_agent(&uid, "FAILED for the YAML config", LIMIT, |a| {
            (a.remote_config_state()
                == Some((
                    yaml.config_hash.to_vec(),
                    RemoteConfigStatuses::Failed as i32,
                )))
            .then_some(())
        })
        .await?;

    // No request loop: over 5 s with a 1 s heartbeat, a handful of requests, not hundreds;
    // the YAML offer is not repeated once refused, and full state is not asked again.
    let window_start = Instant::now();
    peer.drain_for(Duration::from_secs(5)).await?;
    let record = server.agent(&uid).expect("recorded");
    let recent = record.messages_since(window_start);
    assert!(
        (1..=15).contains(&recent),
        "{recent} requests in 5 s with a 1 s heartbeat"
    );
    let offers_after_refusal = peer
        .events_of("remote_config")
        .iter()
        .filter(|e| e["hash"] == hex(&yaml.config_hash))
        .count();
    assert_eq!(
        offers_after_refusal, 1,
        "the refused YAML was offered again"
    );
    assert!(record.full_state_requests <= 1);
    let asked: usize = peer
        .events_of("response")
        .iter()
        .filter(|e| e["report_full_state"] == true)
        .count();
    assert!(asked <= 1, "ReportFullState asked {asked} times");

    peer.stop(Duration::from_secs(10)).await?;
    server.shutdown().await;
    Ok(())
}
