//! Stop the server, start it again on the same store: agents (offline, with their last
//! known state), configurations, rollouts and the audit log are all still there, and a
//! returning agent is recognised.

mod common;

use common::{AgentSpec, Api, TestAgent, eventually};
use opamp_fleet_server::FleetServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("fleet.sqlite");
    let store = store.to_str().unwrap();
    let spec = AgentSpec::new(&[("service.name", "col"), ("environment", "prod")]);
    let uid = spec.uid();

    let (hash, audit_before) = {
        let handle = FleetServer::start(common::config(store)).await.unwrap();
        let api = Api::new(&handle);
        let agent = TestAgent::ws(&handle.opamp_ws_url(), spec.clone())
            .await
            .unwrap();
        let (s, c) = api
            .call("POST", "/api/configs", Some(json!({
                "name": "prod",
                "selector": "environment=prod",
                "files": {"collector.yaml": {"content_type": "text/yaml", "body": "receivers:\n  otlp: {}\n"}},
                "rollout": {"strategy": {"kind": "batch", "size": 5}, "max_failures": 2}
            })))
            .await;
        assert_eq!(s, 201);
        eventually("APPLIED", || async {
            (api.get(&format!("/api/agents/{uid}")).await["remote_config_status"]["status"]
                == "APPLIED")
                .then_some(())
        })
        .await;
        let audit = api.get("/api/audit").await["entries"]
            .as_array()
            .unwrap()
            .len();
        agent.kill(); // no goodbye: the shutdown marks it offline
        handle.shutdown().await;
        (c["hash"].as_str().unwrap().to_owned(), audit)
    };

    let handle = FleetServer::start(common::config(store)).await.unwrap();
    let api = Api::new(&handle);
    let a = api.get(&format!("/api/agents/{uid}")).await;
    assert_eq!(a["status"], "offline");
    assert_eq!(a["identifying"]["service.name"], "col");
    assert_eq!(a["remote_config_status"]["status"], "APPLIED");
    assert_eq!(a["remote_config_status"]["hash"], hash.as_str());
    assert!(
        a["effective_config"]["collector.yaml"]["body"]
            .as_str()
            .unwrap()
            .contains("otlp")
    );
    assert_eq!(a["offered"]["hash"], hash.as_str());
    let c = api.get("/api/configs/prod").await;
    assert_eq!(c["hash"], hash.as_str());
    assert_eq!(c["rollout"]["max_failures"], 2);
    let r = api.get("/api/configs/prod/rollout").await;
    assert_eq!(r["state"], "completed");
    assert_eq!(r["agents"][&uid]["phase"], "applied");
    assert_eq!(
        api.get("/api/audit").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        audit_before
    );
    assert_eq!(api.get("/api/summary").await["offline"], 1);

    // The agent comes back: recognised, and with the hash it already runs nothing is resent
    // beyond the one offer of its new connection.
    let agent = TestAgent::ws(&handle.opamp_ws_url(), spec.clone())
        .await
        .unwrap();
    eventually("back online", || async {
        (api.get(&format!("/api/agents/{uid}")).await["status"] == "healthy").then_some(())
    })
    .await;
    assert_eq!(api.get("/api/summary").await["total"], 1);
    agent.stop().await;
    handle.shutdown().await;
}
