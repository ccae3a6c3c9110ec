//! A restart of the supervisor loses nothing: the instance UID, the last good configuration
//! and the reported status are kept, and with the server unreachable the agent starts on the
//! last good configuration.

mod common;

use common::{
    Setup, TestServer, effective_text, free_port, healthy, hex, remote_status, sha256, yaml_config,
};
use opamp_server::proto::RemoteConfigStatuses;

const CONFIG_A: &str = "exporters:
  otlp/config-a:
    endpoint: a.example:4317
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/config-a]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_identity_and_last_good_config() {
    // First run: configuration A applied.
    let server = TestServer::start().await;
    let setup = Setup::new(&server.url, "", "");
    let supervisor = setup.start();
    let (conn, _) = server.wait_for("a healthy agent", healthy).await;
    let uid = conn.instance_uid().unwrap();
    let config_a = yaml_config(CONFIG_A);
    conn.offer_remote_config(config_a.clone()).unwrap();
    server
        .wait_for("A applied", |s| {
            remote_status(
                s,
                &config_a.config_hash,
                RemoteConfigStatuses::Applied as i32,
            )
        })
        .await;
    let effective_a = setup.effective_file();
    assert!(effective_a.contains("otlp/config-a"));
    supervisor.stop().await;
    server.shutdown().await;

    // Second run, the server unreachable: the agent runs configuration A anyway.
    let unreachable = format!("ws://127.0.0.1:{}/v1/opamp", free_port());
    setup.write_files(&unreachable, "", "");
    let supervisor = setup.start();
    let sha_a = hex(&sha256(effective_a.as_bytes()));
    setup
        .wait_agent("the agent on A without a server", |b| {
            b["config_sha256"] == sha_a.as_str()
        })
        .await;
    supervisor.stop().await;

    // Third run, a server again: same instance UID, A reported as applied and effective.
    let server = TestServer::start().await;
    setup.write_files(&server.url, "", "");
    let supervisor = setup.start();
    let (conn, status) = server
        .wait_for("the agent back", |s| {
            healthy(s) && effective_text(s).is_some_and(|t| t.contains("otlp/config-a"))
        })
        .await;
    assert_eq!(conn.instance_uid(), Some(uid), "the instance UID is kept");
    assert!(
        remote_status(
            &status,
            &config_a.config_hash,
            RemoteConfigStatuses::Applied as i32
        ),
        "{:?}",
        status.remote_config_status
    );
    supervisor.stop().await;
    server.shutdown().await;
}
