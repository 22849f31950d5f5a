//! `evloop_core::sleep`, `sleep_until` and `yield_now`.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{Watchdog, run_one};
use evloop_core::{EventLoop, sleep, sleep_until, yield_now};

#[test]
fn sleep_completes_no_earlier_than_its_duration() {
    let _wd = Watchdog::new("sleep_completes_no_earlier", Duration::from_secs(20));
    let lp = EventLoop::new().unwrap();
    let d = Duration::from_millis(20);
    let start = Instant::now();
    lp.run_until_complete(sleep(&lp, d)).unwrap();
    assert!(start.elapsed() >= d, "{:?}", start.elapsed());

    let lp2 = lp.clone();
    let task = lp.create_task(async move {
        let start = Instant::now();
        sleep(&lp2, Duration::from_millis(10)).await;
        start.elapsed()
    });
    let took = lp.run_until_complete(task).unwrap().unwrap();
    assert!(took >= Duration::from_millis(10), "{took:?}");
}

#[test]
fn sleep_until_a_deadline() {
    let _wd = Watchdog::new("sleep_until_a_deadline", Duration::from_secs(20));
    let lp = EventLoop::new().unwrap();
    let deadline = Instant::now() + Duration::from_millis(10);
    let s = sleep_until(&lp, deadline);
    assert_eq!(s.deadline(), deadline);
    lp.run_until_complete(s).unwrap();
    assert!(Instant::now() >= deadline);
    // A deadline in the past completes on the next iteration.
    let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
    lp.run_until_complete(sleep_until(&lp, past)).unwrap();
}

#[test]
fn concurrent_sleeps_end_in_deadline_order() {
    let _wd = Watchdog::new(
        "concurrent_sleeps_end_in_deadline_order",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = [30u64, 10, 20, 0]
        .into_iter()
        .map(|ms| {
            let (o, lp2) = (order.clone(), lp.clone());
            lp.create_task(async move {
                sleep(&lp2, Duration::from_millis(ms)).await;
                o.borrow_mut().push(ms);
            })
        })
        .collect();
    lp.run_until_complete(async move {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(*order.borrow(), [0, 10, 20, 30]);
}

#[test]
fn sleep_zero_takes_an_iteration() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l, lp2) = (log.clone(), lp.clone());
    let _t = lp.create_task(async move {
        l.borrow_mut().push("before");
        sleep(&lp2, Duration::ZERO).await;
        l.borrow_mut().push("after");
    });
    run_one(&lp);
    assert_eq!(*log.borrow(), ["before"]);
    // The zero timer is due at the next iteration, the task resumes in the one after at the
    // latest.
    run_one(&lp);
    run_one(&lp);
    assert_eq!(*log.borrow(), ["before", "after"]);
}

#[test]
fn dropping_a_sleep_cancels_its_timer() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let n = lp
        .run_until_complete(async move {
            let mut s = std::pin::pin!(sleep(&lp2, Duration::from_secs(3600)));
            // Poll it once so the timer is scheduled.
            std::future::poll_fn(|cx| {
                assert!(s.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            lp2.pending_timers()
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(lp.pending_timers(), 0);
}

#[test]
fn yield_now_interleaves_tasks() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mk = |name: &'static str| {
        let l = log.clone();
        lp.create_task(async move {
            for i in 0..3 {
                l.borrow_mut().push(format!("{name}{i}"));
                yield_now().await;
            }
        })
    };
    let a = mk("A");
    let b = mk("B");
    lp.run_until_complete(async move {
        a.await.unwrap();
        b.await.unwrap();
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["A0", "B0", "A1", "B1", "A2", "B2"]);
}

#[test]
fn yield_now_lets_a_callback_run_in_between() {
    let lp = EventLoop::new().unwrap();
    let flag = Rc::new(std::cell::Cell::new(false));
    let (f, lp2) = (flag.clone(), lp.clone());
    let (before, after) = lp
        .run_until_complete(async move {
            let f2 = f.clone();
            lp2.call_soon(move || f2.set(true));
            let before = f.get();
            yield_now().await;
            (before, f.get())
        })
        .unwrap();
    assert!(!before);
    assert!(after);
}

#[test]
fn a_sleep_is_terminated_once_it_fired() {
    use futures_core::FusedFuture;
    let lp = EventLoop::new().unwrap();
    let mut sleep = Box::pin(evloop_core::sleep(&lp, Duration::from_millis(1)));
    assert!(!sleep.is_terminated());
    lp.run_until_complete(sleep.as_mut()).unwrap();
    assert!(sleep.is_terminated());
    lp.close().unwrap();
}

/// A waker that counts as one strong reference to its `Arc` per clone.
struct CountedWaker;

impl std::task::Wake for CountedWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

#[test]
fn dropping_a_pending_sleep_releases_its_waker_at_once() {
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    let lp = EventLoop::new().unwrap();
    // A pending timer due first, so the cancelled sleeps stay in the heap behind it.
    let _first = lp.call_later(Duration::from_secs(1800), || {});
    let probe = Arc::new(CountedWaker);
    let waker = Waker::from(probe.clone());
    let long = Duration::from_secs(3600);

    // Armed on the loop's own thread: straight into its heap.
    let lp2 = lp.clone();
    let w = waker.clone();
    lp.run_until_complete(async move {
        let mut s = pin!(sleep(&lp2, long));
        assert!(s.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
    })
    .unwrap();
    assert_eq!(lp.pending_timers(), 1, "the sleep was cancelled");
    assert_eq!(
        Arc::strong_count(&probe),
        2,
        "a cancelled sleep kept its waker"
    );

    // Armed from outside the loop (through its injection queue), then dropped.
    let mut s = Box::pin(sleep(&lp, long));
    assert!(
        s.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert_eq!(Arc::strong_count(&probe), 3);
    drop(s);
    assert_eq!(
        Arc::strong_count(&probe),
        2,
        "a cancelled sleep kept its waker"
    );
    run_one(&lp);
    assert_eq!(Arc::strong_count(&probe), 2);
    lp.close().unwrap();
}
