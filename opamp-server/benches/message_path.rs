//! The per-message path of the server without sockets: decode a WebSocket payload, update the
//! agent's state, build the reply, encode it; and the shared encoding of a fleet-wide send.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use opamp_server::PreparedMessage;
use opamp_server::proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentDescription, AgentRemoteConfig,
    AgentToServer, ComponentHealth, EffectiveConfig, InstanceUid, ServerToAgent,
};
use opamp_server::state::{AgentState, StateConfig};
use opamp_transport::codec::ws::decode_ws_message_bytes;
use opamp_transport::codec::{Limits, encode_ws_message};

fn caps() -> u64 {
    (AgentCapabilities::REPORTS_STATUS
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_HEALTH
        | AgentCapabilities::REPORTS_HEARTBEAT)
        .bits()
}

fn full_status(uid: InstanceUid, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid.to_bytes(),
        sequence_num: seq,
        capabilities: caps(),
        agent_description: Some(
            AgentDescription::builder()
                .service_name("otel-collector")
                .service_version("0.120.0")
                .identifying("environment", "production")
                .identifying("region", "eu-west-1")
                .os_type("linux")
                .host_name("node-17")
                .build(),
        ),
        health: Some(ComponentHealth {
            healthy: true,
            status: "ok".into(),
            ..Default::default()
        }),
        effective_config: Some(EffectiveConfig {
            config_map: Some(config_map(2_000)),
        }),
        ..Default::default()
    }
}

fn config_map(size: usize) -> AgentConfigMap {
    AgentConfigMap {
        config_map: [(
            "collector.yaml".to_owned(),
            AgentConfigFile {
                body: "x".repeat(size).into(),
                content_type: "text/yaml".into(),
            },
        )]
        .into(),
    }
}

/// One message through the whole sans-IO path.
fn round(state: &mut AgentState, payload: bytes::Bytes, limits: &Limits) -> bytes::Bytes {
    let msg: AgentToServer = decode_ws_message_bytes(payload, limits).unwrap();
    state.handle_message(&msg, Instant::now()).unwrap();
    let reply: ServerToAgent = state.respond(None);
    encode_ws_message(&reply, limits).unwrap()
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let config = Arc::new(StateConfig::default());
    let uid = InstanceUid::new_v7();

    c.bench_function("heartbeat: decode + state + reply + encode", |b| {
        let mut state = AgentState::new(Arc::clone(&config), Instant::now());
        round(
            &mut state,
            encode_ws_message(&full_status(uid, 0), &limits).unwrap(),
            &limits,
        );
        let mut seq = 1;
        b.iter_batched(
            || {
                seq += 1;
                let hb = AgentToServer {
                    instance_uid: uid.to_bytes(),
                    sequence_num: seq,
                    capabilities: caps(),
                    ..Default::default()
                };
                encode_ws_message(&hb, &limits).unwrap()
            },
            |payload| black_box(round(&mut state, payload, &limits)),
            criterion::BatchSize::SmallInput,
        );
    });

    c.bench_function("status report with changes (2 KB config)", |b| {
        let mut state = AgentState::new(Arc::clone(&config), Instant::now());
        let mut seq = 0;
        b.iter_batched(
            || {
                seq += 1;
                let mut msg = full_status(uid, seq);
                // Health flips so the merge really changes something every time.
                msg.health.as_mut().unwrap().healthy = seq % 2 == 0;
                encode_ws_message(&msg, &limits).unwrap()
            },
            |payload| black_box(round(&mut state, payload, &limits)),
            criterion::BatchSize::SmallInput,
        );
    });

    c.bench_function(
        "first message of a connection (new state, offer, capabilities)",
        |b| {
            let payload = encode_ws_message(&full_status(uid, 0), &limits).unwrap();
            let offer = Arc::new(AgentRemoteConfig {
                config: Some(config_map(2_000)),
                config_hash: vec![1; 32].into(),
            });
            b.iter(|| {
                let mut state = AgentState::new(Arc::clone(&config), Instant::now());
                state.set_remote_config(Arc::clone(&offer));
                black_box(round(&mut state, payload.clone(), &limits))
            });
        },
    );

    c.bench_function("prepare a fleet-wide 2 KB config (encoded once)", |b| {
        let msg = ServerToAgent {
            remote_config: Some(AgentRemoteConfig {
                config: Some(config_map(2_000)),
                config_hash: vec![1; 32].into(),
            }),
            ..Default::default()
        };
        b.iter(|| black_box(PreparedMessage::new(msg.clone(), &limits).unwrap()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
