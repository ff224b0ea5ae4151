//! Turning a `tools/call` result into the value the model's code receives.

use serde_json::{json, Map, Value};

/// What the code gets for a `CallToolResult` (as raw JSON):
/// - `isError: true` → `Err` with the text of the content as `message`;
/// - `structuredContent` when present;
/// - one text block → its JSON value when the text is JSON, else the text;
/// - several text blocks → an array of those values;
/// - anything else (images, audio, resources, links, mixed) → the list of
///   contents, text blocks as their values and the rest as objects
///   (`{type: "image", data, mimeType}`…);
/// - no content → `null`.
///
/// The `Err` value carries `message` (and `content` / `structuredContent`
/// when there is more than text); the caller adds `name`, `server`, `tool`.
pub(crate) fn unwrap(result: &Value) -> Result<Value, Map<String, Value>> {
    let Some(obj) = result.as_object() else {
        return Ok(result.clone());
    };
    let content: &[Value] = obj.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if obj.get("isError").and_then(Value::as_bool) == Some(true) {
        let texts: Vec<&str> = content.iter().filter_map(text_of).collect();
        let mut err = Map::new();
        let message = if texts.is_empty() { "the tool reported an error".to_string() } else { texts.join("\n") };
        err.insert("message".into(), Value::String(message));
        if texts.len() != content.len() {
            err.insert("content".into(), Value::Array(content.iter().map(simplify).collect()));
        }
        if let Some(sc) = obj.get("structuredContent").filter(|v| !v.is_null()) {
            err.insert("structuredContent".into(), sc.clone());
        }
        return Err(err);
    }
    if let Some(sc) = obj.get("structuredContent").filter(|v| !v.is_null()) {
        return Ok(sc.clone());
    }
    match content {
        [] => Ok(Value::Null),
        [one] if text_of(one).is_some() => Ok(parse_text(text_of(one).unwrap_or_default())),
        many if many.iter().all(|c| text_of(c).is_some()) => {
            Ok(Value::Array(many.iter().map(|c| parse_text(text_of(c).unwrap_or_default())).collect()))
        }
        mixed => Ok(Value::Array(mixed.iter().map(simplify).collect())),
    }
}

fn text_of(c: &Value) -> Option<&str> {
    if c.get("type").and_then(Value::as_str) == Some("text") {
        c.get("text").and_then(Value::as_str)
    } else {
        None
    }
}

/// JSON text → its value; anything else → the text.
fn parse_text(text: &str) -> Value {
    let t = text.trim();
    if t.starts_with(['{', '[', '"']) || t == "true" || t == "false" || t == "null" || t.parse::<f64>().is_ok() {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
    }
    Value::String(text.to_string())
}

/// A content block in a list: text becomes its value, others stay objects
/// without protocol noise (`annotations`, `_meta`).
fn simplify(c: &Value) -> Value {
    if let Some(t) = text_of(c) {
        return parse_text(t);
    }
    match c {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove("annotations");
            m.remove("_meta");
            Value::Object(m)
        }
        other => json!(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_like_cloudflare_codemode() {
        let text = |t: &str| json!({"type": "text", "text": t});
        assert_eq!(unwrap(&json!({"content": [text("{\"a\": 1}")]})), Ok(json!({"a": 1})));
        assert_eq!(unwrap(&json!({"content": [text("Echo: hi")]})), Ok(json!("Echo: hi")));
        assert_eq!(unwrap(&json!({"content": [text("42")]})), Ok(json!(42)));
        assert_eq!(unwrap(&json!({"content": [text("1"), text("x")]})), Ok(json!([1, "x"])));
        assert_eq!(unwrap(&json!({"content": [text("ignored")], "structuredContent": {"t": 2}})), Ok(json!({"t": 2})));
        assert_eq!(unwrap(&json!({"content": []})), Ok(Value::Null));
        let img = json!({"type": "image", "data": "AAA", "mimeType": "image/png", "annotations": {"priority": 1}});
        assert_eq!(
            unwrap(&json!({"content": [text("here"), img]})),
            Ok(json!(["here", {"type": "image", "data": "AAA", "mimeType": "image/png"}]))
        );
        let err = unwrap(&json!({"isError": true, "content": [text("bad thing")]})).unwrap_err();
        assert_eq!(err["message"], "bad thing");
        assert!(!err.contains_key("content"));
        let err = unwrap(&json!({"isError": true, "content": []})).unwrap_err();
        assert_eq!(err["message"], "the tool reported an error");
    }
}
