//! Fleet-wide sends (encode once, never wait on a slow agent), targeting by attribute, and
//! callbacks of one connection never running concurrently.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use opamp_server::proto::{
    AgentConfigMap, AgentDescription, AgentRemoteConfig, AgentToServer, Bytes, CustomCapabilities,
    CustomMessage, InstanceUid, Message as _, ServerToAgent,
};
use opamp_server::{ServerSettings, TransportKind};
use tokio_tungstenite::tungstenite::Message;

fn in_region(uid: InstanceUid, region: &str) -> AgentToServer {
    let mut msg = full_status(uid, 0);
    msg.agent_description = Some(
        AgentDescription::builder()
            .service_name("collector")
            .identifying("region", region)
            .build(),
    );
    msg.custom_capabilities = Some(CustomCapabilities {
        capabilities: vec!["io.example.note".into()],
    });
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_websocket_now_and_http_on_next_poll() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let mut ws_agents = Vec::new();
    for _ in 0..3 {
        let uid = InstanceUid::new_v7();
        let mut ws = ws_agent(addr).await;
        exchange(&mut ws, &in_region(uid, "eu")).await;
        ws_agents.push((uid, ws));
    }
    let http_uid = InstanceUid::new_v7();
    let http = HttpAgent::new(addr, http_uid);
    http.post(&in_region(http_uid, "eu")).await.unwrap();

    let note = server
        .prepare(ServerToAgent {
            custom_message: Some(CustomMessage {
                capability: "io.example.note".into(),
                r#type: "maintenance".into(),
                data: Bytes::from_static(b"tonight"),
            }),
            ..Default::default()
        })
        .unwrap();
    let report = server.broadcast(&note);
    assert_eq!((report.framed, report.queued, report.skipped), (3, 1, 0));
    for (uid, ws) in &mut ws_agents {
        let msg = recv(ws).await;
        assert_eq!(msg.instance_uid, uid.to_bytes());
        assert_eq!(msg.custom_message.unwrap().r#type, "maintenance");
    }
    let poll = http.post(&heartbeat(http_uid, 1)).await.unwrap();
    assert_eq!(poll.custom_message.unwrap().r#type, "maintenance");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_config_where_targets_by_attribute_and_skips_up_to_date_agents() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let mut eu = Vec::new();
    for _ in 0..2 {
        let uid = InstanceUid::new_v7();
        let mut ws = ws_agent(addr).await;
        exchange(&mut ws, &in_region(uid, "eu")).await;
        eu.push((uid, ws));
    }
    let us_uid = InstanceUid::new_v7();
    let mut us = ws_agent(addr).await;
    exchange(&mut us, &in_region(us_uid, "us")).await;

    let config = AgentRemoteConfig {
        config: Some(AgentConfigMap::default()),
        config_hash: Bytes::from_static(b"eu-v1"),
    };
    let is_eu = |c: &opamp_server::Connection| {
        c.status()
            .identifying_attribute("region")
            .and_then(|v| v.as_str())
            == Some("eu")
    };
    let report = server.offer_remote_config_where(config.clone(), is_eu);
    assert_eq!((report.framed, report.skipped), (2, 1));
    for (uid, ws) in &mut eu {
        let pushed = recv(ws).await;
        assert_eq!(pushed.remote_config.as_ref(), Some(&config));
        // Applied: offering the same config again sends nothing.
        let mut applied = heartbeat(*uid, 1);
        applied.remote_config_status = Some(opamp_server::proto::RemoteConfigStatus {
            last_remote_config_hash: config.config_hash.clone(),
            ..Default::default()
        });
        assert!(exchange(ws, &applied).await.remote_config.is_none());
    }
    let again = server.offer_remote_config_where(config.clone(), is_eu);
    assert_eq!((again.framed, again.queued, again.skipped), (0, 0, 3));
    // The "us" agent got nothing.
    let r = exchange(&mut us, &heartbeat(us_uid, 1)).await;
    assert!(r.remote_config.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_send_never_waits_on_a_stalled_agent() {
    let settings = ServerSettings::default().with_write_timeout(Duration::from_secs(2));
    let recorder = Recorder::new();
    let (server, addr) = start(settings, recorder.clone()).await;

    // An agent that stops reading: its socket buffers fill up.
    let stalled_uid = InstanceUid::new_v7();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    let mut first = vec![0u8];
    first.extend(in_region(stalled_uid, "eu").encode_to_vec());
    stalled.send(Message::Binary(first.into())).await.unwrap();
    let uid = InstanceUid::new_v7();
    let mut healthy = ws_agent(addr).await;
    exchange(&mut healthy, &in_region(uid, "eu")).await;
    while server.connection(&stalled_uid).is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stalled_conn = server.connection(&stalled_uid).unwrap().id();

    let big = server
        .prepare(ServerToAgent {
            custom_message: Some(CustomMessage {
                capability: "io.example.note".into(),
                r#type: "blob".into(),
                data: Bytes::from(vec![1u8; 512 * 1024]),
            }),
            ..Default::default()
        })
        .unwrap();
    // Keep sending until the stalled agent's socket buffers are full and its writer gives up.
    // Every fleet-wide send returns at once and the healthy agent keeps getting its copy.
    let started = Instant::now();
    let mut sends = 0;
    loop {
        let report = server.broadcast(&big);
        sends += 1;
        let msg = recv(&mut healthy).await;
        assert_eq!(
            msg.custom_message.map(|m| m.r#type).as_deref(),
            Some("blob")
        );
        let dropped = recorder
            .events()
            .iter()
            .any(|e| matches!(e, Event::Closed { conn, .. } if *conn == stalled_conn));
        // The healthy agent always gets the shared frame (the stalled one until it is dropped).
        assert!(report.framed >= 1);
        if dropped {
            break;
        }
        assert!(
            started.elapsed() < LIMIT * 2,
            "the stalled agent was never dropped"
        );
    }
    eprintln!("stalled agent dropped after {sends} fleet-wide sends of 512 KiB");
    assert!(sends > 1);
    let still = exchange(&mut healthy, &heartbeat(uid, 1)).await;
    assert_eq!(still.instance_uid, uid.to_bytes());
    server.shutdown().await;
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_of_one_plain_http_session_never_overlap() {
    let recorder = Recorder::slow(Duration::from_millis(30));
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;
    let uid = InstanceUid::new_v7();
    HttpAgent::new(addr, uid)
        .post(&full_status(uid, 0))
        .await
        .unwrap();
    // A misbehaving agent sends requests concurrently; its session serializes them.
    let mut tasks = Vec::new();
    for seq in 1..=8 {
        tasks.push(tokio::spawn(async move {
            HttpAgent::new(addr, uid)
                .post(&heartbeat(uid, seq))
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        let reply = tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
        assert_eq!(reply.instance_uid, uid.to_bytes());
    }
    assert_eq!(recorder.count(|e| matches!(e, Event::Message { .. })), 9);
    assert_eq!(recorder.count(|e| matches!(e, Event::Connected(_))), 1);
    assert!(!recorder.saw_overlap());
    assert_eq!(
        server.connection(&uid).unwrap().transport(),
        TransportKind::PlainHttp
    );
    server.shutdown().await;
}
