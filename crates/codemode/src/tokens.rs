//! `codemode tokens`: what our `tools/list` costs a model, next to exposing
//! one tool per operation for the same APIs.

use codemode_spec::{Graph, Node, NodeId};
use serde_json::{json, Map, Value};
use tiktoken_rs::CoreBPE;

use crate::service::LoadedApi;

/// Token counts of one `tools/list` rendering.
#[derive(Clone, Debug)]
pub struct Footprint {
    /// Number of tools.
    pub tools: usize,
    /// o200k_base tokens.
    pub o200k: usize,
    /// cl100k_base tokens.
    pub cl100k: usize,
}

/// Counts a `tools/list` result (the JSON a client receives).
pub fn footprint(tools_json: &str, tools: usize) -> Footprint {
    let o200k = tiktoken_rs::o200k_base().expect("embedded");
    let cl100k = tiktoken_rs::cl100k_base().expect("embedded");
    Footprint { tools, o200k: count(&o200k, tools_json), cl100k: count(&cl100k, tools_json) }
}

fn count(bpe: &CoreBPE, text: &str) -> usize {
    bpe.encode_ordinary(text).len()
}

/// A naive one-tool-per-operation `tools/list` for the API, the way OpenAPI
/// to MCP converters do it: name from the operationId, description from
/// summary and description, input schema from parameters and body with
/// references inlined (cycles cut, and at most 20,000 nodes per schema).
pub fn naive_tools(api: &LoadedApi) -> Vec<Value> {
    let g = &api.spec.graph;
    let mut tools = Vec::new();
    let Some(paths) = g.get(g.root(), "paths") else {
        return tools;
    };
    let Node::Object(entries) = g.node(paths) else {
        return tools;
    };
    for (path, item) in entries.iter() {
        let item = g.deref(*item);
        let path_params = g.get(item, "parameters");
        for method in codemode_spec::summary::METHODS {
            let Some(op) = g.get(item, method) else {
                continue;
            };
            let mut properties = Map::new();
            let mut required = Vec::new();
            for list in [path_params, g.get(op, "parameters")].into_iter().flatten() {
                if let Node::Array(params) = g.node(list) {
                    for p in params.iter() {
                        let p = g.deref(*p);
                        let Some(name) = g.get(p, "name").and_then(|n| g.as_str(n)) else {
                            continue;
                        };
                        let mut schema = g.get(p, "schema").map(|s| bounded(g, s)).unwrap_or(json!({}));
                        if let (Some(d), Value::Object(m)) =
                            (g.get(p, "description").and_then(|d| g.as_str(d)), &mut schema)
                        {
                            m.insert("description".into(), json!(d));
                        }
                        if matches!(g.get(p, "required").map(|r| g.node(r)), Some(Node::Bool(true))) {
                            required.push(json!(name));
                        }
                        properties.insert(name.to_string(), schema);
                    }
                }
            }
            if let Some(body) = g.get(op, "requestBody") {
                if let Some(content) = g.get(body, "content") {
                    if let Node::Object(types) = g.node(content) {
                        if let Some((_, media)) = types.first() {
                            if let Some(schema) = g.get(*media, "schema") {
                                properties.insert("body".into(), bounded(g, schema));
                            }
                        }
                    }
                }
            }
            let text = |k: &str| g.get(op, k).and_then(|v| g.as_str(v)).unwrap_or("").to_string();
            let name = match g.get(op, "operationId").and_then(|v| g.as_str(v)) {
                Some(id) => id.to_string(),
                None => format!("{method}{}", path.replace(['/', '{', '}', '-', '.'], "_")),
            };
            let summary = text("summary");
            let description = text("description");
            tools.push(json!({
                "name": name,
                "description": format!("{} {}\n{summary}\n{description}", method.to_uppercase(), path).trim().to_string(),
                "inputSchema": {"type": "object", "properties": properties, "required": required},
            }));
        }
    }
    tools
}

fn bounded(g: &Graph, id: NodeId) -> Value {
    let mut budget = 20_000;
    g.to_value_bounded(id, &mut budget)
}
