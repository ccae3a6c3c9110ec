//! WebSocket message codec against opamp-go's captured frames (tests/vectors/ws-frames) and
//! random messages.

mod codec_common;

use bytes::{Bytes, BytesMut};
use codec_common::*;
use opamp_proto::{AgentToServer, Message, ServerToAgent};
use opamp_transport::Error;
use opamp_transport::codec::{self, Limits, ws};
use proptest::prelude::*;

const SUB: &str = "ws-frames";

fn good_rows() -> Vec<std::collections::BTreeMap<String, String>> {
    let rows: Vec<_> = index(SUB)
        .into_iter()
        .filter(|r| !r["file"].starts_with("bad-"))
        .collect();
    assert_eq!(rows.len(), 30, "INDEX.tsv lists 30 captured frames");
    rows
}

#[test]
fn every_captured_frame_decodes_and_matches_its_json() {
    let limits = Limits::default();
    for row in good_rows() {
        let file = &row["file"];
        let payload = read(SUB, file);
        assert_eq!(payload[0], 0x00, "{file}: opamp-go writes header 0");
        let json = json(SUB, &file.replace(".bin", ".json"));
        let data = ws::ws_payload_data(&payload, &limits).unwrap();
        assert_eq!(data.len(), payload.len() - 1, "{file}");
        match row["direction"].as_str() {
            "a2s" => {
                let msg: AgentToServer = ws::decode_ws_message(&payload, &limits).unwrap();
                assert_eq!(as_str_set(&a2s_fields(&msg)), json_keys(&json), "{file}");
                assert_eq!(
                    &msg.instance_uid[..],
                    &base64(json["instance_uid"].as_str().unwrap())[..]
                );
                assert_eq!(
                    msg.sequence_num,
                    json.get("sequence_num").map_or(0, json_u64),
                    "{file}"
                );
                assert_eq!(
                    msg.capabilities,
                    json.get("capabilities").map_or(0, json_u64),
                    "{file}"
                );
                if let Some(status) = json.get("remote_config_status") {
                    let ours = msg.remote_config_status.as_ref().unwrap();
                    let hash = status.get("last_remote_config_hash");
                    assert_eq!(
                        ours.last_remote_config_hash.to_vec(),
                        hash.map_or(Vec::new(), |h| base64(h.as_str().unwrap())),
                        "{file}"
                    );
                    assert_eq!(
                        ours.status().as_str_name(),
                        status["status"]
                            .as_str()
                            .unwrap_or("RemoteConfigStatuses_UNSET"),
                        "{file}"
                    );
                }
                round_trip(&msg, &payload, file);
                // The zero-copy variant agrees.
                let shared: AgentToServer =
                    ws::decode_ws_message_bytes(Bytes::from(payload.clone()), &limits).unwrap();
                assert_eq!(shared, msg, "{file}");
            }
            "s2a" => {
                let msg: ServerToAgent = ws::decode_ws_message(&payload, &limits).unwrap();
                assert_eq!(as_str_set(&s2a_fields(&msg)), json_keys(&json), "{file}");
                assert_eq!(
                    msg.instance_uid.to_vec(),
                    json.get("instance_uid")
                        .map_or(Vec::new(), |u| base64(u.as_str().unwrap())),
                    "{file}"
                );
                if let Some(remote) = json.get("remote_config") {
                    let ours = msg.remote_config.as_ref().unwrap();
                    assert_eq!(
                        ours.config_hash.to_vec(),
                        base64(remote["config_hash"].as_str().unwrap()),
                        "{file}"
                    );
                    let files = remote["config"]["config_map"].as_object().unwrap();
                    let map = &ours.config.as_ref().unwrap().config_map;
                    assert_eq!(map.len(), files.len(), "{file}");
                    for (name, file_json) in files {
                        assert_eq!(
                            map[name].body.to_vec(),
                            file_json
                                .get("body")
                                .map_or(Vec::new(), |b| base64(b.as_str().unwrap())),
                            "{file}: config file {name:?}"
                        );
                    }
                }
                round_trip(&msg, &payload, file);
            }
            other => panic!("{file}: unknown direction {other}"),
        }
    }
}

/// Re-encodes a decoded message: it must decode to the same message. (The bytes may differ
/// from opamp-go's: Go orders map entries at random and writes empty map keys that prost
/// leaves out.)
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
    original: &[u8],
    file: &str,
) {
    let limits = Limits::default();
    let encoded = ws::encode_ws_message(msg, &limits).unwrap();
    assert!(encoded.len() <= original.len(), "{file}: re-encoded size");
    assert_eq!(encoded[0], 0x00);
    let again: M = ws::decode_ws_message(&encoded, &limits).unwrap();
    assert_eq!(&again, msg, "{file}");
}

#[test]
fn every_bad_frame_is_rejected_as_the_index_says() {
    let limits = Limits::default();
    let bad: Vec<_> = index(SUB)
        .into_iter()
        .filter(|r| r["file"].starts_with("bad-"))
        .collect();
    assert_eq!(bad.len(), 4);
    for row in bad {
        let file = row["file"].as_str();
        let expected = row["expected"].as_str();
        assert!(expected.starts_with("REJECT"), "{file}: {expected}");
        let payload = read(SUB, file);
        let a2s = ws::decode_ws_message::<AgentToServer>(&payload, &limits).unwrap_err();
        // Whatever the direction, the framing is checked before the protobuf.
        let s2a = ws::decode_ws_message::<ServerToAgent>(&payload, &limits).unwrap_err();
        assert!(a2s.is_peer_misbehaviour() && s2a.is_peer_misbehaviour());
        match file {
            "bad-header-1.bin" => {
                assert!(expected.contains("header must be 0"));
                assert!(matches!(a2s, Error::NonZeroWsHeader(1)), "{a2s:?}");
                assert!(matches!(s2a, Error::NonZeroWsHeader(1)), "{s2a:?}");
            }
            "bad-truncated-varint.bin" => {
                assert!(expected.contains("truncated varint"));
                assert!(matches!(a2s, Error::TruncatedWsHeader), "{a2s:?}");
                assert!(matches!(
                    ws::ws_payload_data(&payload, &limits),
                    Err(Error::TruncatedWsHeader)
                ));
            }
            "bad-protobuf.bin" => {
                assert!(expected.contains("truncated protobuf"));
                assert!(matches!(a2s, Error::Decode(_)), "{a2s:?}");
                // The framing itself is fine.
                assert_eq!(
                    ws::ws_payload_data(&payload, &limits).unwrap(),
                    &payload[1..]
                );
            }
            "bad-empty.bin" => {
                assert!(expected.contains("missing header"));
                assert!(payload.is_empty());
                assert!(matches!(a2s, Error::MissingWsHeader), "{a2s:?}");
            }
            other => panic!("new bad vector {other} needs an expectation here"),
        }
        assert_eq!(a2s.http_status(), Some(http::StatusCode::BAD_REQUEST));
    }
}

#[test]
fn frames_over_the_limit_are_rejected_before_decoding() {
    for row in good_rows() {
        let payload = read(SUB, &row["file"]);
        let exact = Limits::default().with_max_message_size(payload.len());
        let under = Limits::default().with_max_message_size(payload.len() - 1);
        assert!(ws::ws_payload_data(&payload, &exact).is_ok());
        match ws::decode_ws_message::<AgentToServer>(&payload, &under) {
            Err(Error::MessageTooLarge { size, limit }) => {
                assert_eq!(size, payload.len() as u64);
                assert_eq!(limit, payload.len() as u64 - 1);
            }
            other => panic!("{}: unexpected {other:?}", row["file"]),
        }
    }
    // Even a frame with a bad header is reported as too large first: the limit comes first.
    let bad = [0x01; 64];
    let small = Limits::default().with_max_message_size(10);
    assert!(
        ws::ws_payload_data(&bad, &small)
            .unwrap_err()
            .is_too_large()
    );
}

#[test]
fn sender_refuses_oversize_messages() {
    let payload = read(SUB, "001-a2s.bin");
    let msg: AgentToServer = codec::decode_ws_message(&payload, &Limits::default()).unwrap();
    let len = ws::encoded_ws_message_len(&msg);
    assert!(len > 300 && len <= payload.len());
    let under = Limits::default().with_max_message_size(len - 1);
    let mut buf = BytesMut::new();
    let err = codec::encode_ws_message_into(&msg, &under, &mut buf).unwrap_err();
    assert!(err.is_too_large());
    assert_eq!(err.http_status(), Some(http::StatusCode::PAYLOAD_TOO_LARGE));
    assert!(buf.is_empty(), "nothing is written for a refused message");
    let exact = Limits::default().with_max_message_size(len);
    codec::encode_ws_message_into(&msg, &exact, &mut buf).unwrap();
    assert_eq!(buf.len(), len);
    assert_eq!(buf[0], 0x00);
    assert_eq!(&buf[1..], &msg.encode_to_vec()[..]);
}

#[test]
fn empty_data_is_a_valid_empty_message() {
    let msg: ServerToAgent = ws::decode_ws_message(&[0x00], &Limits::default()).unwrap();
    assert_eq!(msg, ServerToAgent::default());
    let encoded = ws::encode_ws_message(&AgentToServer::default(), &Limits::default()).unwrap();
    assert_eq!(&encoded[..], &[0x00]);
}

proptest! {
    #[test]
    fn round_trip_random_messages(
        uid in proptest::collection::vec(any::<u8>(), 0..=16),
        seq: u64,
        caps: u64,
        custom in proptest::collection::vec(any::<u8>(), 0..2048),
        limit in 0usize..4096,
    ) {
        let msg = AgentToServer {
            instance_uid: Bytes::from(uid),
            sequence_num: seq,
            capabilities: caps,
            custom_message: (!custom.is_empty()).then(|| opamp_proto::CustomMessage {
                capability: "io.example.fuzz".into(),
                r#type: "blob".into(),
                data: Bytes::from(custom),
            }),
            ..Default::default()
        };
        let limits = Limits::default().with_max_message_size(limit);
        let len = 1 + msg.encoded_len();
        match ws::encode_ws_message(&msg, &limits) {
            Ok(payload) => {
                prop_assert!(len <= limit);
                prop_assert_eq!(payload.len(), len);
                let back: AgentToServer = ws::decode_ws_message(&payload, &limits)?;
                prop_assert_eq!(back, msg);
            }
            Err(Error::MessageTooLarge { size, limit: l }) => {
                prop_assert!(len > limit);
                prop_assert_eq!((size, l), (len as u64, limit as u64));
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn random_payloads_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        limit in 0usize..600,
    ) {
        let limits = Limits::default().with_max_message_size(limit);
        let result = ws::decode_ws_message::<ServerToAgent>(&payload, &limits);
        if payload.len() > limit {
            prop_assert!(matches!(result, Err(Error::MessageTooLarge { .. })), "{:?}", result);
        } else if payload.is_empty() {
            prop_assert!(matches!(result, Err(Error::MissingWsHeader)), "{:?}", result);
        } else if payload[0] != 0x00 && payload[0] & 0x80 == 0 {
            prop_assert!(
                matches!(result, Err(Error::NonZeroWsHeader(v)) if v == u64::from(payload[0])),
                "{:?}",
                result
            );
        }
        if let Ok(msg) = result {
            // Whatever decoded re-encodes within the same limit and decodes equal.
            let again = ws::encode_ws_message(&msg, &Limits::default())?;
            let back: ServerToAgent = ws::decode_ws_message(&again, &Limits::default())?;
            prop_assert_eq!(back, msg);
        }
    }
}
