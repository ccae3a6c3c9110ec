//! Messages an agent really sends: a full-state report and a heartbeat.

use std::collections::BTreeMap;

use opamp_proto::{
    AgentCapabilities, AgentConfigFile, AgentConfigMap, AgentDescription, AgentToServer,
    ComponentHealth, EffectiveConfig, InstanceUid, KeyValue, RemoteConfigStatus,
};

/// The instance uid every sample message carries.
pub fn instance_uid() -> InstanceUid {
    InstanceUid::from([
        0x01, 0x93, 0x6f, 0x0e, 0x1c, 0x2a, 0x7b, 0x3c, 0x8d, 0x4e, 0x5f, 0x6a, 0x7b, 0x8c, 0x9d,
        0x0e,
    ])
}

/// Capabilities of a collector-like agent that reports everything.
pub fn capabilities() -> AgentCapabilities {
    AgentCapabilities::REPORTS_STATUS
        | AgentCapabilities::ACCEPTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_EFFECTIVE_CONFIG
        | AgentCapabilities::REPORTS_HEALTH
        | AgentCapabilities::REPORTS_REMOTE_CONFIG
        | AgentCapabilities::REPORTS_HEARTBEAT
}

/// A heartbeat: instance uid, sequence number and capabilities only.
pub fn heartbeat(sequence_num: u64) -> AgentToServer {
    AgentToServer {
        instance_uid: instance_uid().to_bytes(),
        sequence_num,
        capabilities: capabilities().bits(),
        ..Default::default()
    }
}

/// A first status report of about 10 KiB: description, a health tree of 24 components and an
/// effective config of about 6 KiB.
pub fn full_state_report() -> AgentToServer {
    AgentToServer {
        agent_description: Some(description()),
        health: Some(health_tree(1_700_000_000_000_000_000)),
        effective_config: Some(effective_config(7 * 1024)),
        remote_config_status: Some(RemoteConfigStatus {
            last_remote_config_hash: vec![0xab; 32].into(),
            status: opamp_proto::generated::RemoteConfigStatuses::Applied as i32,
            error_message: String::new(),
        }),
        ..heartbeat(1)
    }
}

fn description() -> AgentDescription {
    AgentDescription::builder()
        .service_name("otelcol-contrib")
        .service_namespace("observability")
        .service_version("0.120.0")
        .service_instance_id(instance_uid().to_string())
        .identifying("deployment.environment", "production")
        .identifying("cloud.region", "eu-west-1")
        .host_name("collector-7f9c8d-abcde.eu-west-1.compute.internal")
        .os_type("linux")
        .os_version("6.8.0-1021-aws")
        .non_identifying("host.arch", "amd64")
        .non_identifying("k8s.namespace.name", "monitoring")
        .non_identifying("k8s.pod.name", "collector-7f9c8d-abcde")
        .non_identifying("process.pid", 4242_i64)
        .build()
}

fn health_tree(start_time_unix_nano: u64) -> ComponentHealth {
    let component = |name: &str| ComponentHealth {
        healthy: true,
        start_time_unix_nano,
        status: "StatusOK".to_string(),
        status_time_unix_nano: start_time_unix_nano + 1_000_000_000,
        attributes: vec![KeyValue::new("component.id", name.to_string())],
        ..Default::default()
    };
    let pipeline = |kind: &str| {
        let mut children = BTreeMap::new();
        for role in [
            "receiver",
            "processor/batch",
            "processor/memory_limiter",
            "exporter",
        ] {
            let id = format!("{role}/{kind}");
            children.insert(id.clone(), component(&id));
        }
        ComponentHealth {
            component_health_map: children,
            ..component(&format!("pipeline:{kind}"))
        }
    };
    let mut pipelines = BTreeMap::new();
    for kind in ["traces", "metrics", "logs", "traces/2", "metrics/2"] {
        pipelines.insert(format!("pipeline:{kind}"), pipeline(kind));
    }
    ComponentHealth {
        component_health_map: pipelines,
        ..component("otelcol-contrib")
    }
}

fn effective_config(size: usize) -> EffectiveConfig {
    let mut yaml = String::with_capacity(size + 128);
    let mut i = 0;
    while yaml.len() < size {
        yaml.push_str(&format!(
            "receivers:\n  otlp/{i}:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:{port}\n",
            port = 4317 + i
        ));
        i += 1;
    }
    let mut files = BTreeMap::new();
    files.insert(
        String::new(),
        AgentConfigFile {
            body: yaml.into_bytes().into(),
            content_type: "text/yaml".to_string(),
        },
    );
    EffectiveConfig {
        config_map: Some(AgentConfigMap { config_map: files }),
    }
}
