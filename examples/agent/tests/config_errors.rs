//! Configuration files with mistakes are refused with the file and the key; the sample file
//! shipped with the example is valid.

use std::path::{Path, PathBuf};

use opamp_example_agent::config_file::AgentConfig;
use opamp_example_agent::{Error, RunOptions};

const GOOD: &str = "extensions:
  opamp:
    server:
      ws:
        endpoint: ws://127.0.0.1:4320/v1/opamp
    heartbeat_interval: 30s
receivers:
  otlp: {}
exporters:
  debug: {}
service:
  extensions: [opamp]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
";

fn error_of(text: &str) -> (String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, text).unwrap();
    let err = AgentConfig::load(&path, &|_| None).unwrap_err();
    let display = err.to_string();
    assert!(
        display.starts_with(&path.display().to_string()),
        "the error names the file: {display}"
    );
    (display, err.key().map(str::to_owned))
}

#[test]
fn the_good_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, GOOD).unwrap();
    AgentConfig::load(&path, &|_| None).unwrap();
}

#[test]
fn mistakes_name_the_key() {
    let cases = [
        (
            "endpoint: ws://",
            "endpont: ws://",
            "extensions.opamp.server.ws.endpont",
        ),
        (
            "heartbeat_interval: 30s",
            "heartbeat_interval: 30",
            "extensions.opamp.heartbeat_interval",
        ),
        (
            "heartbeat_interval: 30s",
            "heartbeat_interval: 10ms",
            "extensions.opamp.heartbeat_interval",
        ),
        ("ws:\n", "wss:\n", "extensions.opamp.server.wss"),
        (
            "heartbeat_interval: 30s",
            "heartbeat_interval: 30s\n    capabilities:\n      accepts_packages: true",
            "extensions.opamp.capabilities.accepts_packages",
        ),
        (
            "heartbeat_interval: 30s",
            "heartbeat_interval: 30s\n    instance_uid: not-a-uuid",
            "extensions.opamp.instance_uid",
        ),
        (
            "heartbeat_interval: 30s",
            "heartbeat_interval: 30s\n    agent_description:\n      identifying_attributes:\n        - key: a",
            "extensions.opamp.agent_description.identifying_attributes[0]",
        ),
        (
            "exporters: [debug]",
            "exporters: [otlp]",
            "service.pipelines.traces.exporters[0]",
        ),
        (
            "endpoint: ws://127.0.0.1:4320/v1/opamp",
            "endpoint: ws://127.0.0.1:4320/v1/opamp\n        headers:\n          X-Key: ${MISSING_KEY}",
            "extensions.opamp.server.ws.headers.X-Key",
        ),
    ];
    for (from, to, key) in cases {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from:?} must occur");
        let (display, found) = error_of(&text);
        assert_eq!(found.as_deref(), Some(key), "{display}");
    }
}

#[test]
fn syntax_errors_have_a_line() {
    let (display, key) = error_of("extensions: [\n");
    assert!(key.is_none());
    assert!(display.contains("invalid YAML"), "{display}");
}

#[test]
fn count_needs_a_state_dir_and_no_fixed_uid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let err = RunOptions::new(&path)
        .with_count(2)
        .instances()
        .unwrap_err();
    assert!(matches!(err, Error::Options(_)), "{err}");
    let fixed = GOOD.replace(
        "heartbeat_interval: 30s",
        "heartbeat_interval: 30s\n    instance_uid: 0190a0b0-0000-7000-8000-000000000001",
    );
    std::fs::write(&path, fixed).unwrap();
    let err = RunOptions::new(&path)
        .with_count(2)
        .with_state_dir(dir.path())
        .instances()
        .unwrap_err();
    assert!(err.to_string().contains("instance_uid"), "{err}");
    assert_eq!(
        RunOptions::new(&path).instances().unwrap().len(),
        1,
        "one agent with a fixed UID is fine"
    );
}

#[test]
fn the_sample_file_is_valid() {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("agent.yaml");
    let env = |name: &str| match name {
        "OPAMP_API_KEY" => Some("key".to_owned()),
        _ => None,
    };
    let config = AgentConfig::load(Path::new(&sample), &env).unwrap();
    assert!(!config.pipelines.is_empty());
}
