use std::path::Path;

use super::lex::lex;
use super::*;

fn check(src: &str, library: bool) -> Vec<(usize, Kind)> {
    let mut out = Vec::new();
    let mut test_modules = Vec::new();
    check_file(
        Path::new("crates/x/src/a.rs"),
        &lex(src),
        library,
        &mut out,
        &mut test_modules,
    );
    out.iter().map(|v| (v.line, v.kind)).collect()
}

#[test]
fn the_lexer_separates_code_strings_and_comments() {
    let lines = lex("let s = \"unsafe { // no\"; // a comment\n/* block\n still */ x.unwrap()");
    assert_eq!(lines[0].code.trim(), "let s = \"\";");
    assert_eq!(lines[0].comment, "// a comment");
    assert_eq!(lines[1].code, "");
    assert_eq!(lines[2].code.trim(), "x.unwrap()");
    let raw = lex("let r = r#\"a \"unsafe\" b\"#; let c = '\"'; let l: &'a str = \"\";");
    assert_eq!(
        raw[0].code,
        "let r = \"\"; let c = ' '; let l: &'a str = \"\";"
    );
}

#[test]
fn unsafe_needs_a_safety_comment_above() {
    let src = "\
// SAFETY: the pointer is live.
let a = unsafe { *p };
let b = unsafe { *p };
/// Does things.
///
/// # Safety
/// `p` must be live.
#[inline]
pub unsafe fn f(p: *const u8) {}
pub unsafe fn g() {}
unsafe impl Send for X {}
#![forbid(unsafe_code)]
let s = \"unsafe {\";
struct V { f: unsafe fn(*const ()) }
";
    assert_eq!(
        check(src, false),
        [(3, Kind::Safety), (10, Kind::Safety), (11, Kind::Safety)]
    );
}

#[test]
fn unwrap_in_library_code_needs_a_reason() {
    let src = "\
fn f() {
    a.unwrap();
    // Infallible: the slot was filled above.
    b.unwrap();
    c.expect(\"x\"); // cannot fail: checked by the caller
    d.unwrap_or(0);
}
#[cfg(test)]
mod tests {
    fn t() { e.unwrap(); }
}
fn g() { f.expect(\"y\"); }
";
    assert_eq!(check(src, true), [(2, Kind::Unwrap), (12, Kind::Unwrap)]);
    assert!(check(src, false).is_empty());
}

#[test]
fn long_files_are_reported_once() {
    let src = "fn f() {}\n".repeat(MAX_LINES + 1);
    assert_eq!(check(&src, true), [(1, Kind::FileSize)]);
}

#[test]
fn crate_docs_need_a_summary_and_an_example() {
    let mut out = Vec::new();
    crate_docs(
        Path::new("l.rs"),
        "//! Summary.\n//!\n//! ```\n//! x\n//! ```\n",
        &mut out,
    );
    assert!(out.is_empty());
    crate_docs(
        Path::new("l.rs"),
        "#![doc = \"x\"]\n//! Summary.\n",
        &mut out,
    );
    assert_eq!(out.len(), 2);
}

#[test]
fn the_library_is_crates_src_minus_bench_and_stress() {
    assert!(is_library(Path::new("crates/core/src/work.rs")));
    assert!(!is_library(Path::new("crates/core/tests/work.rs")));
    assert!(!is_library(Path::new("crates/bench/src/main.rs")));
    assert!(!is_library(Path::new("crates/stress/src/lib.rs")));
    assert!(!is_library(Path::new("xtask/src/main.rs")));
    assert!(is_crate_lib(Path::new("crates/core/src/lib.rs")));
}

#[test]
fn cfg_test_module_files_are_recorded() {
    let mut modules = Vec::new();
    test_items(
        Path::new("crates/core/src/task/mod.rs"),
        &lex("#[cfg(test)]\nmod tests;\nfn f() {}\n"),
        &mut modules,
    );
    assert!(modules.contains(&Path::new("crates/core/src/task/tests.rs").to_path_buf()));
    assert!(modules.contains(&Path::new("crates/core/src/task/tests").to_path_buf()));
}

fn layer_check(module: &str, src: &str, layers: &[&str]) -> Vec<(usize, Kind)> {
    let mut out = Vec::new();
    let module: Vec<String> = module.split("::").map(str::to_owned).collect();
    layers::check_module(
        Path::new("crates/x/src/m.rs"),
        &module,
        &lex(src),
        layers,
        &mut out,
    );
    out.iter().map(|v| (v.line, v.kind)).collect()
}

#[test]
fn a_module_may_use_only_modules_below_it() {
    let layers = ["a", "b", "c::x", "c"];
    let src = "\
use crate::a::X;
use crate::c::Y;
use crate::{a::Z, c::x::W};
fn f() { crate::a::g(); let s = \"crate::c::s\"; } // crate::c::doc
pub(crate) fn h() { $crate::c::m!(); }
use crate::{
    a::{P, Q},
    c::R,
};
#[cfg(test)]
mod tests {
    use super::*;
    use crate::b::T;
}
use crate::Reexported;
use super::*;
";
    assert_eq!(
        layer_check("b", src, &layers),
        [
            (2, Kind::Layers),
            (3, Kind::Layers),
            (6, Kind::Layers),
            (15, Kind::Layers),
            (16, Kind::Layers)
        ]
    );
    // The same code one layer up uses nothing above it, but still the crate root.
    assert_eq!(
        layer_check("c", src, &layers),
        [(15, Kind::Layers), (16, Kind::Layers)]
    );
}

#[test]
fn a_submodule_layered_below_its_parent_may_not_use_the_parent() {
    let layers = ["a", "c::x", "c"];
    let child = "use super::Thing;\nuse super::super::a::A;\nuse crate::c::x::Own;\n";
    assert_eq!(layer_check("c::x", child, &layers), [(1, Kind::Layers)]);
    // The parent (and any other part of `c`) may use the child.
    assert!(layer_check("c::y", "use crate::c::x::T;\nuse super::x::U;\n", &layers).is_empty());
    // A module the order does not list is reported once, at line 1.
    assert_eq!(
        layer_check("d", "use crate::c::C;\n", &layers),
        [(1, Kind::Layers)]
    );
}

#[test]
fn the_core_order_rejects_the_old_cycles() {
    // work → running (`Shared::send` called `running::push_local`), sleep → event_loop,
    // an event_loop child → its parent (fd_watch used `super::LoopInner`).
    let core = layers::CORE_LAYERS;
    assert_eq!(
        layer_check("work", "use crate::running;\n", core),
        [(1, Kind::Layers)]
    );
    let sleep = "use crate::event_loop::EventLoop;\n";
    assert_eq!(layer_check("sleep", sleep, core), [(1, Kind::Layers)]);
    let fd = "use super::{EventLoop, LoopInner};\n";
    assert_eq!(
        layer_check("event_loop::fd_watch", fd, core),
        [(1, Kind::Layers), (1, Kind::Layers)]
    );
    let state = "use crate::shared::Shared;\nuse crate::time::deadline_after;\n";
    assert!(layer_check("loop_state", state, core).is_empty());
}

#[test]
fn module_paths_come_from_file_paths() {
    let path = |p: &str| layers::module_path(Path::new(p));
    assert_eq!(path("work.rs"), ["work"]);
    assert_eq!(path("event_loop/mod.rs"), ["event_loop"]);
    assert_eq!(path("event_loop/run.rs"), ["event_loop", "run"]);
    assert!(path("lib.rs").is_empty());
}
