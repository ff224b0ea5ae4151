//! Request bodies: JSON, text, bytes and forms, and the bytes each one
//! puts on the wire.
//!
//! Bytes cross the sandbox wall as JSON text like everything else: the
//! client bridge turns a `Uint8Array`/`ArrayBuffer` into `{"$bytes":
//! "<base64>"}` ([`BYTES_KEY`]), decoded here ([`bytes_of`]). A form is kept
//! as its fields until it is sent, so the pipeline's layers see names, text
//! values and file sizes rather than an encoded blob (DLP scans the text,
//! the audit counts the size, a dry run's plan shows the fields).

use std::hash::{Hash, Hasher};

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The key of the object the bridge sends for bytes: `{"$bytes": base64}`.
pub const BYTES_KEY: &str = "$bytes";

/// A request body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// No body.
    None,
    /// JSON (sent as `application/json` unless a content type is given).
    Json(Value, Option<String>),
    /// Raw text with its content type.
    Raw(String, String),
    /// Raw bytes with their content type, sent exactly as given.
    Bytes(Vec<u8>, String),
    /// A form: `application/x-www-form-urlencoded` or `multipart/form-data`.
    Form(Form),
}

/// A form body: its fields in order and how they are encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    /// How the fields are encoded.
    pub encoding: FormEncoding,
    /// The fields, in the order the code gave them (arrays repeat a name).
    pub fields: Vec<Field>,
}

/// The two form encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormEncoding {
    /// `application/x-www-form-urlencoded`: text fields only.
    UrlEncoded,
    /// `multipart/form-data`: text fields and files.
    Multipart,
}

/// One field of a form.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field's name (no control characters: checked when parsed).
    pub name: String,
    /// Its value.
    pub value: FieldValue,
}

/// A field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// A text value.
    Text(String),
    /// A file (multipart only).
    File(File),
}

/// A file in a multipart form.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The file name sent in `Content-Disposition` (no control characters).
    pub filename: String,
    /// The part's `Content-Type` (a checked header value).
    pub content_type: String,
    /// The file's bytes, sent exactly.
    pub data: Vec<u8>,
}

impl Body {
    /// The bytes sent and their `Content-Type`; `None` for no body.
    pub fn encode(&self) -> Option<(Vec<u8>, String)> {
        match self {
            Body::None => None,
            Body::Json(v, ct) => Some((
                serde_json::to_vec(v).expect("JSON value serialises"),
                ct.clone().unwrap_or_else(|| "application/json".into()),
            )),
            Body::Raw(s, ct) => Some((s.clone().into_bytes(), ct.clone())),
            Body::Bytes(b, ct) => Some((b.clone(), ct.clone())),
            Body::Form(form) => Some(form.encode()),
        }
    }

    /// The size of the body on the wire, in bytes (for the audit trail).
    pub fn encoded_len(&self) -> usize {
        match self {
            Body::None => 0,
            Body::Raw(s, _) => s.len(),
            Body::Bytes(b, _) => b.len(),
            _ => self.encode().map_or(0, |(b, _)| b.len()),
        }
    }

    /// The body as people are shown it (an approval question, a dry run's
    /// plan): JSON as is, text as a string, and bytes and files by size and
    /// type, never their content. `None` for no body.
    pub fn describe(&self) -> Option<Value> {
        match self {
            Body::None => None,
            Body::Json(v, _) => Some(v.clone()),
            Body::Raw(s, _) => Some(Value::String(s.clone())),
            Body::Bytes(b, ct) => Some(json!({"bytes": b.len(), "contentType": ct})),
            Body::Form(form) => {
                let mut m = Map::new();
                for f in &form.fields {
                    let v = match &f.value {
                        FieldValue::Text(t) => Value::String(t.clone()),
                        FieldValue::File(file) => json!({
                            "filename": file.filename, "contentType": file.content_type, "bytes": file.data.len()
                        }),
                    };
                    match m.get_mut(&f.name) {
                        Some(Value::Array(items)) => items.push(v),
                        Some(prev) => *prev = Value::Array(vec![prev.take(), v]),
                        None => {
                            m.insert(f.name.clone(), v);
                        }
                    }
                }
                Some(Value::Object(m))
            }
        }
    }

    /// The content type this body is sent with.
    pub fn content_type(&self) -> Option<String> {
        match self {
            Body::None => None,
            Body::Json(_, ct) => Some(ct.clone().unwrap_or_else(|| "application/json".into())),
            Body::Raw(_, ct) | Body::Bytes(_, ct) => Some(ct.clone()),
            Body::Form(f) => Some(match f.encoding {
                FormEncoding::UrlEncoded => "application/x-www-form-urlencoded".into(),
                FormEncoding::Multipart => "multipart/form-data".into(),
            }),
        }
    }
}

impl Form {
    /// The encoded form and its `Content-Type` (with the boundary for
    /// multipart).
    pub fn encode(&self) -> (Vec<u8>, String) {
        match self.encoding {
            FormEncoding::UrlEncoded => {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                for f in &self.fields {
                    if let FieldValue::Text(t) = &f.value {
                        s.append_pair(&f.name, t);
                    }
                }
                (s.finish().into_bytes(), "application/x-www-form-urlencoded".into())
            }
            FormEncoding::Multipart => {
                let boundary = self.boundary();
                let mut out = Vec::new();
                for f in &self.fields {
                    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    let name = quoted(&f.name);
                    match &f.value {
                        FieldValue::Text(t) => {
                            out.extend_from_slice(
                                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                            );
                            out.extend_from_slice(t.as_bytes());
                        }
                        FieldValue::File(file) => {
                            out.extend_from_slice(
                                format!(
                                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                                    quoted(&file.filename),
                                    file.content_type
                                )
                                .as_bytes(),
                            );
                            out.extend_from_slice(&file.data);
                        }
                    }
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                (out, format!("multipart/form-data; boundary={boundary}"))
            }
        }
    }

    /// A boundary that occurs in no value: derived from the content (so the
    /// same form always encodes the same way), and derived again in the
    /// unlikely case the content holds it. Names and file names cannot hold
    /// it (CR and LF are refused, and it only matters after `\r\n--`), but
    /// they are checked too.
    fn boundary(&self) -> String {
        for attempt in 0u32.. {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            attempt.hash(&mut h);
            self.fields.len().hash(&mut h);
            for f in &self.fields {
                f.name.hash(&mut h);
                match &f.value {
                    FieldValue::Text(t) => t.hash(&mut h),
                    FieldValue::File(file) => file.data.len().hash(&mut h),
                }
            }
            let boundary = format!("codemode-{:016x}{attempt:x}", h.finish());
            let needle = boundary.as_bytes();
            let inside = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
            let clash = self.fields.iter().any(|f| {
                inside(f.name.as_bytes())
                    || match &f.value {
                        FieldValue::Text(t) => inside(t.as_bytes()),
                        FieldValue::File(file) => inside(&file.data) || inside(file.filename.as_bytes()),
                    }
            });
            if !clash {
                return boundary;
            }
        }
        unreachable!("some attempt finds a boundary absent from finite content")
    }
}

/// A name or file name inside a quoted `Content-Disposition` parameter, the
/// way browsers send it (WHATWG): `"` as `%22`. CR, LF and other control
/// characters never get here (refused when the form is parsed).
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
}

/// The bytes of a `{"$bytes": base64}` object (as the bridge sends a
/// `Uint8Array` or `ArrayBuffer`): `None` when `v` is not one, `Err` when
/// its base64 is invalid.
pub fn bytes_of(v: &Value) -> Option<Result<Vec<u8>, String>> {
    let m = v.as_object()?;
    if m.len() != 1 {
        return None;
    }
    let b64 = m.get(BYTES_KEY)?.as_str()?;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the bytes are not valid base64 ({e})")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8]) -> Field {
        Field {
            name: name.into(),
            value: FieldValue::File(File {
                filename: "a \"b\".png".into(),
                content_type: "image/png".into(),
                data: data.to_vec(),
            }),
        }
    }

    #[test]
    fn multipart_is_byte_exact_and_quotes_names() {
        let form = Form {
            encoding: FormEncoding::Multipart,
            fields: vec![
                Field { name: "note".into(), value: FieldValue::Text("hi".into()) },
                file("f", b"\x89PNG\0\xff"),
            ],
        };
        let (bytes, ct) = form.encode();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let expected = [
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n").into_bytes(),
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a %22b%22.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes(),
            b"\x89PNG\0\xff\r\n".to_vec(),
            format!("--{boundary}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(bytes, expected);
        // Deterministic: the same form, the same bytes.
        assert_eq!(form.encode().0, bytes);
    }

    #[test]
    fn the_boundary_never_occurs_in_the_content() {
        // The hash covers a file's length, not its bytes: a file of the same
        // length holding the boundary the form would get must change it.
        let len = "\r\n--codemode-0123456789abcdef0".len();
        let mut form = Form { encoding: FormEncoding::Multipart, fields: vec![file("f", &vec![b'x'; len])] };
        let first = form.boundary();
        if let FieldValue::File(f) = &mut form.fields[0].value {
            f.data = format!("\r\n--{first}").into_bytes();
            assert_eq!(f.data.len(), len);
        }
        let second = form.boundary();
        assert_ne!(first, second);
        let (bytes, _) = form.encode();
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches(&format!("--{second}")).count(), 2, "{text}");
    }

    #[test]
    fn urlencoded_and_descriptions() {
        let form = Form {
            encoding: FormEncoding::UrlEncoded,
            fields: vec![
                Field { name: "a b".into(), value: FieldValue::Text("1&2".into()) },
                Field { name: "a b".into(), value: FieldValue::Text("é".into()) },
            ],
        };
        assert_eq!(form.encode().0, b"a+b=1%262&a+b=%C3%A9");
        assert_eq!(Body::Form(form).describe(), Some(json!({"a b": ["1&2", "é"]})));
        let b = Body::Form(Form { encoding: FormEncoding::Multipart, fields: vec![file("f", &[0; 10])] });
        assert_eq!(
            b.describe(),
            Some(json!({"f": {"filename": "a \"b\".png", "contentType": "image/png", "bytes": 10}}))
        );
        assert_eq!(Body::Bytes(vec![1, 2], "x/y".into()).describe(), Some(json!({"bytes": 2, "contentType": "x/y"})));
    }

    #[test]
    fn bytes_objects() {
        assert_eq!(bytes_of(&json!({"$bytes": "AAEC"})), Some(Ok(vec![0, 1, 2])));
        assert!(matches!(bytes_of(&json!({"$bytes": "!!"})), Some(Err(_))));
        assert_eq!(bytes_of(&json!({"$bytes": "AA==", "x": 1})), None);
        assert_eq!(bytes_of(&json!("AAEC")), None);
    }
}
