//! Turning a call's outcome into tool-result text a model can use.
//!
//! A result over the token limit is never cut into invalid JSON: long arrays
//! keep their first items plus a marker saying how many were left out, long
//! strings are elided, wide objects keep their first keys — shrinking step by
//! step until the rendering fits — and a separate note says what was cut and
//! how to ask for less.

use std::sync::LazyLock;

use codemode_sandbox::{ErrorKind, JsValue, Outcome, ScriptError};

use crate::media::Media;
use serde_json::{Map, Value};
use tiktoken_rs::CoreBPE;

static O200K: LazyLock<CoreBPE> = LazyLock::new(|| tiktoken_rs::o200k_base().expect("o200k_base is embedded"));

/// Counts o200k_base tokens.
pub fn count_tokens(text: &str) -> usize {
    O200K.encode_ordinary(text).len()
}

/// Warms up the tokenizer (it takes a moment to build).
pub fn warm_up() {
    LazyLock::force(&O200K);
}

/// A rendered tool result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rendered {
    /// True for failures.
    pub is_error: bool,
    /// The main text: the result (valid JSON for non-strings) or the error.
    pub text: String,
    /// What was shortened, if anything.
    pub note: Option<String>,
    /// Console output, if any.
    pub console: Option<String>,
    /// A dry run's plan (see [`plan`]).
    pub plan: Option<String>,
    /// Images and audio taken out of the result, each shown in `text` by a
    /// placeholder (see [`crate::media`]).
    pub media: Vec<Media>,
}

/// Largest plan text before bodies are shortened.
const MAX_PLAN_BYTES: usize = 100_000;

/// A dry run's plan as its content block: a line saying what it is, then
/// the planned writes as a JSON array, in the order the code made them.
/// Bodies are shortened when the whole would be over 100 kB.
pub fn plan(writes: &[serde_json::Value]) -> String {
    let head = match writes.len() {
        0 => "Dry run: no writes were planned (reads were sent as usual).".to_string(),
        1 => "Dry run: 1 write was planned and not sent (reads were sent as usual):".to_string(),
        n => format!("Dry run: {n} writes were planned and not sent (reads were sent as usual):"),
    };
    let mut json = serde_json::to_string(writes).expect("JSON values serialise");
    if json.len() > MAX_PLAN_BYTES {
        let short: Vec<serde_json::Value> = writes
            .iter()
            .map(|w| {
                let mut w = w.clone();
                for key in ["body", "arguments"] {
                    if let Some(v) = w.get_mut(key) {
                        let text = v.to_string();
                        if text.len() > 1000 {
                            let mut end = 1000;
                            while !text.is_char_boundary(end) {
                                end -= 1;
                            }
                            *v = serde_json::Value::String(format!("{}… ({} bytes)", &text[..end], text.len()));
                        }
                    }
                }
                w
            })
            .collect();
        json = serde_json::to_string(&short).expect("JSON values serialise");
    }
    format!("{head}\n{json}")
}

/// What a rendering may hold.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Tokens of text for the result (the console gets a quarter of it).
    pub max_tokens: usize,
    /// The console limit, named when lines were dropped (KiB).
    pub console_kib: usize,
    /// Bytes of images and audio one result may carry (`[limits] binary_kib`).
    pub binary_bytes: usize,
}

/// Renders an outcome within `caps`: images and audio of the result become
/// [`Rendered::media`] (see [`crate::media`]) and the rest text, shortened
/// to the token cap.
pub fn render(outcome: &Outcome, caps: Caps) -> Rendered {
    let console = console_text(outcome, caps.max_tokens / 4, caps.console_kib);
    match &outcome.result {
        Ok(JsValue::Json(v)) => {
            let mut v = v.clone();
            let media = crate::media::extract(&mut v, caps.binary_bytes);
            let (text, note) = render_value(&JsValue::Json(v), caps.max_tokens);
            Rendered { text, note, console, media, ..Rendered::default() }
        }
        Ok(value) => {
            let (text, note) = render_value(value, caps.max_tokens);
            Rendered { text, note, console, ..Rendered::default() }
        }
        Err(e) => {
            Rendered { is_error: true, text: render_error(e, caps.max_tokens / 2), console, ..Rendered::default() }
        }
    }
}

/// The console block: the lines kept, then the note about lines dropped.
/// Over `max_tokens` the lines are cut from the end and the note is kept
/// whole: it is what says why output is missing and what to do.
fn console_text(outcome: &Outcome, max_tokens: usize, console_kib: usize) -> Option<String> {
    if outcome.console.is_empty() && outcome.console_dropped == 0 {
        return None;
    }
    let lines = format!("console output:\n{}", outcome.console.join("\n"));
    let mut note = (outcome.console_dropped > 0).then(|| format!(
        "[{} more console lines were dropped or cut: the console keeps {console_kib} KiB per call ([limits] console_kib). Log less — a count or a summary — or return the data instead of logging it]",
        outcome.console_dropped
    ));
    let note_tokens = note.as_deref().map_or(0, count_tokens);
    let lines = if count_tokens(&lines) + note_tokens > max_tokens {
        // The kept lines are over this block's share of the output limit.
        note.get_or_insert_with(|| {
            "[console output cut to fit the output limit ([limits] max_output_tokens). Log less — a count or a summary — or return the data instead of logging it]".to_string()
        });
        let budget = max_tokens.saturating_sub(note.as_deref().map_or(0, count_tokens));
        elide_text(&lines, budget)
    } else {
        lines
    };
    Some(match note {
        Some(note) => format!("{lines}\n{note}"),
        None => lines,
    })
}

/// Renders a value; returns the text and a note when it was shortened.
pub fn render_value(value: &JsValue, max_tokens: usize) -> (String, Option<String>) {
    match value {
        JsValue::Undefined => ("undefined (the code returned no value; `return` the data you need)".to_string(), None),
        JsValue::String(s) => {
            if fits(s, max_tokens) {
                return (s.clone(), None);
            }
            let total = count_tokens_capped(s);
            let cut = elide_text(s, max_tokens);
            let note = format!(
                "The result string (~{total} tokens) was shortened to its first {} characters to fit the {max_tokens}-token limit. Return only the part you need (filter, slice or summarise in your code).",
                cut.chars().count()
            );
            (cut, Some(note))
        }
        JsValue::Json(v) => {
            // Compact, never pretty: indentation costs about as many tokens
            // as the data (147 o200k tokens pretty, 79 compact for a typical
            // search result), and models read compact JSON as well.
            let compact = serde_json::to_string(v).expect("JSON value serialises");
            if fits(&compact, max_tokens) {
                return (compact, None);
            }
            let total = count_tokens_capped(&compact);
            for step in SHRINK_STEPS {
                let mut stats = Cut::default();
                let shrunk = shrink(v, &step, 0, &mut stats);
                let text = serde_json::to_string(&shrunk).expect("JSON value serialises");
                if fits(&text, max_tokens) {
                    return (text, Some(shrink_note(total, max_tokens, &step, &stats)));
                }
            }
            let text = serde_json::to_string(&shape_of(v, 0)).expect("JSON value serialises");
            let text =
                if fits(&text, max_tokens) { text } else { "\"[result too large to show even in outline]\"".into() };
            (
                text,
                Some(format!(
                    "The result (~{total} tokens) is far over the {max_tokens}-token limit; only its outline (types and sizes) is shown. Select fields and filter in your code, then return the small part you need."
                )),
            )
        }
    }
}

/// How much of each container and string to keep at one shrinking step.
struct Step {
    items: usize,
    keys: usize,
    chars: usize,
    depth: usize,
}

const SHRINK_STEPS: [Step; 7] = [
    Step { items: 50, keys: 60, chars: 1000, depth: 64 },
    Step { items: 20, keys: 40, chars: 300, depth: 64 },
    Step { items: 10, keys: 30, chars: 160, depth: 12 },
    Step { items: 5, keys: 20, chars: 100, depth: 8 },
    Step { items: 3, keys: 12, chars: 60, depth: 6 },
    Step { items: 2, keys: 8, chars: 40, depth: 4 },
    Step { items: 1, keys: 5, chars: 30, depth: 3 },
];

#[derive(Default)]
struct Cut {
    items: usize,
    arrays: usize,
    keys: usize,
    strings: usize,
    deep: usize,
}

fn shrink(v: &Value, step: &Step, depth: usize, cut: &mut Cut) -> Value {
    match v {
        Value::String(s) if s.chars().count() > step.chars => {
            cut.strings += 1;
            let kept: String = s.chars().take(step.chars).collect();
            Value::String(format!("{kept}… [+{} chars]", s.chars().count() - step.chars))
        }
        Value::Array(items) => {
            if depth >= step.depth && !items.is_empty() {
                cut.deep += 1;
                return Value::String(format!("[array of {} items omitted: too deep]", items.len()));
            }
            let mut out: Vec<Value> = items.iter().take(step.items).map(|x| shrink(x, step, depth + 1, cut)).collect();
            if items.len() > step.items {
                cut.arrays += 1;
                cut.items += items.len() - step.items;
                out.push(Value::String(format!("[… {} more items]", items.len() - step.items)));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            if depth >= step.depth && !map.is_empty() {
                cut.deep += 1;
                return Value::String(format!("[object with {} keys omitted: too deep]", map.len()));
            }
            let mut out = Map::new();
            for (k, x) in map.iter().take(step.keys) {
                out.insert(k.clone(), shrink(x, step, depth + 1, cut));
            }
            if map.len() > step.keys {
                cut.keys += map.len() - step.keys;
                out.insert("…".into(), Value::String(format!("{} more keys", map.len() - step.keys)));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `1 array was`, `2 arrays were`: the note is read by people and models alike.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn shrink_note(total: usize, max: usize, step: &Step, cut: &Cut) -> String {
    let mut parts = Vec::new();
    if cut.arrays > 0 {
        parts.push(format!(
            "{} cut to their first {} items ({} left out)",
            counted(cut.arrays, "array was", "arrays were"),
            step.items,
            counted(cut.items, "item", "items")
        ));
    }
    if cut.keys > 0 {
        parts.push(format!(
            "objects were cut to their first {} keys ({} left out)",
            step.keys,
            counted(cut.keys, "key", "keys")
        ));
    }
    if cut.strings > 0 {
        parts.push(format!("{} cut to {} characters", counted(cut.strings, "string was", "strings were"), step.chars));
    }
    if cut.deep > 0 {
        parts.push(format!(
            "{} nested deeper than {} levels {} left out",
            counted(cut.deep, "value", "values"),
            step.depth,
            if cut.deep == 1 { "was" } else { "were" }
        ));
    }
    format!(
        "The result (~{total} tokens) was shortened to fit the {max}-token limit: {}. Markers in the JSON show where. To see everything, return less: filter, select fields (e.g. `.map(x => ({{id: x.id, name: x.name}}))`) or paginate with `.slice(start, end)`.",
        parts.join("; ")
    )
}

/// The outline of a value: types and sizes only.
fn shape_of(v: &Value, depth: usize) -> Value {
    match v {
        Value::Array(items) => {
            let first = items.first().map(|x| shape_of(x, depth + 1)).filter(|_| depth < 3);
            serde_json::json!({"array": items.len(), "first": first})
        }
        Value::Object(map) if depth < 2 => {
            Value::Object(map.iter().take(30).map(|(k, x)| (k.clone(), shape_of(x, depth + 1))).collect())
        }
        Value::Object(map) => Value::String(format!("object({} keys)", map.len())),
        Value::String(s) => Value::String(format!("string({} chars)", s.chars().count())),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("boolean".into()),
        Value::Null => Value::Null,
    }
}

/// Cheap upper-bound check first (a token is at least one byte), then a count.
fn fits(text: &str, max_tokens: usize) -> bool {
    if text.len() <= max_tokens {
        return true;
    }
    // JSON and prose average 3–5 bytes per token; anything over 16 bytes per
    // allowed token will not fit, and counting megabytes is slow.
    if text.len() > max_tokens * 16 {
        return false;
    }
    count_tokens(text) <= max_tokens
}

fn count_tokens_capped(text: &str) -> usize {
    if text.len() > 2_000_000 {
        text.len() / 4
    } else {
        count_tokens(text)
    }
}

/// Keeps the start of `text` within `max_tokens`, marking the cut.
fn elide_text(text: &str, max_tokens: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0usize, chars.len().min(max_tokens * 8));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect();
        if count_tokens(&candidate) + 16 <= max_tokens {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept: String = chars[..lo].iter().collect();
    format!("{kept}… [+{} chars]", chars.len() - lo)
}

fn render_error(e: &ScriptError, max_tokens: usize) -> String {
    let mut text = format!("{}: {}", e.name, e.message);
    if let (Some(l), Some(c)) = (e.line, e.column) {
        text = format!("{} at line {l}, column {c} of your code: {}", e.name, e.message);
    }
    let hint = match e.kind {
        ErrorKind::Timeout => Some("(time limit)"),
        ErrorKind::OutOfMemory => Some("(memory limit)"),
        ErrorKind::StackOverflow => Some("(stack limit)"),
        _ => None,
    };
    if let Some(h) = hint {
        text.push(' ');
        text.push_str(h);
    }
    if let Some(details) = &e.details {
        let (rendered, _) = render_value(&JsValue::Json(details.clone()), max_tokens / 2);
        text.push_str(&format!("\nerror fields: {rendered}"));
    }
    if e.kind == ErrorKind::Runtime {
        if let Some(stack) = &e.stack {
            let frames: Vec<&str> = stack.lines().filter(|l| l.contains("line ")).take(5).collect();
            if !frames.is_empty() {
                text.push_str(&format!("\nstack:\n{}", frames.join("\n")));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_compact_json_and_strings_pass_through() {
        assert_eq!(render_value(&JsValue::Json(json!({"a": 1, "b": [1, 2]})), 100).0, r#"{"a":1,"b":[1,2]}"#);
        assert_eq!(render_value(&JsValue::String("plain".into()), 100).0, "plain");
        assert!(render_value(&JsValue::Undefined, 100).0.starts_with("undefined"));
    }

    fn caps(max_tokens: usize) -> Caps {
        Caps { max_tokens, console_kib: 16, binary_bytes: 4096 * 1024 }
    }

    fn with_console(lines: usize, dropped: usize) -> Outcome {
        Outcome {
            result: Ok(JsValue::Undefined),
            console: (0..lines).map(|i| format!("row {i}: {{\"id\": {i}, \"title\": \"a book\"}}")).collect(),
            console_dropped: dropped,
            host_calls: 0,
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn console_over_its_share_keeps_the_note() {
        // 16 KiB of lines kept, more dropped, over a 1,500-token output cap.
        let text = render(&with_console(500, 1500), caps(1500)).console.unwrap();
        assert!(count_tokens(&text) <= 1500 / 4, "{} tokens", count_tokens(&text));
        assert!(text.starts_with("console output:\nrow 0: "), "{text}");
        assert!(text.contains("chars]\n[1500 more console lines were dropped"), "{text}");
        assert!(text.ends_with("or return the data instead of logging it]") && text.contains("console_kib"), "{text}");
        // Cut by the token share alone: a note says so.
        let text = render(&with_console(500, 0), caps(1500)).console.unwrap();
        assert!(text.contains("max_output_tokens") && text.contains("Log less"), "{text}");
        // What fits is left whole, with no note.
        assert_eq!(render(&with_console(2, 0), caps(1500)).console.unwrap().lines().count(), 3);
    }

    #[test]
    fn big_results_stay_valid_json_and_say_what_was_cut() {
        let big: Vec<Value> =
            (0..5000).map(|i| json!({"id": i, "name": format!("item number {i}"), "tags": ["a", "b"]})).collect();
        let (text, note) = render_value(&JsValue::Json(Value::Array(big)), 1000);
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        assert!(count_tokens(&text) <= 1000);
        let arr = parsed.as_array().unwrap();
        assert_eq!(arr[0]["id"], 0);
        assert!(arr.last().unwrap().as_str().unwrap().contains("more items"));
        let note = note.unwrap();
        assert!(note.contains("items left out") && note.contains("1000-token limit"), "{note}");
        assert!(note.starts_with("The result") && note.contains("1 array was cut"), "{note}");
    }

    #[test]
    fn long_strings_are_elided() {
        let v = json!({"blob": "x ".repeat(50_000)});
        let (text, note) = render_value(&JsValue::Json(v), 500);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert!(parsed["blob"].as_str().unwrap().contains("chars]"));
        assert!(note.unwrap().contains("1 string was cut"));
        let (text, note) = render_value(&JsValue::String("word ".repeat(10_000)), 200);
        assert!(count_tokens(&text) <= 200);
        assert!(note.is_some());
    }
}
