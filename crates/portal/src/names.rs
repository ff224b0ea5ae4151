//! Tool names as JavaScript identifiers, policy globs, TypeScript type names.

/// JavaScript reserved words (and the strict-mode / contextual ones that make
/// poor property names to call through `codemode.x`).
const RESERVED: &[&str] = &[
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "NaN",
    "Infinity",
];

/// True for an ASCII JavaScript identifier that is not a reserved word: a
/// name that works as a global variable or after a dot without quoting.
pub fn is_unreserved_identifier(s: &str) -> bool {
    is_identifier(s) && !RESERVED.contains(&s)
}

/// The name a tool gets in the sandbox: `<server>_<tool>` made a JavaScript
/// identifier, as `@cloudflare/codemode` does: `-`, `.`, space and every other
/// character that is not an ASCII letter, digit, `_` or `$` become `_`; a
/// leading digit gets a `_` prefix; a reserved word gets a `_` suffix.
///
/// ```
/// assert_eq!(codemode_portal::sanitize_name("my-fs", "read.file"), "my_fs_read_file");
/// assert_eq!(codemode_portal::sanitize_name("9x", "get sum"), "_9x_get_sum");
/// ```
pub fn sanitize_name(server: &str, tool: &str) -> String {
    sanitize_identifier(&format!("{server}_{tool}"))
}

/// One name made a JavaScript identifier (the rules of [`sanitize_name`]).
pub fn sanitize_identifier(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '$' { c } else { '_' }).collect();
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Whether `name` is a valid JavaScript identifier in ASCII (can follow a `.`).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// A PascalCase TypeScript type name from a sanitised tool name:
/// `everything_get_sum` → `EverythingGetSum`.
pub(crate) fn pascal_case(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c == '_' || c == '$' || !c.is_ascii_alphanumeric() {
            upper = true;
            continue;
        }
        if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_like_cloudflare_codemode() {
        assert_eq!(sanitize_name("everything", "get-sum"), "everything_get_sum");
        assert_eq!(sanitize_name("a.b", "c d"), "a_b_c_d");
        assert_eq!(sanitize_name("1st", "x"), "_1st_x");
        assert_eq!(sanitize_name("srv", "ünïcode/tool"), "srv__n_code_tool");
        assert_eq!(sanitize_identifier("delete"), "delete_");
        assert_eq!(sanitize_identifier("class"), "class_");
        assert_eq!(sanitize_identifier(""), "_");
        assert_eq!(sanitize_identifier("$ok_1"), "$ok_1");
        assert!(is_identifier("a_b$1") && !is_identifier("1a") && !is_identifier("a-b") && !is_identifier(""));
    }

    #[test]
    fn pascal() {
        assert_eq!(pascal_case("everything_get_sum"), "EverythingGetSum");
        assert_eq!(pascal_case("_9x_y"), "T9xY");
        assert_eq!(pascal_case("memory_read_graph"), "MemoryReadGraph");
    }
}
