//! Message types of OpAMP, the Open Agent Management Protocol, with helpers.
//!
//! ```
//! use opamp_proto::{AgentCapabilities, AgentToServer, InstanceUid, Message};
//!
//! let uid = InstanceUid::new_v7();
//! let msg = AgentToServer {
//!     instance_uid: uid.to_bytes(),
//!     sequence_num: 1,
//!     capabilities: (AgentCapabilities::REPORTS_STATUS | AgentCapabilities::REPORTS_HEALTH).bits(),
//!     ..Default::default()
//! };
//!
//! let wire = msg.encode_to_vec();
//! let decoded = AgentToServer::decode(wire.as_slice())?;
//! assert_eq!(decoded, msg);
//! assert_eq!(InstanceUid::try_from(decoded.instance_uid.as_ref())?, uid);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! * The `.proto` files under `proto/opamp/v1/` restate the wire format of the
//!   OpAMP specification (package `opamp.proto.v1`; the exact revision is in
//!   the `SPEC_VERSION` file). Rust types are generated from them with
//!   `protox` + `prost-build` and the result is checked in under
//!   `src/generated/`, so building this crate needs neither `protoc` nor a
//!   build script. The `codegen` test fails when the checked-in code is
//!   stale; `OPAMP_REGENERATE=1 cargo test -p opamp-proto --test codegen`
//!   rewrites it.
//! * Protobuf maps are [`BTreeMap`](std::collections::BTreeMap)s, so encoding
//!   is deterministic (keys sorted), and `bytes` fields are [`Bytes`].
//! * All message types are re-exported at the crate root; [`generated`] holds
//!   everything under its protobuf name, including the nested `oneof` enums
//!   ([`any_value::Value`], [`server_error_response::Details`]).
//! * Capability and flag fields are plain `u64` on the wire. The bit-set types
//!   [`AgentCapabilities`], [`ServerCapabilities`], [`AgentToServerFlags`]
//!   and [`ServerToAgentFlags`] name every defined bit and keep unknown bits,
//!   as the spec requires for forward compatibility. (The protobuf enums with
//!   the same names live in [`generated`].)
//! * Enums are open: a field of enum type is an `i32`, so values from newer
//!   peers survive a decode/encode round trip. Use the generated accessors
//!   (e.g. `RemoteConfigStatus::status()`) or `TryFrom<i32>` to interpret them.
//! * Unknown fields are skipped when decoding, as protobuf requires.
//! * `Debug` of [`AgentConfigFile`] never prints the configuration body.

pub mod generated;

mod agent_description;
mod any_value_ext;
mod bitset;
mod capabilities;
mod config_debug;
mod error;
mod flags;
mod instance_uid;

pub use bytes::Bytes;
pub use prost::{DecodeError, EncodeError, Message, Name};

pub use agent_description::AgentDescriptionBuilder;
pub use capabilities::{AgentCapabilities, ServerCapabilities};
pub use error::Error;
pub use flags::{AgentToServerFlags, ServerToAgentFlags};
pub use instance_uid::InstanceUid;

pub use generated::{any_value, server_error_response};

// Messages, in the order of the .proto files.
pub use generated::{
    AgentConfigFile, AgentConfigMap, AgentDescription, AgentDisconnect, AgentIdentification,
    AgentRemoteConfig, AgentToServer, AnyValue, ArrayValue, AvailableComponents,
    CertificateRequest, ComponentDetails, ComponentHealth, ConnectionSettingsOffers,
    ConnectionSettingsRequest, ConnectionSettingsStatus, CustomCapabilities, CustomMessage,
    DownloadableFile, EffectiveConfig, Header, Headers, KeyValue, KeyValueList,
    OpAmpConnectionSettings, OpAmpConnectionSettingsRequest, OtherConnectionSettings,
    PackageAvailable, PackageDownloadDetails, PackageStatus, PackageStatuses, PackagesAvailable,
    ProxyConnectionSettings, RemoteConfigStatus, RetryInfo, ServerErrorResponse, ServerToAgent,
    ServerToAgentCommand, TelemetryConnectionSettings, TlsCertificate, TlsConnectionSettings,
};

// Value enums (the bit-set enums are replaced by the types above).
pub use generated::{
    CommandType, ConnectionSettingsStatuses, PackageStatusEnum, PackageType, RemoteConfigStatuses,
    ServerErrorResponseType,
};
