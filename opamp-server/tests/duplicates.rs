//! The same instance UID on two live connections, under each policy.

mod common;

use common::*;
use opamp_server::proto::{InstanceUid, ServerErrorResponseType, ServerToAgent};
use opamp_server::{CloseReason, DuplicateUidPolicy, ServerSettings};
use opamp_transport::ws::CloseCode;

async fn server_with(
    policy: DuplicateUidPolicy,
) -> (opamp_server::Server, std::net::SocketAddr, Recorder) {
    let recorder = Recorder::new();
    let (server, addr) = start(
        ServerSettings::default().with_duplicate_uid_policy(policy),
        recorder.clone(),
    )
    .await;
    (server, addr, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_gets_a_new_uid_by_default() {
    let (server, addr, _) = server_with(DuplicateUidPolicy::default()).await;
    let uid = InstanceUid::new_v7();
    let mut first = ws_agent(addr).await;
    let r = exchange(&mut first, &full_status(uid, 0)).await;
    assert!(r.agent_identification.is_none());
    let owner = server.connection(&uid).unwrap();

    // A clone over WebSocket.
    let mut clone = ws_agent(addr).await;
    let r = exchange(&mut clone, &full_status(uid, 0)).await;
    assert_eq!(r.instance_uid, uid.to_bytes());
    let new =
        InstanceUid::try_from(&r.agent_identification.expect("new uid").new_instance_uid).unwrap();
    assert_ne!(new, uid);
    assert_eq!(new.to_uuid().get_version_num(), 7);
    let r = exchange(&mut clone, &heartbeat(new, 1)).await;
    assert_eq!(r.instance_uid, new.to_bytes());
    assert!(r.agent_identification.is_none());
    assert_eq!(server.connection(&uid), Some(owner));
    assert_ne!(server.connection(&new), server.connection(&uid));

    // A clone over plain HTTP.
    let http = HttpAgent::new(addr, uid);
    let r = http.post(&full_status(uid, 0)).await.unwrap();
    let http_new =
        InstanceUid::try_from(&r.agent_identification.expect("new uid").new_instance_uid).unwrap();
    assert_ne!(http_new, uid);
    let r = HttpAgent::new(addr, http_new)
        .post(&heartbeat(http_new, 1))
        .await
        .unwrap();
    assert_eq!(r.instance_uid, http_new.to_bytes());
    assert!(r.agent_identification.is_none());
    assert_eq!(server.connection_count(), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_policy_refuses_the_newcomer() {
    let (server, addr, recorder) = server_with(DuplicateUidPolicy::Reject).await;
    let uid = InstanceUid::new_v7();
    let mut first = ws_agent(addr).await;
    exchange(&mut first, &full_status(uid, 0)).await;

    let mut clone = ws_agent(addr).await;
    let r = exchange(&mut clone, &full_status(uid, 0)).await;
    assert_eq!(
        r.error_response.map(|e| e.r#type),
        Some(ServerErrorResponseType::BadRequest as i32)
    );
    let end = tokio::time::timeout(LIMIT, clone.recv::<ServerToAgent>())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(
        clone.peer_close_frame().map(|f| f.code),
        Some(CloseCode::Policy)
    );

    let err = HttpAgent::new(addr, uid)
        .post(&full_status(uid, 0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        opamp_transport::Error::HttpStatus { status, .. } if status == http::StatusCode::CONFLICT
    ));
    // The original keeps working.
    let r = exchange(&mut first, &heartbeat(uid, 1)).await;
    assert!(r.error_response.is_none());
    recorder
        .wait_for("two rejections", |e| {
            e.iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::Closed {
                            reason: CloseReason::DuplicateInstanceUid,
                            ..
                        }
                    )
                })
                .count()
                == 2
        })
        .await;
    assert_eq!(server.connection_count(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_policy_closes_the_old_connection() {
    let (server, addr, _) = server_with(DuplicateUidPolicy::ReplaceExisting).await;
    let uid = InstanceUid::new_v7();
    let mut first = ws_agent(addr).await;
    exchange(&mut first, &full_status(uid, 0)).await;
    let old = server.connection(&uid).unwrap();

    let mut second = ws_agent(addr).await;
    let r = exchange(&mut second, &full_status(uid, 0)).await;
    assert!(r.agent_identification.is_none() && r.error_response.is_none());
    let end = tokio::time::timeout(LIMIT, first.recv::<ServerToAgent>())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
    assert_eq!(
        first.peer_close_frame().map(|f| f.code),
        Some(CloseCode::Policy)
    );
    let now = server.connection(&uid).unwrap();
    assert_ne!(now, old);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_policy_serves_both() {
    let (server, addr, _) = server_with(DuplicateUidPolicy::Allow).await;
    let uid = InstanceUid::new_v7();
    let mut first = ws_agent(addr).await;
    exchange(&mut first, &full_status(uid, 0)).await;
    let owner = server.connection(&uid).unwrap();
    let mut second = ws_agent(addr).await;
    let r = exchange(&mut second, &full_status(uid, 0)).await;
    assert!(r.error_response.is_none() && r.agent_identification.is_none());
    let r = exchange(&mut second, &heartbeat(uid, 1)).await;
    assert!(r.error_response.is_none());
    assert_eq!(server.connection(&uid), Some(owner));
    assert_eq!(server.connection_count(), 2);
    server.shutdown().await;
}
