//! Checks that the checked-in generated code in `src/generated/` matches what
//! prost-build produces from `proto/` today.
//!
//! Run with `OPAMP_REGENERATE=1 cargo test -p opamp-proto --test codegen` to
//! overwrite `src/generated/` after editing a `.proto` file.

use std::path::{Path, PathBuf};

/// The `.proto` files, relative to the `proto/` include directory.
const PROTO_FILES: [&str; 2] = ["opamp/v1/opamp.proto", "opamp/v1/anyvalue.proto"];

/// Name of the file prost-build writes for package `opamp.proto.v1`.
const GENERATED_FILE: &str = "opamp.proto.v1.rs";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs protox + prost-build with the crate's settings and writes the output
/// into `out_dir`.
fn generate_into(out_dir: &Path) {
    let proto_dir = crate_dir().join("proto");
    let fds = protox::compile(PROTO_FILES, [&proto_dir]).expect("protox compiles the .proto files");
    let mut config = prost_build::Config::new();
    config
        .out_dir(out_dir)
        .btree_map(["."])
        .bytes(["."])
        .enable_type_names()
        // Config bodies can carry secrets: Debug is written by hand.
        .skip_debug([".opamp.proto.v1.AgentConfigFile"]);
    config.compile_fds(fds).expect("prost-build generates code");
}

#[test]
fn generated_code_is_up_to_date() {
    let tmp = tempfile::tempdir().expect("temp dir");
    generate_into(tmp.path());
    let fresh_path = tmp.path().join(GENERATED_FILE);
    let fresh = std::fs::read_to_string(&fresh_path).expect("prost-build wrote the package file");
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read temp dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "expected exactly one generated file, got {entries:?}"
    );

    let checked_in_path = crate_dir()
        .join("src")
        .join("generated")
        .join(GENERATED_FILE);
    if std::env::var_os("OPAMP_REGENERATE").is_some_and(|v| v == "1") {
        std::fs::write(&checked_in_path, &fresh).expect("overwrite src/generated");
        eprintln!("regenerated {}", checked_in_path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
    if checked_in != fresh {
        let first_diff = checked_in
            .lines()
            .zip(fresh.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  checked in: {a}\n  generated:  {b}", i + 1))
            .unwrap_or_else(|| {
                format!(
                    "line counts differ: checked in {}, generated {}",
                    checked_in.lines().count(),
                    fresh.lines().count()
                )
            });
        panic!(
            "src/generated/{GENERATED_FILE} is stale ({first_diff}).\n\
             Regenerate with: OPAMP_REGENERATE=1 cargo test -p opamp-proto --test codegen"
        );
    }
}
