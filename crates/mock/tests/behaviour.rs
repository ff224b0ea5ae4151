//! Routing, validation, security, `Prefer` and synthesis on a small inline spec.

use std::sync::Arc;

use codemode_mock::{MockApi, MOCK_HEADER};
use codemode_upstream::{ApiRequest, Body, Responder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

fn spec_json() -> Value {
    let item = json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "readOnly": true},
            "name": {"type": "string", "minLength": 1, "maxLength": 20},
            "price": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
            "note": {"type": "string", "nullable": true},
            "created": {"type": "string", "format": "date-time", "readOnly": true},
            "contact": {"type": "string", "format": "email"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "secret": {"type": "string", "writeOnly": true},
            "kind": {"type": "string", "enum": ["small", "big"]}
        }
    });
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "servers": [{"url": "https://api.example.com/v2"}],
        "security": [{"bearer": []}, {"key": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
            },
            "schemas": {
                "Item": item,
                "Node": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
                    }
                }
            }
        },
        "paths": {
            "/items": {
                "get": {
                    "parameters": [
                        {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                        {"name": "tags", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["red", "blue"]}}},
                        {"name": "active", "in": "query", "schema": {"type": "boolean"}},
                        {"name": "X-Request-Id", "in": "header", "required": true, "schema": {"type": "string", "format": "uuid"}}
                    ],
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}},
                        "400": {"description": "bad", "content": {"application/json": {"example": {"message": "bad request"}}}}
                    }
                },
                "post": {
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
                    "responses": {
                        "201": {"description": "created", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Item"},
                            "examples": {
                                "small": {"value": {"id": "6a2f41a3-c54c-4fbd-8a0e-0b5c2a1b0c11", "name": "pen"}},
                                "big": {"value": {"id": "6a2f41a3-c54c-4fbd-8a0e-0b5c2a1b0c12", "name": "desk"}}
                            }
                        }}},
                        "422": {"description": "unprocessable"}
                    }
                }
            },
            "/items/search": {
                "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"search": true}}}}}}
            },
            "/items/{item_id}": {
                "parameters": [{"name": "item_id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                "get": {
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
                        "404": {"description": "missing", "content": {"application/json": {"example": {"message": "no such item"}}}}
                    }
                },
                "delete": {"responses": {"204": {"description": "gone"}}}
            },
            "/public": {
                "get": {"security": [{}, {"bearer": []}], "responses": {"200": {"description": "ok", "content": {"text/plain": {"example": "hello"}}}}}
            },
            "/nodes": {
                "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}
            },
            "/files/{name}.json": {
                "get": {
                    "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 5}}],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"example": {"file": true}}}}}
                }
            }
        }
    })
}

async fn mock() -> MockApi {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("codemode-mock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One file per call: tests run in parallel in this process.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = dir.join(format!("shop-{}.json", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&path, serde_json::to_vec(&spec_json()).unwrap()).unwrap();
    let spec = codemode_spec::load(path.to_str().unwrap(), &reqwest::Client::new()).await.unwrap();
    assert!(spec.problems.is_empty(), "{:?}", spec.problems);
    MockApi::new(Arc::new(spec))
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
    fn error_messages(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e["message"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
}

const AUTH: (&str, &str) = ("authorization", "Bearer test-token");
const REQUEST_ID: (&str, &str) = ("x-request-id", "0d4f1c33-4b5e-4a27-9a0c-2f6f0c1e9d10");

fn call(
    mock: &MockApi,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Body,
    headers: &[(&str, &str)],
) -> Answer {
    let req = ApiRequest {
        method: method.into(),
        path: path.into(),
        query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        headers: vec![],
        body,
    };
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    let r = mock.respond(&req, &map);
    let body = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()))
    };
    Answer { status: r.status, headers: r.headers, body }
}

fn get(mock: &MockApi, path: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
    call(mock, "GET", path, query, Body::None, headers)
}

fn valid_against(mock: &MockApi, method: &str, template: &str, status: u16, body: &Value) {
    let (_, schema) = mock.response_schema(method, template, status).expect("schema");
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = v.iter_errors(body).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {template}: {body} is invalid: {errors:?}");
}

#[tokio::test]
async fn routes_literals_before_parameters_and_strips_the_base_path() {
    let m = mock().await;
    assert_eq!(m.base_path(), "/v2");
    let a = get(&m, "/items/search", &[], &[AUTH]);
    assert_eq!((a.status, &a.body), (200, &json!({"search": true})));
    let a = get(&m, "/v2/items/search", &[], &[AUTH]);
    assert_eq!((a.status, &a.body), (200, &json!({"search": true})));
    let a = get(&m, "/items/7", &[], &[AUTH]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header(MOCK_HEADER), Some("true"));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let a = get(&m, "/files/abc.json", &[], &[AUTH]);
    assert_eq!((a.status, &a.body), (200, &json!({"file": true})));
    // Path parameters are validated too (after decoding).
    let a = get(&m, "/files/abcdefgh.json", &[], &[AUTH]);
    assert_eq!(a.status, 400);
    assert!(a.error_messages()[0].starts_with("path.name: "), "{:?}", a.body);
    let a = call(&m, "DELETE", "/items/7", &[], Body::None, &[AUTH]);
    assert_eq!((a.status, &a.body), (204, &Value::Null));
}

#[tokio::test]
async fn unknown_paths_and_methods_say_what_exists() {
    let m = mock().await;
    let a = get(&m, "/item/7", &[], &[AUTH]);
    assert_eq!(a.status, 404);
    assert!(a.message().contains("GET /items/{item_id}"), "{}", a.message());
    assert_eq!(a.header(MOCK_HEADER), Some("true"));
    let a = call(&m, "PUT", "/items/7", &[], Body::Json(json!({}), None), &[AUTH]);
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("GET, DELETE"));
    assert!(a.message().contains("GET, DELETE"), "{}", a.message());
    // HEAD is answered like GET, without a body.
    let a = call(&m, "HEAD", "/items/7", &[], Body::None, &[AUTH]);
    assert_eq!((a.status, &a.body), (200, &Value::Null));
}

#[tokio::test]
async fn security_needs_some_credential_unless_optional() {
    let m = mock().await;
    let a = get(&m, "/items/7", &[], &[]);
    assert_eq!(a.status, 401);
    assert!(a.message().contains("bearer (`Authorization: Bearer …`)"), "{}", a.message());
    assert!(a.message().contains("X-Api-Key"), "{}", a.message());
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    assert_eq!(get(&m, "/items/7", &[], &[("x-api-key", "k")]).status, 200);
    let a = get(&m, "/public", &[], &[]);
    assert_eq!((a.status, &a.body), (200, &json!("hello")));
    assert_eq!(a.header("content-type"), Some("text/plain"));
}

#[tokio::test]
async fn parameters_are_coerced_and_validated() {
    let m = mock().await;
    let ok = get(
        &m,
        "/items",
        &[("per_page", "50"), ("tags", "red"), ("tags", "blue"), ("active", "true")],
        &[AUTH, REQUEST_ID],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(get(&m, "/items", &[("tags", "red,blue")], &[AUTH, REQUEST_ID]).status, 200);

    let a = get(&m, "/items", &[("per_page", "500")], &[AUTH, REQUEST_ID]);
    assert_eq!(a.status, 400);
    assert_eq!(a.error_messages(), vec!["query.per_page: 500 is greater than the maximum of 50"]);
    assert!(a.message().contains("query.per_page: 500 is greater than the maximum of 50"), "{}", a.message());

    let a = get(&m, "/items", &[("per_page", "ten"), ("tags", "red,green"), ("active", "yes")], &[AUTH]);
    assert_eq!(a.status, 400);
    let errors = a.error_messages();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors.contains(&"header.X-Request-Id: the required header parameter `X-Request-Id` is missing".to_string())
    );
    assert!(errors.iter().any(|e| e.starts_with("query.per_page: \"ten\" is not of type \"integer\"")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("query.tags[1]: \"green\" is not one of")), "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("query.active: \"yes\" is not of type \"boolean\"")), "{errors:?}");
    assert!(a.message().ends_with("(and 3 more problems)"), "{}", a.message());

    // Formats are checked in headers too.
    let a = get(&m, "/items", &[], &[AUTH, ("x-request-id", "not-a-uuid")]);
    assert_eq!(a.status, 400);
    assert!(a.error_messages()[0].contains("is not a \"uuid\""), "{:?}", a.error_messages());

    let a = get(&m, "/items/0", &[], &[AUTH]);
    assert_eq!(a.status, 400);
    assert_eq!(a.error_messages(), vec!["path.item_id: 0 is less than the minimum of 1"]);
}

#[tokio::test]
async fn bodies_are_validated_with_openapi_30_semantics() {
    let m = mock().await;
    let post = |body: Value| call(&m, "POST", "/items", &[], Body::Json(body, None), &[AUTH]);
    // `id` is required but read-only: not required in a request. `note` is nullable.
    let a = post(json!({"name": "pen", "price": 2.5, "note": null, "kind": "small", "code": "ABC-1234"}));
    assert_eq!(a.status, 201, "{}", a.body);
    // OpenAPI 3.0 boolean exclusiveMinimum, enum, pattern, format, length, required.
    let a = post(json!({"name": "", "price": 0, "kind": "huge", "code": "abc", "contact": "nobody"}));
    assert_eq!(a.status, 400);
    let errors = a.error_messages();
    assert_eq!(errors.len(), 5, "{errors:?}");
    for prefix in [
        "body.name: ",
        "body.price: 0 is less than or equal to the minimum of 0",
        "body.kind: ",
        "body.code: ",
        "body.contact: ",
    ] {
        assert!(errors.iter().any(|e| e.starts_with(prefix)), "{prefix} in {errors:?}");
    }
    let a = post(json!({"price": 1}));
    assert_eq!(a.error_messages(), vec!["body: \"name\" is a required property"]);
    let a = call(&m, "POST", "/items", &[], Body::None, &[AUTH]);
    assert_eq!(a.status, 400);
    assert_eq!(a.error_messages(), vec!["body: a request body is required (application/json)"]);
    let a = call(&m, "POST", "/items", &[], Body::Raw("x".into(), "text/csv".into()), &[AUTH]);
    assert_eq!(a.status, 415, "{}", a.body);
}

#[tokio::test]
async fn prefer_picks_documented_responses_and_examples() {
    let m = mock().await;
    let body = || Body::Json(json!({"name": "pen"}), None);
    // Without Prefer: the first named example.
    let a = call(&m, "POST", "/items", &[], body(), &[AUTH]);
    assert_eq!((a.status, a.body["name"].as_str()), (201, Some("pen")));
    let a = call(&m, "POST", "/items", &[], body(), &[AUTH, ("prefer", "example=big")]);
    assert_eq!((a.status, a.body["name"].as_str()), (201, Some("desk")));
    let a = call(&m, "POST", "/items", &[], body(), &[AUTH, ("prefer", "code=201, example=small")]);
    assert_eq!((a.status, a.body["name"].as_str()), (201, Some("pen")));
    let a = call(&m, "POST", "/items", &[], body(), &[AUTH, ("prefer", "example=nope")]);
    assert_eq!(a.status, 500);
    assert!(a.message().contains("its examples are small, big"), "{}", a.message());
    let a = call(&m, "POST", "/items", &[], body(), &[AUTH, ("prefer", "code=422")]);
    assert_eq!((a.status, &a.body), (422, &Value::Null));

    let a = get(&m, "/items/7", &[], &[AUTH, ("prefer", "code=404")]);
    assert_eq!((a.status, &a.body), (404, &json!({"message": "no such item"})));
    let a = get(&m, "/items/7", &[], &[AUTH, ("prefer", "code=418")]);
    assert_eq!(a.status, 500);
    assert!(a.message().contains("documents 200, 404"), "{}", a.message());
    // Validation still comes first.
    assert_eq!(get(&m, "/items/0", &[], &[AUTH, ("prefer", "code=404")]).status, 400);
}

#[tokio::test]
async fn synthesised_bodies_are_valid_deterministic_and_small() {
    let m = mock().await;
    let a = get(&m, "/items", &[("per_page", "5")], &[AUTH, REQUEST_ID]);
    let b = get(&m, "/items", &[("per_page", "5")], &[AUTH, REQUEST_ID]);
    assert_eq!(a.body, b.body, "same request, same answer");
    let items = a.body.as_array().expect("array");
    assert!((1..=2).contains(&items.len()));
    valid_against(&m, "GET", "/items", 200, &a.body);
    // Read-only properties are returned, write-only ones are not.
    assert!(items[0].get("id").is_some() && items[0].get("secret").is_none(), "{}", a.body);
    let code = items[0]["code"].as_str().unwrap();
    assert!(regex::Regex::new("^[A-Z]{3}-[0-9]{4}$").unwrap().is_match(code), "{code}");

    let mut seen = std::collections::HashSet::new();
    for i in 1..20 {
        let path = format!("/items/{i}");
        let a = get(&m, &path, &[], &[AUTH]);
        valid_against(&m, "GET", "/items/{item_id}", 200, &a.body);
        seen.insert(a.body.to_string());
    }
    assert!(seen.len() > 10, "different requests get different values");

    // A recursive schema: the recursion stops, the body is still valid.
    let a = get(&m, "/nodes", &[], &[AUTH]);
    valid_against(&m, "GET", "/nodes", 200, &a.body);
    assert!(a.body["name"].is_string());
}

#[tokio::test]
async fn sample_requests_are_accepted() {
    let m = mock().await;
    let ops: Vec<(String, String)> = m.operations().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(ops.len(), 8);
    for (method, template) in ops {
        let mut req = m.sample_request(&method, &template, 7).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer x"));
        for (k, v) in std::mem::take(&mut req.headers) {
            headers.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(&v).unwrap());
        }
        let r = m.respond(&req, &headers);
        assert_eq!(
            Some(r.status),
            m.success_status(&method, &template),
            "{method} {template}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

#[tokio::test]
async fn through_the_upstream_errors_carry_the_mock_message() {
    let m = Arc::new(mock().await);
    let mut config = codemode_upstream::UpstreamConfig::new("shop", "https://api.example.com/v2".parse().unwrap());
    config.auth = codemode_upstream::Auth::Bearer {
        token: codemode_upstream::Secret::new("tok-123456".into()),
        source: "$T".into(),
    };
    let up = codemode_upstream::Upstream::new(config).unwrap().with_responder(m);
    let err = up
        .request(&json!([{"path": "/items", "query": {"per_page": 500}, "headers": {"X-Request-Id": REQUEST_ID.1}}]))
        .await
        .unwrap_err();
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("query.per_page: 500 is greater than the maximum of 50"), "{message}");
    assert_eq!(err["status"], 400);
    let err = up.request(&json!([{"path": "/itemz/3"}])).await.unwrap_err();
    let message = err["message"].as_str().unwrap();
    println!("404 through the upstream: {message}");
    assert!(message.contains("GET /items/{item_id}"), "{message}");
    assert_eq!(err["status"], 404);
    let ok = up.request(&json!(["GET /items/{item_id}", {"item_id": 3}])).await.unwrap();
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["headers"][MOCK_HEADER], "true");
    assert!(ok["data"]["name"].is_string(), "{ok}");

    // No credential configured: 401, and the upstream says how to fix it.
    let anonymous = codemode_upstream::Upstream::new(codemode_upstream::UpstreamConfig::new(
        "shop",
        "https://api.example.com/v2".parse().unwrap(),
    ))
    .unwrap()
    .with_responder(Arc::new(mock().await));
    let err = anonymous.request(&json!([{"path": "/items/3"}])).await.unwrap_err();
    let message = err["message"].as_str().unwrap();
    println!("401 through the upstream: {message}");
    assert_eq!(err["status"], 401);
    assert!(message.contains("requires authentication"), "{message}");
}
