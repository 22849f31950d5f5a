//! Tasks: scheduling, output, detaching, cancellation, awaiting tasks, `TaskRef`,
//! `all_tasks` and names.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use common::{DropCounter, Signal, pending_holding, record_exceptions, run_one};
use evloop_core::{EventLoop, JoinError, TaskId, TaskRef};

#[test]
fn create_task_schedules_but_does_not_run_until_the_loop_runs() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let task = lp.create_task(async move {
        r.set(true);
        1
    });
    assert!(!ran.get());
    assert!(!task.is_done());
    run_one(&lp);
    assert!(ran.get());
    assert!(task.is_done());
    assert!(!task.is_cancelled());
}

#[test]
fn task_output() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async { String::from("forty-two") });
    let out = lp.run_until_complete(task).unwrap();
    assert_eq!(out.unwrap(), "forty-two");
}

#[test]
fn task_output_can_be_read_after_the_loop_stopped() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async { vec![1, 2, 3] });
    run_one(&lp);
    assert!(task.is_done());
    // Awaited in a later run (the outcome was kept for the handle).
    let out = lp.run_until_complete(task).unwrap().unwrap();
    assert_eq!(out, [1, 2, 3]);
}

#[test]
fn dropping_a_task_does_not_cancel_it() {
    let lp = EventLoop::new().unwrap();
    let done = Rc::new(Cell::new(false));
    let (d, lp2) = (done.clone(), lp.clone());
    let task = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::from_millis(2)).await;
        evloop_core::yield_now().await;
        d.set(true);
    });
    let task_ref = task.as_ref();
    drop(task);
    lp.run_until_complete(task_ref.clone()).unwrap().unwrap();
    assert!(done.get());
    assert!(task_ref.is_done());
    assert!(!task_ref.is_cancelled());
}

#[test]
fn cancel_drops_the_future_and_gives_cancelled() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let task = lp.create_task(pending_holding(drops.guard()));
    run_one(&lp);
    assert!(!task.is_done());
    assert!(task.cancel());
    // Cancelling is a request: the future is dropped at the next scheduling point.
    run_one(&lp);
    assert!(task.is_done());
    assert!(task.is_cancelled());
    assert_eq!(drops.get(), 1);
    assert!(!task.cancel(), "cancel of a done task returns false");
    let out = lp.run_until_complete(task).unwrap();
    let err = out.unwrap_err();
    assert!(err.is_cancelled());
    assert!(!err.is_panic());
    assert!(matches!(err, JoinError::Cancelled));
}

#[test]
fn cancel_before_the_first_run_never_polls_the_future() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let polled = Rc::new(Cell::new(false));
    let (p, g) = (polled.clone(), drops.guard());
    let task = lp.create_task(async move {
        let _g = g;
        p.set(true);
    });
    assert!(task.cancel());
    assert!(
        task.cancel(),
        "a second request before it is processed still says true"
    );
    let out = lp.run_until_complete(task).unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    assert!(!polled.get());
    assert_eq!(drops.get(), 1);
}

#[test]
fn cancel_returns_false_when_done() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async { 3 });
    run_one(&lp);
    assert!(task.is_done());
    assert!(!task.cancel());
    assert!(!task.as_ref().cancel());
    assert!(!task.is_cancelled());
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), 3);
}

#[test]
fn a_task_awaits_another_task() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let inner = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::from_millis(1)).await;
        21
    });
    let outer = lp.create_task(async move { inner.await.unwrap() * 2 });
    assert_eq!(lp.run_until_complete(outer).unwrap().unwrap(), 42);
}

#[test]
fn cancelling_a_task_blocked_in_sleep_wakes_its_awaiter() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let (lp2, g) = (lp.clone(), drops.guard());
    let sleeper = lp.create_task(async move {
        let _g = g;
        evloop_core::sleep(&lp2, Duration::from_secs(3600)).await;
        "woke up"
    });
    let sleeper_ref = sleeper.as_ref();
    // A task whose future is the sleeper's handle: it awaits the sleeper.
    let awaiter = lp.create_task(sleeper);
    let started = std::time::Instant::now();
    let out = lp
        .run_until_complete(async {
            evloop_core::yield_now().await;
            evloop_core::yield_now().await;
            assert!(!sleeper_ref.is_done());
            assert!(sleeper_ref.cancel());
            awaiter.await
        })
        .unwrap();
    let out = out.unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(sleeper_ref.is_cancelled());
    assert_eq!(drops.get(), 1);
    assert_eq!(
        lp.pending_timers(),
        0,
        "the sleep's timer went with the future"
    );
}

#[test]
fn task_ref_awaited_gives_ok_or_the_join_error() {
    let lp = EventLoop::new().unwrap();
    let ok = lp.create_task(async {
        evloop_core::yield_now().await;
        5
    });
    let cancelled = lp.create_task(std::future::pending::<()>());
    let panicked = lp.create_task(async {
        evloop_core::yield_now().await;
        panic!("task ref boom");
    });
    let (ok_ref, c_ref, p_ref) = (ok.as_ref(), cancelled.as_ref(), panicked.as_ref());
    assert!(ok_ref == ok.as_ref());
    assert!(ok_ref != c_ref);
    assert!(c_ref.cancel());
    let results = lp
        .run_until_complete(async {
            let a = ok_ref.clone().await;
            let b = c_ref.clone().await;
            let c = p_ref.clone().await;
            (a, b, c)
        })
        .unwrap();
    assert!(results.0.is_ok());
    assert!(
        matches!(results.1, Err(JoinError::Cancelled)),
        "{:?}",
        results.1
    );
    assert!(
        results.2.as_ref().unwrap_err().is_panic(),
        "{:?}",
        results.2
    );
    assert!(ok_ref.is_done() && !ok_ref.is_cancelled());
    assert!(c_ref.is_cancelled());
    // The typed handle still has the output.
    assert_eq!(lp.run_until_complete(ok).unwrap().unwrap(), 5);
    let p = lp.run_until_complete(panicked).unwrap().unwrap_err();
    assert_eq!(p.panic_message(), Some("task ref boom"));
    drop(cancelled);
}

#[test]
fn task_refs_from_all_tasks_can_be_awaited() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let _a = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::from_millis(1)).await;
    });
    let _b = lp.create_task(evloop_core::yield_now());
    let all = lp.all_tasks();
    assert_eq!(all.len(), 2);
    let results = lp
        .run_until_complete(async move {
            let mut out = Vec::new();
            for t in all {
                out.push(t.await);
            }
            out
        })
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(lp.all_tasks().is_empty());
}

fn ids(tasks: &[TaskRef]) -> Vec<TaskId> {
    tasks.iter().map(TaskRef::id).collect()
}

#[test]
fn all_tasks_lists_exactly_the_tasks_not_done() {
    let lp = EventLoop::new().unwrap();
    assert!(lp.all_tasks().is_empty());
    let quick = lp.create_task(async { 1 });
    let forever = lp.create_task(std::future::pending::<()>());
    let gate = Signal::default();
    let g = gate.clone();
    let gated = lp.create_task(async move { g.wait().await });
    // Scheduled tasks are listed before they run, in creation order.
    assert_eq!(ids(&lp.all_tasks()), [quick.id(), forever.id(), gated.id()]);
    assert!(lp.all_tasks().contains(&quick.as_ref()));
    run_one(&lp);
    assert!(quick.is_done());
    assert_eq!(ids(&lp.all_tasks()), [forever.id(), gated.id()]);
    gate.set();
    run_one(&lp);
    assert!(gated.is_done());
    assert_eq!(ids(&lp.all_tasks()), [forever.id()]);
    forever.cancel();
    run_one(&lp);
    assert!(lp.all_tasks().is_empty());
    // The future of run_until_complete runs as the main task (asyncio's `ensure_future`), and
    // that task has ended when the run returns.
    let (n, main) = lp
        .run_until_complete(async { (lp.all_tasks().len(), lp.current_task().unwrap()) })
        .unwrap();
    assert_eq!(n, 1);
    assert!(main.is_done() && !main.is_cancelled());
    assert!(lp.all_tasks().is_empty());
}

#[test]
fn all_tasks_only_lists_this_loops_tasks() {
    let a = EventLoop::new().unwrap();
    let b = EventLoop::new().unwrap();
    let ta = a.create_task(std::future::pending::<()>());
    let tb = b.create_task(std::future::pending::<()>());
    assert_eq!(ids(&a.all_tasks()), [ta.id()]);
    assert_eq!(ids(&b.all_tasks()), [tb.id()]);
}

#[test]
fn task_names_and_ids() {
    let lp = EventLoop::new().unwrap();
    let t1 = lp.create_task(async {});
    let t2 = lp.create_task(async {});
    assert!(t1.id() != t2.id());
    assert!(t1.id() < t2.id());
    assert_eq!(t1.name(), format!("Task-{}", t1.id()));
    assert_eq!(t2.name(), format!("Task-{}", t2.id().as_u64()));
    assert_eq!(t1.as_ref().name(), t1.name());
    t1.set_name("worker");
    assert_eq!(t1.name(), "worker");
    assert_eq!(t1.as_ref().name(), "worker");
    let all = lp.all_tasks();
    assert_eq!(all[0].name(), "worker");
    assert_eq!(all[1].name(), format!("Task-{}", t2.id()));
    all[1].set_name(String::from("renamed through TaskRef"));
    assert_eq!(t2.name(), "renamed through TaskRef");
    assert_eq!(t2.as_ref().id(), t2.id());
}

#[test]
fn a_task_is_woken_by_a_callback() {
    let lp = EventLoop::new().unwrap();
    let signal = Signal::default();
    let s = signal.clone();
    let task = lp.create_task(async move {
        s.wait().await;
        "signalled"
    });
    let s = signal.clone();
    lp.call_later(Duration::from_millis(1), move || s.set());
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), "signalled");
}

#[test]
fn many_tasks_all_complete() {
    let lp = EventLoop::new().unwrap();
    let sum = Rc::new(Cell::new(0u64));
    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let s = sum.clone();
            lp.create_task(async move {
                evloop_core::yield_now().await;
                s.set(s.get() + i);
                i
            })
        })
        .collect();
    let outs = lp
        .run_until_complete(async move {
            let mut outs = Vec::new();
            for t in tasks {
                outs.push(t.await.unwrap());
            }
            outs
        })
        .unwrap();
    assert_eq!(outs, (0..1000).collect::<Vec<_>>());
    assert_eq!(sum.get(), 999 * 1000 / 2);
}

/// asyncio's `_fut_waiter` rule (issue 10): cancelling a task blocked on another task cancels
/// that task too. Until then, dropping the outer task's future dropped the `Task` handle and
/// left the inner task running.
#[test]
fn cancelling_a_task_that_awaits_another_cancels_the_other() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let inner = lp.create_task(std::future::pending::<&str>());
    let inner_ref = inner.as_ref();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let outer = lp.create_task(async move {
        let r = inner.await;
        l.borrow_mut().push(format!("{r:?}"));
    });
    let outer_ref = outer.as_ref();
    run_one(&lp);
    assert!(outer.cancel());
    // When the outer task is done, the inner one is too (it was cancelled first).
    let seen = lp
        .run_until_complete(async move {
            let _ = outer_ref.await;
            inner_ref.is_done()
        })
        .unwrap();
    assert!(
        seen,
        "the awaited task ends before its awaiter's awaiter resumes"
    );
    assert!(outer.is_cancelled());
    assert!(log.borrow().is_empty());
    assert!(reports.borrow().is_empty());
}

/// The chain goes all the way down: outer awaits middle awaits inner.
#[test]
fn cancelling_propagates_through_a_chain_of_awaited_tasks() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.create_task(std::future::pending::<()>());
    let inner_ref = inner.as_ref();
    let middle = lp.create_task(inner);
    let middle_ref = middle.as_ref();
    let outer = lp.create_task(middle);
    run_one(&lp);
    run_one(&lp);
    outer.cancel();
    let out = lp.run_until_complete(outer).unwrap();
    assert!(out.unwrap_err().is_cancelled());
    lp.run_until_complete(async {}).unwrap();
    assert!(middle_ref.is_cancelled());
    assert!(inner_ref.is_cancelled());
}

/// Dropping a handle that was never awaited detaches, as before: the task runs on.
#[test]
fn dropping_a_handle_never_awaited_detaches() {
    let lp = EventLoop::new().unwrap();
    let gate = Signal::default();
    let g = gate.clone();
    let task = lp.create_task(async move {
        g.wait().await;
        1
    });
    let r = task.as_ref();
    run_one(&lp);
    drop(task);
    run_one(&lp);
    gate.set();
    lp.run_until_complete(r.clone()).unwrap().unwrap();
    assert!(!r.is_cancelled());
}

/// `detach()` lets a task run on even after its handle was awaited.
#[test]
fn detach_keeps_an_awaited_task_running() {
    let lp = EventLoop::new().unwrap();
    let gate = Signal::default();
    let g = gate.clone();
    let task = lp.create_task(async move {
        g.wait().await;
        1
    });
    let r = task.as_ref();
    let outer = lp.create_task(async move {
        let mut task = task;
        // Poll it once (it is pending), then let it go.
        let pending = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut task).poll(cx).is_pending())
        })
        .await;
        task.detach();
        pending
    });
    assert!(lp.run_until_complete(outer).unwrap().unwrap());
    gate.set();
    lp.run_until_complete(r.clone()).unwrap().unwrap();
    assert!(!r.is_cancelled());
}

/// A handle that was awaited and then given up on (here: a poll, then a plain drop) cancels.
#[test]
fn dropping_an_awaited_handle_cancels_its_task() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(std::future::pending::<()>());
    let r = task.as_ref();
    let outer = lp.create_task(async move {
        let mut task = task;
        std::future::poll_fn(|cx| {
            let _ = std::pin::Pin::new(&mut task).poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        drop(task);
    });
    lp.run_until_complete(outer).unwrap().unwrap();
    let out = lp.run_until_complete(r.clone()).unwrap();
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn several_awaiters_of_one_task_are_all_woken() {
    let lp = EventLoop::new().unwrap();
    let gate = Signal::default();
    let g = gate.clone();
    let target = lp.create_task(async move { g.wait().await });
    let woken = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (r, w) = (target.as_ref(), woken.clone());
            lp.create_task(async move {
                r.await.unwrap();
                w.set(w.get() + 1);
            })
        })
        .collect();
    run_one(&lp);
    run_one(&lp);
    assert_eq!(woken.get(), 0);
    gate.set();
    lp.run_until_complete(async move {
        for w in waiters {
            w.await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(woken.get(), 3);
    assert!(lp.run_until_complete(target).unwrap().is_ok());
}

#[test]
fn a_task_created_from_a_task_runs_on_the_next_iteration() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l, lp2) = (log.clone(), lp.clone());
    let _outer = lp.create_task(async move {
        l.borrow_mut().push("outer");
        let l2 = l.clone();
        let child = lp2.create_task(async move { l2.borrow_mut().push("child") });
        assert!(!child.is_done());
        l.borrow_mut().push("outer after create");
    });
    run_one(&lp);
    assert_eq!(*log.borrow(), ["outer", "outer after create"]);
    run_one(&lp);
    assert_eq!(*log.borrow(), ["outer", "outer after create", "child"]);
}

#[test]
fn a_task_cancelled_during_its_last_poll_ends_cancelled() {
    // asyncio: a task whose cancel() was accepted (returned True) while it ran ends cancelled
    // even if its coroutine then returns without awaiting (Task.__step checks _must_cancel on
    // StopIteration). A `true` from cancel() must not be followed by an Ok outcome.
    let lp = EventLoop::new().unwrap();
    let me: Rc<RefCell<Option<TaskRef>>> = Rc::default();
    let (m, accepted) = (me.clone(), Rc::new(Cell::new(false)));
    let a = accepted.clone();
    let task = lp.create_task(async move {
        let me = m.borrow().clone().unwrap();
        a.set(me.cancel());
        "returned after cancel() said true"
    });
    *me.borrow_mut() = Some(task.as_ref());
    run_one(&lp);
    assert!(accepted.get(), "cancel() of a running task returns true");
    assert!(task.is_done());
    assert!(
        task.is_cancelled(),
        "cancel() returned true but the task did not end cancelled"
    );
    let out = lp.run_until_complete(task).unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
}

/// A handle that was awaited, then cancelled with a message by its owner and dropped: the drop
/// adds no second request and keeps the message (only a handle dropped *without* a request of
/// its own cancels on its way out).
#[test]
fn dropping_an_awaited_handle_after_cancel_with_keeps_its_message_and_one_request() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(std::future::pending::<()>());
    let watch = task.as_ref();
    let w = watch.clone();
    lp.run_until_complete(async move {
        let mut task = task;
        // Awaited once (a `select!` that then lost).
        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut task).poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        task.cancel_with("lost");
        drop(task);
        assert_eq!(w.cancelling(), 1);
    })
    .unwrap();
    let err = lp.run_until_complete(watch.clone()).unwrap().unwrap_err();
    assert_eq!(err.cancel_message(), Some("lost"));
}

/// Cancelling the head of a long chain of idle tasks, each awaiting the next, ends them all
/// without one nested drop per link: a thread with a small stack survives 20 000 links.
#[test]
fn cancelling_the_head_of_a_long_await_chain_does_not_recurse_per_link() {
    let t = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let lp = EventLoop::new().unwrap();
            let mut next = lp.create_task(std::future::pending::<()>());
            let tail = next.as_ref();
            for _ in 0..20_000 {
                let inner = next;
                next = lp.create_task(async move {
                    let _ = inner.await;
                });
            }
            for _ in 0..3 {
                lp.run_until_complete(evloop_core::yield_now()).unwrap();
            }
            assert!(next.cancel());
            assert!(
                lp.run_until_complete(tail.clone())
                    .unwrap()
                    .unwrap_err()
                    .is_cancelled()
            );
            assert!(lp.all_tasks().is_empty());
        });
    t.unwrap().join().unwrap();
}
