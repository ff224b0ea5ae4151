//! Rehearsal answers: `{"data": …}` synthesised from the schema for the
//! selection a checked request makes. Deterministic (the same request gets
//! the same answer), shaped exactly like the real one: aliases as keys,
//! lists of `first`/`last` items up to two, non-null and nullable fields
//! filled, enums their first value, custom scalars strings, abstract types
//! the first possible object type (with `__typename`).

use apollo_compiler::ast::Type;
use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::Schema;
use serde_json::{json, Map, Value};

use crate::Checked;

/// Most items a synthesised list holds.
const LIST_ITEMS: u64 = 2;

pub(crate) fn answer(schema: &Schema, checked: &Checked) -> Value {
    let doc = &checked.document;
    let Ok(op) = doc.operations.get(checked.operation_name.as_deref()) else {
        return json!({ "data": null });
    };
    let root = schema.root_operation(checked.kind.ast()).map(|n| n.to_string()).unwrap_or_default();
    let synth = Synth { schema, doc, variables: &checked.variables };
    json!({ "data": synth.object(&op.selection_set, &root, "") })
}

struct Synth<'a> {
    schema: &'a Schema,
    doc: &'a apollo_compiler::ExecutableDocument,
    variables: &'a Map<String, Value>,
}

impl Synth<'_> {
    /// The concrete object type for `ty` (the type itself, or the first
    /// implementer or member of an interface or union).
    fn concrete(&self, ty: &str) -> String {
        match self.schema.types.get(ty) {
            Some(ExtendedType::Union(u)) => u.members.first().map(|m| m.to_string()).unwrap_or_else(|| ty.into()),
            Some(ExtendedType::Interface(_)) => {
                let mut objects: Vec<String> = self
                    .schema
                    .implementers_map()
                    .get(ty)
                    .map(|i| i.objects.iter().map(|o| o.to_string()).collect())
                    .unwrap_or_default();
                objects.sort();
                objects.into_iter().next().unwrap_or_else(|| ty.into())
            }
            _ => ty.into(),
        }
    }

    fn applies(&self, condition: Option<&str>, object: &str) -> bool {
        condition.is_none_or(|c| c == object || self.schema.is_subtype(c, object))
    }

    fn object(&self, set: &SelectionSet, object: &str, path: &str) -> Value {
        let mut out = Map::new();
        self.fill(set, object, path, &mut out);
        Value::Object(out)
    }

    fn fill(&self, set: &SelectionSet, object: &str, path: &str, out: &mut Map<String, Value>) {
        for s in &set.selections {
            match s {
                Selection::Field(f) => {
                    let key = f.response_key().to_string();
                    if out.contains_key(&key) {
                        continue;
                    }
                    let here = format!("{path}.{key}");
                    let value = if f.name == "__typename" {
                        Value::String(object.to_string())
                    } else {
                        let page = f
                            .arguments
                            .iter()
                            .filter(|a| a.name == "first" || a.name == "last")
                            .filter_map(|a| match a.value.as_ref() {
                                apollo_compiler::ast::Value::Int(i) => i.try_to_i32().ok().map(|n| n.max(0) as u64),
                                apollo_compiler::ast::Value::Variable(v) => {
                                    self.variables.get(v.as_str()).and_then(Value::as_u64)
                                }
                                _ => None,
                            })
                            .min()
                            .unwrap_or(LIST_ITEMS)
                            .min(LIST_ITEMS);
                        self.value(&f.definition.ty, &f.selection_set, f.name.as_str(), &here, page)
                    };
                    out.insert(key, value);
                }
                Selection::InlineFragment(i) => {
                    if self.applies(i.type_condition.as_ref().map(|c| c.as_str()), object) {
                        self.fill(&i.selection_set, object, path, out);
                    }
                }
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.doc.fragments.get(&s.fragment_name) {
                        if self.applies(Some(frag.type_condition().as_str()), object) {
                            self.fill(&frag.selection_set, object, path, out);
                        }
                    }
                }
            }
        }
    }

    fn value(&self, ty: &Type, set: &SelectionSet, field: &str, path: &str, page: u64) -> Value {
        match ty {
            Type::List(inner) | Type::NonNullList(inner) => {
                (0..page).map(|i| self.value(inner, set, field, &format!("{path}[{i}]"), page)).collect()
            }
            Type::Named(n) | Type::NonNullNamed(n) => match self.schema.types.get(n.as_str()) {
                Some(ExtendedType::Scalar(_)) => scalar(n.as_str(), field, path),
                Some(ExtendedType::Enum(e)) => {
                    e.values.keys().next().map(|v| Value::String(v.to_string())).unwrap_or(Value::Null)
                }
                Some(_) => {
                    let object = self.concrete(n.as_str());
                    self.object(set, &object, path)
                }
                None => Value::Null,
            },
        }
    }
}

/// A scalar value, stable for its place in the answer.
fn scalar(ty: &str, field: &str, path: &str) -> Value {
    let n = path.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)) % 1000;
    match ty {
        "Int" => json!(n),
        "Float" => json!(n as f64 + 0.5),
        "Boolean" => json!(n % 2 == 0),
        "ID" => json!(format!("{field}-{n}")),
        "String" => json!(format!("{field} {n}")),
        "DateTime" | "ISO8601DateTime" | "Time" | "Timestamp" => json!("2026-01-01T00:00:00Z"),
        "Date" => json!("2026-01-01"),
        "URI" | "URL" | "Url" => json!(format!("https://example.com/{field}/{n}")),
        _ => json!(format!("{ty}:{field}-{n}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::schema;
    use crate::{Limits, Request};

    #[test]
    fn answers_follow_the_selection() {
        let s = schema();
        let q = r#"query { r: repository(owner: "a", name: "b") { id name createdAt issues(first: 1) { state title } }
            search(query: "x") { __typename ... on Issue { title } ... on Repository { name } } }"#;
        let c = s.check(&Request { query: q.into(), ..Default::default() }, &Limits::default()).unwrap();
        let a = s.rehearse(&c);
        let r = &a["data"]["r"];
        assert!(r["id"].is_string() && r["name"].is_string());
        assert_eq!(r["createdAt"], "2026-01-01T00:00:00Z");
        assert_eq!(r["issues"].as_array().unwrap().len(), 1);
        assert_eq!(r["issues"][0]["state"], "OPEN");
        let hits = a["data"]["search"].as_array().unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0]["__typename"], "Repository");
        assert!(hits[0]["name"].is_string() && hits[0].get("title").is_none());
        assert_eq!(a, s.rehearse(&c), "deterministic");
    }
}
