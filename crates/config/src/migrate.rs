//! `aidocs config migrate FILE`: rewrite a config written for an older aidocs in place
//! (comments and layout kept for TOML), keeping a backup copy, and say what changed.
//!
//! The table of changes is [`CHANGES`]; each entry is applied when its old key is present.

use crate::ConfigError as Error;

type Result<T> = std::result::Result<T, Error>;
use std::path::{Path, PathBuf};

/// What became of an old key.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// The value moves to a new key (dotted path).
    Renamed(&'static str),
    /// The key is gone; the note says what replaces it.
    Removed(&'static str),
}

/// Old key (dotted path) -> its fate.
pub const CHANGES: &[(&str, Change)] = &[
    ("cache.breaker_cooldown_ms", Change::Renamed("breaker.cooldown_ms")),
    ("store.kind", Change::Renamed("vector_store.kind")),
    ("store.wal_segment_mb", Change::Renamed("vector_store.wal_segment_mb")),
    ("cache.breaker_failures", Change::Removed("breakers now open on an error rate: set breaker.error_rate, breaker.min_calls and breaker.window_s")),
];

/// Deprecated template names and their replacements.
pub const TEMPLATE_RENAMES: &[(&str, &str)] = &[("minimal-cost", "personal-use")];

/// The outcome of a migration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    pub file: PathBuf,
    /// The untouched original, next to the file.
    pub backup: Option<PathBuf>,
    /// One line per change; empty when the file was already current.
    pub changes: Vec<String>,
    /// A unified-style listing of removed (`-`) and added (`+`) lines.
    pub diff: String,
}

fn split(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

fn migrate_toml(text: &str, changes: &mut Vec<String>) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| Error::Migrate(format!("not valid TOML: {e}")))?;
    if let Some(t) = doc.get("template").and_then(|v| v.as_str()).map(str::to_owned) {
        if let Some((old, new)) = TEMPLATE_RENAMES.iter().find(|(o, _)| *o == t) {
            doc["template"] = toml_edit::value(*new);
            changes.push(format!("template `{old}` -> `{new}`"));
        }
    }
    for (old, change) in CHANGES {
        let parts = split(old);
        let (table_path, key) = parts.split_at(parts.len() - 1);
        let Some(table) = table_path.iter().try_fold(doc.as_item_mut(), |item, p| item.get_mut(p)).and_then(|t| t.as_table_like_mut()) else { continue };
        let Some(item) = table.remove(key[0]) else { continue };
        match change {
            Change::Renamed(new) => {
                let np = split(new);
                let (ntable, nkey) = np.split_at(np.len() - 1);
                let mut cur = doc.as_item_mut();
                for p in ntable {
                    if cur.get(p).is_none() {
                        cur[p] = toml_edit::table();
                    }
                    cur = &mut cur[p];
                }
                if cur.get(nkey[0]).is_some() {
                    changes.push(format!("`{old}` dropped: `{new}` is already set"));
                } else {
                    cur[nkey[0]] = item;
                    changes.push(format!("`{old}` -> `{new}`"));
                }
            }
            Change::Removed(note) => changes.push(format!("`{old}` removed: {note}")),
        }
        // A table the changes emptied goes too (`[store]` after its keys moved).
        if let [table] = table_path
            && doc.get(table).and_then(|t| t.as_table_like()).is_some_and(|t| t.is_empty())
        {
            doc.remove(table);
        }
    }
    Ok(doc.to_string())
}

fn migrate_json(text: &str, changes: &mut Vec<String>) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Migrate(format!("not valid JSON: {e}")))?;
    if let Some(t) = v.get("template").and_then(|t| t.as_str()).map(str::to_owned) {
        if let Some((old, new)) = TEMPLATE_RENAMES.iter().find(|(o, _)| *o == t) {
            v["template"] = (*new).into();
            changes.push(format!("template `{old}` -> `{new}`"));
        }
    }
    for (old, change) in CHANGES {
        let parts = split(old);
        let (table_path, key) = parts.split_at(parts.len() - 1);
        let Some(obj) = table_path.iter().try_fold(&mut v, |cur, p| cur.get_mut(*p)).and_then(|t| t.as_object_mut()) else { continue };
        let Some(value) = obj.remove(key[0]) else { continue };
        match change {
            Change::Renamed(new) => {
                let np = split(new);
                let (ntable, nkey) = np.split_at(np.len() - 1);
                let mut cur = &mut v;
                for p in ntable {
                    if cur.get(*p).is_none() {
                        cur[*p] = serde_json::json!({});
                    }
                    cur = &mut cur[*p];
                }
                if cur.get(nkey[0]).is_some() {
                    changes.push(format!("`{old}` dropped: `{new}` is already set"));
                } else {
                    cur[nkey[0]] = value;
                    changes.push(format!("`{old}` -> `{new}`"));
                }
            }
            Change::Removed(note) => changes.push(format!("`{old}` removed: {note}")),
        }
        if let ([table], Some(obj)) = (table_path, v.as_object_mut())
            && obj.get(*table).and_then(|t| t.as_object()).is_some_and(|t| t.is_empty())
        {
            obj.remove(*table);
        }
    }
    Ok(serde_json::to_string_pretty(&v).expect("a JSON value serialises") + "\n")
}

/// Lines only in `a` (`-`) and only in `b` (`+`), in order: enough to review a migration.
fn line_diff(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in al.iter().filter(|l| !bl.contains(l)) {
        out.push_str(&format!("-{l}\n"));
    }
    for l in bl.iter().filter(|l| !al.contains(l)) {
        out.push_str(&format!("+{l}\n"));
    }
    out
}

/// Migrate `file` in place. The original is kept as `<file>.bak` (or `.bak.N` when that
/// exists); the new text is written to a temp file and renamed over the original. The
/// result must load as a valid config, else nothing is written.
pub fn migrate_file(file: &Path) -> Result<MigrateReport> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Migrate(format!("cannot read {}: {e}", file.display())))?;
    let mut changes = Vec::new();
    let json = file.extension().is_some_and(|e| e == "json");
    let new = if json { migrate_json(&text, &mut changes)? } else { migrate_toml(&text, &mut changes)? };
    if changes.is_empty() {
        return Ok(MigrateReport { file: file.to_owned(), backup: None, changes, diff: String::new() });
    }
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |e: std::io::Error| Error::Io { path: file.to_owned(), source: e };
    // Check the result loads before touching anything.
    let mut check = tempfile::Builder::new().suffix(if json { ".json" } else { ".toml" }).tempfile_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut check, new.as_bytes()).map_err(io)?;
    crate::Config::load(&crate::ConfigSource { file: Some(check.path().to_owned()), template: None, use_env: false })
        .map_err(|e| Error::Migrate(format!("the migrated config would not load ({e}); {} is unchanged", file.display())))?;
    let mut backup = PathBuf::from(format!("{}.bak", file.display()));
    let mut n = 1;
    while backup.exists() {
        backup = PathBuf::from(format!("{}.bak.{n}", file.display()));
        n += 1;
    }
    std::fs::copy(file, &backup).map_err(io)?;
    std::fs::File::open(&backup)
        .and_then(|b| b.sync_all())
        .map_err(io)?;
    drop(check);
    aidocs_fsio::write_atomic(file, new.as_bytes()).map_err(io)?;
    Ok(MigrateReport {
        file: file.to_owned(),
        backup: Some(backup),
        diff: line_diff(&text, &new),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_toml_is_rewritten_keeping_comments_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aidocs.toml");
        std::fs::write(&f, "# my settings\ntemplate = \"minimal-cost\"\n\n[cache]\nkind = \"memory\" # in-process\nbreaker_failures = 5\nbreaker_cooldown_ms = 2000\n").unwrap();
        let r = migrate_file(&f).unwrap();
        assert_eq!(r.changes.len(), 3, "{:?}", r.changes);
        let new = std::fs::read_to_string(&f).unwrap();
        assert!(new.contains("# my settings") && new.contains("# in-process"), "comments kept: {new}");
        assert!(new.contains("template = \"personal-use\"") && new.contains("cooldown_ms = 2000") && !new.contains("breaker_failures"), "{new}");
        assert!(r.diff.contains("-breaker_cooldown_ms = 2000") && r.diff.contains("+template = \"personal-use\""), "{}", r.diff);
        assert_eq!(std::fs::read_to_string(r.backup.unwrap()).unwrap().contains("minimal-cost"), true);
        let (cfg, warnings) = crate::Config::load(&crate::ConfigSource { file: Some(f.clone()), template: None, use_env: false }).unwrap();
        assert_eq!((cfg.breaker.cooldown_ms, warnings.len()), (2000, 0));
        let again = migrate_file(&f).unwrap();
        assert!(again.changes.is_empty() && again.backup.is_none(), "a current file is left alone");
    }

    #[test]
    fn the_old_store_section_is_refused_with_a_hint_then_migrated_to_vector_store() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aidocs.toml");
        std::fs::write(&f, "[store]\nkind = \"edge\"\nwal_segment_mb = 2\n").unwrap();
        let src = crate::ConfigSource { file: Some(f.clone()), template: None, use_env: false };
        let e = crate::Config::load(&src).unwrap_err().to_string();
        assert!(e.contains("store.kind") && e.contains("aidocs config migrate"), "{e}");
        let r = migrate_file(&f).unwrap();
        assert_eq!(r.changes, ["`store.kind` -> `vector_store.kind`", "`store.wal_segment_mb` -> `vector_store.wal_segment_mb`"]);
        let new = std::fs::read_to_string(&f).unwrap();
        assert!(!new.contains("[store]"), "the emptied table is gone: {new}");
        let (cfg, _) = crate::Config::load(&src).unwrap();
        assert_eq!((cfg.vector_store.kind, cfg.vector_store.wal_segment_mb), (crate::StoreKind::Embedded, 2), "`edge` still reads as embedded");
    }

    #[test]
    fn every_template_has_a_summary_and_renames_point_at_templates() {
        for (name, _) in crate::TEMPLATES {
            assert!(crate::TEMPLATE_SUMMARIES.iter().any(|(n, _)| n == name), "{name} has no summary");
        }
        for (_, new) in TEMPLATE_RENAMES {
            assert!(crate::TEMPLATES.iter().any(|(n, _)| n == new), "{new}");
        }
    }

    #[test]
    fn json_is_migrated_and_an_unloadable_result_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, r#"{"template": "minimal-cost", "cache": {"breaker_cooldown_ms": 10}}"#).unwrap();
        let r = migrate_file(&f).unwrap();
        assert_eq!(r.changes.len(), 2);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!((v["template"].as_str(), v["breaker"]["cooldown_ms"].as_u64()), (Some("personal-use"), Some(10)));
        let bad = dir.path().join("bad.toml");
        let text = "template = \"minimal-cost\"\nunknown_key = 1\n";
        std::fs::write(&bad, text).unwrap();
        let e = migrate_file(&bad).unwrap_err().to_string();
        assert!(e.contains("would not load") && e.contains("unknown_key"), "{e}");
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), text, "unchanged");
        assert!(!dir.path().join("bad.toml.bak").exists());
    }
}
