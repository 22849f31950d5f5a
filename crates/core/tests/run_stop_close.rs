//! `stop`, `run_forever`, `run_until_complete` and `close`: iterations, early stops, and what
//! a closed (or dropped) loop does with pending and new work.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::{DropCounter, DropGuard, pending_holding, record_exceptions, run_one};
use evloop_core::{Error, EventLoop, Handle, JoinError, TimerHandle};

type Log = Rc<RefCell<Vec<&'static str>>>;

fn logger(log: &Log, s: &'static str) -> impl FnOnce() + 'static {
    let l = log.clone();
    move || l.borrow_mut().push(s)
}

#[test]
fn stop_then_run_forever_runs_exactly_one_iteration() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, lp2) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        l.borrow_mut().push("A");
        lp2.call_soon(logger(&l, "C (scheduled by A)"));
    });
    lp.call_soon(logger(&log, "B"));
    lp.stop();
    assert!(!lp.is_running());
    lp.run_forever().unwrap();
    assert!(!lp.is_running());
    assert_eq!(*log.borrow(), ["A", "B"]);
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["A", "B", "C (scheduled by A)"]);
}

#[test]
fn stop_inside_a_callback_lets_the_current_iteration_finish() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    lp.call_soon(logger(&log, "before"));
    let (l, lp2) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        l.borrow_mut().push("stopper");
        lp2.stop();
    });
    lp.call_soon(logger(&log, "after 1"));
    let (l, lp2) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        l.borrow_mut().push("after 2");
        lp2.call_soon(logger(&l, "next iteration"));
    });
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["before", "stopper", "after 1", "after 2"]);
    // The loop can run again; what was scheduled for the next iteration runs then.
    run_one(&lp);
    assert_eq!(log.borrow().last(), Some(&"next iteration"));
}

#[test]
fn run_forever_runs_until_stopped_by_a_later_iteration() {
    let lp = EventLoop::new().unwrap();
    let count = Rc::new(Cell::new(0u32));
    fn tick(lp: EventLoop, count: Rc<Cell<u32>>) {
        count.set(count.get() + 1);
        if count.get() == 10 {
            lp.stop();
        } else {
            let lp2 = lp.clone();
            lp.call_soon(move || tick(lp2, count));
        }
    }
    let (lp2, c) = (lp.clone(), count.clone());
    lp.call_soon(move || tick(lp2, c));
    lp.run_forever().unwrap();
    assert_eq!(count.get(), 10);
    assert!(!lp.is_running());
}

#[test]
fn is_running_inside_and_outside() {
    let lp = EventLoop::new().unwrap();
    assert!(!lp.is_running());
    let lp2 = lp.clone();
    assert!(
        lp.run_until_complete(async move { lp2.is_running() })
            .unwrap()
    );
    let seen = Rc::new(Cell::new(false));
    let (s, lp2) = (seen.clone(), lp.clone());
    lp.call_soon(move || s.set(lp2.is_running()));
    run_one(&lp);
    assert!(seen.get());
    assert!(!lp.is_running());
}

#[test]
fn run_until_complete_stopped_early_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    lp.call_soon(move || lp2.stop());
    let err = lp
        .run_until_complete(std::future::pending::<()>())
        .unwrap_err();
    assert!(matches!(err, Error::StoppedBeforeComplete), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Event loop stopped before Future completed."
    );
    // The loop stays usable.
    assert!(!lp.is_running());
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
}

#[test]
fn stop_before_run_until_complete_runs_one_iteration() {
    let lp = EventLoop::new().unwrap();
    // A future that completes on its first poll still completes.
    lp.stop();
    assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
    // One that needs a second iteration does not.
    lp.stop();
    let err = lp
        .run_until_complete(async {
            evloop_core::yield_now().await;
        })
        .unwrap_err();
    assert!(matches!(err, Error::StoppedBeforeComplete), "{err:?}");
}

#[test]
fn run_until_complete_future_may_borrow_locals() {
    let lp = EventLoop::new().unwrap();
    let mut v = vec![1, 2];
    let n = lp
        .run_until_complete(async {
            v.push(3);
            evloop_core::yield_now().await;
            v.len()
        })
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(v, [1, 2, 3]);
}

#[test]
fn close_is_idempotent() {
    let lp = EventLoop::new().unwrap();
    assert!(!lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
}

#[test]
fn close_while_running_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let err = lp.run_until_complete(async move { lp2.close() }).unwrap();
    let err = err.unwrap_err();
    assert!(matches!(err, Error::CloseRunning), "{err:?}");
    assert_eq!(err.to_string(), "Cannot close a running event loop");
    assert!(!lp.is_closed());

    let seen = Rc::new(RefCell::new(None));
    let (s, lp2) = (seen.clone(), lp.clone());
    lp.call_soon(move || *s.borrow_mut() = Some(lp2.close()));
    run_one(&lp);
    assert!(matches!(
        seen.borrow_mut().take(),
        Some(Err(Error::CloseRunning))
    ));
    assert!(!lp.is_closed());
    lp.close().unwrap();
}

#[test]
fn running_a_closed_loop_is_an_error() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    let err = lp.run_forever().unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert_eq!(err.to_string(), "Event loop is closed");
    let err = lp.run_until_complete(async { 1 }).unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    lp.stop();
    assert!(matches!(lp.run_forever(), Err(Error::Closed)));
    assert!(!lp.is_running());
}

#[test]
fn scheduling_on_a_closed_loop_does_nothing() {
    let lp = EventLoop::new().unwrap();
    lp.close().unwrap();
    let drops = DropCounter::default();

    let g = drops.guard();
    let h = lp.call_soon(move || drop(g));
    assert!(h.cancelled());
    assert_eq!(drops.get(), 1, "the callback is dropped at once");

    let g = drops.guard();
    let t = lp.call_later(Duration::ZERO, move || drop(g));
    assert!(t.cancelled());
    assert_eq!(drops.get(), 2);

    let g = drops.guard();
    let t = lp.call_at(lp.time(), move || drop(g));
    assert!(t.cancelled());
    assert_eq!(drops.get(), 3);

    let polled = Rc::new(Cell::new(false));
    let p = polled.clone();
    let g = drops.guard();
    let task = lp.create_task(async move {
        let _g = g;
        p.set(true);
        7
    });
    assert!(task.is_done());
    assert!(task.is_cancelled());
    assert_eq!(drops.get(), 4, "the task's future is dropped");
    assert!(!polled.get());
    assert!(lp.all_tasks().is_empty());
    // Awaited on another loop, it resolves to Err(Cancelled).
    let other = EventLoop::new().unwrap();
    let out = other.run_until_complete(task).unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");

    let handle = lp.handle();
    assert!(handle.is_closed());
    let err = handle.call_soon_threadsafe(|| {}).unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    let g = drops.guard();
    let spawned = handle.spawn(async move {
        let _g = g;
        1u8
    });
    assert!(spawned.is_cancelled());
    assert_eq!(drops.get(), 5);
    let out = other.run_until_complete(spawned).unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    assert!(!polled.get());
}

#[test]
fn close_drops_every_pending_callback_timer_and_task() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let drops = DropCounter::default();

    // A task that ran once and now waits forever.
    let started = lp.create_task(pending_holding(drops.guard()));
    run_one(&lp);
    assert!(!started.is_done());
    // A task that never ran.
    let never_ran = lp.create_task(pending_holding(drops.guard()));
    // A callback and a timer (their handles are dropped; see the next test for held handles).
    let g = drops.guard();
    drop(lp.call_soon(move || drop(g)));
    let g = drops.guard();
    drop(lp.call_later(Duration::from_secs(3600), move || drop(g)));
    // A remote callback queued while the loop is not running.
    let g = drops.guard();
    lp.handle().call_soon_threadsafe(move || drop(g)).unwrap();
    let g = drops.guard();
    let remote = std::thread::spawn({
        let h = lp.handle();
        move || h.call_soon_threadsafe(move || drop(g))
    });
    remote.join().unwrap().unwrap();
    assert_eq!(drops.get(), 0);
    assert_eq!(lp.pending_timers(), 1);

    let (started_id, never_ran_id) = (started.id(), never_ran.id());
    lp.close().unwrap();
    assert_eq!(drops.get(), 6, "everything pending was dropped");
    assert_eq!(lp.pending_timers(), 0);

    let reports = reports.borrow();
    let mut ids: Vec<_> = reports
        .iter()
        .map(|r| {
            assert_eq!(r.message, "Task was destroyed but it is pending!");
            r.task.as_ref().expect("ctx.task() is Some").id()
        })
        .collect();
    ids.sort();
    let mut expected = vec![started_id, never_ran_id];
    expected.sort();
    assert_eq!(ids, expected);

    for t in [&started, &never_ran] {
        assert!(t.is_done());
        assert!(t.is_cancelled());
    }
    let other = EventLoop::new().unwrap();
    for t in [started, never_ran] {
        let out = other.run_until_complete(t).unwrap();
        assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    }
}

#[test]
fn close_drops_pending_callbacks_and_timers_whose_handles_are_still_held() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let g = drops.guard();
    let cb = lp.call_soon(move || drop(g));
    let g = drops.guard();
    let timer = lp.call_later(Duration::from_secs(3600), move || drop(g));
    let g = drops.guard();
    let due = lp.call_later(Duration::ZERO, move || drop(g));
    assert_eq!(drops.get(), 0);
    lp.close().unwrap();
    assert!(
        timer.cancelled(),
        "a pending timer reads cancelled after close"
    );
    assert!(
        due.cancelled(),
        "a pending timer reads cancelled after close"
    );
    assert!(
        cb.cancelled(),
        "a pending call_soon handle reads cancelled after close"
    );
    assert_eq!(
        drops.get(),
        3,
        "close() drops every pending callback, also one whose Handle is still held"
    );
}

#[test]
fn close_does_not_report_finished_tasks() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let done = lp.create_task(async { 1 });
    run_one(&lp);
    assert!(done.is_done());
    lp.close().unwrap();
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
    assert_eq!(
        EventLoop::new()
            .unwrap()
            .run_until_complete(done)
            .unwrap()
            .unwrap(),
        1
    );
}

#[test]
fn dropping_the_last_loop_handle_closes_the_loop() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let g = drops.guard();
    lp.call_soon(move || drop(g));
    let g = drops.guard();
    lp.call_later(Duration::from_secs(3600), move || drop(g));
    let task = lp.create_task(pending_holding(drops.guard()));
    let remote = lp.handle();

    let clone = lp.clone();
    assert!(clone == lp);
    drop(lp);
    // Another handle is alive: nothing happened.
    assert!(!remote.is_closed());
    assert_eq!(drops.get(), 0);
    assert!(!task.is_done());

    drop(clone);
    assert!(remote.is_closed());
    assert_eq!(drops.get(), 3);
    assert!(task.is_cancelled());
    assert!(matches!(
        remote.call_soon_threadsafe(|| {}),
        Err(Error::Closed)
    ));
}

#[test]
fn loop_is_reusable_after_run_until_complete_and_run_forever() {
    let lp = EventLoop::new().unwrap();
    for i in 0..5 {
        assert_eq!(lp.run_until_complete(async move { i }).unwrap(), i);
        run_one(&lp);
    }
    let t = lp.create_task(async { "x" });
    assert_eq!(lp.run_until_complete(t).unwrap().unwrap(), "x");
}

/// On drop, uses the loop (as user destructors may): none of it may panic during `close()`.
struct TouchesLoopOnDrop {
    lp: std::rc::Weak<RefCell<Option<EventLoop>>>,
    _guard: DropGuard,
}

impl Drop for TouchesLoopOnDrop {
    fn drop(&mut self) {
        let Some(slot) = self.lp.upgrade() else {
            return;
        };
        let Some(lp) = slot.borrow().clone() else {
            return;
        };
        assert!(lp.is_closed());
        assert!(lp.call_soon(|| {}).cancelled());
        assert!(lp.call_later(Duration::ZERO, || {}).cancelled());
        assert!(lp.create_task(async {}).is_cancelled());
        let _ = lp.all_tasks();
        let _ = lp.pending_timers();
        assert!(!lp.remove_reader(0));
        lp.close().unwrap();
        assert!(matches!(lp.run_forever(), Err(Error::Closed)));
    }
}

#[test]
fn destructors_of_pending_work_may_use_the_loop_during_close() {
    let lp = EventLoop::new().unwrap();
    let _reports = record_exceptions(&lp);
    // The loop is reachable from the destructors without keeping it alive through a cycle.
    let slot = Rc::new(RefCell::new(Some(lp.clone())));
    let drops = DropCounter::default();
    let toucher = || TouchesLoopOnDrop {
        lp: Rc::downgrade(&slot),
        _guard: drops.guard(),
    };
    let t = toucher();
    lp.call_soon(move || drop(t));
    let t = toucher();
    lp.call_later(Duration::from_secs(3600), move || drop(t));
    let t = toucher();
    let started = lp.create_task(async move {
        let _t = t;
        std::future::pending::<()>().await;
    });
    run_one(&lp);
    let t = toucher();
    let _queued = lp.create_task(async move {
        let _t = t;
    });
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = toucher();
    lp.add_reader(std::os::fd::AsRawFd::as_raw_fd(&a), move || {
        let _ = &t;
    })
    .unwrap();
    lp.close().unwrap();
    assert_eq!(drops.get(), 5);
    assert!(started.is_cancelled());
    drop(slot);
}

#[test]
fn close_after_a_panicking_run_drops_the_work_left_in_the_ready_queue() {
    // A panic in the main future unwinds out of the middle of an iteration: the rest of that
    // iteration's ready work (here a callback and a due timer) stays queued. close() must
    // still drop it, also while the user holds the handles.
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let handles: Rc<RefCell<Option<(Handle, TimerHandle)>>> = Rc::default();
    let (lp2, h, d) = (lp.clone(), handles.clone(), drops.clone());
    let mut first = true;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lp.run_until_complete(std::future::poll_fn(move |cx| -> std::task::Poll<()> {
            if first {
                first = false;
                // Queue the next poll first, then the callback and the timer behind it.
                cx.waker().wake_by_ref();
                let g = d.guard();
                let cb = lp2.call_soon(move || drop(g));
                let g = d.guard();
                let timer = lp2.call_later(Duration::ZERO, move || drop(g));
                *h.borrow_mut() = Some((cb, timer));
                return std::task::Poll::Pending;
            }
            panic!("main future boom");
        }))
    }));
    assert!(caught.is_err());
    assert_eq!(drops.get(), 0, "the rest of the iteration did not run");
    lp.close().unwrap();
    let (cb, timer) = handles.borrow_mut().take().unwrap();
    assert!(cb.cancelled());
    assert!(
        timer.cancelled(),
        "a due timer left in the ready queue reads cancelled after close"
    );
    assert_eq!(
        drops.get(),
        2,
        "close() drops a due timer left in the ready queue"
    );
}

#[test]
fn dropping_the_last_handle_reports_pending_tasks() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let task = lp.create_task(std::future::pending::<()>());
    run_one(&lp);
    let id = task.id();
    drop(lp);
    let r = reports.borrow();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].message, "Task was destroyed but it is pending!");
    assert_eq!(r[0].task.as_ref().unwrap().id(), id);
    assert!(task.is_cancelled());
}
