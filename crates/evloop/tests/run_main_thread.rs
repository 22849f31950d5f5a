//! `run()` and the policy on the real main thread (a `harness = false` test).
//!
//! asyncio (3.12+) behaviour: `get_event_loop()` on the main thread creates a loop only if
//! `set_event_loop` was never called there — and `run()` calls it (to set its loop, then to
//! unset it), so after a `run()` the main thread has no current loop.

mod mainthread;

use std::process::ExitCode;

use evloop::Error;
use mainthread::{Check, ensure, run_checks};

fn run_on_main_then_no_current_loop() -> Result<(), String> {
    let lp = evloop::run(async { evloop::get_running_loop() })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    ensure(lp.is_closed(), "the run's loop is closed")?;
    match evloop::get_event_loop() {
        Err(e @ Error::NoCurrentLoop { .. }) => ensure(
            e.to_string() == "There is no current event loop in thread 'main'.",
            e.to_string(),
        ),
        other => Err(format!("after run(): {other:?}")),
    }
}

fn auto_created_loop_is_replaced_by_run() -> Result<(), String> {
    let auto = evloop::get_event_loop().map_err(|e| e.to_string())?;
    let during = evloop::run(async {
        evloop::get_event_loop_policy()
            .get_event_loop()
            .map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())??;
    ensure(during != auto, "run() made its own loop current")?;
    ensure(
        evloop::get_event_loop().is_err(),
        "and unset it afterwards (not restored)",
    )?;
    // Our handle keeps the auto-created loop open.
    ensure(!auto.is_closed(), "the auto-created loop is untouched")
}

fn runs_repeat_on_main() -> Result<(), String> {
    for i in 0..3 {
        let out = evloop::run(async move { i }).map_err(|e| e.to_string())?;
        ensure(out == i, format!("run {i}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let checks: &[Check] = &[
        (
            "run_on_main_then_no_current_loop",
            run_on_main_then_no_current_loop,
        ),
        (
            "auto_created_loop_is_replaced_by_run",
            auto_created_loop_is_replaced_by_run,
        ),
        ("runs_repeat_on_main", runs_repeat_on_main),
    ];
    // A fresh default policy for each check.
    run_checks(checks, || evloop::set_event_loop_policy(None))
}
