//! The footprint baseline of `codemode tokens`: one MCP tool per root
//! field (queries and mutations), with a JSON Schema of its arguments — what
//! a GraphQL-to-MCP converter lists, to compare codemode's two tools with.

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::Schema;
use serde_json::{json, Map, Value};

use crate::OperationKind;

/// Input objects nest (and recurse); deeper than this is `{"type": "object"}`.
const MAX_INPUT_DEPTH: usize = 4;

fn schema_of(schema: &Schema, ty: &Type, depth: usize) -> Value {
    match ty {
        Type::List(inner) | Type::NonNullList(inner) => {
            json!({"type": "array", "items": schema_of(schema, inner, depth)})
        }
        Type::Named(n) | Type::NonNullNamed(n) => match n.as_str() {
            "String" | "ID" => json!({"type": "string"}),
            "Int" => json!({"type": "integer"}),
            "Float" => json!({"type": "number"}),
            "Boolean" => json!({"type": "boolean"}),
            other => match schema.types.get(other) {
                Some(ExtendedType::Enum(e)) => {
                    json!({"type": "string", "enum": e.values.keys().map(|k| k.as_str()).collect::<Vec<_>>()})
                }
                Some(ExtendedType::InputObject(i)) if depth < MAX_INPUT_DEPTH => {
                    let mut props = Map::new();
                    let mut required = Vec::new();
                    for (name, f) in &i.fields {
                        let mut p = schema_of(schema, &f.ty, depth + 1);
                        if let Some(d) = f.description.as_deref() {
                            p["description"] = json!(d);
                        }
                        props.insert(name.to_string(), p);
                        if f.ty.is_non_null() && f.default_value.is_none() {
                            required.push(name.as_str());
                        }
                    }
                    json!({"type": "object", "properties": props, "required": required})
                }
                Some(ExtendedType::InputObject(_)) => json!({"type": "object"}),
                _ => json!({"type": "string", "description": format!("{other} (custom scalar)")}),
            },
        },
    }
}

/// One tool per root query and mutation field: `{name, description, inputSchema}`.
pub(crate) fn root_field_tools(schema: &Schema) -> Vec<Value> {
    let mut out = Vec::new();
    for kind in [OperationKind::Query, OperationKind::Mutation] {
        let Some(root) = schema.root_operation(kind.ast()).and_then(|r| schema.get_object(r)) else { continue };
        for (name, f) in &root.fields {
            let mut props = Map::new();
            let mut required = Vec::new();
            for a in &f.arguments {
                let mut p = schema_of(schema, &a.ty, 0);
                if let Some(d) = a.description.as_deref() {
                    p["description"] = json!(d);
                }
                props.insert(a.name.to_string(), p);
                if a.ty.is_non_null() && a.default_value.is_none() {
                    required.push(a.name.as_str());
                }
            }
            out.push(json!({
                "name": format!("{}_{name}", kind.as_str()),
                "description": f.description.as_deref().unwrap_or_default(),
                "inputSchema": {"type": "object", "properties": props, "required": required},
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tool_per_root_field() {
        let tools = crate::tests::schema().root_field_tools();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            vec![
                "query_repository",
                "query_node",
                "query_search",
                "query_viewer",
                "mutation_addComment",
                "mutation_deleteRepository"
            ]
        );
        assert_eq!(tools[0]["inputSchema"]["required"], serde_json::json!(["owner", "name"]));
        assert_eq!(tools[4]["inputSchema"]["properties"]["input"]["properties"]["body"]["type"], "string");
    }
}
