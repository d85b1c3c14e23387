//! OpenAPI 3 and Swagger 2 documents (JSON or YAML) as sections: an overview from `info`,
//! one section per operation (method and path, summary, description, parameters, request
//! body and responses with the fields of their schemas) anchored at its `operationId`, and
//! one per named schema (`schema-<name>`). Headings follow the operation's first tag, so a
//! hit reads `Petstore > pet > GET /pet/{petId}`. A file that is not an OpenAPI document
//! parses to nothing (and is skipped as empty). `$ref`s are followed inside the document
//! only, two levels deep, each schema once per listing: a cyclic or huge spec stays bounded.

use crate::document::{Block, ParsedDoc, Section};
use serde_json::Value;

/// Fields listed per schema at most.
const MAX_FIELDS: usize = 60;
/// Nesting of schemas listed inside a schema.
const MAX_DEPTH: usize = 2;
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Why `text` gives no sections: not JSON or YAML (with the YAML parser's complaint, which
/// names the line), not an API document, or one without operations or schemas.
pub fn problem(text: &str) -> String {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(json) => match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(yaml) => return format!("not an OpenAPI document: neither JSON ({json}) nor YAML ({yaml})"),
        },
    };
    match v.get("openapi").or_else(|| v.get("swagger")) {
        None => "not an OpenAPI document: no `openapi` or `swagger` field".to_owned(),
        Some(Value::String(version)) if version.starts_with('3') || version.starts_with('2') => "an OpenAPI document without operations, schemas or a description".to_owned(),
        Some(other) => format!("not an OpenAPI document: unsupported version {other}"),
    }
}

/// The document as JSON, then as YAML; `None` when it is neither or not an API document.
fn load(text: &str) -> Option<Value> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_yaml_ng::from_str(text).ok()?,
    };
    let version = v.get("openapi").or_else(|| v.get("swagger"))?.as_str()?;
    (version.starts_with('3') || version.starts_with('2')).then_some(v)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// `#/components/schemas/Pet` (or `#/definitions/Pet`, or any local pointer) resolved in
/// `doc`, with the name it has there.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> (&'a Value, Option<&'a str>) {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => {
            let name = r.rsplit('/').next();
            (doc.pointer(&r[1..]).unwrap_or(&Value::Null), name)
        }
        _ => (v, None),
    }
}

/// A short type: `string`, `integer (int64)`, `array of Pet`, `Pet`.
fn type_of(doc: &Value, schema: &Value) -> String {
    let (s, name) = deref(doc, schema);
    if let Some(n) = name {
        return n.to_owned();
    }
    let t = str_of(s, "type").unwrap_or(if s.get("properties").is_some() { "object" } else { "" });
    match t {
        "array" => format!("array of {}", s.get("items").map(|i| type_of(doc, i)).unwrap_or_else(|| "any".into())),
        "" => ["oneOf", "anyOf", "allOf"]
            .iter()
            .find_map(|k| s.get(*k)?.as_array().map(|alts| alts.iter().map(|a| type_of(doc, a)).collect::<Vec<_>>().join(if *k == "allOf" { " & " } else { " | " })))
            .unwrap_or_else(|| "any".into()),
        t => match str_of(s, "format") {
            Some(f) => format!("{t} ({f})"),
            None => t.to_owned(),
        },
    }
}

/// The fields of an object schema, one line each (`- name (string, required): text`),
/// nested objects indented below their field.
fn fields(doc: &Value, schema: &Value, depth: usize, seen: &mut Vec<String>, out: &mut Vec<String>) {
    let (s, name) = deref(doc, schema);
    if let Some(n) = name {
        if seen.iter().any(|x| x == n) {
            return;
        }
        seen.push(n.to_owned());
    }
    let s = match str_of(s, "type") {
        Some("array") => return s.get("items").map_or((), |i| fields(doc, i, depth, seen, out)),
        _ => s,
    };
    for part in ["allOf", "oneOf", "anyOf"].iter().filter_map(|k| s.get(*k)?.as_array()).flatten() {
        fields(doc, part, depth, seen, out);
    }
    let required: Vec<&str> = s.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
    let indent = "  ".repeat(depth);
    for (field, p) in props {
        if out.len() >= MAX_FIELDS {
            out.push(format!("{indent}- ..."));
            return;
        }
        let req = if required.contains(&field.as_str()) { ", required" } else { "" };
        let (pd, _) = deref(doc, p);
        let text = str_of(pd, "description").or_else(|| str_of(p, "description")).map(|d| format!(": {d}")).unwrap_or_default();
        let values = pd.get("enum").and_then(Value::as_array).map(|e| format!(" (one of {})", e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))).unwrap_or_default();
        out.push(format!("{indent}- {field} ({}{req}){text}{values}", type_of(doc, p)));
        if depth + 1 < MAX_DEPTH {
            fields(doc, p, depth + 1, seen, out);
        }
    }
}

fn schema_lines(doc: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fields(doc, schema, 0, &mut Vec::new(), &mut out);
    out
}

/// A section's anchor from free text: lowercase letters, digits and `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn operation(doc: &Value, swagger2: bool, path: &str, method: &str, op: &Value, shared: &[Value]) -> (String, String, Vec<String>) {
    let signature = format!("{} {path}", method.to_ascii_uppercase());
    let anchor = str_of(op, "operationId").map(str::to_owned).unwrap_or_else(|| slug(&format!("{method}-{path}")));
    let mut text = vec![signature.clone()];
    text.extend(str_of(op, "summary").map(str::to_owned));
    text.extend(str_of(op, "description").map(str::to_owned));
    if op.get("deprecated").and_then(Value::as_bool) == Some(true) {
        text.push("Deprecated.".into());
    }
    // Path-level parameters, then the operation's own (which override by name and place).
    let mut params: Vec<&Value> = Vec::new();
    for p in shared.iter().chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten()) {
        let (p, _) = deref(doc, p);
        let key = (str_of(p, "name"), str_of(p, "in"));
        params.retain(|q| (str_of(q, "name"), str_of(q, "in")) != key);
        params.push(p);
    }
    let mut body_schema = None;
    let mut lines = Vec::new();
    for p in params {
        let place = str_of(p, "in").unwrap_or("");
        if swagger2 && place == "body" {
            body_schema = p.get("schema");
            continue;
        }
        let ty = p.get("schema").map(|s| type_of(doc, s)).or_else(|| str_of(p, "type").map(str::to_owned)).unwrap_or_else(|| "any".into());
        let req = if p.get("required").and_then(Value::as_bool) == Some(true) { ", required" } else { "" };
        let d = str_of(p, "description").map(|d| format!(": {d}")).unwrap_or_default();
        lines.push(format!("- {} ({place}, {ty}{req}){d}", str_of(p, "name").unwrap_or("?")));
    }
    if !lines.is_empty() {
        text.push(format!("Parameters:\n{}", lines.join("\n")));
    }
    if let Some(body) = op.get("requestBody") {
        let (body, _) = deref(doc, body);
        let mut t = String::from("Request body");
        if let Some(content) = body.get("content").and_then(Value::as_object) {
            t.push_str(&format!(" ({})", content.keys().cloned().collect::<Vec<_>>().join(", ")));
            body_schema = content.values().find_map(|c| c.get("schema"));
        }
        if let Some(d) = str_of(body, "description") {
            t.push_str(&format!(": {d}"));
        }
        text.push(t);
    }
    if let Some(schema) = body_schema {
        let mut t = format!("Body: {}", type_of(doc, schema));
        let f = schema_lines(doc, schema);
        if !f.is_empty() {
            t.push('\n');
            t.push_str(&f.join("\n"));
        }
        text.push(t);
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        let mut r = vec!["Responses:".to_owned()];
        for (code, resp) in responses {
            let (resp, _) = deref(doc, resp);
            let schema = if swagger2 { resp.get("schema") } else { resp.get("content").and_then(Value::as_object).and_then(|c| c.values().find_map(|m| m.get("schema"))) };
            let returns = schema.map(|s| format!(", returns {}", type_of(doc, s))).unwrap_or_default();
            r.push(format!("- {code}: {}{returns}", str_of(resp, "description").unwrap_or("")));
        }
        text.push(r.join("\n"));
    }
    (signature, anchor, text)
}

/// Parse an OpenAPI 3 or Swagger 2 document; empty when `text` is not one.
///
/// The JSON and YAML parsers, and the walk over their values, recurse once per level of
/// nesting (up to their limit of 128): on a thread of its own with a stack sized for that,
/// so the caller's stack (a small one, say) never decides whether a hostile spec parses.
pub fn parse(text: &str) -> ParsedDoc {
    std::thread::scope(|s| match std::thread::Builder::new().name("openapi-parse".into()).stack_size(PARSE_STACK).spawn_scoped(s, || parse_on_this_stack(text)) {
        Ok(t) => t.join().unwrap_or_default(),
        Err(_) => parse_on_this_stack(text),
    })
}

/// Stack of the parsing thread: ample for 128 levels in a debug build.
const PARSE_STACK: usize = 16 << 20;

fn parse_on_this_stack(text: &str) -> ParsedDoc {
    let Some(doc) = load(text) else { return ParsedDoc::default() };
    let swagger2 = doc.get("swagger").is_some();
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let title = str_of(&info, "title").unwrap_or("API").to_owned();
    let mut sections = Vec::new();
    let mut overview = Vec::new();
    overview.extend(str_of(&info, "version").map(|v| format!("{title}, version {v}.")));
    overview.extend(str_of(&info, "description").map(str::to_owned));
    let servers: Vec<String> = if swagger2 {
        str_of(&doc, "host").map(|h| format!("{h}{}", str_of(&doc, "basePath").unwrap_or(""))).into_iter().collect()
    } else {
        doc.get("servers").and_then(Value::as_array).into_iter().flatten().filter_map(|s| str_of(s, "url").map(str::to_owned)).collect()
    };
    if !servers.is_empty() {
        overview.push(format!("Servers: {}", servers.join(", ")));
    }
    if !overview.is_empty() {
        sections.push(Section { heading_path: vec![title.clone()], anchor: String::new(), blocks: overview.into_iter().map(Block::Text).collect() });
    }
    for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
        let (item, _) = deref(&doc, item);
        let shared: Vec<Value> = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let (signature, anchor, text) = operation(&doc, swagger2, path, method, op, &shared);
            let mut heading_path = vec![title.clone()];
            heading_path.extend(op.get("tags").and_then(Value::as_array).and_then(|t| t.first()).and_then(Value::as_str).map(str::to_owned));
            heading_path.push(signature);
            sections.push(Section { heading_path, anchor, blocks: text.into_iter().map(Block::Text).collect() });
        }
    }
    let schemas = if swagger2 { doc.get("definitions") } else { doc.pointer("/components/schemas") };
    for (name, schema) in schemas.and_then(Value::as_object).into_iter().flatten() {
        let mut text = vec![format!("Schema {name}: {}", type_of(&doc, schema))];
        text.extend(str_of(schema, "description").map(str::to_owned));
        let f = schema_lines(&doc, schema);
        if !f.is_empty() {
            text.push(f.join("\n"));
        }
        sections.push(Section { heading_path: vec![title.clone(), "Schemas".into(), name.clone()], anchor: format!("schema-{}", slug(name)), blocks: text.into_iter().map(Block::Text).collect() });
    }
    ParsedDoc { title: Some(title), sections, meta: Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openapi_3_yaml_document_has_a_section_per_operation_and_schema() {
        let yaml = r##"
openapi: 3.0.3
info: {title: Todo API, version: "2.1", description: Keeps your todos.}
servers: [{url: "https://api.todo.example/v2"}]
paths:
  /todos/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, format: int64}, description: The todo's id}
    get:
      operationId: getTodo
      tags: [todos]
      summary: Read one todo
      responses:
        "200": {description: The todo, content: {application/json: {schema: {$ref: "#/components/schemas/Todo"}}}}
        "404": {description: No such todo}
    put:
      tags: [todos]
      summary: Replace a todo
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Todo"}}}}
      responses: {"204": {description: Replaced}}
components:
  schemas:
    Todo:
      type: object
      required: [title]
      properties:
        title: {type: string, description: What to do}
        done: {type: boolean}
        owner: {$ref: "#/components/schemas/User"}
    User:
      type: object
      properties:
        name: {type: string}
        todos: {type: array, items: {$ref: "#/components/schemas/Todo"}}
"##;
        let d = parse(yaml);
        assert_eq!(d.title.as_deref(), Some("Todo API"));
        let heads: Vec<String> = d.sections.iter().map(|s| s.heading_path.join(" > ")).collect();
        assert_eq!(heads, ["Todo API", "Todo API > todos > GET /todos/{id}", "Todo API > todos > PUT /todos/{id}", "Todo API > Schemas > Todo", "Todo API > Schemas > User"]);
        let anchors: Vec<&str> = d.sections.iter().map(|s| s.anchor.as_str()).collect();
        assert_eq!(anchors, ["", "getTodo", "put-todos-id", "schema-todo", "schema-user"]);
        let get = d.sections[1].blocks.iter().map(Block::text).collect::<Vec<_>>().join("\n");
        assert!(get.contains("- id (path, integer (int64), required): The todo's id"), "{get}");
        assert!(get.contains("- 200: The todo, returns Todo") && get.contains("- 404: No such todo"), "{get}");
        let put = d.sections[2].blocks.iter().map(Block::text).collect::<Vec<_>>().join("\n");
        assert!(put.contains("Body: Todo") && put.contains("- title (string, required): What to do"), "{put}");
        // The cycle Todo -> User -> Todo stops.
        assert!(put.contains("  - name (string)") && put.matches("- title").count() == 1, "{put}");
        assert!(d.sections[0].blocks.iter().any(|b| b.text().contains("https://api.todo.example/v2")));
    }

    #[test]
    fn what_is_not_an_api_document_parses_to_nothing() {
        for text in ["{\"name\": \"package\", \"version\": \"1.0\"}", "[1, 2]", "not: [valid", "key: value\n", ""] {
            assert!(parse(text).sections.is_empty(), "{text}");
        }
    }
}
