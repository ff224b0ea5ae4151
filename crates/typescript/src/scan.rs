//! Small forward scans over the source between AST nodes.
//!
//! The AST keeps TypeScript modifiers (`private`, `readonly`, `abstract`…)
//! and a few punctuators (`?` of an optional parameter, `!` of a definite
//! assignment, the `implements` keyword) only as flags, not as spans; these
//! scans find them in the text between two spans the parser did record. They
//! only ever skip whitespace and comments, so they cannot be fooled into
//! reading inside a string.

/// Whether `c` ends a line in JavaScript (these are kept by blanking).
pub(crate) fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Whether `src[range]` contains a line terminator.
pub(crate) fn has_line_break(src: &str, start: u32, end: u32) -> bool {
    src.get(start as usize..end as usize).is_some_and(|s| s.chars().any(is_line_terminator))
}

/// The offset of the first character at or after `at` that is neither
/// whitespace nor inside a comment (`src.len()` at the end).
pub(crate) fn skip_trivia(src: &str, at: u32) -> u32 {
    let bytes = src.as_bytes();
    let mut i = at as usize;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                // To the line's end by characters: a comment may hold any
                // UTF-8, and a byte step would land inside a character.
                i += 2;
                i = src[i..].find(is_line_terminator).map_or(bytes.len(), |e| i + e);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = src[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
            }
            b if b.is_ascii_whitespace() => i += 1,
            b if b < 0x80 => break,
            _ => {
                // Non-ASCII: whitespace such as U+00A0 or U+2028, or the
                // start of an identifier.
                let c = src[i..].chars().next().unwrap_or('x');
                if !c.is_whitespace() && c != '\u{feff}' {
                    break;
                }
                i += c.len_utf8();
            }
        }
    }
    i as u32
}

/// The offset of `byte` if it is the next significant character at or
/// after `at`.
pub(crate) fn next_is(src: &str, at: u32, byte: u8) -> Option<u32> {
    let i = skip_trivia(src, at);
    (src.as_bytes().get(i as usize) == Some(&byte)).then_some(i)
}

/// The next significant byte at or after `at`, if any.
pub(crate) fn next_byte(src: &str, at: u32) -> Option<u8> {
    src.as_bytes().get(skip_trivia(src, at) as usize).copied()
}

/// The words (identifiers and keywords) from `start` up to `end`, in order,
/// as `(offset, word)`; the scan stops at the first token that is not a
/// word (`[`, `#`, `*`, a string…).
pub(crate) fn words(src: &str, start: u32, end: u32) -> Vec<(u32, &str)> {
    let mut out = Vec::new();
    let mut i = start;
    loop {
        i = skip_trivia(src, i);
        if i >= end {
            return out;
        }
        let rest = &src[i as usize..end as usize];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len());
        if len == 0 {
            return out;
        }
        out.push((i, &rest[..len]));
        i += len as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_comment_with_multibyte_characters_is_skipped_whole() {
        // Found by fuzz/typescript: `Ɲ//…` then `Ɲ` inside the comment
        // panicked on a byte index inside the character.
        let src = "a //`Ɲ é 😀\n b";
        assert_eq!(skip_trivia(src, 1), src.find('b').unwrap() as u32);
        let src = "x // Ɲ at the end";
        assert_eq!(skip_trivia(src, 1), src.len() as u32);
        let crash = "ew as|n as|as|\u{19d}//`s4e4ars=b as|as|=b s|as|=bw as|n as|as|\u{19d}//`s4e|as|=a((s|=";
        let _ = crate::to_javascript(crash);
    }

    #[test]
    fn trivia_is_whitespace_and_comments() {
        let src = "a /* x */ // y\n  ? b";
        assert_eq!(skip_trivia(src, 1), 17);
        assert_eq!(next_is(src, 1, b'?'), Some(17));
        assert_eq!(next_is(src, 1, b'!'), None);
        assert_eq!(skip_trivia("/* open", 0), 7);
    }

    #[test]
    fn words_stop_at_the_first_non_word() {
        let src = "private static /* c */ readonly [key]";
        let w: Vec<&str> = words(src, 0, src.len() as u32).into_iter().map(|(_, w)| w).collect();
        assert_eq!(w, ["private", "static", "readonly"]);
    }
}
