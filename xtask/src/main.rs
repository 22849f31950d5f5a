//! evloop's build driver, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! Std only, on purpose: it must build in seconds on a fresh machine. Every
//! task runs its commands from the workspace root, echoes each one as
//! `==> ...`, and stops at the first failure with that failure's exit code.
//!
//! ```text
//! cargo xtask test            # fmt, clippy, tests, rustdoc
//! cargo xtask ci              # test, loom, miri, asan, stress --quick, deny, publish
//! cargo xtask tidy            # the source rules (SAFETY comments, unwraps, sizes, docs)
//! ```

mod checks;
mod cmd;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cmd::Failed;

/// The tasks, with the one-line description `help` prints.
const TASKS: &[(&str, &str)] = &[
    (
        "test",
        "tidy, fmt check, clippy -D warnings, cargo test --workspace --features evloop/hyper \
         [ARGS], rustdoc -D warnings",
    ),
    (
        "loom",
        "the loom model of the task state machine (evloop-core, --cfg loom) [ARGS]",
    ),
    (
        "miri",
        "Miri on the task core's unit tests (evloop-core task::) and evloop-reactor's [ARGS]",
    ),
    (
        "asan",
        "AddressSanitizer (nightly) on evloop-core's unit and integration tests [ARGS]",
    ),
    (
        "stress",
        "the stress tests (evloop-stress, release) [--quick | --full] [ARGS]; quick by default",
    ),
    (
        "deny",
        "cargo-deny: licenses, bans, sources (deny.toml); advisories where reachable [ARGS]",
    ),
    (
        "publish",
        "cargo publish --workspace --dry-run: package and build every crate in order [ARGS]",
    ),
    (
        "tidy",
        "source rules: SAFETY comments, no bare unwrap/expect, file sizes, crate docs",
    ),
    (
        "bench",
        "cargo run --release -p evloop-bench -- [ARGS] (needs crates/bench)",
    ),
    (
        "ci",
        "what .ci/run runs: test, loom, miri, asan, stress --quick, deny, publish (each named)",
    ),
    ("help", "print this list"),
];

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
        Some("test") => checks::test(&root, &rest),
        Some("loom") => checks::loom(&root, &rest),
        Some("miri") => checks::miri(&root, &rest),
        Some("asan") => checks::asan(&root, &rest),
        Some("stress") => checks::stress(&root, &rest),
        Some("tidy") => tidy::check(&root),
        Some("deny") => checks::deny(&root, &rest),
        Some("publish") => checks::publish(&root, &rest),
        Some("bench") => checks::bench(&root, &rest),
        Some("ci") => checks::ci(&root),
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

#[cfg(test)]
mod tests {
    use super::*;
    use cmd::{Step, passed_in_summary};

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

    #[test]
    fn workspace_checks_turn_the_hyper_feature_on() {
        let flags = checks::workspace_flags(&workspace_root());
        assert!(flags.starts_with(&["--workspace"]), "{flags:?}");
        assert!(
            flags
                .windows(2)
                .any(|w| w == ["--features", "evloop/hyper"]),
            "{flags:?}"
        );
    }

    #[test]
    fn libtest_summaries_are_counted() {
        let line = "test result: ok. 41 passed; 0 failed; 1 ignored; 0 measured; 9 filtered out; \
                    finished in 8.96s";
        assert_eq!(passed_in_summary(line), 41);
        assert_eq!(
            passed_in_summary("test result: ok. 0 passed; 0 failed; 0 ignored"),
            0
        );
        assert_eq!(passed_in_summary("running 3 tests"), 0);
    }

    #[test]
    fn every_task_is_listed_in_help() {
        for task in [
            "test", "loom", "miri", "asan", "stress", "deny", "publish", "tidy", "bench", "ci",
        ] {
            assert!(TASKS.iter().any(|(name, _)| *name == task), "{task}");
        }
    }
}
