//! The layer rule: the modules of a crate depend one way. A crate's modules are declared in an
//! order, lowest first; code in a module may name (with a `crate::` or `super::` path) only
//! modules at or below its own place. Paths in comments and strings do not count (the lexer
//! blanks them), and neither do inherent methods: calling a method an upper module defines on
//! a lower module's type is invisible here, so keep the methods lower modules call in the
//! lower modules.

use std::path::Path;

use super::lex::Line;
use super::{Kind, Violation, push};

/// The layered crates: their `src` directory and their modules, lowest first. An entry
/// `a::b` is a layer of its own; the rest of module `a` is the entry `a`. The crate root
/// (`lib.rs`) composes the modules and is not checked.
pub(crate) const LAYERED: &[(&str, &[&str])] = &[("crates/core/src", CORE_LAYERS)];

/// evloop-core's modules, lowest first (docs/ARCHITECTURE.md says what each holds).
pub(crate) const CORE_LAYERS: &[&str] = &[
    "error",
    "task",
    "task_local",
    "task_trace",
    "exception",
    "time",
    "quad_heap",
    "timer_heap",
    "task_table",
    "work",
    "metrics",
    "shared",
    "loop_handle",
    "fd_watchers",
    "loop_state",
    "running",
    "exception_handler",
    "handle",
    "sleep",
    "event_loop::fd_watch",
    "event_loop::step",
    "event_loop::main_task",
    "event_loop::run",
    "event_loop::close",
    "event_loop::spawn",
    "event_loop",
    "task_dump",
    "loop_future",
    "task_done",
];

/// The layer rule for `rel`, if it is in a layered crate.
pub(crate) fn check(rel: &Path, lines: &[Line], out: &mut Vec<Violation>) {
    for (src, layers) in LAYERED {
        if let Ok(inside) = rel.strip_prefix(src) {
            check_module(rel, &module_path(inside), lines, layers, out);
        }
    }
}

/// The module path of a file relative to its crate's `src` (`a/b.rs`, `a/b/mod.rs`: `a::b`;
/// `lib.rs`: the root, empty).
pub(crate) fn module_path(inside: &Path) -> Vec<String> {
    let mut parts: Vec<String> = inside
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        if let Some(stem) = last.strip_suffix(".rs") {
            *last = stem.to_owned();
        }
    }
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The index in `layers` of the longest entry that is a prefix of `path`.
fn layer_of(path: &[String], layers: &[&str]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, entry) in layers.iter().enumerate() {
        let segs: Vec<&str> = entry.split("::").collect();
        let is_prefix = segs.len() <= path.len() && segs.iter().zip(path).all(|(a, b)| a == b);
        if is_prefix && best.is_none_or(|(len, _)| segs.len() > len) {
            best = Some((segs.len(), i));
        }
    }
    best.map(|(_, i)| i)
}

/// The layer rule for one file of module `module` (relative to its crate).
pub(crate) fn check_module(
    rel: &Path,
    module: &[String],
    lines: &[Line],
    layers: &[&str],
    out: &mut Vec<Violation>,
) {
    if module.is_empty() {
        return;
    }
    let Some(own) = layer_of(module, layers) else {
        let msg = format!(
            "module `{}` is not in the layer order (xtask/src/tidy/layers.rs): add it where \
             it belongs",
            module.join("::")
        );
        push(out, rel, 1, Kind::Layers, msg);
        return;
    };
    for (line, path) in paths(module, lines) {
        let shown = if path.is_empty() {
            "the crate root".to_owned()
        } else {
            format!("`crate::{}`", path.join("::"))
        };
        match layer_of(&path, layers) {
            Some(to) if to <= own => {}
            Some(to) => {
                let msg = format!(
                    "`{}` uses {shown}, which is above it in the layer order (`{}` comes after \
                     `{}` in xtask/src/tidy/layers.rs): move what both need down",
                    module.join("::"),
                    layers[to],
                    layers[own]
                );
                push(out, rel, line, Kind::Layers, msg);
            }
            None => {
                let msg = format!(
                    "`{}` uses {shown}, which is no module in the layer order: name the module \
                     that defines the item",
                    module.join("::")
                );
                push(out, rel, line, Kind::Layers, msg);
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// The code of `lines` as tokens, each with its 1-based line.
fn tokens(lines: &[Line]) -> Vec<(usize, Tok)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let chars: Vec<char> = line.code.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            if c.is_alphanumeric() || c == '_' {
                let start = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                out.push((i + 1, Tok::Ident(chars[start..j].iter().collect())));
                continue;
            }
            if c == ':' && chars.get(j + 1) == Some(&':') {
                out.push((i + 1, Tok::PathSep));
                j += 2;
                continue;
            }
            if !c.is_whitespace() {
                out.push((i + 1, Tok::Punct(c)));
            }
            j += 1;
        }
    }
    out
}

/// Every `crate::`/`super::` path in the code, resolved to a path from the crate root (with
/// the item name, if any, still on it), with its line. `module` is the file's module; inline
/// `mod name { .. }` blocks are followed, so `super` inside them means the file's module.
fn paths(module: &[String], lines: &[Line]) -> Vec<(usize, Vec<String>)> {
    let toks = tokens(lines);
    let ident = |k: usize| match toks.get(k) {
        Some((_, Tok::Ident(s))) => Some(s.as_str()),
        _ => None,
    };
    let is = |k: usize, t: &Tok| toks.get(k).is_some_and(|(_, x)| x == t);
    let mut found = Vec::new();
    let mut current: Vec<String> = module.to_vec();
    // Inline modules entered: the brace depth their body opened at.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut k = 0;
    while k < toks.len() {
        match &toks[k].1 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    current.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(m) if m == "mod" => {
                if let Some(name) = ident(k + 1) {
                    if is(k + 2, &Tok::Punct('{')) {
                        current.push(name.to_owned());
                        inline.push(depth + 1);
                    }
                }
            }
            Tok::Ident(start)
                if (start == "crate" || start == "super") && is(k + 1, &Tok::PathSep) =>
            {
                let after_dollar = k > 0 && is(k - 1, &Tok::Punct('$'));
                let line = toks[k].0;
                let mut base: Vec<String> = if start == "crate" {
                    Vec::new()
                } else {
                    current.clone()
                };
                if start == "super" {
                    base.pop();
                }
                k += 2;
                while ident(k) == Some("super") && is(k + 1, &Tok::PathSep) {
                    base.pop();
                    k += 2;
                }
                let (chains, next) = chains_at(&toks, k);
                if !after_dollar {
                    for chain in chains {
                        let mut path = base.clone();
                        path.extend(chain);
                        found.push((line, path));
                    }
                }
                k = next;
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    found
}

/// The path chains at token `k` (after a `crate::`/`super::` prefix): one `a::b::c` chain, or
/// the leading chain of each element of a `{a::X, b::{..}, self}` group (`self` is the empty
/// chain). Returns them and the index of the first token after.
fn chains_at(toks: &[(usize, Tok)], mut k: usize) -> (Vec<Vec<String>>, usize) {
    let chain = |mut k: usize| {
        let mut segs = Vec::new();
        while let Some((_, Tok::Ident(s))) = toks.get(k) {
            if s != "self" {
                segs.push(s.clone());
            }
            k += 1;
            if !toks.get(k).is_some_and(|(_, t)| *t == Tok::PathSep) {
                break;
            }
            k += 1;
        }
        (segs, k)
    };
    if !toks.get(k).is_some_and(|(_, t)| *t == Tok::Punct('{')) {
        let (segs, next) = chain(k);
        return (vec![segs], next);
    }
    let mut chains = Vec::new();
    let mut depth = 0usize;
    let mut expect_chain = true;
    while k < toks.len() {
        match &toks[k].1 {
            Tok::Punct('{') => {
                depth += 1;
                expect_chain = depth == 1;
                k += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                k += 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Punct(',') => {
                expect_chain = depth == 1;
                k += 1;
            }
            Tok::Ident(_) if expect_chain => {
                let (segs, next) = chain(k);
                chains.push(segs);
                expect_chain = false;
                k = next;
            }
            _ => k += 1,
        }
    }
    (chains, k)
}
