//! `cargo xtask tidy`: source rules that rustc and clippy do not check (rust-analyzer's
//! tidy tests are the model). Each violation prints as `path:line: message`.
//!
//! - every `unsafe` block, impl or extern block has a `// SAFETY:` comment directly above it
//!   (or on its line); every `unsafe fn`/`unsafe trait` has a `# Safety` doc section (or a
//!   `SAFETY:` comment);
//! - no `.unwrap()`/`.expect(` in library code (`crates/*/src`, outside `#[cfg(test)]`
//!   items and the bench and stress crates) unless the line or the line above has a
//!   comment saying why it cannot fail: one containing [`UNWRAP_MARKERS`];
//! - no `.rs` file over [`MAX_LINES`] lines;
//! - every crate's `src/lib.rs` opens with a `//!` summary and its `//!` docs hold a code
//!   example (a ```` ``` ```` fence);
//! - the modules of a layered crate (evloop-core) depend one way: a module names only
//!   modules below it in the order [`layers::CORE_LAYERS`] declares.

mod layers;
mod lex;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cmd::{Failed, Outcome};
use lex::{Line, lex};

/// The longest a `.rs` file may be.
pub(crate) const MAX_LINES: usize = 800;

/// A comment containing one of these (case-insensitive) justifies an `unwrap`/`expect`.
pub(crate) const UNWRAP_MARKERS: &[&str] = &["cannot fail", "infallible:"];

/// Crates whose `src/` is not library code for the unwrap rule.
const NON_LIBRARY_CRATES: &[&str] = &["crates/bench", "crates/stress"];

/// Which rule a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Safety,
    Unwrap,
    FileSize,
    CrateDocs,
    Layers,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Safety,
        Kind::Unwrap,
        Kind::FileSize,
        Kind::CrateDocs,
        Kind::Layers,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Safety => "unsafe without SAFETY comment",
            Kind::Unwrap => "unwrap/expect in library code",
            Kind::FileSize => "file over 800 lines",
            Kind::CrateDocs => "lib.rs summary/example",
            Kind::Layers => "module used above its layer",
        }
    }
}

/// One broken rule at one place.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// `cargo xtask tidy`: prints every violation and fails if there is one.
pub(crate) fn check(root: &Path) -> Outcome {
    println!("==> tidy");
    let violations = match violations(root) {
        Ok(v) => v,
        Err(err) => {
            eprintln!("cargo xtask tidy: cannot read the sources: {err}");
            return Err(Failed(1));
        }
    };
    for v in &violations {
        println!("{v}");
    }
    if violations.is_empty() {
        println!("cargo xtask tidy: clean");
        return Ok(());
    }
    eprintln!("cargo xtask tidy: {} violations", violations.len());
    for kind in Kind::ALL {
        let n = violations.iter().filter(|v| v.kind == kind).count();
        if n > 0 {
            eprintln!("    {n:>4}  {}", kind.name());
        }
    }
    Err(Failed(1))
}

/// Every violation under `root`, sorted by path and line.
pub(crate) fn violations(root: &Path) -> std::io::Result<Vec<Violation>> {
    let mut files = Vec::new();
    rust_files(root, root, &mut files)?;
    files.sort();
    let mut out = Vec::new();
    let mut test_modules = Vec::new();
    for rel in &files {
        let text = std::fs::read_to_string(root.join(rel))?;
        let lines = lex(&text);
        let library = is_library(rel);
        check_file(rel, &lines, library, &mut out, &mut test_modules);
        layers::check(rel, &lines, &mut out);
    }
    // Files that are `#[cfg(test)] mod x;` are tests, not library code.
    out.retain(|v| v.kind != Kind::Unwrap || !test_modules.iter().any(|m| v.path.starts_with(m)));
    for lib in files.iter().filter(|p| is_crate_lib(p)) {
        let text = std::fs::read_to_string(root.join(lib))?;
        crate_docs(lib, &text, &mut out);
    }
    out.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok(out)
}

/// Collects the workspace's `.rs` files (relative to `root`), skipping `target` and
/// hidden directories.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name.starts_with('.') || (dir == root && name == "target") {
                continue;
            }
            rust_files(root, &path, out)?;
        } else if name.ends_with(".rs") {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// `crates/NAME/src/**` of a crate that is not the bench or stress crate.
fn is_library(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let mut parts = s.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("crates"), Some(_), Some("src"))
    ) && !NON_LIBRARY_CRATES
        .iter()
        .any(|c| s.starts_with(&format!("{c}/")))
}

/// `crates/NAME/src/lib.rs`.
fn is_crate_lib(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 4 && parts[0] == "crates" && parts[2] == "src" && parts[3] == "lib.rs"
}

fn push(out: &mut Vec<Violation>, path: &Path, line: usize, kind: Kind, message: String) {
    out.push(Violation {
        path: path.to_path_buf(),
        line,
        kind,
        message,
    });
}

/// The unsafe, unwrap and size rules for one lexed file.
fn check_file(
    rel: &Path,
    lines: &[Line],
    library: bool,
    out: &mut Vec<Violation>,
    test_modules: &mut Vec<PathBuf>,
) {
    if lines.len() > MAX_LINES {
        let msg = format!(
            "file has {} lines (limit {MAX_LINES}); split it",
            lines.len()
        );
        push(out, rel, 1, Kind::FileSize, msg);
    }
    let in_test = test_items(rel, lines, test_modules);
    for (i, line) in lines.iter().enumerate() {
        for (kind, what) in unsafe_uses(&line.code) {
            if !unsafe_documented(lines, i, kind) {
                let need = if kind == UnsafeKind::Decl {
                    "a `# Safety` doc section"
                } else {
                    "a `// SAFETY:` comment directly above"
                };
                push(
                    out,
                    rel,
                    i + 1,
                    Kind::Safety,
                    format!("`{what}` without {need}"),
                );
            }
        }
        if library && !in_test[i] {
            for call in [".unwrap()", ".expect("] {
                if line.code.contains(call) && !unwrap_justified(lines, i) {
                    let msg = format!(
                        "`{call}` in library code without a comment saying why it cannot fail \
                         (a comment containing \"cannot fail\" or \"infallible:\")"
                    );
                    push(out, rel, i + 1, Kind::Unwrap, msg);
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum UnsafeKind {
    /// A block, impl or extern block: needs `SAFETY:`.
    Use,
    /// An `unsafe fn` or `unsafe trait`: needs `# Safety` (or `SAFETY:`).
    Decl,
}

/// The `unsafe` keywords on a line of code, with what follows them.
fn unsafe_uses(code: &str) -> Vec<(UnsafeKind, &'static str)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut start = 0;
    while let Some(pos) = code[start..].find("unsafe") {
        let at = start + pos;
        let end = at + "unsafe".len();
        start = end;
        if (at > 0 && is_ident(bytes[at - 1])) || bytes.get(end).is_some_and(|&b| is_ident(b)) {
            continue;
        }
        let next = code[end..].trim_start();
        let word: String = next.chars().take_while(|c| c.is_alphanumeric()).collect();
        let item = match (next.chars().next(), word.as_str()) {
            (Some('{'), _) => (UnsafeKind::Use, "unsafe {}"),
            (_, "impl") => (UnsafeKind::Use, "unsafe impl"),
            (_, "extern") => (UnsafeKind::Use, "unsafe extern"),
            // `unsafe fn(..)` is a function pointer type, not a declaration.
            (_, "fn") if next[2..].trim_start().starts_with('(') => continue,
            (_, "fn") => (UnsafeKind::Decl, "unsafe fn"),
            (_, "trait") => (UnsafeKind::Decl, "unsafe trait"),
            // `#[unsafe(no_mangle)]`, `unsafe` at a line end before `{`, ...
            (None, _) => (UnsafeKind::Use, "unsafe {}"),
            _ => continue,
        };
        found.push(item);
    }
    found
}

/// The comment lines directly above line `i` (skipping attributes), nearest first, plus
/// line `i`'s own comment.
fn comments_above(lines: &[Line], i: usize) -> Vec<&str> {
    let mut found = vec![lines[i].comment.as_str()];
    for line in lines[..i].iter().rev() {
        let code = line.code.trim();
        if code.is_empty() && !line.comment.is_empty() {
            found.push(&line.comment);
        } else if code.starts_with("#[") || code.starts_with("#![") {
            continue;
        } else {
            break;
        }
    }
    found
}

fn unsafe_documented(lines: &[Line], i: usize, kind: UnsafeKind) -> bool {
    comments_above(lines, i)
        .iter()
        .any(|c| c.contains("SAFETY:") || (kind == UnsafeKind::Decl && c.contains("# Safety")))
}

fn unwrap_justified(lines: &[Line], i: usize) -> bool {
    let here = std::iter::once(lines[i].comment.as_str());
    let above = i.checked_sub(1).map(|j| lines[j].comment.as_str());
    here.chain(above).any(|c| {
        let c = c.to_lowercase();
        UNWRAP_MARKERS.iter().any(|m| c.contains(m))
    })
}

/// For each line, whether it belongs to a `#[cfg(test)]` item; records the files of
/// `#[cfg(test)] mod name;` declarations in `test_modules`.
fn test_items(rel: &Path, lines: &[Line], test_modules: &mut Vec<PathBuf>) -> Vec<bool> {
    let mut in_test = vec![false; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let code = lines[i].code.trim();
        if !(code.starts_with("#[cfg(") && is_test_cfg(code)) {
            i += 1;
            continue;
        }
        // The item after the attribute(s): up to its closing brace or `;` at depth 0.
        let mut depth: i64 = 0;
        let mut opened = false;
        let mut j = i;
        while j < lines.len() {
            in_test[j] = true;
            let code = lines[j].code.trim();
            if j > i && !opened && !code.starts_with('#') {
                if let Some(name) = mod_decl(code) {
                    test_modules.extend(module_files(rel, name));
                }
            }
            for c in lines[j].code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let attr = code.starts_with('#');
            if !attr && ((opened && depth <= 0) || (!opened && code.ends_with(';'))) {
                break;
            }
            j += 1;
        }
        i = j + 1;
    }
    in_test
}

/// `cfg(test)`, `cfg(all(test, ..))`, `cfg(any(test, ..))`, but not `cfg(not(test))`.
fn is_test_cfg(attr: &str) -> bool {
    let inner = attr.trim_start_matches("#[cfg(");
    inner.starts_with("test)") || inner.starts_with("all(test") || inner.starts_with("any(test")
}

/// `NAME` of `mod NAME;` / `pub(crate) mod NAME;`.
fn mod_decl(code: &str) -> Option<&str> {
    let rest = code.strip_suffix(';')?;
    let rest = rest.split_once("mod ")?.1.trim();
    rest.chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(rest)
}

/// Where module `name` declared in `rel` lives: `name.rs` and the directory `name/` (its
/// `mod.rs` and submodules), beside a `lib.rs`/`main.rs`/`mod.rs`, else in the directory named after `rel`.
fn module_files(rel: &Path, name: &str) -> [PathBuf; 2] {
    let dir = rel.parent().unwrap_or(Path::new(""));
    let stem = rel.file_stem().map(|s| s.to_string_lossy().into_owned());
    let base = match stem.as_deref() {
        Some("lib" | "main" | "mod") | None => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
    };
    [base.join(format!("{name}.rs")), base.join(name)]
}

/// A crate's lib.rs opens with a `//!` summary and its `//!` docs contain an example.
fn crate_docs(rel: &Path, text: &str, out: &mut Vec<Violation>) {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !first.trim_start().starts_with("//!") {
        let msg = "lib.rs does not open with a `//!` summary of the crate".to_owned();
        push(out, rel, 1, Kind::CrateDocs, msg);
    }
    let example = text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("//!")
            .is_some_and(|d| d.trim_start().starts_with("```"))
    });
    if !example {
        let msg = "the crate docs (`//!`) have no code example (```)".to_owned();
        push(out, rel, 1, Kind::CrateDocs, msg);
    }
}

#[cfg(test)]
mod tests;
