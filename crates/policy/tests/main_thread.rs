//! The real main thread (a `harness = false` test: `main` runs on the process's main thread,
//! which the libtest harness never does for its tests).
//!
//! Checks, in order, each under a fresh default policy: the main thread auto-creates its loop
//! once and keeps it; `set_event_loop(None)` then makes `get_event_loop()` fail; a main thread
//! that called `set_event_loop` before ever asking never auto-creates; other threads never
//! auto-create; the strict policy never auto-creates.

use std::process::ExitCode;

use evloop_core::Error;
use evloop_policy::{
    StrictEventLoopPolicy, get_event_loop, is_main_thread, new_event_loop, set_event_loop,
    set_event_loop_policy,
};

type Check = (&'static str, fn() -> Result<(), String>);

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.to_owned()) }
}

fn main_thread_is_detected() -> Result<(), String> {
    ensure(is_main_thread(), "main() runs on the thread named \"main\"")
}

fn auto_create_once_then_unset() -> Result<(), String> {
    let a = get_event_loop().map_err(|e| format!("auto-create: {e}"))?;
    let b = get_event_loop().map_err(|e| format!("second call: {e}"))?;
    ensure(a == b, "two calls return the same loop")?;
    ensure(!a.is_closed(), "the loop is open")?;
    set_event_loop(None);
    match get_event_loop() {
        Err(e @ Error::NoCurrentLoop { .. }) => ensure(
            e.to_string() == "There is no current event loop in thread 'main'.",
            &format!("error text: {e}"),
        ),
        other => Err(format!("after set_event_loop(None): {other:?}")),
    }
}

fn set_none_first_never_auto_creates() -> Result<(), String> {
    set_event_loop(None);
    ensure(
        get_event_loop().is_err(),
        "set_event_loop(None) before any get: no auto-creation",
    )
}

fn set_some_then_none_never_auto_creates() -> Result<(), String> {
    let lp = new_event_loop().map_err(|e| e.to_string())?;
    set_event_loop(Some(&lp));
    ensure(get_event_loop().ok().as_ref() == Some(&lp), "the set loop")?;
    set_event_loop(None);
    ensure(get_event_loop().is_err(), "unset: no auto-creation")
}

fn other_threads_never_auto_create() -> Result<(), String> {
    let text = std::thread::Builder::new()
        .name("Thread-385".into())
        .spawn(|| get_event_loop().map(|_| ()).map_err(|e| e.to_string()))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "thread panicked".to_owned())?;
    ensure(
        text == Err("There is no current event loop in thread 'Thread-385'.".to_owned()),
        &format!("{text:?}"),
    )?;
    // And the main thread still gets its loop.
    get_event_loop().map(|_| ()).map_err(|e| e.to_string())
}

fn strict_policy_never_auto_creates() -> Result<(), String> {
    set_event_loop_policy(Some(Box::new(StrictEventLoopPolicy::new())));
    let r = get_event_loop();
    ensure(
        matches!(&r, Err(Error::NoCurrentLoop { thread }) if thread == "main"),
        &format!("strict: {r:?}"),
    )
}

fn main() -> ExitCode {
    let checks: &[Check] = &[
        ("main_thread_is_detected", main_thread_is_detected),
        ("auto_create_once_then_unset", auto_create_once_then_unset),
        (
            "set_none_first_never_auto_creates",
            set_none_first_never_auto_creates,
        ),
        (
            "set_some_then_none_never_auto_creates",
            set_some_then_none_never_auto_creates,
        ),
        (
            "other_threads_never_auto_create",
            other_threads_never_auto_create,
        ),
        (
            "strict_policy_never_auto_creates",
            strict_policy_never_auto_creates,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        set_event_loop_policy(None); // a fresh default policy: nothing set on any thread
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
