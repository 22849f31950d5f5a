//! `Task::add_done_callback` / `TaskRef::add_done_callback`: asyncio's done callbacks of a
//! task — scheduled with `call_soon` on the loop when the task ends, in registration order,
//! given the task.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::{Watchdog, record_exceptions, run_one};
use evloop_core::{Error, EventLoop, LoopFuture, TaskRef};

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// The callback runs where asyncio's `call_soon` at the task's end would put it: after what
/// the task's last step scheduled, before what later items of that iteration schedule, and on
/// the next iteration, not the one the task ended in.
#[test]
fn the_callback_is_scheduled_with_call_soon_when_the_task_ends() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, probe) = (log.clone(), lp.clone());
    let task = lp.create_task(async move {
        let l2 = l.clone();
        probe.call_soon(move || push(&l2, "scheduled by the task's last step"));
        push(&l, "task ends");
    });
    let l = log.clone();
    task.add_done_callback_on(&lp, move |t| {
        assert!(t.is_done());
        push(&l, "done callback");
    })
    .unwrap();
    let (l, probe) = (log.clone(), lp.clone());
    lp.call_soon(move || {
        let l2 = l.clone();
        probe.call_soon(move || push(&l2, "scheduled after the task's end"));
        push(&l, "callback after the task");
    });
    run_one(&lp);
    assert_eq!(*log.borrow(), ["task ends", "callback after the task"]);
    run_one(&lp);
    assert_eq!(
        *log.borrow(),
        [
            "task ends",
            "callback after the task",
            "scheduled by the task's last step",
            "done callback",
            "scheduled after the task's end",
        ]
    );
}

#[test]
fn callbacks_run_in_registration_order_and_get_the_task() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let task = lp.create_task(async { 5 });
    let id = task.id();
    let as_ref = task.as_ref();
    for i in 0..3 {
        let l = log.clone();
        as_ref
            .add_done_callback_on(&lp, move |t| {
                assert_eq!(t.id(), id);
                push(&l, format!("cb{i}"));
            })
            .unwrap();
    }
    let l = log.clone();
    task.add_done_callback_on(&lp, move |_| push(&l, "cb3"))
        .unwrap();
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), 5);
    run_one(&lp);
    assert_eq!(*log.borrow(), ["cb0", "cb1", "cb2", "cb3"]);
}

#[test]
fn a_callback_added_after_the_end_is_scheduled_at_once() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let task = lp.create_task(async {});
    let r = task.as_ref();
    lp.run_until_complete(task).unwrap().unwrap();
    let l = log.clone();
    r.add_done_callback_on(&lp, move |t| push(&l, format!("done={}", t.is_done())))
        .unwrap();
    assert!(log.borrow().is_empty(), "scheduled, not called");
    run_one(&lp);
    assert_eq!(*log.borrow(), ["done=true"]);
}

#[test]
fn a_cancelled_task_calls_back_cancelled() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, probe) = (log.clone(), lp.clone());
    let outcome = lp
        .run_until_complete(async move {
            let task = probe.create_task(std::future::pending::<()>());
            let l2 = l.clone();
            task.add_done_callback(move |t| push(&l2, format!("cancelled={}", t.is_cancelled())))
                .unwrap();
            evloop_core::yield_now().await;
            task.cancel();
            let out = task.await;
            evloop_core::yield_now().await;
            out
        })
        .unwrap();
    assert!(outcome.unwrap_err().is_cancelled());
    assert_eq!(*log.borrow(), ["cancelled=true"]);
}

#[test]
fn add_done_callback_outside_a_running_loop_is_no_running_loop() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async {});
    let err = task.add_done_callback(|_| {}).unwrap_err();
    assert!(matches!(err, Error::NoRunningLoop));
    assert_eq!(err.to_string(), "no running event loop");
    let err = task.as_ref().add_done_callback(|_| {}).unwrap_err();
    assert!(matches!(err, Error::NoRunningLoop));
    lp.run_until_complete(task).unwrap().unwrap();
}

#[test]
fn add_done_callback_on_a_closed_loop_is_closed_and_drops_the_callback() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async {});
    let r = task.as_ref();
    lp.close().unwrap();
    let guard = Rc::new(());
    let g = guard.clone();
    let err = r.add_done_callback_on(&lp, move |_| drop(g)).unwrap_err();
    assert!(matches!(err, Error::Closed));
    assert_eq!(Rc::strong_count(&guard), 1);
}

#[test]
fn a_panicking_callback_is_reported_and_the_next_one_runs() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let log: Log = Rc::default();
    let task = lp.create_task(async {});
    task.add_done_callback_on(&lp, |_| panic!("done boom"))
        .unwrap();
    let l = log.clone();
    task.add_done_callback_on(&lp, move |_| push(&l, "second"))
        .unwrap();
    lp.run_until_complete(task).unwrap().unwrap();
    run_one(&lp);
    assert_eq!(*log.borrow(), ["second"]);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].message.starts_with("Exception in callback"));
    assert_eq!(reports[0].panic.as_deref(), Some("done boom"));
}

/// The watcher is no task: `all_tasks` and `current_task` do not see it.
#[test]
fn the_callback_runs_outside_any_task_and_adds_none() {
    let lp = EventLoop::new().unwrap();
    let seen: Rc<RefCell<Option<Option<TaskRef>>>> = Rc::default();
    let task = lp.create_task(std::future::pending::<()>());
    let (s, probe) = (seen.clone(), lp.clone());
    task.add_done_callback_on(&lp, move |_| *s.borrow_mut() = Some(probe.current_task()))
        .unwrap();
    run_one(&lp);
    let ids: Vec<_> = lp.all_tasks().iter().map(TaskRef::id).collect();
    assert_eq!(ids, [task.id()]);
    task.cancel();
    run_one(&lp);
    run_one(&lp);
    assert!(matches!(*seen.borrow(), Some(None)));
}

/// A `Send` task running on another thread's loop calls back on this loop.
#[test]
fn a_task_of_another_loop_calls_back_on_this_one() {
    let _watchdog = Watchdog::new("cross-loop done callback", Duration::from_secs(30));
    let (tx, rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        tx.send(lp.handle()).unwrap();
        lp.run_forever().unwrap();
        lp.close().unwrap();
    });
    let remote = rx.recv().unwrap();
    let task = remote.spawn(async move {
        // Ends only once this thread has added its callback.
        go_rx.recv().unwrap();
        std::thread::current().id()
    });
    let lp = EventLoop::new().unwrap();
    let called: LoopFuture<bool> = lp.create_future();
    let c = called.clone();
    let here = std::thread::current().id();
    task.add_done_callback_on(&lp, move |t| {
        assert_eq!(std::thread::current().id(), here);
        c.set_result(t.is_done()).unwrap();
    })
    .unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(lp.run_until_complete(called).unwrap(), Ok(true));
    assert_ne!(task.join_blocking().unwrap(), here);
    remote.stop();
    other.join().unwrap();
}

/// asyncio's `current_task().add_done_callback(cb)` from inside the task: `cb` runs when the
/// task ends, not at once (registering must not count as the task awaiting itself), and the
/// task dump does not show the task as awaiting itself.
#[test]
fn a_task_adding_a_done_callback_to_itself_gets_it_at_its_end() {
    let lp = EventLoop::new().unwrap();
    let log: Log = Rc::default();
    let (l, probe) = (log.clone(), lp.clone());
    let task = lp.create_task(async move {
        let me = probe.current_task().unwrap();
        let l2 = l.clone();
        me.add_done_callback(move |t| {
            assert!(t.is_done());
            push(&l2, "done callback");
        })
        .unwrap();
        let awaiting = probe.dump_tasks().get(me.id()).unwrap().awaiting;
        assert_eq!(awaiting, None);
        for _ in 0..3 {
            evloop_core::yield_now().await;
        }
        let awaiting = probe.dump_tasks().get(me.id()).unwrap().awaiting;
        assert_eq!(awaiting, None);
        push(&l, "task ends");
    });
    lp.run_until_complete(task).unwrap().unwrap();
    lp.run_until_complete(evloop_core::yield_now()).unwrap();
    assert_eq!(*log.borrow(), ["task ends", "done callback"]);
}
