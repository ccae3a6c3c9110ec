//! Every JSON API endpoint, with bad input answered by a clear 4xx and nothing changed.

mod common;

use common::{AgentSpec, Api, TestAgent, eventually, start};
use opamp_fleet_server::FleetServer;
use serde_json::{Value, json};

const YAML: &str = "receivers:\n  otlp: {}\n";

fn cfg(name: &str, selector: &str) -> Value {
    json!({
        "name": name,
        "selector": selector,
        "priority": 1,
        "description": "test",
        "files": { "": { "content_type": "text/yaml", "body": YAML } },
    })
}

async fn audit_len(api: &Api) -> usize {
    api.get("/api/audit?limit=1000").await["entries"]
        .as_array()
        .unwrap()
        .len()
}

async fn expect_error(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
    kind: &str,
) {
    let (got, v) = api.call(method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {v}");
    assert_eq!(v["kind"], kind, "{method} {path}: {v}");
    assert!(!v["error"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_endpoints_and_bad_input() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);

    // Create, list, get, validate.
    let (s, c) = api
        .call(
            "POST",
            "/api/configs",
            Some(cfg("prod", "environment=prod")),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["version"], 1);
    assert_eq!(c["updated_by"], "local");
    let list = api.get("/api/configs").await;
    assert_eq!(list["configs"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/api/configs/prod").await["hash"], c["hash"]);
    let (s, v) = api
        .call("POST", "/api/validate", Some(json!({"files": {"a.json": {"content_type": "application/json", "body": "{\"a\":1}"}}})))
        .await;
    assert_eq!((s, v["valid"].as_bool()), (200, Some(true)));
    assert!(
        api.get("/api/rollouts").await["rollouts"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    assert_eq!(
        api.get("/api/configs/prod/rollout").await["state"],
        "completed"
    );

    let before = audit_len(&api).await;
    // Bad input: nothing changes.
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(cfg("prod", "")),
        409,
        "config_exists",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(cfg("bad name", "")),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(cfg("x", "env in prod")),
        400,
        "invalid_config",
    )
    .await;
    let mut bad_yaml = cfg("y", "");
    bad_yaml["files"][""]["body"] = json!("a: [1, 2\n");
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(bad_yaml.clone()),
        400,
        "invalid_config",
    )
    .await;
    let mut bad_json = cfg("z", "");
    bad_json["files"][""] = json!({"content_type": "application/json", "body": "{oops"});
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(bad_json),
        400,
        "invalid_config",
    )
    .await;
    let mut bad_policy = cfg("w", "");
    bad_policy["rollout"] = json!({"strategy": {"kind": "percent", "percent": 0}});
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(bad_policy),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(json!({"files": {}})),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs",
        Some(json!({"name": "q", "files": {}, "bogus": 1})),
        400,
        "invalid_body",
    )
    .await;
    let (s, _, _) = api
        .raw("POST", "/api/configs", Some("{not json".into()))
        .await;
    assert_eq!(s, 400);
    bad_yaml["name"] = json!("prod");
    expect_error(
        &api,
        "PUT",
        "/api/configs/prod",
        Some(bad_yaml),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        "/api/configs/nope",
        Some(cfg("nope", "")),
        404,
        "unknown_config",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        "/api/configs/prod",
        Some(cfg("other", "")),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "GET",
        "/api/configs/nope",
        None,
        404,
        "unknown_config",
    )
    .await;
    expect_error(
        &api,
        "GET",
        "/api/configs/nope/rollout",
        None,
        404,
        "unknown_config",
    )
    .await;
    expect_error(
        &api,
        "DELETE",
        "/api/configs/nope",
        None,
        404,
        "unknown_config",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs/nope/rollout/pause",
        None,
        404,
        "unknown_config",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/configs/prod/rollout/resume",
        None,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        "/api/validate",
        Some(json!({"files": {"": {"body": "a: ["}}})),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "GET",
        "/api/agents?selector=a%20b%3Dc",
        None,
        400,
        "invalid_selector",
    )
    .await;
    expect_error(
        &api,
        "GET",
        "/api/agents?status=sleepy",
        None,
        400,
        "invalid_request",
    )
    .await;
    expect_error(&api, "GET", "/api/nothing", None, 404, "not_found").await;
    assert_eq!(
        audit_len(&api).await,
        before,
        "refused requests are not audited"
    );
    assert_eq!(api.get("/api/configs/prod").await["version"], 1);
    assert_eq!(
        api.get("/api/configs").await["configs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Update (selector only: same version), then new files (new version), then delete.
    let mut upd = cfg("prod", "environment=production");
    let (s, v) = api
        .call("PUT", "/api/configs/prod", Some(upd.clone()))
        .await;
    assert_eq!((s, v["version"].as_u64()), (200, Some(1)));
    upd["files"][""]["body"] = json!("receivers:\n  otlp:\n    protocols: {}\n");
    let (s, v) = api.call("PUT", "/api/configs/prod", Some(upd)).await;
    assert_eq!((s, v["version"].as_u64()), (200, Some(2)));
    let (s, _) = api
        .call("POST", "/api/configs/prod/rollout/pause", None)
        .await;
    assert!(
        s == 200 || s == 400,
        "a rollout without agents may already be completed"
    );
    let (s, _) = api.call("DELETE", "/api/configs/prod", None).await;
    assert_eq!(s, 200);
    let entries = api.get("/api/audit").await["entries"].clone();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.starts_with(&["config.delete"]), "{actions:?}");
    assert!(actions.contains(&"config.update") && actions.contains(&"config.create"));
    let update = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "config.update" && e["details"].as_str().unwrap().contains("version 2")
        })
        .unwrap();
    assert_ne!(update["old_hash"], update["new_hash"]);
    let (s, page) = api.call("GET", "/api/audit?limit=1", None).await;
    assert_eq!((s, page["entries"].as_array().unwrap().len()), (200, 1));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_endpoints_and_bad_input() {
    let handle = start(":memory:").await;
    let api = Api::new(&handle);
    let mut spec = AgentSpec::new(&[("service.name", "col"), ("environment", "prod")]);
    spec.healthy = false;
    let agent = TestAgent::ws(&handle.opamp_ws_url(), spec.clone())
        .await
        .unwrap();
    let uid = spec.uid();
    eventually("agent", || async {
        (api.get("/api/summary").await["total"] == 1).then_some(())
    })
    .await;
    let summary = api.get("/api/summary").await;
    assert_eq!(
        (summary["unhealthy"].as_u64(), summary["websocket"].as_u64()),
        (Some(1), Some(1))
    );

    let list = api.get("/api/agents").await;
    assert_eq!(list["agents"][0]["instance_uid"], uid.as_str());
    assert_eq!(list["agents"][0]["status"], "unhealthy");
    let d = api.get(&format!("/api/agents/{uid}")).await;
    assert_eq!(d["identifying"]["service.name"], "col");
    assert_eq!(d["non_identifying"]["os.type"], "linux");
    assert_eq!(d["health"]["last_error"], "exporter down");
    assert_eq!(d["health"]["components"]["receiver/otlp"]["healthy"], true);
    assert_eq!(d["connection"]["transport"], "websocket");
    assert!(
        d["capability_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "ACCEPTS_RESTART_COMMAND")
    );

    let before = audit_len(&api).await;
    let unknown = "01234567-89ab-7def-8123-456789abcdef";
    expect_error(
        &api,
        "GET",
        &format!("/api/agents/{unknown}"),
        None,
        404,
        "unknown_agent",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        &format!("/api/agents/{unknown}/config"),
        Some(json!({"body": YAML})),
        404,
        "unknown_agent",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{unknown}/restart"),
        None,
        404,
        "unknown_agent",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        &format!("/api/agents/{uid}/config"),
        Some(json!({"body": "a: [1"})),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        &format!("/api/agents/{uid}/config"),
        Some(json!({"body": "{", "content_type": "application/json"})),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        &format!("/api/agents/{uid}/config"),
        Some(json!({"body": "a", "content_type": "text/plain"})),
        400,
        "invalid_config",
    )
    .await;
    expect_error(
        &api,
        "PUT",
        &format!("/api/agents/{uid}/config"),
        Some(json!({})),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "DELETE",
        &format!("/api/agents/{uid}/config"),
        None,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/connection-settings"),
        Some(json!({})),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/connection-settings"),
        Some(json!({"opamp": {"destination_endpoint": "ftp://x"}})),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/connection-settings"),
        Some(json!({"own_traces": {"destination_endpoint": "https://c:4318/v1/traces"}})),
        409,
        "not_supported",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/connection-settings"),
        Some(json!({"opamp": {"rotate_client_certificate": true}})),
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/custom-message"),
        Some(json!({"capability": "com.example.other", "type": "x"})),
        409,
        "not_supported",
    )
    .await;
    expect_error(
        &api,
        "DELETE",
        &format!("/api/agents/{uid}"),
        None,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        audit_len(&api).await,
        before,
        "refused requests are not audited"
    );
    assert_eq!(agent.configs_received(), 0, "nothing reached the agent");

    // The real actions.
    let (s, offer) = api
        .call(
            "PUT",
            &format!("/api/agents/{uid}/config"),
            Some(json!({"body": YAML, "file_name": "c.yaml"})),
        )
        .await;
    assert_eq!(s, 200, "{offer}");
    eventually("APPLIED", || async {
        (api.get(&format!("/api/agents/{uid}")).await["remote_config_status"]["status"]
            == "APPLIED")
            .then_some(())
    })
    .await;
    let (s, _) = api
        .call("POST", &format!("/api/agents/{uid}/restart"), None)
        .await;
    assert_eq!(s, 200);
    eventually("restart command", || async {
        (agent.restarts() == 1).then_some(())
    })
    .await;
    let (s, _) = api
        .call("POST", &format!("/api/agents/{uid}/full-state"), None)
        .await;
    assert_eq!(s, 200);
    let (s, v) = api
        .call("POST", &format!("/api/agents/{uid}/connection-settings"),
            Some(json!({"opamp": {"heartbeat_interval_seconds": 15}, "own_metrics": {"destination_endpoint": "http://127.0.0.1:4318/v1/metrics"}})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hash"].as_str().unwrap().len(), 64);
    let (s, v) = api
        .call("POST", &format!("/api/agents/{uid}/custom-message"),
            Some(json!({"capability": "io.opentelemetry.custom.health", "type": "get_health", "data": "{}"})))
        .await;
    assert_eq!(s, 200, "{v}");
    eventually("agent got settings and message", || async {
        let seen = agent.seen.lock().unwrap();
        let cs = seen
            .messages
            .iter()
            .find_map(|m| m.connection_settings.clone());
        let cm = seen.messages.iter().any(|m| {
            m.custom_message
                .as_ref()
                .is_some_and(|c| c.r#type == "get_health")
        });
        cs.filter(|cs| {
            cs.opamp.as_ref().is_some_and(|o| {
                o.heartbeat_interval_seconds == 15 && o.destination_endpoint.starts_with("ws://")
            }) && cs.own_metrics.is_some()
                && cm
        })
        .map(|_| ())
    })
    .await;
    let (s, _) = api
        .call("POST", &format!("/api/agents/{uid}/config/retry"), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .call("DELETE", &format!("/api/agents/{uid}/config"), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        api.get("/api/assignments")
            .await
            .as_object()
            .unwrap()
            .is_empty()
    );
    let actions: Vec<String> = api.get("/api/audit").await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for a in [
        "agent.config.set",
        "agent.restart",
        "agent.full_state",
        "agent.connection_settings",
        "agent.custom_message",
        "agent.config.retry",
        "agent.config.clear",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }

    // Offline: actions need a connection; then the agent can be forgotten.
    agent.stop().await;
    eventually("offline", || async {
        (api.get(&format!("/api/agents/{uid}")).await["status"] == "offline").then_some(())
    })
    .await;
    expect_error(
        &api,
        "POST",
        &format!("/api/agents/{uid}/restart"),
        None,
        409,
        "not_connected",
    )
    .await;
    let (s, _) = api
        .call("DELETE", &format!("/api/agents/{uid}"), None)
        .await;
    assert_eq!(s, 200);
    expect_error(
        &api,
        "GET",
        &format!("/api/agents/{uid}"),
        None,
        404,
        "unknown_agent",
    )
    .await;

    // The event stream and the page are served.
    let (s, _, headers) = api.raw("GET", "/", None).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (s, js, _) = api.raw("GET", "/assets/app.js", None).await;
    assert!(s == 200 && js.contains("EventSource"));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_credentials_when_configured() {
    let config = common::config(":memory:")
        .with_admin("ops", Some("pw".into()))
        .with_api_token(Some("tok".into()));
    let handle = FleetServer::start(config).await.unwrap();
    let anon = Api::new(&handle);
    let (s, _, headers) = anon.raw("GET", "/api/summary", None).await;
    assert_eq!(s, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let (s, _, _) = anon.raw("GET", "/metrics", None).await;
    assert_eq!(s, 401);
    let bearer = Api::new(&handle).with_auth("Bearer tok");
    assert_eq!(bearer.get("/api/summary").await["total"], 0);
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:pw")
    );
    let ops = Api::new(&handle).with_auth(&basic);
    let (s, _) = ops.call("POST", "/api/configs", Some(cfg("c", ""))).await;
    assert_eq!(s, 201);
    assert_eq!(ops.get("/api/audit").await["entries"][0]["actor"], "ops");
    let wrong = Api::new(&handle).with_auth(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops:no")
    ));
    let (s, _, _) = wrong.raw("GET", "/", None).await;
    assert_eq!(s, 401);
    handle.shutdown().await;

    let public = common::config(":memory:").with_http_addr("0.0.0.0:0".parse().unwrap());
    let err = FleetServer::start(public).await.unwrap_err();
    assert!(err.to_string().contains("admin-password"), "{err}");
}
