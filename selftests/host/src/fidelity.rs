//! Fidelity check of a kernel variant's `fs/eventpoll.c` against a
//! reference written by hand from the upstream file it stands for.
//!
//! A variant such as `lockless` (the merged v3) or `rwlock` (the pre-fix
//! design) is our own patch on today's file. It is only worth quoting if
//! every ready-list function does what the upstream code did: the same
//! locks in the same flavours, the same list operations, the same wakeups
//! in the same places relative to the locks. This module extracts those
//! operations from the patched C file, keeps their order and the nesting
//! of the `if`s and loops that guard them, and compares them with the
//! reference (`qemu/variants/<variant>/fidelity.ref`).
//!
//! # What is extracted
//!
//! From each function body, in source order (arguments before the call
//! that uses them):
//!
//! - calls of a fixed vocabulary ([`is_primitive`]): lock, unlock and
//!   trylock of any flavour (`spin_lock_irqsave`, `read_lock_irqsave`,
//!   `write_lock_irq`, `mutex_trylock`, ...), seqcount begin/end/retry,
//!   `list_*`/`llist_*` operations and emptiness tests, `xchg`/`cmpxchg`,
//!   memory barriers, wakeups and wait-queue operations, the sleep
//!   itself, and `READ_ONCE`/`WRITE_ONCE`/acquire/release of the list
//!   heads (`ovflist`, `rdllist`);
//! - calls of functions of the same file that (transitively) do any of
//!   the above, by name (`ep_item_poll`, `epitem_ready`, ...), unless the
//!   reference asks to `expand` them in place;
//! - `if` and loop structure, but only where it guards something: an
//!   `if` whose condition has no extracted operation is transparent (its
//!   branches are spliced into the enclosing sequence); a loop is kept
//!   whenever its header or body has operations;
//! - the event flags an `if` condition tests, as `flag(EPOLLET)` and the
//!   like (which items a branch applies to is part of the design; other
//!   parts of a condition, such as a `!`, are not compared);
//! - `return true` / `return false` of the function itself.
//!
//! Arguments are reduced to access paths (`&ep->lock` becomes
//! `ep->lock`); anything more complex becomes `?`. Comments, whitespace,
//! line breaks and preprocessor lines do not matter; renaming a lock,
//! changing its flavour, dropping it, replacing a `mutex_trylock()` with a
//! plain test, or moving a `wake_up()` out of the locked region does.
//!
//! # Reference format
//!
//! ```text
//! # comment
//! reference lockless
//! upstream linux-next 418991133f04 fs/eventpoll.c (merged v3)
//! alias scan_batch txlist          # rename a path component in the file
//! struct eventpoll
//!     has struct llist_head rdllist
//!     lacks lock
//! end
//! gone ep_start_scan ep_done_scan  # functions that must not exist
//! fn ep_events_available           # or: fn ep_remove_epi = __ep_remove
//!     expand ep_deliver_event      # optional, before the operations
//!     mutex_trylock(ep->mtx)
//!     return true
//!     llist_empty(ep->rdllist)
//!     mutex_unlock(ep->mtx)
//! end
//! ```
//!
//! Operation lines: `name(arg, ...)` matches that call with those
//! arguments; `_` matches any argument, `*field` any path ending in
//! `field`, a trailing `...` any further arguments; a bare `name` matches
//! the call whatever its arguments; `a(x) | b(x)` accepts either form
//! (for forms that are the same operation, said so in a comment).
//! `alias FROM TO` renames an identifier of the file (a field, a local, a
//! helper function) to the upstream name before comparing. Structure lines: `if OP ; OP {`,
//! `loop {`, `loop OP {`, `} else {`, `}` (a condition that itself holds
//! structure is written `if (` ... `) {` over several lines).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Why a check could not be carried out at all (as opposed to a mismatch).
#[derive(Debug, Clone, PartialEq)]
pub enum FidelityError {
    /// The reference text is malformed (line number, message).
    Reference(usize, String),
    /// The C file could not be read as C (line number, message).
    Source(usize, String),
}

impl std::fmt::Display for FidelityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FidelityError::Reference(l, m) => write!(f, "reference line {l}: {m}"),
            FidelityError::Source(l, m) => write!(f, "fs/eventpoll.c line {l}: {m}"),
        }
    }
}

impl std::error::Error for FidelityError {}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Ident,
    Number,
    Str,
    Punct,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    text: String,
    line: usize,
}

impl Tok {
    fn is(&self, s: &str) -> bool {
        self.text == s && self.kind != TokKind::Str
    }
    fn ident(&self) -> Option<&str> {
        (self.kind == TokKind::Ident).then_some(self.text.as_str())
    }
}

const PUNCT3: [&str; 3] = ["<<=", ">>=", "..."];
const PUNCT2: [&str; 19] = [
    "->", "++", "--", "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "+=", "-=", "*=", "/=", "&=",
    "|=", "^=", "%=",
];

/// C tokens without comments, string contents or preprocessor lines.
fn lex(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            line_start = true;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i < b.len() && !(b[i] == '*' && b.get(i + 1) == Some(&'/')) {
                if b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '#' && line_start {
            // A preprocessor directive, with its backslash continuations.
            while i < b.len() && b[i] != '\n' {
                if b[i] == '\\' && b.get(i + 1) == Some(&'\n') {
                    line += 1;
                    i += 1;
                }
                i += 1;
            }
            continue;
        }
        line_start = false;
        let start_line = line;
        if c == '"' || c == '\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == '\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(Tok {
                kind: TokKind::Str,
                text: if c == '"' { "\"\"" } else { "''" }.into(),
                line: start_line,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok {
                kind: TokKind::Ident,
                text: b[s..i].iter().collect(),
                line,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == '.') {
                i += 1;
            }
            out.push(Tok {
                kind: TokKind::Number,
                text: b[s..i].iter().collect(),
                line,
            });
            continue;
        }
        let rest: String = b[i..(i + 3).min(b.len())].iter().collect();
        let len = if PUNCT3.iter().any(|p| rest.starts_with(p)) {
            3
        } else if PUNCT2.iter().any(|p| rest.starts_with(p)) {
            2
        } else {
            1
        };
        out.push(Tok {
            kind: TokKind::Punct,
            text: b[i..i + len].iter().collect(),
            line,
        });
        i += len;
    }
    out
}

/// Index of the token that closes the bracket opened at `open`.
fn matching(t: &[Tok], open: usize) -> Option<usize> {
    let (o, c) = match t[open].text.as_str() {
        "(" => ("(", ")"),
        "{" => ("{", "}"),
        "[" => ("[", "]"),
        _ => return None,
    };
    let mut depth = 0i32;
    for (k, tok) in t.iter().enumerate().skip(open) {
        if tok.is(o) {
            depth += 1;
        } else if tok.is(c) {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// Split at commas that are not nested in brackets.
fn split_args(t: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (k, tok) in t.iter().enumerate() {
        match tok.text.as_str() {
            "(" | "[" | "{" if tok.kind == TokKind::Punct => depth += 1,
            ")" | "]" | "}" if tok.kind == TokKind::Punct => depth -= 1,
            "," if tok.kind == TokKind::Punct && depth == 0 => {
                out.push(&t[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    if start < t.len() || !out.is_empty() {
        out.push(&t[start..]);
    }
    out
}

// ---------------------------------------------------------------------------
// Operations and the vocabulary

/// One extracted call.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub name: String,
    pub args: Vec<String>,
    /// Line in the C file.
    pub line: usize,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name, self.args.join(", "))
    }
}

/// The list heads whose lock-less loads and stores are of interest.
const LIST_HEADS: [&str; 2] = ["ovflist", "rdllist"];

const PRIMITIVE_PREFIXES: [&str; 24] = [
    "spin_lock",
    "spin_unlock",
    "spin_trylock",
    "raw_spin_lock",
    "raw_spin_unlock",
    "read_lock",
    "read_unlock",
    "read_trylock",
    "write_lock",
    "write_unlock",
    "write_trylock",
    "read_seqcount_",
    "write_seqcount_",
    "raw_read_seqcount",
    "raw_write_seqcount",
    "seqcount_",
    "list_",
    "llist_",
    "__llist_",
    "wake_up",
    "__add_wait_queue",
    "add_wait_queue",
    "prepare_to_wait",
    "schedule",
];

const PRIMITIVE_NAMES: [&str; 25] = [
    "mutex_lock",
    "mutex_lock_nested",
    "mutex_lock_interruptible",
    "mutex_lock_killable",
    "mutex_unlock",
    "mutex_trylock",
    "mutex_is_locked",
    "mutex_init",
    "rwlock_init",
    "INIT_LIST_HEAD",
    "init_llist_head",
    "init_llist_node",
    "xchg",
    "cmpxchg",
    "try_cmpxchg",
    "smp_mb",
    "smp_rmb",
    "smp_wmb",
    "smp_mb__before_atomic",
    "smp_mb__after_atomic",
    "waitqueue_active",
    "wq_has_sleeper",
    "__remove_wait_queue",
    "remove_wait_queue",
    "finish_wait",
];

/// Accessors named like list operations that only compute an address.
const NOT_OPS: [&str; 8] = [
    "list_entry",
    "list_first_entry",
    "list_last_entry",
    "list_next_entry",
    "list_prev_entry",
    "list_first_entry_or_null",
    "list_entry_rcu",
    "llist_entry",
];

/// Is this call one of the fixed locking/list/wakeup operations?
pub fn is_primitive(name: &str, args: &[String]) -> bool {
    if NOT_OPS.contains(&name) {
        return false;
    }
    match name {
        "READ_ONCE" | "WRITE_ONCE" | "smp_load_acquire" | "smp_store_release" => {
            let first = args.first().map(String::as_str).unwrap_or("");
            let last = first.rsplit(['>', '.']).next().unwrap_or(first);
            return LIST_HEADS.contains(&last);
        }
        "__set_current_state" | "set_current_state" | "flag" => return true,
        "spin_lock_init" | "raw_spin_lock_init" => return true,
        _ => {}
    }
    PRIMITIVE_NAMES.contains(&name) || PRIMITIVE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Reduce an argument to an access path: `&ep->lock` -> `ep->lock`,
/// `(void *) x` -> `x`; anything that is not a path, name or number -> `?`.
fn canon_arg(t: &[Tok], aliases: &BTreeMap<String, String>) -> String {
    let mut t = t;
    loop {
        if let Some(f) = t.first() {
            if f.is("&") || f.is("*") {
                t = &t[1..];
                continue;
            }
            if f.is("(") {
                if let Some(close) = matching(t, 0) {
                    if close == t.len() - 1 {
                        t = &t[1..close];
                        continue;
                    }
                    // A cast: "(" type-ish tokens ")" expr.
                    let inner = &t[1..close];
                    if !inner.is_empty()
                        && inner.iter().all(|x| x.kind == TokKind::Ident || x.is("*"))
                    {
                        t = &t[close + 1..];
                        continue;
                    }
                }
            }
        }
        break;
    }
    if t.is_empty() {
        return "?".into();
    }
    if t.len() == 1 && t[0].kind != TokKind::Punct {
        return alias(&t[0].text, aliases);
    }
    // ident ((-> | .) ident)*
    let mut parts = Vec::new();
    let mut seps = Vec::new();
    for (k, tok) in t.iter().enumerate() {
        if k % 2 == 0 {
            match tok.ident() {
                Some(id) => parts.push(alias(id, aliases)),
                None => return "?".into(),
            }
        } else if tok.is("->") || tok.is(".") {
            seps.push(tok.text.clone());
        } else {
            return "?".into();
        }
    }
    if parts.len() != seps.len() + 1 {
        return "?".into();
    }
    let mut s = parts[0].clone();
    for (sep, p) in seps.iter().zip(parts.iter().skip(1)) {
        s.push_str(sep);
        s.push_str(p);
    }
    s
}

fn alias(id: &str, aliases: &BTreeMap<String, String>) -> String {
    aliases.get(id).cloned().unwrap_or_else(|| id.to_string())
}

// ---------------------------------------------------------------------------
// Statement structure

#[derive(Debug, Clone)]
enum Raw {
    Call(Op),
    If(Vec<Raw>, Vec<Raw>, Vec<Raw>),
    Loop(Vec<Raw>, Vec<Raw>),
    Return(String),
}

const KEYWORDS: [&str; 12] = [
    "if",
    "else",
    "for",
    "while",
    "do",
    "switch",
    "return",
    "sizeof",
    "typeof",
    "case",
    "goto",
    "__typeof__",
];

/// Calls in an expression, innermost first (arguments are evaluated
/// before the call that uses them), left to right.
fn expr_calls(t: &[Tok], aliases: &BTreeMap<String, String>) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let is_call = t[i].kind == TokKind::Ident
            && !KEYWORDS.contains(&t[i].text.as_str())
            && t.get(i + 1).is_some_and(|n| n.is("("));
        if is_call {
            if let Some(close) = matching(t, i + 1) {
                let inner = &t[i + 2..close];
                let parts = if inner.is_empty() {
                    Vec::new()
                } else {
                    split_args(inner)
                };
                for p in &parts {
                    out.extend(expr_calls(p, aliases));
                }
                out.push(Raw::Call(Op {
                    name: alias(&t[i].text, aliases),
                    args: parts.iter().map(|p| canon_arg(p, aliases)).collect(),
                    line: t[i].line,
                }));
                i = close + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The event flags an `if` condition tests (`EPOLLET`, `POLLFREE`, ...),
/// as `flag(NAME)` pseudo-operations: which items a branch applies to is
/// part of the design (e.g. "re-queue every item that is not EPOLLET").
fn flags(t: &[Tok]) -> Vec<Raw> {
    t.iter()
        .filter(|x| {
            x.kind == TokKind::Ident
                && (x.text.starts_with("EPOLL") || x.text.starts_with("POLL"))
                && x.text.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(|x| {
            Raw::Call(Op {
                name: "flag".into(),
                args: vec![x.text.clone()],
                line: x.line,
            })
        })
        .collect()
}

struct Parser<'a> {
    t: &'a [Tok],
    aliases: &'a BTreeMap<String, String>,
}

impl Parser<'_> {
    fn err(&self, i: usize, msg: &str) -> FidelityError {
        let line = self.t.get(i).or(self.t.last()).map_or(0, |t| t.line);
        FidelityError::Source(line, msg.to_string())
    }

    fn close_of(&self, open: usize) -> Result<usize, FidelityError> {
        matching(self.t, open).ok_or_else(|| self.err(open, "unbalanced bracket"))
    }

    fn expect(&self, i: usize, s: &str) -> Result<(), FidelityError> {
        if self.t.get(i).is_some_and(|x| x.is(s)) {
            Ok(())
        } else {
            Err(self.err(i, &format!("expected '{s}'")))
        }
    }

    /// Statements from `i` up to `end` (exclusive).
    fn block(&self, mut i: usize, end: usize) -> Result<Vec<Raw>, FidelityError> {
        let mut out = Vec::new();
        while i < end {
            i = self.statement(i, end, &mut out)?;
        }
        Ok(out)
    }

    /// One statement starting at `i`; returns the index after it.
    fn statement(&self, i: usize, end: usize, out: &mut Vec<Raw>) -> Result<usize, FidelityError> {
        let t = self.t;
        let tok = &t[i];
        if tok.is("{") {
            let close = self.close_of(i)?;
            out.extend(self.block(i + 1, close)?);
            return Ok(close + 1);
        }
        if tok.is(";") {
            return Ok(i + 1);
        }
        match tok.ident() {
            Some("if") => {
                self.expect(i + 1, "(")?;
                let close = self.close_of(i + 1)?;
                let mut cond = flags(&t[i + 2..close]);
                cond.extend(expr_calls(&t[i + 2..close], self.aliases));
                let mut then = Vec::new();
                let mut next = self.statement(close + 1, end, &mut then)?;
                let mut els = Vec::new();
                if next < end && t[next].is("else") {
                    next = self.statement(next + 1, end, &mut els)?;
                }
                out.push(Raw::If(cond, then, els));
                return Ok(next);
            }
            Some("for") | Some("while") => {
                self.expect(i + 1, "(")?;
                let close = self.close_of(i + 1)?;
                let head = expr_calls(&t[i + 2..close], self.aliases);
                let mut body = Vec::new();
                let next = self.statement(close + 1, end, &mut body)?;
                out.push(Raw::Loop(head, body));
                return Ok(next);
            }
            Some("do") => {
                let mut body = Vec::new();
                let next = self.statement(i + 1, end, &mut body)?;
                if !t.get(next).is_some_and(|x| x.is("while")) {
                    return Err(self.err(next, "expected 'while' after 'do' body"));
                }
                self.expect(next + 1, "(")?;
                let close = self.close_of(next + 1)?;
                let head = expr_calls(&t[next + 2..close], self.aliases);
                out.push(Raw::Loop(head, body));
                return Ok(close + 2);
            }
            Some("switch") => {
                self.expect(i + 1, "(")?;
                let close = self.close_of(i + 1)?;
                out.extend(expr_calls(&t[i + 2..close], self.aliases));
                return self.statement(close + 1, end, out);
            }
            Some("case") => {
                let mut k = i + 1;
                while k < end && !t[k].is(":") {
                    k += 1;
                }
                return Ok(k + 1);
            }
            Some("default") if t.get(i + 1).is_some_and(|x| x.is(":")) => return Ok(i + 2),
            Some("else") => return Err(self.err(i, "'else' without 'if'")),
            Some(_) if t.get(i + 1).is_some_and(|x| x.is(":")) => return Ok(i + 2), // label
            Some("return") => {
                let semi = self.semicolon(i, end)?;
                let expr = &t[i + 1..semi];
                out.extend(expr_calls(expr, self.aliases));
                if expr.len() == 1 && (expr[0].is("true") || expr[0].is("false")) {
                    out.push(Raw::Return(expr[0].text.clone()));
                }
                return Ok(semi + 1);
            }
            Some("break") | Some("continue") | Some("goto") => {
                return Ok(self.semicolon(i, end)? + 1);
            }
            Some(name) if t.get(i + 1).is_some_and(|x| x.is("(")) => {
                // An iterator macro (list_for_each_entry_safe(...) body) is
                // a call followed by a statement instead of ';' or an operator.
                let close = self.close_of(i + 1)?;
                let after = t.get(close + 1);
                let loop_macro = after.is_some_and(|a| {
                    a.is("{")
                        || (a.kind == TokKind::Ident
                            && !KEYWORDS.contains(&name)
                            && !["__must_hold", "__releases", "__acquires"].contains(&name))
                });
                if loop_macro && close + 1 < end {
                    let head = expr_calls(&t[i..close + 1], self.aliases);
                    let mut body = Vec::new();
                    let next = self.statement(close + 1, end, &mut body)?;
                    out.push(Raw::Loop(head, body));
                    return Ok(next);
                }
            }
            _ => {}
        }
        let semi = self.semicolon(i, end)?;
        out.extend(expr_calls(&t[i..semi], self.aliases));
        Ok(semi + 1)
    }

    /// The ';' ending the expression statement that starts at `i`.
    fn semicolon(&self, i: usize, end: usize) -> Result<usize, FidelityError> {
        let mut depth = 0i32;
        for k in i..end {
            let x = &self.t[k];
            if x.kind != TokKind::Punct {
                continue;
            }
            match x.text.as_str() {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => depth -= 1,
                ";" if depth == 0 => return Ok(k),
                _ => {}
            }
        }
        Err(self.err(i, "statement without ';'"))
    }
}

// ---------------------------------------------------------------------------
// The file: functions and structs

/// A member of a struct: its type as written and its name.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub ty: String,
    pub name: String,
}

/// What the checker knows about one C file.
#[derive(Debug, Clone)]
pub struct Source {
    functions: BTreeMap<String, Vec<Raw>>,
    pub structs: BTreeMap<String, Vec<Member>>,
    /// Function names in file order (duplicates under `#if` get `#2`, ...).
    pub order: Vec<String>,
}

impl Source {
    /// Parse `eventpoll_c`; path components are renamed per `aliases`.
    pub fn parse(
        eventpoll_c: &str,
        aliases: &BTreeMap<String, String>,
    ) -> Result<Source, FidelityError> {
        let t = lex(eventpoll_c);
        let mut functions = BTreeMap::new();
        let mut structs = BTreeMap::new();
        let mut order = Vec::new();
        let mut i = 0;
        let mut paren = 0i32;
        while i < t.len() {
            let tok = &t[i];
            if tok.is("(") {
                paren += 1;
            } else if tok.is(")") {
                paren -= 1;
            }
            if !tok.is("{") || paren != 0 {
                i += 1;
                continue;
            }
            let close = matching(&t, i)
                .ok_or_else(|| FidelityError::Source(tok.line, "unbalanced '{'".into()))?;
            let prev = i.checked_sub(1).map(|p| &t[p]);
            if prev.is_some_and(|p| p.is(")")) {
                // A function definition: name ( params ) { body }.
                let mut depth = 0i32;
                let mut open = None;
                for k in (0..i).rev() {
                    if t[k].is(")") {
                        depth += 1;
                    } else if t[k].is("(") {
                        depth -= 1;
                        if depth == 0 {
                            open = Some(k);
                            break;
                        }
                    }
                }
                if let Some(name) = open
                    .and_then(|o| o.checked_sub(1))
                    .and_then(|n| t[n].ident())
                {
                    let p = Parser { t: &t, aliases };
                    let body = p.block(i + 1, close)?;
                    let name = alias(name, aliases);
                    let mut key = name.clone();
                    let mut n = 2;
                    while functions.contains_key(&key) {
                        key = format!("{name}#{n}");
                        n += 1;
                    }
                    order.push(key.clone());
                    functions.insert(key, body);
                }
            } else if let (Some(p), Some(pp)) = (prev, i.checked_sub(2).map(|k| &t[k])) {
                if pp.is("struct") && p.kind == TokKind::Ident {
                    structs.entry(p.text.clone()).or_insert_with(|| {
                        let mut ms = members(&t[i + 1..close]);
                        for m in &mut ms {
                            m.name = alias(&m.name, aliases);
                        }
                        ms
                    });
                }
            }
            i = close + 1;
        }
        Ok(Source {
            functions,
            structs,
            order,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// A vocabulary operation, not a helper of this file that happens to
    /// be named like one (`list_file()` is no list operation).
    fn primitive(&self, op: &Op) -> bool {
        !self.has(&op.name) && is_primitive(&op.name, &op.args)
    }
}

fn members(t: &[Tok]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut k = 0;
    while k < t.len() {
        if t[k].is("{") {
            // A nested union/struct: its members count as ours.
            if let Some(close) = matching(t, k) {
                out.extend(members(&t[k + 1..close]));
                k = close + 1;
                while k < t.len() && !t[k].is(";") {
                    k += 1;
                }
                start = k + 1;
                k += 1;
                continue;
            }
        }
        if t[k].is(";") {
            let decl = &t[start..k];
            let mut end = decl.len();
            // Drop array bounds and bit-field widths.
            if let Some(b) = decl.iter().position(|x| x.is("[") || x.is(":")) {
                end = b;
            }
            let decl = &decl[..end];
            if let Some(pos) = decl.iter().rposition(|x| x.kind == TokKind::Ident) {
                let ty: Vec<&str> = decl[..pos].iter().map(|x| x.text.as_str()).collect();
                out.push(Member {
                    ty: ty.join(" "),
                    name: decl[pos].text.clone(),
                });
            }
            start = k + 1;
        }
        k += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// From raw structure to the compared sequence

/// One element of the compared sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Op(Op),
    /// `if (`: the condition's items follow, then `Then`.
    If,
    /// `loop (`: the header's items follow, then `Then`.
    Loop,
    /// `) {`
    Then,
    /// `} else {`
    Else,
    /// `}`
    End,
    Return(String),
}

impl Item {
    fn line(&self) -> Option<usize> {
        match self {
            Item::Op(op) => Some(op.line),
            _ => None,
        }
    }
}

struct Flattener<'a> {
    src: &'a Source,
    relevant: &'a BTreeSet<String>,
    expand: &'a BTreeSet<String>,
}

impl Flattener<'_> {
    fn nodes(&self, raw: &[Raw], depth: usize, out: &mut Vec<Item>) {
        for r in raw {
            match r {
                Raw::Call(op) => {
                    if depth < 8 && self.expand.contains(&op.name) && self.src.has(&op.name) {
                        self.nodes(&self.src.functions[&op.name], depth + 1, out);
                    } else if self.src.primitive(op) || self.relevant.contains(&op.name) {
                        out.push(Item::Op(op.clone()));
                    }
                }
                Raw::If(c, a, b) => {
                    let mut cond = Vec::new();
                    self.nodes(c, depth, &mut cond);
                    let mut then = Vec::new();
                    self.nodes(a, depth, &mut then);
                    let mut els = Vec::new();
                    self.nodes(b, depth, &mut els);
                    if cond.is_empty() {
                        out.extend(then);
                        out.extend(els);
                    } else {
                        out.push(Item::If);
                        out.extend(cond);
                        out.push(Item::Then);
                        out.extend(then);
                        if !els.is_empty() {
                            out.push(Item::Else);
                            out.extend(els);
                        }
                        out.push(Item::End);
                    }
                }
                Raw::Loop(h, b) => {
                    let mut head = Vec::new();
                    self.nodes(h, depth, &mut head);
                    let mut body = Vec::new();
                    self.nodes(b, depth, &mut body);
                    if !head.is_empty() || !body.is_empty() {
                        out.push(Item::Loop);
                        out.extend(head);
                        out.push(Item::Then);
                        out.extend(body);
                        out.push(Item::End);
                    }
                }
                Raw::Return(v) => {
                    if depth == 0 {
                        out.push(Item::Return(v.clone()));
                    }
                }
            }
        }
    }
}

/// Functions of the file that do any vocabulary operation, directly or
/// through other functions of the file.
fn relevant_functions(src: &Source) -> BTreeSet<String> {
    fn calls(src: &Source, raw: &[Raw], out: &mut Vec<(String, bool)>) {
        for r in raw {
            match r {
                Raw::Call(op) => out.push((op.name.clone(), src.primitive(op))),
                Raw::If(a, b, c) => {
                    calls(src, a, out);
                    calls(src, b, out);
                    calls(src, c, out);
                }
                Raw::Loop(a, b) => {
                    calls(src, a, out);
                    calls(src, b, out);
                }
                Raw::Return(_) => {}
            }
        }
    }
    let table: BTreeMap<&str, Vec<(String, bool)>> = src
        .functions
        .iter()
        .map(|(k, v)| {
            let mut c = Vec::new();
            calls(src, v, &mut c);
            (k.as_str(), c)
        })
        .collect();
    let mut rel = BTreeSet::new();
    loop {
        let before = rel.len();
        for (name, cs) in &table {
            let base = name.split('#').next().unwrap_or(name);
            if cs.iter().any(|(c, prim)| *prim || rel.contains(c)) {
                rel.insert(base.to_string());
            }
        }
        if rel.len() == before {
            return rel;
        }
    }
}

/// The compared sequence of function `name` of `src`.
pub fn sequence(src: &Source, name: &str, expand: &BTreeSet<String>) -> Option<Vec<Item>> {
    let raw = src.functions.get(name)?;
    let relevant = relevant_functions(src);
    let f = Flattener {
        src,
        relevant: &relevant,
        expand,
    };
    let mut out = Vec::new();
    f.nodes(raw, 0, &mut out);
    Some(out)
}

/// Render a sequence as the indented outline the reference uses.
pub fn outline(items: &[Item]) -> Vec<String> {
    rendered(items).into_iter().map(|(_, s)| s).collect()
}

/// (index of the first item of the line, text) per outline line.
fn rendered(items: &[Item]) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut depth = 0usize;
    let mut k = 0;
    let pad = |d: usize| "    ".repeat(d);
    while k < items.len() {
        match &items[k] {
            Item::If | Item::Loop => {
                let kw = if items[k] == Item::If { "if" } else { "loop" };
                // Condition: up to the matching Then at this nesting.
                let mut j = k + 1;
                let mut nest = 0;
                while j < items.len() {
                    match items[j] {
                        Item::If | Item::Loop => nest += 1,
                        Item::Then if nest == 0 => break,
                        Item::End => nest -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                let cond = &items[k + 1..j.min(items.len())];
                if cond.iter().all(|c| matches!(c, Item::Op(_))) {
                    let ops: Vec<String> = cond.iter().map(item_text).collect();
                    let head = if ops.is_empty() {
                        format!("{kw} {{")
                    } else {
                        format!("{kw} {} {{", ops.join(" ; "))
                    };
                    lines.push((k, format!("{}{head}", pad(depth))));
                    depth += 1;
                    k = j + 1;
                } else {
                    lines.push((k, format!("{}{kw} (", pad(depth))));
                    depth += 1;
                    k += 1;
                }
            }
            Item::Then => {
                lines.push((k, format!("{}) {{", pad(depth.saturating_sub(1)))));
                k += 1;
            }
            Item::Else => {
                lines.push((k, format!("{}}} else {{", pad(depth.saturating_sub(1)))));
                k += 1;
            }
            Item::End => {
                depth = depth.saturating_sub(1);
                lines.push((k, format!("{}}}", pad(depth))));
                k += 1;
            }
            other => {
                lines.push((k, format!("{}{}", pad(depth), item_text(other))));
                k += 1;
            }
        }
    }
    lines
}

fn item_text(i: &Item) -> String {
    match i {
        Item::Op(op) => op.to_string(),
        Item::If => "if (".into(),
        Item::Loop => "loop (".into(),
        Item::Then => ") {".into(),
        Item::Else => "} else {".into(),
        Item::End => "}".into(),
        Item::Return(v) => format!("return {v}"),
    }
}

// ---------------------------------------------------------------------------
// The reference

/// One expected element: like [`Item`], with patterns for operations.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// One of several equivalent forms (`a(x) | b(x)`).
    Op(Vec<OpPattern>),
    If,
    Loop,
    Then,
    Else,
    End,
    Return(String),
}

#[derive(Debug, Clone, PartialEq)]
struct OpPattern {
    name: String,
    /// None: any arguments.
    args: Option<Vec<String>>,
    rest: bool,
    text: String,
}

impl OpPattern {
    fn parse(s: &str) -> Result<OpPattern, String> {
        let s = s.trim();
        let Some(p) = s.find('(') else {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("not an operation: '{s}'"));
            }
            return Ok(OpPattern {
                name: s.into(),
                args: None,
                rest: false,
                text: s.into(),
            });
        };
        if !s.ends_with(')') {
            return Err(format!("operation without ')': '{s}'"));
        }
        let name = s[..p].trim();
        let inner = &s[p + 1..s.len() - 1];
        let mut args: Vec<String> = if inner.trim().is_empty() {
            Vec::new()
        } else {
            inner.split(',').map(|a| a.trim().to_string()).collect()
        };
        let rest = args.last().is_some_and(|a| a == "...");
        if rest {
            args.pop();
        }
        Ok(OpPattern {
            name: name.into(),
            args: Some(args),
            rest,
            text: s.into(),
        })
    }

    fn matches(&self, op: &Op) -> bool {
        if op.name != self.name {
            return false;
        }
        let Some(want) = &self.args else {
            return true;
        };
        if op.args.len() < want.len() || (!self.rest && op.args.len() != want.len()) {
            return false;
        }
        want.iter().zip(&op.args).all(|(w, a)| arg_matches(w, a))
    }
}

fn arg_matches(want: &str, got: &str) -> bool {
    if want == "_" {
        return true;
    }
    if let Some(suffix) = want.strip_prefix('*') {
        return got == suffix
            || got.ends_with(&format!("->{suffix}"))
            || got.ends_with(&format!(".{suffix}"));
    }
    want == got
}

fn want_text(w: &Want) -> String {
    match w {
        Want::Op(ps) => ps
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        Want::If => "if (".into(),
        Want::Loop => "loop (".into(),
        Want::Then => ") {".into(),
        Want::Else => "} else {".into(),
        Want::End => "}".into(),
        Want::Return(v) => format!("return {v}"),
    }
}

#[derive(Debug, Clone)]
struct FnRef {
    name: String,
    upstream: String,
    expand: BTreeSet<String>,
    want: Vec<Want>,
    /// The reference's own outline lines, for reports.
    lines: Vec<String>,
}

#[derive(Debug, Clone)]
enum MemberRule {
    Has(String, String),
    Lacks(String),
}

#[derive(Debug, Clone, Default)]
struct Reference {
    variant: String,
    upstream: Vec<String>,
    aliases: BTreeMap<String, String>,
    structs: Vec<(String, Vec<MemberRule>)>,
    functions: Vec<FnRef>,
    /// Functions that must not exist any more.
    gone: Vec<String>,
}

fn parse_reference(text: &str) -> Result<Reference, FidelityError> {
    let mut r = Reference::default();
    let mut cur_fn: Option<FnRef> = None;
    let mut cur_struct: Option<(String, Vec<MemberRule>)> = None;
    for (n, raw) in text.lines().enumerate() {
        let ln = n + 1;
        let err = |m: String| FidelityError::Reference(ln, m);
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if let Some(f) = cur_fn.as_mut() {
            if line == "end" {
                r.functions.push(cur_fn.take().expect("current function"));
                continue;
            }
            if word == "expand" && f.want.is_empty() {
                f.expand.extend(rest.split_whitespace().map(String::from));
                continue;
            }
            f.lines.push(line.to_string());
            match parse_want_line(line) {
                Ok(ws) => f.want.extend(ws),
                Err(m) => return Err(err(m)),
            }
            continue;
        }
        if let Some(s) = cur_struct.as_mut() {
            match word {
                "end" => r.structs.push(cur_struct.take().expect("current struct")),
                "lacks" => s.1.push(MemberRule::Lacks(rest.to_string())),
                "has" => {
                    let (ty, name) = rest
                        .rsplit_once(char::is_whitespace)
                        .ok_or_else(|| err(format!("'has TYPE NAME' expected, got '{line}'")))?;
                    s.1.push(MemberRule::Has(ty.trim().to_string(), name.to_string()));
                }
                _ => return Err(err(format!("unknown struct rule '{word}'"))),
            }
            continue;
        }
        match word {
            "reference" => r.variant = rest.to_string(),
            "upstream" => r.upstream.push(rest.to_string()),
            "alias" => {
                let (a, b) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err("'alias FROM TO' expected".into()))?;
                r.aliases.insert(a.trim().to_string(), b.trim().to_string());
            }
            "struct" => cur_struct = Some((rest.to_string(), Vec::new())),
            "gone" => r.gone.extend(rest.split_whitespace().map(String::from)),
            "fn" => {
                let (name, up) = match rest.split_once('=') {
                    Some((a, b)) => (a.trim(), b.trim()),
                    None => (rest, rest),
                };
                if name.is_empty() {
                    return Err(err("'fn NAME' expected".into()));
                }
                cur_fn = Some(FnRef {
                    name: name.to_string(),
                    upstream: up.to_string(),
                    expand: BTreeSet::new(),
                    want: Vec::new(),
                    lines: Vec::new(),
                });
            }
            _ => return Err(err(format!("unknown directive '{word}'"))),
        }
    }
    if cur_fn.is_some() || cur_struct.is_some() {
        return Err(FidelityError::Reference(
            text.lines().count(),
            "missing 'end'".into(),
        ));
    }
    if r.functions.is_empty() {
        return Err(FidelityError::Reference(0, "no 'fn' section".into()));
    }
    Ok(r)
}

/// One outline line of the reference as expected elements.
fn parse_want_line(line: &str) -> Result<Vec<Want>, String> {
    let line = line.trim();
    match line {
        "}" => return Ok(vec![Want::End]),
        "} else {" => return Ok(vec![Want::Else]),
        ") {" => return Ok(vec![Want::Then]),
        "if (" => return Ok(vec![Want::If]),
        "loop (" => return Ok(vec![Want::Loop]),
        "return true" | "return false" => {
            return Ok(vec![Want::Return(line[7..].to_string())]);
        }
        _ => {}
    }
    for (kw, start) in [("if", Want::If), ("loop", Want::Loop)] {
        if line == format!("{kw} {{") {
            return Ok(vec![start, Want::Then]);
        }
        if let Some(body) = line
            .strip_prefix(&format!("{kw} "))
            .and_then(|b| b.strip_suffix('{'))
        {
            let mut out = vec![start];
            for part in body.split(" ; ") {
                out.push(alternatives(part)?);
            }
            out.push(Want::Then);
            return Ok(out);
        }
    }
    Ok(vec![alternatives(line)?])
}

fn alternatives(s: &str) -> Result<Want, String> {
    Ok(Want::Op(
        s.split(" | ")
            .map(OpPattern::parse)
            .collect::<Result<Vec<_>, _>>()?,
    ))
}

fn want_matches(w: &Want, i: &Item) -> bool {
    match (w, i) {
        (Want::Op(ps), Item::Op(op)) => ps.iter().any(|p| p.matches(op)),
        (Want::If, Item::If)
        | (Want::Loop, Item::Loop)
        | (Want::Then, Item::Then)
        | (Want::Else, Item::Else)
        | (Want::End, Item::End) => true,
        (Want::Return(a), Item::Return(b)) => a == b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// The report

/// The first place where a function departs from its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Index in the compared sequence.
    pub index: usize,
    /// What the reference wants there (None: the reference ended).
    pub expected: Option<String>,
    /// What the file has there (None: the function ended).
    pub actual: Option<String>,
    /// Line of `actual` in the C file, when it is an operation.
    pub line: Option<usize>,
    /// Side-by-side context, ready to print.
    pub context: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Match,
    Mismatch(Mismatch),
    /// The function is not in the file.
    Missing,
    /// The reference says the function is gone, but the file has it.
    Present,
}

#[derive(Debug, Clone)]
pub struct FnReport {
    pub name: String,
    pub upstream: String,
    pub outcome: Outcome,
    /// The function's extracted outline (empty when missing).
    pub actual: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StructReport {
    pub name: String,
    /// One line per broken rule; empty when all hold.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub variant: String,
    pub upstream: Vec<String>,
    pub functions: Vec<FnReport>,
    pub structs: Vec<StructReport>,
}

impl Report {
    /// Every function and struct matches its reference.
    pub fn ok(&self) -> bool {
        self.functions.iter().all(|f| f.outcome == Outcome::Match)
            && self.structs.iter().all(|s| s.problems.is_empty())
    }

    /// Names of the functions that do not match.
    pub fn failed(&self) -> Vec<&str> {
        self.functions
            .iter()
            .filter(|f| f.outcome != Outcome::Match)
            .map(|f| f.name.as_str())
            .collect()
    }

    /// Human-readable summary: one line per function and struct, and the
    /// first mismatch of each failing function with its context.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "fidelity: variant {}", self.variant);
        for u in &self.upstream {
            let _ = writeln!(s, "  upstream: {u}");
        }
        for st in &self.structs {
            if st.problems.is_empty() {
                let _ = writeln!(s, "  ok    struct {}", st.name);
            } else {
                for p in &st.problems {
                    let _ = writeln!(s, "  FAIL  struct {}: {p}", st.name);
                }
            }
        }
        for f in &self.functions {
            let label = if f.upstream == f.name || f.upstream == "(gone)" {
                format!("{}()", f.name)
            } else {
                format!("{}() (upstream: {})", f.name, f.upstream)
            };
            match &f.outcome {
                Outcome::Match if f.upstream == "(gone)" => {
                    let _ = writeln!(s, "  ok    {}(): gone", f.name);
                }
                Outcome::Match => {
                    let _ = writeln!(s, "  ok    {label}: {} lines", f.actual.len());
                }
                Outcome::Missing => {
                    let _ = writeln!(s, "  FAIL  {label}: no such function in the file");
                }
                Outcome::Present => {
                    let _ = writeln!(s, "  FAIL  {label}: should be gone, but the file has it");
                }
                Outcome::Mismatch(m) => {
                    let exp = m.expected.as_deref().unwrap_or("(end of reference)");
                    let act = m.actual.as_deref().unwrap_or("(end of function)");
                    let at = m.line.map(|l| format!(" at line {l}")).unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "  FAIL  {label}: element {}: expected `{exp}`, found `{act}`{at}",
                        m.index
                    );
                    s.push_str(&m.context);
                }
            }
        }
        let _ = writeln!(
            s,
            "{}: {} of {} functions match",
            if self.ok() { "PASS" } else { "FAIL" },
            self.functions
                .iter()
                .filter(|f| f.outcome == Outcome::Match)
                .count(),
            self.functions.len()
        );
        s
    }
}

fn compare(want: &[Want], got: &[Item]) -> Option<usize> {
    let n = want.len().max(got.len());
    (0..n).find(|&k| match (want.get(k), got.get(k)) {
        (Some(w), Some(i)) => !want_matches(w, i),
        _ => true,
    })
}

fn context(want: &[Want], got: &[Item], at: usize) -> String {
    let lo = at.saturating_sub(3);
    let hi = (at + 4).min(want.len().max(got.len()));
    let rows: Vec<(String, String, String)> = (lo..hi)
        .map(|k| {
            let w = want.get(k).map(want_text).unwrap_or_default();
            let g = got.get(k).map(item_text).unwrap_or_default();
            let l = got
                .get(k)
                .and_then(Item::line)
                .map(|l| format!("line {l}"))
                .unwrap_or_default();
            (w, g, l)
        })
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(9);
    let mut s = format!(
        "        {:<4} {:<width$}  | {}\n",
        "#", "reference", "fs/eventpoll.c"
    );
    for (k, (w, g, l)) in (lo..hi).zip(rows) {
        let mark = if k == at { ">" } else { " " };
        let _ = writeln!(s, "      {mark} {k:<4} {w:<width$}  | {g}  {l}");
    }
    s
}

/// Check `eventpoll_c` (a patched `fs/eventpoll.c`) against a reference.
pub fn check(reference_text: &str, eventpoll_c: &str) -> Result<Report, FidelityError> {
    let r = parse_reference(reference_text)?;
    let src = Source::parse(eventpoll_c, &r.aliases)?;
    let mut structs = Vec::new();
    for (name, rules) in &r.structs {
        let mut problems = Vec::new();
        match src.structs.get(name) {
            None => problems.push("no such struct in the file".to_string()),
            Some(ms) => {
                for rule in rules {
                    match rule {
                        MemberRule::Has(ty, field) => match ms.iter().find(|m| &m.name == field) {
                            None => problems.push(format!("no member '{field}' (want {ty})")),
                            Some(m) if &m.ty != ty => problems
                                .push(format!("member '{field}' is '{}', want '{ty}'", m.ty)),
                            Some(_) => {}
                        },
                        MemberRule::Lacks(field) => {
                            if let Some(m) = ms.iter().find(|m| &m.name == field) {
                                problems
                                    .push(format!("member '{field}' ({}) should not exist", m.ty));
                            }
                        }
                    }
                }
            }
        }
        structs.push(StructReport {
            name: name.clone(),
            problems,
        });
    }
    let mut functions = Vec::new();
    for f in &r.functions {
        let Some(got) = sequence(&src, &f.name, &f.expand) else {
            functions.push(FnReport {
                name: f.name.clone(),
                upstream: f.upstream.clone(),
                outcome: Outcome::Missing,
                actual: Vec::new(),
            });
            continue;
        };
        let outcome = match compare(&f.want, &got) {
            None => Outcome::Match,
            Some(k) => Outcome::Mismatch(Mismatch {
                index: k,
                expected: f.want.get(k).map(want_text),
                actual: got.get(k).map(item_text),
                line: got.get(k).and_then(Item::line),
                context: context(&f.want, &got, k),
            }),
        };
        functions.push(FnReport {
            name: f.name.clone(),
            upstream: f.upstream.clone(),
            outcome,
            actual: outline(&got),
        });
    }
    for g in &r.gone {
        functions.push(FnReport {
            name: g.clone(),
            upstream: "(gone)".into(),
            outcome: if src.has(g) {
                Outcome::Present
            } else {
                Outcome::Match
            },
            actual: Vec::new(),
        });
    }
    Ok(Report {
        variant: r.variant,
        upstream: r.upstream,
        functions,
        structs,
    })
}

/// The outline of one function of `eventpoll_c`, as the checker sees it
/// (for reading a file while writing or reviewing a reference; the
/// reference itself must come from the upstream file).
pub fn describe(eventpoll_c: &str, function: &str, expand: &[&str]) -> Result<String, String> {
    let src = Source::parse(eventpoll_c, &BTreeMap::new()).map_err(|e| e.to_string())?;
    let ex: BTreeSet<String> = expand.iter().map(|s| s.to_string()).collect();
    let items = sequence(&src, function, &ex).ok_or_else(|| format!("no function {function}"))?;
    Ok(outline(&items).join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = r#"
#include <linux/x.h>
struct thing {
	union { int a; long b; };
	spinlock_t lock;   /* comment */
	struct list_head items;
	int arr[4];
};
static void helper(struct thing *t) { spin_lock(&t->lock); spin_unlock(&t->lock); }
static int quiet(int x) { return x + 1; }
static bool probe(struct thing *t)
{
	// a comment with mutex_lock(&t->m) in it
	if (!mutex_trylock(&t->m))
		return true;
	quiet(3);
	helper(t);
	list_for_each_entry_safe(a, b, &t->items, node) {
		if (waitqueue_active(&t->wq))
			wake_up(&t->wq);
		else
			list_del_init(&a->node);
	}
	mutex_unlock(&t->m);
	return false;
}
"#;

    fn seq(src: &str, f: &str, expand: &[&str]) -> Vec<String> {
        let s = Source::parse(src, &BTreeMap::new()).unwrap();
        let ex = expand.iter().map(|s| s.to_string()).collect();
        outline(&sequence(&s, f, &ex).unwrap())
            .iter()
            .map(|l| l.trim().to_string())
            .collect()
    }

    #[test]
    fn extracts_ops_structure_and_helpers() {
        assert_eq!(
            seq(SNIPPET, "probe", &[]),
            [
                "if mutex_trylock(t->m) {",
                "return true",
                "}",
                "helper(t)",
                "loop list_for_each_entry_safe(a, b, t->items, node) {",
                "if waitqueue_active(t->wq) {",
                "wake_up(t->wq)",
                "} else {",
                "list_del_init(a->node)",
                "}",
                "}",
                "mutex_unlock(t->m)",
                "return false",
            ]
        );
        // Expanding the helper splices its operations in place.
        let ex = seq(SNIPPET, "probe", &["helper"]);
        assert_eq!(ex[3], "spin_lock(t->lock)");
        assert_eq!(ex[4], "spin_unlock(t->lock)");
    }

    #[test]
    fn formatting_does_not_matter() {
        let squashed: String = SNIPPET
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ")
            .replace("// a comment with mutex_lock(&t->m) in it", "");
        // Line breaks inside calls and argument lists (a // comment
        // would swallow the rest of its line, so only code lines).
        let spaced: String = SNIPPET
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    l.to_string()
                } else {
                    l.replace('(', " (\n\t").replace(',', " ,\n")
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let want = seq(SNIPPET, "probe", &[]);
        assert_eq!(seq(&squashed, "probe", &[]), want);
        assert_eq!(seq(&spaced, "probe", &[]), want);
    }

    #[test]
    fn struct_members() {
        let s = Source::parse(SNIPPET, &BTreeMap::new()).unwrap();
        let m = &s.structs["thing"];
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "lock", "items", "arr"]);
        assert_eq!(m[2].ty, "spinlock_t");
        assert_eq!(m[3].ty, "struct list_head");
    }

    const REF: &str = "reference demo\nupstream a made-up file\n\
        struct thing\n  has spinlock_t lock\n  lacks seq\nend\n\
        fn probe\n  if mutex_trylock(*m) {\n    return true\n  }\n  helper\n\
        loop list_for_each_entry_safe(_, _, t->items, ...) {\n\
        if waitqueue_active(t->wq) {\n wake_up(t->wq)\n } else {\n list_del_init(_)\n }\n }\n\
        mutex_unlock(t->m)\n  return false\nend\n";

    #[test]
    fn reference_matches_and_patterns_work() {
        let r = check(REF, SNIPPET).unwrap();
        assert!(r.ok(), "{}", r.render());
    }

    #[test]
    fn plain_check_instead_of_trylock_fails() {
        let mutated = SNIPPET.replace("!mutex_trylock(&t->m)", "mutex_is_locked(&t->m)");
        let r = check(REF, &mutated).unwrap();
        assert!(!r.ok());
        assert_eq!(r.failed(), ["probe"]);
        let Outcome::Mismatch(m) = &r.functions[0].outcome else {
            panic!("{}", r.render())
        };
        assert_eq!(m.index, 1);
        assert_eq!(m.expected.as_deref(), Some("mutex_trylock(*m)"));
        assert_eq!(m.actual.as_deref(), Some("mutex_is_locked(t->m)"));
        assert!(r.render().contains("expected `mutex_trylock(*m)`"));
    }

    #[test]
    fn wakeup_moved_out_of_its_guard_fails() {
        let mutated = SNIPPET.replace(
            "if (waitqueue_active(&t->wq))\n\t\t\twake_up(&t->wq);\n\t\telse\n\t\t\tlist_del_init(&a->node);",
            "if (waitqueue_active(&t->wq))\n\t\t\t;\n\t\telse\n\t\t\tlist_del_init(&a->node);\n\t\twake_up(&t->wq);",
        );
        assert_ne!(mutated, SNIPPET);
        assert!(!check(REF, &mutated).unwrap().ok());
    }

    #[test]
    fn struct_rules_fail() {
        let mutated = SNIPPET.replace("spinlock_t lock;", "rwlock_t lock; seqcount_t seq;");
        let r = check(REF, &mutated).unwrap();
        assert!(!r.ok());
        assert_eq!(r.structs[0].problems.len(), 2, "{:?}", r.structs);
    }

    #[test]
    fn missing_function_and_bad_reference() {
        let r = check(&REF.replace("fn probe", "fn nope"), SNIPPET).unwrap();
        assert_eq!(r.functions[0].outcome, Outcome::Missing);
        assert!(matches!(
            check("fn x\n  what is this(\nend\n", SNIPPET),
            Err(FidelityError::Reference(2, _))
        ));
        assert!(matches!(
            check("fn x\n", SNIPPET),
            Err(FidelityError::Reference(_, _))
        ));
    }

    #[test]
    fn list_heads_only_for_read_once() {
        let c = "void f(struct e *ep) { x = READ_ONCE(ep->napi_id); y = READ_ONCE(ep->ovflist); \
                 WRITE_ONCE(ep->ovflist, NULL); }";
        assert_eq!(
            seq(c, "f", &[]),
            ["READ_ONCE(ep->ovflist)", "WRITE_ONCE(ep->ovflist, NULL)"]
        );
    }

    #[test]
    fn aliases_rename_components() {
        let c = "void f(struct e *ep) { list_splice(scan_batch, &ep->rdllist); }";
        let mut a = BTreeMap::new();
        a.insert("scan_batch".to_string(), "txlist".to_string());
        let s = Source::parse(c, &a).unwrap();
        let items = sequence(&s, "f", &BTreeSet::new()).unwrap();
        assert_eq!(outline(&items), ["list_splice(txlist, ep->rdllist)"]);
    }
}
