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
/// 1 leaf crates, 2 settings (`aidocs-config`), 3 the application (`aidocs`), 4 its edges
/// (`aidocs-http`, `aidocs-eval`), 5 binaries.
fn layer(name: &str) -> Option<u8> {
    match name {
        "aidocs-core" | "aidocs-fsio" => Some(0),
        "aidocs-config" => Some(2),
        "aidocs" => Some(3),
        "aidocs-http" | "aidocs-eval" => Some(4),
        "aidocs-server" | "aidocs-cli" => Some(5),
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
                2 => lt <= 1,                // settings: core and leaves
                3 => lt <= 2,                // the application: settings, core and leaves
                4 => lt <= 3,                // HTTP and eval: the application and below
                5 => (2..=4).contains(&lt),  // binaries: settings, application, edges
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

/// The top-level modules of a crate's `src` (a `foo.rs` or a `foo/` directory) and, for each,
/// the other top-level modules it names through `crate::` paths (submodules count as their
/// top-level module; comments are ignored).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            modules.insert(name);
        } else if let Some(m) = name.strip_suffix(".rs").filter(|m| *m != "lib" && *m != "main") {
            modules.insert(m.to_owned());
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
            let top = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
            if !modules.contains(&top) {
                continue;
            }
            let text: String = std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap_or(group.len())].split(',').map(|n| n.trim().split("::").next().unwrap_or("")).collect(),
                    None => vec![rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("")],
                };
                for n in names {
                    if n != top && modules.contains(n) {
                        graph.get_mut(&top).unwrap().insert(n.to_owned());
                    }
                }
            }
        }
    }
    graph
}

/// The module cycles of a graph: its strongly connected components of more than one module.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for n in &graph[&m] {
                if seen.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for m in graph.keys() {
        let comp: Vec<String> = graph.keys().filter(|n| reaches[m].contains(*n) && reaches[*n].contains(m)).cloned().collect();
        if comp.len() > 1 && !out.contains(&comp) {
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_module_cycles_inside_a_crate() {
    let meta = metadata();
    let mut found = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let kinds: Vec<&str> = t["kind"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            if !(kinds.contains(&"lib") || kinds.contains(&"bin")) {
                continue;
            }
            let src = Path::new(t["src_path"].as_str().unwrap()).parent().unwrap().to_path_buf();
            for c in cycles(&module_graph(&src)) {
                found.push(format!("{}: {}", p["name"].as_str().unwrap(), c.join(" <-> ")));
            }
        }
    }
    assert!(found.is_empty(), "module cycles (move what both sides need into a module of its own):\n{}", found.join("\n"));
    // The check sees a cycle when there is one.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rs"), "mod a; mod b;").unwrap();
    std::fs::write(dir.path().join("a.rs"), "use crate::b::B; pub struct A;").unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/mod.rs"), "mod c;").unwrap();
    std::fs::write(dir.path().join("b/c.rs"), "use crate::{a::A, b};").unwrap();
    assert_eq!(cycles(&module_graph(dir.path())), vec![vec!["a".to_owned(), "b".to_owned()]]);
}

/// The binaries stay thin: the server's `main.rs` and the CLI's dispatcher read top to
/// bottom in one screenful or two; commands live in `cmd/`, the work in the library crates.
#[test]
fn binaries_stay_thin() {
    for (main, max) in [("bins/aidocs-server/src/main.rs", 150), ("bins/aidocs/src/main.rs", 150)] {
        let lines = std::fs::read_to_string(root().join(main)).unwrap().lines().count();
        assert!(lines <= max, "{main} has {lines} lines (at most {max}): move the work into a library crate or a command module");
    }
    // Every CLI command is a module of its own under cmd/.
    let cmds = std::fs::read_dir(root().join("bins/aidocs/src/cmd")).unwrap().count();
    assert!(cmds >= 15, "bins/aidocs/src/cmd has {cmds} entries");
}
