//! Unit tests of [`ClientState`]: one rule of the spec per test, on virtual time.

use std::time::{Duration, Instant};

use opamp_proto::{
    AgentCapabilities as Caps, AgentDescription, AgentIdentification, AgentRemoteConfig,
    AgentToServer, AvailableComponents, CertificateRequest, ComponentDetails, ComponentHealth,
    ConnectionSettingsOffers, ConnectionSettingsRequest, CustomCapabilities, CustomMessage,
    InstanceUid, KeyValue, OpAmpConnectionSettings, OpAmpConnectionSettingsRequest,
    PackagesAvailable, RemoteConfigStatus, RetryInfo, ServerErrorResponse, ServerErrorResponseType,
    ServerToAgent, ServerToAgentCommand, ServerToAgentFlags, TelemetryConnectionSettings,
    server_error_response,
};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn description(name: &str) -> AgentDescription {
    AgentDescription {
        identifying_attributes: vec![KeyValue::new("service.name", name)],
        non_identifying_attributes: vec![],
    }
}

fn health(healthy: bool) -> ComponentHealth {
    ComponentHealth {
        healthy,
        ..Default::default()
    }
}

fn ws_state(caps: Caps) -> ClientState {
    ClientState::new(
        StateConfig::new(InstanceUid::from_array([7; 16]), Transport::WebSocket)
            .with_capabilities(caps)
            .with_backoff(ConstantBackoff(2 * SEC)),
    )
}

fn http_state(caps: Caps) -> ClientState {
    ClientState::new(
        StateConfig::new(InstanceUid::from_array([7; 16]), Transport::Http)
            .with_capabilities(caps)
            .with_backoff(ConstantBackoff(2 * SEC))
            .with_min_throttle_delay(30 * SEC),
    )
}

/// A connected WebSocket state whose first report went out.
fn connected_ws(caps: Caps, now: Instant) -> ClientState {
    let mut s = ws_state(caps);
    s.set_agent_description(description("a"));
    s.on_connecting(now);
    s.on_connected(now);
    s.poll_message(now).expect("first report");
    s.on_send_succeeded(now);
    s
}

fn events(s: &mut ClientState) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn unavailable(retry_after: Option<Duration>) -> ServerToAgent {
    ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: ServerErrorResponseType::Unavailable as i32,
            error_message: "busy".into(),
            details: retry_after.map(|d| {
                server_error_response::Details::RetryInfo(RetryInfo {
                    retry_after_nanoseconds: d.as_nanos() as u64,
                })
            }),
        }),
        ..Default::default()
    }
}

fn bad_request() -> ServerToAgent {
    ServerToAgent {
        error_response: Some(ServerErrorResponse {
            r#type: ServerErrorResponseType::BadRequest as i32,
            error_message: "malformed".into(),
            details: None,
        }),
        ..Default::default()
    }
}

#[test]
fn first_message_carries_everything_set() {
    let now = Instant::now();
    let mut s = ws_state(Caps::REPORTS_HEALTH | Caps::REPORTS_REMOTE_CONFIG);
    s.set_agent_description(description("a"));
    s.set_health(health(true)).unwrap();
    s.set_custom_capabilities(CustomCapabilities {
        capabilities: vec!["io.x".into()],
    });
    assert!(
        s.poll_message(now).is_none(),
        "WebSocket sends nothing before connecting"
    );
    assert!(s.can_connect(now));
    s.on_connecting(now);
    assert!(!s.can_connect(now));
    s.on_connected(now);
    let msg = s.poll_message(now).unwrap();
    assert_eq!(msg.sequence_num, 1);
    assert_eq!(msg.instance_uid.as_ref(), &[7; 16]);
    assert_eq!(
        msg.capabilities,
        (Caps::REPORTS_STATUS | Caps::REPORTS_HEALTH | Caps::REPORTS_REMOTE_CONFIG).bits()
    );
    assert_eq!(msg.agent_description, Some(description("a")));
    assert_eq!(msg.health, Some(health(true)));
    assert!(msg.custom_capabilities.is_some());
    assert!(msg.remote_config_status.is_none(), "never set");
}

#[test]
fn compression_omits_unchanged_parts_and_sequence_grows() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_health(health(true)).unwrap();
    let m2 = s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    assert_eq!(m2.sequence_num, 2);
    assert!(
        m2.agent_description.is_none(),
        "unchanged description is compressed away"
    );
    assert_eq!(m2.health, Some(health(true)));
    // Setting the same value again is not a change.
    s.set_health(health(true)).unwrap();
    s.set_agent_description(description("a"));
    assert!(s.poll_message(now).is_none());
    // Any field of a sub-message changing sends the whole sub-message.
    let mut h = health(true);
    h.component_health_map
        .insert("exporter".into(), health(false));
    s.set_health(h.clone()).unwrap();
    let m3 = s.poll_message(now).unwrap();
    assert_eq!(m3.sequence_num, 3);
    assert_eq!(m3.health, Some(h));
}

#[test]
fn changes_are_merged_into_one_pending_message() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH | Caps::REPORTS_REMOTE_CONFIG, now);
    s.set_health(health(false)).unwrap();
    s.set_health(health(true)).unwrap();
    let status = RemoteConfigStatus {
        last_remote_config_hash: vec![1].into(),
        status: 1,
        error_message: String::new(),
    };
    s.set_remote_config_status(status.clone()).unwrap();
    let msg = s.poll_message(now).unwrap();
    assert_eq!(msg.health, Some(health(true)), "only the latest value");
    assert_eq!(msg.remote_config_status, Some(status));
    assert!(s.poll_message(now).is_none(), "one message in flight");
}

#[test]
fn setters_check_capabilities() {
    let mut s = ws_state(Caps::empty());
    assert!(matches!(
        s.set_health(health(true)),
        Err(Error::CapabilityNotSet { capability, .. }) if capability == Caps::REPORTS_HEALTH
    ));
    assert!(s.set_effective_config(Default::default()).is_err());
    assert!(s.set_remote_config_status(Default::default()).is_err());
    assert!(s.set_package_statuses(Default::default()).is_err());
    assert!(
        s.set_connection_settings_status(Default::default())
            .is_err()
    );
    assert!(
        s.set_available_components(AvailableComponents {
            hash: vec![1].into(),
            ..Default::default()
        })
        .is_err()
    );
    let csr = ConnectionSettingsRequest {
        opamp: Some(OpAmpConnectionSettingsRequest {
            certificate_request: Some(CertificateRequest {
                csr: b"PEM".as_ref().into(),
            }),
        }),
    };
    assert!(s.request_connection_settings(csr.clone()).is_err());
    s.set_capabilities(Caps::ACCEPTS_OPAMP_CONNECTION_SETTINGS);
    s.request_connection_settings(csr).unwrap();
    assert!(matches!(
        s.request_connection_settings(ConnectionSettingsRequest::default()),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(
        s.capabilities().contains(Caps::REPORTS_STATUS),
        "ReportsStatus always kept"
    );
}

#[test]
fn capability_change_is_reported_and_added_capability_resends_its_part() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_health(health(true)).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    s.set_capabilities(Caps::empty());
    let m = s.poll_message(now).expect("capabilities changed");
    s.on_send_succeeded(now);
    assert_eq!(m.capabilities, Caps::REPORTS_STATUS.bits());
    assert!(m.health.is_none());
    s.set_capabilities(Caps::REPORTS_HEALTH);
    let m = s.poll_message(now).unwrap();
    assert_eq!(
        m.health,
        Some(health(true)),
        "re-added capability reports its part"
    );
}

#[test]
fn report_full_state_resends_everything_once() {
    let now = Instant::now();
    let mut s = connected_ws(
        Caps::REPORTS_HEALTH | Caps::REPORTS_AVAILABLE_COMPONENTS,
        now,
    );
    s.set_health(health(true)).unwrap();
    let comps = AvailableComponents {
        components: [("receiver".to_owned(), ComponentDetails::default())]
            .into_iter()
            .collect(),
        hash: vec![9].into(),
    };
    s.set_available_components(comps.clone()).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    s.handle_server_message(
        ServerToAgent {
            flags: ServerToAgentFlags::REPORT_FULL_STATE.bits(),
            ..Default::default()
        },
        now,
    );
    let full = s.poll_message(now).expect("full state due");
    s.on_send_succeeded(now);
    assert_eq!(full.agent_description, Some(description("a")));
    assert_eq!(full.health, Some(health(true)));
    assert_eq!(full.available_components, Some(comps));
    assert!(s.poll_message(now).is_none(), "answered once");
}

#[test]
fn available_components_hash_first_then_full_map_on_request() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_AVAILABLE_COMPONENTS, now);
    assert!(matches!(
        s.set_available_components(AvailableComponents::default()),
        Err(Error::InvalidArgument { .. })
    ));
    let comps = AvailableComponents {
        components: [("r".to_owned(), ComponentDetails::default())]
            .into_iter()
            .collect(),
        hash: vec![1, 2, 3].into(),
    };
    s.set_available_components(comps.clone()).unwrap();
    let m = s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    let sent = m.available_components.unwrap();
    assert!(sent.components.is_empty());
    assert_eq!(sent.hash.as_ref(), &[1, 2, 3]);
    s.handle_server_message(
        ServerToAgent {
            flags: ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS.bits(),
            ..Default::default()
        },
        now,
    );
    let m = s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    assert_eq!(m.available_components, Some(comps));
    assert!(
        m.health.is_none() && m.agent_description.is_none(),
        "only what was asked"
    );
    // Back to hash only (and nothing at all while unchanged).
    assert!(s.poll_message(now).is_none());
}

#[test]
fn full_components_request_survives_a_failed_send() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_AVAILABLE_COMPONENTS, now);
    let comps = AvailableComponents {
        components: [("r".to_owned(), ComponentDetails::default())]
            .into_iter()
            .collect(),
        hash: vec![1].into(),
    };
    s.set_available_components(comps.clone()).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    s.handle_server_message(
        ServerToAgent {
            flags: ServerToAgentFlags::REPORT_AVAILABLE_COMPONENTS.bits(),
            ..Default::default()
        },
        now,
    );
    s.poll_message(now).unwrap();
    s.on_send_failed(now, Failure::Transient);
    s.on_disconnected(now);
    s.on_connecting(now);
    s.on_connected(now);
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.available_components, Some(comps));
}

#[test]
fn a_message_that_changes_nothing_is_not_answered() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::all_known(), now);
    let remote_config = AgentRemoteConfig {
        config: None,
        config_hash: vec![1].into(),
    };
    s.handle_server_message(
        ServerToAgent {
            instance_uid: InstanceUid::from_array([7; 16]).to_bytes(),
            remote_config: Some(remote_config.clone()),
            capabilities: 0x7f,
            ..Default::default()
        },
        now,
    );
    assert!(s.poll_message(now).is_none(), "no ping-pong");
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [Event::Message(d)] if d.remote_config == Some(remote_config.clone()))
    );
    assert_eq!(s.server_capabilities().bits(), 0x7f);
}

#[test]
fn offers_for_missing_capabilities_are_ignored() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_OWN_METRICS, now);
    s.handle_server_message(
        ServerToAgent {
            remote_config: Some(AgentRemoteConfig::default()),
            packages_available: Some(PackagesAvailable::default()),
            connection_settings: Some(ConnectionSettingsOffers {
                hash: vec![5].into(),
                opamp: Some(OpAmpConnectionSettings {
                    destination_endpoint: "ws://x".into(),
                    ..Default::default()
                }),
                own_metrics: Some(TelemetryConnectionSettings {
                    destination_endpoint: "http://m".into(),
                    ..Default::default()
                }),
                own_traces: Some(TelemetryConnectionSettings::default()),
                ..Default::default()
            }),
            custom_message: Some(CustomMessage {
                capability: "io.unknown".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        now,
    );
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let Event::Message(data) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(data.remote_config.is_none());
    assert!(data.packages_available.is_none());
    assert!(data.own_traces.is_none());
    assert!(data.custom_message.is_none());
    assert_eq!(
        data.own_metrics.as_ref().unwrap().destination_endpoint,
        "http://m"
    );
    assert_eq!(data.connection_settings_hash.as_deref(), Some(&[5u8][..]));
}

#[test]
fn opamp_settings_and_command_need_their_capabilities() {
    let now = Instant::now();
    let offer = ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            hash: vec![5].into(),
            opamp: Some(OpAmpConnectionSettings {
                destination_endpoint: "ws://x".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let command = ServerToAgent {
        command: Some(ServerToAgentCommand::default()),
        remote_config: Some(AgentRemoteConfig::default()),
        ..Default::default()
    };
    let mut s = connected_ws(Caps::ACCEPTS_REMOTE_CONFIG, now);
    s.handle_server_message(offer.clone(), now);
    s.handle_server_message(command.clone(), now);
    assert!(
        events(&mut s).is_empty(),
        "command without capability: whole message ignored"
    );

    let mut s = connected_ws(
        Caps::ACCEPTS_REMOTE_CONFIG
            | Caps::ACCEPTS_OPAMP_CONNECTION_SETTINGS
            | Caps::ACCEPTS_RESTART_COMMAND,
        now,
    );
    s.handle_server_message(offer, now);
    s.handle_server_message(command, now);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], Event::OpampConnectionSettings { settings, hash }
        if settings.destination_endpoint == "ws://x" && hash.as_ref() == [5])
    );
    assert!(matches!(&ev[1], Event::Command(_)));
    assert_eq!(
        ev.len(),
        2,
        "the remote config next to a command is ignored"
    );
}

#[test]
fn new_instance_uid_is_adopted_and_request_flag_cleared() {
    let now = Instant::now();
    let mut s = ClientState::new(
        StateConfig::new(InstanceUid::from_array([7; 16]), Transport::WebSocket)
            .with_request_instance_uid(true),
    );
    s.on_connected(now);
    let m = s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    assert_eq!(m.flags, 1, "RequestInstanceUid");
    let new = InstanceUid::from_array([9; 16]);
    // Bad length: ignored.
    s.handle_server_message(
        ServerToAgent {
            agent_identification: Some(AgentIdentification {
                new_instance_uid: vec![1, 2].into(),
            }),
            ..Default::default()
        },
        now,
    );
    assert_eq!(s.instance_uid(), InstanceUid::from_array([7; 16]));
    s.handle_server_message(
        ServerToAgent {
            instance_uid: InstanceUid::from_array([7; 16]).to_bytes(),
            agent_identification: Some(AgentIdentification {
                new_instance_uid: new.to_bytes(),
            }),
            ..Default::default()
        },
        now,
    );
    assert_eq!(s.instance_uid(), new);
    assert!(s.flags().is_empty());
    let ev = events(&mut s);
    let old_uid = InstanceUid::from_array([7; 16]);
    let changed =
        matches!(ev[0], Event::InstanceUidChanged { old, new: n } if old == old_uid && n == new);
    assert!(changed, "{ev:?}");
    s.set_agent_description(description("b"));
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.instance_uid, new.to_bytes());
    assert_eq!(m.flags, 0);
    // Messages for another UID are ignored; the old UID is still accepted in transition.
    s.on_send_succeeded(now);
    s.handle_server_message(
        ServerToAgent {
            instance_uid: InstanceUid::from_array([1; 16]).to_bytes(),
            remote_config: Some(AgentRemoteConfig::default()),
            ..Default::default()
        },
        now,
    );
    assert!(events(&mut s).is_empty());
}

#[test]
fn custom_messages_one_pending_at_a_time() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::empty(), now);
    let msg = CustomMessage {
        capability: "io.x".into(),
        r#type: "t".into(),
        data: vec![1].into(),
    };
    assert!(matches!(
        s.send_custom_message(msg.clone()),
        Err(Error::CustomCapabilityNotSupported(_))
    ));
    s.set_custom_capabilities(CustomCapabilities {
        capabilities: vec!["io.x".into()],
    });
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    let id = s.send_custom_message(msg.clone()).unwrap();
    assert!(matches!(
        s.send_custom_message(msg.clone()),
        Err(Error::CustomMessagePending)
    ));
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.custom_message, Some(msg.clone()));
    assert!(
        matches!(
            s.send_custom_message(msg.clone()),
            Err(Error::CustomMessagePending)
        ),
        "in flight"
    );
    // A failed send keeps it pending.
    s.on_send_failed(now, Failure::Transient);
    s.on_disconnected(now);
    assert!(s.custom_message_pending());
    s.on_connected(now);
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.custom_message, Some(msg.clone()));
    s.on_send_succeeded(now);
    assert_eq!(events(&mut s), vec![Event::CustomMessageSent(id)]);
    let id2 = s.send_custom_message(msg).unwrap();
    assert!(id2 > id);
    s.stop();
    assert_eq!(events(&mut s), vec![Event::CustomMessageDropped(id2)]);
}

#[test]
fn incoming_custom_message_needs_a_custom_capability() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::empty(), now);
    s.set_custom_capabilities(CustomCapabilities {
        capabilities: vec!["io.x".into()],
    });
    let custom = CustomMessage {
        capability: "io.x".into(),
        ..Default::default()
    };
    s.handle_server_message(
        ServerToAgent {
            custom_message: Some(custom.clone()),
            ..Default::default()
        },
        now,
    );
    let ev = events(&mut s);
    let delivered =
        matches!(&ev[..], [Event::Message(d)] if d.custom_message == Some(custom.clone()));
    assert!(delivered, "{ev:?}");
}

#[test]
fn failed_send_restores_pending_changes_newest_value_wins() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_health(health(false)).unwrap();
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.health, Some(health(false)));
    s.set_health(health(true)).unwrap();
    s.on_send_failed(now, Failure::Transient);
    s.on_disconnected(now);
    s.on_connecting(now);
    s.on_connected(now);
    let m2 = s.poll_message(now).unwrap();
    assert!(m2.sequence_num > m.sequence_num);
    assert_eq!(m2.health, Some(health(true)));
}

#[test]
fn ws_reconnect_at_once_after_a_working_connection_then_backoff() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::empty(), now);
    s.handle_server_message(ServerToAgent::default(), now);
    s.on_disconnected(now);
    assert!(s.can_connect(now), "at once");
    s.on_connecting(now);
    s.on_connect_failed(now, Failure::Transient);
    assert!(!s.can_connect(now));
    assert_eq!(s.poll_timeout(), Some(now + 2 * SEC));
    assert!(s.can_connect(now + 2 * SEC));
    // A connection that never answered does not count as working.
    s.on_connecting(now);
    s.on_connected(now);
    s.on_disconnected(now);
    assert!(!s.can_connect(now));
}

#[test]
fn ws_malformed_message_backs_off_even_after_a_working_connection() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::empty(), now);
    s.handle_server_message(ServerToAgent::default(), now);
    s.on_malformed_message();
    s.on_disconnected(now);
    assert!(
        !s.can_connect(now),
        "a malformed message must not reconnect at once"
    );
    assert_eq!(s.poll_timeout(), Some(now + 2 * SEC));
    // A good message on the next connection makes the connection count as working again.
    s.on_connecting(now + 2 * SEC);
    s.on_connected(now + 2 * SEC);
    s.handle_server_message(ServerToAgent::default(), now + 2 * SEC);
    s.on_disconnected(now + 2 * SEC);
    assert!(s.can_connect(now + 2 * SEC));
}

#[test]
fn ws_connect_throttled_waits_retry_after() {
    let now = Instant::now();
    let mut s = ws_state(Caps::empty());
    s.on_connecting(now);
    s.on_connect_failed(
        now,
        Failure::Throttled {
            retry_after: Some(10 * SEC),
        },
    );
    assert!(!s.can_connect(now + 9 * SEC));
    assert!(s.can_connect(now + 10 * SEC));
}

#[test]
fn ws_unavailable_disconnects_then_waits_and_reports_full_state() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_health(health(true)).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    s.handle_server_message(unavailable(Some(5 * SEC)), now);
    assert!(matches!(&events(&mut s)[..], [Event::ServerError(_)]));
    assert!(s.wants_disconnect());
    let bye = s.poll_disconnect_message(now).unwrap();
    assert!(bye.agent_disconnect.is_some());
    s.on_send_succeeded(now);
    s.on_disconnected(now);
    assert!(!s.can_connect(now + 4 * SEC));
    assert!(s.can_connect(now + 5 * SEC));
    s.on_connecting(now + 5 * SEC);
    s.on_connected(now + 5 * SEC);
    let m = s.poll_message(now + 5 * SEC).unwrap();
    assert_eq!(m.health, Some(health(true)), "full state after UNAVAILABLE");
    assert_eq!(m.agent_description, Some(description("a")));
}

/// A message offering only a heartbeat interval.
fn heartbeat_offer(secs: u64) -> ServerToAgent {
    ServerToAgent {
        connection_settings: Some(ConnectionSettingsOffers {
            opamp: Some(OpAmpConnectionSettings {
                heartbeat_interval_seconds: secs,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn heartbeats_only_with_capability_and_server_interval_wins() {
    let now = Instant::now();
    let s = connected_ws(Caps::empty(), now);
    assert_eq!(s.heartbeat_interval(), None);
    assert_eq!(s.poll_timeout(), None);

    let mut s = connected_ws(
        Caps::REPORTS_HEARTBEAT | Caps::ACCEPTS_OPAMP_CONNECTION_SETTINGS,
        now,
    );
    assert_eq!(s.poll_timeout(), Some(now + 30 * SEC));
    assert!(s.poll_message(now + 29 * SEC).is_none());
    let hb = s.poll_message(now + 30 * SEC).unwrap();
    s.on_send_succeeded(now + 30 * SEC);
    assert_eq!(hb.sequence_num, 2);
    assert!(hb.agent_description.is_none());
    s.handle_server_message(heartbeat_offer(5), now + 30 * SEC);
    assert_eq!(s.heartbeat_interval(), Some(5 * SEC));
    assert_eq!(s.poll_timeout(), Some(now + 35 * SEC));
    s.handle_server_message(heartbeat_offer(0), now + 30 * SEC);
    assert_eq!(
        s.heartbeat_interval(),
        None,
        "an offered 0 disables heartbeats"
    );
    assert_eq!(s.poll_timeout(), None, "no heartbeat scheduled");
    assert!(s.poll_message(now + 3600 * SEC).is_none());
    // A message without OpAMP connection settings leaves the interval alone.
    s.handle_server_message(
        ServerToAgent {
            connection_settings: Some(ConnectionSettingsOffers::default()),
            ..Default::default()
        },
        now + 30 * SEC,
    );
    assert_eq!(s.heartbeat_interval(), None);
    s.handle_server_message(heartbeat_offer(5), now + 40 * SEC);
    assert_eq!(s.heartbeat_interval(), Some(5 * SEC));
    s.handle_server_message(ServerToAgent::default(), now + 40 * SEC);
    assert_eq!(s.heartbeat_interval(), Some(5 * SEC));
    s.set_offered_heartbeat_interval(None);
    assert_eq!(
        s.heartbeat_interval(),
        Some(30 * SEC),
        "back to the configured one"
    );
}

#[test]
fn http_offered_zero_polls_at_the_configured_interval() {
    let now = Instant::now();
    let mut s = ClientState::new(
        StateConfig::new(InstanceUid::from_array([7; 16]), Transport::Http)
            .with_capabilities(Caps::REPORTS_HEARTBEAT)
            .with_heartbeat_interval(12 * SEC),
    );
    s.poll_message(now).unwrap();
    s.handle_server_message(heartbeat_offer(5), now);
    assert_eq!(s.heartbeat_interval(), Some(5 * SEC));
    assert_eq!(s.poll_timeout(), Some(now + 5 * SEC));
    s.handle_server_message(heartbeat_offer(0), now);
    assert_eq!(
        s.heartbeat_interval(),
        Some(12 * SEC),
        "HTTP must keep polling: the configured interval"
    );
    assert_eq!(s.poll_timeout(), Some(now + 12 * SEC));
    assert!(s.poll_message(now + 11 * SEC).is_none());
    assert!(s.poll_message(now + 12 * SEC).is_some());
}

#[test]
fn http_polls_at_the_interval_and_first_request_is_immediate() {
    let now = Instant::now();
    let mut s = http_state(Caps::empty());
    assert!(s.can_connect(now));
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.sequence_num, 1);
    s.handle_server_message(ServerToAgent::default(), now);
    assert!(s.is_connected());
    assert!(s.poll_message(now + 29 * SEC).is_none());
    let poll = s.poll_message(now + 30 * SEC).expect("poll");
    assert!(poll.agent_description.is_none() && poll.health.is_none());
    s.handle_server_message(ServerToAgent::default(), now + 30 * SEC);
    // A heartbeat offer of 0 does not stop polling over HTTP.
    s.set_capabilities(Caps::REPORTS_HEARTBEAT);
    s.set_offered_heartbeat_interval(Some(Duration::ZERO));
    assert_eq!(s.heartbeat_interval(), Some(30 * SEC));
    s.set_offered_heartbeat_interval(Some(7 * SEC));
    assert_eq!(s.heartbeat_interval(), Some(7 * SEC));
}

#[test]
fn http_throttled_request_waits_and_keeps_its_content() {
    let now = Instant::now();
    let mut s = http_state(Caps::REPORTS_HEALTH);
    s.set_health(health(true)).unwrap();
    let m = s.poll_message(now).unwrap();
    assert!(m.health.is_some());
    s.on_send_failed(
        now,
        Failure::Throttled {
            retry_after: Some(45 * SEC),
        },
    );
    assert!(s.poll_message(now + 44 * SEC).is_none());
    assert_eq!(s.poll_timeout(), Some(now + 45 * SEC));
    let m = s.poll_message(now + 45 * SEC).unwrap();
    assert_eq!(m.health, Some(health(true)));
    // No Retry-After: the minimum throttle delay.
    s.on_send_failed(now + 45 * SEC, Failure::Throttled { retry_after: None });
    assert_eq!(s.poll_timeout(), Some(now + 75 * SEC));
}

#[test]
fn http_unavailable_keeps_content_bad_request_drops_it() {
    let now = Instant::now();
    let mut s = http_state(Caps::REPORTS_HEALTH);
    s.set_health(health(true)).unwrap();
    s.poll_message(now).unwrap();
    s.handle_server_message(unavailable(Some(3 * SEC)), now);
    assert!(!s.is_connected());
    assert!(s.poll_message(now + 2 * SEC).is_none());
    let m = s.poll_message(now + 3 * SEC).unwrap();
    assert_eq!(m.health, Some(health(true)));
    s.handle_server_message(bad_request(), now + 3 * SEC);
    assert!(s.is_connected());
    let next = s.poll_message(now + 4 * SEC);
    assert!(next.is_none(), "a bad request is not retried");
}

#[test]
fn http_io_failure_retried_at_once_then_backoff() {
    let now = Instant::now();
    let mut s = http_state(Caps::empty());
    s.poll_message(now).unwrap();
    s.handle_server_message(ServerToAgent::default(), now);
    let t = now + 30 * SEC;
    s.poll_message(t).unwrap();
    s.on_send_failed(t, Failure::Transient);
    assert!(s.poll_message(t).is_some(), "retried at once");
    s.on_send_failed(t, Failure::Transient);
    assert!(s.poll_message(t).is_none());
    assert!(s.poll_message(t + 2 * SEC).is_some(), "then backoff");
}

#[test]
fn rejected_message_is_dropped() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_custom_capabilities(CustomCapabilities {
        capabilities: vec!["io.x".into()],
    });
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    let id = s
        .send_custom_message(CustomMessage {
            capability: "io.x".into(),
            ..Default::default()
        })
        .unwrap();
    s.set_health(health(true)).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_failed(now, Failure::Rejected);
    assert!(s.poll_message(now).is_none());
    assert_eq!(events(&mut s), vec![Event::CustomMessageDropped(id)]);
}

#[test]
fn csr_is_sent_once_and_survives_failure() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::ACCEPTS_OPAMP_CONNECTION_SETTINGS, now);
    let csr = ConnectionSettingsRequest {
        opamp: Some(OpAmpConnectionSettingsRequest {
            certificate_request: Some(CertificateRequest {
                csr: b"CSR".as_ref().into(),
            }),
        }),
    };
    s.request_connection_settings(csr.clone()).unwrap();
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.connection_settings_request, Some(csr.clone()));
    s.on_send_failed(now, Failure::Transient);
    s.on_disconnected(now);
    s.on_connected(now);
    let m = s.poll_message(now).unwrap();
    assert_eq!(m.connection_settings_request, Some(csr));
    s.on_send_succeeded(now);
    s.set_agent_description(description("z"));
    assert!(
        s.poll_message(now)
            .unwrap()
            .connection_settings_request
            .is_none()
    );
}

#[test]
fn disconnect_message_carries_pending_changes_and_stop_ends_sending() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::REPORTS_HEALTH, now);
    s.set_health(health(false)).unwrap();
    let bye = s.poll_disconnect_message(now).unwrap();
    assert!(bye.agent_disconnect.is_some());
    assert_eq!(bye.health, Some(health(false)));
    s.on_send_succeeded(now);
    s.stop();
    s.set_health(health(true)).unwrap();
    assert!(s.poll_message(now).is_none());
    assert!(s.poll_disconnect_message(now).is_none());
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.can_connect(now));
}

#[test]
fn event_queue_is_bounded() {
    let now = Instant::now();
    let mut s = connected_ws(Caps::ACCEPTS_REMOTE_CONFIG, now);
    for _ in 0..(MAX_QUEUED_EVENTS + 10) {
        s.handle_server_message(
            ServerToAgent {
                remote_config: Some(AgentRemoteConfig::default()),
                ..Default::default()
            },
            now,
        );
    }
    assert_eq!(events(&mut s).len(), MAX_QUEUED_EVENTS);
}

#[test]
fn message_round_trip_through_the_wire() {
    use opamp_proto::Message;
    let now = Instant::now();
    let mut s = http_state(Caps::REPORTS_HEALTH);
    s.set_health(health(true)).unwrap();
    let m: AgentToServer = s.poll_message(now).unwrap();
    let decoded = AgentToServer::decode(m.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, m);
}

#[test]
fn ws_parts_written_but_never_answered_are_resent_after_reconnect() {
    let now = Instant::now();
    let mut s = ws_state(Caps::REPORTS_HEALTH);
    s.set_agent_description(description("a"));
    s.on_connected(now);
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    s.set_health(health(true)).unwrap();
    s.poll_message(now).unwrap();
    s.on_send_succeeded(now);
    // The connection was half-open: nothing ever came back.
    s.on_disconnected(now);
    s.on_connected(now + 2 * SEC);
    let m = s.poll_message(now + 2 * SEC).unwrap();
    assert_eq!(m.agent_description, Some(description("a")));
    assert_eq!(m.health, Some(health(true)));
    s.on_send_succeeded(now);
    // Answered this time: a later reconnect only reports what changed.
    s.handle_server_message(ServerToAgent::default(), now);
    s.on_disconnected(now);
    s.on_connected(now);
    let m = s.poll_message(now).unwrap();
    assert!(m.agent_description.is_none() && m.health.is_none());
}
