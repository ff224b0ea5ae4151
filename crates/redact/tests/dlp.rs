//! The DLP layer in a pipeline: what a rule covers is refused before the
//! route sees it; everything else reaches the route untouched.

use std::sync::{Arc, Mutex};

use codemode_pipeline::*;
use codemode_redact::{DlpLayer, DlpRule};
use serde_json::{json, Value};

/// Records every call that gets through, with what it would have sent.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Value)>>);

impl Route for Recorder {
    fn send<'a>(&'a self, call: Call) -> BoxReply<'a> {
        let sent = match &call.op {
            Operation::Http(h) => match &h.request.body {
                codemode_upstream::Body::Json(v, _) => v.clone(),
                _ => Value::Null,
            },
            Operation::Tool(t) => t.arguments.clone(),
            Operation::Graphql(g) => g.checked.body.clone(),
        };
        self.0.lock().unwrap().push((call.describe(), sent));
        Box::pin(async { Ok(json!({"status": 200})) })
    }
}

fn rules(toml_text: &str) -> Vec<DlpRule> {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    table["dlp"].clone().try_into().unwrap()
}

fn pipeline(toml_text: &str) -> (Pipeline, Arc<Recorder>) {
    let layer = DlpLayer::new(&rules(toml_text)).unwrap();
    let rec = Arc::new(Recorder::default());
    let layers: Vec<Arc<dyn Layer>> = vec![Arc::new(ScopeLayer), Arc::new(layer)];
    (Pipeline::new(layers, rec.clone()), rec)
}

fn http(api: &str, args: Value) -> Call {
    let request = codemode_upstream::request::parse(&args).unwrap();
    let access = Access::of_method(&request.method);
    let op = HttpOp { api: api.into(), request, template: None, operation_id: None, tags: vec![] };
    Call::new(Operation::Http(op), access, Arc::new(Execution::new(None)))
}

fn tool(server: &str, name: &str, arguments: Value) -> Call {
    let op = ToolOp { server: server.into(), tool: name.into(), name: format!("{server}_{name}"), arguments };
    Call::new(Operation::Tool(op), Access::Write, Arc::new(Execution::new(None)))
}

const CRM_CARDS: &str = r#"
[[dlp]]
id = "no-cards-to-crm"
detectors = ["card"]
apis = ["crm"]
action = "block"
"#;

#[tokio::test]
async fn a_card_in_a_body_is_blocked_for_the_named_api_and_allowed_to_another() {
    let (p, rec) = pipeline(CRM_CARDS);
    let body = json!({"customer": {"name": "Jane", "card": "4111 1111 1111 1111"}});
    let call = http("crm", json!([{"method": "POST", "path": "/contacts", "body": body}]));
    let notes = call.notes.clone();
    let e = p.run(call).await.unwrap_err();
    assert_eq!(e.name, "DlpError");
    assert!(e.message.contains("`no-cards-to-crm`") && e.message.contains("`card`"), "{}", e.message);
    assert!(e.message.contains("Nothing was sent") && e.message.contains("last four digits"), "{}", e.message);
    assert!(!e.message.contains("4111") && !e.to_json().to_string().contains("4111"), "the data leaked: {e:?}");
    assert_eq!(
        e.to_json(),
        json!({
            "name": "DlpError", "message": e.message,
            "api": "crm", "method": "POST", "path": "/contacts",
            "rule": "no-cards-to-crm", "detector": "card", "location": "the body at /customer/card",
            "retryable": false,
        })
    );
    assert_eq!(notes.lock().unwrap()["dlp"], json!({"rule": "no-cards-to-crm", "detector": "card"}));
    assert!(rec.0.lock().unwrap().is_empty(), "a blocked call reached the route");

    // The same body to another API passes, unchanged.
    let call = http("billing", json!([{"method": "POST", "path": "/charges", "body": body}]));
    let notes = call.notes.clone();
    p.run(call).await.unwrap();
    assert_eq!(*rec.0.lock().unwrap(), vec![("billing POST /charges".to_string(), body.clone())]);
    assert!(!notes.lock().unwrap().contains_key("dlp"));

    // And a clean body to the named API passes too.
    let clean = json!({"customer": {"name": "Jane", "card_last4": "1111", "phone": "+1 555 123 4567"}});
    p.run(http("crm", json!([{"method": "POST", "path": "/contacts", "body": clean}]))).await.unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn numbers_paths_queries_and_headers_are_checked() {
    let (p, rec) = pipeline(CRM_CARDS);
    let cases = [
        (json!([{"method": "POST", "path": "/pay", "body": {"n": 4111111111111111u64}}]), "the body at /n"),
        (
            json!([{"method": "POST", "path": "/pay", "body": [{"x": 1}, {"cards": ["5555555555554444"]}]}]),
            "the body at /1/cards/0",
        ),
        (json!([{"method": "POST", "path": "/pay", "body": {"4111111111111111": true}}]), "a key of the body"),
        (json!([{"method": "GET", "path": "/cards/4111111111111111"}]), "the path"),
        (json!([{"method": "GET", "path": "/cards/4111%201111%201111%201111"}]), "the path"),
        (
            json!([{"method": "GET", "path": "/search", "query": {"q": "4111-1111-1111-1111"}}]),
            "the query parameter `q`",
        ),
        (
            json!([{"method": "GET", "path": "/search", "headers": {"x-note": "card 4111111111111111"}}]),
            "the header `x-note`",
        ),
        (
            json!([{"method": "POST", "path": "/f", "rawBody": "card=4111+1111+1111+1111", "contentType": "application/x-www-form-urlencoded"}]),
            "the body",
        ),
        // Forms: text fields and text files are scanned; bytes that are text too.
        (
            json!([{"method": "POST", "path": "/f", "form": {"a": "x", "card": "4111 1111 1111 1111"}}]),
            "the form field `card`",
        ),
        (
            json!([{"method": "POST", "path": "/f", "form": {"f": {"filename": "c.txt", "data": "pay 4111111111111111"}}}]),
            "the form field `f`",
        ),
        // base64 of "card 4111111111111111"
        (json!([{"method": "POST", "path": "/f", "rawBody": {"$bytes": "Y2FyZCA0MTExMTExMTExMTExMTEx"}}]), "the body"),
    ];
    for (args, location) in cases {
        let e = p.run(http("crm", args.clone())).await.unwrap_err();
        assert_eq!((e.name.as_str(), e.fields["location"].as_str().unwrap()), ("DlpError", location), "{args}");
        assert!(
            !e.to_json().to_string().contains("4111 1111") && !e.to_json().to_string().contains("4111111111111111"),
            "{e:?}"
        );
    }
    // The path in the error's fields has the card replaced.
    let e = p.run(http("crm", json!([{"method": "GET", "path": "/cards/4111111111111111/x"}]))).await.unwrap_err();
    assert_eq!(e.fields["path"], "/cards/[redacted:card]/x");
    assert!(rec.0.lock().unwrap().is_empty());
    // Numbers that fail Luhn, or are too short, are not cards.
    p.run(http("crm", json!([{"method": "POST", "path": "/pay", "body": {"n": 4111111111111112u64, "id": 42}}])))
        .await
        .unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn tool_arguments_and_rules_for_any_target() {
    let (p, rec) = pipeline(
        r#"
        [[dlp]]
        id = "no-secrets-anywhere"
        detectors = ["aws_key", "github_token", "slack_token", "stripe_key", "jwt", "pem_private_key", "gcp_key"]

        [[dlp]]
        id = "no-employee-ids-to-fs"
        pattern = "EMP-[0-9]{6}"
        apis = ["fs"]
        "#,
    );
    let token = concat!("ghp", "_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
    let e = p
        .run(tool("fs", "write_file", json!({"path": "/tmp/x", "content": format!("GITHUB_TOKEN={token}")})))
        .await
        .unwrap_err();
    assert_eq!(e.fields["rule"], "no-secrets-anywhere");
    assert_eq!(e.fields["detector"], "github_token");
    assert_eq!((e.fields["server"].as_str(), e.fields["tool"].as_str()), (Some("fs"), Some("fs_write_file")));
    assert_eq!(e.fields["location"], "the arguments at /content");
    assert!(e.message.contains("the host adds the API's own credential"), "{}", e.message);
    assert!(!e.message.contains(token));

    let e = p.run(tool("fs", "write_file", json!({"content": "for EMP-123456"}))).await.unwrap_err();
    assert_eq!(
        (e.fields["rule"].as_str(), e.fields["detector"].as_str()),
        (Some("no-employee-ids-to-fs"), Some("pattern"))
    );
    // The pattern rule covers only `fs`; the secrets rule covers every target.
    p.run(tool("notes", "add", json!({"content": "for EMP-123456"}))).await.unwrap();
    let e = p.run(http("crm", json!([{"method": "POST", "path": "/x", "body": {"t": token}}]))).await.unwrap_err();
    assert_eq!(e.fields["api"], "crm");
    assert_eq!(rec.0.lock().unwrap().len(), 1);
}

#[test]
fn config_problems_are_reported_at_their_keys() {
    let bad = rules(
        r#"
        [[dlp]]
        id = "a"
        detectors = ["card", "passport"]

        [[dlp]]
        id = "a"
        pattern = "[unclosed"

        [[dlp]]
        id = "bad id"

        [[dlp]]
        id = "c"
        detectors = ["all"]
        apis = []
        "#,
    );
    let problems = DlpLayer::new(&bad).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["dlp[0].detectors[1]", "dlp[1].id", "dlp[1].pattern", "dlp[2].id", "dlp[2]", "dlp[3].apis"]);
    assert!(
        problems[0].1.contains("`passport` is not a detector; the detectors are: all, email, card"),
        "{}",
        problems[0].1
    );
    // Unknown fields and actions are refused when the config is read.
    let e = toml::from_str::<DlpRule>("id = \"x\"\ndetectors = [\"card\"]\napi = [\"crm\"]\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `api`"), "{e}");
    let e = toml::from_str::<DlpRule>("id = \"x\"\ndetectors = [\"card\"]\naction = \"warn\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown variant `warn`"), "{e}");
    // Both tables at once.
    let problems = codemode_redact::compile(
        &[codemode_redact::RedactRule { detectors: vec!["nope".into()], ..Default::default() }],
        &bad,
    )
    .unwrap_err();
    assert_eq!(problems.len(), 7);
    assert_eq!(problems[0].0, "redact[0].detectors[0]");
}

#[tokio::test]
async fn no_rules_means_no_change() {
    let layer = DlpLayer::new(&[]).unwrap();
    assert!(layer.is_empty() && !layer.applies_to("crm"));
    let rec = Arc::new(Recorder::default());
    let p = Pipeline::new(vec![Arc::new(layer)], rec.clone());
    p.run(http("crm", json!([{"method": "POST", "path": "/x", "body": {"card": "4111111111111111"}}]))).await.unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 1);
}
