//! `cargo xtask release [--version V] [--dry-run]`: the release build (profile `dist`: thin
//! LTO, one codegen unit, stripped), a versioned tarball for the host target with both
//! binaries, `config/`, `deploy/`, the docs and the changelog section of the version,
//! `SHA256SUMS`, and a CycloneDX 1.5 SBOM of the binaries' dependency tree from
//! `cargo metadata`. Every workspace crate must carry the release version. `--dry-run`
//! writes everything into `<target>/dist` and tags nothing; without it the clean checkout
//! gets an annotated tag `vV`.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const BINARIES: &[(&str, &str)] = &[("aidocs-server", "aidocs-server"), ("aidocs-cli", "aidocs")];
const SHIPPED: &[&str] = &["config", "deploy", "docs", "README.md"];

pub struct ReleaseArgs {
    pub version: Option<String>,
    pub dry_run: bool,
}

pub fn parse_args(args: &[String]) -> Result<ReleaseArgs> {
    let mut out = ReleaseArgs { version: None, dry_run: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dry-run" => out.dry_run = true,
            "--version" => out.version = Some(it.next().context("--version needs a value")?.trim_start_matches('v').to_owned()),
            other => bail!("unknown release argument `{other}` (--version V, --dry-run)"),
        }
    }
    Ok(out)
}

/// The resolved dependency graph for `triple` (crates of other platforms left out).
fn cargo_metadata(root: &Path, triple: &str) -> Result<Value> {
    let mut cmd = crate::cargo();
    cmd.args(["metadata", "--format-version", "1", "--locked", "--filter-platform", triple]).current_dir(root);
    let out = cmd.output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The one version every workspace crate carries; an error lists the ones that differ.
pub fn workspace_version(meta: &Value) -> Result<String> {
    let members: BTreeSet<&str> = meta["workspace_members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        if p["id"].as_str().is_some_and(|id| members.contains(id)) && p["name"] != "xtask" {
            versions.entry(p["version"].as_str().unwrap_or_default().to_owned()).or_default().push(p["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    match versions.len() {
        1 => Ok(versions.into_keys().next().expect("one version")),
        0 => bail!("no workspace crates found"),
        _ => bail!("workspace crates disagree on their version: {versions:?}; set `version.workspace = true` everywhere"),
    }
}

/// The `## [V]` (or `## V`) section of a Keep-a-Changelog file, without its heading.
pub fn changelog_section(changelog: &str, version: &str) -> Option<String> {
    let heading = |l: &str| {
        let t = l.trim_start_matches("## ").trim();
        l.starts_with("## ") && (t.starts_with(&format!("[{version}]")) || t == version || t.starts_with(&format!("{version} ")))
    };
    let mut lines = changelog.lines().skip_while(|l| !heading(l));
    lines.next()?;
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let text = body.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Packages reachable from `roots` through normal (non-dev, non-build) dependencies.
fn runtime_closure<'a>(meta: &'a Value, roots: &[&str]) -> Result<(Vec<&'a Value>, BTreeMap<&'a str, Vec<&'a str>>)> {
    let packages: BTreeMap<&str, &Value> = meta["packages"].as_array().into_iter().flatten().filter_map(|p| Some((p["id"].as_str()?, p))).collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"].as_array().into_iter().flatten().filter_map(|n| Some((n["id"].as_str()?, n))).collect();
    let mut todo: Vec<&str> = packages.iter().filter(|(_, p)| roots.contains(&p["name"].as_str().unwrap_or_default())).map(|(id, _)| *id).collect();
    if todo.len() != roots.len() {
        bail!("cargo metadata lacks one of {roots:?}");
    }
    let mut seen = BTreeSet::new();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let deps: Vec<&str> = nodes
            .get(id)
            .map(|n| {
                n["deps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| d["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null()))
                    .filter_map(|d| d["pkg"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        todo.extend(deps.iter().copied());
        edges.insert(id, deps);
    }
    let list = seen.iter().filter_map(|id| packages.get(id).copied()).collect();
    Ok((list, edges))
}

fn purl(p: &Value) -> String {
    format!("pkg:cargo/{}@{}", p["name"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default())
}

/// A CycloneDX 1.5 JSON SBOM of the release binaries' runtime dependency tree.
pub fn sbom(meta: &Value, version: &str, timestamp: &str) -> Result<Value> {
    let roots: Vec<&str> = BINARIES.iter().map(|(pkg, _)| *pkg).collect();
    let (packages, edges) = runtime_closure(meta, &roots)?;
    let by_id: BTreeMap<&str, &Value> = packages.iter().filter_map(|p| Some((p["id"].as_str()?, *p))).collect();
    let components: Vec<Value> = packages
        .iter()
        .filter(|p| !roots.contains(&p["name"].as_str().unwrap_or_default()))
        .map(|p| {
            let mut c = json!({
                "type": "library",
                "bom-ref": purl(p),
                "name": p["name"],
                "version": p["version"],
                "purl": purl(p),
            });
            if let Some(l) = p["license"].as_str() {
                c["licenses"] = json!([{"expression": l}]);
            }
            if let Some(d) = p["description"].as_str() {
                c["description"] = d.trim().into();
            }
            c
        })
        .collect();
    let dependencies: Vec<Value> = edges
        .iter()
        .filter_map(|(id, deps)| {
            let p = by_id.get(id)?;
            let mut on: Vec<String> = deps.iter().filter_map(|d| by_id.get(d).map(|p| purl(p))).collect();
            on.sort();
            on.dedup();
            Some(json!({"ref": purl(p), "dependsOn": on}))
        })
        .collect();
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid_v4_like(version, timestamp)),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "cargo xtask release"}]},
            "component": {"type": "application", "bom-ref": format!("pkg:cargo/aidocs@{version}"), "name": "aidocs", "version": version, "purl": format!("pkg:cargo/aidocs@{version}")},
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

/// A stable UUID-shaped serial from the version and timestamp (sha256-derived).
fn uuid_v4_like(version: &str, timestamp: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(Sha256::digest(format!("aidocs {version} {timestamp}")));
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(str::to_owned)).context("rustc -vV printed no host")
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_file() {
        std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        // Secrets and local state never ship.
        if matches!(name.to_str(), Some("tls" | "admin_password.txt")) {
            continue;
        }
        copy_tree(&e.path(), &to.join(&name))?;
    }
    Ok(())
}

pub fn release(root: &Path, args: &ReleaseArgs) -> Result<()> {
    let triple = host_triple()?;
    let meta = cargo_metadata(root, &triple)?;
    let version = workspace_version(&meta)?;
    if let Some(v) = &args.version
        && *v != version
    {
        bail!("the workspace is at {version}; set [workspace.package] version = \"{v}\" (and a CHANGELOG.md section) before releasing {v}");
    }
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).context("reading CHANGELOG.md")?;
    let notes = changelog_section(&changelog, &version).with_context(|| format!("CHANGELOG.md has no `## [{version}]` section"))?;
    if !args.dry_run {
        let status = Command::new("git").args(["status", "--porcelain"]).current_dir(root).output()?;
        if !status.stdout.is_empty() {
            bail!("the checkout has uncommitted changes; commit them or use --dry-run");
        }
    }
    crate::run(crate::cargo().current_dir(root).args(["build", "--locked", "--profile", "dist", "-p", "aidocs-server", "-p", "aidocs-cli"]))?;
    let dist = crate::target_dir().join("dist");
    let name = format!("aidocs-{version}-{triple}");
    let stage = dist.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    std::fs::create_dir_all(stage.join("bin"))?;
    for (_, bin) in BINARIES {
        let built = crate::target_dir().join("dist").join(bin);
        std::fs::copy(&built, stage.join("bin").join(bin)).with_context(|| format!("copying {}", built.display()))?;
    }
    for item in SHIPPED {
        copy_tree(&root.join(item), &stage.join(item))?;
    }
    std::fs::write(stage.join("RELEASE_NOTES.md"), format!("# aidocs {version}\n\n{notes}\n"))?;
    // Reproducible archive: sorted names, fixed owner, mtime of the last commit.
    let epoch = Command::new("git").args(["log", "-1", "--format=%ct"]).current_dir(root).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into());
    let tarball = format!("{name}.tar.gz");
    crate::run(Command::new("tar").current_dir(&dist).args([
        "--sort=name",
        &format!("--mtime=@{epoch}"),
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-czf",
        &tarball,
        &name,
    ]))?;
    let timestamp = chrono_like_utc(epoch.parse().unwrap_or(0));
    let sbom_name = format!("aidocs-{version}.cdx.json");
    std::fs::write(dist.join(&sbom_name), serde_json::to_vec_pretty(&sbom(&meta, &version, &timestamp)?)?)?;
    let mut sums = String::new();
    for f in [&tarball, &sbom_name] {
        sums.push_str(&format!("{}  {f}\n", crate::sha256_file(&dist.join(f))?));
    }
    std::fs::write(dist.join("SHA256SUMS"), &sums)?;
    // Check what was written: the tarball lists both binaries and the notes.
    let listing = Command::new("tar").current_dir(&dist).args(["-tzf", &tarball]).output()?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    for want in BINARIES.iter().map(|(_, b)| format!("{name}/bin/{b}")).chain([format!("{name}/RELEASE_NOTES.md"), format!("{name}/config/default.toml")]) {
        if !listing.lines().any(|l| l == want) {
            bail!("{tarball} lacks {want}");
        }
    }
    eprintln!("release {version}: {}", dist.display());
    eprint!("{sums}");
    if args.dry_run {
        eprintln!("dry run: no tag");
    } else {
        crate::run(Command::new("git").current_dir(root).args(["tag", "-a", &format!("v{version}"), "-m", &format!("aidocs {version}")]))?;
        eprintln!("tagged v{version}");
    }
    Ok(())
}

/// RFC 3339 UTC time of a Unix timestamp (civil-from-days; no date crate in xtask).
pub fn chrono_like_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changelog_sections_are_cut_at_the_next_heading() {
        let text = "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [0.2.0] - 2026-12-01\n\n- two\n- more\n\n## [0.1.0]\n\n- one\n";
        assert_eq!(changelog_section(text, "0.2.0").as_deref(), Some("- two\n- more"));
        assert_eq!(changelog_section(text, "0.1.0").as_deref(), Some("- one"));
        assert_eq!(changelog_section(text, "0.3.0"), None);
    }

    #[test]
    fn utc_times_are_civil() {
        assert_eq!(chrono_like_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(chrono_like_utc(1_796_000_000), "2026-11-30T00:53:20Z");
    }

    #[test]
    fn versions_must_agree() {
        let meta = json!({
            "workspace_members": ["a", "b", "x"],
            "packages": [{"id": "a", "name": "aidocs", "version": "0.1.0"}, {"id": "b", "name": "aidocs-core", "version": "0.1.0"}, {"id": "x", "name": "xtask", "version": "9.9.9"}],
        });
        assert_eq!(workspace_version(&meta).unwrap(), "0.1.0");
        let mut bad = meta.clone();
        bad["packages"][1]["version"] = "0.2.0".into();
        assert!(workspace_version(&bad).unwrap_err().to_string().contains("aidocs-core"));
    }

    #[test]
    fn the_sbom_holds_the_runtime_closure_only() {
        let dep = |pkg: &str, kind: Value| json!({"pkg": pkg, "dep_kinds": [{"kind": kind}]});
        let meta = json!({
            "packages": [
                {"id": "s", "name": "aidocs-server", "version": "0.1.0"},
                {"id": "c", "name": "aidocs-cli", "version": "0.1.0"},
                {"id": "t", "name": "tokio", "version": "1.0.0", "license": "MIT"},
                {"id": "m", "name": "mio", "version": "1.0.0", "license": "MIT"},
                {"id": "d", "name": "tempfile", "version": "3.0.0"},
            ],
            "resolve": {"nodes": [
                {"id": "s", "deps": [dep("t", Value::Null), dep("d", json!("dev"))]},
                {"id": "c", "deps": [dep("t", Value::Null)]},
                {"id": "t", "deps": [dep("m", Value::Null)]},
                {"id": "m", "deps": []},
                {"id": "d", "deps": []},
            ]},
        });
        let bom = sbom(&meta, "0.1.0", "2026-11-29T00:00:00Z").unwrap();
        let names: Vec<&str> = bom["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["mio", "tokio"], "dev-dependencies and the binaries themselves are not components");
        assert_eq!(bom["components"][1]["purl"], "pkg:cargo/tokio@1.0.0");
        assert_eq!(bom["components"][1]["licenses"][0]["expression"], "MIT");
        let tokio = bom["dependencies"].as_array().unwrap().iter().find(|d| d["ref"] == "pkg:cargo/tokio@1.0.0").unwrap();
        assert_eq!(tokio["dependsOn"], json!(["pkg:cargo/mio@1.0.0"]));
        assert_eq!(bom["specVersion"], "1.5");
    }
}
