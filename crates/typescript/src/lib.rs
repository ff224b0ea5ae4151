//! TypeScript in, JavaScript out, with every position kept.
//!
//! Models write TypeScript (`async (): Promise<number> => { … }`); QuickJS
//! runs JavaScript. [`to_javascript`] parses the code with oxc as
//! TypeScript and overwrites the type-only syntax — annotations, type
//! parameters and arguments, `as`/`satisfies`/`!`, interfaces, type
//! aliases, `declare`, overloads, type-only imports, class member
//! modifiers — with spaces (like Bloomberg's ts-blank-space). Line
//! terminators stay, so every byte offset, line and column of the
//! JavaScript is the model's own: errors point into the code as written,
//! with no source map. An `enum` is rewritten into the object TypeScript
//! builds (see `enums`), within its own lines.
//!
//! Code without TypeScript syntax comes back borrowed, unchanged. Types are
//! removed, never checked.
//!
//! The parser is attack surface (it reads model code), so callers run this
//! behind the sandbox's process wall. It is recursive, so
//! [`to_javascript`] first bounds how deep it can go (see `budget`).

mod blank;
mod budget;
mod enums;
mod scan;

use std::borrow::Cow;

use oxc_allocator::Allocator;
use oxc_ast_visit::Visit;
use oxc_parser::{ParseOptions, Parser};
use oxc_span::SourceType;

/// Why code could not be turned into JavaScript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The message, written for the model: what, and what to write instead.
    pub message: String,
    /// Byte offset in the code where it went wrong.
    pub offset: u32,
    /// 1-based line of `offset` (lines end at `\n`, as QuickJS counts them).
    pub line: u32,
    /// 1-based column of `offset`, in bytes (as QuickJS counts them).
    pub column: u32,
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The code is neither JavaScript nor TypeScript oxc can parse.
    Syntax,
    /// TypeScript whose JavaScript needs code this crate does not write
    /// (`namespace` with values, parameter properties, `export =`…).
    Unsupported,
    /// The code could nest deeper than the parser's stack allows.
    TooLarge,
}

impl Error {
    fn new(kind: ErrorKind, offset: u32, message: String) -> Self {
        Error { kind, message, offset, line: 0, column: 0 }
    }

    /// Fills in `line` and `column` for `offset` in `code`.
    fn located(mut self, code: &str) -> Self {
        let before = &code.as_bytes()[..(self.offset as usize).min(code.len())];
        self.line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u32;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.column = (before.len() - line_start) as u32 + 1;
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {}, column {})", self.message, self.line, self.column)
    }
}

impl std::error::Error for Error {}

/// `code` as JavaScript: borrowed when it has no TypeScript syntax, else
/// with the types blanked out (same length and lines, except inside an
/// `enum`).
///
/// `code` is read as a script that may use top-level `await` and a
/// top-level `return` (the model's code is also run as a function body),
/// and, failing that, as a single expression (`{a: 1, b: 2}` is an object,
/// not a block).
pub fn to_javascript(code: &str) -> Result<Cow<'_, str>, Error> {
    budget::check(code).map_err(|e| e.located(code))?;
    let program = strip(code);
    let Err(program_error) = program else {
        return program.map(|js| js.map_or(Cow::Borrowed(code), Cow::Owned)).map_err(|e| e.located(code));
    };
    if program_error.kind != ErrorKind::Syntax {
        return Err(program_error.located(code));
    }
    let wrapped = format!("({code}\n)");
    match strip(&wrapped) {
        Ok(None) => Ok(Cow::Borrowed(code)),
        Ok(Some(js)) => Ok(Cow::Owned(js[1..js.len() - 2].to_string())),
        Err(e) if e.kind == ErrorKind::Syntax => {
            // Report the reading that got further: it is the likelier intent.
            let shifted = e.offset.saturating_sub(1).min(code.len() as u32);
            let e = Error { offset: shifted, ..e };
            Err(if e.offset > program_error.offset { e } else { program_error }.located(code))
        }
        Err(e) => Err(Error { offset: e.offset.saturating_sub(1), ..e }.located(code)),
    }
}

/// Parses `src` as TypeScript and blanks it: `None` if it has no TypeScript.
fn strip(src: &str) -> Result<Option<String>, Error> {
    let allocator = Allocator::default();
    let source_type = SourceType::ts().with_unambiguous(true);
    let options = ParseOptions { allow_return_outside_function: true, ..ParseOptions::default() };
    let parsed = Parser::new(&allocator, src, source_type).with_options(options).parse();
    if let Some(d) = parsed.diagnostics.first() {
        let label = d.labels.iter().find(|l| l.primary()).or(d.labels.first());
        let offset = label.map_or(0, |l| l.offset());
        let mut message = d.message.to_string();
        if let Some(help) = &d.help {
            message = format!("{message}; {help}");
        }
        return Err(Error::new(ErrorKind::Syntax, offset, message));
    }
    let mut blanker = blank::Blanker::new(src);
    blanker.visit_program(&parsed.program);
    blanker.finish()
}
