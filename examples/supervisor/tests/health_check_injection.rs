//! The injected health check belongs to the supervisor (its own extension ID, the endpoint and
//! path of `health_check_url`); the user's health checks are kept exactly as written, and a
//! user health check on the supervisor's port is refused with the reason instead of breaking
//! the agent. Real agent processes on real sockets.

mod common;

use common::{BASE, Setup, TestServer, free_port, get, healthy, remote_status, yaml_config};
use opamp_server::proto::RemoteConfigStatuses;
use opamp_supervisor::merge::HEALTH_CHECK_EXTENSION;

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_health_checks_are_kept_and_a_port_conflict_is_refused() {
    let server = TestServer::start().await;
    let own_port = free_port();
    let user_port = free_port();
    let url = leak(format!("http://127.0.0.1:{own_port}/status"));
    let setup = Setup::with_overrides(&server.url, "", "", vec![("health_check_url", url)]);
    // The user's own health check for Kubernetes probes: all interfaces, its own path.
    let base = format!(
        "{BASE}  extensions: [health_check/k8s]\nextensions:\n  health_check/k8s:\n    endpoint: 0.0.0.0:{user_port}\n    path: /healthz\nfake_agent:\n  start_log: {}\n",
        setup.path("starts.log").display()
    );
    std::fs::write(setup.path("base.yaml"), base).unwrap();
    let supervisor = setup.start();

    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    let effective: serde_json::Value = serde_norway::from_str(&setup.effective_file()).unwrap();
    let k8s = &effective["extensions"]["health_check/k8s"];
    assert_eq!(k8s["endpoint"], format!("0.0.0.0:{user_port}").as_str());
    assert_eq!(k8s["path"], "/healthz");
    let own = &effective["extensions"][HEALTH_CHECK_EXTENSION];
    assert_eq!(own["endpoint"], format!("127.0.0.1:{own_port}").as_str());
    assert_eq!(own["path"], "/status");
    let enabled = effective["service"]["extensions"].as_array().unwrap();
    assert_eq!(enabled.len(), 2, "{enabled:?}");
    // Both answer, each on its own path.
    let user = get(&format!("127.0.0.1:{user_port}"), "/healthz").await;
    assert_eq!(user.map(|r| r.0), Some(200));
    let ours = get(&format!("127.0.0.1:{own_port}"), "/status").await;
    assert_eq!(ours.map(|r| r.0), Some(200));

    // A remote configuration that enables another health check on another port: applied.
    let other_port = free_port();
    let another = yaml_config(&format!(
        "extensions:\n  health_check: {{endpoint: \"127.0.0.1:{other_port}\", path: /h}}\nservice:\n  extensions: [health_check/k8s, health_check]\n"
    ));
    conn.offer_remote_config(another.clone()).unwrap();
    server
        .wait_for("APPLIED", |s| {
            remote_status(
                s,
                &another.config_hash,
                RemoteConfigStatuses::Applied as i32,
            ) && healthy(s)
        })
        .await;
    let answer = get(&format!("127.0.0.1:{other_port}"), "/h").await;
    assert_eq!(answer.map(|r| r.0), Some(200));
    let starts = setup.starts().len();

    // One on the supervisor's port: refused with the reason, never given to the agent.
    let conflict = yaml_config(&format!(
        "extensions:\n  health_check/mine: {{endpoint: \"0.0.0.0:{own_port}\"}}\nservice:\n  extensions: [health_check/mine]\n"
    ));
    conn.offer_remote_config(conflict.clone()).unwrap();
    let (_, status) = server
        .wait_for("FAILED", |s| {
            remote_status(
                s,
                &conflict.config_hash,
                RemoteConfigStatuses::Failed as i32,
            )
        })
        .await;
    let message = &status.remote_config_status.as_ref().unwrap().error_message;
    assert!(
        message.contains(&format!(
            "extensions.health_check/mine listens on 0.0.0.0:{own_port}"
        )),
        "{message}"
    );
    assert_eq!(setup.starts().len(), starts, "the agent was not restarted");
    server.wait_for("still healthy", healthy).await;
    supervisor.stop().await;
    server.shutdown().await;
}

#[test]
fn a_base_config_with_a_health_check_on_the_supervisor_port_is_refused_at_start() {
    let setup = Setup::new("ws://127.0.0.1:1/v1/opamp", "", "");
    let base = format!(
        "{BASE}  extensions: [health_check]\nextensions:\n  health_check:\n    endpoint: 0.0.0.0:{}\n",
        setup.health_port
    );
    std::fs::write(setup.path("base.yaml"), base).unwrap();
    let err = opamp_supervisor::SupervisorConfig::load(
        &setup.path("supervisor.yaml"),
        &opamp_example_agent::yaml::env::process_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("agent.base_config"), "{err}");
    assert!(err.contains("extensions.health_check listens on"), "{err}");
}
