//! OpAMP end to end on real sockets: selector assignment (also for agents that connect
//! later), APPLIED tracking, no offer loop after FAILED, staged rollouts with halt, plain
//! HTTP agents, API-key admission.

mod common;

use std::time::Duration;

use common::{AgentSpec, Api, TestAgent, eventually, start};
use opamp_fleet_server::{FleetConfig, FleetServer};
use serde_json::{Value, json};

const YAML: &str = "receivers:\n  otlp:\n    protocols:\n      grpc: {}\nexporters:\n  debug: {}\n";

fn config_body(name: &str, selector: &str, body: &str, rollout: Value) -> Value {
    json!({
        "name": name,
        "selector": selector,
        "files": { "collector.yaml": { "content_type": "text/yaml", "body": body } },
        "rollout": rollout,
    })
}

async fn remote_status(api: &Api, uid: &str) -> Option<String> {
    let (status, a) = api.call("GET", &format!("/api/agents/{uid}"), None).await;
    if status != 200 {
        return None;
    }
    a["remote_config_status"]["status"]
        .as_str()
        .map(str::to_owned)
}

async fn wait_status(api: &Api, uid: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while remote_status(api, uid).await.as_deref() != Some(want) {
        if tokio::time::Instant::now() > deadline {
            let (_, a) = api.call("GET", &format!("/api/agents/{uid}"), None).await;
            panic!("timed out waiting for {uid} to report {want}: {a:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_configs_reach_matching_agents_including_late_ones() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let url = handle.opamp_ws_url();
    let prod = TestAgent::ws(
        &url,
        AgentSpec::new(&[
            ("service.name", "col"),
            ("environment", "prod"),
            ("region", "eu"),
        ]),
    )
    .await
    .unwrap();
    let dev = TestAgent::ws(
        &url,
        AgentSpec::new(&[("service.name", "col"), ("environment", "dev")]),
    )
    .await
    .unwrap();
    eventually("two agents", || async {
        (api.get("/api/summary").await["total"] == 2).then_some(())
    })
    .await;

    let (status, created) = api
        .call(
            "POST",
            "/api/configs",
            Some(config_body(
                "prod-eu",
                "environment=prod,region=eu",
                YAML,
                json!({}),
            )),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let hash = created["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64, "SHA-256 hex");
    wait_status(&api, &prod.uid(), "APPLIED").await;
    let detail = api.get(&format!("/api/agents/{}", prod.uid())).await;
    assert_eq!(detail["remote_config_status"]["hash"], hash.as_str());
    assert_eq!(detail["assigned_config"], "prod-eu");
    assert!(
        detail["effective_config"]["collector.yaml"]["body"]
            .as_str()
            .unwrap()
            .contains("otlp")
    );
    // The dev agent is not matched and got nothing.
    assert_eq!(dev.configs_received(), 0);
    assert!(api.get(&format!("/api/agents/{}", dev.uid())).await["assigned_config"].is_null());

    // An agent that connects later gets the configuration too.
    let late = TestAgent::ws(
        &url,
        AgentSpec::new(&[("environment", "prod"), ("region", "eu")]),
    )
    .await
    .unwrap();
    wait_status(&api, &late.uid(), "APPLIED").await;
    let rollout = api.get("/api/configs/prod-eu/rollout").await;
    assert_eq!(rollout["agents"].as_object().unwrap().len(), 2);
    assert_eq!(rollout["agents"][late.uid()]["phase"], "applied");

    // Filters of the agent list.
    let list = api.get("/api/agents?selector=environment%3Dprod").await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 2);
    let list = api.get("/api/agents?q=dev").await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);

    // Metrics reflect it.
    let (status, metrics, _) = api.raw("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("opamp_fleet_connected_agents{transport=\"websocket\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("opamp_fleet_remote_config_status{status=\"APPLIED\"} 2"),
        "{metrics}"
    );

    let prod_uid = prod.uid();
    prod.stop().await;
    eventually("prod agent offline", || async {
        (api.get(&format!("/api/agents/{prod_uid}")).await["status"] == "offline").then_some(())
    })
    .await;
    dev.stop().await;
    late.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_configs_are_not_offered_again() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let url = handle.opamp_ws_url();
    let spec = AgentSpec::new(&[("environment", "prod")]);
    let agent = TestAgent::ws(&url, spec.clone()).await.unwrap();
    eventually("agent", || async {
        (api.get("/api/summary").await["total"] == 1).then_some(())
    })
    .await;

    let (status, _) = api
        .call(
            "POST",
            "/api/configs",
            Some(config_body(
                "bad",
                "environment=prod",
                "FAIL: true\n",
                json!({}),
            )),
        )
        .await;
    assert_eq!(status, 201);
    wait_status(&api, &spec.uid(), "FAILED").await;
    let detail = api.get(&format!("/api/agents/{}", spec.uid())).await;
    assert!(
        detail["remote_config_status"]["error"]
            .as_str()
            .unwrap()
            .contains("FAIL marker")
    );
    assert_eq!(detail["rollout"]["phase"], "failed");
    assert_eq!(detail["failed_hashes"].as_array().unwrap().len(), 1);
    assert_eq!(agent.configs_received(), 1);

    // Reconnecting does not bring the failed configuration back.
    agent.kill();
    let again = TestAgent::ws(&url, spec.clone()).await.unwrap();
    eventually("agent back", || async {
        (api.get(&format!("/api/agents/{}", spec.uid())).await["status"] != "offline").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        again.configs_received(),
        0,
        "a FAILED config is not offered again"
    );

    // A fixed version is offered and applied.
    let (status, v) = api
        .call(
            "PUT",
            "/api/configs/bad",
            Some(config_body("bad", "environment=prod", YAML, json!({}))),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["version"], 2);
    wait_status(&api, &spec.uid(), "APPLIED").await;

    // A configuration pushed to the agent alone that fails: the fleet goes back to the
    // named configuration (the last good one) instead of insisting.
    let good_hash = v["hash"].as_str().unwrap().to_owned();
    let (status, offer) = api
        .call(
            "PUT",
            &format!("/api/agents/{}/config", spec.uid()),
            Some(json!({"body": "FAIL: again\n"})),
        )
        .await;
    assert_eq!(status, 200, "{offer}");
    let bad_hash = offer["hash"].as_str().unwrap().to_owned();
    eventually("override failed and rolled back", || async {
        let a = api.get(&format!("/api/agents/{}", spec.uid())).await;
        let failed = a["failed_hashes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == bad_hash.as_str());
        (failed
            && a["remote_config_status"]["hash"] == good_hash.as_str()
            && a["remote_config_status"]["status"] == "APPLIED")
            .then_some(())
    })
    .await;
    let received = again.configs_received();
    assert_eq!(received, 3, "v2, the override, v2 again");
    // Retry on demand: the override is offered once more (and fails again).
    let (status, _) = api
        .call(
            "POST",
            &format!("/api/agents/{}/config/retry", spec.uid()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    eventually("second attempt", || async {
        (again.configs_received() > received).then_some(())
    })
    .await;
    again.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rollout_goes_batch_by_batch_and_halts_on_failures() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let url = handle.opamp_ws_url();
    let mut agents = Vec::new();
    for i in 0..4 {
        let spec = AgentSpec::new(&[("environment", "stage"), ("index", &i.to_string())]);
        agents.push(TestAgent::ws(&url, spec).await.unwrap());
    }
    eventually("four agents", || async {
        (api.get("/api/summary").await["total"] == 4).then_some(())
    })
    .await;
    let policy = json!({"strategy": {"kind": "batch", "size": 2}, "max_failures": 0, "require_healthy": true});
    let (status, v) = api
        .call(
            "POST",
            "/api/configs",
            Some(config_body(
                "staged",
                "environment=stage",
                YAML,
                policy.clone(),
            )),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let rollout = eventually("completed rollout", || async {
        let r = api.get("/api/configs/staged/rollout").await;
        (r["state"] == "completed").then_some(r)
    })
    .await;
    let mut batches: Vec<u64> = rollout["agents"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["batch"].as_u64().unwrap())
        .collect();
    batches.sort_unstable();
    assert_eq!(batches, vec![1, 1, 2, 2]);

    // A new version that fails: the first batch fails and the rollout halts; the second
    // batch is never offered it.
    let (status, _) = api
        .call(
            "PUT",
            "/api/configs/staged",
            Some(config_body(
                "staged",
                "environment=stage",
                "FAIL: 1\n",
                policy,
            )),
        )
        .await;
    assert_eq!(status, 200);
    // It halts at the first failure (threshold 0); the second agent of the batch finishes
    // failing after that, and the second batch never starts.
    let r = eventually("halted rollout with both failures", || async {
        let r = api.get("/api/configs/staged/rollout").await;
        let phases: Vec<String> = r["agents"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p["phase"].as_str().unwrap().to_owned())
            .collect();
        let count = |x: &str| phases.iter().filter(|p| *p == x).count();
        (r["state"] == "halted" && count("failed") == 2 && count("pending") == 2).then_some(r)
    })
    .await;
    assert!(r["halt_reason"].as_str().unwrap().contains("failed"));
    let total_offers: usize = agents.iter().map(|a| a.configs_received()).sum();
    assert_eq!(total_offers, 4 + 2, "4 for v1, 2 for the failing v2");

    // Pause/resume errors and success.
    let (status, _) = api
        .call("POST", "/api/configs/staged/rollout/pause", None)
        .await;
    assert_eq!(status, 400, "a halted rollout cannot be paused");
    let (status, v) = api
        .call("POST", "/api/configs/staged/rollout/resume", None)
        .await;
    assert_eq!(status, 200, "{v}");
    let audit = api.get("/api/audit?limit=10").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..3],
        ["rollout.resume", "config.update", "config.create"]
    );
    for a in agents {
        a.stop().await;
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_agents_get_configs_on_their_next_poll() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let spec = AgentSpec::new(&[("environment", "edge")]);
    let agent = TestAgent::http(
        &handle.opamp_http_url(),
        spec.clone(),
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    eventually("http agent", || async {
        let a = api.get(&format!("/api/agents/{}", spec.uid())).await;
        (a["connection"]["transport"] == "http").then_some(())
    })
    .await;
    api.call(
        "POST",
        "/api/configs",
        Some(config_body("edge", "environment=edge", YAML, json!({}))),
    )
    .await;
    wait_status(&api, &spec.uid(), "APPLIED").await;
    let (_, metrics, _) = api.raw("GET", "/metrics", None).await;
    assert!(
        metrics.contains("opamp_fleet_connected_agents{transport=\"http\"} 1"),
        "{metrics}"
    );
    agent.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_need_a_valid_api_key_when_keys_are_configured() {
    let config = common::config(":memory:").with_agent_api_keys(vec!["s3cret".into()]);
    let handle = FleetServer::start(config).await.unwrap();
    let url = handle.opamp_ws_url();
    let err = TestAgent::ws(&url, AgentSpec::new(&[]))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");
    let mut wrong = AgentSpec::new(&[]);
    wrong.api_key = Some("nope".into());
    let err = TestAgent::http(&handle.opamp_http_url(), wrong, Duration::from_secs(1))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");
    let mut good = AgentSpec::new(&[]);
    good.api_key = Some("s3cret".into());
    let agent = TestAgent::ws(&url, good).await.unwrap();
    let api = Api::new(&handle);
    eventually("accepted agent", || async {
        (api.get("/api/summary").await["total"] == 1).then_some(())
    })
    .await;
    let (_, metrics, _) = api.raw("GET", "/metrics", None).await;
    assert!(
        metrics.contains("opamp_fleet_rejected_connections_total 2"),
        "{metrics}"
    );
    agent.stop().await;
    handle.shutdown().await;

    // Without keys on a public address the server refuses to start.
    let public = FleetConfig::default()
        .with_opamp_addr("0.0.0.0:0".parse().unwrap())
        .with_http_addr("127.0.0.1:0".parse().unwrap())
        .with_store(":memory:");
    let err = FleetServer::start(public).await.unwrap_err();
    assert!(err.to_string().contains("API keys"), "{err}");
}
