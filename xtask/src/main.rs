//! evloop's build driver, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! Std only, on purpose: it must build in seconds on a fresh machine. Every
//! task runs its commands from the workspace root, echoes each one as
//! `==> ...`, and stops at the first failure with that failure's exit code.

mod cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cmd::{Failed, Outcome, Step};

/// The tasks, with the one-line description `help` prints.
const TASKS: &[(&str, &str)] = &[
    (
        "test",
        "fmt check, clippy -D warnings, cargo test --workspace [ARGS], rustdoc -D warnings",
    ),
    (
        "miri",
        "cargo +nightly miri test --lib for evloop-core and evloop-reactor [ARGS]",
    ),
    (
        "loom",
        "the loom model of the task state machine (evloop-core, --cfg loom) [ARGS]",
    ),
    (
        "bench",
        "cargo run --release -p evloop-bench -- [ARGS] (needs crates/bench)",
    ),
    ("ci", "what CI runs: `test`, then `miri`"),
    ("help", "print this list"),
];

/// The benchmark package, excluded from the workspace-wide checks.
const BENCH_PACKAGE: &str = "evloop-bench";

/// Miri flags used when the caller has not set `MIRIFLAGS`.
const DEFAULT_MIRIFLAGS: &str = "-Zmiri-strict-provenance";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();

    let outcome = match task.as_deref() {
        None | Some("help" | "-h" | "--help") => {
            print_help();
            Ok(())
        }
        Some("test") => test(&root, &rest),
        Some("miri") => miri(&root, &rest),
        Some("bench") => bench(&root, &rest),
        Some("loom") => loom(&root, &rest),
        Some("ci") => test(&root, &[]).and_then(|()| miri(&root, &[])),
        Some(other) => {
            eprintln!("cargo xtask: unknown task `{other}`\n");
            print_help();
            Err(Failed(2))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed(code)) => ExitCode::from(code),
    }
}

fn print_help() {
    println!("Usage: cargo xtask <task> [args]\n\nTasks:");
    for (name, about) in TASKS {
        println!("  {name:<6} {about}");
    }
}

/// The workspace root: the parent of this crate's directory. Prefers the
/// `CARGO_MANIFEST_DIR` that `cargo run` sets, falling back to the one this
/// binary was built with.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

/// Whether the benchmark crate exists (it is a member through `crates/*`).
fn has_bench(root: &Path) -> bool {
    root.join("crates/bench/Cargo.toml").is_file()
}

/// `--workspace`, plus `--exclude evloop-bench` when that crate exists.
fn workspace_flags(root: &Path) -> Vec<&'static str> {
    let mut flags = vec!["--workspace"];
    if has_bench(root) {
        flags.extend(["--exclude", BENCH_PACKAGE]);
    }
    flags
}

/// `cargo xtask test [ARGS]`: fmt, clippy, tests (ARGS go to `cargo test`), docs.
fn test(root: &Path, extra: &[String]) -> Outcome {
    let ws = workspace_flags(root);
    let rustdocflags = match std::env::var("RUSTDOCFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} -D warnings"),
        _ => "-D warnings".to_owned(),
    };
    let steps = [
        Step::cargo().args(["fmt", "--all", "--check"]),
        Step::cargo()
            .args(["clippy"])
            .args(ws.iter().copied())
            .args(["--all-targets", "--", "-D", "warnings"]),
        Step::cargo()
            .args(["test"])
            .args(ws.iter().copied())
            .args(extra.iter().cloned()),
        Step::cargo()
            .args(["doc"])
            .args(ws.iter().copied())
            .args(["--no-deps"])
            .env("RUSTDOCFLAGS", &rustdocflags),
    ];
    for step in &steps {
        step.run("test", root)?;
    }
    println!("cargo xtask test: all {} steps passed", steps.len());
    Ok(())
}

/// `cargo xtask miri [ARGS]`: the unsafe-bearing crates' unit tests under Miri.
fn miri(root: &Path, extra: &[String]) -> Outcome {
    ensure_miri(root)?;
    let user_flags = std::env::var_os("MIRIFLAGS").is_some();
    for package in ["evloop-core", "evloop-reactor"] {
        let mut step = Step::rustup_cargo()
            .args(["+nightly", "miri", "test", "-p", package, "--lib"])
            .args(extra.iter().cloned());
        if !user_flags {
            step = step.env("MIRIFLAGS", DEFAULT_MIRIFLAGS);
        }
        step.run("miri", root)?;
    }
    println!("cargo xtask miri: passed");
    Ok(())
}

/// Checks that nightly has the `miri` and `rust-src` components, trying to
/// add them once if not.
fn ensure_miri(root: &Path) -> Outcome {
    let installed = || {
        let list = Step::program("rustup")
            .args(["+nightly", "component", "list", "--installed"])
            .output(root)
            .unwrap_or_default();
        let has = |name: &str| list.lines().any(|line| line.trim().starts_with(name));
        has("miri") && has("rust-src")
    };
    if installed() {
        return Ok(());
    }
    let add = Step::program("rustup").args([
        "component",
        "add",
        "--toolchain",
        "nightly",
        "miri",
        "rust-src",
    ]);
    if add.run("miri", root).is_ok() && installed() {
        return Ok(());
    }
    eprintln!(
        "cargo xtask miri: the nightly toolchain with the miri component is needed; \
         install it with `rustup toolchain install nightly --component miri,rust-src`"
    );
    Err(Failed(1))
}

/// `cargo xtask bench [ARGS]`: the benchmark binary, in release mode.
/// The loom model (`crates/core/tests/loom_task.rs`), in its own target dir so that the
/// `--cfg loom` build does not invalidate the normal one.
fn loom(root: &Path, extra: &[String]) -> Outcome {
    Step::cargo()
        .args([
            "test",
            "--release",
            "-p",
            "evloop-core",
            "--test",
            "loom_task",
        ])
        .args(extra.iter().cloned())
        .env("RUSTFLAGS", "--cfg loom")
        .env(
            "CARGO_TARGET_DIR",
            &root.join("target/loom").to_string_lossy(),
        )
        .run("loom", root)
}

fn bench(root: &Path, extra: &[String]) -> Outcome {
    if !has_bench(root) {
        eprintln!(
            "cargo xtask bench: the benchmark crate (crates/bench, package `{BENCH_PACKAGE}`) \
             is not there yet"
        );
        return Err(Failed(1));
    }
    Step::cargo()
        .args(["run", "--release", "-p", BENCH_PACKAGE, "--"])
        .args(extra.iter().cloned())
        .run("bench", root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_workspace() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("xtask").is_dir());
    }

    #[test]
    fn steps_echo_like_a_shell_line() {
        let step = Step::program("cargo")
            .args(["doc", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            step.to_string(),
            "RUSTDOCFLAGS=\"-D warnings\" cargo doc --no-deps"
        );
    }
}
