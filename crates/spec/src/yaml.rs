//! YAML straight into `serde_json::Value`, numbers of any size included.
//!
//! serde_norway's own `Value` refuses an integer beyond `u64` (DigitalOcean's
//! spec has `18446744073709552000`): the whole document failed to parse, and
//! a referenced file was dropped with it. This reader builds JSON values with
//! a visitor of its own, so such an integer is read like JSON reads it — the
//! nearest `f64` — when that `f64` reads back as the very literal (as it does
//! here: JavaScript prints `18446744073709552000`). Where no `f64` does, the
//! value is kept as the literal's text and listed in [`Parsed::kept_as_text`]
//! with its JSON pointer, so nothing is changed silently.
//!
//! Everything else reads as serde_norway's `Value` read it: non-string keys
//! (`200:`) become strings, tags (`!Ref x`) are dropped for their value,
//! duplicate keys are an error.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::source::escape_pointer_token;

/// A parsed YAML document.
#[derive(Debug)]
pub struct Parsed {
    /// The document as JSON.
    pub value: Value,
    /// Numbers no JSON number holds, kept as their literal text (a string).
    pub kept_as_text: Vec<KeptAsText>,
}

/// One number read as a string because no `f64` reads back as its literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptAsText {
    /// JSON pointer of the value in its document.
    pub pointer: String,
    /// The number as written (in decimal).
    pub literal: String,
}

/// Parses one YAML document (see the module documentation).
pub fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let state = State::default();
    let de = serde_norway::Deserializer::from_slice(bytes);
    let value = Reader { state: &state }.deserialize(de).map_err(|e| format!("invalid YAML: {e}"))?;
    Ok(Parsed { value, kept_as_text: state.kept.into_inner() })
}

/// One step of the path from the root to the value being read.
enum Step {
    Key(String),
    Index(usize),
}

/// What the visitors share: the current path (for pointers, built only when
/// a number is kept as text) and the numbers kept so far.
#[derive(Default)]
struct State {
    path: RefCell<Vec<Step>>,
    kept: RefCell<Vec<KeptAsText>>,
}

impl State {
    fn pointer(&self) -> String {
        let mut out = String::new();
        for step in self.path.borrow().iter() {
            out.push('/');
            match step {
                Step::Key(k) => out.push_str(&escape_pointer_token(k)),
                Step::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }

    /// An integer beyond `i64`/`u64`: its nearest `f64` when that prints as
    /// the same decimal literal, otherwise the literal as text (noted).
    fn big_integer(&self, literal: String, nearest: f64) -> Value {
        if let Some(n) = Number::from_f64(nearest).filter(|_| format!("{nearest}") == literal) {
            return Value::Number(n);
        }
        self.kept.borrow_mut().push(KeptAsText { pointer: self.pointer(), literal: literal.clone() });
        Value::String(literal)
    }
}

/// Reads one value (a [`DeserializeSeed`] so that it can carry the state).
#[derive(Clone, Copy)]
struct Reader<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for Reader<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::from(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::from(u))
    }

    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(match i64::try_from(i) {
            Ok(small) => Value::from(small),
            Err(_) => self.state.big_integer(i.to_string(), i as f64),
        })
    }

    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(match u64::try_from(u) {
            Ok(small) => Value::from(small),
            Err(_) => self.state.big_integer(u.to_string(), u as f64),
        })
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            // `.inf` and `.nan` have no JSON number: keep them as YAML wrote them.
            None => {
                let literal = if f.is_nan() {
                    ".nan"
                } else if f > 0.0 {
                    ".inf"
                } else {
                    "-.inf"
                };
                self.state
                    .kept
                    .borrow_mut()
                    .push(KeptAsText { pointer: self.state.pointer(), literal: literal.into() });
                Value::String(literal.into())
            }
        })
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            self.state.path.borrow_mut().push(Step::Index(items.len()));
            let item = seq.next_element_seed(self);
            self.state.path.borrow_mut().pop();
            match item? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeyReader)? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate entry with key \"{key}\"")));
            }
            // The key waits on the path while its value is read, then moves
            // into the map: no copy per entry.
            self.state.path.borrow_mut().push(Step::Key(key));
            let value = map.next_value_seed(self);
            let Some(Step::Key(key)) = self.state.path.borrow_mut().pop() else { unreachable!("pushed above") };
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }

    /// A tagged value (`!Tag value`): the value, as serde_norway's `Value` reads it.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        use de::VariantAccess;
        let (_tag, variant): (de::IgnoredAny, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// Reads a mapping key as a string (YAML reads `200:` as an integer).
struct KeyReader;

impl<'de> DeserializeSeed<'de> for KeyReader {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyReader {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null as a mapping key")
    }

    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".into())
    }

    fn visit_bool<E>(self, b: bool) -> Result<String, E> {
        Ok(b.to_string())
    }

    fn visit_i64<E>(self, i: i64) -> Result<String, E> {
        Ok(i.to_string())
    }

    fn visit_u64<E>(self, u: u64) -> Result<String, E> {
        Ok(u.to_string())
    }

    fn visit_i128<E>(self, i: i128) -> Result<String, E> {
        Ok(i.to_string())
    }

    fn visit_u128<E>(self, u: u128) -> Result<String, E> {
        Ok(u.to_string())
    }

    fn visit_f64<E>(self, f: f64) -> Result<String, E> {
        Ok(f.to_string())
    }

    fn visit_str<E>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }

    fn visit_string<E>(self, s: String) -> Result<String, E> {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_integer_beyond_u64_that_a_float_prints_back_is_a_number() {
        let p = parse(b"schema:\n  maximum: 18446744073709552000\n  minimum: -18446744073709552000\n").unwrap();
        assert_eq!(p.value["schema"]["maximum"].as_f64(), Some(18446744073709552000.0));
        assert_eq!(format!("{}", p.value["schema"]["maximum"].as_f64().unwrap()), "18446744073709552000");
        assert_eq!(p.value["schema"]["minimum"].as_f64(), Some(-18446744073709552000.0));
        assert!(p.kept_as_text.is_empty(), "{:?}", p.kept_as_text);
    }

    #[test]
    fn an_integer_no_float_holds_is_kept_as_its_literal() {
        let p = parse(b"a:\n  - {x: 1}\n  - {max/len: 99999999999999999999}\n").unwrap();
        assert_eq!(p.value["a"][1]["max/len"], json!("99999999999999999999"));
        assert_eq!(
            p.kept_as_text,
            vec![KeptAsText { pointer: "/a/1/max~1len".into(), literal: "99999999999999999999".into() }]
        );
    }

    #[test]
    fn reads_what_serde_norway_value_read() {
        let p = parse(b"200: {description: ok}\ntrue: 1\n~: 2\n1.5: 3\nt: !Tagged {x: [1, 2.5, null, yes, 'no']}\nbig: 12345\nneg: -7\n")
            .unwrap();
        assert_eq!(
            p.value,
            json!({"200": {"description": "ok"}, "true": 1, "null": 2, "1.5": 3, "t": {"x": [1, 2.5, null, "yes", "no"]}, "big": 12345, "neg": -7})
        );
        let inf = parse(b"m: .inf\n").unwrap();
        assert_eq!(inf.value["m"], json!(".inf"));
        assert_eq!(inf.kept_as_text[0].pointer, "/m");
    }

    #[test]
    fn duplicate_keys_and_bad_syntax_are_errors_that_say_where() {
        let err = parse(b"a: 1\na: 2\n").unwrap_err();
        assert!(err.contains("duplicate entry with key \"a\""), "{err}");
        let err = parse(b"a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
