//! GraphQL APIs for codemode: everything the host knows about a GraphQL
//! schema, kept apart from the binary's wiring.
//!
//! - [`Schema`] — loaded from SDL or an introspection result (`introspection`
//!   converts the latter to SDL, so one parser and validator sees both);
//! - [`Schema::view`] — the JSON graph `search` code reads as
//!   `schemas.<name>` (types linked by `$ref`, packed like an OpenAPI spec);
//! - [`Schema::check`] — a document parsed and validated against the schema
//!   before anything is sent, with the operation's kind, root fields, depth
//!   and cost ([`Checked`]); errors name the field and suggest the closest;
//! - [`Schema::typescript`] — `codemode.types("Query.repository")`;
//! - [`Schema::rehearse`] — the deterministic answer of rehearsal mode.
//!
//! Parsing and validation are apollo-compiler's; this crate adds what an
//! agent gateway needs on top (limits, suggestions, kinds, synthesis).

mod check;
pub mod introspection;
mod rehearse;
mod tools;
mod typescript;
mod view;

use std::fmt;

use apollo_compiler::validation::Valid;

pub use check::{CheckError, Checked, Limits, OperationKind, Request};

/// A validated GraphQL schema.
pub struct Schema {
    inner: Valid<apollo_compiler::Schema>,
    /// What was kept in another form than written: a field defined twice in
    /// one type (GitHub's published schema has two) keeps its first
    /// definition, and says so here.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("types", &self.inner.types.len()).finish()
    }
}

/// One field of an object or interface type, for the search index.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldEntry {
    /// `Query.repository`, `Mutation.addComment`, `Repository.issues`.
    pub coordinate: String,
    /// The root operation it belongs to (`query`, `mutation`), when the
    /// type is a root type.
    pub root: Option<OperationKind>,
    /// The field's description.
    pub description: String,
    /// Its arguments' names.
    pub arguments: Vec<String>,
    /// Its type as SDL writes it (`Repository`, `[Issue!]!`).
    pub ty: String,
}

impl Schema {
    /// Parses and validates SDL. `path` names the source in errors.
    pub fn from_sdl(sdl: &str, path: &str) -> Result<Schema, String> {
        Schema::from_sdl_files(&[(path, sdl)])
    }

    /// Parses several SDL sources, `(path, text)`, into one schema and
    /// validates it: a type defined in one file may be extended (`extend
    /// type`) in any other, in any order. Every error names its file and
    /// line.
    pub fn from_sdl_files(sources: &[(&str, &str)]) -> Result<Schema, String> {
        let several = sources.len() > 1;
        let what = match sources {
            [(path, _)] => format!("{path}: the GraphQL schema"),
            _ => format!(
                "the GraphQL schema of {} files ({})",
                sources.len(),
                sources.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
            ),
        };
        let invalid = |errors: &apollo_compiler::validation::DiagnosticList| {
            let mut out = format!("{what} is not valid:");
            for (i, d) in errors.iter().enumerate() {
                if i == 8 {
                    out.push_str(&format!("\n  … and {} more", errors.len() - 8));
                    break;
                }
                out.push_str(&format!("\n  {}", diagnostic_line(&d, several)));
            }
            out
        };
        let mut builder = apollo_compiler::Schema::builder();
        for (path, text) in sources {
            builder = builder.parse(*text, *path);
        }
        let mut warnings = Vec::new();
        let parsed = match builder.build() {
            Ok(s) => s,
            // A field defined twice in one type: the first definition is
            // kept (the builder's rule), and the problem reported as a
            // warning rather than refusing a schema servers publish.
            Err(e) if e.errors.iter().all(|d| duplicate_field(&d.to_json().message)) => {
                for d in e.errors.iter() {
                    let line = diagnostic_line(&d, several);
                    warnings.push(match sources {
                        [(path, _)] => format!("{path}: {line} (the first definition is kept)"),
                        _ => format!("{line} (the first definition is kept)"),
                    });
                }
                e.partial
            }
            Err(e) => return Err(invalid(&e.errors)),
        };
        let inner = parsed.validate().map_err(|e| invalid(&e.errors))?;
        Ok(Schema { inner, warnings })
    }

    /// From an introspection result: `{"data": {"__schema": …}}`,
    /// `{"__schema": …}` or the `__schema` object itself.
    pub fn from_introspection(json: &serde_json::Value, path: &str) -> Result<Schema, String> {
        let sdl = introspection::to_sdl(json).map_err(|e| format!("{path}: {e}"))?;
        Schema::from_sdl(&sdl, path)
    }

    /// Reads either form: JSON text is an introspection result, anything
    /// else SDL.
    pub fn from_text(text: &str, path: &str) -> Result<Schema, String> {
        if text.trim_start().starts_with('{') {
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("{path}: not JSON introspection: {e}"))?;
            Schema::from_introspection(&json, path)
        } else {
            Schema::from_sdl(text, path)
        }
    }

    /// Names of the root types: query, mutation, subscription.
    pub fn root(&self, kind: OperationKind) -> Option<&str> {
        self.inner.root_operation(kind.ast()).map(|n| n.as_str())
    }

    /// How many named types the schema defines (built-ins included).
    pub fn type_count(&self) -> usize {
        self.inner.types.len()
    }

    /// Every field of every object and interface type (not the
    /// introspection types), roots first.
    pub fn fields(&self) -> Vec<FieldEntry> {
        let mut roots = Vec::new();
        let mut rest = Vec::new();
        for (name, ty) in &self.inner.types {
            if ty.is_built_in() {
                continue;
            }
            let fields = match ty {
                apollo_compiler::schema::ExtendedType::Object(o) => &o.fields,
                apollo_compiler::schema::ExtendedType::Interface(i) => &i.fields,
                _ => continue,
            };
            let root = [OperationKind::Query, OperationKind::Mutation, OperationKind::Subscription]
                .into_iter()
                .find(|k| self.root(*k) == Some(name.as_str()));
            for (fname, f) in fields {
                let entry = FieldEntry {
                    coordinate: format!("{name}.{fname}"),
                    root,
                    description: f.description.as_deref().unwrap_or_default().to_string(),
                    arguments: f.arguments.iter().map(|a| a.name.to_string()).collect(),
                    ty: f.ty.to_string(),
                };
                if root.is_some() {
                    roots.push(entry);
                } else {
                    rest.push(entry);
                }
            }
        }
        roots.extend(rest);
        roots
    }

    /// A real, valid query of this schema for the tool description: the
    /// first root query field whose required arguments are all scalars, as
    /// `(document, required argument names)`.
    pub fn example_query(&self) -> Option<(String, Vec<String>)> {
        let root = self.inner.get_object(self.root(OperationKind::Query)?)?;
        for (name, f) in &root.fields {
            let required: Vec<_> =
                f.arguments.iter().filter(|a| a.ty.is_non_null() && a.default_value.is_none()).collect();
            let scalar = |t: &str| self.inner.types.get(t).is_some_and(|t| t.is_scalar());
            if required.iter().any(|a| !scalar(a.ty.inner_named_type())) {
                continue;
            }
            let leaf = self.inner.types.get(f.ty.inner_named_type()).is_some_and(|t| t.is_leaf());
            let selection = if leaf { "" } else { " { __typename }" };
            let doc = if required.is_empty() {
                format!("{{ {name}{selection} }}")
            } else {
                let decl: Vec<String> = required.iter().map(|a| format!("${}: {}", a.name, a.ty)).collect();
                let args: Vec<String> = required.iter().map(|a| format!("{}: ${}", a.name, a.name)).collect();
                format!("query({}) {{ {name}({}){selection} }}", decl.join(", "), args.join(", "))
            };
            return Some((doc, required.iter().map(|a| a.name.to_string()).collect()));
        }
        None
    }

    /// The schema as JSON for `search` (see the `view` module).
    pub fn view(&self) -> serde_json::Value {
        view::build(&self.inner)
    }

    /// Parses and validates one request against the schema and `limits`.
    pub fn check(&self, request: &Request, limits: &Limits) -> Result<Checked, CheckError> {
        check::check(&self.inner, request, limits)
    }

    /// TypeScript for a coordinate: `Query.repository` (its arguments and
    /// result), or a type name (`Repository`).
    pub fn typescript(&self, coordinate: &str) -> Result<String, String> {
        typescript::describe(&self.inner, coordinate)
    }

    /// One MCP tool per root query and mutation field (`codemode tokens`'
    /// baseline): `{name, description, inputSchema}`.
    pub fn root_field_tools(&self) -> Vec<serde_json::Value> {
        tools::root_field_tools(&self.inner)
    }

    /// The rehearsal answer of a checked request: `{"data": …}` shaped by
    /// its selection (deterministic).
    pub fn rehearse(&self, checked: &Checked) -> serde_json::Value {
        rehearse::answer(&self.inner, checked)
    }
}

/// apollo-compiler's message for a field defined twice in one object or
/// interface type.
fn duplicate_field(message: &str) -> bool {
    message.starts_with("duplicate definitions for the `")
        && (message.contains("` field of object type `") || message.contains("` field of interface type `"))
}

/// A schema diagnostic as one line: the message and where — with the
/// file's name when the schema has several.
fn diagnostic_line(
    d: &apollo_compiler::diagnostic::Diagnostic<'_, apollo_compiler::validation::DiagnosticData>,
    with_file: bool,
) -> String {
    use apollo_compiler::diagnostic::ToCliReport;
    let json = d.to_json();
    let file =
        d.error.location().and_then(|span| d.sources.get(&span.file_id())).map(|f| f.path().display().to_string());
    match (with_file, file, json.locations.first()) {
        (true, Some(file), Some(l)) => format!("{} ({file}, line {}, column {})", json.message, l.line, l.column),
        (true, Some(file), None) => format!("{} ({file})", json.message),
        _ => one_line(&json),
    }
}

/// A GraphQL error as one line: message and first location.
fn one_line(e: &apollo_compiler::response::GraphQLError) -> String {
    match e.locations.first() {
        Some(l) => format!("{} (line {}, column {})", e.message, l.line, l.column),
        None => e.message.clone(),
    }
}

/// The closest names to `wanted` among `candidates` (at most three, by
/// edit distance, case-insensitive; a prefix or containment counts as
/// close).
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let l = c.to_lowercase();
            let d = distance(&w, &l);
            let near = d <= (w.len().max(3) / 3).max(2) || (w.len() >= 3 && (l.contains(&w) || w.contains(&l)));
            near.then_some((if l.contains(&w) || w.contains(&l) { d.min(1) } else { d }, c))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.to_string()).collect()
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small schema with every kind of type, a cycle, a mutation and a
    /// subscription.
    pub(crate) const SDL: &str = r#"
"""Entry points."""
type Query {
  "A repository by owner and name."
  repository(owner: String!, name: String!): Repository
  node(id: ID!): Node
  search(query: String!, first: Int = 10): [SearchResult!]!
  viewer: User!
}
type Mutation {
  addComment(input: AddCommentInput!): AddCommentPayload
  deleteRepository(id: ID!): Boolean
}
type Subscription { issueOpened: Issue }
interface Node { id: ID! }
type User implements Node { id: ID! login: String! repositories(first: Int): [Repository!]! }
type Repository implements Node {
  id: ID!
  name: String!
  owner: User!
  stars: Int
  createdAt: DateTime!
  issues(first: Int, states: [IssueState!]): [Issue!]!
  oldName: String @deprecated(reason: "Use `name`.")
}
type Issue implements Node { id: ID! title: String! state: IssueState! repository: Repository! }
enum IssueState { OPEN CLOSED }
union SearchResult = Repository | Issue
input AddCommentInput { subjectId: ID! body: String! }
type AddCommentPayload { clientMutationId: String commentEdge: String }
scalar DateTime
"#;

    pub(crate) fn schema() -> Schema {
        Schema::from_sdl(SDL, "test.graphql").unwrap()
    }

    #[test]
    fn loads_sdl_and_lists_fields_roots_first() {
        let s = schema();
        assert_eq!(s.root(OperationKind::Query), Some("Query"));
        assert_eq!(s.root(OperationKind::Mutation), Some("Mutation"));
        let fields = s.fields();
        assert_eq!(fields[0].coordinate, "Query.repository");
        assert_eq!(fields[0].description, "A repository by owner and name.");
        assert_eq!(fields[0].arguments, vec!["owner", "name"]);
        let add = fields.iter().find(|f| f.coordinate == "Mutation.addComment").unwrap();
        assert_eq!(add.root, Some(OperationKind::Mutation));
        assert!(fields.iter().any(|f| f.coordinate == "Repository.issues" && f.root.is_none()));
    }

    #[test]
    fn the_example_query_is_valid() {
        let s = schema();
        let (doc, vars) = s.example_query().unwrap();
        assert_eq!(
            doc,
            "query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { __typename } }"
        );
        assert_eq!(vars, vec!["owner", "name"]);
        let mut r = Request { query: doc, ..Default::default() };
        for v in vars {
            r.variables.insert(v, serde_json::json!("x"));
        }
        assert!(s.check(&r, &Limits::default()).is_ok());
    }

    #[test]
    fn an_invalid_schema_says_where() {
        let e = Schema::from_sdl("type Query { a: Missing }", "bad.graphql").unwrap_err();
        assert!(e.starts_with("bad.graphql: the GraphQL schema is not valid:"), "{e}");
        assert!(e.contains("Missing") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_field_defined_twice_keeps_the_first_with_a_warning() {
        let s = Schema::from_sdl("type Query { a: Int\n b: String\n a: Int }", "dup.graphql").unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("duplicate definitions for the `a` field of object type `Query`"),
            "{:?}",
            s.warnings
        );
        assert!(
            s.warnings[0].contains("line 3") && s.warnings[0].contains("first definition is kept"),
            "{:?}",
            s.warnings
        );
        assert_eq!(s.fields().len(), 2);
        // Other problems still refuse the schema.
        assert!(Schema::from_sdl("type Query { a: Int b: Nope a: Int }", "dup.graphql").is_err());
    }

    #[test]
    fn several_files_make_one_schema_and_errors_name_the_file() {
        let base = "type Query { book(id: ID!): Book }\ntype Book { id: ID! title: String }";
        let more = "extend type Book { year: Int }\nextend type Query { books: [Book!]! }";
        let mutation = "type Mutation { addBook(title: String!): Book }";
        // Extensions may come before what they extend.
        let s =
            Schema::from_sdl_files(&[("more.graphql", more), ("base.graphql", base), ("m.graphql", mutation)]).unwrap();
        let fields: Vec<String> = s.fields().into_iter().map(|f| f.coordinate).collect();
        for f in ["Query.book", "Query.books", "Book.year", "Book.title", "Mutation.addBook"] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
        assert_eq!(s.root(OperationKind::Mutation), Some("Mutation"));
        let ok = Request { query: "{ books { id year } }".into(), ..Default::default() };
        assert!(s.check(&ok, &Limits::default()).is_ok());
        // A problem in the second file names it and its line.
        let bad = "extend type Book { year: Int }\n\nextend type Author { name: String }";
        let e = Schema::from_sdl_files(&[("base.graphql", base), ("bad.graphql", bad)]).unwrap_err();
        assert!(e.starts_with("the GraphQL schema of 2 files (base.graphql, bad.graphql) is not valid:"), "{e}");
        assert!(e.contains("Author") && e.contains("(bad.graphql, line 3, column"), "{e}");
        // A type defined in two files: both places named.
        let e =
            Schema::from_sdl_files(&[("base.graphql", base), ("again.graphql", "type Book { id: ID! }")]).unwrap_err();
        assert!(e.contains("again.graphql, line 1"), "{e}");
    }

    #[test]
    fn closest_names() {
        let names = ["repository", "repositoryOwner", "viewer", "node"];
        assert_eq!(closest("repo", names)[0], "repository");
        assert_eq!(closest("repositry", names)[0], "repository");
        assert_eq!(closest("veiwer", names), vec!["viewer"]);
        assert!(closest("zzzzzz", names).is_empty());
    }
}
