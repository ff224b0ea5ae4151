//! The schema as `search` code reads it (`schemas.<name>`, `schema`): one
//! JSON document whose named types link to each other with `$ref`s
//! (`#/types/Repository`). codemode resolves and packs it like an OpenAPI
//! spec, so the sandbox builds the same lazy, frozen objects over it and a
//! cycle (`Repository.owner.repositories…`) is followed one touch at a
//! time, marked `{"$circular": …}` only where it closes on the path read.
//!
//! ```text
//! { kind: "graphql", queryType, mutationType, subscriptionType,   (linked types)
//!   types: { Repository: { name, kind: "OBJECT", description,
//!             interfaces: [linked], possibleTypes: [linked],
//!             fields: { issues: { name, description, type: "[Issue!]!",
//!                                 named: linked Issue, isDeprecated, deprecationReason,
//!                                 args: { first: { name, type: "Int", named, defaultValue, description } } } },
//!             inputFields: {…as args}, enumValues: { OPEN: { name, description, isDeprecated } } } } }
//! ```

use apollo_compiler::schema::{ExtendedType, InputValueDefinition};
use apollo_compiler::{Node, Schema};
use serde_json::{json, Map, Value};

fn link(name: &str) -> Value {
    json!({ "$ref": format!("#/types/{name}") })
}

fn text(d: &Option<Node<str>>) -> Value {
    d.as_deref().map(|s| Value::String(s.to_string())).unwrap_or(Value::Null)
}

fn deprecation(directives: &apollo_compiler::ast::DirectiveList, out: &mut Map<String, Value>) {
    let d = directives.get("deprecated");
    out.insert("isDeprecated".into(), Value::Bool(d.is_some()));
    if let Some(d) = d {
        let reason = d
            .specified_argument_by_name("reason")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "No longer supported".into());
        out.insert("deprecationReason".into(), Value::String(reason));
    }
}

fn input(v: &InputValueDefinition) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(v.name.to_string()));
    m.insert("description".into(), text(&v.description));
    m.insert("type".into(), Value::String(v.ty.to_string()));
    m.insert("named".into(), link(v.ty.inner_named_type()));
    if let Some(d) = &v.default_value {
        m.insert("defaultValue".into(), Value::String(d.to_string()));
    }
    Value::Object(m)
}

/// The view document (see the module docs).
pub(crate) fn build(schema: &Schema) -> Value {
    let implementers = schema.implementers_map();
    let mut types = Map::new();
    for (name, ty) in &schema.types {
        let mut t = Map::new();
        t.insert("name".into(), Value::String(name.to_string()));
        let kind = match ty {
            ExtendedType::Scalar(_) => "SCALAR",
            ExtendedType::Object(_) => "OBJECT",
            ExtendedType::Interface(_) => "INTERFACE",
            ExtendedType::Union(_) => "UNION",
            ExtendedType::Enum(_) => "ENUM",
            ExtendedType::InputObject(_) => "INPUT_OBJECT",
        };
        t.insert("kind".into(), Value::String(kind.into()));
        t.insert("description".into(), ty.description().map(|d| Value::String(d.to_string())).unwrap_or(Value::Null));
        let fields_of = |fields: &apollo_compiler::collections::IndexMap<
            apollo_compiler::Name,
            apollo_compiler::schema::Component<apollo_compiler::schema::FieldDefinition>,
        >| {
            let mut out = Map::new();
            for (fname, f) in fields {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(fname.to_string()));
                m.insert("description".into(), text(&f.description));
                m.insert("type".into(), Value::String(f.ty.to_string()));
                m.insert("named".into(), link(f.ty.inner_named_type()));
                let args: Map<String, Value> = f.arguments.iter().map(|a| (a.name.to_string(), input(a))).collect();
                m.insert("args".into(), Value::Object(args));
                deprecation(&f.directives, &mut m);
                out.insert(fname.to_string(), Value::Object(m));
            }
            Value::Object(out)
        };
        match ty {
            ExtendedType::Object(o) => {
                t.insert("interfaces".into(), o.implements_interfaces.iter().map(|i| link(i)).collect());
                t.insert("fields".into(), fields_of(&o.fields));
            }
            ExtendedType::Interface(i) => {
                t.insert("interfaces".into(), i.implements_interfaces.iter().map(|i| link(i)).collect());
                t.insert("fields".into(), fields_of(&i.fields));
                let objects = implementers.get(name).map(|m| m.objects.iter().map(|o| link(o)).collect());
                t.insert("possibleTypes".into(), objects.unwrap_or(Value::Array(vec![])));
            }
            ExtendedType::Union(u) => {
                t.insert("possibleTypes".into(), u.members.iter().map(|m| link(m)).collect());
            }
            ExtendedType::Enum(e) => {
                let values: Map<String, Value> = e
                    .values
                    .iter()
                    .map(|(v, def)| {
                        let mut m = Map::new();
                        m.insert("name".into(), Value::String(v.to_string()));
                        m.insert("description".into(), text(&def.description));
                        deprecation(&def.directives, &mut m);
                        (v.to_string(), Value::Object(m))
                    })
                    .collect();
                t.insert("enumValues".into(), Value::Object(values));
            }
            ExtendedType::InputObject(i) => {
                let fields: Map<String, Value> = i.fields.iter().map(|(n, f)| (n.to_string(), input(f))).collect();
                t.insert("inputFields".into(), Value::Object(fields));
            }
            ExtendedType::Scalar(_) => {}
        }
        types.insert(name.to_string(), Value::Object(t));
    }
    let root =
        |k: apollo_compiler::ast::OperationType| schema.root_operation(k).map(|n| link(n)).unwrap_or(Value::Null);
    json!({
        "kind": "graphql",
        "queryType": root(apollo_compiler::ast::OperationType::Query),
        "mutationType": root(apollo_compiler::ast::OperationType::Mutation),
        "subscriptionType": root(apollo_compiler::ast::OperationType::Subscription),
        "types": types,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_link_by_reference() {
        let v = crate::tests::schema().view();
        assert_eq!(v["queryType"], serde_json::json!({"$ref": "#/types/Query"}));
        let repo = &v["types"]["Query"]["fields"]["repository"];
        assert_eq!(repo["type"], "Repository");
        assert_eq!(repo["named"]["$ref"], "#/types/Repository");
        assert_eq!(repo["args"]["owner"]["type"], "String!");
        let old = &v["types"]["Repository"]["fields"]["oldName"];
        assert_eq!(old["isDeprecated"], true);
        assert_eq!(old["deprecationReason"], "Use `name`.");
        assert_eq!(v["types"]["IssueState"]["enumValues"]["OPEN"]["isDeprecated"], false);
        assert_eq!(v["types"]["Node"]["possibleTypes"].as_array().unwrap().len(), 3);
        assert_eq!(v["types"]["SearchResult"]["possibleTypes"][1]["$ref"], "#/types/Issue");
        assert_eq!(v["types"]["AddCommentInput"]["inputFields"]["body"]["type"], "String!");
    }
}
