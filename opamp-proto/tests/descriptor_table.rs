//! Checks every message field name, number and type, and every enum value,
//! of `proto/opamp/v1/*.proto` against a table written down from the OpAMP
//! specification's opamp.proto (the revision in SPEC_VERSION). The table is
//! the wire-format fact: the test fails when the `.proto` files drift from
//! it in either direction (changed, missing or extra fields or values).

use std::collections::BTreeMap;
use std::path::Path;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

const PACKAGE: &str = "opamp.proto.v1";

/// One field: name, number, type as written in a `.proto` file.
type Field = (&'static str, i32, &'static str);

const MESSAGES: &[(&str, &[Field])] = &[
    (
        "AnyValue",
        &[
            ("string_value", 1, "string oneof value"),
            ("bool_value", 2, "bool oneof value"),
            ("int_value", 3, "int64 oneof value"),
            ("double_value", 4, "double oneof value"),
            ("array_value", 5, "ArrayValue oneof value"),
            ("kvlist_value", 6, "KeyValueList oneof value"),
            ("bytes_value", 7, "bytes oneof value"),
        ],
    ),
    ("ArrayValue", &[("values", 1, "repeated AnyValue")]),
    ("KeyValueList", &[("values", 1, "repeated KeyValue")]),
    (
        "KeyValue",
        &[("key", 1, "string"), ("value", 2, "AnyValue")],
    ),
    (
        "AgentToServer",
        &[
            ("instance_uid", 1, "bytes"),
            ("sequence_num", 2, "uint64"),
            ("agent_description", 3, "AgentDescription"),
            ("capabilities", 4, "uint64"),
            ("health", 5, "ComponentHealth"),
            ("effective_config", 6, "EffectiveConfig"),
            ("remote_config_status", 7, "RemoteConfigStatus"),
            ("package_statuses", 8, "PackageStatuses"),
            ("agent_disconnect", 9, "AgentDisconnect"),
            ("flags", 10, "uint64"),
            (
                "connection_settings_request",
                11,
                "ConnectionSettingsRequest",
            ),
            ("custom_capabilities", 12, "CustomCapabilities"),
            ("custom_message", 13, "CustomMessage"),
            ("available_components", 14, "AvailableComponents"),
            ("connection_settings_status", 15, "ConnectionSettingsStatus"),
        ],
    ),
    ("AgentDisconnect", &[]),
    (
        "ConnectionSettingsRequest",
        &[("opamp", 1, "OpAMPConnectionSettingsRequest")],
    ),
    (
        "OpAMPConnectionSettingsRequest",
        &[("certificate_request", 1, "CertificateRequest")],
    ),
    ("CertificateRequest", &[("csr", 1, "bytes")]),
    (
        "AvailableComponents",
        &[
            ("components", 1, "map<string, ComponentDetails>"),
            ("hash", 2, "bytes"),
        ],
    ),
    (
        "ComponentDetails",
        &[
            ("metadata", 1, "repeated KeyValue"),
            ("sub_component_map", 2, "map<string, ComponentDetails>"),
        ],
    ),
    (
        "ServerToAgent",
        &[
            ("instance_uid", 1, "bytes"),
            ("error_response", 2, "ServerErrorResponse"),
            ("remote_config", 3, "AgentRemoteConfig"),
            ("connection_settings", 4, "ConnectionSettingsOffers"),
            ("packages_available", 5, "PackagesAvailable"),
            ("flags", 6, "uint64"),
            ("capabilities", 7, "uint64"),
            ("agent_identification", 8, "AgentIdentification"),
            ("command", 9, "ServerToAgentCommand"),
            ("custom_capabilities", 10, "CustomCapabilities"),
            ("custom_message", 11, "CustomMessage"),
        ],
    ),
    (
        "OpAMPConnectionSettings",
        &[
            ("destination_endpoint", 1, "string"),
            ("headers", 2, "Headers"),
            ("certificate", 3, "TLSCertificate"),
            ("heartbeat_interval_seconds", 4, "uint64"),
            ("tls", 5, "TLSConnectionSettings"),
            ("proxy", 6, "ProxyConnectionSettings"),
        ],
    ),
    (
        "TelemetryConnectionSettings",
        &[
            ("destination_endpoint", 1, "string"),
            ("headers", 2, "Headers"),
            ("certificate", 3, "TLSCertificate"),
            ("tls", 4, "TLSConnectionSettings"),
            ("proxy", 5, "ProxyConnectionSettings"),
        ],
    ),
    (
        "OtherConnectionSettings",
        &[
            ("destination_endpoint", 1, "string"),
            ("headers", 2, "Headers"),
            ("certificate", 3, "TLSCertificate"),
            ("other_settings", 4, "map<string, string>"),
            ("tls", 5, "TLSConnectionSettings"),
            ("proxy", 6, "ProxyConnectionSettings"),
        ],
    ),
    (
        "TLSConnectionSettings",
        &[
            ("ca_pem_contents", 1, "string"),
            ("include_system_ca_certs_pool", 2, "bool"),
            ("insecure_skip_verify", 3, "bool"),
            ("min_version", 4, "string"),
            ("max_version", 5, "string"),
            ("cipher_suites", 6, "repeated string"),
        ],
    ),
    (
        "ProxyConnectionSettings",
        &[("url", 1, "string"), ("connect_headers", 2, "Headers")],
    ),
    ("Headers", &[("headers", 1, "repeated Header")]),
    ("Header", &[("key", 1, "string"), ("value", 2, "string")]),
    (
        "TLSCertificate",
        &[
            ("cert", 1, "bytes"),
            ("private_key", 2, "bytes"),
            ("ca_cert", 3, "bytes"),
        ],
    ),
    (
        "ConnectionSettingsOffers",
        &[
            ("hash", 1, "bytes"),
            ("opamp", 2, "OpAMPConnectionSettings"),
            ("own_metrics", 3, "TelemetryConnectionSettings"),
            ("own_traces", 4, "TelemetryConnectionSettings"),
            ("own_logs", 5, "TelemetryConnectionSettings"),
            (
                "other_connections",
                6,
                "map<string, OtherConnectionSettings>",
            ),
        ],
    ),
    (
        "PackagesAvailable",
        &[
            ("packages", 1, "map<string, PackageAvailable>"),
            ("all_packages_hash", 2, "bytes"),
        ],
    ),
    (
        "PackageAvailable",
        &[
            ("type", 1, "PackageType"),
            ("version", 2, "string"),
            ("file", 3, "DownloadableFile"),
            ("hash", 4, "bytes"),
        ],
    ),
    (
        "DownloadableFile",
        &[
            ("download_url", 1, "string"),
            ("content_hash", 2, "bytes"),
            ("signature", 3, "bytes"),
            ("headers", 4, "Headers"),
        ],
    ),
    (
        "ServerErrorResponse",
        &[
            ("type", 1, "ServerErrorResponseType"),
            ("error_message", 2, "string"),
            ("retry_info", 3, "RetryInfo oneof Details"),
        ],
    ),
    ("RetryInfo", &[("retry_after_nanoseconds", 1, "uint64")]),
    ("ServerToAgentCommand", &[("type", 1, "CommandType")]),
    (
        "AgentDescription",
        &[
            ("identifying_attributes", 1, "repeated KeyValue"),
            ("non_identifying_attributes", 2, "repeated KeyValue"),
        ],
    ),
    (
        "ComponentHealth",
        &[
            ("healthy", 1, "bool"),
            ("start_time_unix_nano", 2, "fixed64"),
            ("last_error", 3, "string"),
            ("status", 4, "string"),
            ("status_time_unix_nano", 5, "fixed64"),
            ("component_health_map", 6, "map<string, ComponentHealth>"),
            ("attributes", 7, "repeated KeyValue"),
        ],
    ),
    ("EffectiveConfig", &[("config_map", 1, "AgentConfigMap")]),
    (
        "RemoteConfigStatus",
        &[
            ("last_remote_config_hash", 1, "bytes"),
            ("status", 2, "RemoteConfigStatuses"),
            ("error_message", 3, "string"),
        ],
    ),
    (
        "ConnectionSettingsStatus",
        &[
            ("last_connection_settings_hash", 1, "bytes"),
            ("status", 2, "ConnectionSettingsStatuses"),
            ("error_message", 3, "string"),
        ],
    ),
    (
        "PackageStatuses",
        &[
            ("packages", 1, "map<string, PackageStatus>"),
            ("server_provided_all_packages_hash", 2, "bytes"),
            ("error_message", 3, "string"),
        ],
    ),
    (
        "PackageStatus",
        &[
            ("name", 1, "string"),
            ("agent_has_version", 2, "string"),
            ("agent_has_hash", 3, "bytes"),
            ("server_offered_version", 4, "string"),
            ("server_offered_hash", 5, "bytes"),
            ("status", 6, "PackageStatusEnum"),
            ("error_message", 7, "string"),
            ("download_details", 8, "PackageDownloadDetails"),
        ],
    ),
    (
        "PackageDownloadDetails",
        &[
            ("download_percent", 1, "double"),
            ("download_bytes_per_second", 2, "double"),
        ],
    ),
    ("AgentIdentification", &[("new_instance_uid", 1, "bytes")]),
    (
        "AgentRemoteConfig",
        &[("config", 1, "AgentConfigMap"), ("config_hash", 2, "bytes")],
    ),
    (
        "AgentConfigMap",
        &[("config_map", 1, "map<string, AgentConfigFile>")],
    ),
    (
        "AgentConfigFile",
        &[("body", 1, "bytes"), ("content_type", 2, "string")],
    ),
    (
        "CustomCapabilities",
        &[("capabilities", 1, "repeated string")],
    ),
    (
        "CustomMessage",
        &[
            ("capability", 1, "string"),
            ("type", 2, "string"),
            ("data", 3, "bytes"),
        ],
    ),
];

const ENUMS: &[(&str, &[(&str, i32)])] = &[
    (
        "AgentToServerFlags",
        &[
            ("AgentToServerFlags_Unspecified", 0),
            ("AgentToServerFlags_RequestInstanceUid", 1),
        ],
    ),
    (
        "ServerToAgentFlags",
        &[
            ("ServerToAgentFlags_Unspecified", 0),
            ("ServerToAgentFlags_ReportFullState", 1),
            ("ServerToAgentFlags_ReportAvailableComponents", 2),
        ],
    ),
    (
        "ServerCapabilities",
        &[
            ("ServerCapabilities_Unspecified", 0),
            ("ServerCapabilities_AcceptsStatus", 1),
            ("ServerCapabilities_OffersRemoteConfig", 2),
            ("ServerCapabilities_AcceptsEffectiveConfig", 4),
            ("ServerCapabilities_OffersPackages", 0x8),
            ("ServerCapabilities_AcceptsPackagesStatus", 0x10),
            ("ServerCapabilities_OffersConnectionSettings", 0x20),
            ("ServerCapabilities_AcceptsConnectionSettingsRequest", 0x40),
        ],
    ),
    (
        "PackageType",
        &[("PackageType_TopLevel", 0), ("PackageType_Addon", 1)],
    ),
    (
        "ServerErrorResponseType",
        &[
            ("ServerErrorResponseType_Unknown", 0),
            ("ServerErrorResponseType_BadRequest", 1),
            ("ServerErrorResponseType_Unavailable", 2),
        ],
    ),
    ("CommandType", &[("CommandType_Restart", 0)]),
    (
        "AgentCapabilities",
        &[
            ("AgentCapabilities_Unspecified", 0),
            ("AgentCapabilities_ReportsStatus", 1),
            ("AgentCapabilities_AcceptsRemoteConfig", 2),
            ("AgentCapabilities_ReportsEffectiveConfig", 4),
            ("AgentCapabilities_AcceptsPackages", 0x8),
            ("AgentCapabilities_ReportsPackageStatuses", 0x10),
            ("AgentCapabilities_ReportsOwnTraces", 0x20),
            ("AgentCapabilities_ReportsOwnMetrics", 0x40),
            ("AgentCapabilities_ReportsOwnLogs", 0x80),
            ("AgentCapabilities_AcceptsOpAMPConnectionSettings", 0x100),
            ("AgentCapabilities_AcceptsOtherConnectionSettings", 0x200),
            ("AgentCapabilities_AcceptsRestartCommand", 0x400),
            ("AgentCapabilities_ReportsHealth", 0x800),
            ("AgentCapabilities_ReportsRemoteConfig", 0x1000),
            ("AgentCapabilities_ReportsHeartbeat", 0x2000),
            ("AgentCapabilities_ReportsAvailableComponents", 0x4000),
            ("AgentCapabilities_ReportsConnectionSettingsStatus", 0x8000),
        ],
    ),
    (
        "ConnectionSettingsStatuses",
        &[
            ("ConnectionSettingsStatuses_UNSET", 0),
            ("ConnectionSettingsStatuses_APPLIED", 1),
            ("ConnectionSettingsStatuses_APPLYING", 2),
            ("ConnectionSettingsStatuses_FAILED", 3),
        ],
    ),
    (
        "RemoteConfigStatuses",
        &[
            ("RemoteConfigStatuses_UNSET", 0),
            ("RemoteConfigStatuses_APPLIED", 1),
            ("RemoteConfigStatuses_APPLYING", 2),
            ("RemoteConfigStatuses_FAILED", 3),
        ],
    ),
    (
        "PackageStatusEnum",
        &[
            ("PackageStatusEnum_Installed", 0),
            ("PackageStatusEnum_InstallPending", 1),
            ("PackageStatusEnum_Installing", 2),
            ("PackageStatusEnum_InstallFailed", 3),
            ("PackageStatusEnum_Downloading", 4),
        ],
    ),
];

fn compile() -> FileDescriptorSet {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    protox::compile(["opamp/v1/opamp.proto", "opamp/v1/anyvalue.proto"], [proto])
        .expect(".proto files compile")
}

/// Short name of a referenced type, e.g. `.opamp.proto.v1.KeyValue` -> `KeyValue`.
fn short(type_name: &str) -> &str {
    type_name
        .strip_prefix(&format!(".{PACKAGE}."))
        .unwrap_or_else(|| panic!("type {type_name} outside package {PACKAGE}"))
}

fn scalar_name(t: Type) -> &'static str {
    match t {
        Type::Double => "double",
        Type::Float => "float",
        Type::Int64 => "int64",
        Type::Uint64 => "uint64",
        Type::Int32 => "int32",
        Type::Fixed64 => "fixed64",
        Type::Fixed32 => "fixed32",
        Type::Bool => "bool",
        Type::String => "string",
        Type::Bytes => "bytes",
        Type::Uint32 => "uint32",
        Type::Sfixed32 => "sfixed32",
        Type::Sfixed64 => "sfixed64",
        Type::Sint32 => "sint32",
        Type::Sint64 => "sint64",
        Type::Group | Type::Message | Type::Enum => unreachable!("not a scalar: {t:?}"),
    }
}

/// Renders a field's type the way the table writes it.
fn render_field(msg: &DescriptorProto, field: &prost_types::FieldDescriptorProto) -> String {
    let base = match field.r#type() {
        Type::Message | Type::Enum => short(field.type_name()).to_owned(),
        other => scalar_name(other).to_owned(),
    };
    // A map field is a repeated message whose nested type is a map entry.
    if field.label() == Label::Repeated && field.r#type() == Type::Message {
        let entry_name = base.rsplit('.').next().unwrap_or_default();
        let nested = msg.nested_type.iter().find(|n| n.name() == entry_name);
        if let Some(entry) = nested.filter(|n| n.options.as_ref().is_some_and(|o| o.map_entry())) {
            let kv: Vec<String> = entry.field.iter().map(|f| render_field(entry, f)).collect();
            return format!("map<{}, {}>", kv[0], kv[1]);
        }
    }
    let mut out = match field.label() {
        Label::Repeated => format!("repeated {base}"),
        _ => base,
    };
    if field.proto3_optional() {
        out = format!("optional {out}");
    }
    if let Some(index) = field.oneof_index.filter(|_| !field.proto3_optional()) {
        let oneof = &msg.oneof_decl[usize::try_from(index).expect("oneof index")];
        out = format!("{out} oneof {}", oneof.name());
    }
    out
}

#[test]
fn package_and_files() {
    let fds = compile();
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"opamp/v1/opamp.proto"));
    assert!(names.contains(&"opamp/v1/anyvalue.proto"));
    for file in &fds.file {
        assert_eq!(file.package(), PACKAGE, "{}", file.name());
        assert_eq!(file.syntax(), "proto3", "{}", file.name());
    }
}

#[test]
fn every_message_field_matches_the_table() {
    let fds = compile();
    let mut actual: BTreeMap<String, Vec<(String, i32, String)>> = BTreeMap::new();
    for file in &fds.file {
        for msg in &file.message_type {
            let fields = msg
                .field
                .iter()
                .map(|f| (f.name().to_owned(), f.number(), render_field(msg, f)));
            let previous = actual.insert(msg.name().to_owned(), fields.collect());
            assert!(previous.is_none(), "message {} defined twice", msg.name());
            // Only map entries may be nested; everything else is top-level.
            for nested in &msg.nested_type {
                assert!(
                    nested.options.as_ref().is_some_and(|o| o.map_entry()),
                    "unexpected nested message {}.{}",
                    msg.name(),
                    nested.name()
                );
            }
            assert!(
                msg.enum_type.is_empty(),
                "unexpected nested enum in {}",
                msg.name()
            );
        }
    }
    let expected: BTreeMap<String, Vec<(String, i32, String)>> = MESSAGES
        .iter()
        .map(|(name, fields)| {
            let fields = fields
                .iter()
                .map(|(f, n, t)| ((*f).to_owned(), *n, (*t).to_owned()));
            ((*name).to_owned(), fields.collect())
        })
        .collect();
    assert_eq!(
        expected.len(),
        MESSAGES.len(),
        "duplicate message in the table"
    );
    for (name, fields) in &expected {
        let got = actual
            .get(name)
            .unwrap_or_else(|| panic!("message {name} missing"));
        assert_eq!(got, fields, "fields of message {name}");
    }
    let extra: Vec<&String> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(extra.is_empty(), "messages not in the table: {extra:?}");
}

#[test]
fn every_enum_value_matches_the_table() {
    let fds = compile();
    let mut actual: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
    for file in &fds.file {
        for e in &file.enum_type {
            let values = e.value.iter().map(|v| (v.name().to_owned(), v.number()));
            assert!(
                actual
                    .insert(e.name().to_owned(), values.collect())
                    .is_none()
            );
        }
    }
    let expected: BTreeMap<String, Vec<(String, i32)>> = ENUMS
        .iter()
        .map(|(name, values)| {
            (
                (*name).to_owned(),
                values.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect(),
            )
        })
        .collect();
    assert_eq!(actual, expected);
}

/// The generated Rust enums carry the same numbers (prost strips the
/// `EnumName_` prefix from variant names).
#[test]
fn generated_enums_match_the_table() {
    use opamp_proto::generated as g;

    fn check<E: Copy>(name: &str, all: &[E], as_str: fn(&E) -> &'static str, num: fn(E) -> i32) {
        let table = ENUMS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("enum in table")
            .1;
        let got: Vec<(&str, i32)> = all.iter().map(|e| (as_str(e), num(*e))).collect();
        assert_eq!(got, table, "generated enum {name}");
    }
    macro_rules! check {
        ($ty:ident: $($v:ident),+) => {
            check(stringify!($ty), &[$(g::$ty::$v),+], g::$ty::as_str_name, |e| e as i32)
        };
    }
    check!(AgentToServerFlags: Unspecified, RequestInstanceUid);
    check!(ServerToAgentFlags: Unspecified, ReportFullState, ReportAvailableComponents);
    check!(
        ServerCapabilities: Unspecified, AcceptsStatus, OffersRemoteConfig, AcceptsEffectiveConfig,
        OffersPackages, AcceptsPackagesStatus, OffersConnectionSettings,
        AcceptsConnectionSettingsRequest
    );
    check!(PackageType: TopLevel, Addon);
    check!(ServerErrorResponseType: Unknown, BadRequest, Unavailable);
    check!(CommandType: Restart);
    check!(
        AgentCapabilities: Unspecified, ReportsStatus, AcceptsRemoteConfig, ReportsEffectiveConfig,
        AcceptsPackages, ReportsPackageStatuses, ReportsOwnTraces, ReportsOwnMetrics,
        ReportsOwnLogs, AcceptsOpAmpConnectionSettings, AcceptsOtherConnectionSettings,
        AcceptsRestartCommand, ReportsHealth, ReportsRemoteConfig, ReportsHeartbeat,
        ReportsAvailableComponents, ReportsConnectionSettingsStatus
    );
    check!(ConnectionSettingsStatuses: Unset, Applied, Applying, Failed);
    check!(RemoteConfigStatuses: Unset, Applied, Applying, Failed);
    check!(PackageStatusEnum: Installed, InstallPending, Installing, InstallFailed, Downloading);
}
