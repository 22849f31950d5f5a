//! The tasks that run cargo: `test`, `loom`, `miri`, `asan`, `stress`, `bench`, `ci`.

use std::path::Path;
use std::time::Instant;

use crate::cmd::{Failed, Outcome, Step};

/// The benchmark package, excluded from the workspace-wide checks.
const BENCH_PACKAGE: &str = "evloop-bench";

/// The stress package: linted and documented with the workspace, but its tests run only
/// through `cargo xtask stress` (release mode, scaled), not in `cargo xtask test`.
const STRESS_PACKAGE: &str = "evloop-stress";

/// Miri flags used when the caller has not set `MIRIFLAGS`.
const DEFAULT_MIRIFLAGS: &str = "-Zmiri-strict-provenance";

/// Known, documented leaks that LeakSanitizer must not report (one `leak:` pattern a line).
const LSAN_SUPPRESSIONS: &str = "xtask/lsan-suppressions.txt";

/// Whether the benchmark crate exists (it is a member through `crates/*`).
fn has_bench(root: &Path) -> bool {
    root.join("crates/bench/Cargo.toml").is_file()
}

/// Whether the stress crate exists.
fn has_stress(root: &Path) -> bool {
    root.join("crates/stress/Cargo.toml").is_file()
}

/// The facade's optional features that the workspace checks turn on, each with the crate
/// that must exist for it: `evloop/hyper` (the `evloop::hyper` module, its example and
/// tests) when `crates/hyper` is there.
const CHECKED_FEATURES: &[(&str, &str)] = &[("evloop/hyper", "crates/hyper/Cargo.toml")];

/// `--workspace`, plus `--exclude evloop-bench` when that crate exists, plus
/// `--features ...` for the [`CHECKED_FEATURES`] whose crate exists (so that clippy, the
/// tests and rustdoc cover the code behind them).
pub(crate) fn workspace_flags(root: &Path) -> Vec<&'static str> {
    let mut flags = vec!["--workspace"];
    if has_bench(root) {
        flags.extend(["--exclude", BENCH_PACKAGE]);
    }
    for (feature, crate_manifest) in CHECKED_FEATURES {
        if root.join(crate_manifest).is_file() {
            flags.extend(["--features", feature]);
        }
    }
    flags
}

/// [`workspace_flags`] for `cargo test`: the stress tests run only under `xtask stress`.
fn workspace_test_flags(root: &Path) -> Vec<&'static str> {
    let mut flags = workspace_flags(root);
    if has_stress(root) {
        flags.extend(["--exclude", STRESS_PACKAGE]);
    }
    flags
}

/// `CARGO_TARGET_DIR/name` (default `target/name`): a target dir of its own for a build
/// with different flags, so that it does not invalidate the normal one.
fn own_target_dir(root: &Path, name: &str) -> String {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    base.join(name).to_string_lossy().into_owned()
}

/// `RUSTFLAGS` (or `RUSTDOCFLAGS`) from the environment with `extra` appended.
fn with_env_flags(var: &str, extra: &str) -> String {
    match std::env::var(var) {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} {extra}"),
        _ => extra.to_owned(),
    }
}

/// `cargo xtask test [ARGS]`: fmt, clippy, tests (ARGS go to `cargo test`), docs.
pub(crate) fn test(root: &Path, extra: &[String]) -> Outcome {
    let ws = workspace_flags(root);
    // The source rules first: they take a second and name the line.
    crate::tidy::check(root)?;
    let steps = [
        Step::cargo().args(["fmt", "--all", "--check"]),
        Step::cargo()
            .args(["clippy"])
            .args(ws.iter().copied())
            .args(["--all-targets", "--", "-D", "warnings"]),
        Step::cargo()
            .args(["test"])
            .args(workspace_test_flags(root))
            .args(extra.iter().cloned()),
        Step::cargo()
            .args(["doc"])
            .args(ws.iter().copied())
            .args(["--no-deps"])
            .env(
                "RUSTDOCFLAGS",
                &with_env_flags("RUSTDOCFLAGS", "-D warnings"),
            ),
    ];
    for step in &steps {
        step.run("test", root)?;
    }
    println!(
        "cargo xtask test: tidy and all {} steps passed",
        steps.len()
    );
    Ok(())
}

/// Fails (naming the task) if a run reported no passing test: a filter or cfg that
/// matches nothing must not look like a green check.
fn require_tests(task: &str, passed: usize) -> Outcome {
    if passed == 0 {
        eprintln!("cargo xtask {task}: no test ran (a filter or cfg matched nothing)");
        return Err(Failed(1));
    }
    Ok(())
}

/// `cargo xtask loom [ARGS]`: the loom model (`crates/core/tests/loom_task.rs`), in its own
/// target dir so that the `--cfg loom` build does not invalidate the normal one.
pub(crate) fn loom(root: &Path, extra: &[String]) -> Outcome {
    let passed = Step::cargo()
        .args([
            "test",
            "--release",
            "-p",
            "evloop-core",
            "--test",
            "loom_task",
        ])
        .args(extra.iter().cloned())
        .env("RUSTFLAGS", &with_env_flags("RUSTFLAGS", "--cfg loom"))
        .env("CARGO_TARGET_DIR", &own_target_dir(root, "loom"))
        .run_counting_tests("loom", root)?;
    require_tests("loom", passed)
}

/// `cargo xtask miri [ARGS]`: Miri on the task core's unit tests (`evloop-core`, module
/// `task::`) and on `evloop-reactor`'s unit tests; the rest of the core's tests need real
/// epoll and threads for seconds, which Miri makes minutes.
pub(crate) fn miri(root: &Path, extra: &[String]) -> Outcome {
    ensure_nightly_components(root, "miri", &["miri", "rust-src"])?;
    let user_flags = std::env::var_os("MIRIFLAGS").is_some();
    let runs: [&[&str]; 2] = [
        &["-p", "evloop-core", "--lib", "task::"],
        &["-p", "evloop-reactor", "--lib"],
    ];
    let mut passed = 0;
    for run in runs {
        let mut step = Step::rustup_cargo()
            .args(["+nightly", "miri", "test"])
            .args(run.iter().copied())
            .args(extra.iter().cloned());
        if !user_flags {
            step = step.env("MIRIFLAGS", DEFAULT_MIRIFLAGS);
        }
        let n = step.run_counting_tests("miri", root)?;
        require_tests("miri", n)?;
        passed += n;
    }
    println!("cargo xtask miri: {passed} tests passed");
    Ok(())
}

/// `cargo xtask asan [ARGS]`: evloop-core's unit and integration tests built with
/// AddressSanitizer (nightly), in `target/asan`. Doc-tests are left out (rustdoc would need
/// the sanitizer flags too, for little gain). `--target` keeps build scripts and proc
/// macros uninstrumented. LeakSanitizer runs too, minus the documented leaks listed in
/// `xtask/lsan-suppressions.txt`.
pub(crate) fn asan(root: &Path, extra: &[String]) -> Outcome {
    ensure_nightly_components(root, "asan", &[])?;
    let Some(target) = nightly_host(root) else {
        eprintln!("cargo xtask asan: cannot read the nightly host triple (`rustc +nightly -vV`)");
        return Err(Failed(1));
    };
    let suppressions = root.join(LSAN_SUPPRESSIONS);
    let lsan = with_env_flags(
        "LSAN_OPTIONS",
        &format!("suppressions={}", suppressions.to_string_lossy()),
    );
    let passed = Step::rustup_cargo()
        .args(["+nightly", "test", "-p", "evloop-core", "--lib", "--tests"])
        .args(["--target", target.as_str()])
        .args(extra.iter().cloned())
        .env(
            "RUSTFLAGS",
            &with_env_flags("RUSTFLAGS", "-Zsanitizer=address"),
        )
        .env("CARGO_TARGET_DIR", &own_target_dir(root, "asan"))
        .env("LSAN_OPTIONS", &lsan)
        .run_counting_tests("asan", root)?;
    require_tests("asan", passed)
}

/// The nightly toolchain's host triple.
fn nightly_host(root: &Path) -> Option<String> {
    let out = Step::program("rustc")
        .args(["+nightly", "-vV"])
        .output(root)?;
    out.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
}

/// `cargo xtask stress [--quick | --full] [ARGS]`: the stress package's tests in release
/// mode. The scale goes to the tests as `EVLOOP_STRESS=quick|full` (quick by default:
/// minutes on two cores; full: the counts). ARGS go to `cargo test`.
pub(crate) fn stress(root: &Path, extra: &[String]) -> Outcome {
    if !has_stress(root) {
        eprintln!("cargo xtask stress: the stress crate (crates/stress) is not there");
        return Err(Failed(1));
    }
    let mut scale = "quick";
    let mut rest = Vec::new();
    for arg in extra {
        match arg.as_str() {
            "--quick" => scale = "quick",
            "--full" => scale = "full",
            _ => rest.push(arg.clone()),
        }
    }
    let passed = Step::cargo()
        .args(["test", "--release", "--no-fail-fast", "-p", STRESS_PACKAGE])
        .args(rest)
        .env("EVLOOP_STRESS", scale)
        .run_counting_tests("stress", root)?;
    require_tests("stress", passed)
}

/// Checks that nightly has `components` (and exists), trying to add them once if not.
fn ensure_nightly_components(root: &Path, task: &str, components: &[&str]) -> Outcome {
    let installed = || {
        let list = Step::program("rustup")
            .args(["+nightly", "component", "list", "--installed"])
            .output(root)?;
        let has = |name: &str| list.lines().any(|line| line.trim().starts_with(name));
        Some(components.iter().all(|c| has(c)))
    };
    if installed() == Some(true) {
        return Ok(());
    }
    if !components.is_empty() {
        let add = Step::program("rustup")
            .args(["component", "add", "--toolchain", "nightly"])
            .args(components.iter().copied());
        if add.run(task, root).is_ok() && installed() == Some(true) {
            return Ok(());
        }
    }
    eprintln!(
        "cargo xtask {task}: the nightly toolchain{} is needed; install it with \
         `rustup toolchain install nightly{}`",
        if components.is_empty() {
            String::new()
        } else {
            format!(" with {}", components.join(", "))
        },
        if components.is_empty() {
            String::new()
        } else {
            format!(" --component {}", components.join(","))
        },
    );
    Err(Failed(1))
}

/// `cargo xtask bench [ARGS]`: the benchmark binary, in release mode.
pub(crate) fn bench(root: &Path, extra: &[String]) -> Outcome {
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

/// `cargo xtask deny`: cargo-deny's licenses, bans and sources checks (`deny.toml`), and its
/// advisories check where the RustSec database can be fetched (it lives on GitHub; a machine
/// that cannot reach it skips that check with a printed reason). Needs `cargo-deny`
/// (`cargo install cargo-deny --locked`; `.ci/run` installs it).
pub(crate) fn deny(root: &Path, extra: &[String]) -> Outcome {
    if Step::cargo()
        .args(["deny", "--version"])
        .output(root)
        .is_none()
    {
        eprintln!(
            "cargo xtask deny: cargo-deny is not installed (`cargo install cargo-deny --locked`)"
        );
        return Err(Failed(1));
    }
    Step::cargo()
        .args(["deny", "check", "licenses", "bans", "sources"])
        .args(extra.iter().cloned())
        .run("deny", root)?;
    let reachable = Step::program("git")
        .args([
            "ls-remote",
            "--exit-code",
            "https://github.com/rustsec/advisory-db",
            "HEAD",
        ])
        .output(root)
        .is_some();
    if !reachable {
        println!(
            "cargo xtask deny: advisories skipped: the RustSec advisory database \
             (github.com/rustsec/advisory-db) cannot be reached from this machine"
        );
        return Ok(());
    }
    Step::cargo()
        .args(["deny", "check", "advisories"])
        .run("deny", root)
}

/// `cargo xtask publish`: `cargo publish --workspace --dry-run`, which packages every
/// publishable crate in dependency order (reactor, core, io, policy, macros, hyper, evloop,
/// compat), builds each from its packaged files against the ones packaged before it, and
/// uploads nothing. Needs the crates.io index; `--allow-dirty` so it runs on a work tree.
pub(crate) fn publish(root: &Path, extra: &[String]) -> Outcome {
    Step::cargo()
        .args(["publish", "--workspace", "--dry-run", "--allow-dirty"])
        .args(extra.iter().cloned())
        .run("publish", root)
}

/// `cargo xtask ci`: every check `.ci/run` runs, each announced as `==> step: NAME` and
/// timed; stops at the first failure and prints the times so far.
pub(crate) fn ci(root: &Path) -> Outcome {
    type Check = fn(&Path, &[String]) -> Outcome;
    let quick = ["--quick".to_owned()];
    let checks: [(&str, Check, &[String]); 7] = [
        ("test", test, &[]),
        ("loom", loom, &[]),
        ("miri", miri, &[]),
        ("asan", asan, &[]),
        ("stress --quick", stress, &quick),
        ("deny", deny, &[]),
        ("publish --dry-run", publish, &[]),
    ];
    let mut times = Vec::new();
    let mut outcome = Ok(());
    for (name, check, args) in checks {
        println!("==> step: {name}");
        let start = Instant::now();
        outcome = check(root, args);
        let secs = start.elapsed().as_secs_f64();
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        println!("==> step: {name}: {verdict} in {secs:.0}s");
        times.push((name, verdict, secs));
        if outcome.is_err() {
            break;
        }
    }
    println!("cargo xtask ci: step times");
    for (name, verdict, secs) in &times {
        println!("    {name:<16} {verdict:<6} {secs:>6.0}s");
    }
    outcome
}
