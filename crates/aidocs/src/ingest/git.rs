//! Git repositories as a source: a shallow checkout of one branch kept under
//! `<data_dir>/sources/<name>`, brought up to date by a fetch and a hard reset on each run
//! (a first clone goes to a temporary directory renamed into place, so a crash leaves no half
//! checkout; what a killed clone leaves is removed at the next start or clone), then its files under `path` ingested as a [`DirectorySource`]: unchanged files
//! are skipped by hash and files gone from the branch lose their chunks. Symbolic links are
//! never followed, and a `path` that leads outside the checkout is refused, so a repository
//! cannot pull the server's own files into the index. Runs the `git` program (no prompt, a
//! time limit, a size limit on the checkout: `ingest.max_git_checkout_mb`); runs on one
//! checkout take turns.

use super::IngestService;
use crate::clones::{fresh_clone_dir, sweep_stale_clones};
use super::dir::DirectorySource;
use crate::error::{Error, Result};
use crate::progress::IngestProgress;
use crate::report::IngestReport;
use aidocs_core::DocMetadata;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

/// Longest one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Tags ingested at most by one `versions_from_tags` run: the newest by version order.
pub const MAX_TAGS: usize = 20;

/// Who named a Git remote (closed set): it decides what git may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Remote {
    /// The operator (config file, CLI): any URL git accepts, with the machine's own git
    /// credentials (SSH keys, credential helpers).
    #[default]
    Operator,
    /// A client of the API: an `http(s)://` URL whose host passes the SSRF guard (git is
    /// pinned to the address that was checked and follows no redirect), or a repository on
    /// this machine under `ingest.allowed_roots`. No other transport.
    Client,
}

/// One Git source to bring up to date and ingest.
#[derive(Debug, Clone)]
pub struct GitIngestRequest {
    /// The source's name: its checkout is `<data_dir>/sources/<name>`.
    pub name: String,
    pub collection: String,
    pub url: String,
    /// The branch or tag to ingest (`--ref`); default: the remote's default branch.
    pub branch: Option<String>,
    /// The directory of the repository to ingest; default all of it.
    pub path: Option<String>,
    /// Where the files are on the web; default derived for GitHub, GitLab and Codeberg.
    pub base_url: Option<String>,
    pub metadata: DocMetadata,
    /// Ingest each tag matching this glob (`v*`) instead of one ref: every tag is its own
    /// checkout (`<name>@<tag>`) and version (the tag without a leading `v`: `v2.3.0` is
    /// `2.3.0`), so versions live side by side; at most [`MAX_TAGS`], newest first.
    pub versions_from_tags: Option<String>,
    pub remote: Remote,
    /// Headers for the remote's own origins (a private repository over https): handed to
    /// git in its environment as `http.<origin>/.extraHeader`, never on its command line;
    /// with them git follows no redirect.
    pub credentials: Option<aidocs_crawl::Credentials>,
}

/// `git` settings of one run, as `(key, value)` (given through `GIT_CONFIG_COUNT`, so a
/// credential never shows in a process listing).
type GitConfig = [(String, String)];

/// What a Git run did: the ingest report and the commit it ingested.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GitIngestReport {
    /// The branch or tag.
    #[serde(rename = "ref")]
    pub branch: String,
    pub commit: String,
    pub report: IngestReport,
}

fn git_err(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("git {what}: {detail}"))
}

/// How often the size of a checkout is measured while git writes it.
const SIZE_CHECK_EVERY: Duration = Duration::from_millis(500);

/// A directory git writes into and the most it may hold, in bytes.
#[derive(Debug, Clone, Copy)]
struct SizeLimit<'a> {
    dir: &'a Path,
    max_bytes: u64,
}

impl SizeLimit<'_> {
    fn error(&self) -> Error {
        Error::TooLarge(format!("the repository's checkout grew past {} MiB (ingest.max_git_checkout_mb); it was stopped and removed", self.max_bytes >> 20))
    }
}

/// Bytes of the regular files under `dir` (links not followed; unreadable entries count 0).
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

/// Run `git args` in `dir` with `config`, without a terminal prompt, within
/// [`GIT_TIMEOUT`]; its trimmed stdout, or its stderr as the error.
fn git(dir: &Path, config: &GitConfig, args: &[&str]) -> Result<String> {
    git_limited(dir, config, args, None)
}

/// [`git`], stopped (killed) as soon as `limit.dir` holds more than `limit.max_bytes`.
fn git_limited(dir: &Path, config: &GitConfig, args: &[&str], limit: Option<SizeLimit<'_>>) -> Result<String> {
    let what = args.first().copied().unwrap_or("");
    let mut child = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("SSH_ASKPASS", "true")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .envs(git_config_env(config))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| git_err(what, format!("cannot run git ({e}); install git")))?;
    // Both pipes drained while git runs: a full pipe would block git until the time limit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = std::io::Read::read_to_end(&mut p, &mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let mut measured = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > GIT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(git_err(what, format!("took longer than {} s", GIT_TIMEOUT.as_secs())));
            }
            Ok(None) => {
                if let Some(l) = limit.filter(|_| measured.elapsed() >= SIZE_CHECK_EVERY) {
                    measured = Instant::now();
                    if disk_bytes(l.dir) > l.max_bytes {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(l.error());
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(git_err(what, e)),
        }
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    if let Some(l) = limit.filter(|l| disk_bytes(l.dir) > l.max_bytes) {
        return Err(l.error());
    }
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let last = stderr.lines().filter(|l| !l.trim().is_empty()).next_back().unwrap_or("no message");
        return Err(git_err(what, format!("{last} ({status})")));
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

/// `config` as git's environment: `GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<i>`,
/// `GIT_CONFIG_VALUE_<i>`.
fn git_config_env(config: &GitConfig) -> Vec<(String, String)> {
    let mut env = vec![("GIT_CONFIG_COUNT".to_owned(), config.len().to_string())];
    for (i, (k, v)) in config.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), k.clone()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), v.clone()));
    }
    env
}

/// Bring `checkout` to the tip of `branch` of `url` (cloned when missing or when it tracks
/// another URL), never letting it grow past `max_bytes` (a checkout that does is removed).
/// Returns the commit and the branch.
fn sync_checkout(checkout: &Path, url: &str, branch: Option<&str>, config: &GitConfig, max_bytes: u64) -> Result<(String, String)> {
    let git = |dir: &Path, args: &[&str]| git(dir, config, args);
    let limited = |dir: &Path, watch: &Path, args: &[&str]| git_limited(dir, config, args, Some(SizeLimit { dir: watch, max_bytes }));
    let parent = checkout.parent().ok_or_else(|| Error::Internal("a checkout needs a parent directory".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::Internal(format!("{}: {e}", parent.display())))?;
    let current = checkout.join(".git").is_dir().then(|| git(checkout, &["remote", "get-url", "origin"]).ok()).flatten();
    if current.as_deref() == Some(url) {
        let refspec = branch.unwrap_or("HEAD");
        let fetched = limited(checkout, checkout, &["fetch", "--depth", "1", "--no-tags", "origin", refspec])
            .and_then(|_| limited(checkout, checkout, &["reset", "--hard", "--quiet", "FETCH_HEAD"]));
        if let Err(e) = fetched {
            if matches!(e, Error::TooLarge(_)) {
                let _ = std::fs::remove_dir_all(checkout);
            }
            return Err(e);
        }
        git(checkout, &["clean", "-ffdxq"])?;
    } else {
        // A fresh clone beside it, renamed into place: never half a checkout. The clone's
        // directory stays locked while git writes, so a sweep passes it by.
        sweep_stale_clones(parent);
        let (fresh, _held) = fresh_clone_dir(parent)?;
        let target = fresh.to_string_lossy().into_owned();
        let mut args = vec!["clone", "--depth", "1", "--single-branch", "--no-tags", "--quiet"];
        if let Some(b) = branch {
            args.extend(["--branch", b]);
        }
        args.extend(["--", url, &target]);
        let cloned = limited(parent, &fresh, &args);
        if let Err(e) = cloned {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(e);
        }
        if checkout.exists() {
            std::fs::remove_dir_all(checkout).map_err(|e| Error::Internal(format!("{}: {e}", checkout.display())))?;
        }
        std::fs::rename(&fresh, checkout).map_err(|e| Error::Internal(format!("{}: {e}", checkout.display())))?;
    }
    let commit = git(checkout, &["rev-parse", "HEAD"])?;
    let branch = match branch {
        Some(b) => b.to_owned(),
        None => git(checkout, &["rev-parse", "--abbrev-ref", "HEAD"])?,
    };
    Ok((commit, branch))
}

/// Where fresh clones are made under a sources directory: `.clone-<id>`.
/// Tags of `url` matching `glob` (git's own pattern matching), newest version first, at most
/// [`MAX_TAGS`].
fn remote_tags(dir: &Path, url: &str, glob: &str, config: &GitConfig) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
    let out = git(dir, config, &["ls-remote", "--tags", "--refs", url, &format!("refs/tags/{glob}")])?;
    let mut tags: Vec<String> = out.lines().filter_map(|l| l.split('\t').nth(1)?.strip_prefix("refs/tags/").map(str::to_owned)).collect();
    tags.sort_by(|a, b| version_key(b).cmp(&version_key(a)));
    tags.truncate(MAX_TAGS);
    Ok(tags)
}

/// Orders `v1.10.0` after `v1.9.2`: runs of digits compare as numbers, the rest as text.
fn version_key(tag: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = tag;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_owned()));
            rest = &rest[text..];
        }
    }
    key
}

/// The lock of one checkout directory, shared by every run in this process that uses it
/// (the checkout is a path on disk, so the lock is process-wide); dropped with its last run.
fn checkout_lock(checkout: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, l| l.strong_count() > 0);
    if let Some(l) = locks.get(checkout).and_then(Weak::upgrade) {
        return l;
    }
    let l = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(checkout.to_path_buf(), Arc::downgrade(&l));
    l
}

/// The checkout directory's name for a repository URL named by `who` (`cli`, `api`):
/// readable and stable (`cli-https-git.example-docs.git`).
pub fn checkout_name(who: &str, url: &str) -> String {
    let mut name = format!("{who}-");
    for c in url.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    name.truncate(100);
    name
}

/// The version a tag stands for: `v2.3.0` is `2.3.0`; any other tag is itself.
pub fn version_of_tag(tag: &str) -> String {
    match tag.strip_prefix('v').or_else(|| tag.strip_prefix('V')) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_owned(),
        _ => tag.to_owned(),
    }
}

/// The directory to ingest: `path` under the checkout, which it must not leave (through
/// `..` or a symbolic link).
fn ingest_root(checkout: &Path, path: Option<&str>) -> Result<PathBuf> {
    let bad = |why: String| Error::InvalidRequest(why);
    let base = checkout.canonicalize().map_err(|e| bad(format!("{}: {e}", checkout.display())))?;
    let Some(path) = path.filter(|p| !p.is_empty()) else { return Ok(base) };
    let root = checkout.join(path).canonicalize().map_err(|_| bad(format!("`{path}` is not in the repository")))?;
    if !root.starts_with(&base) {
        return Err(bad(format!("`{path}` leads outside the repository; it is not ingested")));
    }
    Ok(root)
}

/// The web page of the repository's files on `branch` under `path`, for the hosts whose
/// layout is known (`<repo>/blob/<branch>/<path>`).
pub fn default_base_url(url: &str, branch: &str, path: Option<&str>) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    if u.scheme() != "https" || !matches!(u.host_str()?, "github.com" | "gitlab.com" | "codeberg.org") {
        return None;
    }
    let repo = u.path().trim_end_matches('/').trim_end_matches(".git");
    let dir = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()).map(|p| format!("/{p}")).unwrap_or_default();
    let blob = if u.host_str()? == "codeberg.org" { format!("src/branch/{branch}") } else { format!("blob/{branch}") };
    Some(format!("https://{}{repo}/{blob}{dir}", u.host_str()?))
}

impl IngestService {
    /// A Git source: its one ref, or with `versions_from_tags` each matching tag as its own
    /// version (one report per tag, newest first). A tag already ingested costs a fetch and
    /// writes nothing.
    pub async fn git_source(&self, req: GitIngestRequest, progress: &dyn IngestProgress) -> Result<Vec<GitIngestReport>> {
        let Some(glob) = req.versions_from_tags.clone() else { return Ok(vec![self.git(req, progress).await?]) };
        if glob.is_empty() || glob.starts_with('-') || glob.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidRequest(format!("`{glob}` is not a tag pattern (e.g. `v*`)")));
        }
        let dir = self.engine.config().data_dir.join("sources");
        let (url, config) = self.remote(&req).await?;
        let pattern = glob.clone();
        let tags = tokio::task::spawn_blocking(move || remote_tags(&dir, &url, &pattern, &config)).await.map_err(|e| Error::Internal(format!("git task failed: {e}")))??;
        if tags.is_empty() {
            return Err(Error::InvalidRequest(format!("no tag of {} matches `{glob}`", req.url)));
        }
        let mut reports = Vec::with_capacity(tags.len());
        for tag in tags {
            let mut one = req.clone();
            one.name = format!("{}@{}", req.name, tag.replace(['/', '\\'], "-"));
            one.branch = Some(tag.clone());
            one.versions_from_tags = None;
            one.metadata.version = Some(version_of_tag(&tag));
            reports.push(self.git(one, progress).await?);
        }
        Ok(reports)
    }

    /// Bring a Git source's checkout up to date and ingest its files into `collection`.
    /// Runs on one checkout take turns: a second request for the same repository waits for
    /// the first to finish reading its files.
    pub async fn git(&self, req: GitIngestRequest, progress: &dyn IngestProgress) -> Result<GitIngestReport> {
        let checkout = self.engine.config().data_dir.join("sources").join(&req.name);
        let (url, config) = self.remote(&req).await?;
        let lock = checkout_lock(&checkout);
        let _turn = lock.lock().await;
        let branch = req.branch.clone();
        let dir = checkout.clone();
        let max_bytes = self.engine.config().ingest.max_git_checkout_mb.saturating_mul(1 << 20);
        let (commit, branch) = tokio::task::spawn_blocking(move || sync_checkout(&dir, &url, branch.as_deref(), &config, max_bytes))
            .await
            .map_err(|e| Error::Internal(format!("git task failed: {e}")))??;
        let root = ingest_root(&checkout, req.path.as_deref())?;
        let base_url = req.base_url.clone().or_else(|| default_base_url(&req.url, &branch, req.path.as_deref()));
        let defaults = DocMetadata::from(&self.engine.config().ingest.metadata).overlay(&req.metadata);
        let mut source = DirectorySource::new(&root, base_url, defaults)?;
        let report = self.run(&req.collection, &mut source, progress).await?;
        tracing::info!(source = %req.name, %commit, %branch, written = report.documents_written, deleted = report.documents_deleted, "git source ingested");
        Ok(GitIngestReport { report, commit, branch })
    }

    /// The URL git is given and the settings it runs with: a client's remote confined (see
    /// [`Remote::Client`]), the source's credentials for its own origins.
    async fn remote(&self, req: &GitIngestRequest) -> Result<(String, Vec<(String, String)>)> {
        let cfg = self.engine.config();
        let mut config = Vec::new();
        let mut set = |k: &str, v: &str| config.push((k.to_owned(), v.to_owned()));
        let url = match req.remote {
            Remote::Operator => req.url.clone(),
            Remote::Client => {
                set("protocol.allow", "never");
                match req.url.strip_prefix("file://").or_else(|| req.url.starts_with('/').then_some(req.url.as_str())) {
                    Some(path) => {
                        set("protocol.file.allow", "always");
                        let refused = || Error::InvalidRequest(format!("`{}` is not a repository under the server's ingest.allowed_roots", req.url));
                        let canonical = Path::new(path).canonicalize().map_err(|_| refused())?;
                        if !cfg.ingest.allowed_roots.iter().filter_map(|r| r.canonicalize().ok()).any(|root| canonical.starts_with(root)) {
                            return Err(refused());
                        }
                        format!("file://{}", canonical.display())
                    }
                    None => {
                        let url = url::Url::parse(&req.url).map_err(|e| Error::InvalidRequest(format!("`{}` is not a repository URL: {e}", req.url)))?;
                        if !matches!(url.scheme(), "https" | "http") {
                            return Err(Error::InvalidRequest(format!(
                                "a repository named through the API is an https:// or http:// URL or a path under ingest.allowed_roots; `{}:` is not taken",
                                url.scheme()
                            )));
                        }
                        if !url.username().is_empty() || url.password().is_some() {
                            return Err(Error::InvalidRequest("a repository URL cannot carry credentials; configure them on a source ([sources.auth])".into()));
                        }
                        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
                            return Err(Error::InvalidRequest(format!("`{}` names no host", req.url)));
                        };
                        let allow = aidocs_crawl::guard::AllowList::new(&cfg.crawl.allow_hosts);
                        let addr = aidocs_crawl::guard::checked_address(&allow, host, port, "git").await.map_err(|e| match e {
                            aidocs_crawl::guard::NoRoute::Guard(why) => Error::InvalidRequest(why),
                            aidocs_crawl::guard::NoRoute::Lookup(why) => Error::Unavailable(format!("git: {why}")),
                        })?;
                        // git connects to the address that was checked, not to a second
                        // lookup of the name, and a redirect cannot take it elsewhere.
                        let ip = match addr.ip() {
                            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                            v4 => v4.to_string(),
                        };
                        set(&format!("protocol.{}.allow", url.scheme()), "always");
                        set("http.followRedirects", "false");
                        set("http.curloptResolve", &format!("{}:{port}:{ip}", host.trim_start_matches('[').trim_end_matches(']')));
                        req.url.clone()
                    }
                }
            }
        };
        if let Some(c) = &req.credentials {
            set("http.followRedirects", "false");
            for origin in c.origins() {
                for line in c.header_lines() {
                    set(&format!("http.{origin}/.extraHeader"), &line);
                }
            }
        }
        Ok((url, config))
    }
}

#[cfg(test)]
mod tests {
    use super::{default_base_url, version_key, version_of_tag};

    #[test]
    fn tags_order_by_version_and_name_versions() {
        let mut tags = vec!["v1.9.2", "v1.10.0", "v1.2", "v2.0.0", "v0.9"];
        tags.sort_by(|a, b| version_key(b).cmp(&version_key(a)));
        assert_eq!(tags, ["v2.0.0", "v1.10.0", "v1.9.2", "v1.2", "v0.9"]);
        assert_eq!((version_of_tag("v2.3.0"), version_of_tag("release-7"), version_of_tag("very")), ("2.3.0".into(), "release-7".into(), "very".into()));
    }

    #[test]
    fn web_pages_of_known_hosts() {
        assert_eq!(default_base_url("https://github.com/tokio-rs/tokio.git", "master", Some("/docs/")).as_deref(), Some("https://github.com/tokio-rs/tokio/blob/master/docs"));
        assert_eq!(default_base_url("https://gitlab.com/g/p", "main", None).as_deref(), Some("https://gitlab.com/g/p/blob/main"));
        assert_eq!(default_base_url("https://codeberg.org/o/r.git", "main", None).as_deref(), Some("https://codeberg.org/o/r/src/branch/main"));
        assert_eq!(default_base_url("https://git.example/o/r.git", "main", None), None);
        assert_eq!(default_base_url("git@github.com:o/r.git", "main", None), None);
    }
}
