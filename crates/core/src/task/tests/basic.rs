//! Spawning, running, waking, outputs and cancellation.

#![allow(clippy::unwrap_used, clippy::waker_clone_wake)]

use super::*;

#[test]
fn spawn_schedule_run_gives_output() {
    let h = Harness::default();
    let (runnable, mut task) = h.spawn(async { 40 + 2 });
    assert_eq!(h.len(), 0, "spawn does not schedule");
    assert_eq!(runnable.id(), task.id());
    assert!(!task.is_done());

    let (count, waker) = counting_waker();
    assert!(poll_with(&mut task, &waker).is_pending());

    runnable.schedule();
    assert_eq!(h.len(), 1);
    assert_eq!(h.schedules(), 1);
    assert_eq!(count.count(), 0);

    assert!(h.pop().unwrap().run(), "the task ended in this run");
    assert!(task.is_done());
    assert!(!task.is_cancelled());
    assert_eq!(
        count.count(),
        1,
        "the awaiting waker is woken once at completion"
    );
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(42))));
    assert!(!task.cancel(), "cancel() of a finished task returns false");
    assert_eq!(h.len(), 0);
}

#[test]
fn run_pending_without_wake_is_not_rescheduled() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (runnable, mut task) = h.spawn({
        let gate = gate.clone();
        async move {
            gate.wait().await;
            7
        }
    });
    assert!(!runnable.run());
    assert_eq!(h.len(), 0);
    assert!(!task.is_done());
    assert!(poll_noop(&mut task).is_pending());
    gate.open();
    assert_eq!(h.len(), 1);
    assert_eq!(h.run_all(), 1);
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(7))));
}

#[test]
fn task_handle_wakes_only_its_latest_waker() {
    let h = Harness::default();
    let (runnable, mut task) = h.spawn(async { 1u8 });
    let (first, w1) = counting_waker();
    let (second, w2) = counting_waker();
    assert!(poll_with(&mut task, &w1).is_pending());
    assert!(poll_with(&mut task, &w1).is_pending());
    assert!(poll_with(&mut task, &w2).is_pending());
    runnable.run();
    assert_eq!(first.count(), 0, "a replaced waker is not woken");
    assert_eq!(second.count(), 1);
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(1))));
}

#[test]
fn polling_task_after_its_output_panics() {
    let h = Harness::default();
    let (runnable, mut task) = h.spawn(async {});
    runnable.run();
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(()))));
    let again = catch_unwind(AssertUnwindSafe(|| poll_noop(&mut task)));
    assert!(again.is_err());
}

// ---------------------------------------------------------------------------------------------
// Waking and scheduling.
// ---------------------------------------------------------------------------------------------

#[test]
fn wakes_while_idle_queue_exactly_one_runnable() {
    let h = Harness::default();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let (runnable, mut task) = h.spawn({
        let (slot, polls) = (slot.clone(), polls.clone());
        let mut done = false;
        poll_fn(move |cx| {
            assert!(!done, "polled after completion");
            let n = polls.fetch_add(1, SeqCst) + 1;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            if n == 2 {
                done = true;
                Poll::Ready(n)
            } else {
                Poll::Pending
            }
        })
    });

    assert!(!runnable.run());
    assert_eq!(h.len(), 0);
    let waker = slot.lock().unwrap().take().unwrap();
    for _ in 0..10 {
        waker.wake_by_ref();
    }
    for _ in 0..10 {
        waker.clone().wake();
    }
    assert_eq!(h.len(), 1, "never queued twice");
    assert_eq!(h.schedules(), 1);
    assert!(!task.is_done());

    assert!(h.pop().unwrap().run());
    assert_eq!(polls.load(SeqCst), 2);

    // Wakes after completion do nothing; the wakers outlive the task's future and output.
    waker.wake_by_ref();
    waker.clone().wake();
    slot.lock().unwrap().take().unwrap().wake();
    assert_eq!(h.len(), 0);
    assert_eq!(h.schedules(), 1);
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(2))));
    drop(task);
    waker.wake_by_ref();
    assert_eq!(h.len(), 0);
    drop(waker);
    assert_eq!(polls.load(SeqCst), 2, "never polled after completion");
}

#[test]
fn wake_while_running_reschedules_once_after_the_poll() {
    let h = Harness::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let (runnable, mut task) = h.spawn({
        let polls = polls.clone();
        poll_fn(move |cx| {
            let n = polls.fetch_add(1, SeqCst) + 1;
            if n <= 3 {
                for _ in 0..5 {
                    cx.waker().wake_by_ref();
                }
                cx.waker().clone().wake();
                let extra = cx.waker().clone();
                extra.wake_by_ref();
                drop(extra);
                Poll::Pending
            } else {
                Poll::Ready(n)
            }
        })
    });

    assert!(!runnable.run(), "pending: run() returns false");
    assert_eq!(h.len(), 1, "rescheduled once, after the poll");
    assert_eq!(h.schedules(), 1);
    assert!(!h.pop().unwrap().run());
    assert_eq!(h.len(), 1);
    assert!(!h.pop().unwrap().run());
    assert_eq!(h.len(), 1);
    assert!(h.pop().unwrap().run());
    assert_eq!(h.len(), 0);
    assert_eq!(h.schedules(), 3);
    assert_eq!(h.max_queued(), 1);
    assert_eq!(polls.load(SeqCst), 4);
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(4))));
}

#[test]
fn runnable_schedule_hands_it_to_the_scheduler_again() {
    let h = Harness::default();
    let (runnable, mut task) = h.spawn(async { "x" });
    runnable.schedule();
    let r = h.pop().unwrap();
    r.schedule();
    assert_eq!(h.len(), 1);
    assert_eq!(h.run_all(), 1);
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok("x"))));
}

#[test]
fn future_and_output_are_dropped_exactly_once() {
    let h = Harness::default();
    let future_drops = Drops::default();
    let output_drops = Drops::default();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (runnable, mut task) = h.spawn({
        let token = future_drops.token();
        let output_drops = output_drops.clone();
        let slot = slot.clone();
        poll_fn(move |cx| {
            let _keep = &token;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(output_drops.token())
        })
    });
    assert!(runnable.run());
    assert_eq!(
        future_drops.get(),
        1,
        "the future is dropped as soon as it completes"
    );
    assert_eq!(output_drops.get(), 0);
    let Poll::Ready(Ok(out)) = poll_noop(&mut task) else {
        panic!("expected the output");
    };
    assert_eq!(output_drops.get(), 0);
    drop(out);
    assert_eq!(output_drops.get(), 1);
    drop(task);
    // A waker clone outlives the whole task; waking it is harmless.
    let waker = slot.lock().unwrap().take().unwrap();
    waker.wake_by_ref();
    waker.wake();
    assert_eq!(h.len(), 0);
    assert_eq!(future_drops.get(), 1);
    assert_eq!(output_drops.get(), 1);
}

#[test]
fn output_dropped_with_the_unread_handle() {
    let h = Harness::default();
    let output_drops = Drops::default();
    let (runnable, task) = h.spawn({
        let output_drops = output_drops.clone();
        async move { output_drops.token() }
    });
    runnable.run();
    assert_eq!(output_drops.get(), 0, "the handle may still read it");
    drop(task);
    assert_eq!(output_drops.get(), 1);
    assert_eq!(h.unhandled_count(), 0);
}

#[test]
fn detached_task_runs_to_completion_and_drops_its_output_once() {
    let h = Harness::default();
    let future_drops = Drops::default();
    let output_drops = Drops::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (runnable, task) = h.spawn({
        let token = future_drops.token();
        let output_drops = output_drops.clone();
        let finished = finished.clone();
        async move {
            let _token = token;
            yield_now().await;
            yield_now().await;
            finished.store(true, SeqCst);
            output_drops.token()
        }
    });
    drop(task); // detach: does not cancel
    runnable.schedule();
    assert_eq!(h.run_all(), 3);
    assert!(finished.load(SeqCst));
    assert_eq!(future_drops.get(), 1);
    assert_eq!(
        output_drops.get(),
        1,
        "nobody can read it: dropped at completion"
    );
}

#[test]
fn task_detached_while_pending_still_completes() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let output_drops = Drops::default();
    let (runnable, task) = h.spawn({
        let gate = gate.clone();
        let output_drops = output_drops.clone();
        async move {
            gate.wait().await;
            output_drops.token()
        }
    });
    let observer = task.as_ref();
    assert!(!runnable.run());
    drop(task);
    gate.open();
    assert_eq!(h.run_all(), 1);
    assert!(observer.is_done());
    assert!(!observer.is_cancelled());
    assert_eq!(output_drops.get(), 1);
}

// ---------------------------------------------------------------------------------------------
// Cancellation.
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_before_run_drops_the_future_unpolled() {
    let h = Harness::default();
    let drops = Drops::default();
    let polled = Arc::new(AtomicBool::new(false));
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        let polled = polled.clone();
        poll_fn(move |_| {
            let _keep = &token;
            polled.store(true, SeqCst);
            Poll::Ready(())
        })
    });
    let (count, waker) = counting_waker();
    assert!(poll_with(&mut task, &waker).is_pending());

    assert!(task.cancel());
    assert!(
        task.cancel(),
        "still not ended: cancel() keeps returning true"
    );
    assert!(!task.is_done());
    assert!(!task.is_cancelled());
    assert_eq!(
        drops.get(),
        0,
        "dropped at the next scheduling point, not in cancel()"
    );
    assert_eq!(
        h.len(),
        0,
        "the runnable exists already: nothing new is queued"
    );

    runnable.schedule();
    assert!(h.pop().unwrap().run());
    assert!(!polled.load(SeqCst));
    assert_eq!(drops.get(), 1);
    assert!(task.is_done());
    assert!(task.is_cancelled());
    assert_eq!(count.count(), 1);
    assert!(!task.cancel(), "already ended");
    expect_cancelled(&mut task);
    assert!(!task.cancel());
    assert_eq!(h.len(), 0);
}

/// A future that cancels its own task from inside `poll` (and wakes itself too).
struct SelfCancel {
    me: Arc<Mutex<Option<TaskRef>>>,
    in_poll: Arc<AtomicBool>,
    dropped_in_poll: Arc<AtomicBool>,
    polls: Arc<AtomicUsize>,
    _token: DropToken,
}

impl Future for SelfCancel {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.in_poll.store(true, SeqCst);
        this.polls.fetch_add(1, SeqCst);
        cx.waker().wake_by_ref();
        let me = this.me.lock().unwrap().clone().unwrap();
        assert!(me.cancel());
        assert!(
            !me.is_done(),
            "cancel() never ends the task inside its poll"
        );
        this.in_poll.store(false, SeqCst);
        Poll::Pending
    }
}

impl Drop for SelfCancel {
    fn drop(&mut self) {
        if self.in_poll.load(SeqCst) {
            self.dropped_in_poll.store(true, SeqCst);
        }
    }
}

#[test]
fn cancel_from_inside_poll_drops_the_future_after_the_poll() {
    let h = Harness::default();
    let drops = Drops::default();
    let me: Arc<Mutex<Option<TaskRef>>> = Arc::default();
    let dropped_in_poll = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let (runnable, mut task) = h.spawn(SelfCancel {
        me: me.clone(),
        in_poll: Arc::default(),
        dropped_in_poll: dropped_in_poll.clone(),
        polls: polls.clone(),
        _token: drops.token(),
    });
    *me.lock().unwrap() = Some(runnable.task_ref());

    assert!(runnable.run(), "the task ended in this run");
    assert_eq!(polls.load(SeqCst), 1);
    assert_eq!(drops.get(), 1);
    assert!(
        !dropped_in_poll.load(SeqCst),
        "the future was dropped inside its own poll"
    );
    assert_eq!(h.len(), 0, "the self-wake left no runnable behind");
    assert_eq!(h.schedules(), 0);
    assert!(task.is_cancelled());
    expect_cancelled(&mut task);
    me.lock().unwrap().take();
}

#[test]
fn cancel_of_an_idle_task_schedules_it_to_drop_the_future() {
    let h = Harness::default();
    let drops = Drops::default();
    let gate = Arc::new(Gate::default());
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        let gate = gate.clone();
        async move {
            let _token = token;
            gate.wait().await;
            1
        }
    });
    assert!(!runnable.run());
    assert_eq!(h.len(), 0);

    assert!(task.cancel());
    assert_eq!(h.len(), 1, "cancel() of an idle task schedules it");
    assert_eq!(drops.get(), 0);
    assert!(!task.is_done());
    assert!(task.cancel());
    gate.open(); // a wake now finds it scheduled already
    assert_eq!(h.len(), 1);

    assert!(h.pop().unwrap().run());
    assert_eq!(drops.get(), 1);
    assert!(task.is_cancelled());
    expect_cancelled(&mut task);
    assert_eq!(h.len(), 0);
    assert_eq!(h.unhandled_count(), 0);
}

#[test]
fn cancel_through_task_ref_of_a_detached_task() {
    let h = Harness::default();
    let drops = Drops::default();
    let gate = Arc::new(Gate::default());
    let (runnable, task) = h.spawn({
        let token = drops.token();
        let gate = gate.clone();
        async move {
            let _token = token;
            gate.wait().await;
        }
    });
    let tr = task.as_ref();
    drop(task);
    runnable.run();
    assert!(tr.cancel());
    assert_eq!(h.run_all(), 1);
    assert_eq!(drops.get(), 1);
    assert!(tr.is_done());
    assert!(tr.is_cancelled());
    assert!(!tr.cancel());
}

#[test]
fn dropping_the_runnable_cancels_the_task() {
    let h = Harness::default();
    let drops = Drops::default();
    let polled = Arc::new(AtomicBool::new(false));
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        let polled = polled.clone();
        async move {
            let _token = token;
            polled.store(true, SeqCst);
            5
        }
    });
    let (count, waker) = counting_waker();
    assert!(poll_with(&mut task, &waker).is_pending());
    drop(runnable);
    assert!(!polled.load(SeqCst));
    assert_eq!(drops.get(), 1);
    assert!(task.is_done());
    assert!(task.is_cancelled());
    assert_eq!(count.count(), 1);
    expect_cancelled(&mut task);
}

#[test]
fn dropping_a_rescheduled_runnable_cancels_the_task() {
    let h = Harness::default();
    let drops = Drops::default();
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        async move {
            let _token = token;
            yield_now().await;
        }
    });
    assert!(!runnable.run());
    assert_eq!(h.len(), 1);
    drop(h.pop().unwrap());
    assert_eq!(drops.get(), 1);
    expect_cancelled(&mut task);
    // Dropping the harness with runnables still queued cancels those tasks too.
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        async move {
            let _token = token;
        }
    });
    runnable.schedule();
    drop(h);
    assert_eq!(drops.get(), 2);
    expect_cancelled(&mut task);
}

#[test]
fn a_scheduler_that_drops_the_runnable_cancels_the_task() {
    let drops = Drops::default();
    let (runnable, mut task) = spawn(
        {
            let token = drops.token();
            async move {
                let _token = token;
                yield_now().await;
            }
        },
        |r: Runnable| drop(r),
    );
    assert!(!runnable.run());
    assert_eq!(drops.get(), 1);
    expect_cancelled(&mut task);
}

// ---------------------------------------------------------------------------------------------
// Panics.
// ---------------------------------------------------------------------------------------------
