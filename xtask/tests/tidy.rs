//! Tidy checks over the workspace (run by `cargo test`): the layering of crates, crate docs,
//! and dependencies declared once in `[workspace.dependencies]`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Layer of each workspace package: 0 core (the vocabulary) and fsio (durable file writes),
/// 1 leaf crates, 2 composition, 3 binaries.
fn layer(name: &str) -> Option<u8> {
    match name {
        "aidocs-core" | "aidocs-fsio" => Some(0),
        "aidocs" => Some(2),
        "aidocs-server" | "aidocs-cli" => Some(3),
        "xtask" | "aidocs-benchkit" => None,
        n if n.starts_with("aidocs-") => Some(1),
        _ => None,
    }
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dependencies_point_one_way() {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            if names.contains(dep) && d["kind"].is_null() {
                edges.entry(name).or_default().push(dep);
            }
        }
    }
    let mut violations = Vec::new();
    for (from, deps) in &edges {
        let Some(lf) = layer(from) else { continue };
        for to in deps {
            let lt = layer(to).unwrap_or(9);
            let ok = match lf {
                0 => false,
                1 => lt == 0,                // leaf crates: only core
                2 => lt <= 1,                // composition: core and leaves
                3 => lt == 2,                // binaries: only the composition crate
                _ => true,
            };
            if !ok {
                violations.push(format!("{from} (layer {lf}) must not depend on {to} (layer {lt})"));
            }
        }
    }
    // The bench kit is for benches and the xtask only, never in a shipped binary.
    for (from, deps) in &edges {
        if *from != "xtask" && deps.contains(&"aidocs-benchkit") {
            violations.push(format!("{from} must not depend on aidocs-benchkit (dev-dependency only)"));
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
    assert!(edges.get("aidocs-embed").is_some_and(|d| d.contains(&"aidocs-core")), "sanity: the check sees edges");
}

#[test]
fn every_crate_opens_with_a_module_doc() {
    let meta = metadata();
    for p in meta["packages"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = t["kind"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            if !(kinds.contains(&"lib") || kinds.contains(&"bin")) {
                continue;
            }
            let src = std::fs::read_to_string(t["src_path"].as_str().unwrap()).unwrap();
            assert!(src.trim_start().starts_with("//!"), "{} must open with a //! doc saying what it owns", t["src_path"]);
        }
    }
}

#[test]
fn dependencies_are_declared_once_in_the_workspace() {
    let meta = metadata();
    let mut offenders = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let manifest = std::fs::read_to_string(p["manifest_path"].as_str().unwrap()).unwrap();
        let mut in_deps = false;
        for line in manifest.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_deps = t.contains("dependencies");
                continue;
            }
            if in_deps && !t.is_empty() && !t.starts_with('#') && !t.contains("workspace = true") {
                offenders.push(format!("{}: {t}", p["name"]));
            }
        }
    }
    assert!(offenders.is_empty(), "declare versions in [workspace.dependencies] and use `workspace = true`:\n{}", offenders.join("\n"));
}
