//! The future given to `run_until_complete` runs as the loop's main task (asyncio wraps it with
//! `ensure_future`): listed, current, cancellable, and ended when the run returns.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::DropCounter;
use evloop_core::{Error, EventLoop, TaskRef};

#[test]
fn the_main_future_is_the_current_task_and_listed() {
    let lp = EventLoop::new().unwrap();
    let (current, listed) = lp
        .run_until_complete(async {
            let me = lp.current_task().unwrap();
            (me.clone(), lp.all_tasks().contains(&me))
        })
        .unwrap();
    assert!(listed);
    assert!(current.is_done() && !current.is_cancelled());
    assert!(lp.all_tasks().is_empty());
}

/// Cancelling the main task (as a shutdown or Ctrl-C handler would, through `all_tasks`) drops
/// the future and ends the run with `Err(Error::Cancelled)`.
#[test]
fn cancelling_the_main_task_drops_the_future_and_ends_the_run() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let guard = drops.guard();
    let probe = lp.clone();
    let seen: Rc<Cell<Option<TaskRef>>> = Rc::default();
    let s = seen.clone();
    let out = lp.run_until_complete(async move {
        let _guard = guard;
        s.set(evloop_core::task::current());
        let p = probe.clone();
        probe.call_soon(move || {
            for t in p.all_tasks() {
                t.cancel_with("stop it");
            }
        });
        std::future::pending::<()>().await
    });
    assert!(matches!(out, Err(Error::Cancelled)), "{out:?}");
    assert_eq!(out.unwrap_err().to_string(), "the main task was cancelled");
    assert_eq!(drops.get(), 1);
    let main = seen.take().unwrap();
    assert!(main.is_cancelled());
    let err = lp.run_until_complete(main).unwrap().unwrap_err();
    assert_eq!(err.cancel_message(), Some("stop it"));
    // The loop goes on.
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
}

/// A run stopped before its future completed ends its main task cancelled.
#[test]
fn a_stopped_run_ends_its_main_task_cancelled() {
    let lp = EventLoop::new().unwrap();
    let seen: Rc<Cell<Option<TaskRef>>> = Rc::default();
    let s = seen.clone();
    let out = lp.run_until_complete(async {
        s.set(lp.current_task());
        lp.stop();
        std::future::pending::<()>().await
    });
    assert!(matches!(out, Err(Error::StoppedBeforeComplete)));
    assert!(seen.take().unwrap().is_cancelled());
    assert!(lp.all_tasks().is_empty());
}

/// A panic in the main future propagates; its task has ended all the same.
#[test]
fn a_panicking_main_future_still_ends_its_task() {
    let lp = EventLoop::new().unwrap();
    let seen: Rc<Cell<Option<TaskRef>>> = Rc::default();
    let s = seen.clone();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            s.set(lp.current_task());
            evloop_core::yield_now().await;
            panic!("main failed");
        })
    }));
    assert!(out.is_err());
    assert!(seen.take().unwrap().is_done());
    assert!(lp.all_tasks().is_empty());
    lp.close().unwrap();
}

/// Tasks the main task awaits are cancelled with it (the `_fut_waiter` rule applies to it too).
#[test]
fn cancelling_the_main_task_cancels_what_it_awaits() {
    let lp = EventLoop::new().unwrap();
    let child = lp.create_task(std::future::pending::<()>());
    let child_ref = child.as_ref();
    let probe = lp.clone();
    let c = child_ref.clone();
    // The main future is the child's handle: once it has been polled (awaited), cancel the
    // main task.
    lp.call_soon(move || {
        let p = probe.clone();
        probe.call_soon(move || {
            for t in p.all_tasks() {
                if t != c {
                    t.cancel();
                }
            }
        });
    });
    assert!(matches!(
        lp.run_until_complete(child),
        Err(Error::Cancelled)
    ));
    lp.run_until_complete(async {}).unwrap();
    assert!(child_ref.is_cancelled());
}

/// A run stopped before its task ended (`run_until_complete(task)` with a `stop()`) leaves the
/// task pending, as asyncio does: dropping the handle the run was awaiting does not cancel it,
/// and a later run finishes it.
#[test]
fn a_stopped_run_leaves_the_task_it_awaited_pending() {
    let lp = EventLoop::new().unwrap();
    let sleeper = lp.clone();
    let task = lp.create_task(async move {
        evloop_core::sleep(&sleeper, std::time::Duration::from_millis(20)).await;
        5
    });
    let watch = task.as_ref();
    let stopper = lp.clone();
    lp.call_soon(move || stopper.stop());
    assert!(matches!(
        lp.run_until_complete(task),
        Err(evloop_core::Error::StoppedBeforeComplete)
    ));
    assert!(!watch.is_done());
    assert_eq!(watch.cancelling(), 0);
    lp.run_until_complete(watch.clone()).unwrap().unwrap();
    assert!(!watch.is_cancelled());
}
