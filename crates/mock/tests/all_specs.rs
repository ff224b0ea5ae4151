//! Every spec in shared/specs can be mocked: each operation (all of them, in
//! every spec), called with a request built from its own schemas (path
//! parameters, required query and header parameters, a body when one is
//! required) and a bearer credential, answers its documented success status,
//! and the JSON body validates against that response's schema.
//!
//! A body that does not validate fails the test unless the spec itself is
//! at fault, in one of three ways the test recognises and reports (with
//! counts per spec and a few examples):
//! - **The spec's own example is invalid.** The mock answers with the
//!   documented example when there is one, as it should; GitHub's examples
//!   often omit required properties or are `null` for an object, Twilio's
//!   give relative paths for `format: uri`, a few of Cloudflare's use `""`
//!   where the enum says `"edge"` or `null`.
//! - **`oneOf` branches overlap.** The body matches several branches (e.g.
//!   Cloudflare's bot-management settings: four branches whose properties
//!   are all optional, so any object matches them all); it is valid when
//!   `oneOf` is read as `anyOf`. The synthesiser does try other branches
//!   first (see `synth.rs`).
//! - **The schema contradicts itself.** Cloudflare's shared response envelope
//!   says `result` is an object (or object/string) while the operation's own
//!   `allOf` member says array, integer or `null`; an `enum` whose members
//!   all break the schema's `format: hostname`. Recognised by `contradictory`
//!   below, which proves no value fits at that place rather than trusting a
//!   list.
//!
//! Run with `MOCK_SPECS=stripe` to test one spec, `MOCK_DEBUG=1` to see every
//! failing keyword, `MOCK_EXAMPLES=1` to list every invalid example.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use codemode_mock::MockApi;
use codemode_spec::{Graph, NodeId};
use codemode_upstream::{Body, Responder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

fn specs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs")
}

/// Operations per spec: all of them for specs up to this size, otherwise a
/// deterministic sample of this many (every k-th operation).
const SAMPLE: usize = 100_000;

#[derive(Default, Debug)]
struct Counts {
    operations: usize,
    called: usize,
    success: usize,
    with_schema: usize,
    valid: usize,
    invalid_example: Vec<String>,
    one_of_overlap: Vec<String>,
    contradictory: Vec<String>,
    invalid_synthesised: Vec<String>,
    wrong_status: Vec<String>,
}

/// The documented example the mock would answer with, if any (media
/// `example`, or the first `examples` entry with a value).
fn documented_example(g: &Graph, op: NodeId, status: u16, media: &str) -> bool {
    let Some(m) = g
        .get(op, "responses")
        .and_then(|r| {
            g.get(r, &status.to_string())
                .or_else(|| g.get(r, &format!("{}XX", status / 100)))
                .or_else(|| g.get(r, "default"))
        })
        .and_then(|r| g.get(r, "content"))
        .and_then(|c| g.get(c, media))
    else {
        return false;
    };
    g.get(m, "example").is_some() || g.get(m, "examples").is_some()
}

fn operation_node(g: &Graph, method: &str, template: &str) -> Option<NodeId> {
    let paths = g.get(g.root(), "paths")?;
    let item = g.get(paths, template)?;
    g.get(item, &method.to_ascii_lowercase())
}

fn exercise(mock: &MockApi) -> Counts {
    let g = &mock.spec().graph;
    let ops: Vec<(String, String)> = mock.operations().map(|(m, t)| (m.to_string(), t.to_string())).collect();
    let step = ops.len().div_ceil(SAMPLE).max(1);
    let mut c = Counts { operations: ops.len(), ..Counts::default() };
    let options = jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true);
    for (i, (method, template)) in ops.iter().enumerate().step_by(step) {
        c.called += 1;
        let label = format!("{method} {template}");
        let mut req = mock.sample_request(method, template, i as u64).expect("known operation");
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer test-token"));
        for (k, v) in std::mem::take(&mut req.headers) {
            headers.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(&v).unwrap());
        }
        match &req.body {
            Body::Json(_, ct) => {
                let ct = ct.clone().unwrap_or_else(|| "application/json".into());
                headers.insert("content-type", HeaderValue::from_str(&ct).unwrap());
            }
            Body::None => {}
            other => {
                let ct = other.content_type().unwrap();
                headers.insert("content-type", HeaderValue::from_str(&ct).unwrap());
            }
        }
        let r = mock.respond(&req, &headers);
        let expected = mock.success_status(method, template).unwrap();
        if r.status != expected {
            c.wrong_status.push(format!(
                "{label}: {} instead of {expected}: {}",
                r.status,
                String::from_utf8_lossy(&r.body).chars().take(400).collect::<String>()
            ));
            continue;
        }
        c.success += 1;
        let Some((media, schema)) = mock.response_schema(method, template, r.status) else { continue };
        let content_type = r.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()).unwrap_or("");
        if r.body.is_empty() || !content_type.contains("json") {
            continue;
        }
        c.with_schema += 1;
        let body: Value = match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(e) => {
                c.invalid_synthesised.push(format!("{label}: body is not JSON: {e}"));
                continue;
            }
        };
        let validator = match options.build(&schema) {
            Ok(v) => v,
            Err(e) => {
                c.invalid_synthesised.push(format!("{label}: response schema does not compile: {e}"));
                continue;
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(3)
            .map(|e| format!("{}: {}", e.instance_path(), truncate(&e.to_string())))
            .collect();
        if errors.is_empty() {
            c.valid += 1;
            continue;
        }
        let op = operation_node(g, method, template).expect("operation");
        let relaxed = options.build(&one_of_as_any_of(schema.clone())).expect("relaxed schema compiles");
        let mut line = format!("{label} ({media}): {}", errors.join("; "));
        // MOCK_DEBUG=1: every failing keyword, deepest first, not just the summary.
        if std::env::var("MOCK_DEBUG").is_ok() {
            let evaluation = validator.evaluate(&body);
            let mut deep: Vec<String> = evaluation
                .iter_errors()
                .map(|e| {
                    format!("\n    {} @ {}: {}", e.instance_location, e.schema_location, truncate(&e.error.to_string()))
                })
                .collect();
            deep.sort_by_key(|l| std::cmp::Reverse(l.len()));
            line.extend(deep.into_iter().take(12));
        }
        if documented_example(g, op, r.status, &media) {
            c.invalid_example.push(line);
        } else if relaxed.is_valid(&body) {
            c.one_of_overlap.push(line);
        } else if contradictory(&relaxed, &body) {
            c.contradictory.push(line);
        } else {
            c.invalid_synthesised.push(line);
        }
    }
    c
}

/// True when every place the body fails is a place no value can satisfy:
/// the spec's schema contradicts itself there (an `allOf` whose members
/// declare different types, an `enum` whose members all break its own
/// `format`). Checked by putting, at each failing location, one value of
/// every JSON type, the mock's own value, and every member of any `enum`
/// that rejected one of those: each must be rejected by a constraint that no
/// other value of its JSON type could satisfy (`type`, `enum`, `const`, or,
/// for the closed set of `enum` members, any constraint), directly or in
/// every branch of an `anyOf`/`oneOf`. A missing `required` property or a bad
/// `format` on an arbitrary string does not count: a fitting value exists
/// there and the mock should have produced it.
fn contradictory(validator: &jsonschema::Validator, body: &Value) -> bool {
    use jsonschema::error::ValidationErrorKind as K;
    fn rejects(e: &jsonschema::ValidationError<'_>, at: &str, closed: bool) -> bool {
        if e.instance_path().to_string() != at {
            return false;
        }
        match e.kind() {
            K::Type { .. } | K::Enum { .. } | K::Constant { .. } | K::FalseSchema => true,
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                !context.is_empty() && context.iter().all(|branch| branch.iter().any(|e| rejects(e, at, closed)))
            }
            K::Format { .. } | K::Pattern { .. } | K::MinLength { .. } | K::MaxLength { .. } => closed,
            _ => false,
        }
    }
    fn enum_options(e: &jsonschema::ValidationError<'_>, out: &mut Vec<Value>) {
        match e.kind() {
            K::Enum { options } => out.extend(options.as_array().into_iter().flatten().cloned()),
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                context.iter().flatten().for_each(|e| enum_options(e, out))
            }
            _ => {}
        }
    }
    let locations: Vec<String> = validator.iter_errors(body).map(|e| e.instance_path().to_string()).collect();
    if locations.is_empty() {
        return false;
    }
    locations.iter().all(|at| {
        let original = body.pointer(at).cloned().unwrap_or(Value::Null);
        let open =
            vec![json!(null), json!(true), json!(0), json!(0.5), json!(""), json!("x"), json!([]), json!({}), original];
        let mut closed: Vec<Value> = Vec::new();
        let probe = |candidate: &Value, is_closed: bool, options: &mut Vec<Value>| -> bool {
            let mut b = body.clone();
            match b.pointer_mut(at) {
                Some(slot) => *slot = candidate.clone(),
                None => return false,
            }
            let errors: Vec<_> = validator.iter_errors(&b).collect();
            errors.iter().for_each(|e| enum_options(e, options));
            !errors.is_empty() && errors.iter().any(|e| rejects(e, at, is_closed))
        };
        let mut passed = Vec::new();
        for c in open {
            if !probe(&c, false, &mut closed) {
                passed.push(c);
            }
        }
        // A value not rejected outright is fine only if it is an `enum`
        // member, tried below with every constraint counting.
        if passed.iter().any(|c| !closed.contains(c)) {
            return false;
        }
        let mut ignored = Vec::new();
        closed.iter().all(|c| probe(c, true, &mut ignored))
    })
}

/// The schema with every `oneOf` read as `anyOf`.
fn one_of_as_any_of(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            let mut extra = None;
            for (k, v) in m {
                let v = one_of_as_any_of(v);
                if k == "oneOf" {
                    extra = Some(v);
                } else {
                    out.insert(k, v);
                }
            }
            if let Some(list) = extra {
                if out.contains_key("anyOf") {
                    let all = out.entry("allOf").or_insert_with(|| Value::Array(vec![]));
                    all.as_array_mut().unwrap().push(serde_json::json!({ "anyOf": list }));
                } else {
                    out.insert("anyOf".into(), list);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(one_of_as_any_of).collect()),
        other => other,
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

#[test]
fn every_spec_can_be_mocked() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = specs_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "yaml"))
        .collect();
    files.sort();
    // MOCK_SPECS=stripe runs only the specs whose file name contains it.
    if let Ok(only) = std::env::var("MOCK_SPECS") {
        files.retain(|f| f.to_string_lossy().contains(&only));
    }
    assert!(!files.is_empty(), "expected the shared specs in {}", dir.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut failures = Vec::new();
    let mut total_valid = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let spec = rt.block_on(codemode_spec::load(file.to_str().unwrap(), &reqwest::Client::new())).unwrap();
        let started = Instant::now();
        let mock = Arc::new(MockApi::new(Arc::new(spec)));
        let prepared = started.elapsed();
        let m = mock.clone();
        // On a thread with tokio's default worker stack (2 MiB): the mock
        // answers on the runtime's threads, so it must fit there, checks
        // included.
        let counts = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || exercise(&m))
            .unwrap()
            .join()
            .unwrap();
        println!(
            "{name}: {} operations, prepared in {prepared:.1?}, {} called in {:.1?}: {} answered the documented success status, {}/{} JSON bodies valid against their schema ({} documented examples invalid, {} match several branches of a spec oneOf whose branches overlap, {} where the spec's schema contradicts itself, {} synthesised bodies invalid)",
            counts.operations,
            counts.called,
            started.elapsed(),
            counts.success,
            counts.valid,
            counts.with_schema,
            counts.invalid_example.len(),
            counts.one_of_overlap.len(),
            counts.contradictory.len(),
            counts.invalid_synthesised.len(),
        );
        // MOCK_EXAMPLES=1 lists every invalid documented example.
        let shown = if std::env::var("MOCK_EXAMPLES").is_ok() { usize::MAX } else { 3 };
        for line in counts.invalid_example.iter().take(shown) {
            println!("  spec example invalid: {}", truncate(line));
        }
        for line in counts.one_of_overlap.iter().take(3) {
            println!("  oneOf overlap: {}", truncate(line));
        }
        for line in counts.contradictory.iter().take(3) {
            println!("  contradictory schema: {}", truncate(line));
        }
        total_valid += counts.valid;
        for line in &counts.wrong_status {
            failures.push(format!("{name}: {line}"));
        }
        for line in &counts.invalid_synthesised {
            failures.push(format!("{name}: synthesised body invalid: {line}"));
        }
    }
    for f in failures.iter().take(100) {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} failures (first 100 printed above)", failures.len());
    if std::env::var("MOCK_SPECS").is_err() {
        assert!(total_valid > 3_500, "only {total_valid} bodies were checked and valid");
    }
}
