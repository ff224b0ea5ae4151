//! Finds what is wrong with a loaded spec, each problem with its file and JSON
//! pointer, so `codemode check` can list them all at once.

use serde_json::Value;

use crate::resolve::{lookup_pointer, split_reference};
use crate::source::{display_url, escape_pointer_token, Documents};
use crate::{Problem, ProblemKind};

/// Checks the shape of the root document and every `$ref` in every document.
pub fn check(docs: &Documents, problems: &mut Vec<Problem>) {
    let root_file = display_url(&docs.root);
    let root = docs.root_value();
    let mut push = |pointer: &str, message: String| {
        problems.push(Problem {
            kind: ProblemKind::Invalid,
            file: root_file.clone(),
            pointer: pointer.to_string(),
            message,
        })
    };
    match root {
        Value::Object(map) => {
            if !map.contains_key("openapi") && !map.contains_key("swagger") {
                push("", "not an OpenAPI document: there is no `openapi` (3.x) or `swagger` (2.0) field".into());
            }
            match map.get("paths") {
                None => push("", "the document has no `paths`: there is nothing to call".into()),
                Some(Value::Object(paths)) => {
                    for (path, item) in paths {
                        if !path.starts_with('/') {
                            push(
                                &format!("/paths/{}", escape_pointer_token(path)),
                                "path keys must start with `/`".into(),
                            );
                        }
                        if !item.is_object() {
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
        check_refs(docs, url, doc, &mut pointer, &file, problems);
    }
    problems.sort_by(|a, b| (&a.file, &a.pointer).cmp(&(&b.file, &b.pointer)));
}

fn check_refs(
    docs: &Documents,
    base: &url::Url,
    v: &Value,
    pointer: &mut String,
    file: &str,
    problems: &mut Vec<Problem>,
) {
    match v {
        Value::Object(map) => {
            // A non-string `$ref` is not a reference (for example a schema
            // property that happens to be named `$ref`).
            if let Some(Value::String(reference)) = map.get("$ref") {
                let bad = match split_reference(reference, base) {
                    Err(msg) => Some(msg),
                    // Reported once where the document was read, with its error.
                    Ok((url, _)) if docs.is_unreadable(&url) => None,
                    Ok((url, ptr)) => match docs.get(&url) {
                        None | Some(Value::Null) => {
                            Some(format!("the document {} could not be loaded", display_url(&url)))
                        }
                        Some(doc) if lookup_pointer(doc, &ptr).is_none() => {
                            Some(format!("nothing exists at `#{ptr}` in {}", display_url(&url)))
                        }
                        Some(_) => None,
                    },
                };
                if let Some(msg) = bad {
                    problems.push(Problem {
                        kind: ProblemKind::Invalid,
                        file: file.to_string(),
                        pointer: format!("{pointer}/$ref"),
                        message: format!("unresolvable reference `{reference}`: {msg}"),
                    });
                }
            }
            for (k, child) in map {
                if matches!(child, Value::Object(_) | Value::Array(_)) {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&escape_pointer_token(k));
                    check_refs(docs, base, child, pointer, file, problems);
                    pointer.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                if matches!(child, Value::Object(_) | Value::Array(_)) {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    check_refs(docs, base, child, pointer, file, problems);
                    pointer.truncate(len);
                }
            }
        }
        _ => {}
    }
}
