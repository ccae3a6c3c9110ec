//! The OpAMP connection settings offer flow, driven directly (no sockets): candidate,
//! APPLIED, revert with FAILED, duplicates, invalid offers, heartbeat-only offers,
//! persistence snapshots.

use std::time::Duration;

use opamp_client::connection_settings::{
    CandidateOutcome, ClientCertificate, ConnectionSettingsManager, ConnectionSettingsSnapshot,
    MergeOptions, OfferDecision, OpampConnectionParams, TlsVersion,
};
use opamp_client::proto::{
    AgentCapabilities, Bytes, ConnectionSettingsOffers, ConnectionSettingsStatus,
    ConnectionSettingsStatuses, Header, Headers, OpAmpConnectionSettings, ProxyConnectionSettings,
    TelemetryConnectionSettings, TlsCertificate, TlsConnectionSettings,
};

const INITIAL: &str = "wss://opamp.example.com:4320/v1/opamp";

fn caps() -> AgentCapabilities {
    AgentCapabilities::REPORTS_STATUS
        | AgentCapabilities::ACCEPTS_OPAMP_CONNECTION_SETTINGS
        | AgentCapabilities::REPORTS_CONNECTION_SETTINGS_STATUS
        | AgentCapabilities::REPORTS_HEARTBEAT
}

fn manager() -> ConnectionSettingsManager {
    ConnectionSettingsManager::new(
        OpampConnectionParams::new(INITIAL).with_header("X-API-Key", "bootstrap-key"),
    )
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    Headers {
        headers: pairs
            .iter()
            .map(|(k, v)| Header {
                key: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

fn offer(hash: &'static [u8], opamp: OpAmpConnectionSettings) -> ConnectionSettingsOffers {
    ConnectionSettingsOffers {
        hash: Bytes::from_static(hash),
        opamp: Some(opamp),
        ..Default::default()
    }
}

fn new_endpoint_offer(hash: &'static [u8]) -> ConnectionSettingsOffers {
    offer(
        hash,
        OpAmpConnectionSettings {
            destination_endpoint: "https://other.example.com/v1/opamp".into(),
            headers: Some(headers(&[("Authorization", "Bearer per-agent")])),
            ..Default::default()
        },
    )
}

fn status_of(status: &ConnectionSettingsStatus) -> (ConnectionSettingsStatuses, &[u8], &str) {
    (
        status.status(),
        status.last_connection_settings_hash.as_ref(),
        status.error_message.as_str(),
    )
}

#[test]
fn accepted_offer_becomes_candidate_then_applied() {
    let mut m = manager();
    let decision = m.handle_offer(&new_endpoint_offer(b"h1"), caps());
    let OfferDecision::Reconnect { params, status } = decision else {
        panic!("expected Reconnect, got {decision:?}");
    };
    assert_eq!(
        status_of(&status),
        (ConnectionSettingsStatuses::Applying, &b"h1"[..], "")
    );
    assert_eq!(params.endpoint, "https://other.example.com/v1/opamp");
    assert_eq!(
        params.headers,
        [("Authorization".to_string(), "Bearer per-agent".to_string())],
        "offered headers replace the bootstrap headers"
    );
    // The next connection uses the candidate; the old settings are still the active ones.
    assert_eq!(m.connect_params(), &*params);
    assert_eq!(m.active().endpoint, INITIAL);
    assert!(
        m.take_changed_snapshot().is_some(),
        "the candidate must be persisted"
    );

    let outcome = m.on_connected();
    let Some(CandidateOutcome::Applied { params, status }) = outcome else {
        panic!("expected Applied, got {outcome:?}");
    };
    assert_eq!(
        status_of(&status),
        (ConnectionSettingsStatuses::Applied, &b"h1"[..], "")
    );
    assert_eq!(params.endpoint, "https://other.example.com/v1/opamp");
    assert_eq!(m.active(), &params);
    assert!(m.candidate().is_none());
    assert_eq!(
        m.status().unwrap().status(),
        ConnectionSettingsStatuses::Applied
    );
    let snapshot = m
        .take_changed_snapshot()
        .expect("applied settings must be persisted");
    assert_eq!(snapshot.active, params);
    assert!(snapshot.candidate.is_none());
    // A later successful connection has nothing to validate.
    assert_eq!(m.on_connected(), None);
    assert!(m.take_changed_snapshot().is_none());
}

#[test]
fn failed_candidate_is_retried_then_reverted_with_failed() {
    let mut m = manager().with_max_candidate_attempts(2);
    let before = m.active().clone();
    assert!(matches!(
        m.handle_offer(&new_endpoint_offer(b"h2"), caps()),
        OfferDecision::Reconnect { .. }
    ));

    let first = m.on_connect_failed(&"connection refused");
    let Some(CandidateOutcome::Retry { params, attempts }) = first else {
        panic!("expected Retry, got {first:?}");
    };
    assert_eq!(attempts, 1);
    assert_eq!(params.endpoint, "https://other.example.com/v1/opamp");
    assert_eq!(
        m.connect_params().endpoint,
        "https://other.example.com/v1/opamp"
    );

    let second = m.on_connect_failed(&"HTTP 401 Unauthorized");
    let Some(CandidateOutcome::Reverted { params, status }) = second else {
        panic!("expected Reverted, got {second:?}");
    };
    assert_eq!(params, before, "reverts to the previous settings");
    assert_eq!(m.connect_params(), &before);
    assert!(m.candidate().is_none());
    let (code, hash, error) = status_of(&status);
    assert_eq!(
        (code, hash),
        (ConnectionSettingsStatuses::Failed, &b"h2"[..])
    );
    assert!(error.contains("401"), "error message: {error}");
    assert_eq!(m.status(), Some(status));
    let snapshot = m.take_changed_snapshot().unwrap();
    assert_eq!(snapshot.active, before);
    assert!(snapshot.candidate.is_none());

    // Failures without a candidate are none of the manager's business.
    assert_eq!(m.on_connect_failed(&"refused"), None);
}

#[test]
fn offer_with_the_last_processed_hash_is_ignored() {
    let mut m = manager();
    assert!(matches!(
        m.handle_offer(&new_endpoint_offer(b"same"), caps()),
        OfferDecision::Reconnect { .. }
    ));
    m.on_connected();
    let status = m.status();
    let _ = m.take_changed_snapshot();
    assert_eq!(
        m.handle_offer(&new_endpoint_offer(b"same"), caps()),
        OfferDecision::Duplicate
    );
    assert_eq!(m.status(), status, "a duplicate changes no status");
    assert!(m.take_changed_snapshot().is_none());

    // Also after a revert: the server learns the outcome from the status, not a re-offer.
    let mut m = manager().with_max_candidate_attempts(1);
    m.handle_offer(&new_endpoint_offer(b"bad"), caps());
    m.on_connect_failed(&"refused");
    assert_eq!(
        m.handle_offer(&new_endpoint_offer(b"bad"), caps()),
        OfferDecision::Duplicate
    );
    assert!(m.candidate().is_none());

    // Offers without a hash are always processed.
    let mut m = manager();
    assert!(matches!(
        m.handle_offer(&new_endpoint_offer(b""), caps()),
        OfferDecision::Reconnect { .. }
    ));
    assert!(matches!(
        m.handle_offer(&new_endpoint_offer(b""), caps()),
        OfferDecision::Reconnect { .. }
    ));
}

#[test]
fn invalid_offers_are_rejected_with_failed_and_keep_the_active_settings() {
    let cases: Vec<(&str, OpAmpConnectionSettings)> = vec![
        (
            "scheme",
            OpAmpConnectionSettings {
                destination_endpoint: "ftp://files.example.com/".into(),
                ..Default::default()
            },
        ),
        (
            "relative URL",
            OpAmpConnectionSettings {
                destination_endpoint: "/v1/opamp".into(),
                ..Default::default()
            },
        ),
        (
            "header",
            OpAmpConnectionSettings {
                headers: Some(headers(&[("Bad Header", "x")])),
                ..Default::default()
            },
        ),
        (
            "certificate",
            OpAmpConnectionSettings {
                certificate: Some(TlsCertificate {
                    cert: Bytes::from_static(b"not a pem"),
                    private_key: Bytes::from_static(b"not a key"),
                    ca_cert: Bytes::new(),
                }),
                ..Default::default()
            },
        ),
        (
            "private key",
            OpAmpConnectionSettings {
                certificate: Some(TlsCertificate {
                    cert: Bytes::new(),
                    private_key: Bytes::new(),
                    ca_cert: Bytes::new(),
                }),
                ..Default::default()
            },
        ),
        (
            "TLS",
            OpAmpConnectionSettings {
                tls: Some(TlsConnectionSettings {
                    max_version: "1.1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            "cipher",
            OpAmpConnectionSettings {
                tls: Some(TlsConnectionSettings {
                    cipher_suites: vec!["TLS_RSA_WITH_RC4_128_SHA".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            "proxy",
            OpAmpConnectionSettings {
                proxy: Some(ProxyConnectionSettings {
                    url: String::new(),
                    connect_headers: None,
                }),
                ..Default::default()
            },
        ),
    ];
    for (what, settings) in cases {
        let mut m = manager();
        let before = m.active().clone();
        let decision = m.handle_offer(&offer(b"bad", settings), caps());
        let OfferDecision::Rejected { status, error } = decision else {
            panic!("{what}: expected Rejected, got {decision:?}");
        };
        assert_eq!(
            status.status(),
            ConnectionSettingsStatuses::Failed,
            "{what}"
        );
        assert_eq!(status.last_connection_settings_hash.as_ref(), b"bad");
        assert_eq!(status.error_message, error);
        assert!(!error.is_empty());
        assert_eq!(m.active(), &before, "{what}");
        assert_eq!(m.connect_params(), &before, "{what}");
        assert!(m.candidate().is_none(), "{what}");
    }
}

#[test]
fn empty_endpoint_keeps_the_current_one_unless_required() {
    let settings = OpAmpConnectionSettings {
        headers: Some(headers(&[("X-API-Key", "rotated")])),
        ..Default::default()
    };
    let mut lenient = manager();
    let OfferDecision::Reconnect { params, .. } =
        lenient.handle_offer(&offer(b"e", settings.clone()), caps())
    else {
        panic!("expected Reconnect");
    };
    assert_eq!(params.endpoint, INITIAL);
    assert_eq!(params.headers[0].1, "rotated");

    let mut strict =
        manager().with_merge_options(MergeOptions::default().with_require_endpoint(true));
    assert!(matches!(
        strict.handle_offer(&offer(b"e", settings), caps()),
        OfferDecision::Rejected { .. }
    ));
}

#[test]
fn heartbeat_only_offers_apply_without_reconnecting() {
    let mut m = manager();
    let decision = m.handle_offer(
        &offer(
            b"hb",
            OpAmpConnectionSettings {
                heartbeat_interval_seconds: 15,
                ..Default::default()
            },
        ),
        caps(),
    );
    let OfferDecision::Applied {
        heartbeat_interval,
        status,
    } = decision
    else {
        panic!("expected Applied, got {decision:?}");
    };
    assert_eq!(heartbeat_interval, Some(Duration::from_secs(15)));
    assert_eq!(
        status.unwrap().status(),
        ConnectionSettingsStatuses::Applied
    );
    assert_eq!(m.active().heartbeat_interval, Some(Duration::from_secs(15)));
    assert_eq!(m.heartbeat_interval(), Some(Duration::from_secs(15)));
    assert!(m.candidate().is_none());
    assert!(m.take_changed_snapshot().is_some());

    // The same settings again under a new hash: applied, nothing changes.
    let decision = m.handle_offer(
        &offer(
            b"hb2",
            OpAmpConnectionSettings {
                destination_endpoint: INITIAL.into(),
                heartbeat_interval_seconds: 15,
                ..Default::default()
            },
        ),
        caps(),
    );
    assert!(matches!(
        decision,
        OfferDecision::Applied {
            heartbeat_interval: None,
            status: Some(_)
        }
    ));

    // An offer of 0 (or one that does not mention heartbeats: proto3 cannot tell) disables
    // heartbeats (spec §"OpAMPConnectionSettings.heartbeat_interval_seconds").
    let decision = m.handle_offer(
        &offer(
            b"hb-zero",
            OpAmpConnectionSettings {
                destination_endpoint: INITIAL.into(),
                ..Default::default()
            },
        ),
        caps(),
    );
    assert!(matches!(
        decision,
        OfferDecision::Applied {
            heartbeat_interval: Some(Duration::ZERO),
            status: Some(_)
        }
    ));
    assert_eq!(m.heartbeat_interval(), Some(Duration::ZERO));

    // Without ReportsHeartbeat the offered interval is not taken.
    let mut m = manager();
    let no_heartbeat = caps().without(AgentCapabilities::REPORTS_HEARTBEAT);
    let decision = m.handle_offer(
        &offer(
            b"hb3",
            OpAmpConnectionSettings {
                heartbeat_interval_seconds: 5,
                ..Default::default()
            },
        ),
        no_heartbeat,
    );
    assert!(matches!(
        decision,
        OfferDecision::Applied {
            heartbeat_interval: None,
            ..
        }
    ));
    assert_eq!(m.heartbeat_interval(), None);
}

#[test]
fn capabilities_gate_the_opamp_offer() {
    let only_heartbeat = AgentCapabilities::REPORTS_STATUS | AgentCapabilities::REPORTS_HEARTBEAT;
    let mut m = manager();
    // New endpoint offered, but the agent does not accept OpAMP connection settings:
    // only the heartbeat interval is taken (as opamp-go does).
    let mut o = new_endpoint_offer(b"c1");
    o.opamp.as_mut().unwrap().heartbeat_interval_seconds = 20;
    let decision = m.handle_offer(&o, only_heartbeat);
    assert_eq!(
        decision,
        OfferDecision::Applied {
            heartbeat_interval: Some(Duration::from_secs(20)),
            status: None
        }
    );
    assert_eq!(m.active().endpoint, INITIAL);

    let decision = m.handle_offer(
        &new_endpoint_offer(b"c2"),
        AgentCapabilities::REPORTS_STATUS,
    );
    assert_eq!(decision, OfferDecision::NoOpampOffer);
    assert_eq!(m.connect_params().endpoint, INITIAL);

    // An offer for own telemetry only is not the manager's, but its hash is remembered.
    let telemetry = ConnectionSettingsOffers {
        hash: Bytes::from_static(b"t1"),
        own_metrics: Some(TelemetryConnectionSettings {
            destination_endpoint: "https://otlp.example.com/v1/metrics".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        m.handle_offer(&telemetry, caps()),
        OfferDecision::NoOpampOffer
    );
    assert_eq!(m.last_offer_hash(), b"t1");
    assert_eq!(m.handle_offer(&telemetry, caps()), OfferDecision::Duplicate);
}

#[test]
fn certificate_offers_are_refused_with_ephemeral_storage() {
    let (cert_pem, key_pem) = self_signed();
    let settings = OpAmpConnectionSettings {
        certificate: Some(TlsCertificate {
            cert: Bytes::from(cert_pem.clone().into_bytes()),
            private_key: Bytes::from(key_pem.clone().into_bytes()),
            ca_cert: Bytes::new(),
        }),
        ..Default::default()
    };
    let mut ephemeral =
        manager().with_merge_options(MergeOptions::default().with_ephemeral_storage(true));
    let OfferDecision::Rejected { error, .. } =
        ephemeral.handle_offer(&offer(b"c", settings.clone()), caps())
    else {
        panic!("expected Rejected");
    };
    assert!(error.contains("ephemeral"), "{error}");

    let mut durable = manager();
    let OfferDecision::Reconnect { params, .. } =
        durable.handle_offer(&offer(b"c", settings), caps())
    else {
        panic!("expected Reconnect");
    };
    let cert = params.client_certificate.as_ref().unwrap();
    assert_eq!(cert.cert_pem, cert_pem);
    assert_eq!(cert.private_key_pem, key_pem);

    // A certificate whose key is not the offered key is refused before reconnecting.
    let (other_cert, _) = self_signed();
    let mismatched = OpAmpConnectionSettings {
        certificate: Some(TlsCertificate {
            cert: Bytes::from(other_cert.into_bytes()),
            private_key: Bytes::from(key_pem.into_bytes()),
            ca_cert: Bytes::new(),
        }),
        ..Default::default()
    };
    let OfferDecision::Rejected { error, .. } =
        manager().handle_offer(&offer(b"m", mismatched), caps())
    else {
        panic!("expected Rejected");
    };
    assert!(error.contains("does not belong"), "{error}");
}

#[test]
fn omitted_parts_keep_or_drop_as_configured() {
    let (cert_pem, key_pem) = self_signed();
    let initial = OpampConnectionParams::new(INITIAL)
        .with_client_certificate(ClientCertificate::new(cert_pem, key_pem));
    let tls_only = OpAmpConnectionSettings {
        tls: Some(TlsConnectionSettings {
            min_version: "TLSv1.3".into(),
            cipher_suites: vec!["TLS_AES_128_GCM_SHA256".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut keep = ConnectionSettingsManager::new(initial.clone());
    let OfferDecision::Reconnect { params, .. } =
        keep.handle_offer(&offer(b"t", tls_only.clone()), caps())
    else {
        panic!("expected Reconnect");
    };
    assert!(
        params.client_certificate.is_some(),
        "certificate kept by default"
    );
    let tls = params.tls.as_ref().unwrap();
    assert_eq!(tls.min_version, Some(TlsVersion::Tls13));
    assert_eq!(tls.max_version, None);

    let mut drop = ConnectionSettingsManager::new(initial)
        .with_merge_options(MergeOptions::default().with_drop_certificate_when_omitted(true));
    let OfferDecision::Reconnect { params, .. } = drop.handle_offer(&offer(b"t", tls_only), caps())
    else {
        panic!("expected Reconnect");
    };
    assert!(params.client_certificate.is_none());
}

#[test]
fn snapshot_round_trips_and_resumes_candidate_validation() {
    let mut m = manager();
    m.handle_offer(&new_endpoint_offer(b"crash"), caps());
    let snapshot = m.take_changed_snapshot().unwrap();
    let json = serde_json::to_string(&snapshot).unwrap();
    let restored: ConnectionSettingsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, snapshot);

    // After a crash the candidate is validated again (spec offer flow, step 3).
    let mut m = ConnectionSettingsManager::from_snapshot(restored);
    assert_eq!(
        m.connect_params().endpoint,
        "https://other.example.com/v1/opamp"
    );
    assert_eq!(m.active().endpoint, INITIAL);
    assert_eq!(
        m.status().unwrap().status(),
        ConnectionSettingsStatuses::Applying
    );
    assert!(matches!(
        m.on_connected(),
        Some(CandidateOutcome::Applied { .. })
    ));
    assert_eq!(
        m.handle_offer(&new_endpoint_offer(b"crash"), caps()),
        OfferDecision::Duplicate
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let (cert_pem, key_pem) = self_signed();
    let mut m = ConnectionSettingsManager::new(
        OpampConnectionParams::new(INITIAL)
            .with_header("Authorization", "Bearer super-secret-token")
            .with_client_certificate(ClientCertificate::new(cert_pem, key_pem.clone())),
    );
    m.begin_csr(&Default::default()).unwrap();
    let text = format!("{:?} {:?}", m.snapshot(), m);
    assert!(!text.contains("super-secret-token"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(text.contains("Authorization"));
}

fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["agent.example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}
