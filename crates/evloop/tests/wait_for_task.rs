//! `evloop::wait_for_task`: asyncio's `wait_for(task, timeout)` to the letter, for a `Task`
//! (CPython's test_waitfor.py cases whose awaitable is a task; `timeout` covers the rest).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use evloop::{EventLoop, wait_for_task};

/// test_wait_for_timeout_less_then_0_or_0, with a task: a done task gives its result even with
/// `timeout=0`; a pending one is cancelled (and has ended when `wait_for` returns).
#[test]
fn test_wait_for_timeout_less_then_0_or_0_task() {
    evloop::run(async {
        let done = evloop::spawn(async { "done" });
        evloop::yield_now().await;
        assert_eq!(
            wait_for_task(done, Duration::ZERO).await.unwrap().unwrap(),
            "done"
        );

        let foo = evloop::spawn(evloop::sleep(Duration::from_secs(60)));
        evloop::yield_now().await; // started, as in CPython's `await started`
        let r = foo.as_ref();
        assert!(wait_for_task(foo, Duration::ZERO).await.is_err());
        assert!(r.is_done() && r.is_cancelled());

        // Never started: cancelled before its first poll.
        let fresh = evloop::spawn(evloop::sleep(Duration::from_secs(60)));
        let r = fresh.as_ref();
        assert!(wait_for_task(fresh, Duration::ZERO).await.is_err());
        assert!(r.is_cancelled());
    })
    .unwrap();
}

/// test_wait_for: the task finishing within the timeout gives its result; one that does not is
/// cancelled and has ended when the timeout is reported (asyncio waits for the cancellation).
#[test]
fn test_wait_for_task_result_and_expiry() {
    evloop::run(async {
        let quick = evloop::spawn(async {
            evloop::sleep(Duration::from_millis(1)).await;
            "foo"
        });
        let out = wait_for_task(quick, Duration::from_secs(30)).await;
        assert_eq!(out.unwrap().unwrap(), "foo");

        let slow = evloop::spawn(evloop::sleep(Duration::from_secs(60)));
        let r = slow.as_ref();
        assert!(
            wait_for_task(slow, Duration::from_millis(10))
                .await
                .is_err()
        );
        assert!(r.is_cancelled());
    })
    .unwrap();
}

/// test_cancel_wait_for: cancelling the task that awaits `wait_for_task` cancels the inner task.
#[test]
fn test_cancel_wait_for_task() {
    let lp = EventLoop::new().unwrap();
    let probe = lp.clone();
    lp.run_until_complete(async move {
        let inner = probe.create_task(evloop::sleep(Duration::from_secs(60)));
        let r = inner.as_ref();
        let outer = probe.create_task(wait_for_task(inner, Duration::from_secs(60)));
        evloop::yield_now().await;
        outer.cancel();
        assert!(outer.await.unwrap_err().is_cancelled());
        assert!(r.is_cancelled());
    })
    .unwrap();
}

/// An expiry is one cancel request (asyncio's `wait_for` cancels once): `cancelling()` is 1,
/// so a task's own `uncancel()` bookkeeping can reach 0.
#[test]
fn an_expiry_is_one_cancel_request() {
    evloop::run(async {
        let slow = evloop::spawn(async {
            evloop::sleep(Duration::from_secs(60)).await;
        });
        evloop::yield_now().await;
        let r = slow.as_ref();
        assert!(wait_for_task(slow, Duration::from_millis(5)).await.is_err());
        assert_eq!(r.cancelling(), 1);
    })
    .unwrap();
}
