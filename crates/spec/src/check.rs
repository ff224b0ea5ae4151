//! Finds what is wrong with a loaded spec, each problem with its file and JSON
//! pointer, so `codemode check` can list them all at once.

use crate::graph::{Graph, Node, NodeId};
use crate::resolve::{lookup_pointer, split_reference, RefBits};
use crate::source::{display_url, escape_pointer_token, ref_string, Documents};
use crate::{Problem, ProblemKind};

/// Checks the shape of the root document and every `$ref` in every document.
pub fn check(docs: &Documents, problems: &mut Vec<Problem>) {
    let root_file = display_url(&docs.root);
    let g = docs.graph();
    let root = docs.root_node();
    let mut push = |pointer: &str, message: String| {
        problems.push(Problem {
            kind: ProblemKind::Invalid,
            file: root_file.clone(),
            pointer: pointer.to_string(),
            message,
        })
    };
    let get = |id: NodeId, key: &str| match g.node(id) {
        Node::Object(entries) => entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| *v),
        _ => None,
    };
    match g.node(root) {
        Node::Object(_) => {
            if get(root, "openapi").is_none() && get(root, "swagger").is_none() {
                push("", "not an OpenAPI document: there is no `openapi` (3.x) or `swagger` (2.0) field".into());
            }
            match get(root, "paths").map(|p| (p, g.node(p))) {
                None => push("", "the document has no `paths`: there is nothing to call".into()),
                Some((_, Node::Object(paths))) => {
                    for (path, item) in paths.iter() {
                        if !path.starts_with('/') {
                            push(
                                &format!("/paths/{}", escape_pointer_token(path)),
                                "path keys must start with `/`".into(),
                            );
                        }
                        if !matches!(g.node(*item), Node::Object(_)) {
                            push(
                                &format!("/paths/{}", escape_pointer_token(path)),
                                "a path item must be an object".into(),
                            );
                        }
                    }
                }
                Some(_) => push("/paths", "`paths` must be an object".into()),
            }
        }
        _ => push("", "the document is not a JSON/YAML object".into()),
    }
    for (url, doc) in docs.iter() {
        let file = display_url(url);
        let mut pointer = String::new();
        let walk = Walk { docs, g, bits: &docs.bits, base: url, file: &file };
        walk.check_refs(doc, &mut pointer, problems);
    }
    problems.sort_by(|a, b| (&a.file, &a.pointer).cmp(&(&b.file, &b.pointer)));
}

/// One document's walk for broken references.
struct Walk<'a> {
    docs: &'a Documents,
    g: &'a Graph,
    bits: &'a RefBits,
    base: &'a url::Url,
    file: &'a str,
}

impl Walk<'_> {
    /// Every `$ref` at or below `v`, in every place it is written (only
    /// subtrees that hold one are walked).
    fn check_refs(&self, v: NodeId, pointer: &mut String, problems: &mut Vec<Problem>) {
        if !self.bits.below(v) {
            return;
        }
        let g = self.g;
        match g.node(v) {
            Node::Object(entries) => {
                if let Some(reference) = ref_string(g, entries) {
                    let bad = match split_reference(reference, self.base) {
                        Err(msg) => Some(msg),
                        // Reported once where the document was read, with its error.
                        Ok((url, _)) if self.docs.is_unreadable(&url) => None,
                        Ok((url, ptr)) => match self.docs.get(&url) {
                            None => Some(format!("the document {} could not be loaded", display_url(&url))),
                            Some(doc) if matches!(g.node(doc), Node::Null) => {
                                Some(format!("the document {} could not be loaded", display_url(&url)))
                            }
                            Some(doc) if lookup_pointer(g, doc, &ptr).is_none() => {
                                Some(format!("nothing exists at `#{ptr}` in {}", display_url(&url)))
                            }
                            Some(_) => None,
                        },
                    };
                    if let Some(msg) = bad {
                        problems.push(Problem {
                            kind: ProblemKind::Invalid,
                            file: self.file.to_string(),
                            pointer: format!("{pointer}/$ref"),
                            message: format!("unresolvable reference `{reference}`: {msg}"),
                        });
                    }
                }
                for (k, child) in entries.iter() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&escape_pointer_token(k));
                    self.check_refs(*child, pointer, problems);
                    pointer.truncate(len);
                }
            }
            Node::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    self.check_refs(*child, pointer, problems);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
}
