//! Liveness: silent agents are reported gone, half-open WebSockets are detected by ping.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use opamp_server::proto::{AgentCapabilities, InstanceUid, Message as _, ServerToAgent};
use opamp_server::{CloseReason, ServerSettings};
use opamp_transport::ws::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn heartbeating(uid: InstanceUid, seq: u64) -> opamp_server::proto::AgentToServer {
    let mut msg = full_status(uid, seq);
    msg.capabilities |= AgentCapabilities::REPORTS_HEARTBEAT.bits();
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_agents_are_reported_gone_on_both_transports() {
    let recorder = Recorder::new();
    let settings = ServerSettings::default()
        .with_heartbeat_interval(Some(Duration::from_secs(1)))
        .with_missed_heartbeats(2)
        .with_ws_ping_interval(None);
    let (server, addr) = start(settings, recorder.clone()).await;

    // WebSocket agent with ReportsHeartbeat: offered 1 s, silent, gone after ~2 s.
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    let first = exchange(&mut ws, &heartbeating(uid, 0)).await;
    let offer = first
        .connection_settings
        .expect("heartbeat interval offered");
    assert_eq!(offer.opamp.unwrap().heartbeat_interval_seconds, 1);
    let ws_id = server.connection(&uid).unwrap().id();

    // Plain-HTTP agent: polls once, then stays silent.
    let http_uid = InstanceUid::new_v7();
    HttpAgent::new(addr, http_uid)
        .post(&full_status(http_uid, 0))
        .await
        .unwrap();
    let http_id = server.connection(&http_uid).unwrap().id();

    // An agent that keeps heartbeating stays.
    let live_uid = InstanceUid::new_v7();
    let mut live = ws_agent(addr).await;
    exchange(&mut live, &heartbeating(live_uid, 0)).await;

    for seq in 1..=12 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        exchange(&mut live, &heartbeat(live_uid, seq)).await;
        let events = recorder.events();
        let gone = |id| {
            events.contains(&Event::Closed {
                conn: id,
                reason: CloseReason::Gone,
            })
        };
        if gone(ws_id) && gone(http_id) {
            break;
        }
    }
    recorder
        .wait_for("both gone", |e| {
            e.contains(&Event::Closed {
                conn: ws_id,
                reason: CloseReason::Gone,
            }) && e.contains(&Event::Closed {
                conn: http_id,
                reason: CloseReason::Gone,
            })
        })
        .await;
    let end = tokio::time::timeout(LIMIT, ws.recv::<ServerToAgent>())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(ws.peer_close_frame().map(|f| f.code), Some(CloseCode::Away));
    assert!(server.connection(&uid).is_none());
    assert!(server.connection(&http_uid).is_none());
    assert!(server.connection(&live_uid).is_some());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_keeps_idle_agents_and_detects_half_open_ones() {
    let recorder = Recorder::new();
    let settings = ServerSettings::default()
        .with_heartbeat_interval(None)
        .with_ws_ping_interval(Some(Duration::from_millis(200)))
        .with_ws_pong_timeout(Duration::from_millis(400));
    let (server, addr) = start(settings, recorder.clone()).await;

    // An idle agent whose WebSocket layer answers pings (it keeps reading).
    let idle_uid = InstanceUid::new_v7();
    let mut idle = ws_agent(addr).await;
    exchange(&mut idle, &full_status(idle_uid, 0)).await;
    let reader = tokio::spawn(async move {
        // recv answers pings; it returns only when the connection ends.
        let _ = idle.recv::<ServerToAgent>().await;
        idle
    });

    // A half-open agent: its socket stays open but nothing reads it, so no pong comes.
    let uid = InstanceUid::new_v7();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut mute, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    let mut first = vec![0u8];
    first.extend(full_status(uid, 0).encode_to_vec());
    mute.send(Message::Binary(first.into())).await.unwrap();
    recorder
        .wait_for("mute agent connected", |e| {
            e.iter()
                .filter(|e| matches!(e, Event::Message { .. }))
                .count()
                == 2
        })
        .await;
    let mute_id = server.connection(&uid).unwrap().id();
    recorder
        .wait_for("half-open detected", |e| {
            e.contains(&Event::Closed {
                conn: mute_id,
                reason: CloseReason::Unresponsive,
            })
        })
        .await;
    // Well past several ping intervals the reading agent is still there.
    assert!(server.connection(&idle_uid).is_some());
    assert!(!reader.is_finished());
    server.shutdown().await;
    drop(mute);
    let _ = tokio::time::timeout(LIMIT, reader).await;
}

/// An agent's ping is answered with a pong (sent by tungstenite), and the server's own frames
/// before and after it stay whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pings_are_answered_between_whole_messages() {
    use futures_util::StreamExt;
    let recorder = Recorder::new();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;
    let uid = InstanceUid::new_v7();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut agent, _) = tokio_tungstenite::client_async(ws_url(addr), tcp)
        .await
        .unwrap();
    let framed = |msg: opamp_server::proto::AgentToServer| {
        let mut payload = vec![0u8];
        payload.extend(msg.encode_to_vec());
        Message::Binary(payload.into())
    };
    agent.send(framed(full_status(uid, 0))).await.unwrap();
    agent
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    agent.send(framed(heartbeat(uid, 1))).await.unwrap();
    let mut replies = 0;
    let mut pong = false;
    while replies < 2 || !pong {
        let next = tokio::time::timeout(LIMIT, agent.next())
            .await
            .expect("the server answers")
            .expect("the connection stays")
            .expect("valid frames");
        match next {
            Message::Pong(data) => {
                assert_eq!(&data[..], b"are you there");
                pong = true;
            }
            Message::Binary(payload) => {
                assert_eq!(payload[0], 0, "OpAMP WebSocket header");
                let reply = ServerToAgent::decode(&payload[1..]).unwrap();
                assert_eq!(reply.instance_uid, uid.to_bytes());
                replies += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(server.connection(&uid).is_some());
    server.shutdown().await;
}
