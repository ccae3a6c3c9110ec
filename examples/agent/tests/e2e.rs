//! The integrated agent against a real opamp-server on 127.0.0.1: description, health and
//! effective configuration reported; remote configurations applied to the file (APPLIED) or
//! refused (FAILED, file unchanged); restart on command; several agents in one process.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{LIMIT, TestServer, effective_text, eventually, yaml_config};
use opamp_example_agent::{InstanceOptions, RunOptions, run_agents, run_instance};
use opamp_server::proto::{AgentCapabilities, RemoteConfigStatuses};
use tokio::sync::watch;

fn agent_yaml(server_section: &str) -> String {
    format!(
        "extensions:
  opamp:
    server:
{server_section}
    agent_description:
      identifying_attributes:
        - key: service.name
          string_value: test-collector
        - key: environment
          string_value: ${{TEST_AGENT_ENVIRONMENT:-staging}}
    capabilities:
      reports_remote_config: true
      accepts_remote_config: true
      accepts_restart_command: true
    heartbeat_interval: 1s
receivers:
  otlp: {{}}
exporters:
  debug: {{}}
service:
  extensions: [opamp]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD_REMOTE: &str = "receivers:
  otlp: {}
exporters:
  otlp/tempo:
    endpoint: tempo.monitoring.svc:4317
service:
  extensions: [opamp]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/tempo]
";

const BAD_REMOTE: &str = "receivers:
  otlp: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/missing]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_applies_refuses_and_restarts() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!("      ws:\n        endpoint: {}", server.ws_url);
    let path = write(dir.path(), "agent.yaml", &agent_yaml(&section));
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = InstanceOptions::new("agent-0", &path).with_state_dir(dir.path().join("state"));
    let task = tokio::spawn(run_instance(options, stop_rx));

    // Description, health with one component per pipeline, effective configuration.
    let local_text = std::fs::read_to_string(&path).unwrap();
    let (conn, status) = server
        .wait_for("the initial report", |s| {
            s.health.as_ref().is_some_and(|h| h.healthy) && s.effective_config.is_some()
        })
        .await;
    assert!(status.has_capability(AgentCapabilities::ACCEPTS_REMOTE_CONFIG));
    assert_eq!(
        status
            .identifying_attribute("service.name")
            .and_then(|v| v.as_str()),
        Some("test-collector")
    );
    assert_eq!(
        status
            .identifying_attribute("environment")
            .and_then(|v| v.as_str()),
        Some("staging")
    );
    let health = status.health.as_ref().unwrap();
    assert!(health.component_health_map["pipeline:traces"].healthy);
    assert_eq!(
        effective_text(&status).as_deref(),
        Some(local_text.as_str())
    );

    // A good remote configuration: written to the file (with the OpAMP section kept).
    let good = yaml_config(GOOD_REMOTE);
    conn.offer_remote_config(good.clone()).unwrap();
    let (_, status) = server
        .wait_for("APPLIED", |s| {
            s.remote_config_status.as_ref().is_some_and(|r| {
                r.status == RemoteConfigStatuses::Applied as i32
                    && r.last_remote_config_hash == good.config_hash
            }) && effective_text(s).is_some_and(|t| t.contains("otlp/tempo"))
        })
        .await;
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("otlp/tempo"), "{written}");
    assert!(
        written.contains(&server.ws_url),
        "the OpAMP section is kept: {written}"
    );
    assert_eq!(effective_text(&status).as_deref(), Some(written.as_str()));
    // (APPLYING and APPLIED are set back to back here; the client sends only the latest.)
    assert!(
        server
            .log
            .statuses
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.status != RemoteConfigStatuses::Failed as i32),
        "nothing failed"
    );

    // A bad one: FAILED with the key, the file unchanged.
    let bad = yaml_config(BAD_REMOTE);
    conn.offer_remote_config(bad.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED", |s| {
            s.remote_config_status.as_ref().is_some_and(|r| {
                r.status == RemoteConfigStatuses::Failed as i32
                    && r.last_remote_config_hash == bad.config_hash
            })
        })
        .await;
    let message = &status.remote_config_status.as_ref().unwrap().error_message;
    assert!(
        message.contains("service.pipelines.traces.exporters[0]"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);

    // Restart: the client reconnects and reports again from the (rewritten) file.
    let connects = server.log.connects.load(Ordering::SeqCst);
    conn.restart().unwrap();
    eventually("a reconnection after the restart", || {
        (server.log.connects.load(Ordering::SeqCst) > connects).then_some(())
    })
    .await;
    server
        .wait_for("a report after the restart", |s| {
            effective_text(s).is_some_and(|t| t.contains("otlp/tempo"))
                && s.health.as_ref().is_some_and(|h| h.healthy)
        })
        .await;

    stop_tx.send(true).unwrap();
    tokio::time::timeout(LIMIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_transport() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!(
        "      http:\n        endpoint: {}\n        polling_interval: 200ms",
        server.http_url
    );
    let path = write(dir.path(), "agent.yaml", &agent_yaml(&section));
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run_instance(InstanceOptions::new("http", &path), stop_rx));
    let (conn, _) = server
        .wait_for("a report over plain HTTP", |s| s.health.is_some())
        .await;
    let good = yaml_config(GOOD_REMOTE);
    conn.offer_remote_config(good.clone()).unwrap();
    server
        .wait_for("APPLIED over plain HTTP", |s| {
            s.remote_config_status.as_ref().is_some_and(|r| {
                r.status == RemoteConfigStatuses::Applied as i32
                    && r.last_remote_config_hash == good.config_hash
            })
        })
        .await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(LIMIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_agents_in_one_process() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let section = format!("      ws:\n        endpoint: {}", server.ws_url);
    let path = write(dir.path(), "agent.yaml", &agent_yaml(&section));
    let state = dir.path().join("state");
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = RunOptions::new(&path).with_count(3).with_state_dir(&state);
    let task = tokio::spawn(run_agents(options, stop_rx));
    let uids = eventually("three agents", || {
        let uids: std::collections::BTreeSet<_> = server
            .server
            .connections()
            .iter()
            .filter(|c| c.status().health.is_some())
            .filter_map(|c| c.instance_uid())
            .collect();
        (uids.len() == 3).then_some(uids)
    })
    .await;
    // A remote configuration for one agent goes to that agent's own file.
    let conn = server
        .server
        .connection(uids.iter().next().unwrap())
        .unwrap();
    let good = yaml_config(GOOD_REMOTE);
    conn.offer_remote_config(good).unwrap();
    let written = eventually("one agent's file", || {
        (0..3)
            .map(|i| state.join(format!("agent-{i}/config.yaml")))
            .filter(|p| p.exists())
            .map(|p| std::fs::read_to_string(p).unwrap())
            .find(|t| t.contains("otlp/tempo"))
    })
    .await;
    assert!(written.contains("extensions"));
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("otlp/tempo"),
        "the shared file stays as it is"
    );
    stop_tx.send(true).unwrap();
    tokio::time::timeout(LIMIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // A restart of the process keeps the three identities.
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = RunOptions::new(&path).with_count(3).with_state_dir(&state);
    let task = tokio::spawn(run_agents(options, stop_rx));
    tokio::time::sleep(Duration::from_millis(10)).await;
    eventually("the same three agents back", || {
        let now: std::collections::BTreeSet<_> = server
            .server
            .connections()
            .iter()
            .filter(|c| !c.is_closed())
            .filter_map(|c| c.instance_uid())
            .collect();
        (now == uids).then_some(())
    })
    .await;
    stop_tx.send(true).unwrap();
    tokio::time::timeout(LIMIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    server.shutdown().await;
}
