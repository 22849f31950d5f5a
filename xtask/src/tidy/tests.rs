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
