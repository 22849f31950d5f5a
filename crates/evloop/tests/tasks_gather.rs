//! `gather`, ported from CPython's Lib/test/test_asyncio/test_tasks.py (3.11): the
//! `GatherTestsBase` cases (run twice in CPython, as `FutureGatherTests` and
//! `CoroutineGatherTests`; here the modules `future_gather_tests` and
//! `coroutine_gather_tests`), the rest of both classes, and `test_cancel_gather_1`, named after
//! the CPython tests, with CPython's expected values. (test_shield_gather, test_gather_shield
//! and test_cancel_gather_2 are in cancellation.rs.)
//!
//! The Rust shapes:
//! - asyncio's `Future` is `LoopFuture` (`EventLoop::create_future`); an exception set on it
//!   is `set_error(Exc(..))`, compared by value where CPython compares by identity.
//! - `asyncio.gather(...)` returns a future with done callbacks; `evloop::gather` is a plain
//!   future, so the gathering "future" is a task running it (`add_done_callback_on`).
//! - `return_exceptions=True` is gathering the outcomes (`Result`s) as they are; without it,
//!   a child whose outcome is an error raises it, which in Rust is a panic (with the
//!   `FutureError` as payload) that ends the gathering task: `Err(JoinError::Panicked)`.
//! - `FutureGatherTests` gathers the futures themselves, `CoroutineGatherTests` an `async`
//!   block awaiting each one.
//!
//! Ported: 15 (test_success, test_result_exception_success, test_one_exception and
//! test_return_exceptions in both modules; future_gather_tests'
//! test_constructor_empty_sequence_use_running_loop, test_one_cancellation,
//! test_result_exception_one_cancellation; coroutine_gather_tests'
//! test_constructor_use_running_loop, test_exception_marking; test_env_var_debug, once for
//! both classes; test_cancel_gather_1).
//! Left out (18), with the reason:
//! - test_constructor_empty_sequence_without_loop, test_constructor_without_loop: `gather`
//!   needs no loop until it is polled, so there is no "no current event loop" error to raise.
//! - test_constructor_empty_sequence_use_global_loop, test_constructor_use_global_loop,
//!   test_constructor_heterogenous_futures, test_constructor_homogenous_futures: asyncio's
//!   gather takes its loop from its children (or the current loop) and refuses mixed loops;
//!   evloop's gather runs in whichever task awaits it and has no loop of its own to choose.
//! - test_duplicate_coroutines: a future is moved into `gather`; one cannot be passed twice.
//! - test_issue46672: `gather(c, {})`, a non-awaitable argument, does not compile.
//! - test_cancellation_broadcast: fails on evloop (see the report of issue 10): cancelling
//!   the outer task cancels both children, but not the `waiter` future they await —
//!   dropping a `LoopFuture` handle that awaited it does not cancel the shared future, where
//!   asyncio cancels a task's `_fut_waiter`. Not a small change: `gather` itself drops its
//!   pending children on a panic, and asyncio leaves those futures pending.
//! - test_as_completed, test_as_completed_with_timeout, test_as_completed_with_unused_timeout,
//!   test_as_completed_reverse_wait, test_as_completed_concurrent,
//!   test_as_completed_duplicate_coroutines, test_as_completed_coroutine_without_loop,
//!   test_as_completed_coroutine_use_running_loop, test_as_completed_invalid_args: evloop has
//!   no `as_completed` (`wait(.., ReturnWhen::FirstCompleted)` in a loop is its form).
#![allow(clippy::unwrap_used)]

mod envdebug;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use evloop::{EventLoop, FutureError, JoinError, LoopFuture, Task, TaskRef, gather};

/// A Python exception object, by its class name.
#[derive(Clone, Debug, PartialEq)]
struct Exc(&'static str);

type Fut = LoopFuture<i32, Exc>;
type Outcome = Result<i32, FutureError<Exc>>;
type Child = Pin<Box<dyn Future<Output = Outcome>>>;

/// CPython's `test_utils.run_briefly`: one iteration of the loop.
fn run_briefly(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

/// `GatherTestsBase._run_loop`: iterate while callbacks are ready. Every step in these tests
/// is a callback or a wake-up, chained at most a few deep, so ten iterations drain them.
fn run_loop(lp: &EventLoop) {
    for _ in 0..10 {
        run_briefly(lp);
    }
}

fn futures<const N: usize>(lp: &EventLoop) -> [Fut; N] {
    std::array::from_fn(|_| lp.create_future())
}

#[derive(Clone, Copy)]
enum Wrap {
    /// FutureGatherTests: the futures themselves.
    Futures,
    /// CoroutineGatherTests: `async def coro(fut=fut): return await fut` for each.
    Coroutines,
}

// The `async move { f.await }` is CPython's coroutine wrapper, on purpose.
#[allow(clippy::redundant_async_block)]
fn wrap_futures(wrap: Wrap, futs: &[&Fut]) -> Vec<Child> {
    futs.iter()
        .map(|&f| {
            let f = f.clone();
            match wrap {
                Wrap::Futures => Box::pin(f) as Child,
                Wrap::Coroutines => Box::pin(async move { f.await }),
            }
        })
        .collect()
}

/// `asyncio.gather(*children, return_exceptions=...)` as a task on `lp`.
fn gather_task(
    lp: &EventLoop,
    children: Vec<Child>,
    return_exceptions: bool,
) -> Task<Vec<Outcome>> {
    lp.create_task(gather(children.into_iter().map(move |child| async move {
        match child.await {
            Err(e) if !return_exceptions => std::panic::panic_any(e),
            out => out,
        }
    })))
}

/// `test_utils.MockCallback` as the gathering task's done callback.
#[derive(Clone, Default)]
struct MockCallback(Rc<RefCell<Vec<TaskRef>>>);

impl MockCallback {
    fn watch<T>(&self, lp: &EventLoop, fut: &Task<T>) {
        let calls = self.0.clone();
        fut.add_done_callback_on(lp, move |t| calls.borrow_mut().push(t))
            .unwrap();
    }
    fn called(&self) -> bool {
        !self.0.borrow().is_empty()
    }
    fn assert_called_once_with<T>(&self, fut: &Task<T>) {
        assert_eq!(*self.0.borrow(), [fut.as_ref()]);
    }
}

/// The error a gathering task raised: the `FutureError` its panic carried.
fn raised(err: JoinError) -> FutureError<Exc> {
    let payload = err.into_panic().expect("the gathering task raised");
    *payload.downcast::<FutureError<Exc>>().unwrap()
}

fn check_success(wrap: Wrap, return_exceptions: bool) {
    let lp = EventLoop::new().unwrap();
    let [a, b, c] = futures(&lp);
    let mut fut = gather_task(&lp, wrap_futures(wrap, &[&a, &b, &c]), return_exceptions);
    let cb = MockCallback::default();
    cb.watch(&lp, &fut);
    b.set_result(1).unwrap();
    a.set_result(2).unwrap();
    run_loop(&lp);
    assert!(!cb.called());
    assert!(!fut.is_done());
    c.set_result(3).unwrap();
    run_loop(&lp);
    cb.assert_called_once_with(&fut);
    let res = lp.run_until_complete(&mut fut).unwrap().unwrap();
    assert_eq!(res, [Ok(2), Ok(1), Ok(3)]);
}

fn check_one_exception(wrap: Wrap) {
    let lp = EventLoop::new().unwrap();
    let [a, b, c, d, e] = futures(&lp);
    let mut fut = gather_task(&lp, wrap_futures(wrap, &[&a, &b, &c, &d, &e]), false);
    let cb = MockCallback::default();
    cb.watch(&lp, &fut);
    let exc = Exc("ZeroDivisionError");
    a.set_result(1).unwrap();
    b.set_error(exc.clone()).unwrap();
    run_loop(&lp);
    assert!(fut.is_done());
    cb.assert_called_once_with(&fut);
    let err = lp.run_until_complete(&mut fut).unwrap().unwrap_err();
    assert_eq!(raised(err), FutureError::Failed(exc));
    // Does nothing
    c.set_result(3).unwrap();
    d.cancel();
    e.set_error(Exc("RuntimeError")).unwrap();
    e.result();
}

fn check_return_exceptions(wrap: Wrap) {
    let lp = EventLoop::new().unwrap();
    let [a, b, c, d] = futures(&lp);
    let mut fut = gather_task(&lp, wrap_futures(wrap, &[&a, &b, &c, &d]), true);
    let cb = MockCallback::default();
    cb.watch(&lp, &fut);
    let exc = Exc("ZeroDivisionError");
    let exc2 = Exc("RuntimeError");
    b.set_result(1).unwrap();
    c.set_error(exc.clone()).unwrap();
    a.set_result(3).unwrap();
    run_loop(&lp);
    assert!(!fut.is_done());
    d.set_error(exc2.clone()).unwrap();
    run_loop(&lp);
    assert!(fut.is_done());
    cb.assert_called_once_with(&fut);
    let res = lp.run_until_complete(&mut fut).unwrap().unwrap();
    assert_eq!(
        res,
        [
            Ok(3),
            Ok(1),
            Err(FutureError::Failed(exc)),
            Err(FutureError::Failed(exc2))
        ]
    );
}

mod future_gather_tests {
    use super::*;

    #[test]
    fn test_success() {
        check_success(Wrap::Futures, false);
    }

    #[test]
    fn test_result_exception_success() {
        check_success(Wrap::Futures, true);
    }

    #[test]
    fn test_one_exception() {
        check_one_exception(Wrap::Futures);
    }

    #[test]
    fn test_return_exceptions() {
        check_return_exceptions(Wrap::Futures);
    }

    /// `asyncio.gather()` in a running loop: a future of that loop that completes with `[]`.
    #[test]
    // The run returns the task (not its output): asyncio returns the gathering future.
    #[allow(clippy::async_yields_async)]
    fn test_constructor_empty_sequence_use_running_loop() {
        let lp = EventLoop::new().unwrap();
        let mut fut = lp
            .run_until_complete(async { evloop::spawn(gather(Vec::<Child>::new())) })
            .unwrap();
        run_loop(&lp);
        assert!(fut.is_done());
        assert!(lp.run_until_complete(&mut fut).unwrap().unwrap().is_empty());
    }

    #[test]
    fn test_one_cancellation() {
        let lp = EventLoop::new().unwrap();
        let [a, b, c, d, e] = futures(&lp);
        let mut fut = gather_task(
            &lp,
            wrap_futures(Wrap::Futures, &[&a, &b, &c, &d, &e]),
            false,
        );
        let cb = MockCallback::default();
        cb.watch(&lp, &fut);
        a.set_result(1).unwrap();
        b.cancel();
        run_loop(&lp);
        assert!(fut.is_done());
        cb.assert_called_once_with(&fut);
        assert!(!fut.is_cancelled());
        // fut.exception() is a CancelledError
        let err = lp.run_until_complete(&mut fut).unwrap().unwrap_err();
        assert!(raised(err).is_cancelled());
        // Does nothing
        c.set_result(3).unwrap();
        d.cancel();
        e.set_error(Exc("RuntimeError")).unwrap();
        e.result();
    }

    #[test]
    fn test_result_exception_one_cancellation() {
        let lp = EventLoop::new().unwrap();
        let [a, b, c, d, e, f] = futures(&lp);
        let children = wrap_futures(Wrap::Futures, &[&a, &b, &c, &d, &e, &f]);
        let mut fut = gather_task(&lp, children, true);
        let cb = MockCallback::default();
        cb.watch(&lp, &fut);
        a.set_result(1).unwrap();
        let zde = Exc("ZeroDivisionError");
        b.set_error(zde.clone()).unwrap();
        c.cancel();
        run_loop(&lp);
        assert!(!fut.is_done());
        d.set_result(3).unwrap();
        e.cancel();
        let rte = Exc("RuntimeError");
        f.set_error(rte.clone()).unwrap();
        let mut res = lp.run_until_complete(&mut fut).unwrap().unwrap();
        assert!(res[2].as_ref().unwrap_err().is_cancelled());
        assert!(res[4].as_ref().unwrap_err().is_cancelled());
        // res[2] = res[4] = None
        res[2] = Ok(-1);
        res[4] = Ok(-1);
        assert_eq!(
            res,
            [
                Ok(1),
                Err(FutureError::Failed(zde)),
                Ok(-1),
                Ok(3),
                Ok(-1),
                Err(FutureError::Failed(rte))
            ]
        );
        cb.assert_called_once_with(&fut);
    }
}

mod coroutine_gather_tests {
    use super::*;

    #[test]
    fn test_success() {
        check_success(Wrap::Coroutines, false);
    }

    #[test]
    fn test_result_exception_success() {
        check_success(Wrap::Coroutines, true);
    }

    #[test]
    fn test_one_exception() {
        check_one_exception(Wrap::Coroutines);
    }

    #[test]
    fn test_return_exceptions() {
        check_return_exceptions(Wrap::Coroutines);
    }

    /// `fut._loop is self.one_loop`: the gathering task was created in that loop, so it is in
    /// its task list (or already done there).
    #[test]
    // The run returns the task (not its output): asyncio returns the gathering future.
    #[allow(clippy::async_yields_async)]
    fn test_constructor_use_running_loop() {
        async fn coro() -> &'static str {
            "abc"
        }
        let lp = EventLoop::new().unwrap();
        let fut = lp
            .run_until_complete(async { evloop::spawn(gather([coro(), coro()])) })
            .unwrap();
        assert!(fut.is_done() || lp.all_tasks().contains(&fut.as_ref()));
        assert_eq!(lp.run_until_complete(fut).unwrap().unwrap(), ["abc", "abc"]);
    }

    /// The first error marks itself retrieved by raising out of the gather: the outer task
    /// fails with it.
    #[test]
    fn test_exception_marking() {
        async fn inner(f: LoopFuture<()>) {
            f.await.unwrap();
            panic!("should not be ignored");
        }
        let lp = EventLoop::new().unwrap();
        let (a, b): (LoopFuture<()>, LoopFuture<()>) = (lp.create_future(), lp.create_future());
        let (a2, b2) = (a.clone(), b.clone());
        let mut f = lp.create_task(async move {
            gather([inner(a2), inner(b2)]).await;
        });
        run_briefly(&lp);
        a.set_result(()).unwrap();
        run_briefly(&lp);
        b.set_result(()).unwrap();
        run_briefly(&lp);
        assert!(f.is_done());
        let err = lp.run_until_complete(&mut f).unwrap().unwrap_err();
        assert_eq!(err.panic_message(), Some("should not be ignored"));
    }
}

/// A gathering task refuses to be cancelled once all its children are done (Python issue
/// #26923: gather dropped the cancellation). The gathering future is a task running
/// `gather`; `fut`'s done callback cancels it.
#[test]
// The run returns the task (not its output): asyncio returns the gathering future.
#[allow(clippy::async_yields_async)]
fn test_cancel_gather_1() {
    let lp = EventLoop::new().unwrap();
    let fut: LoopFuture<i32> = lp.create_future();
    let f = fut.clone();
    let gather_task = lp
        .run_until_complete(async move {
            // The indirection fut->child_coro is needed since otherwise the gathering task is
            // done at the same time as the child future.
            let child_coro = async move { f.await.unwrap() };
            evloop::spawn(gather([child_coro]))
        })
        .unwrap();

    let cancel_result = Rc::new(Cell::new(None));
    let (c, target) = (cancel_result.clone(), gather_task.as_ref());
    fut.add_done_callback(move |_| c.set(Some(target.cancel())));

    fut.set_result(42).unwrap(); // calls the cancelling_callback after fut is done()

    // At this point the task should complete.
    let r = gather_task.as_ref();
    let out = lp.run_until_complete(gather_task).unwrap();

    // Python issue #26923: asyncio.gather drops cancellation
    assert_eq!(cancel_result.get(), Some(false));
    assert!(!r.is_cancelled());
    assert_eq!(out.unwrap(), [42]);
}

/// GatherTestsBase.test_env_var_debug: asyncio's debug mode follows PYTHONASYNCIODEBUG;
/// evloop's follows EVLOOP_DEBUG (the case is in the shared `envdebug` module, which also
/// serves base_events_handlers.rs).
#[test]
fn test_env_var_debug() -> Result<(), Box<dyn std::error::Error>> {
    envdebug::test_env_var_debug("EVLOOP_TASKS_GATHER_ENV_CHILD")
}
