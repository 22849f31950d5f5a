//! `evloop::multi::run` and a real Ctrl-C: a `harness = false` test, so that `multi::run` is
//! called on the process's main thread (where it watches SIGINT) and nothing else runs in the
//! process while the checks send SIGINT to it with `kill(getpid(), SIGINT)` — which the
//! kernel may deliver to any thread, a loop thread included.

mod mainthread;
mod multiutil;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use evloop::multi::{self, MultiError};
use mainthread::{Check, ensure, interrupt_self, run_checks};
use multiutil::{DropCount, cross, watchdog};

/// The first SIGINT cancels every loop's main task and the pending tasks of every loop,
/// a loop whose future is already done included; `run` returns `Interrupted` after joining.
fn test_sigint_stops_every_loop() -> Result<(), String> {
    ensure(evloop_policy::is_main_thread(), "on the main thread")?;
    const LOOPS: usize = 3;
    let started = Arc::new(Barrier::new(LOOPS));
    let mains = Arc::new(AtomicUsize::new(0));
    let tasks = Arc::new(AtomicUsize::new(0));
    let result = multi::run(LOOPS, |i| {
        let (started, mains, tasks) = (started.clone(), mains.clone(), tasks.clone());
        async move {
            let task_guard = DropCount(tasks);
            evloop::spawn(async move {
                let _guard = task_guard;
                std::future::pending::<()>().await;
            });
            // Before the barrier: a loop may be stopped before it is back from it.
            let _guard = (i != 2).then(|| DropCount(mains));
            cross(&started).await;
            match i {
                0 => interrupt_self(),
                2 => return Ok(()), // done; its loop stays open until the joint stop
                _ => {}
            }
            std::future::pending::<Result<(), String>>().await
        }
    });
    ensure(
        matches!(result, Err(MultiError::Interrupted)),
        format!("Interrupted expected, got {result:?}"),
    )?;
    ensure(
        mains.load(Ordering::SeqCst) == 2,
        format!(
            "loops 0 and 1 cancelled, {} were",
            mains.load(Ordering::SeqCst)
        ),
    )?;
    ensure(
        tasks.load(Ordering::SeqCst) == LOOPS,
        format!(
            "every loop's task cancelled, {} were",
            tasks.load(Ordering::SeqCst)
        ),
    )?;
    ensure(multi::loops().is_none(), "no loops() on the main thread")
}

/// A loop listening for Ctrl-C itself (`signal::ctrl_c()`) takes the SIGINT: `run` is not
/// interrupted, as `evloop::run` is not when user code handles the signal.
fn test_user_ctrl_c_takes_the_signal() -> Result<(), String> {
    ensure(evloop_policy::is_main_thread(), "on the main thread")?;
    let started = Arc::new(Barrier::new(2));
    let result = multi::run(2, |i| {
        let started = started.clone();
        async move {
            if i == 0 {
                let ctrl_c = evloop::signal::ctrl_c(); // listening from here on
                cross(&started).await;
                ctrl_c.await.map_err(|e| e.to_string())?;
                Ok::<_, String>("caught")
            } else {
                cross(&started).await;
                interrupt_self();
                Ok("sent")
            }
        }
    });
    ensure(
        matches!(&result, Ok(v) if v == &["caught", "sent"]),
        format!("Ok([caught, sent]) expected, got {result:?}"),
    )
}

fn main() -> ExitCode {
    let checks: &[Check] = &[
        ("test_sigint_stops_every_loop", test_sigint_stops_every_loop),
        (
            "test_user_ctrl_c_takes_the_signal",
            test_user_ctrl_c_takes_the_signal,
        ),
    ];
    // A check that hangs (a joint shutdown that never happens) fails instead.
    let done = watchdog("multi_interrupt");
    let code = run_checks(checks, || {});
    drop(done);
    code
}
