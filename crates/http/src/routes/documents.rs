//! `POST /v1/documents`: ingest a path on the server's machine, crawl a site, a sitemap or
//! a list of URLs, or ingest a Git repository, as a job.

use crate::error::{ApiError, ApiJson};
use crate::jobs::{Wait, run_job};
use crate::wire::{DocumentsBody, WaitQuery};
use aidocs::jobs::{JobKind, Jobs};
use aidocs::ingest::git::{GitIngestRequest, Remote, checkout_name};
use aidocs::ingest::{WebIngestRequest, WebSource, WebSourceKind};
use aidocs::{Engine, ErrorCode, IngestRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Engine> {
    OpenApiRouter::new().routes(routes!(documents))
}

/// Ingest documents into a collection (created when absent), incrementally: unchanged
/// documents are skipped, removed ones deleted. Runs as a job (`X-Aidocs-Job`); with
/// `?wait=false` the answer is 202 and the job at once.
#[utoipa::path(post, path = "/v1/documents", tag = "documents", request_body = DocumentsBody, params(WaitQuery),
    responses((status = 200, description = "The ingest or crawl report", body = Object),
              (status = 202, description = "Still running: the job (`GET /v1/admin/jobs/{id}`)", body = Object)))]
async fn documents(State(engine): State<Engine>, jobs: axum::Extension<Jobs>, wait: Wait, ApiJson(body): ApiJson<DocumentsBody>) -> Result<Response, ApiError> {
    let collection = body.collection.unwrap_or_else(|| engine.config().search.default_collection.clone());
    let metadata: aidocs::core::DocMetadata = body.metadata.into();
    let web = match (body.path, body.url, body.sitemap, body.urls, body.git) {
        (Some(_), None, None, None, None) | (None, None, None, None, Some(_)) if body.render != crate::wire::RenderView::None => {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "`render` is for web sources (`url`, `sitemap`, `urls`), not a `path` or `git`"));
        }
        (None, None, None, None, Some(git)) => {
            if body.max_pages.is_some() || body.max_depth.is_some() || body.scope.is_some() || !body.include.is_empty() || !body.exclude.is_empty() {
                return Err(ApiError::new(ErrorCode::InvalidRequest, "`scope`, `include`, `exclude`, `max_pages` and `max_depth` are for web sources, not `git`"));
            }
            if git.git_ref.is_some() && git.versions_from_tags.is_some() {
                return Err(ApiError::new(ErrorCode::InvalidRequest, "give `ref` or `versions_from_tags`, not both"));
            }
            if [&git.git_ref, &git.versions_from_tags].into_iter().flatten().any(|r| r.is_empty() || r.starts_with('-') || r.chars().any(|c| c.is_whitespace() || c.is_control())) {
                return Err(ApiError::new(ErrorCode::InvalidRequest, "`ref` and `versions_from_tags` are a branch, a tag or a tag pattern (no spaces, not starting with `-`)"));
            }
            // A repository on this machine: under ingest.allowed_roots, as a path would be.
            if let Some(path) = git.url.strip_prefix("file://").or_else(|| git.url.starts_with('/').then_some(git.url.as_str())) {
                allowed_path(&engine.config().ingest.allowed_roots, std::path::Path::new(path))?;
            }
            let req = GitIngestRequest {
                name: checkout_name("api", &git.url),
                collection: collection.clone(),
                url: git.url,
                branch: git.git_ref,
                path: git.path,
                base_url: body.base_url,
                metadata,
                versions_from_tags: git.versions_from_tags,
                remote: Remote::Client,
                credentials: None,
            };
            return run_job(&jobs, JobKind::GitIngest, Some(collection), wait, StatusCode::OK, move |p| async move {
                engine.ingest().git_source(req, p.as_ref()).await.map(|reports| serde_json::json!({ "reports": reports }))
            })
            .await;
        }
        (Some(path), None, None, None, None) => {
            let path = allowed_path(&engine.config().ingest.allowed_roots, std::path::Path::new(&path))?;
            let req = IngestRequest { path, collection: collection.clone(), metadata, base_url: body.base_url };
            return run_job(&jobs, JobKind::Ingest, Some(collection), wait, StatusCode::OK, move |p| async move { engine.ingest().directory(req, p.as_ref()).await })
                .await;
        }
        (None, Some(u), None, None, None) => (WebSourceKind::Site, vec![u]),
        (None, None, Some(u), None, None) => (WebSourceKind::Sitemap, vec![u]),
        (None, None, None, Some(list), None) => (WebSourceKind::Urls, list),
        _ => return Err(ApiError::new(ErrorCode::InvalidRequest, "give exactly one of `path`, `url`, `sitemap`, `urls` or `git`")),
    };
    // Internal hosts are only ever allowed by config (`crawl.allow_hosts`), never by a request;
    // a request may lower the configured crawl limits, never raise them.
    let crawl = &engine.config().crawl;
    for (name, asked, limit) in [("max_pages", body.max_pages, crawl.max_pages), ("max_depth", body.max_depth, crawl.max_depth)] {
        if let Some(asked) = asked.filter(|a| *a > limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`{name}` {asked} is above this server's crawl.{name} ({limit}); a request may only lower it"),
            ));
        }
    }
    let source = WebSource {
        kind: web.0,
        urls: web.1,
        scope: body.scope,
        include: body.include,
        exclude: body.exclude,
        max_pages: body.max_pages,
        max_depth: body.max_depth,
        allow_hosts: Vec::new(),
        metadata,
        render: body.render.into(),
    };
    let target = Some(collection.clone());
    run_job(&jobs, JobKind::WebIngest, target, wait, StatusCode::OK, move |p| async move {
        engine.ingest().web(WebIngestRequest { collection, source }, p.as_ref()).await
    })
    .await
}

/// The canonical form of a path a client asked the server to ingest, if it lies under one
/// of `ingest.allowed_roots` (symlinks resolved, so a link that leaves a root is refused).
/// A missing, unreadable or outside path gets one and the same answer: a client learns
/// nothing about what exists on the server's machine.
pub(crate) fn allowed_path(roots: &[std::path::PathBuf], requested: &std::path::Path) -> Result<std::path::PathBuf, ApiError> {
    if roots.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "path ingest over HTTP is disabled on this server: ingest.allowed_roots names no directories (use `url`, or the CLI on the server's machine)",
        ));
    }
    let refused = || ApiError::new(ErrorCode::Forbidden, "`path` is not a readable file or directory under the server's ingest.allowed_roots");
    let canonical = requested.canonicalize().map_err(|_| refused())?;
    let inside = roots.iter().filter_map(|r| r.canonicalize().ok()).any(|root| canonical.starts_with(&root));
    if !inside {
        return Err(refused());
    }
    Ok(canonical)
}
