//! A minimal MCP client built on codemode-portal, for the official
//! conformance suite's client mode:
//!
//! ```text
//! node …/@modelcontextprotocol/conformance/dist/index.js client \
//!     --command "target/release/examples/conformance_client" --scenario tools_call
//! ```
//!
//! The suite starts a test server and appends its Streamable HTTP URL to
//! the command. This connects a one-server portal to it, lists the tools,
//! calls each one with arguments made up from its input schema (numbers 1,
//! 2, …; strings "x"; booleans true), prints what came back, and shuts down.
//! Exit code 1 if the server never became ready.

use std::process::ExitCode;
use std::time::Duration;

use codemode_portal::{Portal, ServerConfig, ServerState};
use serde_json::{json, Map, Value};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: conformance_client <server-url>");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    eprintln!("conformance_client: scenario `{scenario}`, server {url}");
    let portal = match Portal::start(vec![ServerConfig::http("test", &url)], Duration::from_secs(20)).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("config error: {e}");
            return ExitCode::from(2);
        }
    };
    let status = &portal.status()[0];
    if status.state != ServerState::Ready {
        eprintln!("server not ready: {:?}", status.state);
        portal.shutdown().await;
        return ExitCode::from(1);
    }
    let tools = portal.tools();
    eprintln!("{} tool(s): {}", tools.len(), tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "));
    for t in &tools {
        let args = sample(&t.input_schema);
        match portal.call(&t.name, args.clone()).await {
            Ok(v) => eprintln!("{}({args}) → {v}", t.name),
            Err(e) => eprintln!("{}({args}) threw {e}", t.name),
        }
    }
    portal.shutdown().await;
    ExitCode::SUCCESS
}

/// Arguments for the required properties of an object schema.
fn sample(schema: &Value) -> Value {
    let mut args = Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, name) in required.iter().filter_map(Value::as_str).enumerate() {
        let s = props.and_then(|p| p.get(name)).cloned().unwrap_or(Value::Null);
        let v = if let Some(Value::Array(e)) = s.get("enum") {
            e.first().cloned().unwrap_or(Value::Null)
        } else {
            match s.get("type").and_then(Value::as_str) {
                Some("number" | "integer") => json!(i + 1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!("x"),
            }
        };
        args.insert(name.to_string(), v);
    }
    Value::Object(args)
}
