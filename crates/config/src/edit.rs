//! Edits of a TOML config file that keep its comments and layout (`toml_edit`): adding and
//! removing a `[[sources]]` entry (`aidocs sources add | remove`). Every edit is checked by
//! loading the result as the server would (environment included) before the file is
//! replaced, atomically; a bad edit leaves the file as it was and says why.

use crate::{Config, ConfigError as Error, ConfigSource, SourceKind, SourceSettings};
use std::path::Path;

type Result<T> = std::result::Result<T, Error>;

fn read(file: &Path) -> Result<toml_edit::DocumentMut> {
    if file.extension().is_some_and(|e| e == "json") {
        return Err(Error::Edit(format!("{} is JSON; sources can be added to a TOML config file only", file.display())));
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Io { path: file.to_owned(), source: e }),
    };
    text.parse().map_err(|e| Error::Edit(format!("{} is not valid TOML: {e}", file.display())))
}

/// Write `doc` over `file` once it loads as a valid config.
fn write_checked(file: &Path, doc: &toml_edit::DocumentMut) -> Result<Config> {
    let io = |e: std::io::Error| Error::Io { path: file.to_owned(), source: e };
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut check = tempfile::Builder::new().suffix(".toml").tempfile_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut check, doc.to_string().as_bytes()).map_err(io)?;
    let (cfg, _) = Config::load(&ConfigSource { file: Some(check.path().to_owned()), template: None, use_env: true })
        .map_err(|e| Error::Edit(format!("{e}; {} is unchanged", file.display())))?;
    drop(check);
    aidocs_fsio::write_atomic(file, doc.to_string().as_bytes()).map_err(io)?;
    Ok(cfg)
}

fn strings(items: &[String]) -> toml_edit::Item {
    toml_edit::value(items.iter().map(String::as_str).collect::<toml_edit::Array>())
}

/// Append `source` to `file`'s `[[sources]]` (the file is created when missing). Refused,
/// with the file unchanged, when the result is not a valid config (a name taken, a bad
/// schedule or URL). Credentials are not taken here: add `[sources.auth]` by hand, with
/// `${ENV}` references, so no secret lands in a shell history.
pub fn add_source(file: &Path, source: &SourceSettings) -> Result<Config> {
    let mut doc = read(file)?;
    let mut t = toml_edit::Table::new();
    t["name"] = toml_edit::value(&source.name);
    t["collection"] = toml_edit::value(&source.collection);
    if source.kind != SourceKind::default() {
        let kind = match source.kind {
            SourceKind::Site => "site",
            SourceKind::Sitemap => "sitemap",
            SourceKind::Urls => "urls",
            SourceKind::Git => "git",
        };
        t["kind"] = toml_edit::value(kind);
    }
    t["urls"] = strings(&source.urls);
    t["schedule"] = toml_edit::value(&source.schedule);
    if !source.render.is_none() {
        t["render"] = toml_edit::value(source.render.to_string());
    }
    for (key, v) in [("scope", &source.scope), ("branch", &source.branch), ("path", &source.path), ("base_url", &source.base_url), ("versions_from_tags", &source.versions_from_tags)] {
        if let Some(v) = v {
            t[key] = toml_edit::value(v);
        }
    }
    for (key, list) in [("include", &source.include), ("exclude", &source.exclude), ("allow_hosts", &source.allow_hosts)] {
        if !list.is_empty() {
            t[key] = strings(list);
        }
    }
    for (key, n) in [("max_pages", source.max_pages), ("max_depth", source.max_depth)] {
        if let Some(n) = n {
            t[key] = toml_edit::value(i64::try_from(n).map_err(|_| Error::Edit(format!("{key} {n} is too large")))?);
        }
    }
    match doc.get_mut("sources") {
        None => {
            let mut list = toml_edit::ArrayOfTables::new();
            list.push(t);
            doc["sources"] = toml_edit::Item::ArrayOfTables(list);
        }
        Some(toml_edit::Item::ArrayOfTables(list)) => list.push(t),
        Some(_) => return Err(Error::Edit(format!("{}: `sources` is not a list of [[sources]] tables", file.display()))),
    }
    write_checked(file, &doc)
}

/// Remove the `[[sources]]` entry named `name` from `file`. Its run history stays in the
/// shared state; its pages stay in their collection.
pub fn remove_source(file: &Path, name: &str) -> Result<Config> {
    let mut doc = read(file)?;
    let Some(toml_edit::Item::ArrayOfTables(list)) = doc.get_mut("sources") else {
        return Err(Error::Edit(format!("{} has no [[sources]]", file.display())));
    };
    let Some(at) = list.iter().position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name)) else {
        let names: Vec<&str> = list.iter().filter_map(|t| t.get("name").and_then(|n| n.as_str())).collect();
        return Err(Error::Edit(format!("no source named `{name}` in {} (there: {})", file.display(), names.join(", "))));
    };
    list.remove(at);
    if list.is_empty() {
        doc.remove("sources");
    }
    write_checked(file, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, schedule: &str) -> SourceSettings {
        SourceSettings {
            include: vec!["/std/**".into()],
            max_pages: Some(500),
            ..SourceSettings::new(name, "rust", SourceKind::Sitemap, vec!["https://docs.example/sitemap.xml".into()], schedule)
        }
    }

    #[test]
    fn sources_are_added_and_removed_keeping_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aidocs.toml");
        std::fs::write(&file, "# the team's server\n[search]\ndefault_limit = 7 # tuned\n").unwrap();
        let cfg = add_source(&file, &entry("std", "every 6h")).unwrap();
        assert_eq!(cfg.sources, vec![entry("std", "every 6h")]);
        add_source(&file, &entry("book", "0 3 * * *")).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# the team's server\n[search]\ndefault_limit = 7 # tuned\n"), "{text}");
        assert!(text.contains("[[sources]]\nname = \"std\"") && text.contains("kind = \"sitemap\""), "{text}");
        // A taken name or a bad schedule is refused and the file stays as it was.
        let e = add_source(&file, &entry("std", "every 1h")).unwrap_err().to_string();
        assert!(e.contains("another source has this name") && e.contains("is unchanged"), "{e}");
        let e = add_source(&file, &entry("nightly", "every fortnight")).unwrap_err().to_string();
        assert!(e.contains("schedule"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        // Removed by name; an unknown name lists the known ones.
        let cfg = remove_source(&file, "std").unwrap();
        assert_eq!(cfg.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["book"]);
        let e = remove_source(&file, "std").unwrap_err().to_string();
        assert!(e.contains("no source named `std`") && e.contains("book"), "{e}");
        remove_source(&file, "book").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "# the team's server\n[search]\ndefault_limit = 7 # tuned\n");
        // A missing file is created; a JSON one is refused.
        let new = dir.path().join("new/aidocs.toml");
        add_source(&new, &entry("std", "every 1d")).unwrap();
        assert!(Config::load(&ConfigSource { file: Some(new), template: None, use_env: false }).unwrap().0.sources.len() == 1);
        let e = add_source(&dir.path().join("c.json"), &entry("std", "every 1d")).unwrap_err().to_string();
        assert!(e.contains("JSON"), "{e}");
    }
}
