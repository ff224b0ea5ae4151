//! `codemode tokens`: what our `tools/list` costs a model, next to exposing
//! one tool per operation for the same APIs.

use serde_json::Value;
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

/// One tool per operation for the API (for a GraphQL API, per root query
/// and mutation field), as per-operation mode lists them
/// ([`crate::operations`]) — but every operation, writes included: what an
/// OpenAPI-to-MCP converter would expose. Input schemas have references
/// inlined (cycles cut, at most 20,000 nodes per schema).
pub fn naive_tools(api: &LoadedApi) -> Vec<Value> {
    // A GraphQL API: one tool per root field instead.
    if let Some(g) = &api.graphql {
        return g.schema.root_field_tools();
    }
    crate::operations::OperationTools::build(std::slice::from_ref(api), crate::operations::Listing::All)
        .tools()
        .iter()
        .map(|t| serde_json::to_value(t).expect("serialises"))
        .collect()
}
