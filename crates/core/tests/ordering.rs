//! Ordering rules of the loop: FIFO callbacks, timers in deadline order (ties in scheduling
//! order), zero/negative delays on the next iteration, and asyncio's `ntodo` snapshot (work
//! scheduled during an iteration runs in the next one, so nothing starves timers or I/O).
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{Watchdog, run_one};
use evloop_core::EventLoop;

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

#[test]
fn call_soon_runs_callbacks_in_fifo_order() {
    let lp = EventLoop::new().unwrap();
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    for i in 0..1000 {
        let l = log.clone();
        lp.call_soon(move || l.borrow_mut().push(i));
    }
    run_one(&lp);
    assert_eq!(*log.borrow(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn callbacks_and_task_steps_share_one_fifo_queue() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    lp.call_soon(move || push(&l, "cb1"));
    let l = log.clone();
    let _task = lp.create_task(async move { push(&l, "task") });
    let l = log.clone();
    lp.call_soon(move || push(&l, "cb2"));
    run_one(&lp);
    assert_eq!(*log.borrow(), ["cb1", "task", "cb2"]);
}

#[test]
fn timers_run_in_deadline_order_ties_in_scheduling_order() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let base = lp.time() + Duration::from_millis(5);
    // (offset in ms, label), scheduled in this order.
    let plan = [
        (3, "3a"),
        (1, "1a"),
        (2, "2a"),
        (1, "1b"),
        (0, "0a"),
        (3, "3b"),
        (1, "1c"),
        (0, "0b"),
    ];
    for (ms, label) in plan {
        let l = log.clone();
        lp.call_at(base + Duration::from_millis(ms), move || push(&l, label));
    }
    // The stopper is due after all of them.
    let stopper = lp.clone();
    lp.call_at(base + Duration::from_millis(10), move || stopper.stop());
    let _wd = Watchdog::new("timers_run_in_deadline_order", Duration::from_secs(20));
    lp.run_forever().unwrap();
    assert_eq!(
        *log.borrow(),
        ["0a", "0b", "1a", "1b", "1c", "2a", "3a", "3b"]
    );
}

#[test]
fn same_deadline_timers_due_in_one_iteration_keep_scheduling_order() {
    let lp = EventLoop::new().unwrap();
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    // All in the past: all due in the first iteration, all with the same deadline.
    let when = lp.time().checked_sub(Duration::from_millis(1)).unwrap();
    for i in 0..500 {
        let l = log.clone();
        lp.call_at(when, move || l.borrow_mut().push(i));
    }
    run_one(&lp);
    assert_eq!(*log.borrow(), (0..500).collect::<Vec<_>>());
}

#[test]
fn past_deadlines_run_in_deadline_order() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let now = lp.time();
    for (ms, label) in [(1u64, "-1ms"), (5, "-5ms"), (3, "-3ms")] {
        let l = log.clone();
        let when = now.checked_sub(Duration::from_millis(ms)).unwrap();
        lp.call_at(when, move || push(&l, label));
    }
    let l = log.clone();
    lp.call_later(Duration::ZERO, move || push(&l, "zero"));
    run_one(&lp);
    assert_eq!(*log.borrow(), ["-5ms", "-3ms", "-1ms", "zero"]);
}

#[test]
fn zero_delay_before_the_run_runs_in_the_first_iteration() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    lp.call_later(Duration::ZERO, move || r.set(true));
    run_one(&lp);
    assert!(ran.get());
}

#[test]
fn zero_and_negative_delay_scheduled_in_a_callback_run_on_the_next_iteration() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, lp2) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        push(&l, "A");
        let l2 = l.clone();
        lp2.call_later(Duration::ZERO, move || push(&l2, "B zero delay"));
        let l2 = l.clone();
        let past = lp2.time().checked_sub(Duration::from_secs(1)).unwrap();
        lp2.call_at(past, move || push(&l2, "C past deadline"));
        let l2 = l.clone();
        lp2.call_soon(move || push(&l2, "D call_soon"));
    });
    run_one(&lp);
    assert_eq!(*log.borrow(), ["A"]);
    run_one(&lp);
    // The call_soon callback was already in the ready queue; the due timers are appended in
    // deadline order (the past one first).
    assert_eq!(
        *log.borrow(),
        ["A", "D call_soon", "C past deadline", "B zero delay"]
    );
    run_one(&lp);
    assert_eq!(log.borrow().len(), 4);
}

#[test]
fn callback_scheduled_during_an_iteration_runs_in_the_next_one() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, lp2) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        push(&l, "A");
        let (l, lp3) = (l.clone(), lp2.clone());
        lp2.call_soon(move || {
            push(&l, "B");
            let l = l.clone();
            lp3.call_soon(move || push(&l, "C"));
        });
    });
    let l = log.clone();
    lp.call_soon(move || push(&l, "A2"));
    run_one(&lp);
    assert_eq!(*log.borrow(), ["A", "A2"]);
    run_one(&lp);
    assert_eq!(*log.borrow(), ["A", "A2", "B"]);
    run_one(&lp);
    assert_eq!(*log.borrow(), ["A", "A2", "B", "C"]);
    run_one(&lp);
    assert_eq!(log.borrow().len(), 4);
}

/// A callback that reschedules itself until `stop_flag` is set; counts its runs.
fn spin(lp: EventLoop, runs: Rc<Cell<u64>>, stop_flag: Rc<Cell<bool>>) {
    runs.set(runs.get() + 1);
    if !stop_flag.get() {
        let lp2 = lp.clone();
        lp.call_soon(move || spin(lp2, runs, stop_flag));
    }
}

#[test]
fn self_rescheduling_callback_runs_once_per_iteration() {
    let lp = EventLoop::new().unwrap();
    let runs = Rc::new(Cell::new(0));
    let stop_flag = Rc::new(Cell::new(false));
    let (lp2, r, s) = (lp.clone(), runs.clone(), stop_flag.clone());
    lp.call_soon(move || spin(lp2, r, s));
    for i in 1..=5 {
        run_one(&lp);
        assert_eq!(runs.get(), i);
    }
    stop_flag.set(true);
    run_one(&lp);
    run_one(&lp);
    assert_eq!(runs.get(), 6);
    lp.close().unwrap();
}

#[test]
fn self_rescheduling_callback_does_not_starve_a_timer() {
    let _wd = Watchdog::new(
        "self_rescheduling_callback_does_not_starve_a_timer",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let runs = Rc::new(Cell::new(0));
    let stop_flag = Rc::new(Cell::new(false));
    let (lp2, r, s) = (lp.clone(), runs.clone(), stop_flag.clone());
    lp.call_soon(move || spin(lp2, r, s));
    let (lp2, s) = (lp.clone(), stop_flag.clone());
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    lp.call_later(Duration::from_millis(3), move || {
        f.set(true);
        s.set(true);
        lp2.stop();
    });
    lp.run_forever().unwrap();
    assert!(fired.get());
    assert!(runs.get() >= 1);
    lp.close().unwrap();
}

#[test]
fn self_rescheduling_callback_does_not_starve_io() {
    let _wd = Watchdog::new(
        "self_rescheduling_callback_does_not_starve_io",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"x").unwrap();
    let runs = Rc::new(Cell::new(0));
    let stop_flag = Rc::new(Cell::new(false));
    let (lp2, r, s) = (lp.clone(), runs.clone(), stop_flag.clone());
    lp.call_soon(move || spin(lp2, r, s));
    let (lp2, s) = (lp.clone(), stop_flag.clone());
    let reads = Rc::new(Cell::new(0));
    let rd = reads.clone();
    lp.add_reader(a.as_raw_fd(), move || {
        rd.set(rd.get() + 1);
        s.set(true);
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(reads.get(), 1);
    assert!(lp.remove_reader(a.as_raw_fd()));
    lp.close().unwrap();
}

#[test]
fn self_waking_task_does_not_starve_a_timer_or_callbacks() {
    let _wd = Watchdog::new("self_waking_task_does_not_starve", Duration::from_secs(20));
    let lp = EventLoop::new().unwrap();
    let stop_flag = Rc::new(Cell::new(false));
    let steps = Rc::new(Cell::new(0u64));
    let (s, st) = (stop_flag.clone(), steps.clone());
    let spinner = lp.create_task(async move {
        while !s.get() {
            st.set(st.get() + 1);
            evloop_core::yield_now().await;
        }
    });
    let (lp2, s) = (lp.clone(), stop_flag.clone());
    lp.call_later(Duration::from_millis(3), move || {
        s.set(true);
        lp2.stop();
    });
    lp.run_forever().unwrap();
    assert!(steps.get() >= 1);
    // The spinner sees the flag on its next step.
    run_one(&lp);
    assert!(spinner.is_done());
}

/// asyncio keeps one FIFO for `call_soon` and `call_soon_threadsafe`: a thread-safe callback
/// posted first runs first (it used to wait in the injector until the next drain, behind
/// every `call_soon` made meanwhile).
#[test]
fn call_soon_threadsafe_then_call_soon_on_the_same_thread_keep_their_order() {
    let lp = EventLoop::new().unwrap();
    let log: Arc<Mutex<Vec<&str>>> = Arc::default();
    let l = log.clone();
    lp.handle()
        .call_soon_threadsafe(move || l.lock().unwrap().push("a"))
        .unwrap();
    let l = log.clone();
    lp.call_soon(move || l.lock().unwrap().push("b"));
    let l = log.clone();
    lp.handle()
        .call_soon_threadsafe(move || l.lock().unwrap().push("c"))
        .unwrap();
    let l = log.clone();
    let _task = lp.create_task(async move { l.lock().unwrap().push("task") });
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "task"]);
}

/// The same order when the thread-safe callback comes from another thread and a
/// happens-before edge (the channel) orders it before the `call_soon`: both inside a running
/// iteration, so both run in the next one, in that order.
#[test]
fn call_soon_threadsafe_from_another_thread_before_call_soon_runs_first() {
    let lp = EventLoop::new().unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let (l, handle, inner) = (log.clone(), lp.handle(), lp.clone());
    lp.call_soon(move || {
        l.lock().unwrap().push("iteration 1".into());
        let (tx, rx) = mpsc::channel();
        let (remote_log, remote) = (l.clone(), handle.clone());
        let poster = std::thread::spawn(move || {
            remote
                .call_soon_threadsafe(move || remote_log.lock().unwrap().push("remote".into()))
                .unwrap();
            tx.send(()).unwrap();
        });
        rx.recv().unwrap();
        let local = l.clone();
        inner.call_soon(move || local.lock().unwrap().push("local".into()));
        poster.join().unwrap();
        l.lock().unwrap().push("end of iteration 1".into());
    });
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), ["iteration 1", "end of iteration 1"]);
    run_one(&lp);
    assert_eq!(
        *log.lock().unwrap(),
        ["iteration 1", "end of iteration 1", "remote", "local"]
    );
}

/// A task woken on the loop thread (a local wake) goes after a thread-safe callback posted
/// from another thread before the wake, too.
#[test]
fn call_soon_threadsafe_before_a_local_wake_runs_first() {
    let lp = EventLoop::new().unwrap();
    let log: Arc<Mutex<Vec<&str>>> = Arc::default();
    let waker: Rc<RefCell<Option<std::task::Waker>>> = Rc::default();
    let (l, w) = (log.clone(), waker.clone());
    let _task = lp.create_task(async move {
        let mut first = true;
        std::future::poll_fn(|cx| {
            if first {
                first = false;
                *w.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        l.lock().unwrap().push("task");
    });
    run_one(&lp);
    let (l, handle, w) = (log.clone(), lp.handle(), waker.clone());
    lp.call_soon(move || {
        // From another thread (on this one `call_soon_threadsafe` goes straight to the ready
        // queue while the loop runs); the join orders it before the wake.
        let remote = l.clone();
        std::thread::spawn(move || {
            handle
                .call_soon_threadsafe(move || remote.lock().unwrap().push("threadsafe"))
                .unwrap();
        })
        .join()
        .unwrap();
        if let Some(w) = w.borrow_mut().take() {
            w.wake();
        }
    });
    run_one(&lp);
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), ["threadsafe", "task"]);
}
