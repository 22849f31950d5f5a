//! The Ctrl-C cases of CPython's `test_runners.py` (`RunnerTests.test_interrupt_*`), with a
//! real SIGINT: a `harness = false` test, so that the checks run on the process's main
//! thread (where `Runner::run` watches SIGINT) and nothing else runs in the process while
//! they send SIGINT to it.
//!
//! CPython's `interrupt_self()` (`_thread.interrupt_main()`) is `kill(getpid(), SIGINT)`
//! here; its `KeyboardInterrupt` is `Err(Error::Interrupted)`; the `CancelledError` the main
//! coroutine sees is its future being dropped.
//!
//! All three `test_interrupt_*` cases are here.

mod mainthread;

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use evloop::{Error, Runner};
use mainthread::{Check, ensure, interrupt_self, run_checks};

/// Sets its flag when dropped: the future that owns it was cancelled.
struct Cancelled(Rc<Cell<bool>>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// The only case when the task is not suspended waiting for a future or another task: the
/// main future yields to the loop forever.
fn test_interrupt_call_soon() -> Result<(), String> {
    ensure(evloop_policy::is_main_thread(), "on the main thread")?;
    let cancelled = Rc::new(Cell::new(false));
    let flag = Cancelled(cancelled.clone());
    let coro = async move {
        let _flag = flag;
        loop {
            evloop::yield_now().await; // asyncio.sleep(0)
        }
    };
    let mut runner = Runner::new();
    let lp = runner.get_loop().map_err(|e| e.to_string())?;
    lp.call_later(Duration::from_millis(100), interrupt_self);
    let result = runner.run(coro);
    ensure(
        matches!(result, Err(Error::Interrupted)),
        format!("KeyboardInterrupt expected, got {result:?}"),
    )?;
    ensure(cancelled.get(), "the main future was cancelled")?;
    runner.close().map_err(|e| e.to_string())?;
    ensure(lp.is_closed(), "tearDown: the loop is closed")
}

/// Interrupting while the main future waits cancels the main future and what it waits for.
///
/// CPython waits for `loop.create_future()`; evloop has no bare future on the loop, so the
/// main future waits for a task that never ends. Dropping the main future drops the awaited
/// `Task` handle, which cancels the task (asyncio's rule for an awaited future); the task
/// ends at the loop's next iteration, so the check lets one more run see it end (within
/// the `with` block, before the runner's close, as CPython checks `fut.cancelled()`).
#[allow(clippy::async_yields_async)] // handing the task out of the first run is the point
fn test_interrupt_wait() -> Result<(), String> {
    ensure(evloop_policy::is_main_thread(), "on the main thread")?;
    let cancelled = Rc::new(Cell::new(false));
    let flag = Cancelled(cancelled.clone());
    let mut runner = Runner::new();
    let lp = runner.get_loop().map_err(|e| e.to_string())?;
    let fut = runner
        .run(async { evloop::spawn(std::future::pending::<()>()) })
        .map_err(|e| e.to_string())?;
    let fut_ref = fut.as_ref();
    lp.call_later(Duration::from_millis(100), interrupt_self);
    let result = runner.run(async move {
        let _flag = flag;
        let _ = fut.await;
    });
    ensure(
        matches!(result, Err(Error::Interrupted)),
        format!("KeyboardInterrupt expected, got {result:?}"),
    )?;
    ensure(cancelled.get(), "the main future was cancelled")?;
    let ended = runner
        .run(evloop::timeout(Duration::from_secs(10), fut_ref.clone()))
        .map_err(|e| e.to_string())?;
    ensure(
        matches!(&ended, Ok(Err(e)) if e.is_cancelled()),
        format!("the awaited task ends cancelled, got {ended:?}"),
    )?;
    ensure(fut_ref.is_cancelled(), "fut.cancelled()")?;
    runner.close().map_err(|e| e.to_string())?;
    ensure(lp.is_closed(), "tearDown: the loop is closed")
}

/// Interrupting a main task that something else cancelled first is not a `KeyboardInterrupt`:
/// the run ends `Err(Error::Cancelled)` (asyncio's `CancelledError`).
fn test_interrupt_cancelled_task() -> Result<(), String> {
    ensure(evloop_policy::is_main_thread(), "on the main thread")?;
    let seen: Rc<Cell<Option<evloop::TaskRef>>> = Rc::default();
    let s = seen.clone();
    let coro = async move {
        let main = evloop::current_task().unwrap_or(None);
        s.set(main.clone());
        evloop::spawn(async move {
            evloop::yield_now().await;
            if let Some(main) = main {
                main.cancel();
            }
            interrupt_self();
        });
        evloop::sleep(Duration::from_secs(10)).await;
    };
    let mut runner = Runner::new();
    let result = runner.run(coro);
    ensure(
        matches!(result, Err(Error::Cancelled)),
        format!("CancelledError expected, got {result:?}"),
    )?;
    let main = seen.take().ok_or("the main future is a task")?;
    ensure(main.is_cancelled(), "the main task ends cancelled")?;
    runner.close().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let checks: &[Check] = &[
        ("test_interrupt_call_soon", test_interrupt_call_soon),
        ("test_interrupt_wait", test_interrupt_wait),
        (
            "test_interrupt_cancelled_task",
            test_interrupt_cancelled_task,
        ),
    ];
    run_checks(checks, || {})
}
