//! The blanker: a walk over oxc's AST that overwrites type-only syntax with
//! spaces in a copy of the source.
//!
//! Blanking keeps every byte where it was: line terminators stay, every
//! other byte of a removed construct becomes a space (a removed `é` becomes
//! two). Where removing text would let JavaScript join what TypeScript kept
//! apart (automatic semicolon insertion), a `;` is written into the blank;
//! where it would put a line break between `)` and `=>`, the `)` moves down
//! into the blank. The walk never descends into a type: a type annotation,
//! type parameter list or interface is removed whole.

use oxc_allocator::ArenaVec;
use oxc_ast::ast::*;
use oxc_ast_visit::{walk, Visit};
use oxc_span::{GetSpan, Span};
use oxc_syntax::scope::ScopeFlags;

use crate::scan::{self, has_line_break, is_line_terminator, next_byte, next_is};
use crate::{enums, Error, ErrorKind};

/// TypeScript modifiers of class members, removed (`static`, `async`,
/// `get`, `set` and `accessor` are JavaScript and stay).
const TS_MODIFIERS: [&str; 7] = ["public", "private", "protected", "readonly", "override", "abstract", "declare"];

/// The state of one blanking pass over one source.
pub(crate) struct Blanker<'s> {
    src: &'s str,
    /// The output so far: `None` until the first edit (plain JavaScript is
    /// never copied).
    buf: Option<Vec<u8>>,
    /// Enums rewritten: their spans and the JavaScript that replaces them.
    splices: Vec<(Span, String)>,
    /// The first construct that cannot be turned into JavaScript.
    error: Option<Error>,
    /// Whether a top-level statement with a value has been seen (a statement
    /// removed after one gets a `;`; before one it must stay blank, so that
    /// the code can still be read as a single expression).
    seen_js: bool,
}

impl<'s> Blanker<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Blanker { src, buf: None, splices: Vec::new(), error: None, seen_js: false }
    }

    /// The JavaScript, or `None` if there was no TypeScript to remove.
    pub(crate) fn finish(self) -> Result<Option<String>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(buf) = self.buf else {
            return Ok(None);
        };
        let blanked = String::from_utf8(buf)
            .map_err(|_| Error::new(ErrorKind::Unsupported, 0, "internal: blanking split a character".into()))?;
        if self.splices.is_empty() {
            return Ok(Some(blanked));
        }
        let mut out = String::with_capacity(blanked.len() + 256);
        let mut at = 0;
        let mut splices = self.splices;
        splices.sort_by_key(|(span, _)| span.start);
        for (span, text) in splices {
            if (span.start as usize) < at {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    span.start,
                    "an enum inside an enum member's initializer is not supported; declare it before the outer enum"
                        .into(),
                ));
            }
            out.push_str(&blanked[at..span.start as usize]);
            out.push_str(&text);
            at = span.end as usize;
        }
        out.push_str(&blanked[at..]);
        Ok(Some(out))
    }

    fn buf(&mut self) -> &mut Vec<u8> {
        let src = self.src;
        self.buf.get_or_insert_with(|| src.as_bytes().to_vec())
    }

    /// Overwrites `start..end` with spaces, keeping line terminators.
    fn blank(&mut self, start: u32, end: u32) {
        if start >= end {
            return;
        }
        let src = self.src;
        let buf = self.buf();
        for (i, c) in src[start as usize..end as usize].char_indices() {
            if !is_line_terminator(c) {
                let at = start as usize + i;
                buf[at..at + c.len_utf8()].fill(b' ');
            }
        }
    }

    /// Writes one ASCII byte over a blank.
    fn put(&mut self, at: u32, byte: u8) {
        self.buf()[at as usize] = byte;
    }

    fn fail(&mut self, at: u32, message: String) {
        if self.error.is_none() {
            self.error = Some(Error::new(ErrorKind::Unsupported, at, message));
        }
    }

    /// Removes a whole statement (or class member). A `;` in its place keeps
    /// what came before from running on into what follows (`let x = 1` /
    /// `type T = …` / `(f)()` must not become `1(f)()`).
    fn remove_statement(&mut self, span: Span, semicolon: bool) {
        self.blank(span.start, span.end);
        if semicolon {
            self.put(span.start, b';');
        }
    }

    /// After removing `from..end` from the end of an expression (`as T`,
    /// `satisfies T`, `<T>`): if the next line starts with `(`, `[` or a
    /// template, TypeScript ended the statement there, and JavaScript would
    /// instead continue it (`x as T` / `(y)` is not `x(y)`).
    fn end_statement_if_needed(&mut self, from: u32, end: u32) {
        let first = self.src.as_bytes().get(from as usize).copied();
        if matches!(next_byte(self.src, end), Some(b'(' | b'[' | b'`')) && !matches!(first, Some(b'\n' | b'\r')) {
            self.put(from, b';');
        }
    }

    /// Removes the `?` or `!` right after `after` (skipping a `]` that closes a
    /// computed key).
    fn remove_mark_after(&mut self, after: u32, computed: bool, mark: u8) {
        let mut at = after;
        if computed {
            if let Some(close) = next_is(self.src, at, b']') {
                at = close + 1;
            }
        }
        if let Some(m) = next_is(self.src, at, mark) {
            self.blank(m, m + 1);
        }
    }

    /// Removes TypeScript modifiers between `start` and the member's key.
    fn remove_modifiers(&mut self, start: u32, key_start: u32, decorated: bool) {
        let src = self.src;
        for (i, (at, word)) in scan::words(src, start, key_start).into_iter().enumerate() {
            if TS_MODIFIERS.contains(&word) {
                self.blank(at, at + word.len() as u32);
                if i == 0 && !decorated {
                    // `x = 1` / `private [k] = 2` must not read as `1[k] = 2`.
                    self.put(at, b';');
                }
            }
        }
    }

    fn statements(&mut self, list: &ArenaVec<'_, Statement<'_>>, top_level: bool) {
        for stmt in list {
            match classify(stmt) {
                Kind::Types => self.remove_statement(stmt.span(), !top_level || self.seen_js),
                Kind::Unsupported(message) => self.fail(stmt.span().start, message),
                Kind::Values => {
                    if top_level {
                        self.seen_js = true;
                    }
                    self.visit_statement(stmt);
                }
            }
        }
    }

    fn class_element(&mut self, element: &ClassElement<'_>) {
        match element {
            ClassElement::MethodDefinition(m) => {
                if m.r#type == MethodDefinitionType::TSAbstractMethodDefinition || m.value.body.is_none() {
                    // An overload signature or an abstract method: no code.
                    return self.remove_statement(m.span, true);
                }
                let start = m.decorators.last().map_or(m.span.start, |d| d.span.end);
                self.remove_modifiers(start, m.key.span().start, !m.decorators.is_empty());
                if m.optional {
                    self.remove_mark_after(m.key.span().end, m.computed, b'?');
                }
                walk::walk_method_definition(self, m);
            }
            ClassElement::PropertyDefinition(p) => {
                if p.declare || p.r#type == PropertyDefinitionType::TSAbstractPropertyDefinition {
                    return self.remove_statement(p.span, true);
                }
                let start = p.decorators.last().map_or(p.span.start, |d| d.span.end);
                self.remove_modifiers(start, p.key.span().start, !p.decorators.is_empty());
                if p.optional {
                    self.remove_mark_after(p.key.span().end, p.computed, b'?');
                }
                if p.definite {
                    self.remove_mark_after(p.key.span().end, p.computed, b'!');
                }
                walk::walk_property_definition(self, p);
            }
            ClassElement::AccessorProperty(a) => {
                if a.r#type == AccessorPropertyType::TSAbstractAccessorProperty {
                    return self.remove_statement(a.span, true);
                }
                let start = a.decorators.last().map_or(a.span.start, |d| d.span.end);
                self.remove_modifiers(start, a.key.span().start, !a.decorators.is_empty());
                if a.definite {
                    self.remove_mark_after(a.key.span().end, a.computed, b'!');
                }
                walk::walk_accessor_property(self, a);
            }
            ClassElement::TSIndexSignature(s) => self.remove_statement(s.span, true),
            ClassElement::StaticBlock(b) => walk::walk_static_block(self, b),
        }
    }
}

/// What a statement is to JavaScript.
enum Kind {
    /// It has a value or runs: keep it (blanking inside).
    Values,
    /// Types only: remove it whole.
    Types,
    /// TypeScript that needs emitted code this crate does not write.
    Unsupported(String),
}

fn classify(stmt: &Statement<'_>) -> Kind {
    if let Some(decl) = stmt.as_declaration() {
        return classify_declaration(decl);
    }
    match stmt {
        Statement::ImportDeclaration(i) if i.import_kind.is_type() => Kind::Types,
        Statement::ExportNamedDeclaration(e) if e.export_kind.is_type() => Kind::Types,
        Statement::ExportFromDeclaration(e) if e.export_kind.is_type() => Kind::Types,
        Statement::ExportAllDeclaration(e) if e.export_kind.is_type() => Kind::Types,
        Statement::ExportDeclaration(e) => classify_declaration(&e.declaration),
        Statement::ExportDefaultDeclaration(e) => match &e.declaration {
            ExportDefaultDeclarationKind::TSInterfaceDeclaration(_) => Kind::Types,
            ExportDefaultDeclarationKind::FunctionDeclaration(f) if f.body.is_none() => Kind::Types,
            _ => Kind::Values,
        },
        Statement::TSNamespaceExportDeclaration(_) => Kind::Types,
        Statement::TSExportAssignment(_) => Kind::Unsupported(
            "`export =` is not supported: the code is not a module here; return the value instead".into(),
        ),
        _ => Kind::Values,
    }
}

fn classify_declaration(decl: &Declaration<'_>) -> Kind {
    match decl {
        Declaration::TSTypeAliasDeclaration(_)
        | Declaration::TSInterfaceDeclaration(_)
        | Declaration::TSExternalModuleDeclaration(_)
        | Declaration::TSGlobalDeclaration(_) => Kind::Types,
        Declaration::VariableDeclaration(v) if v.declare => Kind::Types,
        Declaration::FunctionDeclaration(f) if f.declare || f.body.is_none() => Kind::Types,
        Declaration::ClassDeclaration(c) if c.declare => Kind::Types,
        Declaration::TSEnumDeclaration(e) if e.declare => Kind::Types,
        Declaration::TSNamespaceDeclaration(n) if n.declare || types_only(&n.body) => Kind::Types,
        Declaration::TSNamespaceDeclaration(n) => Kind::Unsupported(format!(
            "`namespace {}` has values, and namespaces with values are not supported (only type-only syntax is removed); use an object instead: `const {} = {{ … }}`",
            n.id.name, n.id.name
        )),
        Declaration::TSImportEqualsDeclaration(i) if i.import_kind.is_type() => Kind::Types,
        Declaration::TSImportEqualsDeclaration(i) => Kind::Unsupported(format!(
            "`import {} = …` is not supported: there are no modules here; use a plain `const {} = …`",
            i.id.name, i.id.name
        )),
        _ => Kind::Values,
    }
}

/// Whether a namespace body declares nothing but types.
fn types_only(body: &TSNamespaceDeclarationBody<'_>) -> bool {
    match body {
        TSNamespaceDeclarationBody::TSNamespaceDeclaration(n) => types_only(&n.body),
        TSNamespaceDeclarationBody::TSModuleBlock(b) => b.body.iter().all(|s| matches!(classify(s), Kind::Types)),
    }
}

impl<'a> Visit<'a> for Blanker<'_> {
    fn visit_program(&mut self, it: &Program<'a>) {
        self.statements(&it.body, true);
    }

    fn visit_statements(&mut self, it: &ArenaVec<'a, Statement<'a>>) {
        self.statements(it, false);
    }

    // Types, removed whole.

    fn visit_ts_type_annotation(&mut self, it: &TSTypeAnnotation<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    fn visit_ts_type_parameter_declaration(&mut self, it: &TSTypeParameterDeclaration<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    fn visit_ts_type_parameter_instantiation(&mut self, it: &TSTypeParameterInstantiation<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    fn visit_ts_this_parameter(&mut self, it: &TSThisParameter<'a>) {
        self.blank(it.span.start, it.span.end);
        if let Some(comma) = next_is(self.src, it.span.end, b',') {
            self.blank(comma, comma + 1);
        }
    }

    fn visit_ts_class_implements(&mut self, _: &TSClassImplements<'a>) {}

    // Declarations reached outside a statement list (`export default
    // interface …`): removed whole.

    fn visit_ts_interface_declaration(&mut self, it: &TSInterfaceDeclaration<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    fn visit_ts_type_alias_declaration(&mut self, it: &TSTypeAliasDeclaration<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    fn visit_ts_index_signature(&mut self, it: &TSIndexSignature<'a>) {
        self.blank(it.span.start, it.span.end);
    }

    // Expressions: the value stays, the type goes.

    fn visit_ts_as_expression(&mut self, it: &TSAsExpression<'a>) {
        self.visit_expression(&it.expression);
        let end = it.expression.span().end;
        self.blank(end, it.span.end);
        self.end_statement_if_needed(end, it.span.end);
    }

    fn visit_ts_satisfies_expression(&mut self, it: &TSSatisfiesExpression<'a>) {
        self.visit_expression(&it.expression);
        let end = it.expression.span().end;
        self.blank(end, it.span.end);
        self.end_statement_if_needed(end, it.span.end);
    }

    fn visit_ts_non_null_expression(&mut self, it: &TSNonNullExpression<'a>) {
        self.visit_expression(&it.expression);
        self.blank(it.expression.span().end, it.span.end);
    }

    fn visit_ts_instantiation_expression(&mut self, it: &TSInstantiationExpression<'a>) {
        self.visit_expression(&it.expression);
        let end = it.expression.span().end;
        self.blank(end, it.span.end);
        self.end_statement_if_needed(end, it.span.end);
    }

    fn visit_ts_type_assertion(&mut self, it: &TSTypeAssertion<'a>) {
        let start = it.expression.span().start;
        if has_line_break(self.src, it.span.start, start) {
            // `return <T>` / `x` would become `return` / `x`.
            return self.fail(
                it.span.start,
                "a `<T>expr` type assertion with a line break before the expression is not supported; write `expr as T`"
                    .into(),
            );
        }
        self.blank(it.span.start, start);
        self.visit_expression(&it.expression);
    }

    // Functions and parameters.

    fn visit_function(&mut self, it: &Function<'a>, flags: ScopeFlags) {
        if it.body.is_none() {
            return self.blank(it.span.start, it.span.end);
        }
        walk::walk_function(self, it, flags);
    }

    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        if let Some(tp) = &it.type_parameters {
            if has_line_break(self.src, tp.span.start, it.params.span.start) {
                return self.fail(
                    tp.span.start,
                    "an arrow function's type parameters must be on the same line as its `(` here".into(),
                );
            }
        }
        walk::walk_arrow_function_expression(self, it);
        if let Some(rt) = &it.return_type {
            let close = it.params.span.end.saturating_sub(1);
            let src = self.src;
            if src.as_bytes().get(close as usize) == Some(&b')') && has_line_break(src, close, rt.span.end) {
                // `(a):` / `T => a` would leave `(a)` / `=> a`, and JavaScript
                // allows no line break before `=>`: move the `)` down.
                let region = &src[close as usize..rt.span.end as usize];
                if let Some((i, c)) = region.char_indices().rev().find(|(_, c)| is_line_terminator(*c)) {
                    self.blank(close, close + 1);
                    self.put(close + (i + c.len_utf8()) as u32, b')');
                }
            }
        }
    }

    fn visit_formal_parameter(&mut self, it: &FormalParameter<'a>) {
        if it.accessibility.is_some() || it.readonly || it.r#override {
            return self.fail(
                it.span.start,
                "parameter properties (`constructor(private x)`) are not supported; declare the field and assign it: `x; constructor(x) { this.x = x }`".into(),
            );
        }
        if it.optional {
            self.remove_mark_after(it.pattern.span().end, false, b'?');
        }
        walk::walk_formal_parameter(self, it);
    }

    fn visit_variable_declarator(&mut self, it: &VariableDeclarator<'a>) {
        if it.definite {
            self.remove_mark_after(it.id.span().end, false, b'!');
        }
        walk::walk_variable_declarator(self, it);
    }

    // Classes.

    fn visit_class(&mut self, it: &Class<'a>) {
        let src = self.src;
        let start = it.decorators.last().map_or(it.span.start, |d| d.span.end);
        let mut after_class = start;
        for (at, word) in scan::words(src, start, it.body.span.start) {
            if word == "class" {
                after_class = at + 5;
                break;
            }
            if word == "abstract" {
                self.blank(at, at + word.len() as u32);
            }
        }
        if let Some(last) = it.implements.last() {
            let mut after = after_class;
            if let Some(id) = &it.id {
                after = after.max(id.span.end);
            }
            if let Some(tp) = &it.type_parameters {
                after = after.max(tp.span.end);
            }
            if let Some(h) = &it.heritage {
                after = after.max(h.expression.span().end);
                if let Some(ta) = &h.type_arguments {
                    after = after.max(ta.span.end);
                }
            }
            if let Some(&(at, "implements")) = scan::words(src, after, last.span.start).first() {
                self.blank(at, last.span.end);
            }
        }
        walk::walk_class(self, it);
    }

    fn visit_class_element(&mut self, it: &ClassElement<'a>) {
        self.class_element(it);
    }

    // Enums: the one construct rewritten rather than blanked.

    fn visit_ts_enum_declaration(&mut self, it: &TSEnumDeclaration<'a>) {
        if it.declare {
            return self.blank(it.span.start, it.span.end);
        }
        for member in &it.body.members {
            if let Some(init) = &member.initializer {
                self.visit_expression(init);
            }
        }
        let current = match &self.buf {
            Some(b) => std::str::from_utf8(b).unwrap_or(self.src),
            None => self.src,
        };
        match enums::rewrite(current, self.src, it) {
            Ok(text) => {
                self.buf();
                self.splices.push((it.span, text));
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    // Type-only imports and exports of single names.

    fn visit_import_specifier(&mut self, it: &ImportSpecifier<'a>) {
        if it.import_kind.is_type() {
            self.blank(it.span.start, it.span.end);
            if let Some(comma) = next_is(self.src, it.span.end, b',') {
                self.blank(comma, comma + 1);
            }
        }
    }

    fn visit_export_specifier(&mut self, it: &ExportSpecifier<'a>) {
        if it.export_kind.is_type() {
            self.blank(it.span.start, it.span.end);
            if let Some(comma) = next_is(self.src, it.span.end, b',') {
                self.blank(comma, comma + 1);
            }
        }
    }
}
