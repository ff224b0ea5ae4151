//! `enum` (and `const enum`) as the JavaScript object TypeScript builds.
//!
//! An enum is the one construct with a value that has no JavaScript
//! spelling to keep, so it is rewritten — on its own lines: the rewrite of
//! each member starts on the member's line, and the closing `}` stays where
//! it was when the members fit on their lines (then nothing after the enum
//! moves; otherwise only the rest of the enum's last line shifts right).
//!
//! ```text
//! enum Color {          var Color; { const Color$ = Color || (Color = {}); let Red, Green;
//!   Red,                  Color$[Color$["Red"] = Red = 0] = "Red";
//!   Green = 4,            Color$[Color$["Green"] = Green = 4] = "Green";
//! }                     }
//! ```
//!
//! Members are also block-scoped variables, so a later initializer can name
//! an earlier member (`B = A << 1`) as TypeScript allows; numeric members get
//! the reverse mapping (`Color[4] === "Green"`), string members do not.

use oxc_ast::ast::{Expression, TSEnumDeclaration, TSEnumMemberName, UnaryOperator};
use oxc_span::GetSpan;

use crate::scan::is_line_terminator;
use crate::{Error, ErrorKind};

/// The JavaScript for `decl`, to replace `src[decl.span]`. `src` is the
/// source with the initializers' own TypeScript already blanked.
pub(crate) fn rewrite(src: &str, original: &str, decl: &TSEnumDeclaration<'_>) -> Result<String, Error> {
    let name = decl.id.name.as_str();
    let mut alias = format!("{name}$");
    while original.contains(alias.as_str()) {
        alias.push('$');
    }
    let locals: Vec<&str> = decl
        .body
        .members
        .iter()
        .filter_map(|m| match &m.id {
            TSEnumMemberName::Identifier(id) => Some(id.name.as_str()),
            _ => None,
        })
        .collect();

    let mut header = format!("var {name}; {{ const {alias} = {name} || ({name} = {{}});");
    if !locals.is_empty() {
        header.push_str(" let ");
        header.push_str(&locals.join(", "));
        header.push(';');
    }

    let mut out = Layout::default();
    let open = decl.body.span.start + 1;
    out.replace(&src[decl.span.start as usize..open as usize], &header);
    let mut at = open;
    let mut previous = Previous::None;
    for member in &decl.body.members {
        let (key, local) = match &member.id {
            TSEnumMemberName::Identifier(id) => (id.name.as_str(), Some(id.name.as_str())),
            TSEnumMemberName::String(s) | TSEnumMemberName::ComputedString(s) => (s.value.as_str(), None),
            TSEnumMemberName::ComputedTemplateString(t) => {
                (t.quasis.first().and_then(|q| q.value.cooked.as_ref()).map_or("", |c| c.as_str()), None)
            }
        };
        let k = js_string(key);
        let set_local = local.map(|l| format!("{l} = ")).unwrap_or_default();
        out.gap(&src[at as usize..member.span.start as usize]);
        match &member.initializer {
            None => {
                let value = match previous {
                    Previous::None => "0".to_string(),
                    Previous::Number(n) => format_number(n + 1.0),
                    Previous::Computed(ref prev) => format!("{alias}[{prev}] + 1"),
                    Previous::String => {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            member.span.start,
                            format!("enum member `{key}` needs an initializer: it follows a string member, so it cannot count on from a number (write `{key} = \"…\"` or `{key} = 1`)"),
                        ));
                    }
                };
                let text = format!("{alias}[{alias}[{k}] = {set_local}{value}] = {k};");
                out.replace(&src[member.span.start as usize..member.span.end as usize], &text);
                previous = match previous {
                    Previous::None => Previous::Number(0.0),
                    Previous::Number(n) => Previous::Number(n + 1.0),
                    _ => Previous::Computed(k),
                };
            }
            Some(init) => {
                let span = init.span();
                let kind = literal_kind(init);
                let (before, after) = match kind {
                    Literal::String => (format!("{alias}[{k}] = {set_local}"), ";".to_string()),
                    Literal::Number(_) => (format!("{alias}[{alias}[{k}] = {set_local}"), format!("] = {k};")),
                    Literal::Other => {
                        let local_copy = local.map(|l| format!(" {l} = {alias}[{k}];")).unwrap_or_default();
                        (
                            format!("{alias}[{k}] = ("),
                            format!(
                                "); if (typeof {alias}[{k}] !== \"string\") {alias}[{alias}[{k}]] = {k};{local_copy}"
                            ),
                        )
                    }
                };
                out.replace(&src[member.span.start as usize..span.start as usize], &before);
                out.keep(&src[span.start as usize..span.end as usize]);
                out.replace(&src[span.end as usize..member.span.end as usize], &after);
                previous = match kind {
                    Literal::String => Previous::String,
                    Literal::Number(n) => Previous::Number(n),
                    Literal::Other => Previous::Computed(k),
                };
            }
        }
        at = member.span.end;
    }
    let close = decl.body.span.end - 1;
    out.gap(&src[at as usize..close as usize]);
    out.replace(&src[close as usize..decl.span.end as usize], "}");
    Ok(out.text)
}

/// What the previous member's value is known to be.
enum Previous {
    None,
    Number(f64),
    String,
    /// Not known before run time: the next one reads it (`E$["A"] + 1`).
    Computed(String),
}

enum Literal {
    String,
    Number(f64),
    Other,
}

fn literal_kind(e: &Expression<'_>) -> Literal {
    match e.without_parentheses() {
        Expression::StringLiteral(_) => Literal::String,
        Expression::TemplateLiteral(t) if t.expressions.is_empty() => Literal::String,
        Expression::NumericLiteral(n) => Literal::Number(n.value),
        Expression::UnaryExpression(u) if u.operator == UnaryOperator::UnaryNegation => match &u.argument {
            Expression::NumericLiteral(n) => Literal::Number(-n.value),
            _ => Literal::Other,
        },
        _ => Literal::Other,
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `s` as a JavaScript string literal.
fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes a rewrite over original text, line by line: every line
/// terminator of the original is kept, and text that is longer than what it
/// replaces is paid back from the blanks that follow on the same line.
#[derive(Default)]
struct Layout {
    text: String,
    /// How far the output is ahead of the original on the current line.
    ahead: usize,
}

impl Layout {
    /// Original text that is dropped: spaces, line terminators kept.
    fn gap(&mut self, original: &str) {
        for c in original.chars() {
            if is_line_terminator(c) {
                self.text.push(c);
                self.ahead = 0;
            } else {
                for _ in 0..c.len_utf8() {
                    if self.ahead > 0 {
                        self.ahead -= 1;
                    } else {
                        self.text.push(' ');
                    }
                }
            }
        }
    }

    /// Original text kept as it is.
    fn keep(&mut self, original: &str) {
        self.text.push_str(original);
        if original.contains(is_line_terminator) {
            self.ahead = 0;
        }
    }

    /// `original` replaced by `text` (which has no line terminators).
    fn replace(&mut self, original: &str, text: &str) {
        self.text.push_str(text);
        match original.rfind(is_line_terminator) {
            None => {
                let ahead = self.ahead + text.len();
                if ahead >= original.len() {
                    self.ahead = ahead - original.len();
                } else {
                    self.text.extend(std::iter::repeat_n(' ', original.len() - ahead));
                    self.ahead = 0;
                }
            }
            Some(last) => {
                self.text.extend(original.chars().filter(|c| is_line_terminator(*c)));
                let tail = &original[last..];
                let tail_len = tail.len() - tail.chars().next().map_or(0, char::len_utf8);
                self.text.extend(std::iter::repeat_n(' ', tail_len));
                self.ahead = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_pays_back_from_the_blanks_that_follow() {
        let mut l = Layout::default();
        l.replace("ab", "abcd");
        l.gap("    x");
        assert_eq!(l.text, "abcd   ");
        l.gap("\n  ");
        l.replace("}", "}");
        assert_eq!(l.text, "abcd   \n  }");
    }

    #[test]
    fn strings_are_quoted_for_javascript() {
        assert_eq!(js_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
