//! The MCP server (Model Context Protocol, the official Rust SDK `rmcp`): the documentation
//! tools a coding agent calls, over the engine. Served over streamable HTTP at `/mcp` by
//! [`crate::router`] (behind the same keys, scopes, rate limit, shedding, deadline and
//! metrics as `/v1`) and over stdio by `aidocs mcp`.
//!
//! Read tools: `search_docs` (answers grouped by page, fitted to a token budget),
//! `get_section`, `get_page`, `list_libraries`, `resolve_library`. Write tools
//! (`ingest_docs`, `job_status`, `sync_library`, `remove_docs`) are listed and callable only
//! by an admin-scope key over HTTP, or with `aidocs mcp --allow-write` on stdio. Bad
//! arguments give a tool result with `isError` naming the argument; an unknown tool is a
//! protocol error.

use crate::auth::Caller;
use crate::client::AdminClient;
use crate::jobs::job_outcome;
use aidocs::core::{Filter, FilterField, FilterValue};
use aidocs::ingest::{WebIngestRequest, WebSource, WebSourceKind};
use aidocs::jobs::{JobKind, Jobs};
use aidocs::{Engine, IngestRequest, SearchRequest};
use rmcp::handler::server::common::schema_for_input;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::Instant;


/// Who may call the write tools (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Nobody: the read tools only (stdio without `--allow-write`).
    Denied,
    /// Everybody on this transport (stdio with `--allow-write`).
    Allowed,
    /// Callers whose key has the admin scope (HTTP: the [`Caller`] the auth layer found).
    AdminKey,
}

/// The tools (closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolName {
    SearchDocs,
    GetSection,
    GetPage,
    ListLibraries,
    ResolveLibrary,
    IngestDocs,
    JobStatus,
    SyncLibrary,
    RemoveDocs,
}

impl ToolName {
    const ALL: [ToolName; 9] = [
        Self::SearchDocs,
        Self::GetSection,
        Self::GetPage,
        Self::ListLibraries,
        Self::ResolveLibrary,
        Self::IngestDocs,
        Self::JobStatus,
        Self::SyncLibrary,
        Self::RemoveDocs,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::SearchDocs => "search_docs",
            Self::GetSection => "get_section",
            Self::GetPage => "get_page",
            Self::ListLibraries => "list_libraries",
            Self::ResolveLibrary => "resolve_library",
            Self::IngestDocs => "ingest_docs",
            Self::JobStatus => "job_status",
            Self::SyncLibrary => "sync_library",
            Self::RemoveDocs => "remove_docs",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn writes(self) -> bool {
        matches!(self, Self::IngestDocs | Self::JobStatus | Self::SyncLibrary | Self::RemoveDocs)
    }

    fn tool(self) -> Tool {
        let (description, schema) = match self {
            Self::SearchDocs => (
                "Search the indexed documentation. Use it first for any question about a library's API, configuration or behaviour. \
                 Returns Markdown: results grouped by page, each section with its heading path, its link (url#anchor), library, version \
                 and the section's text (adjacent chunks merged in reading order), best first. The whole answer fits `max_tokens` \
                 (default 5000, counted with the embedding model's tokenizer); a last line says how many sections were cut or left out. \
                 Each section has an `id`: pass it to get_section to read the section whole. Without `version`, a library \
                 holding several versions is searched at its newest (the answer's first line says which).",
                schema_for_input::<SearchArgs>(),
            ),
            Self::GetSection => (
                "Read one documentation section whole, in order, with the titles and links of the sections before and after it. \
                 Give the `id` of a search_docs result, or a link `page-url#anchor`.",
                schema_for_input::<SectionArgs>(),
            ),
            Self::GetPage => (
                "Read a whole documentation page in reading order, as many sections as fit `max_tokens`; when the page goes on, \
                 the answer ends with a cursor: call again with it to read on.",
                schema_for_input::<PageArgs>(),
            ),
            Self::ListLibraries => (
                "List every library (documentation collection) this server holds: its aliases, the versions indexed, page and chunk \
                 counts, where its documents came from, when they were last updated and when its web sources were last re-crawled. Use it to pick `library` and `version`.",
                schema_for_input::<NoArgs>(),
            ),
            Self::ResolveLibrary => (
                "Map a library name and an optional version requirement (`react`, `react@18`, `python@3.11`, `^18.2`, `>=3.10,<3.12`) \
                 to a library and the newest indexed version that satisfies it. When no indexed version does, it says so and lists \
                 the versions indexed: it never answers with another version in its place.",
                schema_for_input::<ResolveArgs>(),
            ),
            Self::IngestDocs => (
                "Index documentation into a library, as a background job: a directory on the server's machine (`path`), a site crawled \
                 from a start page (`url`) or a sitemap (`sitemap`). Returns the job id; follow it with job_status. Needs write access.",
                schema_for_input::<IngestArgs>(),
            ),
            Self::JobStatus => ("The state, progress and result (or error) of a background job started by ingest_docs or sync_library.", schema_for_input::<JobArgs>()),
            Self::SyncLibrary => (
                "Re-crawl every web source registered for a library (conditional requests: unchanged pages cost little), as a background job. \
                 Returns the job id.",
                schema_for_input::<LibraryArgs>(),
            ),
            Self::RemoveDocs => (
                "Remove a library, or only one version of it (`version`). Cannot be undone (backups aside).",
                schema_for_input::<RemoveArgs>(),
            ),
        };
        let schema = schema.expect("tool argument types are JSON objects");
        let annotations = ToolAnnotations::new().read_only(!self.writes());
        Tool::new(self.as_str(), description, schema).annotate(annotations)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// A count as a JSON number or, as some clients send every argument, a string of digits.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(usize),
        Text(String),
    }
    match Option::<Count>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(Count::Number(n))) => Ok(Some(n)),
        Ok(Some(Count::Text(t))) => t.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected a non-negative integer, got \"{t}\""))),
        Err(_) => Err(serde::de::Error::custom("expected a non-negative integer")),
    }
}

/// Payload filters of a search.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Filters {
    /// Programming language (`python`, `rust`, ...).
    language: Option<String>,
    /// Framework (`django`, `react`, ...).
    framework: Option<String>,
    /// Kind of document (`tutorial`, `reference`, `howto`, ...).
    doc_type: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to look for: the question, in your own words.
    query: String,
    /// The library (collection or alias) to search; `*` searches every library at once;
    /// default: the server's default library.
    library: Option<String>,
    /// Only documents of this exact version (see list_libraries or resolve_library). Without
    /// it, a library holding several versions is searched at its newest, and the answer says so.
    version: Option<String>,
    filters: Option<Filters>,
    /// How many chunks to retrieve before grouping (1 to 50, default 10).
    #[serde(default, deserialize_with = "count")]
    limit: Option<usize>,
    /// Token budget of the whole answer (200 to 100000, default 5000).
    #[serde(default, deserialize_with = "count")]
    max_tokens: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SectionArgs {
    /// A result `id` from search_docs, or a link `page-url#anchor`.
    url_or_id: String,
    /// The library it is in; default: the server's default library.
    library: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PageArgs {
    /// The page's URL (an `#anchor` is ignored).
    url: String,
    library: Option<String>,
    /// Where to go on from: the cursor the previous answer ended with (default 0: the start).
    #[serde(default, deserialize_with = "count")]
    cursor: Option<usize>,
    /// Token budget of this answer (200 to 100000, default 5000).
    #[serde(default, deserialize_with = "count")]
    max_tokens: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResolveArgs {
    /// A library name, optionally with a version: `react`, `react@18`, `python>=3.10`.
    name: String,
    /// A version or requirement (`3.11`, `^18.2`, `>=3.10,<3.12`); overrides one in `name`.
    version: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IngestArgs {
    /// A directory or file on the server's machine (over HTTP: under `ingest.allowed_roots`).
    path: Option<String>,
    /// A start page: the site is crawled from it, within its directory.
    url: Option<String>,
    /// A sitemap URL: every page it lists.
    sitemap: Option<String>,
    /// The library (collection) to index into; created when absent.
    library: String,
    /// The documentation's version, stored with every chunk (several versions live side by side).
    version: Option<String>,
    /// Programming language of the documents.
    language: Option<String>,
    /// Framework of the documents.
    framework: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobArgs {
    /// The job id that ingest_docs or sync_library returned.
    id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LibraryArgs {
    library: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveArgs {
    library: String,
    /// Only this version; without it the whole library goes.
    version: Option<String>,
}

/// A tool's failure: the text of its `isError` result.
struct ToolError(String);

impl From<aidocs::Error> for ToolError {
    fn from(e: aidocs::Error) -> Self {
        let message = match &e {
            // A server's own answer (already public) or a client-side failure to read it.
            aidocs::Error::Remote { message, .. } => message.clone(),
            _ => e.public_message(),
        };
        Self(format!("{}: {message}", e.code().as_str_and_status().0))
    }
}

type ToolResult = Result<String, ToolError>;

fn bad(msg: impl Into<String>) -> ToolError {
    ToolError(format!("invalid_request: {}", msg.into()))
}

/// The arguments as `T`; an error names the argument (`limit: invalid type ...`).
fn args<T: DeserializeOwned>(raw: Option<rmcp::model::JsonObject>) -> Result<T, ToolError> {
    let value = serde_json::Value::Object(raw.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { bad(e.inner().to_string()) } else { bad(format!("argument `{path}`: {}", e.inner())) }
    })
}

fn budget(asked: Option<usize>) -> Result<usize, ToolError> {
    aidocs::read::budget(asked).map_err(|e| bad(format!("argument {e}")))
}

/// The MCP server over one engine. Cheap to clone: one per HTTP session or stdio process.
#[derive(Clone)]
pub struct DocsServer {
    backend: Backend,
    writes: Writes,
}

/// Where the tools get their answers (closed set).
#[derive(Clone)]
enum Backend {
    /// The engine in this process, and its jobs.
    Local { engine: Engine, jobs: Jobs },
    /// A running aidocs-server, through its `/v1` API.
    Remote(std::sync::Arc<AdminClient>),
}

impl DocsServer {
    pub fn new(engine: Engine, jobs: Jobs, writes: Writes) -> Self {
        Self { backend: Backend::Local { engine, jobs }, writes }
    }

    /// The tools over a running server's API (`aidocs mcp --server URL`): each call is one
    /// `/v1` request with the client's key, so the server's scopes, limits and metrics apply
    /// to it. With `writes` other than `Denied` the write tools are listed too; the server
    /// still refuses them to a key without the admin scope.
    pub fn remote(client: AdminClient, writes: Writes) -> Self {
        Self { backend: Backend::Remote(std::sync::Arc::new(client)), writes }
    }

    /// Serve one client on this process's stdin and stdout until it disconnects.
    pub async fn serve_stdio(self) -> Result<(), std::io::Error> {
        use rmcp::ServiceExt;
        let running = self.serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
        running.waiting().await.map_err(std::io::Error::other)?;
        Ok(())
    }

    fn may_write(&self, ctx: &RequestContext<RoleServer>) -> bool {
        match self.writes {
            Writes::Denied => false,
            Writes::Allowed => true,
            Writes::AdminKey => ctx.extensions.get::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<Caller>()).is_some_and(|c| c.admin),
        }
    }

    async fn run(&self, tool: ToolName, raw: Option<rmcp::model::JsonObject>) -> ToolResult {
        match &self.backend {
            Backend::Local { engine, jobs } => self.run_local(engine, jobs, tool, raw).await,
            Backend::Remote(client) => remote::run(client, tool, raw).await,
        }
    }

    async fn run_local(&self, e: &Engine, jobs: &Jobs, tool: ToolName, raw: Option<rmcp::model::JsonObject>) -> ToolResult {
        match tool {
            ToolName::SearchDocs => {
                let a: SearchArgs = args(raw)?;
                let max_tokens = budget(a.max_tokens)?;
                if a.query.trim().is_empty() {
                    return Err(bad("argument `query` is empty"));
                }
                let mut filter = Filter::default();
                let f = a.filters.unwrap_or_default();
                // Several versions side by side and none asked for: the newest, said so.
                let mut preface = String::new();
                let version = match (a.version, a.library.as_deref()) {
                    (Some(v), _) => Some(v),
                    (None, Some(l)) if l.contains(['*', ',']) => None,
                    (None, l) => {
                        let library = l.unwrap_or(&e.config().search.default_collection);
                        let newest = e.default_version(library).await?;
                        if let Some(v) = &newest {
                            let all = e.versions(library).await?;
                            preface = format!("Version {v}, the newest indexed of `{library}` ({}); pass `version` for another.\n\n", all.join(", "));
                        }
                        newest
                    }
                };
                for (field, value) in [(FilterField::Version, version), (FilterField::Language, f.language), (FilterField::Framework, f.framework), (FilterField::DocType, f.doc_type)] {
                    if let Some(v) = value {
                        filter = filter.and(field, FilterValue::Keyword(v));
                    }
                }
                let limit = a.limit.unwrap_or(10);
                if !(1..=50).contains(&limit) {
                    return Err(bad(format!("argument `limit`: {limit} is outside 1..=50")));
                }
                let req = SearchRequest { collection: a.library, limit: Some(limit), filter, ..SearchRequest::new(a.query) };
                let resp = e.search(req).await?;
                let preface_tokens = e.counter().count(&preface);
                let text = e.fit(&resp, max_tokens.saturating_sub(preface_tokens).max(1)).await?.render();
                Ok(preface + &text)
            }
            ToolName::GetSection => {
                let a: SectionArgs = args(raw)?;
                Ok(e.section(a.library.as_deref(), a.url_or_id.trim()).await?.render())
            }
            ToolName::GetPage => {
                let a: PageArgs = args(raw)?;
                let max_tokens = budget(a.max_tokens)?;
                Ok(e.page(a.library.as_deref(), a.url.trim(), a.cursor.unwrap_or(0), max_tokens).await?.render())
            }
            ToolName::ListLibraries => {
                let _: NoArgs = args(raw)?;
                let libs = e.libraries().await?;
                serde_json::to_string_pretty(&libs).map_err(|e| ToolError(e.to_string()))
            }
            ToolName::ResolveLibrary => {
                let a: ResolveArgs = args(raw)?;
                let r = e.resolve_library(&a.name, a.version.as_deref()).await?;
                serde_json::to_string_pretty(&r).map_err(|e| ToolError(e.to_string()))
            }
            ToolName::IngestDocs => self.ingest(e, jobs, args(raw)?),
            ToolName::JobStatus => {
                let a: JobArgs = args(raw)?;
                match jobs.get(&a.id).await {
                    Ok(Some(v)) => serde_json::to_string_pretty(&v).map_err(|e| ToolError(e.to_string())),
                    Ok(None) => Err(ToolError(format!("not_found: no job `{}`", a.id))),
                    Err(err) => Err(ToolError(format!("unavailable: {err}"))),
                }
            }
            ToolName::SyncLibrary => {
                let a: LibraryArgs = args(raw)?;
                let engine = e.clone();
                let library = a.library.clone();
                let (id, _) = jobs.spawn(JobKind::Sync, Some(a.library.clone()), move |p| async move {
                    job_outcome(engine.ingest().sync(&library, p.as_ref()).await)
                });
                Ok(format!("started job {id}: re-crawling the web sources of `{}`; follow it with job_status", a.library))
            }
            ToolName::RemoveDocs => {
                let a: RemoveArgs = args(raw)?;
                match a.version {
                    Some(v) => {
                        let n = e.collections().delete_version(&a.library, &v).await?;
                        Ok(format!("removed version {v} of `{}`: {n} chunks", a.library))
                    }
                    None => {
                        e.collections().delete(&a.library).await?;
                        Ok(format!("removed library `{}`", a.library))
                    }
                }
            }
        }
    }

    fn ingest(&self, engine: &Engine, jobs: &Jobs, a: IngestArgs) -> ToolResult {
        let metadata = aidocs::core::DocMetadata { version: a.version, language: a.language, framework: a.framework, ..Default::default() };
        let engine = engine.clone();
        let collection = a.library.clone();
        let (id, what) = match (a.path, a.url, a.sitemap) {
            (Some(path), None, None) => {
                let path = match self.writes {
                    // Over HTTP, the same roots as `POST /v1/documents`.
                    Writes::AdminKey => crate::routes::documents::allowed_path(&engine.config().ingest.allowed_roots, std::path::Path::new(&path)).map_err(|e| ToolError(format!("{}: {}", e.code.as_str_and_status().0, e.message)))?,
                    _ => PathBuf::from(&path),
                };
                let req = IngestRequest { path: path.clone(), collection: collection.clone(), metadata, base_url: None };
                let (id, _) = jobs.spawn(JobKind::Ingest, Some(collection), move |p| async move { job_outcome(engine.ingest().directory(req, p.as_ref()).await) });
                (id, format!("indexing {}", path.display()))
            }
            (None, url, sitemap) if url.is_some() != sitemap.is_some() => {
                let (kind, start) = match (url, sitemap) {
                    (Some(u), None) => (WebSourceKind::Site, u),
                    (None, Some(s)) => (WebSourceKind::Sitemap, s),
                    _ => unreachable!("exactly one of url and sitemap"),
                };
                let source = WebSource { kind, urls: vec![start.clone()], scope: None, include: vec![], exclude: vec![], max_pages: None, max_depth: None, allow_hosts: vec![], metadata, render: Default::default() };
                let source = source.validated()?;
                let req = WebIngestRequest { collection: collection.clone(), source };
                let (id, _) = jobs.spawn(JobKind::WebIngest, Some(collection), move |p| async move { job_outcome(engine.ingest().web(req, p.as_ref()).await) });
                (id, format!("crawling {start}"))
            }
            _ => return Err(bad("give exactly one of the arguments `path`, `url` or `sitemap`")),
        };
        Ok(format!("started job {id}: {what} into `{}`; follow it with job_status", a.library))
    }
}

impl ServerHandler for DocsServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Documentation search for coding agents. Call search_docs with the question; read a result's section whole with \
             get_section (its id) or the page with get_page. Use list_libraries or resolve_library to pick a library and version: \
             a version that is not indexed is reported, never replaced by another.",
        )
    }

    async fn list_tools(&self, _request: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListToolsResult, ErrorData> {
        let write = self.may_write(&ctx);
        Ok(ListToolsResult::with_all_items(ToolName::ALL.into_iter().filter(|t| write || !t.writes()).map(ToolName::tool).collect()))
    }

    async fn call_tool(&self, request: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = ToolName::from_name(&request.name) else {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", request.name), None));
        };
        let started = Instant::now();
        let result = if tool.writes() && !self.may_write(&ctx) {
            Err(ToolError(format!(
                "forbidden: `{}` changes the index and needs write access (an API key with the admin scope over HTTP, `aidocs mcp --allow-write` on stdio)",
                tool.as_str()
            )))
        } else {
            self.run(tool, request.arguments).await
        };
        if let Backend::Local { engine, .. } = &self.backend {
            engine.metrics().mcp_tool(tool.as_str(), result.is_ok(), started.elapsed().as_secs_f64());
        }
        Ok(match result {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(ToolError(text)) => CallToolResult::error(vec![ContentBlock::text(text)]),
        }
        .into())
    }
}

/// The read tools through a running server's `/v1` API.
mod remote {
    use super::{IngestArgs, JobArgs, LibraryArgs, NoArgs, PageArgs, RemoveArgs, ResolveArgs, SearchArgs, SectionArgs, ToolError, ToolName, ToolResult, args, bad, budget};
    use crate::client::AdminClient;
    use crate::wire;

    /// What the newest-version line may take of the budget (the server counts the rest).
    const PREFACE_TOKENS: usize = 64;

    /// The text of a job started on the server, as the local tools word it.
    fn started(job: &serde_json::Value, what: &str) -> ToolResult {
        match job["job"]["id"].as_str() {
            Some(id) => Ok(format!("started job {id}: {what}; follow it with job_status")),
            // A server that answered with the finished report instead.
            None => Ok(format!("done: {what}: {job}")),
        }
    }

    pub(super) async fn run(c: &AdminClient, tool: ToolName, raw: Option<rmcp::model::JsonObject>) -> ToolResult {
        match tool {
            ToolName::SearchDocs => {
                let a: SearchArgs = args(raw)?;
                let max_tokens = budget(a.max_tokens)?;
                let limit = a.limit.unwrap_or(10);
                if !(1..=50).contains(&limit) {
                    return Err(bad(format!("argument `limit`: {limit} is outside 1..=50")));
                }
                let f = a.filters.unwrap_or_default();
                let mut preface = String::new();
                let mut version = a.version;
                // A named library with several versions and none asked for: the newest.
                if let (None, Some(l)) = (&version, a.library.as_deref().filter(|l| !l.contains(['*', ',']))) {
                    let r: wire::Resolution = c.get_at(&["v1", "resolve"], &[("name", l.to_owned())]).await?;
                    if r.available.len() > 1 {
                        preface = format!("Version {}, the newest indexed of `{l}` ({}); pass `version` for another.\n\n", r.available.last().cloned().unwrap_or_default(), r.available.join(", "));
                        version = r.available.last().cloned();
                    }
                }
                let mut filter = serde_json::Map::new();
                for (k, v) in [("version", version), ("language", f.language), ("framework", f.framework), ("doc_type", f.doc_type)] {
                    if let Some(v) = v {
                        filter.insert(k.into(), v.into());
                    }
                }
                let body = serde_json::json!({
                    "query": a.query, "collection": a.library, "limit": limit, "filter": filter, "group_by": "page",
                    "max_tokens": if preface.is_empty() { max_tokens } else { max_tokens.saturating_sub(PREFACE_TOKENS).max(200) },
                });
                let resp: wire::SearchResponse = c.post_as("/v1/search", &body).await?;
                Ok(preface + &resp.grouped.map(|g| g.text).unwrap_or_default())
            }
            ToolName::GetSection => {
                let a: SectionArgs = args(raw)?;
                let q: Vec<(&str, String)> = a.library.map(|l| ("library", l)).into_iter().collect();
                let s: wire::SectionResponse = c.get_at(&["v1", "sections", a.url_or_id.trim()], &q).await?;
                Ok(aidocs::read::SectionView::from(s).render())
            }
            ToolName::GetPage => {
                let a: PageArgs = args(raw)?;
                let mut q = vec![("url", a.url.trim().to_owned()), ("max_tokens", budget(a.max_tokens)?.to_string())];
                q.extend(a.library.map(|l| ("library", l)));
                q.extend(a.cursor.map(|c| ("cursor", c.to_string())));
                let p: wire::PageResponse = c.get_at(&["v1", "pages"], &q).await?;
                Ok(aidocs::read::PageView::from(p).render())
            }
            ToolName::ListLibraries => {
                let _: NoArgs = args(raw)?;
                let l: wire::Libraries = c.get_at(&["v1", "libraries"], &[]).await?;
                serde_json::to_string_pretty(&l.libraries).map_err(|e| ToolError(e.to_string()))
            }
            ToolName::ResolveLibrary => {
                let a: ResolveArgs = args(raw)?;
                let mut q = vec![("name", a.name)];
                q.extend(a.version.map(|v| ("version", v)));
                let r: wire::Resolution = c.get_at(&["v1", "resolve"], &q).await?;
                // The same JSON as the local tool (`version: null` when none matches).
                serde_json::to_string_pretty(&aidocs::read::Resolution::from(r)).map_err(|e| ToolError(e.to_string()))
            }
            // Write tools (listed only with `--allow-write`): the admin API, so the server's own
            // checks apply: the admin scope of the key, `ingest.allowed_roots`, crawl limits.
            ToolName::IngestDocs => {
                let a: IngestArgs = args(raw)?;
                let what = a.path.clone().or(a.url.clone()).or(a.sitemap.clone()).unwrap_or_default();
                let body = serde_json::json!({
                    "collection": a.library, "path": a.path, "url": a.url, "sitemap": a.sitemap,
                    "metadata": {"version": a.version, "language": a.language, "framework": a.framework},
                });
                let job = c.start("/v1/documents", &body).await?;
                started(&job, &format!("indexing {what} into `{}`", a.library))
            }
            ToolName::JobStatus => {
                let a: JobArgs = args(raw)?;
                let job: serde_json::Value = c.get_at(&["v1", "admin", "jobs", &a.id], &[]).await?;
                serde_json::to_string_pretty(&job).map_err(|e| ToolError(e.to_string()))
            }
            ToolName::SyncLibrary => {
                let a: LibraryArgs = args(raw)?;
                let job = c.start("/v1/admin/sync", &serde_json::json!({"collection": a.library})).await?;
                started(&job, &format!("re-crawling the web sources of `{}`", a.library))
            }
            ToolName::RemoveDocs => {
                let a: RemoveArgs = args(raw)?;
                match a.version {
                    Some(v) => {
                        let r: wire::Removed = c.delete_at(&["v1", "admin", "collections", &a.library, "versions", &v]).await?;
                        Ok(format!("removed version {v} of `{}`: {} chunks", a.library, r.chunks.unwrap_or(0)))
                    }
                    None => {
                        let _: wire::Removed = c.delete_at(&["v1", "admin", "collections", &a.library]).await?;
                        Ok(format!("removed library `{}`", a.library))
                    }
                }
            }
        }
    }
}

/// The streamable HTTP service at `/mcp`: stateless (any replica answers any request, no
/// session to lose), JSON answers for plain calls. The `Host` check of the SDK (against DNS
/// rebinding of local servers) is off: the server's API keys guard it like `/v1`. A body
/// past `max_body_bytes` (`server.max_body_bytes`, as on `/v1`) is refused 413 while it streams.
pub fn http_service(engine: Engine, jobs: Jobs, max_body_bytes: usize) -> rmcp::transport::streamable_http_server::StreamableHttpService<DocsServer, rmcp::transport::streamable_http_server::session::local::LocalSessionManager> {
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true).disable_allowed_hosts().with_max_request_body_bytes(max_body_bytes);
    let server = DocsServer::new(engine, jobs, Writes::AdminKey);
    StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config)
}
