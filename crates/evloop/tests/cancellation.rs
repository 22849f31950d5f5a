//! Cancellation, ported from CPython's Lib/test/test_asyncio/test_tasks.py (3.11): the
//! `test_*cancel*`, `test_cancelling`, `test_uncancel_*`, `test_shield_*` and
//! `test_task_awaits_on_itself` cases, named after the CPython tests, with CPython's expected
//! values. Where Rust's shape forces another form the test says so. The shapes that differ
//! everywhere:
//!
//! - asyncio throws `CancelledError` into the coroutine; evloop drops the task's future at its
//!   next scheduling point. So a cancelled task cannot catch its cancellation and go on (the
//!   footgun of a swallowed `CancelledError` is ruled out); clean-up runs in `Drop`.
//! - An asyncio `Future` that the test sets by hand is a pending task (`evloop::spawn` of a
//!   [`Gate`]) or a [`Gate`] itself: cancelling such a "future" is cancelling its task.
//! - A task's cancellation is a value for whoever awaits it (`Err(JoinError::Cancelled)`), not
//!   an exception that cancels the awaiter too.
//!
//! Left out, with the reason:
//! - test_task_cancel_message_setter: `_cancel_message` is a private attribute; the Rust
//!   meaning (a later request replaces the message) is `test_task_cancel_message_replaced`.
//! - test_cancel_with_message_then_future_exception, test_cancellation_exception_context,
//!   test_cancel_traceback_for_future_result, test_cancel_traceback_for_future_exception:
//!   exception objects, `__context__` chains and tracebacks.
//! - test_cancel_task_ignoring: a task that swallows `CancelledError` and goes on; evloop rules
//!   that out (see above) — test_cancel_task_catching shows the evloop outcome.
//! - test_baseexception_during_cancel, test_tb_logger_not_called_after_cancel: BaseException
//!   subclasses and the traceback logger.
//! - test_shield_coroutine_without_loop, test_shield_coroutine_use_running_loop,
//!   test_shield_coroutine_use_global_loop: coroutine objects and loop arguments; `shield`
//!   needs a running loop (a documented panic otherwise).
//! - test_yield_wait_does_not_shield_cancel: the deprecated `wait([coroutine])` form.
//! - test_cancel_gather_1: ported in tasks_gather.rs (it needs `add_done_callback` on a future).
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use evloop::{EventLoop, JoinError, Task};

/// A hand-set future (asyncio's `Future` in these tests): `open` makes it ready; `dropped`
/// tells whether a waiting future was dropped (cancelled) before it was opened.
#[derive(Clone, Default)]
struct Gate(Rc<GateState>);

#[derive(Default)]
struct GateState {
    open: Cell<bool>,
    dropped_while_waiting: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.0.open.set(true);
        let waker = self.0.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// A future that waits for `open`.
    fn wait(&self) -> GateWait {
        GateWait(self.0.clone())
    }

    fn cancelled(&self) -> bool {
        self.0.dropped_while_waiting.get()
    }
}

struct GateWait(Rc<GateState>);

impl Future for GateWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.get() {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for GateWait {
    fn drop(&mut self) {
        if !self.0.open.get() {
            self.0.dropped_while_waiting.set(true);
        }
    }
}

/// CPython's `test_utils.run_briefly`: one iteration of the loop.
fn run_briefly(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

/// CPython's `self.assertRaises(asyncio.CancelledError, loop.run_until_complete, t)`: runs
/// `t` to its end and checks that it ended cancelled.
#[track_caller]
fn assert_run_cancelled<T: std::fmt::Debug>(
    lp: &EventLoop,
    t: impl Future<Output = Result<T, JoinError>>,
) {
    let out = lp.run_until_complete(t).unwrap();
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn test_task_cancel_message_getter() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {});
    t.cancel_with("my message");
    let err = lp.run_until_complete(t).unwrap().unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.cancel_message(), Some("my message"));
    assert!(matches!(&err, JoinError::CancelledWith(m) if m == "my message"));
}

/// The Rust meaning of test_task_cancel_message_setter: the latest request's message wins.
#[test]
fn test_task_cancel_message_replaced() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {});
    t.cancel_with("my message");
    t.cancel_with("my new message");
    let err = lp.run_until_complete(t).unwrap().unwrap_err();
    assert_eq!(err.cancel_message(), Some("my new message"));
}

/// asyncio raises `RuntimeError('Task cannot await on itself')` into the task; here the await
/// returns `Err(JoinError::AwaitedItself)` to the awaiting code, which goes on.
#[test]
fn test_task_awaits_on_itself() {
    let lp = EventLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Task<&str>>>> = Rc::default();
    let s = slot.clone();
    let seen = Rc::new(RefCell::new(None));
    let seen2 = seen.clone();
    let task = lp.create_task(async move {
        let mut me = s.borrow_mut().take().unwrap();
        let err = (&mut me).await.unwrap_err();
        *seen2.borrow_mut() = Some(err.to_string());
        *s.borrow_mut() = Some(me);
        "went on"
    });
    let r = task.as_ref();
    *slot.borrow_mut() = Some(task);
    lp.run_until_complete(r).unwrap().unwrap();
    assert_eq!(
        seen.borrow().as_deref(),
        Some("Task cannot await on itself")
    );
    let task = slot.borrow_mut().take().unwrap();
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), "went on");

    // Through the type-erased view too.
    let out = lp
        .run_until_complete(lp.create_task(async {
            let me = evloop::current_task().unwrap().unwrap();
            me.await
        }))
        .unwrap()
        .unwrap();
    assert!(matches!(out, Err(JoinError::AwaitedItself)));
}

#[test]
fn test_cancelling() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(evloop::sleep(Duration::from_secs(10)));
    assert_eq!(t.cancelling(), 0);
    assert!(t.cancel());
    assert!(t.cancelling() > 0);
    // As in 3.11, a second request also returns true.
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 2);
    assert_run_cancelled(&lp, t);
    lp.close().unwrap();
}

/// In asyncio the task catches its `CancelledError` and uncancels itself; a cancelled evloop
/// task cannot run code in between, so the uncancel comes from outside, before the request took
/// effect — with CPython's counts.
#[test]
fn test_uncancel_basic() {
    let lp = EventLoop::new().unwrap();
    let first = Gate::default();
    let f = first.clone();
    let t = lp.create_task(async move {
        f.wait().await;
        evloop::sleep(Duration::from_secs(10)).await;
    });
    run_briefly(&lp);

    // Cancel first sleep
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!(!t.is_cancelled()); // Task is still not complete
    assert_eq!(t.uncancel(), 0);
    run_briefly(&lp);
    assert_eq!(t.cancelling(), 0);
    assert!(!t.is_done()); // the withdrawn request did not end it
    assert!(!first.cancelled());
    first.open();
    run_briefly(&lp);

    // Cancel second sleep
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!(!t.is_cancelled()); // Task is still not complete
    let r = t.as_ref();
    assert!(lp.run_until_complete(r.clone()).unwrap().is_err());
    assert!(t.is_cancelled()); // Finally, task complete
    assert!(t.is_done());

    // uncancel is no longer effective after the task is complete
    t.uncancel();
    assert!(t.is_cancelled());
    assert!(t.is_done());
}

/// The structure CPython builds by hand with `call_later(cancel)` + `uncancel()` is what
/// evloop's timeout does: the structured block is dropped, the task is never cancelled, and
/// the outer code runs on with no cancel request pending.
#[test]
fn test_uncancel_structured_blocks() {
    async fn make_request_with_timeout(sleep: Duration, timeout: Duration) -> (bool, bool, bool) {
        let finished = Rc::new(Cell::new(false));
        let f = finished.clone();
        let timed_out = evloop::timeout(timeout, async move {
            // Structured block affected by the timeout
            evloop::sleep(sleep).await;
            f.set(true);
        })
        .await
        .is_err();
        // Outer code not affected by the timeout:
        let outer_code_reached = true;
        evloop::yield_now().await;
        (timed_out, finished.get(), outer_code_reached)
    }
    evloop::run(async {
        let t1 = evloop::spawn(make_request_with_timeout(
            Duration::from_secs(10),
            Duration::from_millis(100),
        ));
        let t1_ref = t1.as_ref();
        let (timed_out, structured_block_finished, outer_code_reached) = t1.await.unwrap();
        assert!(timed_out);
        assert!(!structured_block_finished); // it was cancelled
        assert!(outer_code_reached);
        assert_eq!(t1_ref.cancelling(), 0);

        let t2 = evloop::spawn(make_request_with_timeout(
            Duration::ZERO,
            Duration::from_secs(10),
        ));
        let t2_ref = t2.as_ref();
        let (timed_out, structured_block_finished, outer_code_reached) = t2.await.unwrap();
        assert!(!timed_out);
        assert!(structured_block_finished);
        assert!(outer_code_reached);
        assert_eq!(t2_ref.cancelling(), 0);
    })
    .unwrap();
}

#[test]
fn test_cancel() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {
        evloop::sleep(Duration::from_secs(10)).await;
        12
    });
    let r = t.as_ref();
    lp.call_soon(move || {
        r.cancel();
    });
    let t_ref = t.as_ref();
    assert_run_cancelled(&lp, t);
    assert!(t_ref.is_done());
    assert!(t_ref.is_cancelled());
    assert!(!t_ref.cancel());
}

/// The awaiting task gets the inner task's cancellation, message included, as a value.
#[test]
fn test_cancel_with_message_then_future_result() {
    for (message, expected) in [(None, None), (Some("my message"), Some("my message"))] {
        let lp = EventLoop::new().unwrap();
        let out = lp
            .run_until_complete(async move {
                let task = evloop::spawn(evloop::sleep(Duration::from_secs(10)));
                evloop::yield_now().await;
                match message {
                    Some(m) => task.cancel_with(m),
                    None => task.cancel(),
                };
                let (done, _pending) = evloop::wait([task], evloop::ReturnWhen::AllCompleted).await;
                let task = done.into_iter().next().unwrap();
                task.await
            })
            .unwrap();
        let err = out.unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.cancel_message(), expected);
    }
}

#[test]
fn test_cancel_with_message_before_starting_task() {
    let lp = EventLoop::new().unwrap();
    let out = lp
        .run_until_complete(async {
            let task = evloop::spawn(evloop::sleep(Duration::from_secs(10)));
            // We deliberately leave out the sleep here.
            task.cancel_with("my message");
            let (done, _) = evloop::wait([task], evloop::ReturnWhen::AllCompleted).await;
            done.into_iter().next().unwrap().await
        })
        .unwrap();
    assert_eq!(out.unwrap_err().cancel_message(), Some("my message"));
}

#[test]
fn test_cancel_yield() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {
        evloop::yield_now().await;
        evloop::yield_now().await;
        12
    });
    run_briefly(&lp); // start coro
    t.cancel();
    let r = t.as_ref();
    assert_run_cancelled(&lp, t);
    assert!(r.is_done());
    assert!(r.is_cancelled());
    assert!(!r.cancel());
}

/// asyncio: the inner future's cancellation propagates out of `t` as an exception, so `t` is
/// cancelled. evloop: `t` receives it as a value (here it returns it).
#[test]
fn test_cancel_inner_future() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_task(Gate::default().wait());
    let f_ref = f.as_ref();
    let t = lp.create_task(async move {
        f.await?;
        Ok::<_, JoinError>(12)
    });
    run_briefly(&lp); // start task
    f_ref.cancel();
    let out = lp.run_until_complete(t).unwrap().unwrap();
    assert!(out.unwrap_err().is_cancelled());
    assert!(f_ref.is_cancelled());
}

#[test]
fn test_cancel_both_task_and_inner_future() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_task(Gate::default().wait());
    let f_ref = f.as_ref();
    let t = lp.create_task(async move {
        let _ = f.await;
        12
    });
    run_briefly(&lp);
    f_ref.cancel();
    t.cancel();
    let r = t.as_ref();
    assert_run_cancelled(&lp, t);
    assert!(r.is_done());
    assert!(f_ref.is_cancelled());
    assert!(r.is_cancelled());
}

/// CPython's task catches the `CancelledError` and returns 42; an evloop task cannot (its
/// future is dropped), so it ends cancelled. What does hold: the future it was blocked on
/// (`fut2`) is cancelled with it — the `_fut_waiter` rule.
#[test]
fn test_cancel_task_catching() {
    let lp = EventLoop::new().unwrap();
    let fut1 = Gate::default();
    let fut2 = Gate::default();
    let (f1, f2) = (fut1.clone(), fut2.clone());
    let t = lp.create_task(async move {
        f1.wait().await;
        f2.wait().await;
        42
    });
    run_briefly(&lp);
    fut1.open();
    run_briefly(&lp);
    t.cancel();
    let r = t.as_ref();
    assert!(lp.run_until_complete(t).unwrap().is_err());
    assert!(fut2.cancelled());
    assert!(r.is_cancelled());
}

#[test]
fn test_cancel_current_task() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {
        evloop::current_task().unwrap().unwrap().cancel();
        // The sleep should be cancelled immediately.
        evloop::sleep(Duration::from_secs(100)).await;
        12
    });
    assert!(!t.is_cancelled());
    let r = t.as_ref();
    assert_run_cancelled(&lp, t);
    assert!(r.is_done());
    assert!(r.is_cancelled());
    assert!(!r.cancel());
}

/// coroutine end right after task is cancelled
#[test]
fn test_cancel_at_end() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(async {
        evloop::current_task().unwrap().unwrap().cancel();
        12
    });
    assert!(!t.is_cancelled());
    let r = t.as_ref();
    assert_run_cancelled(&lp, t);
    assert!(r.is_done());
    assert!(r.is_cancelled());
    assert!(!r.cancel());
}

/// A task that requested its own cancellation and then blocks on a nested task: the nested
/// task (and what it waits for) is cancelled too (bpo-34872).
#[test]
fn test_cancel_awaited_task() {
    let lp = EventLoop::new().unwrap();
    let fut = Gate::default();
    let nested_slot = Rc::new(RefCell::new(None));
    let (n, f) = (nested_slot.clone(), fut.clone());
    let task = lp.create_task(async move {
        // Create a sub-task and wait for it to run.
        let nested_task = evloop::spawn(f.wait());
        *n.borrow_mut() = Some(nested_task.as_ref());
        evloop::yield_now().await;
        // Request the current task to be cancelled.
        evloop::current_task().unwrap().unwrap().cancel();
        // Block on the nested task, which should be immediately cancelled.
        let _ = nested_task.await;
    });
    let r = task.as_ref();
    assert_run_cancelled(&lp, task);
    assert!(r.is_cancelled());
    let nested = nested_slot.borrow_mut().take().unwrap();
    lp.run_until_complete(async {}).unwrap();
    assert!(nested.is_cancelled());
    assert!(fut.cancelled());
    lp.close().unwrap();
}

/// The sleep's timer is cancelled with the task (CPython checks the timer handle).
#[test]
fn test_sleep_cancel() {
    let lp = EventLoop::new().unwrap();
    let t = lp.create_task(evloop::sleep(Duration::from_secs(10)));
    run_briefly(&lp);
    assert_eq!(lp.pending_timers(), 1);
    t.cancel();
    run_briefly(&lp);
    assert_eq!(lp.pending_timers(), 0);
}

#[test]
fn test_task_cancel_sleeping_task() {
    let lp = EventLoop::new().unwrap();
    let start = lp.time();
    let out = lp
        .run_until_complete(async {
            let sleeper = evloop::spawn(evloop::sleep(Duration::from_secs(5000)));
            let s = sleeper.as_ref();
            evloop::get_running_loop()
                .unwrap()
                .call_later(Duration::from_millis(100), move || {
                    s.cancel();
                });
            match sleeper.await {
                Err(e) if e.is_cancelled() => "cancelled",
                _ => "slept in",
            }
        })
        .unwrap();
    assert_eq!(out, "cancelled");
    let elapsed = lp.time() - start;
    assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(60));
}

#[test]
fn test_task_cancel_waiter_future() {
    let lp = EventLoop::new().unwrap();
    let fut = Gate::default();
    let f = fut.clone();
    let task = lp.create_task(async move { f.wait().await });
    run_briefly(&lp);
    task.cancel();
    run_briefly(&lp);
    assert_run_cancelled(&lp, task);
    assert!(fut.cancelled());
}

/// Cancelling outer() cancels inner() cancels waiter. (CPython's `proof` counts the except
/// clauses that ran; evloop runs `Drop` instead: both levels are dropped.)
#[test]
fn test_yield_future_passes_cancel() {
    let lp = EventLoop::new().unwrap();
    let waiter = Gate::default();
    let proof = Rc::new(Cell::new(0));
    struct OnDrop(Rc<Cell<i32>>, i32);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + self.1);
        }
    }
    let (w, p) = (waiter.clone(), proof.clone());
    let inner = async move {
        let _guard = OnDrop(p, 1);
        w.wait().await;
        panic!("got past sleep() in inner()");
    };
    let p = proof.clone();
    let f = lp.create_task(async move {
        let _guard = OnDrop(p, 100); // Expect this path.
        inner.await;
    });
    run_briefly(&lp);
    f.cancel();
    let _ = lp.run_until_complete(f).unwrap();
    assert_eq!(proof.get(), 101);
    assert!(waiter.cancelled());
}

#[test]
#[allow(clippy::async_yields_async)] // the shield is made on the loop, awaited later
fn test_shield_result() {
    let lp = EventLoop::new().unwrap();
    let inner = Gate::default();
    let i = inner.clone();
    let outer = lp.run_until_complete(async move {
        evloop::shield(async move {
            i.wait().await;
            42
        })
    });
    inner.open();
    let res = lp.run_until_complete(outer.unwrap()).unwrap();
    assert_eq!(res.unwrap(), 42);
}

/// asyncio's `set_exception` is a panic in the shielded task.
#[test]
#[allow(clippy::async_yields_async)] // the shield is made on the loop, awaited later
fn test_shield_exception() {
    let lp = EventLoop::new().unwrap();
    lp.set_exception_handler(Some(|_: &EventLoop, _: &evloop::ExceptionContext| {}));
    let outer = lp
        .run_until_complete(async { evloop::shield(async { panic!("expected") }) })
        .unwrap();
    let err = lp.run_until_complete(outer).unwrap().unwrap_err();
    assert_eq!(err.panic_message(), Some("expected"));
}

#[test]
fn test_shield_cancel_inner() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.create_task(Gate::default().wait());
    let inner_ref = inner.as_ref();
    let outer = evloop::Shield::from(inner);
    run_briefly(&lp);
    inner_ref.cancel();
    run_briefly(&lp);
    assert_run_cancelled(&lp, outer);
}

/// Cancelling the outer side (the task awaiting the shield) leaves the inner task alone.
#[test]
fn test_shield_cancel_outer() {
    let lp = EventLoop::new().unwrap();
    let inner = lp.create_task(Gate::default().wait());
    let inner_ref = inner.as_ref();
    let outer = lp.create_task(evloop::Shield::from(inner));
    run_briefly(&lp);
    outer.cancel();
    run_briefly(&lp);
    assert!(outer.is_cancelled());
    assert!(!inner_ref.is_done());
    inner_ref.cancel();
    lp.run_until_complete(async {}).unwrap();
}

#[test]
fn test_shield_shortcut() {
    let lp = EventLoop::new().unwrap();
    let fut = lp.create_task(async { 42 });
    run_briefly(&lp);
    let res = lp.run_until_complete(evloop::Shield::from(fut)).unwrap();
    assert_eq!(res.unwrap(), 42);
}

/// Cancelling outer() does not affect inner().
#[test]
fn test_shield_effect() {
    let lp = EventLoop::new().unwrap();
    let waiter = Gate::default();
    let proof = Rc::new(Cell::new(0));
    let (w, p) = (waiter.clone(), proof.clone());
    let inner = async move {
        w.wait().await;
        p.set(p.get() + 1);
    };
    let p = proof.clone();
    let f = lp.create_task(async move {
        let _ = evloop::shield(inner).await;
        p.set(p.get() + 100);
    });
    run_briefly(&lp);
    f.cancel();
    assert_run_cancelled(&lp, f);
    waiter.open();
    run_briefly(&lp);
    assert_eq!(proof.get(), 1);
}

#[test]
fn test_shield_gather() {
    let lp = EventLoop::new().unwrap();
    let (child1, child2) = (Gate::default(), Gate::default());
    let (c1, c2) = (child1.clone(), child2.clone());
    let parent = lp.create_task(async move {
        evloop::gather([
            Box::pin(async move {
                c1.wait().await;
                1
            }) as Pin<Box<dyn Future<Output = i32>>>,
            Box::pin(async move {
                c2.wait().await;
                2
            }),
        ])
        .await
    });
    let parent_ref = parent.as_ref();
    let outer = lp.create_task(evloop::Shield::from(parent));
    run_briefly(&lp);
    outer.cancel();
    run_briefly(&lp);
    assert!(outer.is_cancelled());
    child1.open();
    child2.open();
    run_briefly(&lp);
    assert!(parent_ref.is_done() && !parent_ref.is_cancelled());
}

#[test]
fn test_gather_shield() {
    let lp = EventLoop::new().unwrap();
    let (child1, child2) = (Gate::default(), Gate::default());
    let (c1, c2) = (child1.clone(), child2.clone());
    let t1 = lp.create_task(async move { c1.wait().await });
    let t2 = lp.create_task(async move { c2.wait().await });
    let (r1, r2) = (t1.as_ref(), t2.as_ref());
    let parent = lp.create_task(evloop::gather([
        evloop::Shield::from(t1),
        evloop::Shield::from(t2),
    ]));
    run_briefly(&lp);
    parent.cancel();
    // This should cancel inner1 and inner2 but not child1 and child2.
    run_briefly(&lp);
    assert!(parent.is_cancelled());
    assert!(!r1.is_done() && !r2.is_done());
    child1.open();
    child2.open();
    run_briefly(&lp);
    assert!(r1.is_done() && !r1.is_cancelled());
    assert!(r2.is_done() && !r2.is_cancelled());
}

/// Cancelling a task blocked in `gather` of tasks cancels the gathered tasks, message and all
/// (asyncio's `_GatheringFuture.cancel`).
#[test]
fn test_cancel_gather_2() {
    for (message, expected) in [(None, None), (Some("my message"), Some("my message"))] {
        let lp = EventLoop::new().unwrap();
        let (err, children_cancelled) = lp
            .run_until_complete(async move {
                let children: Vec<Task<()>> = (0..2)
                    .map(|_| evloop::spawn(evloop::sleep(Duration::from_secs(60))))
                    .collect();
                let refs: Vec<_> = children.iter().map(Task::as_ref).collect();
                let qwe = evloop::spawn(evloop::gather(children));
                evloop::sleep(Duration::from_millis(20)).await;
                match message {
                    Some(m) => qwe.cancel_with(m),
                    None => qwe.cancel(),
                };
                let err = qwe.await.unwrap_err();
                evloop::yield_now().await;
                (err, refs.iter().all(|r| r.is_cancelled()))
            })
            .unwrap();
        assert!(err.is_cancelled());
        assert_eq!(err.cancel_message(), expected);
        assert!(children_cancelled);
    }
}
