//! Presents a Swagger 2.0 document in OpenAPI 3 shape, so that one `search`
//! snippet works on both: `requestBody.content[type].schema`,
//! `responses[code].content[type].schema`, `components.schemas`, `servers`.
//!
//! Only the root document is converted; local references are rewritten
//! (`#/definitions/X` → `#/components/schemas/X`, and so on). References into
//! other files keep pointing at those files as they are.
//!
//! Swagger 2.0 constructs with an OpenAPI 3 equivalent are mapped to it:
//! `collectionFormat` to `style`/`explode`, `x-nullable` to `nullable`, a body
//! parameter's `x-examples` to its media types' `example`/`examples`, a
//! parameter's `x-example` to `example`. What has none (`collectionFormat:
//! tsv`) is kept as an `x-` field and returned as a [`Note`].

use serde_json::{json, Map, Value};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Parameter fields that move into `schema` in OpenAPI 3.
const SCHEMA_FIELDS: [&str; 17] = [
    "type",
    "format",
    "items",
    "collectionFormat",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
];

/// True when the document declares `swagger: "2.0"`.
pub fn is_swagger2(doc: &Value) -> bool {
    doc.get("swagger").and_then(Value::as_str).is_some_and(is_swagger2_version)
}

/// True for the value of a `swagger` field that names version 2.
pub fn is_swagger2_version(version: &str) -> bool {
    version.starts_with('2')
}

/// Something the conversion could not map exactly, at a JSON pointer of the
/// Swagger 2.0 document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where, in the document as written.
    pub pointer: String,
    /// What was kept instead, and why.
    pub message: String,
}

/// Converts a Swagger 2.0 document to OpenAPI 3.0 shape in place; returns
/// what could not be mapped exactly.
pub fn convert(doc: &mut Value) -> Vec<Note> {
    let mut notes = Vec::new();
    let Some(root) = doc.as_object_mut() else {
        return notes;
    };
    let consumes = string_list(root.get("consumes")).unwrap_or_else(|| vec!["application/json".into()]);
    let produces = string_list(root.get("produces")).unwrap_or_else(|| vec!["application/json".into()]);
    // Shared parameters: body/formData ones become requestBodies, the rest stay parameters.
    let shared_params = root.remove("parameters").and_then(into_object).unwrap_or_default();

    let mut components = Map::new();
    if let Some(defs) = root.remove("definitions") {
        components.insert("schemas".into(), defs);
    }
    let mut params_out = Map::new();
    for (name, p) in &shared_params {
        if !matches!(p.get("in").and_then(Value::as_str), Some("body") | Some("formData")) {
            let at = format!("/parameters/{}", escape(name));
            params_out.insert(name.clone(), convert_parameter(p.clone(), &at, &mut notes));
        }
    }
    if !params_out.is_empty() {
        components.insert("parameters".into(), Value::Object(params_out));
    }
    if let Some(Value::Object(responses)) = root.remove("responses") {
        let converted = responses.into_iter().map(|(k, r)| (k, convert_response(r, &produces))).collect();
        components.insert("responses".into(), Value::Object(converted));
    }
    if let Some(Value::Object(defs)) = root.remove("securityDefinitions") {
        let converted = defs.into_iter().map(|(k, s)| (k, convert_security_scheme(s))).collect();
        components.insert("securitySchemes".into(), Value::Object(converted));
    }

    let servers = servers_from(root);
    if let Some(Value::Object(paths)) = root.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            let at_item = format!("/paths/{}", escape(path));
            let path_params = item.remove("parameters");
            let mut path_level = Vec::new();
            if let Some(Value::Array(ps)) = &path_params {
                path_level = ps.clone();
            }
            for method in METHODS {
                if let Some(Value::Object(op)) = item.get_mut(method) {
                    let at = Ctx { at: format!("{at_item}/{method}"), shared: &shared_params };
                    convert_operation(op, &path_level, &at, &consumes, &produces, &mut notes);
                }
            }
            // Path-level non-body parameters stay at the path level.
            let kept: Vec<Value> = path_level
                .into_iter()
                .enumerate()
                .filter(|(_, p)| !is_body_like(p, &shared_params))
                .map(|(i, p)| convert_parameter(p, &format!("{at_item}/parameters/{i}"), &mut notes))
                .collect();
            if !kept.is_empty() {
                item.insert("parameters".into(), Value::Array(kept));
            }
        }
    }

    for key in ["swagger", "host", "basePath", "schemes", "consumes", "produces"] {
        root.remove(key);
    }
    root.insert("openapi".into(), json!("3.0.3"));
    root.insert("x-converted-from".into(), json!("swagger 2.0"));
    if !servers.is_empty() {
        root.insert("servers".into(), Value::Array(servers));
    }
    if !components.is_empty() {
        root.insert("components".into(), Value::Object(components));
    }
    rewrite_local_refs(doc);
    map_nullable(doc);
    notes
}

fn servers_from(root: &Map<String, Value>) -> Vec<Value> {
    let base_path = root.get("basePath").and_then(Value::as_str).unwrap_or("");
    let Some(host) = root.get("host").and_then(Value::as_str) else {
        return if base_path.is_empty() { vec![] } else { vec![json!({"url": base_path})] };
    };
    let schemes = string_list(root.get("schemes")).unwrap_or_else(|| vec!["https".into()]);
    schemes.iter().map(|s| json!({"url": format!("{s}://{host}{base_path}")})).collect()
}

/// Where an operation is, and the document's shared parameters.
struct Ctx<'a> {
    /// JSON pointer of the operation in the Swagger 2.0 document.
    at: String,
    shared: &'a Map<String, Value>,
}

fn convert_operation(
    op: &mut Map<String, Value>,
    path_level: &[Value],
    ctx: &Ctx,
    consumes: &[String],
    produces: &[String],
    notes: &mut Vec<Note>,
) {
    let shared = ctx.shared;
    let consumes = string_list(op.remove("consumes").as_ref()).unwrap_or_else(|| consumes.to_vec());
    let produces = string_list(op.remove("produces").as_ref()).unwrap_or_else(|| produces.to_vec());
    let own = match op.remove("parameters") {
        Some(Value::Array(ps)) => ps,
        _ => vec![],
    };
    let mut params = Vec::new();
    let mut form_props = Map::new();
    let mut form_required = Vec::new();
    let mut form_encoding = Map::new();
    let mut has_file = false;
    // Operation parameters override path-level ones with the same name+in.
    // Each keeps the pointer of where it is written (for notes).
    let at_path = ctx.at.rsplit_once('/').map_or("", |(item, _)| item);
    let body_like: Vec<(String, Value)> = path_level
        .iter()
        .enumerate()
        .filter(|(_, p)| is_body_like(p, shared))
        .map(|(i, p)| (format!("{at_path}/parameters/{i}"), p.clone()))
        .chain(own.iter().enumerate().map(|(i, p)| (format!("{}/parameters/{i}", ctx.at), p.clone())))
        .collect();
    for (at, p) in body_like {
        let resolved = deref_shared(&p, shared).unwrap_or_else(|| p.clone());
        match resolved.get("in").and_then(Value::as_str) {
            Some("body") => {
                let mut content = Map::new();
                for ct in &consumes {
                    let mut media = Map::new();
                    if let Some(schema) = resolved.get("schema") {
                        media.insert("schema".into(), schema.clone());
                    }
                    content.insert(ct.clone(), Value::Object(media));
                }
                body_examples(&resolved, &mut content, &at, notes);
                let mut body = Map::new();
                if let Some(d) = resolved.get("description") {
                    body.insert("description".into(), d.clone());
                }
                body.insert("required".into(), resolved.get("required").cloned().unwrap_or(json!(false)));
                body.insert("content".into(), Value::Object(content));
                op.insert("requestBody".into(), Value::Object(body));
            }
            Some("formData") => {
                let name = resolved.get("name").and_then(Value::as_str).unwrap_or("field").to_string();
                if resolved.get("type").and_then(Value::as_str) == Some("file") {
                    has_file = true;
                }
                if resolved.get("required").and_then(Value::as_bool) == Some(true) {
                    form_required.push(json!(name));
                }
                let mut schema = schema_of_parameter(&resolved);
                if schema.get("type").and_then(Value::as_str) == Some("file") {
                    schema = json!({"type": "string", "format": "binary"});
                }
                let mut style = Map::new();
                collection_style(&resolved, &mut style, &at, notes);
                if !style.is_empty() {
                    form_encoding.insert(name.clone(), Value::Object(style));
                }
                form_props.insert(name, schema);
            }
            _ => {
                if !path_level.contains(&p) {
                    params.push(convert_parameter(p, &at, notes));
                }
            }
        }
    }
    if !form_props.is_empty() {
        let ct = if has_file || consumes.iter().any(|c| c == "multipart/form-data") {
            "multipart/form-data"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut schema = json!({"type": "object", "properties": form_props});
        if !form_required.is_empty() {
            schema["required"] = Value::Array(form_required);
        }
        let mut media = json!({"schema": schema});
        if !form_encoding.is_empty() {
            media["encoding"] = Value::Object(form_encoding);
        }
        op.insert("requestBody".into(), json!({"content": {ct: media}}));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some(Value::Object(responses)) = op.remove("responses") {
        let converted = responses.into_iter().map(|(k, r)| (k, convert_response(r, &produces))).collect();
        op.insert("responses".into(), Value::Object(converted));
    }
}

/// A body parameter's examples into its media types. Swagger 2.0 has no
/// field for them; the common `x-examples` is written two ways, both mapped:
/// keyed by media type (`{"application/json": {...}}`, like a response's
/// `examples`) → that media type's `example`; keyed by name → `examples`
/// in OpenAPI 3 shape (`{name: {value}}`, or as is when the entries already
/// are Example objects). An `x-examples` that is not an object, or `example`,
/// is one example for every media type. Only an entry for a media type the
/// operation does not consume has nowhere to go: it is noted.
fn body_examples(p: &Value, content: &mut Map<String, Value>, at: &str, notes: &mut Vec<Note>) {
    let single = |content: &mut Map<String, Value>, ex: &Value| {
        for media in content.values_mut() {
            media["example"] = ex.clone();
        }
    };
    match p.get("x-examples") {
        Some(Value::Object(map)) if !map.is_empty() && map.keys().all(|k| k.contains('/')) => {
            for (ct, ex) in map {
                match content.get_mut(ct) {
                    Some(media) => media["example"] = ex.clone(),
                    None => notes.push(Note {
                        pointer: format!("{at}/x-examples/{}", escape(ct)),
                        message: format!(
                            "an example for `{ct}`, which the operation does not consume (it consumes {}): left out of `requestBody`",
                            content.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        ),
                    }),
                }
            }
        }
        Some(Value::Object(map)) if !map.is_empty() => {
            let is_example_object =
                |v: &Value| v.as_object().is_some_and(|o| o.contains_key("value") || o.contains_key("externalValue"));
            let examples: Map<String, Value> = if map.values().all(is_example_object) {
                map.clone()
            } else {
                map.iter().map(|(k, v)| (k.clone(), json!({ "value": v }))).collect()
            };
            for media in content.values_mut() {
                media["examples"] = Value::Object(examples.clone());
            }
        }
        Some(ex) => single(content, ex),
        None => {
            if let Some(ex) = p.get("example") {
                single(content, ex)
            }
        }
    }
}

/// Swagger 2.0's `collectionFormat` as OpenAPI 3's `style`/`explode`, into
/// `out` (a parameter, or a form field's `encoding`).
fn collection_style(p: &Value, out: &mut Map<String, Value>, at: &str, notes: &mut Vec<Note>) {
    if p.get("type").and_then(Value::as_str) != Some("array") {
        return;
    }
    let format = p.get("collectionFormat").and_then(Value::as_str).unwrap_or("csv");
    let location = p.get("in").and_then(Value::as_str).unwrap_or("query");
    let (style, explode) = match (format, location) {
        ("csv", "path" | "header") => ("simple", false),
        ("csv", _) => ("form", false),
        ("ssv", _) => ("spaceDelimited", false),
        ("pipes", _) => ("pipeDelimited", false),
        ("multi", _) => ("form", true),
        (other, _) => {
            out.insert("x-collectionFormat".into(), json!(other));
            notes.push(Note {
                pointer: format!("{at}/collectionFormat"),
                message: format!(
                    "`collectionFormat: {other}` has no OpenAPI 3 `style`; kept as `x-collectionFormat: {other}` (values joined by {})",
                    if other == "tsv" { "tabs" } else { "an unknown separator" }
                ),
            });
            return;
        }
    };
    out.insert("style".into(), json!(style));
    out.insert("explode".into(), json!(explode));
}

fn is_body_like(p: &Value, shared: &Map<String, Value>) -> bool {
    let resolved = deref_shared(p, shared);
    let p = resolved.as_ref().unwrap_or(p);
    matches!(p.get("in").and_then(Value::as_str), Some("body") | Some("formData"))
}

/// Resolves `{"$ref": "#/parameters/X"}` against the document's shared parameters.
fn deref_shared(p: &Value, shared: &Map<String, Value>) -> Option<Value> {
    let r = p.get("$ref")?.as_str()?;
    let name = r.strip_prefix("#/parameters/")?;
    shared.get(&unescape_pointer_token(name)).cloned()
}

/// A non-body parameter in OpenAPI 3 shape: the type fields into `schema`,
/// `collectionFormat` as `style`/`explode`, `x-example` as `example`.
fn convert_parameter(p: Value, at: &str, notes: &mut Vec<Note>) -> Value {
    let Value::Object(mut map) = p else { return p };
    if map.contains_key("$ref") {
        return Value::Object(map);
    }
    let original = Value::Object(map.clone());
    let mut schema = schema_of_parameter(&original);
    // `x-nullable` belongs to the type: it moves into the schema with it.
    if let (Some(n), Value::Object(s)) = (map.remove("x-nullable"), &mut schema) {
        s.insert("x-nullable".into(), n);
    }
    collection_style(&original, &mut map, at, notes);
    for f in SCHEMA_FIELDS {
        map.remove(f);
    }
    map.remove("allowEmptyValue");
    if let Some(ex) = map.remove("x-example") {
        map.entry("example").or_insert(ex);
    }
    map.insert("schema".into(), schema);
    Value::Object(map)
}

fn schema_of_parameter(p: &Value) -> Value {
    let mut schema = Map::new();
    for f in SCHEMA_FIELDS {
        if f == "collectionFormat" {
            continue;
        }
        if let Some(v) = p.get(f) {
            schema.insert(f.into(), v.clone());
        }
    }
    Value::Object(schema)
}

fn convert_response(r: Value, produces: &[String]) -> Value {
    let Value::Object(mut map) = r else { return r };
    if map.contains_key("$ref") {
        return Value::Object(map);
    }
    let schema = map.remove("schema");
    let examples = map.remove("examples");
    if let Some(schema) = schema {
        let mut content = Map::new();
        for ct in produces {
            let mut media = Map::new();
            media.insert("schema".into(), schema.clone());
            if let Some(ex) = examples.as_ref().and_then(|e| e.get(ct)) {
                media.insert("example".into(), ex.clone());
            }
            content.insert(ct.clone(), Value::Object(media));
        }
        map.insert("content".into(), Value::Object(content));
    }
    if let Some(Value::Object(headers)) = map.remove("headers") {
        let converted = headers
            .into_iter()
            .map(|(k, h)| {
                let mut out = Map::new();
                if let Some(d) = h.get("description") {
                    out.insert("description".into(), d.clone());
                }
                out.insert("schema".into(), schema_of_parameter(&h));
                (k, Value::Object(out))
            })
            .collect();
        map.insert("headers".into(), Value::Object(converted));
    }
    map.entry("description").or_insert(json!(""));
    Value::Object(map)
}

fn convert_security_scheme(s: Value) -> Value {
    match s.get("type").and_then(Value::as_str) {
        Some("basic") => {
            let mut out = json!({"type": "http", "scheme": "basic"});
            if let Some(d) = s.get("description") {
                out["description"] = d.clone();
            }
            out
        }
        Some("oauth2") => {
            let flow = match s.get("flow").and_then(Value::as_str) {
                Some("implicit") => "implicit",
                Some("password") => "password",
                Some("application") => "clientCredentials",
                _ => "authorizationCode",
            };
            let mut f = Map::new();
            for (from, to) in [("authorizationUrl", "authorizationUrl"), ("tokenUrl", "tokenUrl"), ("scopes", "scopes")]
            {
                if let Some(v) = s.get(from) {
                    f.insert(to.into(), v.clone());
                }
            }
            f.entry("scopes").or_insert(json!({}));
            json!({"type": "oauth2", "flows": {flow: f}})
        }
        _ => s, // apiKey has the same shape in both versions
    }
}

/// Rewrites local references from Swagger 2.0 locations to OpenAPI 3 ones.
fn rewrite_local_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                for (from, to) in [
                    ("#/definitions/", "#/components/schemas/"),
                    ("#/parameters/", "#/components/parameters/"),
                    ("#/responses/", "#/components/responses/"),
                ] {
                    if let Some(rest) = r.strip_prefix(from) {
                        *r = format!("{to}{rest}");
                        break;
                    }
                }
            }
            map.values_mut().for_each(rewrite_local_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_local_refs),
        _ => {}
    }
}

/// `x-nullable: true|false` (Swagger 2.0's vendor extension, on schemas and
/// parameter types) becomes OpenAPI 3's `nullable`, unless one is already
/// there. Only boolean values are taken: a property *named* `x-nullable`
/// has a schema object as its value.
fn map_nullable(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if matches!(map.get("x-nullable"), Some(Value::Bool(_))) {
                let n = map.shift_remove("x-nullable").expect("just seen");
                map.entry("nullable").or_insert(n);
            }
            map.values_mut().for_each(map_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(map_nullable),
        _ => {}
    }
}

fn escape(token: &str) -> String {
    crate::source::escape_pointer_token(token)
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    let list: Vec<String> = v?.as_array()?.iter().filter_map(|s| s.as_str().map(String::from)).collect();
    (!list.is_empty()).then_some(list)
}

fn into_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn unescape_pointer_token(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_body_responses_servers_and_refs() {
        let mut doc = json!({
            "swagger": "2.0",
            "host": "api.example.com", "basePath": "/v1", "schemes": ["https"],
            "consumes": ["application/json"], "produces": ["application/json"],
            "definitions": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "securityDefinitions": {"basic": {"type": "basic"}},
            "paths": {"/pets/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "type": "string"}],
                "put": {
                    "parameters": [
                        {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Pet"}},
                        {"name": "dry", "in": "query", "type": "boolean"}
                    ],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Pet"}}}
                }
            }}
        });
        convert(&mut doc);
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["servers"][0]["url"], "https://api.example.com/v1");
        let op = &doc["paths"]["/pets/{id}"]["put"];
        assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Pet");
        assert_eq!(op["requestBody"]["required"], true);
        assert_eq!(op["parameters"][0]["name"], "dry");
        assert_eq!(op["parameters"][0]["schema"]["type"], "boolean");
        assert_eq!(op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Pet");
        assert_eq!(doc["paths"]["/pets/{id}"]["parameters"][0]["schema"]["type"], "string");
        assert_eq!(doc["components"]["securitySchemes"]["basic"]["scheme"], "basic");
        assert!(doc.get("definitions").is_none());
    }

    #[test]
    fn form_data_becomes_a_form_body() {
        let mut doc = json!({"swagger": "2.0", "paths": {"/up": {"post": {
            "consumes": ["multipart/form-data"],
            "parameters": [{"name": "file", "in": "formData", "type": "file", "required": true}],
            "responses": {"201": {"description": "created"}}
        }}}});
        convert(&mut doc);
        let schema = &doc["paths"]["/up"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"];
        assert_eq!(schema["properties"]["file"]["format"], "binary");
        assert_eq!(schema["required"][0], "file");
    }

    #[test]
    fn collection_formats_become_style_and_explode() {
        let param = |name: &str, location: &str, format: Option<&str>| {
            let mut p = json!({"name": name, "in": location, "type": "array", "items": {"type": "string"}});
            if let Some(f) = format {
                p["collectionFormat"] = json!(f);
            }
            if location == "path" {
                p["required"] = json!(true);
            }
            p
        };
        let mut doc = json!({"swagger": "2.0", "paths": {"/a/{ids}": {"get": {
            "parameters": [
                param("csv", "query", Some("csv")),
                param("default", "query", None),
                param("ids", "path", Some("csv")),
                param("X-Ids", "header", None),
                param("ssv", "query", Some("ssv")),
                param("pipes", "query", Some("pipes")),
                param("multi", "query", Some("multi")),
                param("tsv", "query", Some("tsv")),
                {"name": "plain", "in": "query", "type": "string"}
            ],
            "responses": {"200": {"description": "ok"}}
        }}}});
        let notes = convert(&mut doc);
        let ps = doc["paths"]["/a/{ids}"]["get"]["parameters"].as_array().unwrap().clone();
        let style = |i: usize| (ps[i]["style"].clone(), ps[i]["explode"].clone());
        assert_eq!(style(0), (json!("form"), json!(false)), "csv in query");
        assert_eq!(style(1), (json!("form"), json!(false)), "Swagger 2.0's default is csv");
        assert_eq!(style(2), (json!("simple"), json!(false)), "csv in path");
        assert_eq!(style(3), (json!("simple"), json!(false)), "csv in a header");
        assert_eq!(style(4), (json!("spaceDelimited"), json!(false)));
        assert_eq!(style(5), (json!("pipeDelimited"), json!(false)));
        assert_eq!(style(6), (json!("form"), json!(true)));
        assert_eq!(style(7), (Value::Null, Value::Null), "tsv has no style");
        assert_eq!(ps[7]["x-collectionFormat"], "tsv");
        assert!(ps[8].get("style").is_none(), "not an array");
        for p in &ps {
            assert!(p.get("collectionFormat").is_none() && p["schema"].get("collectionFormat").is_none(), "{p}");
        }
        assert_eq!(
            notes,
            vec![Note {
                pointer: "/paths/~1a~1{ids}/get/parameters/7/collectionFormat".into(),
                message: "`collectionFormat: tsv` has no OpenAPI 3 `style`; kept as `x-collectionFormat: tsv` (values joined by tabs)".into()
            }]
        );
    }

    #[test]
    fn a_form_field_collection_format_becomes_its_encoding() {
        let mut doc = json!({"swagger": "2.0", "paths": {"/f": {"post": {
            "consumes": ["application/x-www-form-urlencoded"],
            "parameters": [{"name": "tags", "in": "formData", "type": "array", "items": {"type": "string"}, "collectionFormat": "multi"}],
            "responses": {"200": {"description": "ok"}}
        }}}});
        assert!(convert(&mut doc).is_empty());
        let media = &doc["paths"]["/f"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"];
        assert_eq!(media["encoding"]["tags"], json!({"style": "form", "explode": true}));
        assert_eq!(media["schema"]["properties"]["tags"]["type"], "array");
    }

    #[test]
    fn x_nullable_becomes_nullable() {
        let mut doc = json!({"swagger": "2.0",
        "definitions": {"Pet": {"type": "object", "x-nullable": true, "properties": {
            "name": {"type": "string", "x-nullable": false},
            "x-nullable": {"type": "boolean"}
        }}},
        "paths": {"/p": {"get": {
            "parameters": [{"name": "q", "in": "query", "type": "string", "x-nullable": true}],
            "responses": {"200": {"description": "ok", "schema": {"type": "string", "x-nullable": true, "nullable": false}}}
        }}}});
        convert(&mut doc);
        let pet = &doc["components"]["schemas"]["Pet"];
        assert_eq!(pet["nullable"], true);
        assert!(pet.get("x-nullable").is_none());
        assert_eq!(pet["properties"]["name"]["nullable"], false);
        assert_eq!(pet["properties"]["x-nullable"], json!({"type": "boolean"}), "a property of that name stays");
        let op = &doc["paths"]["/p"]["get"];
        assert_eq!(op["parameters"][0]["schema"], json!({"type": "string", "nullable": true}), "into the schema");
        assert!(op["parameters"][0].get("x-nullable").is_none());
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["nullable"], false,
            "an explicit `nullable` wins"
        );
    }

    #[test]
    fn body_examples_take_the_openapi3_shape() {
        let body = |examples: Value| json!({"name": "body", "in": "body", "schema": {"type": "object"}, "x-examples": examples});
        let mut doc = json!({"swagger": "2.0", "consumes": ["application/json", "application/xml"], "paths": {
            "/by-type": {"post": {"parameters": [body(json!({"application/json": {"a": 1}, "text/csv": "a\n1"}))], "responses": {}}},
            "/by-name": {"post": {"parameters": [body(json!({"small": {"a": 1}, "large": {"a": 2}}))], "responses": {}}},
            "/objects": {"post": {"parameters": [body(json!({"one": {"summary": "One", "value": {"a": 1}}}))], "responses": {}}},
            "/q": {"get": {"parameters": [{"name": "q", "in": "query", "type": "string", "x-example": "cats"}], "responses": {}}}
        }});
        let notes = convert(&mut doc);
        let content = |path: &str| doc["paths"][path]["post"]["requestBody"]["content"].clone();
        let by_type = content("/by-type");
        assert_eq!(by_type["application/json"]["example"], json!({"a": 1}));
        assert!(by_type["application/xml"].get("example").is_none());
        assert_eq!(
            notes,
            vec![Note {
                pointer: "/paths/~1by-type/post/parameters/0/x-examples/text~1csv".into(),
                message: "an example for `text/csv`, which the operation does not consume (it consumes `application/json`, `application/xml`): left out of `requestBody`".into()
            }]
        );
        let by_name = content("/by-name");
        assert_eq!(
            by_name["application/json"]["examples"],
            json!({"small": {"value": {"a": 1}}, "large": {"value": {"a": 2}}})
        );
        assert_eq!(by_name["application/xml"]["examples"]["large"]["value"]["a"], 2);
        assert_eq!(
            content("/objects")["application/json"]["examples"]["one"],
            json!({"summary": "One", "value": {"a": 1}})
        );
        let q = &doc["paths"]["/q"]["get"]["parameters"][0];
        assert_eq!(q["example"], "cats");
        assert!(q.get("x-example").is_none());
    }
}
