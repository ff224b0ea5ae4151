//! How deep the parser may go: a bound checked before parsing.
//!
//! oxc's parser is recursive descent with no depth limit of its own: nested
//! brackets, unary operators, conditional chains, arrow chains or generic
//! types each take stack, and a stack overflow kills the process. Every
//! level of nesting consumes at least one token, so the number of tokens
//! bounds the depth whatever the code is — no lexer needed, nothing a
//! hostile input can hide from (a string or a regex only adds to the
//! count). [`MAX_TOKENS`] is chosen so that the deepest nesting that many
//! tokens can build fits in [`STACK_BYTES`] (measured by the tests below,
//! on threads with exactly that stack); both the worker process's main
//! thread (8 MiB) and the in-process sandbox threads (the JavaScript stack
//! plus 8 MiB) have more. Nested parentheses cost the most: about 1.4 KiB
//! of stack per level in a release build (a 4 MiB stack overflowed at 3,000
//! levels), so 8,000 tokens (≈ 25–30 KB of ordinary TypeScript) is the
//! budget; longer code is run as JavaScript only.

use crate::{Error, ErrorKind};

/// The stack the parser may use.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const STACK_BYTES: usize = 6 << 20;

/// The most tokens code may have to be read as TypeScript.
pub(crate) const MAX_TOKENS: usize = 8_000;

/// Refuses code whose token count could nest past the stack.
pub(crate) fn check(code: &str) -> Result<(), Error> {
    let tokens = upper_bound_of_tokens(code);
    if tokens > MAX_TOKENS {
        return Err(Error::new(
            ErrorKind::TooLarge,
            0,
            format!(
                "the code is too large to be read as TypeScript (about {tokens} tokens; the limit is {MAX_TOKENS}); send less code, or plain JavaScript"
            ),
        ));
    }
    Ok(())
}

/// At least the number of tokens oxc sees in `code`: each run of ASCII
/// word characters counts once, every other byte that is not ASCII
/// whitespace counts once (so `!=` counts twice and each byte of a
/// non-ASCII character once — more, never fewer).
pub(crate) fn upper_bound_of_tokens(code: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for b in code.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' {
            if !in_word {
                count += 1;
                in_word = true;
            }
        } else {
            in_word = false;
            if !b.is_ascii_whitespace() {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_counted_from_above() {
        assert_eq!(upper_bound_of_tokens("const x = 1;"), 5);
        assert_eq!(upper_bound_of_tokens("a!==b"), 5);
        // U+3000 is whitespace to JavaScript: the words on either side still
        // count separately.
        assert_eq!(upper_bound_of_tokens("typeof\u{3000}typeof x"), 6);
    }

    #[test]
    fn too_many_tokens_is_a_clean_error() {
        let e = check(&"!".repeat(MAX_TOKENS + 1)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert!(e.message.contains("plain JavaScript"), "{e:?}");
        assert!(check(&"!".repeat(MAX_TOKENS)).is_ok());
    }

    /// The deepest nestings [`MAX_TOKENS`] tokens can build, each parsed (and
    /// blanked) on a thread with exactly [`STACK_BYTES`] of stack: a stack
    /// overflow here aborts the test run.
    #[test]
    fn the_deepest_code_within_the_budget_fits_the_stack() {
        if cfg!(debug_assertions) {
            // Unoptimised frames are several times larger; the budget is
            // for the release build the binary ships as.
            return;
        }
        let n = MAX_TOKENS - 16;
        let cases: Vec<(&str, String)> = vec![
            ("parentheses", format!("{}x{}", "(".repeat(n / 2), ")".repeat(n / 2))),
            ("arrays", format!("{}{}", "[".repeat(n / 2), "]".repeat(n / 2))),
            ("objects", format!("x = {}1{}", "{a:".repeat(n / 4), "}".repeat(n / 4))),
            ("blocks", format!("{}{}", "{".repeat(n / 2), "}".repeat(n / 2))),
            ("not", format!("{}x", "!".repeat(n - 1))),
            ("minus", format!("{}x", "- ".repeat(n - 1))),
            ("typeof", format!("{}x", "typeof ".repeat(n - 1))),
            ("await", format!("{}x", "await ".repeat(n - 1))),
            ("conditional", format!("{}x", "a?b:".repeat(n / 4))),
            ("assignment", format!("{}x", "a=".repeat(n / 2))),
            ("arrows", format!("{}x", "a=>".repeat(n / 3))),
            ("if", format!("{}x", "if(a)".repeat(n / 4))),
            ("generic types", format!("let x: {}T{};", "A<".repeat(n / 3 - 2), ">".repeat(n / 3 - 2))),
            ("array types", format!("let x: {}T{};", "(".repeat(n / 2 - 2), ")".repeat(n / 2 - 2))),
            ("union types", format!("let x: {}T;", "T|".repeat(n / 2 - 2))),
            ("keyof", format!("let x: {}T;", "keyof ".repeat(n - 5))),
            ("conditional types", format!("type X = {}T;", "A extends B ? C : ".repeat(n / 6 - 1))),
            ("function types", format!("let x: {}T;", "()=>".repeat(n / 4 - 2))),
            ("casts", format!("x{};", " as T".repeat(n / 2 - 1))),
            ("assertions", format!("{}x;", "<T>".repeat(n / 3 - 1))),
            ("templates", format!("{}x{}", "`${".repeat(n / 5), "}`".repeat(n / 5))),
            ("new", format!("{}x", "new ".repeat(n - 1))),
            ("member calls", format!("x{}", "(a)".repeat(n / 3))),
        ];
        for (name, code) in cases {
            assert!(upper_bound_of_tokens(&code) <= MAX_TOKENS, "{name}: {} tokens", upper_bound_of_tokens(&code));
            let handle = std::thread::Builder::new()
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    let _ = crate::to_javascript(&code);
                })
                .expect("thread");
            handle.join().unwrap_or_else(|_| panic!("{name} panicked"));
        }
    }
}
