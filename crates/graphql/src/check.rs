//! One GraphQL request, checked on the host before it is sent: parsed and
//! validated against the schema (apollo-compiler), the operation chosen,
//! variables coerced, subscriptions refused, and the depth and cost of the
//! selection bounded. What comes out is what the pipeline decides on: the
//! operation's kind (a mutation is a write) and its root fields
//! (`mutation.deleteRepository`, which rules can name).

use std::sync::Arc;

use apollo_compiler::executable::{ExecutableDocument, Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use apollo_compiler::Schema;
use serde_json::{json, Map, Value};

/// What a GraphQL operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// Reads.
    Query,
    /// Writes.
    Mutation,
    /// A stream of events; codemode does not run these.
    Subscription,
}

impl OperationKind {
    /// `query`, `mutation`, `subscription`: the keyword, and the prefix of
    /// a rule that names a root field (`mutation.deleteRepository`).
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
        }
    }

    pub(crate) fn ast(self) -> apollo_compiler::ast::OperationType {
        match self {
            OperationKind::Query => apollo_compiler::ast::OperationType::Query,
            OperationKind::Mutation => apollo_compiler::ast::OperationType::Mutation,
            OperationKind::Subscription => apollo_compiler::ast::OperationType::Subscription,
        }
    }

    fn of(t: apollo_compiler::ast::OperationType) -> Self {
        match t {
            apollo_compiler::ast::OperationType::Query => OperationKind::Query,
            apollo_compiler::ast::OperationType::Mutation => OperationKind::Mutation,
            apollo_compiler::ast::OperationType::Subscription => OperationKind::Subscription,
        }
    }
}

/// A request as the code writes it: `api.graphql(query, variables, {operationName})`.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The document.
    pub query: String,
    /// Variable values.
    pub variables: Map<String, Value>,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
}

/// How much one request may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest field nesting (a root field is depth 1).
    pub max_depth: usize,
    /// Most fields the answer can hold: each selected field counts once,
    /// times the `first`/`last` of every field above it that has one (a
    /// list or a connection: GitHub's node count).
    pub max_cost: u64,
    /// Longest document, in bytes.
    pub max_document_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 15, max_cost: 50_000, max_document_bytes: 64 * 1024 }
    }
}

/// A request that passed every check.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Query or mutation (subscriptions never pass).
    pub kind: OperationKind,
    /// The operation's name, if it has one.
    pub operation_name: Option<String>,
    /// Its root fields (names, not aliases), in order, each once.
    pub fields: Vec<String>,
    /// Its depth.
    pub depth: usize,
    /// Its cost (see [`Limits::max_cost`]).
    pub cost: u64,
    /// The JSON body to POST: `{query, variables?, operationName?}`.
    pub body: Value,
    pub(crate) document: Arc<Valid<ExecutableDocument>>,
    pub(crate) variables: Map<String, Value>,
}

impl Checked {
    /// `mutation.addComment`, one per root field: what rules match.
    pub fn coordinates(&self) -> Vec<String> {
        self.fields.iter().map(|f| format!("{}.{f}", self.kind.as_str())).collect()
    }
}

/// Why a request was not sent: one message for the code, and the errors
/// in GraphQL's shape (`message`, `locations`, and `suggestions` where a
/// name was close to one that exists).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckError {
    /// What is wrong, where, and how to fix it.
    pub message: String,
    /// Each problem.
    pub errors: Vec<Value>,
    /// Which limit was hit (`depth`, `cost`, `document`), or `subscription`,
    /// `operation`, `variables`, `validation`.
    pub reason: &'static str,
}

impl CheckError {
    fn one(reason: &'static str, message: String) -> Self {
        CheckError { errors: vec![json!({"message": message})], message, reason }
    }
}

/// Checks `request` against `schema` and `limits`.
pub(crate) fn check(schema: &Valid<Schema>, request: &Request, limits: &Limits) -> Result<Checked, CheckError> {
    if request.query.len() > limits.max_document_bytes {
        return Err(CheckError::one(
            "document",
            format!(
                "the GraphQL document is {} bytes; the limit is {}: ask for less in one call",
                request.query.len(),
                limits.max_document_bytes
            ),
        ));
    }
    let document = ExecutableDocument::parse_and_validate(schema, request.query.as_str(), "query.graphql")
        .map_err(|e| validation_error(schema, &e.errors))?;
    let operation = document.operations.get(request.operation_name.as_deref()).map_err(|e| {
        let names: Vec<&str> = document.operations.named.keys().map(|n| n.as_str()).collect();
        let how = match (&request.operation_name, names.is_empty()) {
            (Some(_), false) => format!("; the document has {}", names.join(", ")),
            (None, false) => format!(
                "; pass {{operationName: {:?}}} as the third argument to pick one",
                names.first().copied().unwrap_or_default()
            ),
            _ => String::new(),
        };
        CheckError::one("operation", format!("{}{how}", e.message()))
    })?;
    let kind = OperationKind::of(operation.operation_type);
    if kind == OperationKind::Subscription {
        return Err(CheckError::one(
            "subscription",
            "subscriptions are not supported: a call answers once. Query the current state instead (a `query` operation)"
                .into(),
        ));
    }
    let vars: apollo_compiler::response::JsonMap = serde_json::from_value(Value::Object(request.variables.clone()))
        .map_err(|e| CheckError::one("variables", format!("the variables are not a JSON object: {e}")))?;
    apollo_compiler::request::coerce_variable_values(schema, operation, &vars).map_err(|e| {
        let declared: Vec<String> = operation.variables.iter().map(|v| format!("${}: {}", v.name, v.ty)).collect();
        CheckError::one(
            "variables",
            format!(
                "{} (the operation declares {})",
                e.message(),
                if declared.is_empty() { "no variables".into() } else { declared.join(", ") }
            ),
        )
    })?;
    let mut fields = Vec::new();
    collect_root_fields(&document, &operation.selection_set, &mut fields);
    let mut walk = Walk {
        schema,
        document: &document,
        variables: &request.variables,
        declared: &operation.variables,
        limits,
        cost: 0,
        depth: 0,
        introspection_page: None,
    };
    walk.selection(&operation.selection_set, 1, 1)?;
    let mut body = json!({ "query": request.query });
    if !request.variables.is_empty() {
        body["variables"] = Value::Object(request.variables.clone());
    }
    if let Some(n) = &request.operation_name {
        body["operationName"] = Value::String(n.clone());
    }
    Ok(Checked {
        kind,
        operation_name: operation.name.as_ref().map(|n| n.to_string()),
        fields,
        depth: walk.depth,
        cost: walk.cost,
        body,
        document: Arc::new(document.clone()),
        variables: request.variables.clone(),
    })
}

fn collect_root_fields(doc: &ExecutableDocument, set: &SelectionSet, out: &mut Vec<String>) {
    for s in &set.selections {
        match s {
            Selection::Field(f) => {
                if !out.iter().any(|x| x == f.name.as_str()) {
                    out.push(f.name.to_string());
                }
            }
            Selection::InlineFragment(i) => collect_root_fields(doc, &i.selection_set, out),
            Selection::FragmentSpread(s) => {
                if let Some(f) = doc.fragments.get(&s.fragment_name) {
                    collect_root_fields(doc, &f.selection_set, out);
                }
            }
        }
    }
}

/// The depth and cost walk, fragments expanded where they are spread. It
/// stops at the first limit passed, so a document built to expand
/// exponentially (a fragment spread twice in a fragment spread twice…)
/// costs at most `max_cost` steps.
///
/// Introspection (`__schema`, `__type`) counts like any field: its lists
/// (`types`, `fields`, …) have no `first`, so each counts as long as the
/// longest such list the schema has — the bound a server walks. Only
/// `__typename` (one name, no selection) is free.
struct Walk<'a> {
    schema: &'a Valid<Schema>,
    document: &'a ExecutableDocument,
    variables: &'a Map<String, Value>,
    /// The operation's variable definitions (their defaults).
    declared: &'a [apollo_compiler::Node<apollo_compiler::ast::VariableDefinition>],
    limits: &'a Limits,
    cost: u64,
    depth: usize,
    /// The longest introspection list of the schema, once needed.
    introspection_page: Option<u64>,
}

impl Walk<'_> {
    fn selection(&mut self, set: &SelectionSet, depth: usize, multiplier: u64) -> Result<(), CheckError> {
        for s in &set.selections {
            match s {
                Selection::Field(f) => {
                    if f.name == "__typename" {
                        continue;
                    }
                    if depth > self.limits.max_depth {
                        return Err(CheckError::one(
                            "depth",
                            format!(
                                "the query is nested deeper than {} levels (at `{}`): ask for fewer levels in one call and follow up with another query (by `id`) for the rest",
                                self.limits.max_depth, f.name
                            ),
                        ));
                    }
                    self.depth = self.depth.max(depth);
                    self.cost = self.cost.saturating_add(multiplier);
                    if self.cost > self.limits.max_cost {
                        let how = if self.introspection_page.is_some() {
                            "; introspection lists count as the schema's longest: read the schema in `search` (`schemas.<api>`) instead"
                        } else {
                            ""
                        };
                        return Err(CheckError::one(
                            "cost",
                            format!(
                                "the query could return more than {} fields (list sizes from `first`/`last` multiply what is selected below them): ask for smaller pages or fewer fields{how}",
                                self.limits.max_cost
                            ),
                        ));
                    }
                    if !f.selection_set.selections.is_empty() {
                        // A page size multiplies what is selected below it:
                        // on a list field, or on a connection (`issues(first:
                        // 20) { nodes { … } }`) as GitHub counts nodes.
                        let page = if f.ty().is_list() && f.ty().inner_named_type().starts_with("__") {
                            self.introspection_page()
                        } else {
                            self.page(f).max(1)
                        };
                        self.selection(&f.selection_set, depth + 1, multiplier.saturating_mul(page))?;
                    }
                }
                Selection::InlineFragment(i) => self.selection(&i.selection_set, depth, multiplier)?,
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.document.fragments.get(&s.fragment_name) {
                        self.selection(&frag.selection_set, depth, multiplier)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The page size a list field asks for: its `first` or `last` — a
    /// literal, a variable (or the variable's default when it is not
    /// given), or the argument's default in the schema when it is left
    /// out: what the server will use, not what the document spells.
    fn page(&self, f: &apollo_compiler::executable::Field) -> u64 {
        use apollo_compiler::ast::Value as V;
        let mut page = 1;
        for name in ["first", "last"] {
            let value = f
                .arguments
                .iter()
                .find(|a| a.name == name)
                .map(|a| &a.value)
                .or_else(|| f.definition.argument_by_name(name).and_then(|d| d.default_value.as_ref()));
            let n = match value.map(|v| v.as_ref()) {
                Some(V::Int(i)) => i.try_to_i32().ok().map(|n| n.max(0) as u64),
                Some(V::Variable(v)) => self.variables.get(v.as_str()).and_then(Value::as_u64).or_else(|| {
                    let d = self.declared.iter().find(|d| d.name == *v)?.default_value.as_ref()?;
                    match d.as_ref() {
                        V::Int(i) => i.try_to_i32().ok().map(|n| n.max(0) as u64),
                        _ => None,
                    }
                }),
                _ => None,
            };
            page = page.max(n.unwrap_or(1));
        }
        page
    }

    /// The longest list introspection can answer with: the number of types
    /// (`__schema.types`) or directives, or the most fields, arguments,
    /// enum values, members or interfaces one definition has.
    fn introspection_page(&mut self) -> u64 {
        use apollo_compiler::schema::ExtendedType as T;
        *self.introspection_page.get_or_insert_with(|| {
            let s = self.schema;
            let per_type = s.types.values().map(|t| match t {
                T::Object(o) => o
                    .fields
                    .values()
                    .map(|f| f.arguments.len())
                    .chain([o.fields.len(), o.implements_interfaces.len()])
                    .max()
                    .unwrap_or(0),
                T::Interface(i) => i
                    .fields
                    .values()
                    .map(|f| f.arguments.len())
                    .chain([i.fields.len(), i.implements_interfaces.len()])
                    .max()
                    .unwrap_or(0),
                T::Union(u) => u.members.len(),
                T::Enum(e) => e.values.len(),
                T::InputObject(i) => i.fields.len(),
                T::Scalar(_) => 0,
            });
            let directives = s.directive_definitions.values().map(|d| d.arguments.len());
            per_type.chain(directives).chain([s.types.len(), s.directive_definitions.len()]).max().unwrap_or(1) as u64
        })
    }
}

/// The validator's errors, each with the closest names where it is about
/// a name that does not exist.
fn validation_error(schema: &Schema, list: &apollo_compiler::validation::DiagnosticList) -> CheckError {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let all: Vec<_> = list.iter().map(|d| d.to_json()).collect();
    // A selection whose only field does not exist is also reported as an
    // empty selection set: noise next to the real error, so left out.
    let unknown_field = all.iter().any(|e| e.message.contains("does not have a field"));
    for e in all {
        if unknown_field && e.message.contains("must have a subselection set") {
            continue;
        }
        let suggestions = suggest(schema, &e.message);
        let mut line = crate::one_line(&e);
        if !suggestions.is_empty() {
            line.push_str(&format!(
                "; did you mean {}?",
                suggestions.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or ")
            ));
        }
        lines.push(line);
        let mut v = serde_json::to_value(&e).unwrap_or_else(|_| json!({"message": e.message}));
        if !suggestions.is_empty() {
            v["suggestions"] = json!(suggestions);
        }
        errors.push(v);
    }
    let head =
        if lines.len() == 1 { "the GraphQL document is not valid: " } else { "the GraphQL document is not valid:\n  " };
    let shown: Vec<String> = lines.iter().take(8).cloned().collect();
    let mut message = format!("{head}{}", shown.join("\n  "));
    if lines.len() > 8 {
        message.push_str(&format!("\n  … and {} more (in `errors`)", lines.len() - 8));
    }
    message.push_str("\n(search: `schemas.<api>.types.<Type>.fields` lists what a type has)");
    CheckError { message, errors, reason: "validation" }
}

/// Names close to the missing one, read from the validator's message (its
/// names are between backticks): an unknown field of a type, an unknown
/// argument of a field, an unknown field of an input object.
fn suggest(schema: &Schema, message: &str) -> Vec<String> {
    let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let fields_of = |ty: &str| -> Vec<String> {
        match schema.types.get(ty) {
            Some(apollo_compiler::schema::ExtendedType::Object(o)) => o.fields.keys().map(|k| k.to_string()).collect(),
            Some(apollo_compiler::schema::ExtendedType::Interface(i)) => {
                i.fields.keys().map(|k| k.to_string()).collect()
            }
            Some(apollo_compiler::schema::ExtendedType::InputObject(i)) => {
                i.fields.keys().map(|k| k.to_string()).collect()
            }
            _ => vec![],
        }
    };
    let (wanted, candidates) = if message.contains("does not have a field") && names.len() >= 2 {
        (names[1], fields_of(names[0]))
    } else if message.contains("is not supported by") && names.len() >= 2 {
        let Some((ty, field)) = names[1].split_once('.') else { return vec![] };
        let args = match schema.type_field(ty, field) {
            Ok(f) => f.arguments.iter().map(|a| a.name.to_string()).collect(),
            Err(_) => vec![],
        };
        (names[0], args)
    } else if message.contains("does not exist on") && names.len() >= 2 {
        (names[0], fields_of(names[1]))
    } else {
        return vec![];
    };
    crate::closest(wanted, candidates.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::schema;

    fn req(q: &str) -> Request {
        Request { query: q.into(), ..Default::default() }
    }

    #[test]
    fn a_query_with_variables_checks() {
        let mut r = req("query Repo($o: String!) { repository(owner: $o, name: \"x\") { name issues(first: 5) { title } } viewer { login } }");
        r.variables.insert("o".into(), json!("octo"));
        let c = schema().check(&r, &Limits::default()).unwrap();
        assert_eq!(c.kind, OperationKind::Query);
        assert_eq!(c.operation_name.as_deref(), Some("Repo"));
        assert_eq!(c.fields, vec!["repository", "viewer"]);
        assert_eq!(c.coordinates(), vec!["query.repository", "query.viewer"]);
        assert_eq!(c.depth, 3);
        // repository, name, issues, 5 × title, viewer, login
        assert_eq!(c.cost, 1 + 1 + 1 + 5 + 1 + 1);
        assert_eq!(c.body["variables"]["o"], "octo");
    }

    #[test]
    fn a_mutation_is_a_mutation_and_names_its_fields() {
        let c = schema().check(&req("mutation { deleteRepository(id: \"1\") }"), &Limits::default()).unwrap();
        assert_eq!(c.kind, OperationKind::Mutation);
        assert_eq!(c.coordinates(), vec!["mutation.deleteRepository"]);
    }

    #[test]
    fn an_unknown_field_is_named_with_suggestions() {
        let e =
            schema().check(&req("{ repository(owner: \"a\", name: \"b\") { nmae } }"), &Limits::default()).unwrap_err();
        assert_eq!(e.reason, "validation");
        assert!(e.message.contains("`Repository` does not have a field `nmae`"), "{}", e.message);
        assert!(e.message.contains("did you mean `name`"), "{}", e.message);
        assert_eq!(e.errors[0]["suggestions"], json!(["name"]), "{:?}", e.errors);
        assert!(e.errors[0]["locations"][0]["line"].is_number());
        let e =
            schema().check(&req("{ repository(ownr: \"a\", name: \"b\") { name } }"), &Limits::default()).unwrap_err();
        assert!(e.message.contains("did you mean `owner`"), "{}", e.message);
    }

    #[test]
    fn a_syntax_error_says_where() {
        let e = schema().check(&req("{ viewer { login }"), &Limits::default()).unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn subscriptions_are_refused() {
        let e = schema().check(&req("subscription { issueOpened { id } }"), &Limits::default()).unwrap_err();
        assert_eq!(e.reason, "subscription");
    }

    #[test]
    fn bad_variables_name_the_declaration() {
        let e = schema().check(&req("query($id: ID!) { node(id: $id) { id } }"), &Limits::default()).unwrap_err();
        assert_eq!(e.reason, "variables");
        assert!(e.message.contains("$id: ID!"), "{}", e.message);
    }

    #[test]
    fn two_operations_need_a_name() {
        let doc = "query A { viewer { id } } query B { viewer { login } }";
        let e = schema().check(&req(doc), &Limits::default()).unwrap_err();
        assert!(e.message.contains("operationName"), "{}", e.message);
        let mut r = req(doc);
        r.operation_name = Some("B".into());
        assert_eq!(schema().check(&r, &Limits::default()).unwrap().operation_name.as_deref(), Some("B"));
    }

    #[test]
    fn depth_and_cost_are_bounded() {
        let deep = "{ viewer { repositories { owner { repositories { owner { login } } } } } }";
        let limits = Limits { max_depth: 4, ..Limits::default() };
        let e = schema().check(&req(deep), &limits).unwrap_err();
        assert_eq!(e.reason, "depth");
        assert!(schema().check(&req(deep), &Limits { max_depth: 6, ..Limits::default() }).is_ok());
        let wide = "{ viewer { repositories(first: 100) { issues(first: 100) { title } } } }";
        // A connection's page counts like a list's.
        let c = schema()
            .check(
                &req("{ search(query: \"x\", first: 50) { __typename ... on Issue { title } } }"),
                &Limits::default(),
            )
            .unwrap();
        assert_eq!(c.cost, 1 + 50);
        let e = schema().check(&req(wide), &Limits { max_cost: 5000, ..Limits::default() }).unwrap_err();
        assert_eq!(e.reason, "cost");
    }

    #[test]
    fn introspection_counts_against_depth_and_cost() {
        let s = schema();
        // Introspection nests like any field.
        let deep = "{ __schema { types { fields { type { fields { name } } } } } }";
        let e = s.check(&req(deep), &Limits { max_depth: 4, ..Limits::default() }).unwrap_err();
        assert_eq!(e.reason, "depth", "{}", e.message);
        // Its lists count as the schema's longest: types × fields × fields.
        let e = s.check(&req(deep), &Limits { max_cost: 1000, ..Limits::default() }).unwrap_err();
        assert_eq!(e.reason, "cost", "{}", e.message);
        assert!(e.message.contains("read the schema in `search`"), "{}", e.message);
        // A small look is cheap, and `__typename` costs nothing.
        let c = s.check(&req("{ __type(name: \"User\") { name kind } __typename }"), &Limits::default()).unwrap();
        assert_eq!(c.cost, 3);
        assert_eq!(c.depth, 2);
    }

    #[test]
    fn defaults_count_as_the_page_the_server_uses() {
        let s = schema();
        let limits = Limits { max_cost: 1000, ..Limits::default() };
        // A variable left out counts with its default...
        let doc = "query($n: Int = 100000) { viewer { repositories(first: $n) { name } } }";
        assert_eq!(s.check(&req(doc), &limits).unwrap_err().reason, "cost");
        let mut given = req(doc);
        given.variables.insert("n".into(), json!(5));
        assert_eq!(s.check(&given, &limits).unwrap().cost, 1 + 1 + 5);
        // ... and a `first` left out with the schema's default (search: first = 10).
        let c = s.check(&req("{ search(query: \"x\") { ... on Issue { title } } }"), &limits).unwrap();
        assert_eq!(c.cost, 1 + 10);
    }

    #[test]
    fn fragments_cannot_explode_the_walk() {
        // Each fragment spreads the previous one twice: 2^20 fields.
        let mut doc = String::from("query { viewer { ...F0 } }\nfragment F0 on User { login }\n");
        for i in 1..=20 {
            doc.push_str(&format!("fragment F{i} on User {{ ...F{p} ...F{p} }}\n", p = i - 1));
        }
        doc = doc.replace("{ ...F0 } }\n", "{ ...F20 } }\n");
        let e = schema().check(&req(&doc), &Limits::default()).unwrap_err();
        assert_eq!(e.reason, "cost", "{}", e.message);
    }
}
