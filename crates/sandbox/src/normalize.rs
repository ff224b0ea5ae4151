//! Turning what a model sends into something we can run.
//!
//! Models are asked for "an async arrow function", and mostly send one — but
//! also markdown fences, bare expressions, or plain statements ending in
//! `return`. [`candidates`] lists the ways to read the code, in order; the
//! engine runs the first one that parses.

/// One way to read the model's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// How the source is run.
    pub form: Form,
    /// The JavaScript source to evaluate.
    pub source: String,
    /// Lines the wrapper adds before the model's first line (subtract from
    /// reported line numbers).
    pub line_offset: u32,
}

/// The forms we try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `(CODE)`: a function (called with no arguments) or any other value
    /// (awaited).
    Expression,
    /// A script with top-level `await`, whose completion value is the result:
    /// `const r = await api.request("GET /x"); r.data`. A function there is
    /// called, as in [`Form::Expression`]: `async () => {…};` (a trailing
    /// `;`), or helpers declared before the arrow to run.
    Script,
    /// `(async () => { CODE })`: statements with `return`.
    Body,
}

/// Strips one surrounding markdown fence (```js … ```), returning the code and
/// the number of lines removed from its start.
pub fn strip_fence(code: &str) -> (&str, u32) {
    let trimmed = code.trim();
    if let Some(rest) = trimmed.strip_prefix("```") {
        if let Some(newline) = rest.find('\n') {
            let body = &rest[newline + 1..];
            let body = body.trim_end();
            let body = body.strip_suffix("```").unwrap_or(body);
            let leading = code[..code.len() - code.trim_start().len()].matches('\n').count() as u32;
            return (body, leading + 1);
        }
    }
    (code, 0)
}

/// The ways to read `code` (already fence-stripped), most likely first.
pub fn candidates(code: &str) -> [Candidate; 3] {
    [
        Candidate { form: Form::Expression, source: format!("({code}\n)"), line_offset: 0 },
        Candidate { form: Form::Script, source: code.to_string(), line_offset: 0 },
        Candidate { form: Form::Body, source: format!("(async () => {{\n{code}\n}})"), line_offset: 1 },
    ]
}

/// Which form's syntax error to show when none parses: the one the code
/// looks like it was meant as.
pub fn intended_form(code: &str) -> Form {
    let t = code.trim_start();
    if t.starts_with("async") || t.starts_with("function") || t.starts_with('(') {
        Form::Expression
    } else {
        Form::Body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_are_stripped_with_their_line() {
        let (code, skipped) = strip_fence("```javascript\nasync () => 1\n```");
        assert_eq!(code, "async () => 1\n");
        assert_eq!(skipped, 1);
        let (code, skipped) = strip_fence("\n```js\nx\n```\n");
        assert_eq!(code, "x\n");
        assert_eq!(skipped, 2);
        assert_eq!(strip_fence("async () => 1"), ("async () => 1", 0));
    }

    #[test]
    fn intended_form_follows_the_shape() {
        assert_eq!(intended_form("async () => {"), Form::Expression);
        assert_eq!(intended_form("const x = 1; return x"), Form::Body);
    }
}
