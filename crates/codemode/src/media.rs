//! Images and audio in a call's result: which values leave as MCP `image`
//! and `audio` content blocks, and what the text shows in their place.
//!
//! The rule: a **media value** is either an MCP-shaped block
//! `{type: "image" | "audio", data: <base64>, mimeType}` (exactly those
//! keys — what portal mode hands the code for an upstream tool's image) or
//! bytes (`{"$bytes": <base64>}`, what a `Uint8Array` turns into, such as
//! the `data` of a binary response) whose first bytes say they are an
//! image or audio. Media values are looked for only in three places: the
//! result itself, the items of a result that is an array, and the values
//! of a result that is an object (so `return res` of a binary response
//! works). Each one becomes a content block after the text, and the text
//! shows `"[image 1: image/png, 2.1 KB]"` where it was.
//!
//! A value is attached only when it is what it says: `mimeType` is one of
//! [`IMAGE_TYPES`]/[`AUDIO_TYPES`] (no SVG, which is a document that can
//! carry script), `data` is valid base64, the decoded bytes start like that
//! type (a "PNG" must have the PNG signature), and it fits: all media of one
//! result together at most `[limits] binary_kib`, at most [`MAX_BLOCKS`]
//! blocks. Anything else is replaced by `"[image not attached: why]"` — the
//! data never reaches the text, so a bad block costs a few tokens, not
//! megabytes. Bytes that are not media stay as `{"$bytes": …}` in the text,
//! shortened like any long string.

use base64::Engine as _;
use serde_json::Value;

/// Most media blocks one result carries.
pub const MAX_BLOCKS: usize = 16;

/// Image types sent as image blocks (the ones models read).
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Audio types sent as audio blocks.
pub const AUDIO_TYPES: [&str; 4] = ["audio/wav", "audio/mpeg", "audio/ogg", "audio/flac"];

/// Image or audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An MCP `image` block.
    Image,
    /// An MCP `audio` block.
    Audio,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Audio => "audio",
        }
    }
}

/// One block to attach, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Media {
    /// Image or audio.
    pub kind: Kind,
    /// One of [`IMAGE_TYPES`] or [`AUDIO_TYPES`].
    pub mime_type: String,
    /// The bytes as canonical base64.
    pub data: String,
}

/// Takes the media values out of `result` (see the module docs), replacing
/// each with its placeholder; `budget` is the bytes all of them may have
/// together (`[limits] binary_kib`).
pub fn extract(result: &mut Value, budget: usize) -> Vec<Media> {
    let mut found = Found { media: vec![], left: budget, budget };
    if !found.take(result) {
        match result {
            Value::Array(items) => items.iter_mut().for_each(|v| {
                found.take(v);
            }),
            Value::Object(map) => map.values_mut().for_each(|v| {
                found.take(v);
            }),
            _ => {}
        }
    }
    found.media
}

struct Found {
    media: Vec<Media>,
    left: usize,
    budget: usize,
}

impl Found {
    /// Replaces `v` by its placeholder when it is a media value; true if it was.
    fn take(&mut self, v: &mut Value) -> bool {
        let Some(candidate) = candidate(v) else { return false };
        *v = Value::String(match self.check(candidate) {
            Ok(m) => {
                let text = format!("[{} {}: {}, {}]", m.kind.word(), self.media.len() + 1, m.mime_type, size(m.bytes));
                self.left -= m.bytes;
                self.media.push(Media { kind: m.kind, mime_type: m.mime_type, data: m.data });
                text
            }
            Err((kind, why)) => format!("[{} not attached: {why}]", kind.word()),
        });
        true
    }

    fn check(&self, c: Candidate<'_>) -> Result<Checked, (Kind, String)> {
        let kind = c.kind.unwrap_or(Kind::Image);
        if self.media.len() >= MAX_BLOCKS {
            return Err((kind, format!("a result carries at most {MAX_BLOCKS} images and audio clips")));
        }
        let over = |bytes: usize| {
            (
                kind,
                format!(
                    "{} is over the {} left of the {} a result may carry ([limits] binary_kib); return fewer or smaller ones",
                    size(bytes),
                    size(self.left),
                    size(self.budget)
                ),
            )
        };
        // Decoding is skipped when the text alone is too long.
        let at_least = c.data.len() / 4 * 3;
        if at_least.saturating_sub(2) > self.left {
            return Err(over(at_least));
        }
        let bytes = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        )
        .decode(c.data)
        .map_err(|_| (kind, "its data is not valid base64".to_string()))?;
        let sniffed = sniff(&bytes);
        let mime_type = match c.mime_type {
            Some(declared) => {
                let declared = canonical(declared, kind).ok_or_else(|| {
                    (
                        kind,
                        format!(
                            "`{}` is not a type sent as {} content (these are: {})",
                            declared.chars().take(60).collect::<String>(),
                            kind.word(),
                            match kind {
                                Kind::Image => IMAGE_TYPES.join(", "),
                                Kind::Audio => AUDIO_TYPES.join(", "),
                            }
                        ),
                    )
                })?;
                // MP3 without an ID3 tag starts with a frame sync: too weak a
                // signature to sniff unlabelled bytes by, enough for a label.
                let frame_sync = bytes.len() > 1 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0;
                if sniffed.map(|(_, m)| m) != Some(declared) && !(declared == "audio/mpeg" && frame_sync) {
                    return Err((kind, format!("its bytes are not {declared}")));
                }
                declared
            }
            None => sniffed.map(|(_, m)| m).ok_or((kind, "not media".to_string()))?,
        };
        // A declared type is of the declared kind and matched the bytes.
        let kind = sniffed.map_or(kind, |(k, _)| k);
        if bytes.len() > self.left {
            return Err(over(bytes.len()));
        }
        Ok(Checked {
            kind,
            mime_type: mime_type.to_string(),
            bytes: bytes.len(),
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        })
    }
}

struct Checked {
    kind: Kind,
    mime_type: String,
    bytes: usize,
    data: String,
}

/// What a value claims to be, before any check.
struct Candidate<'a> {
    /// Declared by an MCP-shaped block; `None` for bytes.
    kind: Option<Kind>,
    data: &'a str,
    mime_type: Option<&'a str>,
}

fn candidate(v: &Value) -> Option<Candidate<'_>> {
    let m = v.as_object()?;
    if m.len() == 1 {
        let data = m.get("$bytes")?.as_str()?;
        // Bytes are media only when they start like media.
        let head = base64::engine::general_purpose::STANDARD.decode(data.get(..16)?).ok()?;
        sniff(&head)?;
        return Some(Candidate { kind: None, data, mime_type: None });
    }
    if m.len() != 3 {
        return None;
    }
    let kind = match m.get("type")?.as_str()? {
        "image" => Kind::Image,
        "audio" => Kind::Audio,
        _ => return None,
    };
    Some(Candidate { kind: Some(kind), data: m.get("data")?.as_str()?, mime_type: Some(m.get("mimeType")?.as_str()?) })
}

/// The type a declared mime type stands for (`image/jpg` → `image/jpeg`,
/// parameters dropped); `None` for types not sent as this kind of media.
fn canonical(declared: &str, kind: Kind) -> Option<&'static str> {
    let base = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let base = match base.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/mp3" | "audio/mpeg3" => "audio/mpeg",
        "audio/x-flac" => "audio/flac",
        other => other,
    };
    let types: &[&'static str] = match kind {
        Kind::Image => &IMAGE_TYPES,
        Kind::Audio => &AUDIO_TYPES,
    };
    types.iter().find(|t| **t == base).copied()
}

/// The media type the bytes start like (file signatures).
fn sniff(b: &[u8]) -> Option<(Kind, &'static str)> {
    let at = |i: usize, sig: &[u8]| b.get(i..i + sig.len()) == Some(sig);
    Some(if at(0, b"\x89PNG\r\n\x1a\n") {
        (Kind::Image, "image/png")
    } else if at(0, b"\xff\xd8\xff") {
        (Kind::Image, "image/jpeg")
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        (Kind::Image, "image/gif")
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        (Kind::Image, "image/webp")
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        (Kind::Audio, "audio/wav")
    } else if at(0, b"ID3") {
        (Kind::Audio, "audio/mpeg")
    } else if at(0, b"OggS") {
        (Kind::Audio, "audio/ogg")
    } else if at(0, b"fLaC") {
        (Kind::Audio, "audio/flac")
    } else {
        return None;
    })
}

/// `512 B`, `2.1 KB`, `3.4 MB` (decimal, as clients show sizes).
fn size(bytes: usize) -> String {
    match bytes {
        b if b < 1000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} KB", b as f64 / 1000.0),
        b => format!("{:.1} MB", b as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn blocks_and_bytes_in_the_three_places_become_media() {
        let img = json!({"type": "image", "data": b64(PNG), "mimeType": "image/png"});
        let mut v = img.clone();
        let m = extract(&mut v, 1 << 20);
        assert_eq!(v, json!("[image 1: image/png, 16 B]"));
        assert_eq!(m, vec![Media { kind: Kind::Image, mime_type: "image/png".into(), data: b64(PNG) }]);

        let mut v = json!(["caption", img, {"$bytes": b64(b"RIFF\0\0\0\0WAVEfmt ")}]);
        let m = extract(&mut v, 1 << 20);
        assert_eq!(v, json!(["caption", "[image 1: image/png, 16 B]", "[audio 2: audio/wav, 16 B]"]));
        assert_eq!(m[1].kind, Kind::Audio);

        // `return res` of a binary response: {status, headers, data}.
        let mut v = json!({"status": 200, "data": {"$bytes": b64(PNG)}});
        assert_eq!(extract(&mut v, 1 << 20).len(), 1);
        assert_eq!(v["data"], "[image 1: image/png, 16 B]");

        // Deeper, or not media: left alone.
        let mut v = json!({"a": {"b": img}, "c": {"$bytes": b64(b"hello, world!!!!!")}});
        let before = v.clone();
        assert!(extract(&mut v, 1 << 20).is_empty());
        assert_eq!(v, before);
    }

    #[test]
    fn spoofed_blocks_are_not_attached_and_their_data_is_dropped() {
        let block = |data: &str, mime: &str| json!({"type": "image", "data": data, "mimeType": mime});
        let cases = [
            (block("not base64!!", "image/png"), "not valid base64"),
            (block(&b64(b"<html>hello</html>"), "image/png"), "its bytes are not image/png"),
            (block(&b64(b"<svg onload=alert(1)/>"), "image/svg+xml"), "is not a type sent as image"),
            (block(&b64(PNG), "text/html"), "is not a type sent as image"),
            (block(&b64(PNG), "image/jpeg"), "its bytes are not image/jpeg"),
            (json!({"type": "audio", "data": b64(PNG), "mimeType": "image/png"}), "is not a type sent as audio"),
        ];
        for (mut v, why) in cases {
            assert!(extract(&mut v, 1 << 20).is_empty());
            let text = v.as_str().unwrap();
            assert!(text.contains("not attached") && text.contains(why), "{text}");
        }
        // Over the cap: not decoded, not attached, named.
        let huge = b64(&[PNG, &vec![0u8; 300_000]].concat());
        let mut v = json!([block(&huge, "image/png"), block(&b64(PNG), "image/png")]);
        let m = extract(&mut v, 100_000);
        assert_eq!(m.len(), 1, "the small one still fits");
        assert!(v[0].as_str().unwrap().contains("[limits] binary_kib"), "{v}");
        assert_eq!(v[1], "[image 1: image/png, 16 B]");
    }

    #[test]
    fn at_most_max_blocks() {
        let img = json!({"type": "image", "data": b64(PNG), "mimeType": "image/png"});
        let mut v = Value::Array(vec![img; MAX_BLOCKS + 2]);
        assert_eq!(extract(&mut v, 1 << 20).len(), MAX_BLOCKS);
        assert!(v[MAX_BLOCKS].as_str().unwrap().contains("at most 16"));
    }

    #[test]
    fn sizes_read_like_a_client() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2100), "2.1 KB");
        assert_eq!(size(3_400_000), "3.4 MB");
    }
}
