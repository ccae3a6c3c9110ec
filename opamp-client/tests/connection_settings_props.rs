//! Property test of the connection settings state machine: over any sequence of offers,
//! connection outcomes and restarts, the active settings stay valid, the next connection uses
//! the candidate if there is one, and the status tells the truth about the last offer.

use std::time::Duration;

use opamp_client::connection_settings::{
    CandidateOutcome, ConnectionSettingsManager, ConnectionSettingsSnapshot, OfferDecision,
    OpampConnectionParams,
};
use opamp_client::proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, ConnectionSettingsStatuses, Header,
    Headers, OpAmpConnectionSettings,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Event {
    Offer { hash: u8, kind: u8, caps: u8 },
    Connected,
    Failed,
    Restart,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u8..6, 0u8..6, any::<u8>()).prop_map(|(hash, kind, caps)| Event::Offer { hash, kind, caps }),
        2 => Just(Event::Connected),
        2 => Just(Event::Failed),
        1 => Just(Event::Restart),
    ]
}

fn offer(hash: u8, kind: u8) -> ConnectionSettingsOffers {
    let opamp = match kind {
        0 => Some(OpAmpConnectionSettings {
            destination_endpoint: format!("wss://server-{hash}.example.com/v1/opamp"),
            ..Default::default()
        }),
        1 => Some(OpAmpConnectionSettings {
            destination_endpoint: "not a url".into(),
            ..Default::default()
        }),
        2 => Some(OpAmpConnectionSettings {
            heartbeat_interval_seconds: u64::from(hash) + 1,
            ..Default::default()
        }),
        3 => Some(OpAmpConnectionSettings {
            headers: Some(Headers {
                headers: vec![Header {
                    key: "Authorization".into(),
                    value: format!("Bearer {hash}"),
                }],
            }),
            ..Default::default()
        }),
        4 => Some(OpAmpConnectionSettings {
            headers: Some(Headers {
                headers: vec![Header {
                    key: "bad header".into(),
                    value: String::new(),
                }],
            }),
            ..Default::default()
        }),
        _ => None,
    };
    ConnectionSettingsOffers {
        // Hash 0 stands for "no hash".
        hash: if hash == 0 {
            Bytes::new()
        } else {
            Bytes::from(vec![hash, kind])
        },
        opamp,
        ..Default::default()
    }
}

fn caps(bits: u8) -> AgentCapabilities {
    let mut caps = AgentCapabilities::REPORTS_STATUS;
    if bits & 1 != 0 {
        caps.insert(AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS);
    }
    if bits & 2 != 0 {
        caps.insert(AgentCapabilities::REPORTS_HEARTBEAT);
    }
    caps
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold(events in proptest::collection::vec(event(), 1..40), attempts in 1u32..4) {
        let initial = OpampConnectionParams::new("wss://initial.example.com/v1/opamp");
        let mut m = ConnectionSettingsManager::new(initial).with_max_candidate_attempts(attempts);
        for event in events {
            let had_candidate = m.candidate().is_some();
            let active_before = m.active().clone();
            match event {
                Event::Offer { hash, kind, caps: bits } => {
                    let offer = offer(hash, kind);
                    let last = m.last_offer_hash().to_vec();
                    let decision = m.handle_offer(&offer, caps(bits));
                    match decision {
                        OfferDecision::Duplicate => {
                            prop_assert!(!offer.hash.is_empty());
                            prop_assert_eq!(offer.hash.as_ref(), last.as_slice());
                            prop_assert_eq!(m.active(), &active_before);
                        }
                        OfferDecision::Rejected { status, .. } => {
                            prop_assert!(kind == 1 || kind == 4);
                            prop_assert_eq!(status.status(), ConnectionSettingsStatuses::Failed);
                            prop_assert_eq!(m.active(), &active_before);
                            // A newer, refused offer also drops an older pending candidate.
                            prop_assert!(m.candidate().is_none());
                        }
                        OfferDecision::Reconnect { params, status } => {
                            prop_assert_eq!(status.status(), ConnectionSettingsStatuses::Applying);
                            prop_assert_eq!(status.last_connection_settings_hash, offer.hash.clone());
                            prop_assert_eq!(m.connect_params(), &*params);
                            prop_assert!(!params.same_connection(m.active()));
                        }
                        OfferDecision::Applied { heartbeat_interval, .. } => {
                            prop_assert!(m.active().same_connection(&active_before));
                            if let Some(interval) = heartbeat_interval {
                                // The offered interval, 0 (heartbeats disabled) included.
                                let offered = offer
                                    .opamp
                                    .as_ref()
                                    .map_or(0, |o| o.heartbeat_interval_seconds);
                                prop_assert_eq!(interval, Duration::from_secs(offered));
                                prop_assert!(caps(bits).contains(AgentCapabilities::REPORTS_HEARTBEAT));
                            }
                        }
                        OfferDecision::NoOpampOffer => {
                            prop_assert_eq!(m.active(), &active_before);
                        }
                        other => prop_assert!(false, "unexpected decision {:?}", other),
                    }
                }
                Event::Connected => match m.on_connected() {
                    Some(CandidateOutcome::Applied { params, status }) => {
                        prop_assert!(had_candidate);
                        prop_assert_eq!(status.status(), ConnectionSettingsStatuses::Applied);
                        prop_assert_eq!(m.active(), &params);
                    }
                    None => prop_assert!(!had_candidate),
                    Some(other) => prop_assert!(false, "unexpected outcome {:?}", other),
                },
                Event::Failed => match m.on_connect_failed(&"refused") {
                    Some(CandidateOutcome::Retry { params, .. }) => {
                        prop_assert_eq!(m.connect_params(), &params);
                    }
                    Some(CandidateOutcome::Reverted { params, status }) => {
                        prop_assert_eq!(status.status(), ConnectionSettingsStatuses::Failed);
                        prop_assert_eq!(&params, &active_before);
                        prop_assert!(m.candidate().is_none());
                    }
                    None => prop_assert!(!had_candidate),
                    Some(other) => prop_assert!(false, "unexpected outcome {:?}", other),
                },
                Event::Restart => {
                    let json = serde_json::to_string(m.snapshot()).unwrap();
                    let restored: ConnectionSettingsSnapshot = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(&restored, m.snapshot());
                    m = ConnectionSettingsManager::from_snapshot(restored).with_max_candidate_attempts(attempts);
                }
            }
            // After every step:
            prop_assert!(m.active().validate().is_ok());
            match m.candidate() {
                Some(candidate) => {
                    prop_assert_eq!(m.connect_params(), candidate);
                    prop_assert!(candidate.validate().is_ok());
                    prop_assert_eq!(m.status().unwrap().status(), ConnectionSettingsStatuses::Applying);
                }
                None => prop_assert_eq!(m.connect_params(), m.active()),
            }
        }
    }
}
