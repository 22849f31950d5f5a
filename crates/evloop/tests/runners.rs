//! CPython's `Lib/test/test_asyncio/test_runners.py` (3.11), ported: `evloop::run` is
//! `asyncio.run`, `evloop::Runner` is `asyncio.Runner`. Each test is named after the CPython
//! test it ports and keeps its expected values; a comment says where Rust's shape forces
//! another form. CPython's `tearDown` checks that the run's loop is closed: the tests here
//! check that too, where they can reach the loop.
//!
//! Ported elsewhere (they change process-wide state):
//! - `test_asyncio_run_set_event_loop`, `test_set_event_loop_called_once`: `runner_policy.rs`
//!   (a custom policy, which is process-global).
//! - `test_interrupt_call_soon`, `test_interrupt_wait`, `test_interrupt_cancelled_task`:
//!   `runners_interrupt.rs` (a real SIGINT to the test process, on its main thread).
//!
//! Left out (no Rust meaning, or not evloop's shape today):
//! - `test_asyncio_run_only_coro`, `test_run_non_coro`: `run` takes `F: Future`; anything else
//!   is a compile error.
//! - `test_run_future`: asyncio refuses a `Future` because it wraps coroutines in a task;
//!   evloop polls any `Future` in place (a `Task` too), so there is nothing to refuse.
//! - `test_asyncio_run_without_uncancel`: evloop has no task factory, so there is no way to
//!   install a task type without `uncancel()` (evloop's tasks all have `TaskRef::uncancel`).
//! - `test_run_keeps_context`: evloop's `TaskLocal` is scope-only (a value is set for a
//!   future, `KEY.scope(v, fut)`, never assigned in place as `cvar.set(v)`), so there is no
//!   context a run could leave behind for the next one.
//! - `test_signal_install_not_supported_ok`: asyncio patches `signal.signal` to fail; a test
//!   cannot make evloop's SIGINT installation fail (the failure path logs a warning and runs
//!   on without Ctrl-C handling).
//!
//! Beyond CPython: the shutdown's report of a task that had already failed unread, and of a
//! task failing while a `Runner` closes.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evloop::{Error, EventLoop, ExceptionContext, Runner, TaskRef};

/// The message of a report of a task that failed while run()'s shutdown cancelled it
/// (asyncio's "unhandled exception during asyncio.run() shutdown"; evloop's messages leave
/// out the `asyncio.` prefix, as `Error::RunInRunningLoop`'s does).
const SHUTDOWN_MESSAGE: &str = "unhandled exception during run() shutdown";

/// What `1 / 0` raises in the CPython tests: a panic with this payload.
#[derive(Debug, PartialEq)]
struct ZeroDivisionError;

/// `except asyncio.CancelledError: 1 / 0`: panics with `ZeroDivisionError` when dropped before
/// being disarmed (a task's future is dropped when the task is cancelled).
struct DivideByZeroWhenCancelled {
    armed: bool,
}

impl DivideByZeroWhenCancelled {
    fn new() -> DivideByZeroWhenCancelled {
        DivideByZeroWhenCancelled { armed: true }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DivideByZeroWhenCancelled {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            panic_any(ZeroDivisionError);
        }
    }
}

/// Sets a flag when dropped.
struct DropFlag(Rc<RefCell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.borrow_mut() = true;
    }
}

/// One exception-handler call, as the tests compare them (asyncio's `context` dict).
#[derive(Debug)]
struct Call {
    message: String,
    task: Option<TaskRef>,
    zero_division: bool,
    panic_message: Option<String>,
}

/// `loop.call_exception_handler = mock.Mock()`: records every call of the running loop's
/// exception handler.
fn mock_exception_handler() -> Rc<RefCell<Vec<Call>>> {
    let calls: Rc<RefCell<Vec<Call>>> = Rc::default();
    let sink = calls.clone();
    let lp = evloop::get_running_loop().expect("running");
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        sink.borrow_mut().push(Call {
            message: ctx.message().to_owned(),
            task: ctx.task(),
            zero_division: ctx
                .panic_payload()
                .is_some_and(|p| p.downcast_ref::<ZeroDivisionError>().is_some()),
            panic_message: ctx.panic_message().map(str::to_owned),
        });
    }));
    calls
}

fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

// ---------------------------------------------------------------------------------------
// RunTests

#[test]
fn test_asyncio_run_return() {
    let main = async {
        evloop::yield_now().await; // asyncio.sleep(0)
        42
    };
    assert_eq!(evloop::run(main).expect("run"), 42);
}

#[test]
fn test_asyncio_run_raises() {
    // `raise ValueError('spam')` is a panic in Rust; run() resumes it after the shutdown.
    let lp = Rc::new(RefCell::new(None));
    let slot = lp.clone();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        evloop::run(async move {
            *slot.borrow_mut() = Some(evloop::get_running_loop().expect("running").handle());
            evloop::yield_now().await;
            panic!("spam");
        })
    }));
    let payload = caught.expect_err("the panic resumes");
    assert_eq!(panic_text(payload.as_ref()), Some("spam"));
    let lp = lp.borrow_mut().take().expect("the loop ran");
    assert!(lp.is_closed(), "tearDown: the loop is closed");
}

// test_asyncio_run_only_coro: compile-time in Rust (`run` takes `F: Future`), no test.

/// `asyncio.run(main, debug=...)` is `with Runner(debug=debug) as r: r.run(main)`: evloop's
/// `run()` has no debug argument, so the explicit cases go through `Runner::builder().debug`.
/// asyncio's `_is_debug_mode()` is evloop's `EVLOOP_DEBUG`: those cases run in child
/// processes of this test binary started with `EVLOOP_DEBUG=1` and `EVLOOP_DEBUG=0`.
#[test]
fn test_asyncio_run_debug() {
    async fn main(expected: bool) {
        let lp = evloop::get_event_loop().expect("current loop");
        assert_eq!(lp.get_debug(), expected);
    }
    let run_debug = |debug: Option<bool>, expected: bool| {
        let mut builder = Runner::builder();
        if let Some(on) = debug {
            builder = builder.debug(on);
        }
        let mut runner = builder.build();
        runner.run(main(expected)).expect("run");
        runner.close().expect("close");
    };
    const CHILD: &str = "EVLOOP_RUNNERS_DEBUG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // `with mock.patch('asyncio.coroutines._is_debug_mode', lambda: <env>)`.
        let env = std::env::var("EVLOOP_DEBUG").as_deref() == Ok("1");
        if env {
            evloop::run(main(true)).expect("run");
            run_debug(Some(false), false);
        } else {
            run_debug(Some(true), true);
            evloop::run(main(false)).expect("run");
        }
        return;
    }
    run_debug(Some(false), false);
    run_debug(Some(true), true);
    let exe = std::env::current_exe().expect("test binary");
    for env in ["1", "0"] {
        let out = Command::new(&exe)
            .args(["--exact", "test_asyncio_run_debug", "--test-threads=1"])
            .env(CHILD, "1")
            .env("EVLOOP_DEBUG", env)
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "EVLOOP_DEBUG={env}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn test_asyncio_run_from_running_loop() {
    async fn main() -> Result<(), Error> {
        // The inner future is dropped unpolled (CPython closes the coroutine).
        evloop::run(async {})
    }
    let err = evloop::run(main())
        .expect("outer run")
        .expect_err("run() from a running loop");
    assert!(matches!(err, Error::RunInRunningLoop));
    assert!(
        err.to_string().contains("cannot be called from a running"),
        "{err}"
    );
}

#[test]
fn test_asyncio_run_cancels_hanging_tasks() {
    let lo_task = Rc::new(RefCell::new(None));
    let slot = lo_task.clone();
    let main = async move {
        *slot.borrow_mut() = Some(evloop::spawn(async {
            evloop::sleep(Duration::from_millis(100)).await;
        }));
        123
    };
    assert_eq!(evloop::run(main).expect("run"), 123);
    let lo_task = lo_task.borrow_mut().take().expect("spawned");
    assert!(lo_task.is_done());
}

#[test]
fn test_asyncio_run_reports_hanging_tasks_errors() {
    let lo_task = Rc::new(RefCell::new(None));
    let calls = Rc::new(RefCell::new(None));
    let (task_slot, calls_slot) = (lo_task.clone(), calls.clone());
    let main = async move {
        *calls_slot.borrow_mut() = Some(mock_exception_handler());
        let on_cancel = DivideByZeroWhenCancelled::new();
        let leftover = evloop::spawn(async move {
            evloop::sleep(Duration::from_millis(100)).await;
            on_cancel.disarm();
        });
        *task_slot.borrow_mut() = Some(leftover.as_ref());
        123
    };
    assert_eq!(evloop::run(main).expect("run"), 123);
    let lo_task = lo_task.borrow_mut().take().expect("spawned");
    assert!(lo_task.is_done());

    // `call_exc_handler_mock.assert_called_with({...})`: the last call (and the only one).
    let calls = calls.borrow_mut().take().expect("handler installed");
    let calls = calls.borrow();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let last = calls.last().expect("called");
    // CPython: MockPattern(r'asyncio.run.*shutdown').
    assert_eq!(last.message, SHUTDOWN_MESSAGE);
    assert!(last.task.as_ref() == Some(&lo_task), "{last:?}");
    assert!(last.zero_division, "{last:?}");
}

#[test]
fn test_asyncio_run_closes_gens_after_hanging_tasks_errors() {
    // Rust has no async generators: `spinner` is the stream the task iterates over (an
    // object its future owns). asyncio checks that the generator was closed after the
    // task's error (`ag_frame is None`): here, that the stream was dropped.
    #[derive(Debug)]
    struct FancyExit;

    let spinner_dropped = Rc::new(RefCell::new(false));
    let lazyboy = Rc::new(RefCell::new(None));
    let (dropped, slot) = (spinner_dropped.clone(), lazyboy.clone());
    let main = async move {
        let _calls = mock_exception_handler();
        let spinner = DropFlag(dropped);
        let on_cancel = DivideByZeroWhenCancelled::new();
        let spin = evloop::spawn(async move {
            let (_spinner, _on_cancel) = (spinner, on_cancel);
            loop {
                // `async for ... in fidget()`: yield 1, then sleep(1).
                evloop::sleep(Duration::from_secs(1)).await;
            }
        });
        *slot.borrow_mut() = Some(spin.as_ref());
        evloop::yield_now().await;
        panic_any(FancyExit);
    };
    let caught = catch_unwind(AssertUnwindSafe(|| evloop::run(main)));
    let payload = caught.expect_err("FancyExit resumes");
    assert!(payload.downcast_ref::<FancyExit>().is_some());
    let lazyboy = lazyboy.borrow_mut().take().expect("spawned");
    assert!(lazyboy.is_done());
    assert!(*spinner_dropped.borrow(), "the spinner was closed");
}

// test_asyncio_run_set_event_loop: runner_policy.rs.
// test_asyncio_run_without_uncancel: left out (see the top of the file).

// ---------------------------------------------------------------------------------------
// RunnerTests

#[test]
fn test_non_debug() {
    let mut runner = Runner::builder().debug(false).build();
    assert!(!runner.get_loop().expect("loop").get_debug());
    runner.close().expect("close");
}

#[test]
fn test_debug() {
    let mut runner = Runner::builder().debug(true).build();
    assert!(runner.get_loop().expect("loop").get_debug());
    runner.close().expect("close");
}

#[test]
fn test_custom_factory() {
    // CPython's factory returns a mock; here, a loop made beforehand.
    let lp = EventLoop::new().expect("loop");
    let made = lp.clone();
    let mut runner = Runner::builder()
        .loop_factory(move || Ok(made.clone()))
        .build();
    assert!(runner.get_loop().expect("loop") == lp);
    runner.close().expect("close");
    assert!(lp.is_closed());
}

#[test]
fn test_run() {
    async fn f() -> &'static str {
        evloop::yield_now().await;
        "done"
    }
    let mut runner = Runner::new();
    assert_eq!("done", runner.run(f()).expect("run"));
    let lp = runner.get_loop().expect("loop");
    runner.close().expect("close"); // the end of the `with` block
    // CPython: RuntimeError "Runner is closed"; evloop has one `Error::Closed` ("Event loop
    // is closed") for a closed runner and a closed loop.
    assert!(matches!(runner.get_loop(), Err(Error::Closed)));
    assert!(lp.is_closed());
}

// test_run_non_coro, test_run_future: left out (see the top of the file).

#[test]
fn test_explicit_close() {
    let mut runner = Runner::new();
    let lp = runner.get_loop().expect("loop");
    runner.close().expect("close");
    // CPython: "Runner is closed" (see test_run).
    assert!(matches!(runner.get_loop(), Err(Error::Closed)));
    assert!(lp.is_closed());
}

#[test]
fn test_double_close() {
    let mut runner = Runner::new();
    let lp = runner.get_loop().expect("loop");
    runner.close().expect("close");
    assert!(lp.is_closed());
    // The second call is a no-op.
    runner.close().expect("close again");
    assert!(lp.is_closed());
}

#[test]
fn test_second_with_block_raises() {
    // Rust has no `with` block: entering one is the runner's first use, leaving it `close()`.
    let ret = RefCell::new(Vec::new());
    let f = |arg: i32| {
        let ret = &ret;
        async move { ret.borrow_mut().push(arg) }
    };
    let mut runner = Runner::new();
    runner.run(f(1)).expect("run");
    runner.close().expect("close");
    // CPython: "Runner is closed" (see test_run).
    assert!(matches!(runner.run(f(2)), Err(Error::Closed)));
    assert_eq!(*ret.borrow(), [1]);
}

// test_run_keeps_context: left out (see the top of the file).

#[test]
fn test_recursive_run() {
    // `runner.run()` inside `runner.run()` on the same runner does not compile in Rust (`run`
    // borrows the runner mutably), so the inner call goes through a second runner: what is
    // refused is running a loop from a running loop, as in asyncio.
    let polled = Rc::new(RefCell::new(false));
    let p = polled.clone();
    let mut runner = Runner::new();
    let inner = runner
        .run(async move {
            let g = async move { *p.borrow_mut() = true };
            Runner::new().run(g)
        })
        .expect("outer run");
    let err = inner.expect_err("run() from a running loop");
    // CPython: "Runner.run() cannot be called from a running event loop"; evloop has one
    // error for `run()` and `Runner::run`.
    assert!(matches!(err, Error::RunInRunningLoop));
    assert_eq!(
        err.to_string(),
        "run() cannot be called from a running event loop"
    );
    // CPython's RuntimeWarning "coroutine ... was never awaited": the future was not polled.
    assert!(!*polled.borrow());
    runner.close().expect("close");
}

// test_interrupt_call_soon, test_interrupt_wait, test_interrupt_cancelled_task:
// runners_interrupt.rs. test_signal_install_not_supported_ok: left out.
// test_set_event_loop_called_once: runner_policy.rs.

// ---------------------------------------------------------------------------------------
// Beyond CPython: what else the shutdown reports.

/// A task that failed before the shutdown and whose failure nobody read is not one of the
/// tasks the shutdown cancels (asyncio's `all_tasks()` leaves out done tasks): it is reported
/// as asyncio's garbage collector would, "Task exception was never retrieved", with the task,
/// once its handle is dropped (here by the shutdown, which cancels the task holding it).
#[test]
fn shutdown_reports_a_failed_unretrieved_task_with_the_task() {
    let calls = Rc::new(RefCell::new(None));
    let failed = Rc::new(RefCell::new(None));
    let (calls_slot, failed_slot) = (calls.clone(), failed.clone());
    evloop::run(async move {
        *calls_slot.borrow_mut() = Some(mock_exception_handler());
        let doomed = evloop::spawn(async { panic!("failed early") });
        while !doomed.is_done() {
            evloop::yield_now().await;
        }
        *failed_slot.borrow_mut() = Some(doomed.as_ref());
        let _holder = evloop::spawn(async move {
            let _unread = doomed;
            std::future::pending::<()>().await;
        });
    })
    .expect("run");
    let failed = failed.borrow_mut().take().expect("spawned");
    let calls = calls.borrow_mut().take().expect("handler installed");
    let calls = calls.borrow();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].message, "Task exception was never retrieved");
    assert_eq!(calls[0].panic_message.as_deref(), Some("failed early"));
    assert!(calls[0].task.as_ref() == Some(&failed), "{calls:?}");
}

/// `Runner::close` is asyncio's `Runner.close`, which shuts down as `asyncio.run` does: a
/// task failing while it is cancelled is reported with the task, for each such task.
#[test]
fn runner_close_reports_each_hanging_task_error_with_its_task() {
    let mut runner = Runner::new();
    let (calls, tasks) = runner
        .run(async {
            let calls = mock_exception_handler();
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let on_cancel = DivideByZeroWhenCancelled::new();
                let task = evloop::spawn(async move {
                    std::future::pending::<()>().await;
                    on_cancel.disarm();
                });
                tasks.push(task.as_ref());
            }
            // A task that is cancelled quietly is not reported.
            evloop::spawn(std::future::pending::<()>());
            (calls, tasks)
        })
        .expect("run");
    assert!(calls.borrow().is_empty(), "nothing before the close");
    runner.close().expect("close");
    let calls = calls.borrow();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (call, task) in calls.iter().zip(&tasks) {
        assert_eq!(call.message, SHUTDOWN_MESSAGE);
        assert!(call.task.as_ref() == Some(task), "{call:?}");
        assert!(call.zero_division, "{call:?}");
        assert!(task.is_done() && task.is_cancelled());
    }
}

/// Outside the shutdown, a task whose future panics while being dropped (it was cancelled)
/// is reported with the task too, under the core's own message.
#[test]
fn a_cancelled_tasks_panicking_drop_is_reported_with_the_task_outside_the_shutdown() {
    let seen = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let ran = Arc::new(AtomicBool::new(false));
    let (sink, r) = (seen.clone(), ran.clone());
    evloop::run(async move {
        let lp = evloop::get_running_loop().expect("running");
        let task_id = Rc::new(RefCell::new(None));
        let id = task_id.clone();
        lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
            let same = ctx.task().map(|t| t.id()) == *id.borrow();
            sink.lock()
                .expect("lock")
                .push((ctx.message().to_owned(), same));
        }));
        let on_cancel = DivideByZeroWhenCancelled::new();
        let task = evloop::spawn(async move {
            std::future::pending::<()>().await;
            on_cancel.disarm();
        });
        *task_id.borrow_mut() = Some(task.id());
        evloop::yield_now().await;
        task.cancel();
        let outcome = task.await;
        assert!(outcome.is_err_and(|e| e.is_cancelled()));
        evloop::yield_now().await; // the report's turn
        r.store(true, Ordering::SeqCst);
    })
    .expect("run");
    assert!(ran.load(Ordering::SeqCst));
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0]
            .0
            .ends_with("'s future or output panicked while being dropped"),
        "{seen:?}"
    );
    assert!(seen[0].1, "the report names the task: {seen:?}");
}
