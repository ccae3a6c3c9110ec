//! The protocol rules on real sockets, over both transports: first reply, sequence gaps,
//! merged compressed reports, config offers by hash, sends to polling agents, disconnects.

mod common;

use std::time::Duration;

use common::*;
use opamp_server::proto::{
    AgentCapabilities, AgentConfigMap, AgentRemoteConfig, AgentToServer, AgentToServerFlags, Bytes,
    ComponentHealth, CustomCapabilities, CustomMessage, InstanceUid, RemoteConfigStatus,
    ServerCapabilities, ServerToAgent, ServerToAgentFlags,
};
use opamp_server::{CloseReason, Server, ServerSettings, TransportKind};
use opamp_transport::ws::CloseCode;

/// One agent over either transport.
enum Agent {
    Ws(opamp_transport::ws::ClientWsConnection),
    Http(Box<HttpAgent>),
}

impl Agent {
    async fn new(kind: TransportKind, addr: std::net::SocketAddr, uid: InstanceUid) -> Self {
        match kind {
            TransportKind::WebSocket => Agent::Ws(ws_agent(addr).await),
            TransportKind::PlainHttp => Agent::Http(Box::new(HttpAgent::new(addr, uid))),
        }
    }

    async fn send(&mut self, msg: &AgentToServer) -> ServerToAgent {
        match self {
            Agent::Ws(ws) => exchange(ws, msg).await,
            Agent::Http(http) => http.post(msg).await.expect("post"),
        }
    }
}

const BOTH: [TransportKind; 2] = [TransportKind::WebSocket, TransportKind::PlainHttp];

fn rc_status(uid: InstanceUid, seq: u64, hash: &'static [u8]) -> AgentToServer {
    AgentToServer {
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: Bytes::from_static(hash),
            ..Default::default()
        }),
        ..heartbeat(uid, seq)
    }
}

async fn connection_of(server: &Server, uid: InstanceUid) -> opamp_server::Connection {
    for _ in 0..300 {
        if let Some(conn) = server.connection(&uid) {
            return conn;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no connection for {uid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_reply_capabilities_and_sequence_gap() {
    for kind in BOTH {
        let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
        let uid = InstanceUid::new_v7();
        let mut agent = Agent::new(kind, addr, uid).await;
        let first = agent.send(&full_status(uid, 0)).await;
        assert_eq!(first.instance_uid, uid.to_bytes(), "{kind:?}");
        assert!(first.typed_capabilities().contains(
            ServerCapabilities::ACCEPTS_STATUS | ServerCapabilities::OFFERS_REMOTE_CONFIG
        ));
        let ack = agent.send(&heartbeat(uid, 1)).await;
        assert_eq!(
            ack.capabilities, 0,
            "{kind:?}: capabilities only in the first reply"
        );
        assert_eq!(ack.flags, 0);
        // Messages 2..4 are lost.
        let gap = agent.send(&heartbeat(uid, 5)).await;
        assert!(
            gap.typed_flags()
                .contains(ServerToAgentFlags::REPORT_FULL_STATE),
            "{kind:?}"
        );
        let after = agent.send(&full_status(uid, 6)).await;
        assert_eq!(after.flags, 0, "{kind:?}");
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_reports_are_merged() {
    for kind in BOTH {
        let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
        let uid = InstanceUid::new_v7();
        let mut agent = Agent::new(kind, addr, uid).await;
        agent.send(&full_status(uid, 0)).await;
        agent
            .send(&AgentToServer {
                health: Some(ComponentHealth {
                    healthy: true,
                    status: "ok".into(),
                    ..Default::default()
                }),
                ..heartbeat(uid, 1)
            })
            .await;
        agent.send(&rc_status(uid, 2, b"h1")).await;
        agent.send(&heartbeat(uid, 3)).await;
        let status = connection_of(&server, uid).await.status();
        let description = status.agent_description.as_ref().expect("description kept");
        assert_eq!(
            description
                .identifying_attribute("service.name")
                .and_then(|v| v.as_str()),
            Some("test-agent"),
            "{kind:?}"
        );
        assert_eq!(
            status.health.as_ref().map(|h| h.status.as_str()),
            Some("ok")
        );
        assert_eq!(status.last_remote_config_hash(), Some(&b"h1"[..]));
        assert_eq!(status.capabilities, caps());
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_offered_again_until_the_hash_matches() {
    for kind in BOTH {
        let recorder = Recorder::with_on_message(|conn, _| {
            if conn.remote_config().is_none() {
                return Some(ServerToAgent {
                    remote_config: Some(AgentRemoteConfig {
                        config: Some(AgentConfigMap::default()),
                        config_hash: Bytes::from_static(b"wanted"),
                    }),
                    ..Default::default()
                });
            }
            None
        });
        let (server, addr) = start(ServerSettings::default(), recorder).await;
        let uid = InstanceUid::new_v7();
        let mut agent = Agent::new(kind, addr, uid).await;
        let r = agent.send(&full_status(uid, 0)).await;
        assert_eq!(
            r.remote_config.map(|c| c.config_hash),
            Some(Bytes::from_static(b"wanted")),
            "{kind:?}"
        );
        // A heartbeat says nothing about the config: not sent again.
        assert!(agent.send(&heartbeat(uid, 1)).await.remote_config.is_none());
        // The agent reports another hash: offered again, each time.
        for seq in 2..4 {
            let r = agent.send(&rc_status(uid, seq, b"old")).await;
            assert!(r.remote_config.is_some(), "{kind:?} seq {seq}");
        }
        // It reports the offered hash: nothing more.
        assert!(
            agent
                .send(&rc_status(uid, 4, b"wanted"))
                .await
                .remote_config
                .is_none()
        );
        assert!(agent.send(&heartbeat(uid, 5)).await.remote_config.is_none());
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_not_offered_to_agents_that_do_not_accept_it() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    server.offer_remote_config_to_all(AgentRemoteConfig::default());
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    let mut msg = full_status(uid, 0);
    msg.capabilities = AgentCapabilities::REPORTS_STATUS.bits();
    exchange(&mut ws, &msg).await;
    let conn = connection_of(&server, uid).await;
    conn.offer_remote_config(AgentRemoteConfig::default())
        .unwrap();
    let r = exchange(
        &mut ws,
        &AgentToServer {
            capabilities: msg.capabilities,
            ..heartbeat(uid, 1)
        },
    )
    .await;
    assert!(r.remote_config.is_none());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_websocket_at_once_and_polling_agent_on_next_poll() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    // WebSocket: delivered without the agent sending anything.
    let ws_uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    let mut msg = full_status(ws_uid, 0);
    msg.custom_capabilities = Some(CustomCapabilities {
        capabilities: vec!["io.example.ping".into()],
    });
    exchange(&mut ws, &msg).await;
    let conn = connection_of(&server, ws_uid).await;
    assert_eq!(conn.transport(), TransportKind::WebSocket);
    conn.send_custom_message(CustomMessage {
        capability: "io.example.ping".into(),
        r#type: "ping".into(),
        data: Bytes::from_static(b"\x00\x01"),
    })
    .unwrap();
    let pushed = recv(&mut ws).await;
    assert_eq!(pushed.instance_uid, ws_uid.to_bytes());
    assert_eq!(pushed.custom_message.unwrap().r#type, "ping");

    // Plain HTTP: two sends merge into the next poll's reply.
    let uid = InstanceUid::new_v7();
    let http = HttpAgent::new(addr, uid);
    http.post(&full_status(uid, 0)).await.unwrap();
    let conn = connection_of(&server, uid).await;
    assert_eq!(conn.transport(), TransportKind::PlainHttp);
    conn.request_full_state().unwrap();
    conn.offer_remote_config(AgentRemoteConfig {
        config: None,
        config_hash: Bytes::from_static(b"c1"),
    })
    .unwrap();
    conn.offer_remote_config(AgentRemoteConfig {
        config: None,
        config_hash: Bytes::from_static(b"c2"),
    })
    .unwrap();
    let poll = http.post(&heartbeat(uid, 1)).await.unwrap();
    assert!(
        poll.typed_flags()
            .contains(ServerToAgentFlags::REPORT_FULL_STATE)
    );
    assert_eq!(
        poll.remote_config.unwrap().config_hash,
        Bytes::from_static(b"c2")
    );
    let next = http.post(&heartbeat(uid, 2)).await.unwrap();
    assert_eq!(next.flags, 0);
    assert!(next.remote_config.is_none());
    // The session persists across polls: one connection, one on_connected.
    assert_eq!(server.connection(&uid), Some(conn));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_over_both_transports() {
    let recorder = Recorder::new();
    let (server, addr) = start(ServerSettings::default(), recorder.clone()).await;

    // Server-side disconnect of a WebSocket: close frame 1000, on_close(Disconnected).
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    exchange(&mut ws, &full_status(uid, 0)).await;
    let conn = connection_of(&server, uid).await;
    conn.disconnect();
    let end = tokio::time::timeout(LIMIT, ws.recv::<ServerToAgent>())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(
        ws.peer_close_frame().map(|f| f.code),
        Some(CloseCode::Normal)
    );
    let id = conn.id();
    recorder
        .wait_for("on_close", |e| {
            e.contains(&Event::Closed {
                conn: id,
                reason: CloseReason::Disconnected,
            })
        })
        .await;
    assert!(server.connection(&uid).is_none());

    // Agent-side agent_disconnect over WebSocket: replied, then closed.
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    exchange(&mut ws, &full_status(uid, 0)).await;
    let id = connection_of(&server, uid).await.id();
    let bye = AgentToServer {
        agent_disconnect: Some(Default::default()),
        ..heartbeat(uid, 1)
    };
    let reply = exchange(&mut ws, &bye).await;
    assert_eq!(reply.instance_uid, uid.to_bytes());
    recorder
        .wait_for("agent disconnect", |e| {
            e.contains(&Event::Closed {
                conn: id,
                reason: CloseReason::AgentDisconnect,
            })
        })
        .await;

    // Plain HTTP: agent_disconnect ends the session; the next poll starts a new one.
    let uid = InstanceUid::new_v7();
    let http = HttpAgent::new(addr, uid);
    http.post(&full_status(uid, 0)).await.unwrap();
    let first = connection_of(&server, uid).await;
    http.post(&AgentToServer {
        agent_disconnect: Some(Default::default()),
        ..heartbeat(uid, 1)
    })
    .await
    .unwrap();
    assert!(first.is_closed());
    assert!(server.connection(&uid).is_none());
    let fid = first.id();
    assert!(recorder.events().contains(&Event::Closed {
        conn: fid,
        reason: CloseReason::AgentDisconnect
    }));
    http.post(&full_status(uid, 0)).await.unwrap();
    let second = connection_of(&server, uid).await;
    assert_ne!(first, second);
    // Server-side disconnect of a plain-HTTP session.
    second.disconnect();
    let sid = second.id();
    recorder
        .wait_for("http disconnect", |e| {
            e.contains(&Event::Closed {
                conn: sid,
                reason: CloseReason::Disconnected,
            })
        })
        .await;
    assert!(server.connection(&uid).is_none());
    assert!(!recorder.saw_overlap());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_instance_uid_over_both_transports() {
    for kind in BOTH {
        let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
        let temp = InstanceUid::new_v7();
        let mut agent = Agent::new(kind, addr, temp).await;
        let mut msg = full_status(temp, 0);
        msg.flags = AgentToServerFlags::REQUEST_INSTANCE_UID.bits();
        let reply = agent.send(&msg).await;
        let new = InstanceUid::try_from(
            &reply
                .agent_identification
                .expect("new uid")
                .new_instance_uid,
        )
        .unwrap();
        assert_ne!(new, temp);
        assert_eq!(new.to_uuid().get_version_num(), 7);
        let conn = connection_of(&server, new).await;
        // The agent switches.
        let reply = agent.send(&heartbeat(new, 1)).await;
        assert_eq!(reply.instance_uid, new.to_bytes(), "{kind:?}");
        assert!(reply.agent_identification.is_none());
        assert_eq!(conn.instance_uid(), Some(new));
        assert!(server.connection(&temp).is_none());
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_only_to_agents_that_accept_it() {
    let (server, addr) = start(ServerSettings::default(), Recorder::new()).await;
    let uid = InstanceUid::new_v7();
    let mut ws = ws_agent(addr).await;
    exchange(&mut ws, &full_status(uid, 0)).await;
    let conn = connection_of(&server, uid).await;
    assert!(matches!(
        conn.restart(),
        Err(opamp_server::Error::NotAccepted(_))
    ));
    let mut msg = heartbeat(uid, 1);
    msg.capabilities |= AgentCapabilities::ACCEPTS_RESTART_COMMAND.bits();
    exchange(&mut ws, &msg).await;
    conn.restart().unwrap();
    let pushed = recv(&mut ws).await;
    assert!(pushed.command.is_some());
    assert!(pushed.remote_config.is_none() && pushed.flags == 0);
    server.shutdown().await;
}
