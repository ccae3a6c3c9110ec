//! Tests of [`AgentState`] driven directly, without sockets.

use super::*;
use opamp_proto::{
    AgentDescription, AvailableComponents, ComponentDetails, ComponentHealth, CustomMessage,
    EffectiveConfig, PackageStatuses, RemoteConfigStatus, ServerToAgentCommand,
};
use proptest::prelude::*;

fn uid(n: u8) -> InstanceUid {
    InstanceUid::from_array([n; 16])
}

fn fixed_uid() -> InstanceUid {
    InstanceUid::from_array([0xAB; 16])
}

fn state() -> AgentState {
    AgentState::new(
        Arc::new(StateConfig::default().with_new_uid(fixed_uid)),
        Instant::now(),
    )
}

fn msg(n: u8, seq: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: uid(n).to_bytes(),
        sequence_num: seq,
        capabilities: (AgentCapabilities::REPORTS_STATUS
            | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
            | AgentCapabilities::REPORTS_REMOTE_CONFIG)
            .bits(),
        ..Default::default()
    }
}

fn full(n: u8, seq: u64) -> AgentToServer {
    AgentToServer {
        agent_description: Some(AgentDescription::builder().service_name("svc").build()),
        ..msg(n, seq)
    }
}

fn remote_config(hash: &'static [u8]) -> AgentRemoteConfig {
    AgentRemoteConfig {
        config: None,
        config_hash: Bytes::from_static(hash),
    }
}

fn reporting(n: u8, seq: u64, hash: &'static [u8]) -> AgentToServer {
    AgentToServer {
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: Bytes::from_static(hash),
            ..Default::default()
        }),
        ..msg(n, seq)
    }
}

#[test]
fn first_reply_has_capabilities_and_uid_then_plain_acks() {
    let mut s = state();
    let out = s.handle_message(&full(1, 0), Instant::now()).unwrap();
    assert!(out.first);
    let reply = s.respond(None);
    assert_eq!(reply.instance_uid, uid(1).to_bytes());
    assert!(
        reply
            .typed_capabilities()
            .contains(ServerCapabilities::ACCEPTS_STATUS)
    );
    assert!(s.first_response_sent());
    s.handle_message(&msg(1, 1), Instant::now()).unwrap();
    let ack = s.respond(None);
    assert_eq!(
        ack,
        ServerToAgent {
            instance_uid: uid(1).to_bytes(),
            ..Default::default()
        }
    );
    assert!(s.push().is_none());
}

#[test]
fn bad_uids_are_rejected_without_changing_state() {
    let mut s = state();
    let mut bad = full(1, 0);
    bad.instance_uid = Bytes::from_static(b"short");
    assert!(matches!(
        s.handle_message(&bad, Instant::now()),
        Err(Error::InvalidInstanceUid { len: 5 })
    ));
    assert_eq!(s.instance_uid(), None);
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    let err = s.handle_message(&msg(2, 1), Instant::now()).unwrap_err();
    assert!(matches!(err, Error::InstanceUidMismatch { .. }));
    assert!(err.is_peer_misbehaviour());
    assert_eq!(s.last_sequence_num(), Some(0));
}

#[test]
fn sequence_gap_asks_for_full_state() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    s.respond(None);
    let out = s.handle_message(&msg(1, 1), Instant::now()).unwrap();
    assert!(!out.sequence_gap);
    s.respond(None);
    // A repeated number is not exactly +1 either: the spec makes it a gap too.
    assert!(
        s.handle_message(&msg(1, 1), Instant::now())
            .unwrap()
            .sequence_gap
    );
    s.respond(None);
    let out = s.handle_message(&msg(1, 3), Instant::now()).unwrap();
    assert!(out.sequence_gap);
    let reply = s.respond(None);
    assert!(
        reply
            .typed_flags()
            .contains(ServerToAgentFlags::REPORT_FULL_STATE)
    );
    s.handle_message(&full(1, 4), Instant::now()).unwrap();
    assert_eq!(s.respond(None).flags, 0);
}

#[test]
fn lost_state_detected_on_first_message() {
    let mut s = state();
    // Reconnect after a server restart: seq 17, description omitted.
    assert!(
        s.handle_message(&msg(1, 17), Instant::now())
            .unwrap()
            .sequence_gap
    );
    let mut s = state();
    // A fresh agent starting at 0, or one that sends its description: no request.
    assert!(
        !s.handle_message(&msg(1, 0), Instant::now())
            .unwrap()
            .sequence_gap
    );
    let mut s = state();
    assert!(
        !s.handle_message(&full(1, 5), Instant::now())
            .unwrap()
            .sequence_gap
    );
}

#[test]
fn error_reply_keeps_flags_for_later() {
    let mut s = state();
    s.handle_message(&msg(1, 9), Instant::now()).unwrap();
    let user = unavailable(Bytes::new(), Some(Duration::from_secs(5)));
    let reply = s.respond(Some(user));
    assert!(reply.error_response.is_some());
    assert_eq!(reply.flags, 0);
    assert_eq!(reply.capabilities, 0);
    assert_eq!(reply.instance_uid, uid(1).to_bytes());
    // The full-state request and the capabilities come with the next message.
    s.handle_message(&full(1, 10), Instant::now()).unwrap();
    let next = s.respond(None);
    assert!(
        next.typed_flags()
            .contains(ServerToAgentFlags::REPORT_FULL_STATE)
    );
    assert_ne!(next.capabilities, 0);
}

#[test]
fn remote_config_offered_until_hash_matches() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    s.offer_remote_config(remote_config(b"new"));
    let r = s.respond(None);
    assert_eq!(r.remote_config, Some(remote_config(b"new")));
    // A heartbeat that says nothing about config: no resend.
    s.handle_message(&msg(1, 1), Instant::now()).unwrap();
    assert!(s.respond(None).remote_config.is_none());
    // The agent reports the old hash: offered again.
    s.handle_message(&reporting(1, 2, b"old"), Instant::now())
        .unwrap();
    assert!(s.respond(None).remote_config.is_some());
    s.handle_message(&reporting(1, 3, b"old"), Instant::now())
        .unwrap();
    assert!(s.respond(None).remote_config.is_some());
    // The agent has it now.
    s.handle_message(&reporting(1, 4, b"new"), Instant::now())
        .unwrap();
    assert!(s.respond(None).remote_config.is_none());
    s.handle_message(&msg(1, 5), Instant::now()).unwrap();
    assert!(s.respond(None).remote_config.is_none());
    assert!(!s.has_pending());
}

#[test]
fn offer_made_while_agent_already_has_it_is_not_sent() {
    let mut s = state();
    s.handle_message(&reporting(1, 0, b"cfg"), Instant::now())
        .unwrap();
    s.respond(None);
    s.offer_remote_config(remote_config(b"cfg"));
    assert!(!s.has_pending());
    assert!(s.push().is_none());
}

#[test]
fn offers_only_to_agents_that_accept_them() {
    let mut s = state();
    let mut m = full(1, 0);
    m.capabilities = AgentCapabilities::REPORTS_STATUS.bits();
    s.handle_message(&m, Instant::now()).unwrap();
    s.offer_remote_config(remote_config(b"x"));
    s.offer_packages(PackagesAvailable::default());
    let r = s.respond(None);
    assert!(r.remote_config.is_none() && r.packages_available.is_none());
    assert!(!s.has_pending());
    // The agent gains the capability: now it is offered.
    let mut m = msg(1, 1);
    m.capabilities |= AgentCapabilities::ACCEPTS_PACKAGES.bits();
    s.handle_message(&m, Instant::now()).unwrap();
    let r = s.respond(None);
    assert!(r.remote_config.is_some() && r.packages_available.is_some());
    assert_eq!(
        r.packages_available.unwrap().all_packages_hash.len(),
        32,
        "missing hash is filled"
    );
}

#[test]
fn pushes_wait_for_the_first_message() {
    let mut s = state();
    s.offer_remote_config(remote_config(b"x"));
    s.queue(ServerToAgent {
        flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
        ..Default::default()
    })
    .unwrap();
    assert!(!s.has_pending());
    assert!(s.push().is_none());
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    let r = s.respond(None);
    assert!(r.remote_config.is_some());
    assert_eq!(r.flags, ServerToAgentFlags::REPORT_FULL_STATE.bits());
    assert!(s.push().is_none());
}

#[test]
fn queued_messages_merge_into_one_push() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    s.respond(None);
    for hash in [&b"a"[..], b"b", b"c"] {
        s.queue(ServerToAgent {
            remote_config: Some(AgentRemoteConfig {
                config: None,
                config_hash: Bytes::copy_from_slice(hash),
            }),
            ..Default::default()
        })
        .unwrap();
    }
    assert!(s.has_pending());
    let pushed = s.push().unwrap();
    assert_eq!(pushed.remote_config.unwrap().config_hash, &b"c"[..]);
    assert_eq!(pushed.instance_uid, uid(1).to_bytes());
    assert!(s.push().is_none());
}

#[test]
fn restart_command_alone_and_only_when_accepted() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    s.respond(None);
    let restart = ServerToAgent {
        command: Some(ServerToAgentCommand::default()),
        ..Default::default()
    };
    assert!(matches!(
        s.queue(restart.clone()),
        Err(Error::NotAccepted(_))
    ));
    let mut m = msg(1, 1);
    m.capabilities |= AgentCapabilities::ACCEPTS_RESTART_COMMAND.bits();
    s.handle_message(&m, Instant::now()).unwrap();
    s.respond(None);
    s.queue(restart).unwrap();
    s.offer_remote_config(remote_config(b"r"));
    // The config goes first, the command in a message of its own.
    let first = s.push().unwrap();
    assert!(first.remote_config.is_some() && first.command.is_none());
    let second = s.push().unwrap();
    assert!(second.command.is_some());
    assert!(second.remote_config.is_none() && second.flags == 0);
    assert!(s.push().is_none());
}

#[test]
fn command_in_reply_when_nothing_else() {
    let mut s = state();
    let mut m = full(1, 0);
    m.capabilities |= AgentCapabilities::ACCEPTS_RESTART_COMMAND.bits();
    s.handle_message(&m, Instant::now()).unwrap();
    s.respond(None);
    let mut next = msg(1, 1);
    next.capabilities = m.capabilities;
    s.handle_message(&next, Instant::now()).unwrap();
    let r = s.respond(Some(ServerToAgent {
        command: Some(ServerToAgentCommand::default()),
        ..Default::default()
    }));
    assert!(r.command.is_some());
}

#[test]
fn custom_messages_need_the_agent_capability_and_one_at_a_time() {
    let mut s = state();
    let mut m = full(1, 0);
    m.custom_capabilities = Some(CustomCapabilities {
        capabilities: vec!["io.x".into()],
    });
    s.handle_message(&m, Instant::now()).unwrap();
    s.respond(None);
    let custom = |cap: &str| ServerToAgent {
        custom_message: Some(CustomMessage {
            capability: cap.into(),
            r#type: "t".into(),
            data: Bytes::from_static(b"\0d"),
        }),
        ..Default::default()
    };
    assert!(matches!(
        s.queue(custom("io.y")),
        Err(Error::NotAccepted(_))
    ));
    s.queue(custom("io.x")).unwrap();
    assert!(matches!(
        s.queue(custom("io.x")),
        Err(Error::CustomMessagePending)
    ));
    assert!(s.push().unwrap().custom_message.is_some());
    s.queue(custom("io.x")).unwrap();
}

#[test]
fn request_instance_uid_assigns_once_until_adopted() {
    let mut s = state();
    let mut m = full(1, 0);
    m.flags = AgentToServerFlags::REQUEST_INSTANCE_UID.bits();
    let out = s.handle_message(&m, Instant::now()).unwrap();
    assert_eq!(out.assigned, Some(fixed_uid()));
    let r = s.respond(None);
    assert_eq!(r.instance_uid, uid(1).to_bytes());
    assert_eq!(
        r.agent_identification.unwrap().new_instance_uid,
        fixed_uid().to_bytes()
    );
    // The pending assignment alone never makes a pushed message.
    assert!(s.push().is_none());
    assert!(!s.has_pending());
    // The agent asks again before switching: same answer, not a fresh assignment.
    let mut again = msg(1, 1);
    again.flags = AgentToServerFlags::REQUEST_INSTANCE_UID.bits();
    assert_eq!(
        s.handle_message(&again, Instant::now()).unwrap().assigned,
        None
    );
    assert_eq!(
        s.respond(None)
            .agent_identification
            .unwrap()
            .new_instance_uid,
        fixed_uid().to_bytes()
    );
    // The agent switches.
    let mut switched = msg(0xAB, 2);
    switched.instance_uid = fixed_uid().to_bytes();
    let out = s.handle_message(&switched, Instant::now()).unwrap();
    assert_eq!(out.adopted, Some((uid(1), fixed_uid())));
    let r = s.respond(None);
    assert!(r.agent_identification.is_none());
    assert_eq!(r.instance_uid, fixed_uid().to_bytes());
    assert_eq!(s.instance_uid(), Some(fixed_uid()));
}

#[test]
fn duplicate_assignment_is_pushed() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    s.respond(None);
    let new = s.assign_instance_uid(UidAssignmentReason::Duplicate);
    assert_eq!(new, fixed_uid());
    assert_eq!(
        s.assigned_instance_uid(),
        Some((fixed_uid(), UidAssignmentReason::Duplicate))
    );
    let pushed = s.push().unwrap();
    assert_eq!(
        pushed.agent_identification.unwrap().new_instance_uid,
        fixed_uid().to_bytes()
    );
}

#[test]
fn heartbeat_offered_to_heartbeating_agents_and_liveness_follows() {
    let t0 = Instant::now();
    let config = StateConfig::default()
        .with_heartbeat_interval(Some(Duration::from_secs(10)))
        .with_missed_heartbeats(2);
    let mut s = AgentState::new(Arc::new(config), t0);
    let mut m = full(1, 0);
    m.capabilities |= AgentCapabilities::REPORTS_HEARTBEAT.bits();
    s.handle_message(&m, t0).unwrap();
    let r = s.respond(None);
    let offer = r.connection_settings.expect("heartbeat offer");
    assert_eq!(offer.opamp.unwrap().heartbeat_interval_seconds, 10);
    assert_eq!(s.liveness_deadline(), Some(t0 + Duration::from_secs(20)));
    assert!(!s.is_gone(t0 + Duration::from_secs(19)));
    assert!(s.is_gone(t0 + Duration::from_secs(20)));
    s.handle_message(&msg(1, 1), t0 + Duration::from_secs(15))
        .unwrap();
    // Not offered twice.
    assert!(s.respond(None).connection_settings.is_none());
    assert!(!s.is_gone(t0 + Duration::from_secs(30)));

    // Without ReportsHeartbeat over WebSocket: no offer, no deadline.
    let mut s = state();
    s.handle_message(&full(1, 0), t0).unwrap();
    assert!(s.respond(None).connection_settings.is_none());
    assert_eq!(s.liveness_deadline(), None);

    // A polling (plain-HTTP) agent has a deadline anyway.
    let polling = StateConfig::default()
        .with_polling(true)
        .with_heartbeat_interval(None);
    let s = AgentState::new(Arc::new(polling), t0);
    assert_eq!(
        s.liveness_deadline(),
        Some(t0 + DEFAULT_HEARTBEAT_INTERVAL * 3)
    );
}

#[test]
fn a_connection_that_never_sends_is_gone_after_the_first_message_timeout() {
    let t0 = Instant::now();
    let limit = Duration::from_secs(5);
    let config = StateConfig::default().with_first_message_timeout(Some(limit));
    let mut s = AgentState::new(Arc::new(config.clone()), t0);
    assert!(s.awaiting_first_message());
    assert_eq!(s.liveness_deadline(), Some(t0 + limit));
    assert!(!s.is_gone(t0 + limit - Duration::from_millis(1)));
    assert!(s.is_gone(t0 + limit));

    // Once it spoke, only heartbeats count (none expected here: no ReportsHeartbeat).
    s.handle_message(&full(1, 0), t0 + Duration::from_secs(1))
        .unwrap();
    assert!(!s.awaiting_first_message());
    assert_eq!(s.liveness_deadline(), None);
    assert!(!s.is_gone(t0 + Duration::from_secs(3600)));

    // `None` lifts the limit.
    let unlimited = config.with_first_message_timeout(None);
    let s = AgentState::new(Arc::new(unlimited), t0);
    assert_eq!(s.liveness_deadline(), None);
}

#[test]
fn connection_settings_offer_includes_heartbeat() {
    let mut s = state();
    let mut m = full(1, 0);
    m.capabilities |= (AgentCapabilities::REPORTS_HEARTBEAT
        | AgentCapabilities::REPORTS_OWN_METRICS
        | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS)
        .bits();
    s.handle_message(&m, Instant::now()).unwrap();
    let first = s.respond(None).connection_settings.unwrap();
    s.offer_connection_settings(ConnectionSettingsOffers {
        own_metrics: Some(opamp_proto::TelemetryConnectionSettings {
            destination_endpoint: "https://otlp".into(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let pushed = s.push().unwrap().connection_settings.unwrap();
    assert_ne!(pushed.hash, first.hash);
    assert!(pushed.own_metrics.is_some());
    assert_eq!(pushed.opamp.unwrap().heartbeat_interval_seconds, 30);
    // The agent applied it.
    let mut applied = msg(1, 1);
    applied.connection_settings_status = Some(opamp_proto::ConnectionSettingsStatus {
        last_connection_settings_hash: pushed.hash.clone(),
        status: opamp_proto::ConnectionSettingsStatuses::Applied as i32,
        error_message: String::new(),
    });
    s.handle_message(&applied, Instant::now()).unwrap();
    assert!(s.respond(None).connection_settings.is_none());
}

#[test]
fn unknown_component_hash_asks_for_the_full_map() {
    let mut s = state();
    let mut m = full(1, 0);
    m.capabilities |= AgentCapabilities::REPORTS_AVAILABLE_COMPONENTS.bits();
    m.available_components = Some(AvailableComponents {
        hash: Bytes::from_static(b"h"),
        ..Default::default()
    });
    s.handle_message(&m, Instant::now()).unwrap();
    assert!(
        s.respond(None)
            .typed_flags()
            .contains(ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS)
    );
    let mut fullmap = msg(1, 1);
    fullmap.available_components = Some(AvailableComponents {
        hash: Bytes::from_static(b"h"),
        components: [("x".to_owned(), ComponentDetails::default())].into(),
    });
    s.handle_message(&fullmap, Instant::now()).unwrap();
    assert_eq!(s.respond(None).flags, 0);
    assert!(!s.status().available_components_incomplete());
}

#[test]
fn disconnect_is_reported() {
    let mut s = state();
    let mut m = full(1, 0);
    m.agent_disconnect = Some(opamp_proto::AgentDisconnect {});
    assert!(s.handle_message(&m, Instant::now()).unwrap().disconnect);
    assert!(s.is_disconnected());
}

#[test]
fn status_snapshots_are_not_changed_by_later_messages() {
    let mut s = state();
    s.handle_message(&full(1, 0), Instant::now()).unwrap();
    let snapshot = Arc::clone(s.status());
    let mut m = msg(1, 1);
    m.health = Some(ComponentHealth {
        healthy: true,
        ..Default::default()
    });
    s.handle_message(&m, Instant::now()).unwrap();
    assert!(snapshot.health.is_none());
    assert!(s.status().health.is_some());
    assert_eq!(s.last_changes(), StatusChanges::HEALTH);
}

// ---- property tests over arbitrary report sequences ----

#[derive(Debug, Clone)]
struct Report {
    seq_step: u8,
    description: Option<u8>,
    health: Option<bool>,
    effective: Option<u8>,
    rc_hash: Option<u8>,
    packages: Option<u8>,
    caps: Option<u64>,
    request_uid: bool,
}

fn report() -> impl Strategy<Value = Report> {
    (
        0u8..4,
        proptest::option::of(0u8..3),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..3),
        proptest::option::of(0u8..3),
        proptest::option::of(any::<u64>()),
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(seq_step, description, health, effective, rc_hash, packages, caps, request_uid)| {
                Report {
                    seq_step,
                    description,
                    health,
                    effective,
                    rc_hash,
                    packages,
                    caps,
                    request_uid,
                }
            },
        )
}

fn hash_of(n: u8) -> Bytes {
    Bytes::from(vec![n; 4])
}

impl Report {
    fn to_message(&self, uid: InstanceUid, seq: u64) -> AgentToServer {
        AgentToServer {
            instance_uid: uid.to_bytes(),
            sequence_num: seq,
            capabilities: self.caps.unwrap_or(0),
            agent_description: self.description.map(|d| {
                AgentDescription::builder()
                    .service_name(format!("s{d}"))
                    .build()
            }),
            health: self.health.map(|healthy| ComponentHealth {
                healthy,
                ..Default::default()
            }),
            effective_config: self.effective.map(|e| EffectiveConfig {
                config_map: Some(opamp_proto::AgentConfigMap {
                    config_map: [(
                        String::new(),
                        opamp_proto::AgentConfigFile {
                            body: Bytes::from(vec![e]),
                            content_type: String::new(),
                        },
                    )]
                    .into(),
                }),
            }),
            remote_config_status: self.rc_hash.map(|h| RemoteConfigStatus {
                last_remote_config_hash: hash_of(h),
                ..Default::default()
            }),
            package_statuses: self.packages.map(|p| PackageStatuses {
                server_provided_all_packages_hash: hash_of(p),
                ..Default::default()
            }),
            flags: if self.request_uid {
                AgentToServerFlags::REQUEST_INSTANCE_UID.bits()
            } else {
                0
            },
            ..Default::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The merged status holds the last value of each sub-message; every reply echoes the
    /// UID the agent used, carries the capabilities exactly once, asks for the full state
    /// exactly on sequence gaps, and offers the config only while the reported hash differs.
    #[test]
    fn merged_status_and_replies_follow_the_rules(
        reports in proptest::collection::vec(report(), 1..40),
        offered in 0u8..3,
        offer_at in 0usize..40,
    ) {
        let t0 = Instant::now();
        let config = StateConfig::default().with_new_uid(fixed_uid);
        let mut s = AgentState::new(Arc::new(config), t0);
        let mut model = AgentStatus::default();
        let mut uid_in_use = uid(1);
        let mut seq = 0u64;
        let mut last_seq: Option<u64> = None;
        let mut caps_seen = 0usize;
        for (i, r) in reports.iter().enumerate() {
            if i == offer_at {
                s.offer_remote_config(AgentRemoteConfig {
                    config: None,
                    config_hash: hash_of(offered),
                });
            }
            seq = seq.wrapping_add(u64::from(r.seq_step));
            let m = r.to_message(uid_in_use, seq);
            let out = s.handle_message(&m, t0).unwrap();
            let expected_gap = match last_seq {
                Some(l) => seq != l.wrapping_add(1),
                None => seq != 0 && m.agent_description.is_none(),
            };
            prop_assert_eq!(out.sequence_gap, expected_gap);
            last_seq = Some(seq);

            // Model of the merge.
            if m.capabilities != 0 { model.capabilities = AgentCapabilities::from_bits(m.capabilities); }
            if m.agent_description.is_some() { model.agent_description = m.agent_description.clone(); }
            if m.health.is_some() { model.health = m.health.clone(); }
            if m.effective_config.is_some() { model.effective_config = m.effective_config.clone(); }
            if m.remote_config_status.is_some() { model.remote_config_status = m.remote_config_status.clone(); }
            if m.package_statuses.is_some() { model.package_statuses = m.package_statuses.clone(); }
            prop_assert_eq!(&**s.status(), &model);

            let reply = s.respond(None);
            prop_assert_eq!(&reply.instance_uid, &uid_in_use.to_bytes());
            prop_assert!(reply.error_response.is_none());
            if reply.capabilities != 0 { caps_seen += 1; }
            prop_assert_eq!(
                reply.typed_flags().contains(ServerToAgentFlags::REPORT_FULL_STATE),
                expected_gap
            );
            if let Some(rc) = &reply.remote_config {
                prop_assert!(model.capabilities.contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG));
                prop_assert_ne!(model.last_remote_config_hash(), Some(rc.config_hash.as_ref()));
            }
            if reply.packages_available.is_some() {
                prop_assert!(model.capabilities.contains(AgentCapabilities::ACCEPTS_PACKAGES));
            }
            if let Some(id) = reply.agent_identification {
                prop_assert_eq!(id.new_instance_uid, fixed_uid().to_bytes());
                // The agent switches at once.
                uid_in_use = fixed_uid();
            }
        }
        prop_assert_eq!(caps_seen, 1);
        // The offer is satisfied or still due exactly when the hashes differ.
        if offer_at < reports.len() {
            let accepts = model.capabilities.contains(AgentCapabilities::ACCEPTS_REMOTE_CONFIG);
            let matches = model.last_remote_config_hash() == Some(&hash_of(offered)[..]);
            if !accepts || matches {
                prop_assert!(s.push().and_then(|p| p.remote_config).is_none());
            }
        }
    }

    /// Whatever is queued, a pushed message never combines an error response or a command
    /// with other content, and the queue drains to nothing.
    #[test]
    fn pushes_respect_exclusivity(ops in proptest::collection::vec(0u8..5, 0..30)) {
        let mut s = state();
        let mut m = full(1, 0);
        m.capabilities |= (AgentCapabilities::ACCEPTS_RESTART_COMMAND | AgentCapabilities::ACCEPTS_PACKAGES).bits();
        s.handle_message(&m, Instant::now()).unwrap();
        s.respond(None);
        for op in ops {
            let queued = match op {
                0 => ServerToAgent { error_response: Some(ServerErrorResponse::default()), ..Default::default() },
                1 => ServerToAgent { command: Some(ServerToAgentCommand::default()), ..Default::default() },
                2 => ServerToAgent { flags: 1, ..Default::default() },
                3 => ServerToAgent { remote_config: Some(remote_config(b"q")), ..Default::default() },
                _ => ServerToAgent { packages_available: Some(PackagesAvailable::default()), ..Default::default() },
            };
            s.queue(queued).unwrap();
        }
        let mut pushes = 0;
        while let Some(p) = s.push() {
            pushes += 1;
            prop_assert!(pushes <= 3);
            prop_assert_eq!(&p.instance_uid, &uid(1).to_bytes());
            if p.error_response.is_some() || p.command.is_some() {
                let mut rest = p.clone();
                rest.error_response = None;
                rest.command = None;
                rest.instance_uid = Bytes::new();
                prop_assert!(!has_content(&rest));
            }
        }
        prop_assert!(!s.has_pending());
    }
}
