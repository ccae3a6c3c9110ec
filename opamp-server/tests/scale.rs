//! 1,000 concurrent WebSocket agents on one server, on a small runtime.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use opamp_server::ServerSettings;
use opamp_server::proto::{AgentConfigFile, AgentConfigMap, AgentRemoteConfig, InstanceUid};
use opamp_transport::codec::Limits;
use opamp_transport::ws::{WsConfig, WsConnectOptions};
use tokio::sync::Barrier;

const AGENTS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_websocket_agents() {
    let settings = ServerSettings::default()
        .with_max_message_size(64 * 1024)
        .with_ws_read_buffer_size(1024);
    let recorder = Recorder::new();
    let (server, addr) = start(settings, recorder.clone()).await;
    let client_config = WsConfig::default()
        .with_limits(Limits::default().with_max_message_size(64 * 1024))
        .with_read_buffer_size(1024);

    // Every agent connects and reports, then waits for the fleet-wide config.
    let connected = Arc::new(Barrier::new(AGENTS + 1));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(AGENTS);
    for _ in 0..AGENTS {
        let connected = Arc::clone(&connected);
        let options = WsConnectOptions::default().with_config(client_config);
        tasks.push(tokio::spawn(async move {
            let uid = InstanceUid::new_v7();
            let mut ws = ws_agent_with(addr, options).await;
            let first = exchange(&mut ws, &full_status(uid, 0)).await;
            assert_eq!(first.instance_uid, uid.to_bytes());
            let ack = exchange(&mut ws, &heartbeat(uid, 1)).await;
            assert_eq!(ack.flags, 0);
            connected.wait().await;
            let pushed = recv(&mut ws).await;
            let config = pushed.remote_config.expect("fleet config");
            assert_eq!(pushed.instance_uid, uid.to_bytes());
            // Report it applied: no further offer.
            let mut applied = heartbeat(uid, 2);
            applied.remote_config_status = Some(opamp_server::proto::RemoteConfigStatus {
                last_remote_config_hash: config.config_hash.clone(),
                status: opamp_server::proto::RemoteConfigStatuses::Applied as i32,
                error_message: String::new(),
            });
            let ack = exchange(&mut ws, &applied).await;
            assert!(ack.remote_config.is_none());
            ws
        }));
    }
    tokio::time::timeout(LIMIT * 4, connected.wait())
        .await
        .expect("agents did not all connect");
    let connect_time = started.elapsed();
    assert_eq!(server.connection_count(), AGENTS);

    let config = AgentRemoteConfig {
        config: Some(AgentConfigMap {
            config_map: [(
                "collector.yaml".to_owned(),
                AgentConfigFile {
                    body: "receivers: {otlp: {}}\n".repeat(20).into(),
                    content_type: "text/yaml".into(),
                },
            )]
            .into(),
        }),
        config_hash: Default::default(),
    };
    let push_started = Instant::now();
    let report = server.offer_remote_config_to_all(config);
    let push_time = push_started.elapsed();
    assert_eq!(report.framed, AGENTS);

    let mut agents = Vec::with_capacity(AGENTS);
    for task in tasks {
        agents.push(
            tokio::time::timeout(LIMIT * 4, task)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    eprintln!(
        "{AGENTS} agents connected in {connect_time:?}; fleet-wide offer queued in {push_time:?}, \
         delivered and acknowledged in {:?}",
        push_started.elapsed()
    );
    assert!(!recorder.saw_overlap());
    tokio::time::timeout(LIMIT * 2, server.shutdown())
        .await
        .expect("shutdown");
    assert_eq!(
        recorder.count(|e| matches!(e, Event::Closed { .. })),
        AGENTS
    );
    drop(agents);
}
