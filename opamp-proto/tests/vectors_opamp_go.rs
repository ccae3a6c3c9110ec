//! Decodes the opamp-go wire-format vectors (`tests/vectors/messages/`, a copy
//! of the shared vectors; see the README there) and checks them against the
//! protojson files produced by opamp-go, then re-encodes them.

mod protojson;

use std::path::{Path, PathBuf};

use opamp_proto::{
    AgentCapabilities, AgentToServer, AgentToServerFlags, InstanceUid, Message, ServerCapabilities,
    ServerToAgent, ServerToAgentFlags,
};
use protojson::{ToJson, base64, diff};
use serde_json::Value;

/// The instance UID every vector uses.
const UID: &str = "01936f0e-1c2a-7b3c-8d4e-5f6a7b8c9d0e";

/// Vectors with raw unknown fields appended after the known ones.
const WITH_UNKNOWN_FIELDS: [&str; 2] = ["a2s-13-unknown-field-999", "s2a-17-unknown-field-999"];

/// Vectors whose re-encoding is shorter than the `.bin` by a known number of
/// bytes, and why.
///
/// `a2s-02-full-status` has a map entry whose value is an empty message
/// (`available_components.components["extensions"]`). Go writes the empty
/// value field (`12 00`); prost leaves fields at their default value out of
/// map entries, as it does everywhere. Both decode to the same message, and
/// the enclosing length prefixes keep their size, so exactly 2 bytes differ.
const SHORTER_REENCODING: [(&str, usize); 1] = [("a2s-02-full-status", 2)];

struct Case {
    name: String,
    kind: String,
    bin: Vec<u8>,
    json: Value,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/messages")
}

fn cases() -> Vec<Case> {
    let index = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("INDEX.tsv");
    let cases: Vec<Case> = index
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next().expect("name column").to_owned();
            let kind = cols.next().expect("type column").to_owned();
            let bin = std::fs::read(dir().join(format!("{name}.bin"))).expect("vector .bin");
            let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).expect(".json");
            let json = serde_json::from_str(&text).expect("vector .json parses");
            Case {
                name,
                kind,
                bin,
                json,
            }
        })
        .collect();
    assert_eq!(cases.len(), 30, "INDEX.tsv lists 30 cases");
    cases
}

/// Every `.bin` in the directory is listed in INDEX.tsv.
#[test]
fn index_covers_every_file() {
    let listed: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    for entry in std::fs::read_dir(dir()).expect("vector dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if let Some(stem) = name.strip_suffix(".bin") {
            assert!(listed.iter().any(|l| l == stem), "{name} not in INDEX.tsv");
        }
    }
}

/// Parses the raw fields after `offset` and returns their field numbers.
fn trailing_field_numbers(mut rest: &[u8]) -> Vec<u64> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, tail) = buf.split_first().expect("truncated varint");
            *buf = tail;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
        }
        panic!("varint too long");
    }
    let mut numbers = Vec::new();
    while !rest.is_empty() {
        let key = varint(&mut rest);
        let skip = match key & 7 {
            0 => {
                varint(&mut rest);
                0
            }
            1 => 8,
            2 => usize::try_from(varint(&mut rest)).expect("length fits"),
            5 => 4,
            other => panic!("unexpected wire type {other}"),
        };
        rest = &rest[skip..];
        numbers.push(key >> 3);
    }
    numbers
}

/// Checks the re-encoding of a decoded vector against its `.bin`.
fn check_reencode<M: Message + Default + PartialEq + std::fmt::Debug>(
    case: &Case,
    decoded: &M,
    encoded: &[u8],
) {
    if let Some((_, shorter_by)) = SHORTER_REENCODING.iter().find(|(n, _)| *n == case.name) {
        assert_eq!(encoded.len() + shorter_by, case.bin.len(), "{}", case.name);
        let again = M::decode(encoded).expect("re-encoding decodes");
        assert_eq!(
            &again, decoded,
            "{}: re-encoding changes the message",
            case.name
        );
        assert_eq!(
            again.encode_to_vec(),
            encoded,
            "{}: encoding is not stable",
            case.name
        );
    } else if WITH_UNKNOWN_FIELDS.contains(&case.name.as_str()) {
        assert!(
            encoded.len() < case.bin.len(),
            "{}: unknown fields must be dropped",
            case.name
        );
        assert_eq!(
            encoded,
            &case.bin[..encoded.len()],
            "{}: known part differs",
            case.name
        );
        let numbers = trailing_field_numbers(&case.bin[encoded.len()..]);
        assert!(
            !numbers.is_empty() && numbers.iter().all(|n| *n >= 999),
            "{numbers:?}"
        );
    } else {
        assert_eq!(
            encoded,
            case.bin.as_slice(),
            "{}: re-encoding differs from .bin",
            case.name
        );
    }
}

fn json_u64(json: &Value, field: &str) -> u64 {
    json.get(field).map_or(0, |v| {
        v.as_str()
            .expect("64-bit ints are strings")
            .parse()
            .unwrap()
    })
}

fn check_uid(case: &Case, uid: &[u8]) {
    let expected = case
        .json
        .get("instance_uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert_eq!(base64(uid), expected, "{}: instance_uid", case.name);
    if !uid.is_empty() {
        let parsed = InstanceUid::try_from(uid).expect("16-byte instance_uid");
        assert_eq!(parsed.to_string(), UID, "{}", case.name);
    }
}

/// Top-level sub-message fields: present in JSON iff present after decoding.
fn check_presence(case: &Case, fields: &[(&str, bool)]) {
    for (field, present) in fields {
        assert_eq!(
            case.json.get(*field).is_some(),
            *present,
            "{}: presence of {field}",
            case.name
        );
    }
}

fn check_full_json(case: &Case, actual: &Value) {
    if let Some(d) = diff(&case.json, actual, "$") {
        panic!(
            "{}: decoded message differs from the Go protojson: {d}",
            case.name
        );
    }
}

fn check_agent_to_server(case: &Case) {
    let msg = AgentToServer::decode(case.bin.as_slice())
        .unwrap_or_else(|e| panic!("{}: decode failed: {e}", case.name));
    check_uid(case, &msg.instance_uid);
    assert_eq!(
        msg.sequence_num,
        json_u64(&case.json, "sequence_num"),
        "{}",
        case.name
    );
    assert_eq!(
        msg.capabilities,
        json_u64(&case.json, "capabilities"),
        "{}",
        case.name
    );
    assert_eq!(msg.flags, json_u64(&case.json, "flags"), "{}", case.name);
    check_presence(
        case,
        &[
            ("agent_description", msg.agent_description.is_some()),
            ("health", msg.health.is_some()),
            ("effective_config", msg.effective_config.is_some()),
            ("remote_config_status", msg.remote_config_status.is_some()),
            ("package_statuses", msg.package_statuses.is_some()),
            ("agent_disconnect", msg.agent_disconnect.is_some()),
            (
                "connection_settings_request",
                msg.connection_settings_request.is_some(),
            ),
            ("custom_capabilities", msg.custom_capabilities.is_some()),
            ("custom_message", msg.custom_message.is_some()),
            ("available_components", msg.available_components.is_some()),
            (
                "connection_settings_status",
                msg.connection_settings_status.is_some(),
            ),
        ],
    );
    check_full_json(case, &msg.to_json());
    check_reencode(case, &msg, &msg.encode_to_vec());
}

fn check_server_to_agent(case: &Case) {
    let msg = ServerToAgent::decode(case.bin.as_slice())
        .unwrap_or_else(|e| panic!("{}: decode failed: {e}", case.name));
    check_uid(case, &msg.instance_uid);
    assert_eq!(
        msg.capabilities,
        json_u64(&case.json, "capabilities"),
        "{}",
        case.name
    );
    assert_eq!(msg.flags, json_u64(&case.json, "flags"), "{}", case.name);
    check_presence(
        case,
        &[
            ("error_response", msg.error_response.is_some()),
            ("remote_config", msg.remote_config.is_some()),
            ("connection_settings", msg.connection_settings.is_some()),
            ("packages_available", msg.packages_available.is_some()),
            ("agent_identification", msg.agent_identification.is_some()),
            ("command", msg.command.is_some()),
            ("custom_capabilities", msg.custom_capabilities.is_some()),
            ("custom_message", msg.custom_message.is_some()),
        ],
    );
    check_full_json(case, &msg.to_json());
    check_reencode(case, &msg, &msg.encode_to_vec());
}

#[test]
fn every_vector_decodes_matches_json_and_reencodes() {
    let mut seen = [0usize; 2];
    for case in cases() {
        match case.kind.as_str() {
            "AgentToServer" => {
                check_agent_to_server(&case);
                seen[0] += 1;
            }
            "ServerToAgent" => {
                check_server_to_agent(&case);
                seen[1] += 1;
            }
            other => panic!("{}: unknown type {other}", case.name),
        }
    }
    assert_eq!(seen, [13, 17]);
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.bin"))).expect("vector")
}

#[test]
fn unknown_fields_are_skipped() {
    let a2s = AgentToServer::decode(load("a2s-13-unknown-field-999").as_slice()).unwrap();
    assert_eq!(
        a2s,
        AgentToServer {
            instance_uid: UID.parse::<InstanceUid>().unwrap().to_bytes(),
            sequence_num: 43,
            ..Default::default()
        }
    );
    let s2a = ServerToAgent::decode(load("s2a-17-unknown-field-999").as_slice()).unwrap();
    assert_eq!(
        s2a,
        ServerToAgent {
            instance_uid: UID.parse::<InstanceUid>().unwrap().to_bytes(),
            ..Default::default()
        }
    );
}

#[test]
fn unknown_enum_values_are_kept() {
    use opamp_proto::{ConnectionSettingsStatuses, RemoteConfigStatuses};

    let msg = AgentToServer::decode(load("a2s-12-unknown-enum-values").as_slice()).unwrap();
    let rcs = msg.remote_config_status.as_ref().unwrap();
    assert_eq!(rcs.status, 7);
    assert!(RemoteConfigStatuses::try_from(rcs.status).is_err());
    assert_eq!(msg.connection_settings_status.as_ref().unwrap().status, 9);
    assert!(ConnectionSettingsStatuses::try_from(9).is_err());
    assert_eq!(
        msg.package_statuses.as_ref().unwrap().packages["p"].status,
        42
    );

    let cmd = ServerToAgent::decode(load("s2a-16-command-unknown-type").as_slice()).unwrap();
    assert_eq!(
        cmd.command.unwrap().r#type,
        1,
        "must not be read as Restart (0)"
    );
    let restart = ServerToAgent::decode(load("s2a-10-command-restart").as_slice()).unwrap();
    assert_eq!(restart.command.unwrap().r#type, 0);
}

#[test]
fn unknown_bits_are_kept() {
    let msg = AgentToServer::decode(load("a2s-10-capabilities-unknown-bit").as_slice()).unwrap();
    let caps = msg.typed_capabilities();
    assert_eq!(caps.bits(), (1 << 40) | 1);
    assert!(caps.contains(AgentCapabilities::REPORTS_STATUS));
    assert_eq!(caps.unknown_bits(), 1 << 40);
    assert_eq!(
        format!("{caps:?}"),
        "AgentCapabilities(REPORTS_STATUS | 0x10000000000)"
    );

    let all = AgentToServer::decode(load("a2s-09-capabilities-all").as_slice()).unwrap();
    assert_eq!(all.typed_capabilities(), AgentCapabilities::all_known());

    let msg = ServerToAgent::decode(load("s2a-15-flags-both-and-unknown-bit").as_slice()).unwrap();
    let flags = msg.typed_flags();
    assert!(flags.contains(ServerToAgentFlags::all_known()));
    assert_eq!(flags.unknown_bits(), 1 << 40);
    assert_eq!(msg.typed_capabilities().unknown_bits(), 1 << 33);

    let first = ServerToAgent::decode(load("s2a-02-first-response-capabilities").as_slice());
    assert_eq!(
        first.unwrap().typed_capabilities(),
        ServerCapabilities::all_known()
    );
    let req = AgentToServer::decode(load("a2s-06-request-instance-uid").as_slice()).unwrap();
    assert_eq!(req.typed_flags(), AgentToServerFlags::REQUEST_INSTANCE_UID);
}

#[test]
fn health_attributes_field_7_is_decoded() {
    let msg = AgentToServer::decode(load("a2s-02-full-status").as_slice()).unwrap();
    let health = msg.health.unwrap();
    assert_eq!(
        health.attributes.len(),
        1,
        "root ComponentHealth carries attributes"
    );
    let traces = &health.component_health_map["pipeline:traces"];
    assert_eq!(traces.attributes.len(), 1);
    assert_eq!(
        traces.component_health_map["exporter:otlp"]
            .attributes
            .len(),
        2
    );
    assert_eq!(
        traces.component_health_map["receiver:otlp"]
            .attributes
            .len(),
        2
    );
    assert!(
        health.component_health_map["pipeline:metrics"]
            .attributes
            .is_empty()
    );
}

/// The JSON comparison notices changed and missing fields (so the main test
/// can fail).
#[test]
fn json_comparison_detects_differences() {
    use opamp_proto::server_error_response::Details;

    let name = "s2a-08-error-unavailable-retry";
    let text = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut msg = ServerToAgent::decode(load(name).as_slice()).unwrap();
    assert_eq!(diff(&json, &msg.to_json(), "$"), None);

    let error = msg.error_response.as_mut().unwrap();
    if let Some(Details::RetryInfo(retry)) = error.details.as_mut() {
        retry.retry_after_nanoseconds += 1;
    }
    let changed = diff(&json, &msg.to_json(), "$").expect("changed value detected");
    assert!(changed.contains("retry_after_nanoseconds"), "{changed}");

    msg.error_response.as_mut().unwrap().details = None;
    let missing = diff(&json, &msg.to_json(), "$").expect("missing field detected");
    assert!(missing.contains("retry_info"), "{missing}");

    msg.error_response = None;
    msg.flags = 1;
    assert!(diff(&json, &msg.to_json(), "$").is_some());
}
