//! What the `harness = false` tests share (`events_policy.rs`, `multi_interrupt.rs`,
//! `run_main_thread.rs`, `runners_interrupt.rs`): their checks run one after the other on the
//! process's main thread, where `run()` watches SIGINT and the default policy creates a loop,
//! and nothing else runs in the process meanwhile. Not a test target itself.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Display;
use std::process::ExitCode;

/// A named check: `Ok(())`, or why it failed.
pub type NamedCheck<E> = (&'static str, fn() -> Result<(), E>);

/// A check that says why it failed in a `String`.
pub type Check = NamedCheck<String>;

/// `Err(what)` unless `cond`.
pub fn ensure(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.into()) }
}

/// CPython's `interrupt_self()` (`_thread.interrupt_main()`): `kill(getpid(), SIGINT)`.
pub fn interrupt_self() {
    let me = rustix::process::getpid();
    if let Err(e) = rustix::process::kill_process(me, rustix::process::Signal::INT) {
        eprintln!("kill(getpid(), SIGINT): {e}");
    }
}

/// Runs every check in order, `before_each` first each time, printing a libtest-like line per
/// check and a summary; the exit code fails the test if any check failed.
pub fn run_checks<E: Display>(checks: &[NamedCheck<E>], before_each: impl Fn()) -> ExitCode {
    let mut failed = 0;
    for (name, check) in checks {
        before_each();
        match check() {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED: {why}");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
