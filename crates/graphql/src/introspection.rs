//! Introspection: the query codemode sends to learn a live endpoint's
//! schema, and the conversion of its result (or a saved one) to SDL, so
//! both forms go through the same parser and validator.

use serde_json::Value;

/// The standard introspection query (descriptions, deprecations, default
/// values, seven levels of wrapping).
pub const QUERY: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}"#;

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

/// SDL text for an introspection result.
pub fn to_sdl(json: &Value) -> Result<String, String> {
    let schema = json
        .pointer("/data/__schema")
        .or_else(|| json.get("__schema"))
        .or_else(|| json.get("types").is_some().then_some(json))
        .ok_or("an introspection result has `__schema` (or `data.__schema`) with `types`; this JSON has neither")?;
    let types = schema.get("types").and_then(Value::as_array).ok_or("`__schema.types` is missing or not an array")?;
    let root = |k: &str| schema.get(k).and_then(|t| t.get("name")).and_then(Value::as_str);
    let mut out = String::new();
    out.push_str("schema {");
    for (kw, key) in [("query", "queryType"), ("mutation", "mutationType"), ("subscription", "subscriptionType")] {
        if let Some(n) = root(key) {
            out.push_str(&format!(" {kw}: {n}"));
        }
    }
    out.push_str(" }\n\n");
    for (i, t) in types.iter().enumerate() {
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| format!("`__schema.types[{i}]` has no name"))?;
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        let kind = t.get("kind").and_then(Value::as_str).unwrap_or_default();
        description(&mut out, t, "");
        match kind {
            "SCALAR" => out.push_str(&format!("scalar {name}\n\n")),
            "OBJECT" | "INTERFACE" => {
                out.push_str(if kind == "OBJECT" { "type " } else { "interface " });
                out.push_str(name);
                let interfaces: Vec<String> = list(t, "interfaces").iter().filter_map(|i| type_ref(i).ok()).collect();
                if !interfaces.is_empty() {
                    out.push_str(&format!(" implements {}", interfaces.join(" & ")));
                }
                out.push_str(" {\n");
                for f in list(t, "fields") {
                    description(&mut out, f, "  ");
                    let fname = f.get("name").and_then(Value::as_str).unwrap_or_default();
                    out.push_str(&format!("  {fname}"));
                    let args = list(f, "args");
                    if !args.is_empty() {
                        out.push('(');
                        for (j, a) in args.iter().enumerate() {
                            if j > 0 {
                                out.push_str(", ");
                            }
                            input_value(&mut out, a).map_err(|e| format!("{name}.{fname}: {e}"))?;
                        }
                        out.push(')');
                    }
                    let ty = f.get("type").map(type_ref).transpose()?.unwrap_or_default();
                    out.push_str(&format!(": {ty}"));
                    deprecated(&mut out, f);
                    out.push('\n');
                }
                out.push_str("}\n\n");
            }
            "UNION" => {
                let members: Vec<String> = list(t, "possibleTypes").iter().filter_map(|i| type_ref(i).ok()).collect();
                out.push_str(&format!("union {name} = {}\n\n", members.join(" | ")));
            }
            "ENUM" => {
                out.push_str(&format!("enum {name} {{\n"));
                for v in list(t, "enumValues") {
                    description(&mut out, v, "  ");
                    out.push_str(&format!("  {}", v.get("name").and_then(Value::as_str).unwrap_or_default()));
                    deprecated(&mut out, v);
                    out.push('\n');
                }
                out.push_str("}\n\n");
            }
            "INPUT_OBJECT" => {
                out.push_str(&format!("input {name} {{\n"));
                for f in list(t, "inputFields") {
                    description(&mut out, f, "  ");
                    out.push_str("  ");
                    input_value(&mut out, f).map_err(|e| format!("{name}: {e}"))?;
                    out.push('\n');
                }
                out.push_str("}\n\n");
            }
            other => return Err(format!("type `{name}` has kind `{other}`, which introspection does not define")),
        }
    }
    Ok(out)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn input_value(out: &mut String, a: &Value) -> Result<(), String> {
    let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
    let ty = a.get("type").map(type_ref).transpose()?.unwrap_or_default();
    out.push_str(&format!("{name}: {ty}"));
    if let Some(d) = a.get("defaultValue").and_then(Value::as_str) {
        out.push_str(&format!(" = {d}"));
    }
    Ok(())
}

fn type_ref(t: &Value) -> Result<String, String> {
    match t.get("kind").and_then(Value::as_str) {
        Some("NON_NULL") => Ok(format!("{}!", type_ref(t.get("ofType").ok_or("NON_NULL without `ofType`")?)?)),
        Some("LIST") => Ok(format!("[{}]", type_ref(t.get("ofType").ok_or("LIST without `ofType`")?)?)),
        _ => t
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "a type reference without a name".into()),
    }
}

fn description(out: &mut String, v: &Value, indent: &str) {
    if let Some(d) = v.get("description").and_then(Value::as_str).filter(|d| !d.is_empty()) {
        // A string literal, escaped (block strings cannot hold every text).
        out.push_str(indent);
        out.push_str(&Value::String(d.to_string()).to_string());
        out.push('\n');
    }
}

fn deprecated(out: &mut String, v: &Value) {
    if v.get("isDeprecated").and_then(Value::as_bool) == Some(true) {
        match v.get("deprecationReason").and_then(Value::as_str) {
            Some(r) => out.push_str(&format!(" @deprecated(reason: {})", Value::String(r.into()))),
            None => out.push_str(" @deprecated"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn introspection_round_trips_through_sdl() {
        let named = |n: &str| json!({"kind": "OBJECT", "name": n});
        let result = json!({"data": {"__schema": {
        "queryType": {"name": "Query"}, "mutationType": null, "subscriptionType": null,
        "types": [
            {"kind": "OBJECT", "name": "Query", "description": "Roots \"quoted\"", "interfaces": [], "fields": [
                {"name": "user", "description": null, "args": [
                    {"name": "id", "description": null, "type": {"kind": "NON_NULL", "ofType": {"kind": "SCALAR", "name": "ID"}}, "defaultValue": null},
                    {"name": "first", "type": {"kind": "SCALAR", "name": "Int"}, "defaultValue": "10"}],
                 "type": named("User"), "isDeprecated": false},
                {"name": "old", "args": [], "type": {"kind": "SCALAR", "name": "String"}, "isDeprecated": true, "deprecationReason": "gone"}]},
            {"kind": "OBJECT", "name": "User", "interfaces": [], "fields": [
                {"name": "tags", "args": [], "type": {"kind": "LIST", "ofType": {"kind": "NON_NULL", "ofType": {"kind": "ENUM", "name": "Tag"}}}}]},
            {"kind": "ENUM", "name": "Tag", "enumValues": [{"name": "A"}, {"name": "B", "isDeprecated": true, "deprecationReason": null}]},
            {"kind": "SCALAR", "name": "String"}, {"kind": "SCALAR", "name": "ID"}, {"kind": "SCALAR", "name": "Int"},
            {"kind": "OBJECT", "name": "__Type", "fields": []}
        ]}}});
        let sdl = to_sdl(&result).unwrap();
        assert!(sdl.contains("user(id: ID!, first: Int = 10): User"), "{sdl}");
        assert!(sdl.contains("tags: [Tag!]"), "{sdl}");
        assert!(sdl.contains("old: String @deprecated(reason: \"gone\")"), "{sdl}");
        let schema = crate::Schema::from_introspection(&result, "saved.json").unwrap();
        assert!(schema.fields().iter().any(|f| f.coordinate == "User.tags" && f.ty == "[Tag!]"));
    }

    #[test]
    fn not_introspection_says_what_it_expected() {
        let e = to_sdl(&json!({"openapi": "3.0.0"})).unwrap_err();
        assert!(e.contains("__schema"), "{e}");
    }
}
