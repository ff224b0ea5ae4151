//! Consistent answers: where a response keeps its resource, the request's
//! parameters reflected into it, and pagination that agrees with the items.
//!
//! A synthesised answer is plausible field by field but knows nothing of the
//! request: `GET /zones/{zone_id}/dns_records/{dns_record_id}` would name
//! another record, a list asked for 100 per page would say 20. These helpers
//! fix up a body after it is built, from the response schema's shape, so the
//! stateless and the stateful answers agree with what was asked.

use codemode_spec::{Graph, NodeId};
use serde_json::{Map, Value};

use crate::doc::{entries, get_str, items};

/// Property names an envelope keeps its payload under, most likely first
/// (Cloudflare's `result`, JSON:API's `data`, …).
const ENVELOPE: [&str; 7] = ["result", "data", "items", "results", "records", "entries", "values"];

/// Query parameters that page a list rather than filter it.
pub(crate) const PAGING: [&str; 10] =
    ["page", "per_page", "perPage", "page_size", "pageSize", "limit", "offset", "cursor", "order", "direction"];

/// Where a response body keeps its resource(s): the property path from the
/// body's root, and the schema of one item.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub path: Vec<String>,
    pub item: NodeId,
}

/// The properties of an object schema, through `allOf` (later ones last, so
/// a refinement of an envelope property comes after the envelope's own) and
/// the alternatives of `oneOf`/`anyOf` (a DNS record is one of many types,
/// all with `content`).
pub(crate) fn properties(g: &Graph, schema: NodeId) -> Vec<(&str, NodeId)> {
    let mut out = Vec::new();
    collect_properties(g, g.deref(schema), 0, &mut out);
    out
}

fn collect_properties<'g>(g: &'g Graph, schema: NodeId, depth: u8, out: &mut Vec<(&'g str, NodeId)>) {
    if depth > 4 {
        return;
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = g.get(schema, key) {
            for part in items(g, parts) {
                collect_properties(g, g.deref(*part), depth + 1, out);
            }
        }
    }
    if let Some(props) = g.get(schema, "properties") {
        out.extend(entries(g, props).iter().map(|(k, v)| (&**k, g.deref(*v))));
    }
}

/// The item schema when `schema` is an array.
fn array_items(g: &Graph, schema: NodeId) -> Option<NodeId> {
    let s = g.deref(schema);
    let items = g.get(s, "items")?;
    (get_str(g, s, "type").is_none_or(|t| t == "array")).then(|| g.deref(items))
}

/// Where a list response keeps its items: the body itself, or an envelope
/// property (the last declaration of it that is an array).
pub(crate) fn list_slot(g: &Graph, schema: NodeId) -> Option<Slot> {
    if let Some(item) = array_items(g, schema) {
        return Some(Slot { path: vec![], item });
    }
    let props = properties(g, schema);
    ENVELOPE.iter().find_map(|name| {
        props
            .iter()
            .rev()
            .filter(|(k, _)| k == name)
            .find_map(|(k, s)| array_items(g, *s).map(|item| Slot { path: vec![k.to_string()], item }))
    })
}

/// Where a single-resource response keeps it: an envelope property that is
/// not an array, else the body itself.
pub(crate) fn item_slot(g: &Graph, schema: NodeId) -> Slot {
    let props = properties(g, schema);
    for name in ["result", "data"] {
        if let Some((k, s)) = props.iter().rev().find(|(k, s)| *k == name && array_items(g, *s).is_none()) {
            return Slot { path: vec![k.to_string()], item: *s };
        }
    }
    Slot { path: vec![], item: g.deref(schema) }
}

/// The value at `path`, objects created on the way when missing.
pub(crate) fn at_mut<'v>(body: &'v mut Value, path: &[String]) -> &'v mut Value {
    let mut here = body;
    for key in path {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        here = here.as_object_mut().expect("made an object").entry(key.clone()).or_insert(Value::Null);
    }
    here
}

/// Writes the request's parameters into an item where it has (or its schema
/// declares) the matching field: `{zone_id}` into `zone_id`,
/// `{ruleset_phase}` into `phase`, and the last path parameter (the item's
/// own, `{dns_record_id}`) into `id` as well. The value keeps the field's
/// JSON type when the text allows it.
pub(crate) fn reflect(g: &Graph, item: &mut Value, schema: NodeId, params: &[(String, String)], own: Option<&str>) {
    let Value::Object(map) = item else { return };
    let declared = properties(g, schema);
    for (name, text) in params {
        let mut candidates = vec![name.as_str()];
        candidates.extend(name.match_indices('_').map(|(i, _)| &name[i + 1..]).filter(|s| !s.is_empty() && *s != "id"));
        if own == Some(name.as_str()) {
            candidates.push("id");
        }
        let Some(field) = candidates.into_iter().find(|c| map.contains_key(*c) || declared.iter().any(|(k, _)| k == c))
        else {
            continue;
        };
        // Every declaration of the field must allow the value (allOf parts
        // each add their own rules: a pattern may sit in any of them).
        if declared.iter().filter(|(k, _)| *k == field).any(|(_, s)| !fits(g, *s, text, 0)) {
            continue;
        }
        if let Some(v) = typed_like(map.get(field), text) {
            map.insert(field.to_string(), v);
        }
    }
}

/// Whether `text` can stand in a field of `schema`: its `enum`, `format:
/// uuid`, `pattern` and length bounds allow it (a reflected value must not
/// make a valid answer invalid).
fn fits(g: &Graph, schema: NodeId, text: &str, depth: u8) -> bool {
    let s = g.deref(schema);
    if depth < 4 {
        if let Some(parts) = g.get(s, "allOf") {
            if items(g, parts).iter().any(|part| !fits(g, *part, text, depth + 1)) {
                return false;
            }
        }
    }
    if let Some(values) = g.get(s, "enum") {
        if !items(g, values).iter().any(|v| g.as_str(*v) == Some(text)) {
            return false;
        }
    }
    if get_str(g, s, "format") == Some("uuid") {
        let hex = text.chars().filter(|c| *c != '-').count();
        if text.len() != 36 || hex != 32 || !text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let len = text.chars().count() as u64;
    if crate::doc::get_count(g, s, "maxLength").is_some_and(|m| len > m)
        || crate::doc::get_count(g, s, "minLength").is_some_and(|m| len < m)
    {
        return false;
    }
    match get_str(g, s, "pattern") {
        Some(p) => regex::Regex::new(p).map(|r| r.is_match(text)).unwrap_or(true),
        None => true,
    }
}

/// `text` as a value of the JSON type of `like` (a string when unknown);
/// `None` when the types cannot agree (an object field, a non-number).
fn typed_like(like: Option<&Value>, text: &str) -> Option<Value> {
    match like {
        Some(Value::Number(_)) => text
            .parse::<i64>()
            .ok()
            .map(Value::from)
            .or_else(|| text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)),
        Some(Value::Bool(_)) => text.parse::<bool>().ok().map(Value::Bool),
        Some(Value::Object(_)) | Some(Value::Array(_)) => None,
        _ => Some(Value::String(text.to_string())),
    }
}

/// A page of a list, as the request asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// 1-based page number.
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items skipped.
    pub offset: u64,
}

impl Page {
    /// From `page`/`per_page` (or `limit`, `page_size`) and `offset`/`cursor`
    /// (a cursor this mock handed out is the offset of the next item).
    /// `default_per_page` is the documented default, if any.
    pub fn of(query: &[(String, String)], default_per_page: Option<u64>) -> Page {
        let number = |names: &[&str]| {
            query.iter().find(|(k, _)| names.contains(&k.as_str())).and_then(|(_, v)| v.trim().parse::<u64>().ok())
        };
        let per_page = number(&["per_page", "perPage", "page_size", "pageSize", "limit"])
            .or(default_per_page)
            .unwrap_or(20)
            .max(1);
        let page = number(&["page"]).unwrap_or(1).max(1);
        let offset = number(&["offset", "cursor"]).unwrap_or((page - 1).saturating_mul(per_page));
        Page { page, per_page, offset }
    }
}

/// Makes the pagination metadata of a list answer agree with it: in the
/// body's objects (the root and its children) that look like pagination
/// (two or more of its field names), `page`, `per_page`, `count`,
/// `total_count`, `total_pages` and the next `cursor` are set to what was
/// returned. Only fields already there are touched.
pub(crate) fn fix_paging(body: &mut Value, page: Page, count: u64, total: u64) {
    let next = page.offset + count;
    let pages = total.div_ceil(page.per_page).max(1);
    let fix = |obj: &mut Map<String, Value>| {
        const META: [&str; 11] = [
            "page",
            "per_page",
            "count",
            "total_count",
            "total",
            "total_pages",
            "limit",
            "offset",
            "cursor",
            "next_cursor",
            "page_size",
        ];
        if obj.keys().filter(|k| META.contains(&k.as_str())).count() < 2 {
            return;
        }
        for (k, v) in obj.iter_mut() {
            let n = match k.as_str() {
                "page" => page.page,
                "per_page" | "limit" | "page_size" => page.per_page,
                "count" => count,
                "total_count" | "total" => total,
                "total_pages" => pages,
                "offset" => page.offset,
                "cursor" | "next_cursor" => {
                    *v = if next < total { Value::String(next.to_string()) } else { Value::String(String::new()) };
                    continue;
                }
                _ => continue,
            };
            *v = match v {
                Value::String(_) => Value::String(n.to_string()),
                _ => Value::from(n),
            };
        }
    };
    if let Value::Object(root) = body {
        fix(root);
        for child in root.values_mut() {
            if let Value::Object(o) = child {
                fix(o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn page_reads_page_per_page_limit_and_cursor() {
        assert_eq!(
            Page::of(&q(&[("per_page", "100"), ("page", "3")]), None),
            Page { page: 3, per_page: 100, offset: 200 }
        );
        assert_eq!(Page::of(&q(&[("limit", "5"), ("cursor", "15")]), None).offset, 15);
        assert_eq!(Page::of(&[], Some(100)), Page { page: 1, per_page: 100, offset: 0 });
        assert_eq!(Page::of(&q(&[("per_page", "0")]), None).per_page, 1);
    }

    #[test]
    fn paging_metadata_agrees_with_the_items() {
        let mut body =
            json!({"result": [1, 2], "result_info": {"page": 1, "per_page": 20, "count": 1, "total_count": 2000}});
        fix_paging(&mut body, Page { page: 1, per_page: 100, offset: 0 }, 2, 2);
        assert_eq!(body["result_info"], json!({"page": 1, "per_page": 100, "count": 2, "total_count": 2}));
        // One look-alike field is not pagination.
        let mut body = json!({"count": 7, "name": "x"});
        fix_paging(&mut body, Page { page: 1, per_page: 1, offset: 0 }, 1, 1);
        assert_eq!(body["count"], 7);
    }

    #[test]
    fn typed_like_keeps_the_field_type() {
        assert_eq!(typed_like(Some(&json!(3)), "42"), Some(json!(42)));
        assert_eq!(typed_like(Some(&json!(3)), "abc"), None);
        assert_eq!(typed_like(Some(&json!("a")), "42"), Some(json!("42")));
        assert_eq!(typed_like(Some(&json!({})), "42"), None);
    }
}
