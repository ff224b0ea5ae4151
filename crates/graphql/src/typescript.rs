//! `codemode.types("Query.repository")`: TypeScript for a field's
//! arguments and result, or for a named type, so a model writes the
//! selection and the variables right the first time.

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::Schema;

/// The TypeScript of a scalar, enum or named type reference.
fn named(schema: &Schema, name: &str) -> String {
    match name {
        "String" | "ID" => "string".into(),
        "Int" | "Float" => "number".into(),
        "Boolean" => "boolean".into(),
        other => match schema.types.get(other) {
            // Custom scalars cross as JSON strings (dates, URIs, HTML…).
            Some(ExtendedType::Scalar(_)) => format!("string /* {other} */"),
            _ => other.to_string(),
        },
    }
}

fn ts(schema: &Schema, ty: &Type) -> String {
    match ty {
        Type::Named(n) => format!("{} | null", named(schema, n)),
        Type::NonNullNamed(n) => named(schema, n),
        Type::List(inner) => format!("Array<{}> | null", ts(schema, inner)),
        Type::NonNullList(inner) => format!("Array<{}>", ts(schema, inner)),
    }
}

fn comment(out: &mut String, indent: &str, text: Option<&str>) {
    if let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) {
        let t: String = t.chars().take(300).collect();
        out.push_str(&format!("{indent}/** {} */\n", t.replace("*/", "* /").replace('\n', " ")));
    }
}

/// One named type's declaration.
fn declare(schema: &Schema, name: &str, out: &mut String) -> Result<(), String> {
    let ty = schema.types.get(name).ok_or_else(|| format!("no type `{name}`"))?;
    comment(out, "", ty.description().map(|d| d.as_str()));
    match ty {
        ExtendedType::Object(_) | ExtendedType::Interface(_) => {
            let fields = match ty {
                ExtendedType::Object(o) => &o.fields,
                ExtendedType::Interface(i) => &i.fields,
                _ => unreachable!(),
            };
            let kw = if ty.is_object() { "type" } else { "interface" };
            out.push_str(&format!("/** GraphQL {kw}: select the fields you need */\ninterface {name} {{\n"));
            for (f, def) in fields {
                comment(out, "  ", def.description.as_deref());
                let args = if def.arguments.is_empty() {
                    String::new()
                } else {
                    format!(
                        " /* ({}) */",
                        def.arguments.iter().map(|a| format!("{}: {}", a.name, a.ty)).collect::<Vec<_>>().join(", ")
                    )
                };
                let dep = if def.directives.has("deprecated") { " /* deprecated */" } else { "" };
                out.push_str(&format!("  {f}{args}: {};{dep}\n", ts(schema, &def.ty)));
            }
            out.push_str("}\n");
        }
        ExtendedType::Union(u) => {
            let members: Vec<&str> = u.members.iter().map(|m| m.as_str()).collect();
            out.push_str(&format!(
                "/** a union: select with `... on Type {{ }}` and `__typename` */\ntype {name} = {};\n",
                members.join(" | ")
            ));
        }
        ExtendedType::Enum(e) => {
            let values: Vec<String> = e.values.keys().map(|v| format!("\"{v}\"")).collect();
            out.push_str(&format!("type {name} = {};\n", values.join(" | ")));
        }
        ExtendedType::InputObject(i) => {
            out.push_str(&format!("interface {name} {{\n"));
            for (f, def) in &i.fields {
                comment(out, "  ", def.description.as_deref());
                let optional = if def.ty.is_non_null() && def.default_value.is_none() { "" } else { "?" };
                out.push_str(&format!("  {f}{optional}: {};\n", ts(schema, &def.ty)));
            }
            out.push_str("}\n");
        }
        ExtendedType::Scalar(_) => out.push_str(&format!("type {name} = string;\n")),
    }
    Ok(())
}

/// The closest type or field names, for a coordinate that does not exist.
fn unknown(what: &str, wanted: &str, names: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = names.into_iter().collect();
    let close = crate::closest(wanted, names.iter().map(String::as_str));
    if close.is_empty() {
        format!("{what} `{wanted}` does not exist")
    } else {
        format!(
            "{what} `{wanted}` does not exist; did you mean {}?",
            close.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" or ")
        )
    }
}

/// See the module docs.
pub(crate) fn describe(schema: &Schema, coordinate: &str) -> Result<String, String> {
    let coordinate = coordinate.trim();
    let (ty, field) = match coordinate.split_once('.') {
        Some((t, f)) => (t, Some(f)),
        None => (coordinate, None),
    };
    // `query.repository` / `mutation.addComment` name the root types.
    let ty = match ty {
        "query" | "mutation" | "subscription" => {
            let kind = match ty {
                "query" => crate::OperationKind::Query,
                "mutation" => crate::OperationKind::Mutation,
                _ => crate::OperationKind::Subscription,
            };
            schema
                .root_operation(kind.ast())
                .map(|n| n.as_str())
                .ok_or_else(|| format!("the schema has no {ty} type"))?
        }
        t => t,
    };
    if !schema.types.contains_key(ty) {
        return Err(unknown("type", ty, schema.types.keys().filter(|k| !k.starts_with("__")).map(|k| k.to_string())));
    }
    let mut out = String::new();
    let Some(field) = field else {
        declare(schema, ty, &mut out)?;
        return Ok(out);
    };
    let def = schema.type_field(ty, field).map_err(|_| {
        let names = match schema.types.get(ty) {
            Some(ExtendedType::Object(o)) => o.fields.keys().map(|k| k.to_string()).collect(),
            Some(ExtendedType::Interface(i)) => i.fields.keys().map(|k| k.to_string()).collect(),
            _ => vec![],
        };
        unknown(&format!("field of `{ty}`"), field, names)
    })?;
    comment(&mut out, "", def.description.as_deref());
    let sig: Vec<String> = def
        .arguments
        .iter()
        .map(|a| {
            let d = a.default_value.as_ref().map(|d| format!(" = {d}")).unwrap_or_default();
            format!("{}: {}{d}", a.name, a.ty)
        })
        .collect();
    out.push_str(&format!("// {ty}.{field}({}): {}\n", sig.join(", "), def.ty));
    out.push_str("type Variables = {\n");
    let mut inputs = Vec::new();
    for a in &def.arguments {
        comment(&mut out, "  ", a.description.as_deref());
        let optional = if a.ty.is_non_null() && a.default_value.is_none() { "" } else { "?" };
        out.push_str(&format!("  {}{optional}: {};\n", a.name, ts(schema, &a.ty)));
        let n = a.ty.inner_named_type().as_str();
        if matches!(schema.types.get(n), Some(ExtendedType::InputObject(_) | ExtendedType::Enum(_)))
            && !inputs.contains(&n)
        {
            inputs.push(n);
        }
    }
    out.push_str("};\n");
    out.push_str(&format!("type Result = {};\n", ts(schema, &def.ty)));
    let result = def.ty.inner_named_type().as_str();
    for n in inputs {
        declare(schema, n, &mut out)?;
    }
    if !matches!(result, "String" | "ID" | "Int" | "Float" | "Boolean") {
        declare(schema, result, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::tests::schema;

    #[test]
    fn a_root_field_gives_variables_and_result() {
        let ts = schema().typescript("Query.repository").unwrap();
        assert!(ts.contains("// Query.repository(owner: String!, name: String!): Repository"), "{ts}");
        assert!(ts.contains("  owner: string;"), "{ts}");
        assert!(ts.contains("type Result = Repository | null;"), "{ts}");
        assert!(ts.contains("interface Repository {"), "{ts}");
        assert!(ts.contains("  issues /* (first: Int, states: [IssueState!]) */: Array<Issue>;"), "{ts}");
        assert!(ts.contains("createdAt: string /* DateTime */;"), "{ts}");
        assert!(ts.contains("oldName: string | null; /* deprecated */"), "{ts}");
        let m = schema().typescript("mutation.addComment").unwrap();
        assert!(m.contains("interface AddCommentInput {\n  subjectId: string;"), "{m}");
    }

    #[test]
    fn unknown_names_get_suggestions() {
        let e = schema().typescript("Query.repo").unwrap_err();
        assert!(e.contains("did you mean `repository`"), "{e}");
        let e = schema().typescript("Repositry").unwrap_err();
        assert!(e.contains("`Repository`"), "{e}");
        assert!(schema().typescript("IssueState").unwrap().contains("\"OPEN\" | \"CLOSED\""));
    }
}
