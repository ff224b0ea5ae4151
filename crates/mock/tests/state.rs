//! Stateful rehearsal and consistent answers on a small Cloudflare-shaped
//! spec: an envelope (`{success, result, result_info}`), a collection with
//! an item path below it, a DELETE documented as needing a body.

use std::sync::Arc;

use codemode_mock::{MockApi, Scope, StateConfig, WARNING_HEADER};
use codemode_upstream::{ApiRequest, Body, Caller, Responder};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

fn spec_json() -> Value {
    let record = json!({
        "type": "object",
        "required": ["type", "name", "content"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$", "readOnly": true},
            "zone_id": {"type": "string"},
            "type": {"type": "string", "enum": ["A", "AAAA"]},
            "name": {"type": "string"},
            "content": {"type": "string"},
            "ttl": {"type": "integer"}
        }
    });
    let info = json!({"type": "object", "properties": {
        "page": {"type": "number"}, "per_page": {"type": "number"}, "count": {"type": "number"}, "total_count": {"type": "number"}}});
    let single = json!({"type": "object", "required": ["success", "result"], "properties": {
        "success": {"type": "boolean", "enum": [true]}, "result": {"$ref": "#/components/schemas/Record"}}});
    let path_params = json!([
        {"name": "zone_id", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "record_id", "in": "path", "required": true, "schema": {"type": "string"}}
    ]);
    let ok = |schema: Value| json!({"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "DNS", "version": "1"},
        "servers": [{"url": "https://api.example.com/client/v4"}],
        "components": {"schemas": {"Record": record}},
        "paths": {
            "/zones/{zone_id}/records": {
                "parameters": [{"name": "zone_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {
                    "parameters": [
                        {"name": "per_page", "in": "query", "schema": {"type": "number", "default": 100}},
                        {"name": "page", "in": "query", "schema": {"type": "number"}},
                        {"name": "content", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": ok(json!({"type": "object", "properties": {
                        "success": {"type": "boolean"},
                        "result": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                        "result_info": info}}))
                },
                "post": {
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
                    "responses": ok(single.clone())
                }
            },
            "/zones/{zone_id}/records/{record_id}": {
                "parameters": path_params,
                "get": {"responses": ok(single.clone())},
                "patch": {
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": ok(single)
                },
                "delete": {
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": ok(json!({"type": "object", "properties": {"result": {"type": "object", "properties": {"id": {"type": "string"}}}}}))
                }
            }
        }
    })
}

async fn mock() -> MockApi {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("codemode-mock-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = dir.join(format!("dns-{}.json", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&path, serde_json::to_vec(&spec_json()).unwrap()).unwrap();
    let spec = codemode_spec::load(path.to_str().unwrap(), &reqwest::Client::new()).await.unwrap();
    MockApi::new(Arc::new(spec))
}

fn who(principal: &str) -> Caller {
    Caller { principal: Some(principal.into()), session: None }
}

fn call(
    mock: &MockApi,
    caller: &Caller,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value, Vec<(String, String)>) {
    let req = ApiRequest {
        method: method.into(),
        path: path.into(),
        query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        headers: vec![],
        body: body.map(|b| Body::Json(b, None)).unwrap_or(Body::None),
    };
    let r = mock.respond_for(caller, &req, &HeaderMap::new());
    let body = if r.body.is_empty() { Value::Null } else { serde_json::from_slice(&r.body).unwrap() };
    (r.status, body, r.headers)
}

const RECORDS: &str = "/zones/z1/records";

fn seeded(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"type": "A", "name": format!("h{i}.example.com"), "content": if i % 3 == 0 { "203.0.113.42" } else { "198.51.100.1" }}))
        .collect();
    json!({ "/client/v4/zones/z1/records": items })
}

#[tokio::test]
async fn stateless_answers_agree_with_the_request() {
    let mock = mock().await;
    let me = who("a");
    let (_, body, _) = call(&mock, &me, "GET", "/zones/z1/records/0123456789abcdef0123456789abcdef", &[], None);
    assert_eq!(body["result"]["id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(body["result"]["zone_id"], "z1");
    // An id that the field's pattern refuses is not written into it.
    let (_, body, _) = call(&mock, &me, "GET", "/zones/z1/records/not-hex", &[], None);
    assert_ne!(body["result"]["id"], "not-hex");
    let (_, body, _) = call(&mock, &me, "GET", RECORDS, &[("per_page", "100"), ("page", "2")], None);
    let n = body["result"].as_array().unwrap().len() as u64;
    assert_eq!(body["result_info"]["per_page"], 100);
    assert_eq!(body["result_info"]["page"], 2);
    assert_eq!(body["result_info"]["count"], n);
    assert_eq!(body["result_info"]["total_count"], 100 + n);
}

#[tokio::test]
async fn state_creates_lists_reads_updates_and_deletes() {
    let mock = mock().await.with_state(StateConfig::new(Scope::Principal));
    let me = who("a");
    let (status, body, _) = call(&mock, &me, "GET", RECORDS, &[], None);
    assert_eq!(
        (status, body["result"].clone(), body["result_info"]["total_count"].clone()),
        (200, json!([]), json!(0))
    );
    let (status, body, _) = call(
        &mock,
        &me,
        "POST",
        RECORDS,
        &[],
        Some(json!({"type": "A", "name": "a.example.com", "content": "192.0.2.1"})),
    );
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    let id = body["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{body}");
    assert_eq!(body["result"]["zone_id"], "z1");
    let item = format!("{RECORDS}/{id}");
    let (_, body, _) = call(&mock, &me, "PATCH", &item, &[], Some(json!({"content": "192.0.2.2"})));
    assert_eq!(
        (body["result"]["content"].as_str(), body["result"]["name"].as_str()),
        (Some("192.0.2.2"), Some("a.example.com"))
    );
    let (_, body, _) = call(&mock, &me, "GET", &item, &[], None);
    assert_eq!(body["result"]["content"], "192.0.2.2");
    let (_, body, _) = call(&mock, &me, "GET", RECORDS, &[("content", "192.0.2.2")], None);
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
    let (_, body, _) = call(&mock, &me, "GET", RECORDS, &[("content", "192.0.2.1")], None);
    assert_eq!(body["result"], json!([]));
    // The spec wants a body on DELETE; rehearsal warns instead of refusing.
    let (status, body, headers) = call(&mock, &me, "DELETE", &item, &[], None);
    assert_eq!((status, body["result"].clone()), (200, json!({"id": id})));
    assert!(headers.iter().any(|(k, v)| k == WARNING_HEADER && v.contains("mock_strict")), "{headers:?}");
    let (status, body, _) = call(&mock, &me, "GET", &item, &[], None);
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("GET /zones/z1/records lists what exists"), "{body}");
    let (status, _, _) = call(&mock, &me, "DELETE", &item, &[], None);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn strict_rehearsal_requires_the_documented_body() {
    let mock = mock().await.with_state(StateConfig::new(Scope::Principal)).strict(true);
    let (status, body, _) = call(&mock, &who("a"), "DELETE", &format!("{RECORDS}/x"), &[], None);
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("a request body is required"));
}

#[tokio::test]
async fn seeds_page_through_once_and_stay_per_caller() {
    let mut mock = mock().await.with_state(StateConfig::new(Scope::Principal));
    assert_eq!(mock.seed(&seeded(250)), Ok(250));
    let a = who("a");
    let mut seen = Vec::new();
    for page in 1..=4 {
        let page = page.to_string();
        let (_, body, _) = call(&mock, &a, "GET", RECORDS, &[("per_page", "100"), ("page", &page)], None);
        assert_eq!(body["result_info"]["total_count"], 250);
        seen.extend(body["result"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()));
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (250, 250));
    // Another caller starts from the seed, untouched by a's deletes.
    let (_, body, _) = call(&mock, &a, "GET", RECORDS, &[("content", "203.0.113.42"), ("per_page", "1000")], None);
    for r in body["result"].as_array().unwrap() {
        let (status, _, _) = call(&mock, &a, "DELETE", &format!("{RECORDS}/{}", r["id"].as_str().unwrap()), &[], None);
        assert_eq!(status, 200);
    }
    let (_, body, _) = call(&mock, &a, "GET", RECORDS, &[("content", "203.0.113.42")], None);
    assert_eq!(body["result_info"]["total_count"], 0);
    let (_, body, _) = call(&mock, &who("b"), "GET", RECORDS, &[("content", "203.0.113.42")], None);
    assert_eq!(body["result_info"]["total_count"], 84);
}

#[tokio::test]
async fn bad_seeds_say_where_and_how_to_fix() {
    let mut mock = mock().await.with_state(StateConfig::new(Scope::Principal));
    let problems = mock
        .seed(&json!({
            RECORDS: [{"type": "MX", "name": "x", "content": "y"}, "not a record"],
            "/zones/z1/nothing": [],
            "/zones/z1/records/r1": []
        }))
        .unwrap_err();
    let text = problems.join("\n");
    assert!(text.contains("/~1zones~1z1~1records/0/type:"), "{text}");
    assert!(text.contains("/~1zones~1z1~1records/1: must be an object"), "{text}");
    assert!(text.contains("/~1zones~1z1~1nothing: `/zones/z1/nothing` is not a collection"), "{text}");
    assert!(text.contains("/~1zones~1z1~1records~1r1:"), "{text}");
    let mut stateless = self::mock().await;
    assert!(stateless.seed(&json!({})).unwrap_err()[0].contains("mock_state"));
}
