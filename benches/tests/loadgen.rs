//! The load generator against the minimal server, in-process and small, so neither rots.

use std::net::SocketAddr;
use std::time::Duration;

use opamp_benches::loadgen::{self, Config, Mode, ServerPid};
use opamp_benches::minimal_server::MinimalServer;
use opamp_server::ServerSettings;

async fn minimal() -> MinimalServer {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    MinimalServer::start(
        ServerSettings::default().with_heartbeat_interval(Some(Duration::from_secs(1))),
        any,
        any,
    )
    .await
    .expect("minimal server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_twenty_websocket_agents() {
    let server = minimal().await;
    let report = loadgen::run(Config {
        mode: Mode::Hold,
        url: server.ws_url(),
        agents: 20,
        heartbeat: Duration::from_millis(200),
        duration: Duration::from_secs(1),
        server_pid: ServerPid::Pid(std::process::id()),
        ..Config::default()
    })
    .await
    .expect("hold runs");
    println!("{}", report.values);
    assert_eq!(report.get("connected"), Some(20.0));
    assert_eq!(report.get("connect_failures"), Some(0.0));
    assert_eq!(report.get("still_connected"), Some(20.0));
    // 20 agents × 1 s / 200 ms ≈ 100 heartbeat replies; allow a slow machine.
    assert!(
        report.get("hold_replies").unwrap_or(0.0) >= 20.0,
        "{}",
        report.values
    );
    assert!(report.get("connect_server_rss_after").is_some());
    // The agents are gone at the end (the server notices each closed socket).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.server.connection_count() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.server.connection_count(),
        0,
        "agents disconnected at the end"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_to_twenty_agents_over_both_transports() {
    let server = minimal().await;
    for url in [
        server.ws_url(),
        server.ws_url().replacen("ws://", "http://", 1),
    ] {
        let report = loadgen::run(Config {
            mode: Mode::Fanout,
            url,
            agents: 20,
            heartbeat: Duration::from_millis(200),
            duration: Duration::from_secs(20),
            push_url: Some(server.push_url()),
            applied_url: Some(server.applied_url()),
            pushes: 2,
            ..Config::default()
        })
        .await
        .expect("fanout runs");
        println!("{}", report.values);
        let received = report.values["fanout_received_ms"]
            .as_array()
            .expect("list");
        let applied = report.values["fanout_applied_ms"].as_array().expect("list");
        assert_eq!(received.len(), 2);
        assert_eq!(applied.len(), 2);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_throughput_over_both_transports() {
    let server = minimal().await;
    for url in [
        server.ws_url(),
        server.ws_url().replacen("ws://", "http://", 1),
    ] {
        let report = loadgen::run(Config {
            mode: Mode::Throughput,
            url,
            agents: 4,
            duration: Duration::from_secs(1),
            server_pid: ServerPid::Pid(std::process::id()),
            ..Config::default()
        })
        .await
        .expect("throughput runs");
        println!("{}", report.values);
        assert!(
            report.get("messages").unwrap_or(0.0) > 10.0,
            "{}",
            report.values
        );
        assert!(report.get("latency_p99_ms").is_some());
        assert!(report.get("server_cpu_s_per_100k").is_some());
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_agents_come_back_after_a_restart() {
    // The "restart" closes every connection: the server's shutdown and a fresh server on the
    // same port, driven from a helper task when the restart command runs.
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let first = MinimalServer::start(ServerSettings::default(), any, any)
        .await
        .expect("starts");
    let addr = first.opamp_addr;
    let marker = std::env::temp_dir().join(format!("loadgen-storm-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let restart_cmd = format!("touch {}", marker.display());
    let watcher = {
        let marker = marker.clone();
        tokio::spawn(async move {
            while !marker.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            first.shutdown().await;
            MinimalServer::start(ServerSettings::default(), addr, any)
                .await
                .expect("restarts on the same port")
        })
    };
    let report = loadgen::run(Config {
        mode: Mode::Storm,
        url: format!("ws://{addr}/v1/opamp"),
        agents: 20,
        heartbeat: Duration::from_secs(1),
        duration: Duration::from_secs(30),
        restart_cmd: Some(restart_cmd),
        ..Config::default()
    })
    .await
    .expect("storm runs");
    println!("{}", report.values);
    assert_eq!(report.get("storm_back"), Some(20.0));
    assert!(report.get("storm_peak_reconnects_per_s").unwrap_or(0.0) >= 1.0);
    let second = watcher.await.expect("restarted");
    let _ = std::fs::remove_file(&marker);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_connect() {
    let server = minimal().await;
    let report = loadgen::run(Config {
        mode: Mode::IdleClients,
        url: server.ws_url(),
        agents: 10,
        duration: Duration::from_millis(200),
        ..Config::default()
    })
    .await
    .expect("idle-clients runs");
    println!("{}", report.values);
    assert_eq!(report.get("clients_connected"), Some(10.0));
    assert!(report.get("client_rss_each_bytes").is_some());
    server.shutdown().await;
}
