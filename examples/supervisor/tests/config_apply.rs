//! Remote configuration through the supervisor, on real sockets: a good configuration is
//! reported APPLYING then APPLIED with the new effective configuration; a bad one FAILED with
//! the reason, rolled back, and the agent healthy again; own telemetry offers become part of
//! the agent's configuration.

mod common;

use common::{Setup, TestServer, effective_text, healthy, hex, remote_status, sha256, yaml_config};
use opamp_server::proto::{
    ConnectionSettingsOffers, RemoteConfigStatuses, TelemetryConnectionSettings,
};

const GOOD: &str = "exporters:
  otlp/remote:
    endpoint: tempo.monitoring.svc:4317
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/remote]
";

const MARKED_BAD: &str = "fake_agent:
  fail: config marked bad by the test
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_config_applied_bad_config_rolled_back() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let supervisor = setup.start();

    let (conn, status) = server.wait_for("a healthy agent", healthy).await;
    let local = effective_text(&status).unwrap();
    assert!(local.contains("health_check"), "{local}");

    // A good configuration: APPLYING, then APPLIED once the agent is healthy on it.
    let good = yaml_config(GOOD);
    conn.offer_remote_config(good.clone()).unwrap();
    let (_, status) = server
        .wait_for("APPLIED", |s| {
            remote_status(s, &good.config_hash, RemoteConfigStatuses::Applied as i32) && healthy(s)
        })
        .await;
    let statuses = server.statuses();
    let applying = statuses.iter().position(|s| {
        s.status == RemoteConfigStatuses::Applying as i32
            && s.last_remote_config_hash == good.config_hash
    });
    let applied = statuses.iter().position(|s| {
        s.status == RemoteConfigStatuses::Applied as i32
            && s.last_remote_config_hash == good.config_hash
    });
    assert!(applying.is_some() && applying < applied, "{statuses:?}");
    let effective = effective_text(&status).unwrap();
    assert!(effective.contains("otlp/remote"), "{effective}");
    assert_eq!(setup.effective_file(), effective);
    // The agent runs that very file.
    let expected_sha = hex(&sha256(effective.as_bytes()));
    setup
        .wait_agent("the agent on the new config", |b| {
            b["config_sha256"] == expected_sha.as_str()
        })
        .await;
    let starts_before_bad = setup.starts().len();

    // A configuration the agent refuses: FAILED with its error output, rollback, healthy.
    let bad = yaml_config(&format!("{GOOD}{MARKED_BAD}"));
    conn.offer_remote_config(bad.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED", |s| {
            remote_status(s, &bad.config_hash, RemoteConfigStatuses::Failed as i32)
        })
        .await;
    let message = &status.remote_config_status.as_ref().unwrap().error_message;
    assert!(message.contains("exit status 1"), "{message}");
    assert!(
        message.contains("config marked bad by the test"),
        "the stderr tail: {message}"
    );
    assert!(
        message.contains(&format!(
            "rolled back to the remote configuration {}",
            hex(&good.config_hash)
        )),
        "{message}"
    );
    let (_, status) = server
        .wait_for("healthy again on the good config", |s| {
            healthy(s)
                && effective_text(s)
                    .is_some_and(|t| t.contains("otlp/remote") && !t.contains("marked bad"))
        })
        .await;
    assert_eq!(setup.effective_file(), effective_text(&status).unwrap());
    setup
        .wait_agent("the agent back on the good config", |b| {
            b["config_sha256"] == expected_sha.as_str()
        })
        .await;
    assert!(
        setup.starts().len() > starts_before_bad,
        "the agent was restarted on the good config"
    );

    // Not YAML at all: FAILED without touching the running agent.
    let starts = setup.starts().len();
    let broken = yaml_config("exporters: [unclosed\n");
    conn.offer_remote_config(broken.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED for invalid YAML", |s| {
            remote_status(s, &broken.config_hash, RemoteConfigStatuses::Failed as i32)
        })
        .await;
    assert!(
        status
            .remote_config_status
            .as_ref()
            .unwrap()
            .error_message
            .contains("invalid YAML"),
        "{:?}",
        status.remote_config_status
    );
    assert_eq!(setup.starts().len(), starts, "the agent was not restarted");
    assert!(healthy(&status));

    supervisor.stop().await;
    assert!(
        setup.agent_health().await.is_none(),
        "the agent is stopped with the supervisor"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_metrics_offer_adds_the_pipeline() {
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    conn.offer_connection_settings(ConnectionSettingsOffers {
        hash: vec![7; 32].into(),
        own_metrics: Some(TelemetryConnectionSettings {
            destination_endpoint: "http://127.0.0.1:4318/v1/metrics".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    let (_, status) = server
        .wait_for("the own-metrics pipeline", |s| {
            healthy(s)
                && effective_text(s).is_some_and(|t| {
                    t.contains("prometheus/own_metrics") && t.contains("metrics/own_metrics")
                })
        })
        .await;
    let text = effective_text(&status).unwrap();
    assert!(
        text.contains("metrics_endpoint: http://127.0.0.1:4318/v1/metrics"),
        "{text}"
    );
    let expected_sha = hex(&sha256(text.as_bytes()));
    setup
        .wait_agent("the agent with own metrics", |b| {
            b["config_sha256"] == expected_sha.as_str()
        })
        .await;
    supervisor.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_never_healthy_times_out_and_rolls_back() {
    let server = TestServer::start().await;
    let setup = Setup::with_overrides(&server.url, "", "", vec![("config_apply_timeout", "3s")]);
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    let unhealthy = yaml_config("fake_agent:\n  unhealthy: true\n");
    conn.offer_remote_config(unhealthy.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED after the timeout", |s| {
            remote_status(
                s,
                &unhealthy.config_hash,
                RemoteConfigStatuses::Failed as i32,
            )
        })
        .await;
    let message = &status.remote_config_status.as_ref().unwrap().error_message;
    assert!(
        message.contains("did not become healthy within 3s"),
        "{message}"
    );
    assert!(
        message.contains("rolled back to the local configuration"),
        "{message}"
    );
    server
        .wait_for("healthy on the local config", |s| {
            healthy(s) && effective_text(s).is_some_and(|t| !t.contains("unhealthy"))
        })
        .await;
    assert!(!setup.effective_file().contains("unhealthy"));
    supervisor.stop().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_by_sighup_keeps_the_process() {
    let server = TestServer::start().await;
    let setup = Setup::with_overrides(&server.url, "", "", vec![("reload", "sighup")]);
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    let pid = setup.wait_agent("the agent", |_| true).await["pid"].as_u64();

    let good = yaml_config(GOOD);
    conn.offer_remote_config(good.clone()).unwrap();
    server
        .wait_for("APPLIED", |s| {
            remote_status(s, &good.config_hash, RemoteConfigStatuses::Applied as i32)
        })
        .await;
    let expected_sha = hex(&sha256(setup.effective_file().as_bytes()));
    let answer = setup
        .wait_agent("the reloaded config", |b| {
            b["config_sha256"] == expected_sha.as_str()
        })
        .await;
    assert_eq!(answer["pid"].as_u64(), pid, "reloaded in place");
    assert_eq!(setup.starts().len(), 1);

    // The agent dies on reloading a bad config: FAILED, and restarted on the good one.
    let bad = yaml_config(&format!("{GOOD}{MARKED_BAD}"));
    conn.offer_remote_config(bad.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED", |s| {
            remote_status(s, &bad.config_hash, RemoteConfigStatuses::Failed as i32)
        })
        .await;
    let message = &status.remote_config_status.as_ref().unwrap().error_message;
    assert!(
        message.contains("config marked bad by the test"),
        "{message}"
    );
    let answer = setup
        .wait_agent("the agent back on the good config", |b| {
            b["config_sha256"] == expected_sha.as_str()
        })
        .await;
    assert_ne!(
        answer["pid"].as_u64(),
        pid,
        "a new process after the rollback"
    );
    supervisor.stop().await;
    server.shutdown().await;
}
