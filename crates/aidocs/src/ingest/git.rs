//! Git repositories as a source: a shallow checkout of one branch kept under
//! `<data_dir>/sources/<name>`, brought up to date by a fetch and a hard reset on each run
//! (a first clone goes to a temporary directory renamed into place, so a crash leaves no half
//! checkout), then its files under `path` ingested as a [`DirectorySource`]: unchanged files
//! are skipped by hash and files gone from the branch lose their chunks. Symbolic links are
//! never followed, and a `path` that leads outside the checkout is refused, so a repository
//! cannot pull the server's own files into the index. Runs the `git` program (no prompt, a
//! time limit).

use super::IngestService;
use super::dir::DirectorySource;
use crate::error::{Error, Result};
use crate::progress::IngestProgress;
use crate::report::IngestReport;
use aidocs_core::DocMetadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Tags ingested at most by one `versions_from_tags` run: the newest by version order.
pub const MAX_TAGS: usize = 20;

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
}

/// What a Git run did: the ingest report and the commit it ingested.
#[derive(Debug, Clone)]
pub struct GitIngestReport {
    pub report: IngestReport,
    pub commit: String,
    pub branch: String,
}

fn git_err(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("git {what}: {detail}"))
}

/// Run `git args` in `dir`, without a terminal prompt, within [`GIT_TIMEOUT`]; its trimmed
/// stdout, or its stderr as the error.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
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
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > GIT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(git_err(what, format!("took longer than {} s", GIT_TIMEOUT.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(git_err(what, e)),
        }
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let last = stderr.lines().filter(|l| !l.trim().is_empty()).next_back().unwrap_or("no message");
        return Err(git_err(what, format!("{last} ({status})")));
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

/// Bring `checkout` to the tip of `branch` of `url` (cloned when missing or when it tracks
/// another URL). Returns the commit and the branch.
fn sync_checkout(checkout: &Path, url: &str, branch: Option<&str>) -> Result<(String, String)> {
    let parent = checkout.parent().ok_or_else(|| Error::Internal("a checkout needs a parent directory".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::Internal(format!("{}: {e}", parent.display())))?;
    let current = checkout.join(".git").is_dir().then(|| git(checkout, &["remote", "get-url", "origin"]).ok()).flatten();
    if current.as_deref() == Some(url) {
        let refspec = branch.unwrap_or("HEAD");
        git(checkout, &["fetch", "--depth", "1", "--no-tags", "origin", refspec])?;
        git(checkout, &["reset", "--hard", "--quiet", "FETCH_HEAD"])?;
        git(checkout, &["clean", "-ffdxq"])?;
    } else {
        // A fresh clone beside it, renamed into place: never half a checkout.
        let fresh = parent.join(format!(".clone-{}", uuid::Uuid::new_v4().simple()));
        let target = fresh.to_string_lossy().into_owned();
        let mut args = vec!["clone", "--depth", "1", "--single-branch", "--no-tags", "--quiet"];
        if let Some(b) = branch {
            args.extend(["--branch", b]);
        }
        args.extend(["--", url, &target]);
        let cloned = git(parent, &args);
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

/// Tags of `url` matching `glob` (git's own pattern matching), newest version first, at most
/// [`MAX_TAGS`].
fn remote_tags(dir: &Path, url: &str, glob: &str) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Internal(format!("{}: {e}", dir.display())))?;
    let out = git(dir, &["ls-remote", "--tags", "--refs", url, &format!("refs/tags/{glob}")])?;
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
        let (url, pattern) = (req.url.clone(), glob.clone());
        let tags = tokio::task::spawn_blocking(move || remote_tags(&dir, &url, &pattern)).await.map_err(|e| Error::Internal(format!("git task failed: {e}")))??;
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
    pub async fn git(&self, req: GitIngestRequest, progress: &dyn IngestProgress) -> Result<GitIngestReport> {
        let checkout = self.engine.config().data_dir.join("sources").join(&req.name);
        let (url, branch) = (req.url.clone(), req.branch.clone());
        let dir = checkout.clone();
        let (commit, branch) = tokio::task::spawn_blocking(move || sync_checkout(&dir, &url, branch.as_deref()))
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
