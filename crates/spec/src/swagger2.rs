//! Presents a Swagger 2.0 document in OpenAPI 3 shape, so that one `search`
//! snippet works on both: `requestBody.content[type].schema`,
//! `responses[code].content[type].schema`, `components.schemas`, `servers`.
//!
//! Only the root document is converted; local references are rewritten
//! (`#/definitions/X` → `#/components/schemas/X`, and so on). References into
//! other files keep pointing at those files as they are.

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
    doc.get("swagger").and_then(Value::as_str).is_some_and(|v| v.starts_with('2'))
}

/// Converts a Swagger 2.0 document to OpenAPI 3.0 shape in place.
pub fn convert(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
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
            params_out.insert(name.clone(), convert_parameter(p.clone()));
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
        for (_, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            let path_params = item.remove("parameters");
            let mut path_level = Vec::new();
            if let Some(Value::Array(ps)) = &path_params {
                path_level = ps.clone();
            }
            for method in METHODS {
                if let Some(Value::Object(op)) = item.get_mut(method) {
                    convert_operation(op, &path_level, &shared_params, &consumes, &produces);
                }
            }
            // Path-level non-body parameters stay at the path level.
            let kept: Vec<Value> =
                path_level.into_iter().filter(|p| !is_body_like(p, &shared_params)).map(convert_parameter).collect();
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
}

fn servers_from(root: &Map<String, Value>) -> Vec<Value> {
    let base_path = root.get("basePath").and_then(Value::as_str).unwrap_or("");
    let Some(host) = root.get("host").and_then(Value::as_str) else {
        return if base_path.is_empty() { vec![] } else { vec![json!({"url": base_path})] };
    };
    let schemes = string_list(root.get("schemes")).unwrap_or_else(|| vec!["https".into()]);
    schemes.iter().map(|s| json!({"url": format!("{s}://{host}{base_path}")})).collect()
}

fn convert_operation(
    op: &mut Map<String, Value>,
    path_level: &[Value],
    shared: &Map<String, Value>,
    consumes: &[String],
    produces: &[String],
) {
    let consumes = string_list(op.remove("consumes").as_ref()).unwrap_or_else(|| consumes.to_vec());
    let produces = string_list(op.remove("produces").as_ref()).unwrap_or_else(|| produces.to_vec());
    let own = match op.remove("parameters") {
        Some(Value::Array(ps)) => ps,
        _ => vec![],
    };
    let mut params = Vec::new();
    let mut form_props = Map::new();
    let mut form_required = Vec::new();
    let mut has_file = false;
    // Operation parameters override path-level ones with the same name+in.
    let body_like: Vec<Value> =
        path_level.iter().filter(|p| is_body_like(p, shared)).cloned().chain(own.iter().cloned()).collect();
    for p in body_like {
        let resolved = deref_shared(&p, shared).unwrap_or_else(|| p.clone());
        match resolved.get("in").and_then(Value::as_str) {
            Some("body") => {
                let mut content = Map::new();
                for ct in &consumes {
                    let mut media = Map::new();
                    if let Some(schema) = resolved.get("schema") {
                        media.insert("schema".into(), schema.clone());
                    }
                    if let Some(ex) = resolved.get("x-examples").or_else(|| resolved.get("example")) {
                        media.insert("example".into(), ex.clone());
                    }
                    content.insert(ct.clone(), Value::Object(media));
                }
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
                form_props.insert(name, schema);
            }
            _ => {
                if !path_level.contains(&p) {
                    params.push(convert_parameter(p));
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
        op.insert("requestBody".into(), json!({"content": {ct: {"schema": schema}}}));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some(Value::Object(responses)) = op.remove("responses") {
        let converted = responses.into_iter().map(|(k, r)| (k, convert_response(r, &produces))).collect();
        op.insert("responses".into(), Value::Object(converted));
    }
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

fn convert_parameter(p: Value) -> Value {
    let Value::Object(mut map) = p else { return p };
    if map.contains_key("$ref") {
        return Value::Object(map);
    }
    let schema = schema_of_parameter(&Value::Object(map.clone()));
    for f in SCHEMA_FIELDS {
        map.remove(f);
    }
    map.remove("allowEmptyValue");
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
}
