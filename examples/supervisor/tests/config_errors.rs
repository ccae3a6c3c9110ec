//! `supervisor.yaml` mistakes are refused at start with the file and the key; the sample
//! files are valid.

use std::path::{Path, PathBuf};

use opamp_supervisor::SupervisorConfig;

fn fake_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-agent"))
}

fn good(dir: &Path) -> String {
    std::fs::write(dir.join("base.yaml"), "receivers: {}\n").unwrap();
    format!(
        "server:
  endpoint: ws://127.0.0.1:4320/v1/opamp
  headers:
    Authorization: Bearer ${{TOKEN:-dev}}
capabilities:
  accepts_remote_config: true
agent:
  executable: {}
  config_file: effective.yaml
  base_config: base.yaml
storage:
  directory: data
",
        fake_agent().display()
    )
}

fn load(
    dir: &Path,
    text: &str,
) -> Result<SupervisorConfig, opamp_example_agent::yaml::ConfigError> {
    let path = dir.join("supervisor.yaml");
    std::fs::write(&path, text).unwrap();
    SupervisorConfig::load(&path, &|_| None)
}

#[test]
fn the_good_file_loads_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), &good(dir.path())).unwrap();
    assert_eq!(config.agent.health_check_url, "http://localhost:13133");
    assert_eq!(config.storage_dir, dir.path().join("data"));
    assert_eq!(config.agent.config_file, dir.path().join("effective.yaml"));
    assert_eq!(
        config.agent.args,
        [
            "--config".to_owned(),
            dir.path().join("effective.yaml").display().to_string()
        ]
    );
    assert_eq!(config.server.headers["authorization"], "Bearer dev");
    assert!(config.agent.base_config.is_some());
}

#[test]
fn mistakes_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = good(dir.path());
    let cases = [
        (
            "  config_file: effective.yaml",
            "  config_fil: effective.yaml",
            "agent.config_fil",
        ),
        ("endpoint: ws://", "endpoint: ftp://", "server.endpoint"),
        (
            "storage:\n  directory: data",
            "storage:\n  directory: data\n  size: 1",
            "storage.size",
        ),
        (
            "  accepts_remote_config: true",
            "  accepts_remote_config: yes please",
            "capabilities.accepts_remote_config",
        ),
        (
            "  accepts_remote_config: true",
            "  reports_available_components: true",
            "capabilities.reports_available_components",
        ),
        (
            "  config_file: effective.yaml",
            "  config_file: effective.yaml\n  health_check_url: https://localhost:13133",
            "agent.health_check_url",
        ),
        (
            "  config_file: effective.yaml",
            "  config_file: effective.yaml\n  config_apply_timeout: 0",
            "agent.config_apply_timeout",
        ),
        (
            "  config_file: effective.yaml",
            "  config_file: effective.yaml\n  reload: sigusr1",
            "agent.reload",
        ),
        (
            "  config_file: effective.yaml",
            "  config_file: effective.yaml\n  restart_backoff: {initial: 10s, max: 1s}",
            "agent.restart_backoff.max",
        ),
        (
            "  config_file: effective.yaml",
            "  config_file: missing-dir/effective.yaml",
            "agent.config_file",
        ),
        (
            "Bearer ${TOKEN:-dev}",
            "Bearer ${TOKEN}",
            "server.headers.Authorization",
        ),
    ];
    for (from, to, key) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from:?} must occur");
        let err = load(dir.path(), &text).unwrap_err();
        let display = err.to_string();
        assert!(display.contains("supervisor.yaml"), "{display}");
        assert_eq!(err.key(), Some(key), "{display}");
    }
    let missing_exe = base.replace(&fake_agent().display().to_string(), "/nonexistent/otelcol");
    let err = load(dir.path(), &missing_exe).unwrap_err();
    assert_eq!(err.key(), Some("agent.executable"), "{err}");
    assert!(err.to_string().contains("/nonexistent/otelcol"), "{err}");
}

#[test]
fn a_bad_base_config_names_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = good(dir.path());
    std::fs::write(dir.path().join("base.yaml"), "receivers: [\n").unwrap();
    let err = load(dir.path(), &text).unwrap_err();
    assert!(err.to_string().contains("base.yaml"), "{err}");
}

#[test]
fn the_sample_files_are_valid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = fake_agent().display().to_string();
    let env = |name: &str| match name {
        "OTEL_COLLECTOR_BINARY" | "FAKE_AGENT" => Some(exe.clone()),
        _ => None,
    };
    let config = SupervisorConfig::load(&root.join("supervisor.yaml"), &env).unwrap();
    assert!(config.agent.base_config.is_some());
    let fake = SupervisorConfig::load(&root.join("supervisor-fake-agent.yaml"), &env).unwrap();
    assert!(fake.agent.inject_health_check);
}
