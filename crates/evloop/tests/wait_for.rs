//! CPython's `Lib/test/test_asyncio/test_waitfor.py` (3.11 to 3.13), ported, and evloop's own
//! rules for `timeout`. `asyncio.wait_for(aw, t)` is `evloop::timeout(t, fut)` (a negative `t`:
//! `timeout_at` with an instant in the past; `t=None`: `timeout_scope(None).run(fut)`).
//! `asyncio.shield(task)` is `evloop::Shield::from(task)` (or `&mut task`).
//!
//! Ported: 15 of 20. Left out, Python-only:
//! - test_wait_for_cancellation_race_condition: the inner coroutine catches its
//!   `CancelledError` and returns a value; a Rust future cannot outlive its cancellation (it is
//!   dropped).
//! - test_wait_for_cancel_suppressed (GH-86296): the same, suppressing cancellation.
//! - test_wait_for_self_cancellation (3.11 only): the inner task swallows two cancellations and
//!   completes; the same.
//! - test_wait_for_waits_for_task_cancellation_w_timeout_0: besides an `await` inside `except
//!   CancelledError` and `__context__`, what it checks (a zero timeout on a started task) is
//!   test_wait_for_timeout_less_then_0_or_0.
//! - test_wait_for_reraises_exception_during_cancellation: an exception raised while the
//!   cancelled task unwinds, re-raised to the awaiter; in Rust the unwinding is the task's drop,
//!   which cannot hand an error to anyone, and the timeout has dropped its handle.
//!
//! Where asyncio's `wait_for` waits for the task it cancelled to end, evloop's timeout returns
//! at once: dropping the awaited `Task` cancels it, and its future is dropped at its next
//! scheduling point. Those tests await a `TaskRef` of the task (bounded) before checking it.

mod timeoututil;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use evloop::{
    Elapsed, JoinError, ReturnWhen, Shield, sleep, spawn, timeout, timeout_at, timeout_scope,
    yield_now,
};
use timeoututil::{BOUND, MS, create_future, ended};

/// CPython's `_EPSILON` (0.1 ms), "a very small timeout: it passes `timeout > 0`". One
/// millisecond here, so that a loaded machine's pause between making the timeout and its
/// first poll does not turn it into a zero timeout.
const EPSILON: Duration = Duration::from_millis(1);

/// Sets its flag when dropped: a Rust future's `finally`.
struct OnDrop(Rc<Cell<bool>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// CPython's `SlowTask`: runs for `TASK_TIMEOUT`. The Python one ignores cancel requests, which a
/// Rust future cannot do — dropping it is the cancellation; `exited` is set when it ends,
/// either way.
#[derive(Default)]
struct SlowTask {
    exited: Rc<Cell<bool>>,
}

impl SlowTask {
    const TASK_TIMEOUT: Duration = Duration::from_millis(200);

    fn run(&self) -> impl Future<Output = ()> + 'static {
        let guard = OnDrop(self.exited.clone());
        async move {
            let _exited = guard;
            sleep(Self::TASK_TIMEOUT).await;
        }
    }
}

#[evloop::test]
async fn test_asyncio_wait_for_cancelled() {
    let t = SlowTask::default();
    let waitfortask = spawn(timeout(SlowTask::TASK_TIMEOUT * 2, t.run()));
    yield_now().await;
    waitfortask.cancel();
    evloop::wait([waitfortask], ReturnWhen::AllCompleted).await;
    assert!(t.exited.get());
}

#[evloop::test]
async fn test_asyncio_wait_for_timeout() {
    let t = SlowTask::default();
    // CPython lets either outcome pass (`except TimeoutError: pass`); the timeout's deadline
    // comes first, so it is Elapsed.
    let res = timeout(SlowTask::TASK_TIMEOUT / 2, t.run()).await;
    assert!(res.is_err());
    assert!(t.exited.get());
}

#[evloop::test]
async fn test_wait_for_timeout_less_then_0_or_0_future_done() {
    let fut = create_future();
    fut.set_result("done").expect("set once");

    // Rust form: CPython's wait_for sees that `fut` is done and returns 'done'. A timeout over
    // any `Future` cannot know that without polling it, which a passed deadline forbids: it
    // reports Elapsed (documented on `timeout`). asyncio's answer is one `is_done()` away.
    let ret = timeout(Duration::ZERO, fut.clone()).await;
    assert!(ret.is_err());
    assert!(fut.is_done());
    assert_eq!(fut.result(), Some(Ok("done")));

    // The same for a task that has ended: passed by `&mut`, it keeps its output.
    let mut task = spawn(async { "done" });
    ended(&task.as_ref()).await.expect("task");
    assert!(timeout(Duration::ZERO, &mut task).await.is_err());
    assert!(task.is_done());
    assert_eq!(task.await.expect("task"), "done");
}

#[evloop::test]
async fn test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started() {
    let foo_started = Rc::new(Cell::new(false));
    let started = foo_started.clone();
    let foo = async move { started.set(true) };

    assert!(timeout(Duration::ZERO, foo).await.is_err());

    assert!(!foo_started.get());
}

#[evloop::test]
async fn test_wait_for_timeout_less_then_0_or_0() {
    for timeout_secs in [0i64, -1] {
        let foo_running: Rc<Cell<Option<bool>>> = Rc::new(Cell::new(None));
        let started = create_future();

        let (running, s) = (foo_running.clone(), started.clone());
        let foo = async move {
            running.set(Some(true));
            s.set_result(()).expect("set once");
            // `finally: foo_running = False`
            struct Finally(Rc<Cell<Option<bool>>>);
            impl Drop for Finally {
                fn drop(&mut self) {
                    self.0.set(Some(false));
                }
            }
            let _finally = Finally(running);
            sleep(Duration::from_secs(10)).await;
            "done"
        };

        let mut fut = spawn(foo);
        started.clone().await.expect("set");

        // Rust form: with its deadline passed, the timeout never polls `fut`, and a `Task`
        // dropped unawaited only detaches (CPython's wait_for cancels it). So the task goes in
        // by `&mut` and is cancelled on Elapsed — how evloop spells this wait_for.
        let res = if timeout_secs == 0 {
            timeout(Duration::ZERO, &mut fut).await
        } else {
            let past = Instant::now()
                .checked_sub(Duration::from_secs(1))
                .expect("the clock is past 1 s");
            timeout_at(past, &mut fut).await
        };
        assert!(res.is_err(), "timeout={timeout_secs}");
        fut.cancel();

        let out = (&mut fut).await;
        assert!(fut.is_done(), "timeout={timeout_secs}");
        // it should have been cancelled due to the timeout
        assert!(
            out.expect_err("cancelled").is_cancelled(),
            "timeout={timeout_secs}"
        );
        assert_eq!(foo_running.get(), Some(false), "timeout={timeout_secs}");
    }
}

/// Also evloop's rule "a `Task` passed to `timeout` is cancelled on expiry" (needs the core's
/// "a dropped awaited `Task` cancels its task").
#[evloop::test]
async fn test_wait_for() {
    let foo_running: Rc<Cell<Option<bool>>> = Rc::new(Cell::new(None));
    let running = foo_running.clone();
    let foo = async move {
        running.set(Some(true));
        struct Finally(Rc<Cell<Option<bool>>>);
        impl Drop for Finally {
            fn drop(&mut self) {
                self.0.set(Some(false));
            }
        }
        let _finally = Finally(running);
        // support.LONG_TIMEOUT is 5 minutes; a minute is as good here.
        sleep(Duration::from_secs(60)).await;
        "done"
    };

    let fut = spawn(foo);
    let fut_ref = fut.as_ref();

    assert!(timeout(100 * MS, fut).await.is_err());
    // Rust form: CPython checks `fut.done()` at once (its wait_for waits for the cancellation);
    // here the cancelled task ends at its next scheduling point.
    let out = ended(&fut_ref).await;
    assert!(fut_ref.is_done());
    // it should have been cancelled due to the timeout
    assert!(out.expect_err("cancelled").is_cancelled());
    assert!(fut_ref.is_cancelled());
    assert_eq!(foo_running.get(), Some(false));
}

#[evloop::test]
async fn test_wait_for_blocking() {
    let coro = async { "done" };
    let res = timeout_scope(None).run(coro).await;
    assert_eq!(res, Ok("done"));
}

#[evloop::test]
async fn test_wait_for_race_condition() {
    let lp = evloop::get_running_loop().expect("running loop");

    let fut = create_future();
    let task = timeout(200 * MS, fut.clone());
    let f = fut.clone();
    lp.call_soon(move || f.set_result("ok").expect("set once"));
    let res = task.await;
    assert_eq!(res, Ok(Ok("ok")));
}

#[evloop::test]
async fn test_wait_for_waits_for_task_cancellation() {
    let task_done = Rc::new(Cell::new(false));

    let done = task_done.clone();
    let inner = async move {
        // `finally: task_done = True`; the `await` in `except CancelledError` is Python-only.
        let _done = OnDrop(done);
        sleep(Duration::from_secs(10)).await;
    };

    let inner_task = spawn(inner);
    let inner_ref = inner_task.as_ref();

    assert!(timeout(EPSILON, inner_task).await.is_err());

    // Rust form: evloop's timeout does not wait for the cancelled task; awaiting it does.
    // (`cm.exception.__context__` is Python-only.)
    assert!(
        ended(&inner_ref)
            .await
            .expect_err("cancelled")
            .is_cancelled()
    );
    assert!(task_done.get());
}

/// CPython's `_test_cancel_wait_for`; also evloop's rule "cancelling the task that awaits a
/// timeout cancels the `Task` inside" (needs the core's "a dropped awaited `Task` cancels its
/// task").
async fn cancel_wait_for(limit: Option<Duration>) {
    let lp = evloop::get_running_loop().expect("running loop");

    // blocking_coroutine(): awaits a future whose result is never set.
    let task = spawn(std::future::pending::<()>());
    let task_ref = task.as_ref();

    let wait = match limit {
        None => spawn(timeout_scope(None).run(task)),
        Some(d) => spawn(timeout(d, task)),
    };
    let w = wait.as_ref();
    lp.call_soon(move || {
        w.cancel();
    });

    let res = wait.await;
    assert!(res.expect_err("cancelled").is_cancelled());

    // Python issue #23219: cancelling the wait must also cancel the task
    let out = ended(&task_ref).await;
    assert!(out.expect_err("cancelled").is_cancelled());
    assert!(task_ref.is_cancelled());
}

#[evloop::test]
async fn test_cancel_blocking_wait_for() {
    cancel_wait_for(None).await;
}

#[evloop::test]
async fn test_cancel_wait_for() {
    cancel_wait_for(Some(Duration::from_secs(60))).await;
}

#[evloop::test]
async fn test_wait_for_issue86296() {
    // GH-86296: The task should get cancelled and not run to completion.
    // inner completes in one cycle of the event loop so it
    // completes before the task is cancelled.
    let inner_task = spawn(async { "done" });
    let inner_ref = inner_task.as_ref();
    let reached_end = Rc::new(Cell::new(false));
    // Rust form: the handle goes into wait_for, so the output it got is kept here for the
    // final `await inner_task`.
    type WaitForOutput = Result<Result<&'static str, JoinError>, Elapsed>;
    let got: Rc<RefCell<Option<WaitForOutput>>> = Rc::default();

    let (end, g) = (reached_end.clone(), got.clone());
    let wait_for_coro = async move {
        *g.borrow_mut() = Some(timeout(Duration::from_secs(100), inner_task).await);
        sleep(Duration::from_secs(1)).await;
        end.set(true);
    };

    let task = spawn(wait_for_coro);
    assert!(!task.is_done());
    // Run the task
    yield_now().await;
    task.cancel();
    assert!(task.await.expect_err("cancelled").is_cancelled());
    assert!(inner_ref.is_done());
    assert!(!inner_ref.is_cancelled());
    assert!(matches!(*got.borrow(), Some(Ok(Ok("done")))));
    assert!(!reached_end.get());
}

// -- WaitForShieldTests --
//
// `asyncio.shield(task)` is `evloop::Shield::from(task)`: dropped by the timeout, it detaches
// the task instead of cancelling it. (There is no shield task whose own `cancelled()` could be
// asked, and the `Task` handle is inside the shield: its end is awaited through a `TaskRef`,
// its output kept by the coroutine.)

#[evloop::test]
async fn test_zero_timeout() {
    let coro = async {
        sleep(10 * MS).await;
        "done"
    };

    let task = spawn(coro);
    let task_ref = task.as_ref();
    let shielded_task = Shield::from(task);
    assert!(timeout(Duration::ZERO, shielded_task).await.is_err());

    // Task is running in background
    assert!(!task_ref.is_done());
    assert!(!task_ref.is_cancelled());
    // (`shielded_task.cancelled()`: no shield task to ask.)

    // Wait for the task to complete: CPython sleeps 0.1 s; awaiting the task does the same
    // without guessing how long it takes.
    ended(&task_ref).await.expect("task");
    assert!(task_ref.is_done());
}

#[evloop::test]
async fn test_none_timeout() {
    // With timeout=None the timeout is disabled so it
    // runs till completion.
    let coro = async {
        sleep(100 * MS).await;
        "done"
    };

    let task = spawn(coro);
    let task_ref = task.as_ref();
    let out = timeout_scope(None).run(Shield::from(task)).await;

    assert!(task_ref.is_done());
    assert_eq!(out.expect("no limit").expect("task"), "done");
}

#[evloop::test]
async fn test_shielded_timeout() {
    // shield prevents the task from being cancelled.
    let result = Rc::new(Cell::new(None));
    let r = result.clone();
    let coro = async move {
        sleep(100 * MS).await;
        r.set(Some("done"));
        "done"
    };

    let task = spawn(coro);
    let task_ref = task.as_ref();
    assert!(timeout(10 * MS, Shield::from(task)).await.is_err());

    assert!(!task_ref.is_done());
    assert!(!task_ref.is_cancelled());
    ended(&task_ref).await.expect("task");
    assert_eq!(result.get(), Some("done"));
}

#[evloop::test]
async fn a_task_passed_by_mut_ref_outlives_the_timeout() {
    // evloop's other spelling of a shield: the timeout drops the reference, not the task.
    let mut task = spawn(async {
        sleep(50 * MS).await;
        "done"
    });
    assert!(timeout(5 * MS, &mut task).await.is_err());
    assert!(!task.is_done());
    assert_eq!(task.await.expect("task"), "done");
}

// -- evloop's rules for `timeout` --

#[evloop::test]
async fn a_deadline_in_the_past_never_polls_the_future() {
    let polls = Rc::new(Cell::new(0u32));
    let p = polls.clone();
    let counted = poll_fn(move |_| {
        p.set(p.get() + 1);
        Poll::Ready(1)
    });
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .expect("the clock is past 1 s");
    assert!(timeout_at(past, counted).await.is_err());
    assert_eq!(polls.get(), 0, "a ready future loses to a passed deadline");
}

#[evloop::test]
async fn nested_timeouts_that_expire_together_the_outermost_reports() {
    let inner_claimed = Rc::new(Cell::new(false));
    let inner_dropped = Rc::new(Cell::new(false));
    let start = Instant::now();
    let outer_deadline = start + 20 * MS;
    let inner_deadline = start + 10 * MS;

    let (claimed, dropped) = (inner_claimed.clone(), inner_dropped.clone());
    let mut busy = false;
    let work = poll_fn(move |_| {
        if !busy {
            busy = true;
            // Pretend the loop is busy past both deadlines (as CPython's `time.sleep` does;
            // not a synchronisation: nothing else runs meanwhile).
            std::thread::sleep(outer_deadline.saturating_duration_since(Instant::now()));
        }
        // Pending for ever: only the timers wake this task.
        Poll::<()>::Pending
    });
    let inner = async move {
        let _dropped = OnDrop(dropped);
        let res = timeout_at(inner_deadline, work).await;
        claimed.set(true);
        res
    };
    let res = timeout_at(outer_deadline, inner).await;

    assert!(res.is_err(), "the outer timeout reports: {res:?}");
    assert!(
        !inner_claimed.get(),
        "the inner timeout did not claim the expiry"
    );
    assert!(inner_dropped.get());
    assert!(start.elapsed() < BOUND);
}
