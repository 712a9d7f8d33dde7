//! What a user of the facade compiles: with default features, the normal
//! dependency tree of `threescale` holds the tower layer but not actix-web,
//! the emulator or the command line's crates; each opt-in feature brings its
//! crate. Reads the tree with `cargo tree --offline` (the lock file and the
//! local registry cache only).

use std::process::Command;

/// The package names in `threescale`'s normal dependency tree for `features`.
fn tree(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--offline",
        "-p",
        "threescale",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let output = cmd.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

#[test]
fn default_features_bring_the_tower_layer_only() {
    let names = tree(&[]);
    for wanted in [
        "threescale-core",
        "threescale-tower",
        "axum",
        "serde_yaml_ng",
    ] {
        assert!(has(&names, wanted), "{wanted} missing from {names:?}");
    }
    for unwanted in [
        "actix-web",
        "threescale-actix",
        "threescale-emulator",
        "clap",
        "tracing-subscriber",
        "openapiv3",
    ] {
        assert!(!has(&names, unwanted), "{unwanted} in the default tree");
    }
}

#[test]
fn opt_in_features_bring_their_crates() {
    let names = tree(&["actix", "emulator", "openapi"]);
    for wanted in [
        "actix-web",
        "threescale-actix",
        "threescale-emulator",
        "openapiv3",
    ] {
        assert!(has(&names, wanted), "{wanted} missing from {names:?}");
    }
    // The command line's crates stay in threescale-cli.
    assert!(!has(&names, "clap"));
    assert!(!has(&names, "tracing-subscriber"));
}
