//! Arbitrary UTF-8 into the TypeScript stripper (`codemode-typescript`),
//! which parses model code inside the sandbox before QuickJS does.
//!
//! Invariants checked: it never panics (nor overflows its stack: the token
//! budget holds); code without TypeScript comes back borrowed, unchanged;
//! the output always has the input's line breaks, and — outside enums, the
//! one construct rewritten — the input's length, each byte either kept or
//! replaced by a space, or by the `;` / `)` that semicolon insertion needs.
#![no_main]

use std::borrow::Cow;

use codemode_typescript::to_javascript;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else { return };
    let Ok(out) = to_javascript(code) else { return };
    let out = match out {
        Cow::Borrowed(b) => {
            assert_eq!(b, code);
            return;
        }
        Cow::Owned(o) => o,
    };
    assert_eq!(out.matches('\n').count(), code.matches('\n').count(), "line breaks changed: {code:?} → {out:?}");
    if code.contains("enum") {
        return;
    }
    assert_eq!(out.len(), code.len(), "length changed: {code:?} → {out:?}");
    for (a, b) in code.bytes().zip(out.bytes()) {
        assert!(a == b || matches!(b, b' ' | b';' | b')'), "{a:?} became {b:?}: {code:?} → {out:?}");
    }
});
