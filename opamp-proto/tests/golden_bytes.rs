//! Protobuf bytes written by hand from the wire-format rules (tag = field
//! number << 3 | wire type; wire types 0 VARINT, 1 I64, 2 LEN), decoded with
//! the generated types and compared with the expected values. Where the
//! bytes are in canonical order, encoding must give them back exactly.

use std::collections::BTreeMap;

use opamp_proto::{
    AgentConfigFile, AgentConfigMap, AgentDescription, AgentDisconnect, AgentRemoteConfig,
    AgentToServer, AnyValue, Bytes, ComponentHealth, KeyValue, Message, PackageStatus,
    PackageStatusEnum, RetryInfo, ServerErrorResponse, ServerErrorResponseType, ServerToAgent,
    server_error_response,
};

/// The instance UID 01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e.
const UID: [u8; 16] = [
    0x01, 0x93, 0x6f, 0x0e, 0x1c, 0x2a, 0x7b, 0x3c, 0x8d, 0x4e, 0x5f, 0x6a, 0x7b, 0x8c, 0x9d, 0x0e,
];

/// Concatenates byte pieces.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A LEN field: `tag`, a one-byte length (all bodies here are < 128 bytes),
/// then `body`.
fn len_field(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).expect("short body");
    assert!(len < 0x80, "length must fit one varint byte");
    cat(&[&[tag, len], body])
}

fn decode_exact<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: &M) {
    let decoded = M::decode(bytes).expect("golden bytes decode");
    assert_eq!(&decoded, expected);
    assert_eq!(
        decoded.encode_to_vec(),
        bytes,
        "canonical bytes re-encode identically"
    );
}

#[test]
fn agent_to_server_scalars_and_empty_submessage() {
    let bytes = cat(&[
        &[0x0A, 0x10], // field 1 instance_uid, LEN 16
        &UID,
        &[0x10, 0xAC, 0x02], // field 2 sequence_num, VARINT 300
        &[0x20, 0x81, 0x20], // field 4 capabilities, VARINT 0x1001
        &[0x4A, 0x00],       // field 9 agent_disconnect, LEN 0 (present, empty)
        &[0x50, 0x01],       // field 10 flags, VARINT 1
    ]);
    let expected = AgentToServer {
        instance_uid: Bytes::copy_from_slice(&UID),
        sequence_num: 300,
        capabilities: 0x1001,
        agent_disconnect: Some(AgentDisconnect {}),
        flags: 1,
        ..Default::default()
    };
    decode_exact(&bytes, &expected);
}

#[test]
fn sequence_num_max_is_a_ten_byte_varint() {
    let bytes = [
        0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
    ];
    decode_exact(
        &bytes,
        &AgentToServer {
            sequence_num: u64::MAX,
            ..Default::default()
        },
    );
}

#[test]
fn component_health_fixed64_map_and_attributes() {
    let child = len_field(0x12, &[0x08, 0x01]); // entry value: ComponentHealth { healthy }
    let entry = cat(&[&[0x0A, 0x01, b'a'], &child]); // entry key "a"
    let attribute = cat(&[&[0x0A, 0x01, b'k'], &len_field(0x12, &[0x18, 0x05])]); // k = int 5
    let bytes = cat(&[
        &[0x08, 0x01], // field 1 healthy = true
        &[0x11],       // field 2 start_time_unix_nano, I64 little-endian
        &[0x00, 0x00, 0x2a, 0x36, 0xfe, 0x9c, 0x97, 0x17],
        &[0x22, 0x02, b'o', b'k'], // field 4 status = "ok"
        &[0x29],                   // field 5 status_time_unix_nano, I64
        &[0x00, 0x58, 0x71, 0x2e, 0x0c, 0x9d, 0x97, 0x17],
        &len_field(0x32, &entry),     // field 6 component_health_map entry
        &len_field(0x3A, &attribute), // field 7 attributes
    ]);
    let expected = ComponentHealth {
        healthy: true,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        status: "ok".into(),
        status_time_unix_nano: 1_700_000_060_000_000_000,
        component_health_map: BTreeMap::from([(
            "a".to_owned(),
            ComponentHealth {
                healthy: true,
                ..Default::default()
            },
        )]),
        attributes: vec![KeyValue::new("k", 5i64)],
        ..Default::default()
    };
    decode_exact(&bytes, &expected);
}

#[test]
fn server_error_response_with_oneof() {
    let retry = [0x08, 0x80, 0xE4, 0x97, 0xD0, 0x12]; // retry_after_nanoseconds = 5e9
    let error = cat(&[
        &[0x08, 0x02],                         // type = Unavailable
        &[0x12, 0x04, b'b', b'u', b's', b'y'], // error_message = "busy"
        &len_field(0x1A, &retry),              // oneof Details: retry_info (field 3)
    ]);
    let bytes = cat(&[&[0x0A, 0x10], &UID, &len_field(0x12, &error)]);
    let expected = ServerToAgent {
        instance_uid: Bytes::copy_from_slice(&UID),
        error_response: Some(ServerErrorResponse {
            r#type: ServerErrorResponseType::Unavailable as i32,
            error_message: "busy".into(),
            details: Some(server_error_response::Details::RetryInfo(RetryInfo {
                retry_after_nanoseconds: 5_000_000_000,
            })),
        }),
        ..Default::default()
    };
    decode_exact(&bytes, &expected);
    let decoded = ServerToAgent::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        decoded.error_response.unwrap().r#type(),
        ServerErrorResponseType::Unavailable
    );
}

#[test]
fn any_value_variants() {
    let kv = |key: u8, value: &[u8]| cat(&[&[0x0A, 0x01, key], &len_field(0x12, value)]);
    let double = cat(&[&[0x21], &[0, 0, 0, 0, 0, 0, 0xF8, 0x3F]]); // field 4 double 1.5
    let int = [
        0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
    ]; // int -1
    let bytes_value = [0x3A, 0x02, 0x00, 0xFF]; // field 7 bytes
    let inner_kv = cat(&[&[0x0A, 0x01, b'x'], &len_field(0x12, &[0x10, 0x01])]); // x = true
    let kvlist = len_field(0x32, &len_field(0x0A, &inner_kv)); // field 6 kvlist_value
    let array_body = cat(&[&len_field(0x0A, &[0x0A, 0x01, b's']), &[0x0A, 0x00]]); // ["s", null]
    let array = len_field(0x2A, &array_body); // field 5 array_value
    let string_empty = [0x0A, 0x00]; // field 1 string_value = "" (set, though empty)
    let bytes = cat(&[
        &len_field(0x0A, &kv(b'd', &double)), // identifying_attributes
        &len_field(0x12, &kv(b'n', &int)),    // non_identifying_attributes...
        &len_field(0x12, &kv(b'b', &bytes_value)),
        &len_field(0x12, &kv(b'l', &kvlist)),
        &len_field(0x12, &kv(b'a', &array)),
        &len_field(0x12, &kv(b'e', &string_empty)),
        &len_field(0x12, &kv(b'z', &[])), // value present but null
    ]);
    let expected = AgentDescription {
        identifying_attributes: vec![KeyValue::new("d", 1.5)],
        non_identifying_attributes: vec![
            KeyValue::new("n", -1i64),
            KeyValue::new("b", vec![0x00u8, 0xFF]),
            KeyValue::new("l", AnyValue::kvlist([KeyValue::new("x", true)])),
            KeyValue::new(
                "a",
                AnyValue::array([AnyValue::from("s"), AnyValue::null()]),
            ),
            KeyValue::new("e", ""),
            KeyValue::new("z", AnyValue::null()),
        ],
    };
    decode_exact(&bytes, &expected);
}

#[test]
fn config_map_entries_in_any_order() {
    let file_a = cat(&[
        &[0x0A, 0x04, b'x', b':', b' ', b'1'], // body
        &[0x12, 0x09],
        b"text/yaml", // content_type
    ]);
    let file_b = [0x0A, 0x02, b'{', b'}'];
    let entry_a = cat(&[&[0x0A, 0x06], b"a.yaml", &len_field(0x12, &file_a)]);
    let entry_b = cat(&[&[0x0A, 0x06], b"b.json", &len_field(0x12, &file_b)]);
    let hash = [0x12, 0x02, 0xAB, 0xCD]; // config_hash
    let sorted = cat(&[&len_field(0x0A, &entry_a), &len_field(0x0A, &entry_b)]);
    let reversed = cat(&[&len_field(0x0A, &entry_b), &len_field(0x0A, &entry_a)]);
    let msg = |map: &[u8]| {
        cat(&[
            &[0x0A, 0x10],
            &UID,
            &len_field(0x1A, &cat(&[&len_field(0x0A, map), &hash])),
        ])
    };

    let expected = ServerToAgent {
        instance_uid: Bytes::copy_from_slice(&UID),
        remote_config: Some(AgentRemoteConfig {
            config: Some(AgentConfigMap {
                config_map: BTreeMap::from([
                    (
                        "a.yaml".to_owned(),
                        AgentConfigFile {
                            body: Bytes::from_static(b"x: 1"),
                            content_type: "text/yaml".into(),
                        },
                    ),
                    (
                        "b.json".to_owned(),
                        AgentConfigFile {
                            body: Bytes::from_static(b"{}"),
                            content_type: String::new(),
                        },
                    ),
                ]),
            }),
            config_hash: Bytes::from_static(&[0xAB, 0xCD]),
        }),
        ..Default::default()
    };
    decode_exact(&msg(&sorted), &expected);
    // Entries arrive in any order; encoding sorts them by key.
    let from_reversed = ServerToAgent::decode(msg(&reversed).as_slice()).unwrap();
    assert_eq!(from_reversed, expected);
    assert_eq!(from_reversed.encode_to_vec(), msg(&sorted));
}

#[test]
fn map_entry_without_key_or_value_uses_defaults() {
    // An empty entry, then an entry whose key is "k" and that has no value.
    let bytes = cat(&[&[0x0A, 0x00], &len_field(0x0A, &[0x0A, 0x01, b'k'])]);
    let map = AgentConfigMap::decode(bytes.as_slice()).unwrap();
    assert_eq!(
        map.config_map,
        BTreeMap::from([
            (String::new(), AgentConfigFile::default()),
            ("k".to_owned(), AgentConfigFile::default()),
        ])
    );
}

#[test]
fn repeated_scalar_last_wins_and_submessages_merge() {
    let bytes = cat(&[
        &[0x10, 0x01],                         // sequence_num = 1
        &len_field(0x2A, &[0x08, 0x01]),       // health { healthy }
        &[0x10, 0x02],                         // sequence_num = 2 (wins)
        &len_field(0x2A, &[0x22, 0x01, b'x']), // health { status: "x" } merges
    ]);
    let msg = AgentToServer::decode(bytes.as_slice()).unwrap();
    assert_eq!(msg.sequence_num, 2);
    assert_eq!(
        msg.health,
        Some(ComponentHealth {
            healthy: true,
            status: "x".into(),
            ..Default::default()
        })
    );
}

#[test]
fn unknown_enum_value_is_kept() {
    let bytes = cat(&[&[0x0A, 0x01, b'p'], &[0x30, 0x2A]]); // name "p", status = 42
    let status = PackageStatus::decode(bytes.as_slice()).unwrap();
    assert_eq!(status.status, 42);
    assert!(PackageStatusEnum::try_from(status.status).is_err());
    assert_eq!(status.encode_to_vec(), bytes);
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let cases: &[(&str, &[u8])] = &[
        ("truncated varint", &[0x10, 0xFF]),
        ("length past the end", &[0x0A, 0x10, 0x01]),
        ("wrong wire type for a uint64", &[0x12, 0x01, 0x00]),
        (
            "invalid UTF-8 in a string",
            &[0x2A, 0x04, 0x22, 0x02, 0xC3, 0x28],
        ),
        ("field number 0", &[0x00, 0x01]),
        ("wire type 7", &[0x0F]),
        (
            "varint longer than 10 bytes",
            &[
                0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
            ],
        ),
    ];
    for (what, bytes) in cases {
        assert!(
            AgentToServer::decode(*bytes).is_err(),
            "{what} must fail to decode"
        );
    }
}
