//! Arbitrary UTF-8 into the code normaliser (`strip_fence`, `candidates`,
//! `intended_form`), which sees the model's code before anything else.
//!
//! Invariants checked: the stripped code is a slice of the input, and the
//! number of lines `strip_fence` says it removed is exactly the number of
//! `\n` before that slice (so error line numbers point at the model's own
//! lines); without a fence nothing is removed; each candidate contains the code verbatim, with
//! exactly `line_offset` `\n` before it.
#![no_main]

// The module itself, compiled in: it has no dependencies, and this keeps
// QuickJS (the rest of codemode-sandbox) out of the fuzz build.
#[path = "../../crates/sandbox/src/normalize.rs"]
mod normalize;

use normalize::{candidates, intended_form, strip_fence, Form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else { return };
    let (body, skipped) = strip_fence(code);
    let start = offset_in(code, body).expect("strip_fence returns a slice of its input");
    assert_eq!(
        code[..start].matches('\n').count() as u32,
        skipped,
        "strip_fence({code:?}) = ({body:?}, {skipped}): wrong line count"
    );
    if !code.trim_start().starts_with("```") {
        assert_eq!((body, skipped), (code, 0), "no fence, yet something was stripped");
    }
    for c in candidates(body) {
        // `(CODE\n)`, `CODE`, `(async () => {\nCODE\n})`.
        let at = match c.form {
            Form::Expression => 1,
            Form::Script => 0,
            Form::Body => "(async () => {\n".len(),
        };
        assert_eq!(c.source.get(at..at + body.len()), Some(body), "{:?} does not hold the code", c.form);
        assert_eq!(c.source[..at].matches('\n').count() as u32, c.line_offset, "{:?}", c.form);
    }
    let _ = intended_form(body);
    let _ = intended_form(code);
});

/// Byte offset of `part` inside `whole`, when it is a subslice.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}
