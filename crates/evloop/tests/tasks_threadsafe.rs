//! `run_coroutine_threadsafe`, ported from CPython's Lib/test/test_asyncio/test_tasks.py
//! (3.11): `RunCoroutineThreadsafeTests`, named after the CPython tests, with CPython's
//! expected values. `asyncio.run_coroutine_threadsafe(coro, loop)` is
//! `LoopHandle::spawn(fut)` from another thread; the `concurrent.futures.Future` it returns is
//! the `Task`, and `future.result()` is `Task::join_blocking()` (`future.result(timeout)`: a
//! bounded wait on the task, written here as `join_timeout`). `loop.run_in_executor(None, f)`
//! is `EventLoop::run_in_executor(f)`. An exception is a panic; `CancelledError` is
//! `JoinError::Cancelled`.
//!
//! Ported: 4. Left out (1): test_run_coroutine_threadsafe_task_factory_exception: evloop has
//! no task factory to make fail (a task is always made by the loop itself).
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use evloop::{EventLoop, JoinError, LoopHandle, RunInExecutor, Task, sleep, yield_now};

/// `RunCoroutineThreadsafeTests.add`: waits `delay` (0.05 s) and returns a + b; `fail` raises
/// `RuntimeError("Fail!")` (a panic); `cancel` cancels the task it runs in, then yields.
async fn add(a: i32, b: i32, fail: bool, cancel: bool, delay: Duration) -> i32 {
    sleep(delay).await;
    if fail {
        panic!("Fail!");
    }
    if cancel {
        evloop::current_task().unwrap().unwrap().cancel();
        yield_now().await;
    }
    a + b
}

/// Why `target` has no result: `future.result(timeout)` timed out (`TimeoutError`), or the
/// task failed or was cancelled.
#[derive(Debug)]
enum TargetError {
    Timeout,
    Join(JoinError),
}

/// Wakes a thread parked in `join_timeout`.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// `concurrent.futures.Future.result(timeout)`: waits for `task` at most `timeout`.
fn join_timeout<T>(task: &mut Task<T>, timeout: Duration) -> Option<Result<T, JoinError>> {
    let deadline = Instant::now() + timeout;
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = std::pin::Pin::new(&mut *task).poll(&mut cx) {
            return Some(out);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// `RunCoroutineThreadsafeTests.target`, run on a thread other than the loop's: submits
/// `add(1, 2, ..)` to the loop and waits for its result.
fn target(
    lp: LoopHandle,
    fail: bool,
    cancel: bool,
    timeout: Option<Duration>,
) -> Result<i32, TargetError> {
    // CPython's 0.05 s; where the test wants a timeout, longer than a loaded machine can
    // pause this thread between the spawn and the wait (the task is cancelled, not awaited).
    let delay = match timeout {
        None => Duration::from_millis(50),
        Some(t) => t + Duration::from_secs(60),
    };
    let mut future = lp.spawn(add(1, 2, fail, cancel, delay));
    let Some(timeout) = timeout else {
        // The task has ended: the `finally` below has nothing to cancel.
        return future.join_blocking().map_err(TargetError::Join);
    };
    let out = join_timeout(&mut future, timeout);
    // finally: future.done() or future.cancel()
    if !future.is_done() {
        future.cancel();
    }
    out.ok_or(TargetError::Timeout)?.map_err(TargetError::Join)
}

#[test]
fn test_run_coroutine_threadsafe() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let future = lp.run_in_executor(move || target(h, false, false, None));
    let result = lp.run_until_complete(future).unwrap().unwrap();
    assert_eq!(result.unwrap(), 3);
}

#[test]
fn test_run_coroutine_threadsafe_with_exception() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let future = lp.run_in_executor(move || target(h, true, false, None));
    let result = lp.run_until_complete(future).unwrap().unwrap();
    match result {
        Err(TargetError::Join(e)) => assert_eq!(e.panic_message(), Some("Fail!")),
        other => panic!("expected the RuntimeError('Fail!'), got {other:?}"),
    }
}

#[test]
fn test_run_coroutine_threadsafe_with_timeout() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let future = lp.run_in_executor(move || target(h, false, false, Some(Duration::ZERO)));
    let result = lp.run_until_complete(future).unwrap().unwrap();
    assert!(matches!(result, Err(TargetError::Timeout)), "{result:?}");
    // test_utils.run_briefly
    lp.stop();
    lp.run_forever().unwrap();
    // Check that there's no pending task (add has been cancelled)
    for task in lp.all_tasks() {
        assert!(task.is_done(), "{task:?}");
    }
}

#[test]
fn test_run_coroutine_threadsafe_task_cancelled() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let future = lp.run_in_executor(move || target(h, false, true, None));
    let result = lp.run_until_complete(future).unwrap().unwrap();
    match result {
        Err(TargetError::Join(e)) => assert!(e.is_cancelled(), "{e:?}"),
        other => panic!("expected a CancelledError, got {other:?}"),
    }
}
