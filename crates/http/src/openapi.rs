//! The OpenAPI 3.1 document of the API, generated from the routes' `#[utoipa::path]`
//! annotations and the [`crate::wire`] types; served at `GET /openapi.json` and committed as
//! `docs/openapi.json` (a test fails when the two drift; CI validates it with an independent
//! validator).

use aidocs::config::Scope;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, Ref, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// The document before the routes are added: info, security schemes, the error schema.
pub fn base() -> OpenApi {
    let info = InfoBuilder::new()
        .title("aidocs")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Hybrid documentation search: dense + BM25 retrieval over sectioned documentation, with deep links to the answering section. \
             Every error is `{\"error\": {\"code\", \"message\"}}`; the codes are listed in docs/api.md.",
        ))
        .build();
    let components = ComponentsBuilder::new()
        .schema(crate::wire::ErrorBody::name(), crate::wire::ErrorBody::schema())
        .schemas_from_iter(error_schemas())
        .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("`Authorization: Bearer KEY`")).build()))
        .security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))))
        .build();
    OpenApiBuilder::new().info(info).components(Some(components)).build()
}

fn error_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
    let mut out = Vec::new();
    <crate::wire::ErrorBody as ToSchema>::schemas(&mut out);
    out
}

/// Mark every operation of `doc` as needing `scope`: the API key schemes, and the scope in
/// its description. Called by the assembly on each guarded router, so the document and the
/// `route_layer` that enforces the scope come from the same line.
pub fn require_scope(doc: &mut OpenApi, scope: Scope) {
    let name = match scope {
        Scope::Search => "search",
        Scope::Admin => "admin",
    };
    for op in operations(doc) {
        op.security = Some(vec![SecurityRequirement::new("bearer", [name]), SecurityRequirement::new("api_key", [name])]);
        let note = format!("Needs an API key with the `{name}` scope when keys are configured.");
        op.description = Some(match op.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
            _ => note,
        });
    }
}

/// The last touches: every response has a description (OpenAPI requires one; the status's
/// reason phrase where the route gave none), and every operation can answer an error with
/// the one error body.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    for op in operations(&mut doc) {
        for (status, response) in op.responses.responses.iter_mut() {
            if let utoipa::openapi::RefOr::T(r) = response
                && r.description.is_empty()
            {
                let reason = status.parse::<u16>().ok().and_then(|s| axum::http::StatusCode::from_u16(s).ok()).and_then(|s| s.canonical_reason());
                r.description = reason.unwrap_or("Response").to_owned();
            }
        }
        for (status, what) in [("4XX", "The request was refused; `code` says why (table in docs/api.md)"), ("5XX", "The server or a dependency failed, was overloaded or ran out of time")] {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                ResponseBuilder::new()
                    .description(what)
                    .content("application/json", Content::new(Some(Ref::from_schema_name(crate::wire::ErrorBody::name()))))
                    .build()
                    .into()
            });
        }
    }
    doc
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.options, &mut item.head, &mut item.patch, &mut item.trace]
            .into_iter()
            .filter_map(Option::as_mut)
    })
}

/// `GET /openapi.json`: the document, serialized once when the router is built (it is
/// public and unlimited, so a request costs a clone of the bytes, not a serialization).
pub fn serve(doc: &OpenApi) -> axum::routing::MethodRouter<aidocs::Engine> {
    let body = axum::body::Bytes::from(serde_json::to_vec(doc).expect("the OpenAPI document serializes"));
    axum::routing::get(move || {
        let body = body.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
    })
}
