//! Unit tests of the raw task machinery. They are written to run under Miri too
//! (`cargo +nightly miri test -p evloop-core --lib task::`), so loop counts stay small there.

// `waker.clone().wake()` is deliberate: it exercises the consuming wake path.
#![allow(clippy::unwrap_used, clippy::waker_clone_wake)]

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use super::{JoinError, Runnable, Schedule, Task, TaskId, TaskRef, spawn, spawn_local};

// ---------------------------------------------------------------------------------------------
// Harness: a queue-based scheduler, drop counters, wakers and small hand-written futures.
// ---------------------------------------------------------------------------------------------

/// What `Schedule::unhandled_panic` saw.
struct Unhandled {
    id: TaskId,
    name: String,
    message: Option<String>,
    done: bool,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Runnable>>,
    schedules: AtomicUsize,
    max_queued: AtomicUsize,
    unhandled: Mutex<Vec<Unhandled>>,
}

/// The test's side of a FIFO scheduler. Tasks only hold a `Weak` to it, so dropping the harness
/// drops (and thereby cancels) whatever is still queued: no task <-> queue reference cycle for
/// Miri's leak checker to find.
#[derive(Default, Clone)]
struct Harness(Arc<Inner>);

/// The tasks' side of the scheduler.
struct Sched(Weak<Inner>);

impl Schedule for Sched {
    fn schedule(&self, runnable: Runnable) {
        let Some(inner) = self.0.upgrade() else {
            return; // the harness is gone: dropping the runnable cancels the task
        };
        inner.schedules.fetch_add(1, SeqCst);
        let mut queue = inner.queue.lock().unwrap();
        queue.push_back(runnable);
        inner.max_queued.fetch_max(queue.len(), SeqCst);
    }

    fn unhandled_panic(&self, task: TaskRef, payload: Box<dyn Any + Send>) {
        if let Some(inner) = self.0.upgrade() {
            inner.unhandled.lock().unwrap().push(Unhandled {
                id: task.id(),
                name: task.name(),
                message: super::panic_message(payload.as_ref()).map(str::to_owned),
                done: task.is_done(),
            });
        }
    }
}

impl Harness {
    fn sched(&self) -> Sched {
        Sched(Arc::downgrade(&self.0))
    }

    fn spawn<F>(&self, future: F) -> (Runnable, Task<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn(future, self.sched())
    }

    fn pop(&self) -> Option<Runnable> {
        // The lock is released before the runnable is run (it may reschedule itself).
        self.0.queue.lock().unwrap().pop_front()
    }

    fn len(&self) -> usize {
        self.0.queue.lock().unwrap().len()
    }

    fn schedules(&self) -> usize {
        self.0.schedules.load(SeqCst)
    }

    fn max_queued(&self) -> usize {
        self.0.max_queued.load(SeqCst)
    }

    fn unhandled_count(&self) -> usize {
        self.0.unhandled.lock().unwrap().len()
    }

    /// Runs queued runnables until the queue is empty; returns how many ran.
    fn run_all(&self) -> usize {
        let mut n = 0;
        while let Some(r) = self.pop() {
            r.run();
            n += 1;
        }
        n
    }

    /// Runs queued runnables until `done()` holds.
    fn run_until(&self, done: impl Fn() -> bool) {
        loop {
            if let Some(r) = self.pop() {
                r.run();
            } else if done() {
                return;
            } else {
                thread::yield_now();
            }
        }
    }
}

/// Counts the drops of the tokens it hands out.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

struct DropToken(Arc<AtomicUsize>);

impl Drops {
    fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountWaker(AtomicUsize);

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

impl CountWaker {
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

fn counting_waker() -> (Arc<CountWaker>, Waker) {
    let c = Arc::new(CountWaker::default());
    (c.clone(), Waker::from(c))
}

fn poll_with<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

fn poll_noop<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    poll_with(f, Waker::noop())
}

/// Pending once (waking itself), then ready.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// A one-shot event: `wait()` is pending (storing its waker) until `open()`.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, SeqCst);
        let waker = self.waker.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.clone();
        poll_fn(move |cx| {
            if gate.open.load(SeqCst) {
                return Poll::Ready(());
            }
            *gate.waker.lock().unwrap() = Some(cx.waker().clone());
            if gate.open.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("drop boom");
    }
}

fn expect_cancelled<T>(task: &mut Task<T>) {
    match poll_noop(task) {
        Poll::Ready(Err(e)) => {
            assert!(e.is_cancelled());
            assert!(!e.is_panic());
            assert!(e.panic_message().is_none());
            assert_eq!(e.to_string(), "task was cancelled");
            assert!(e.into_panic().is_none());
        }
        Poll::Ready(Ok(_)) => panic!("expected Err(Cancelled), got Ok"),
        Poll::Pending => panic!("expected Err(Cancelled), got Pending"),
    }
}

// ---------------------------------------------------------------------------------------------
// Spawn, schedule, run, output.
// ---------------------------------------------------------------------------------------------

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

#[test]
fn panic_in_poll_is_caught() {
    let h = Harness::default();
    let drops = Drops::default();
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        async move {
            let _token = token;
            if drops_never_zero() {
                panic!("boom {}", std::hint::black_box(7));
            }
            0u8
        }
    });
    assert!(runnable.run(), "no unwind escapes run()");
    assert_eq!(drops.get(), 1);
    assert!(task.is_done());
    assert!(!task.is_cancelled());
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected Err(Panicked)");
    };
    assert!(e.is_panic());
    assert!(!e.is_cancelled());
    assert_eq!(e.panic_message(), Some("boom 7"));
    assert_eq!(e.to_string(), "task panicked: boom 7");
    assert_eq!(format!("{e:?}"), "JoinError::Panicked(\"boom 7\")");
    let payload = e.into_panic().unwrap();
    assert_eq!(*payload.downcast::<String>().unwrap(), "boom 7");
    drop(task);
    assert_eq!(h.unhandled_count(), 0, "the outcome was read");
}

/// Always true, but the compiler does not know (keeps the code after `panic!` reachable).
fn drops_never_zero() -> bool {
    std::hint::black_box(true)
}

#[test]
fn panic_payloads_str_and_other() {
    let h = Harness::default();
    let (r1, mut t1) = h.spawn(async {
        if drops_never_zero() {
            panic!("static boom");
        }
    });
    let (r2, mut t2) = h.spawn(async {
        if drops_never_zero() {
            std::panic::panic_any(17u32);
        }
    });
    r1.run();
    r2.run();
    let Poll::Ready(Err(e1)) = poll_noop(&mut t1) else {
        panic!("expected a panic");
    };
    assert_eq!(e1.panic_message(), Some("static boom"));
    let Poll::Ready(Err(e2)) = poll_noop(&mut t2) else {
        panic!("expected a panic");
    };
    assert!(e2.is_panic());
    assert_eq!(e2.panic_message(), None);
    assert_eq!(e2.to_string(), "task panicked");
    assert_eq!(format!("{e2:?}"), "JoinError::Panicked(..)");
    assert_eq!(*e2.into_panic().unwrap().downcast::<u32>().unwrap(), 17);
}

#[test]
fn unread_panic_is_reported_when_the_handle_is_dropped() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        if drops_never_zero() {
            panic!("boom");
        }
    });
    let id = task.id();
    runnable.run();
    assert_eq!(h.unhandled_count(), 0, "the handle may still read it");
    drop(task);
    let seen = h.0.unhandled.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, id);
    assert_eq!(seen[0].name, format!("Task-{id}"));
    assert_eq!(seen[0].message.as_deref(), Some("boom"));
    assert!(seen[0].done);
}

#[test]
fn panic_of_a_detached_task_is_reported_at_completion() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        yield_now().await;
        if drops_never_zero() {
            panic!("late boom");
        }
    });
    task.set_name("worker");
    drop(task);
    assert!(!runnable.run());
    assert_eq!(h.unhandled_count(), 0);
    assert_eq!(h.run_all(), 1);
    let seen = h.0.unhandled.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "worker");
    assert_eq!(seen[0].message.as_deref(), Some("late boom"));
}

#[test]
fn no_unhandled_report_for_read_panics_cancellations_or_outputs() {
    let h = Harness::default();
    let (r1, mut t1) = h.spawn(async {
        if drops_never_zero() {
            panic!("read me");
        }
    });
    r1.run();
    assert!(matches!(poll_noop(&mut t1), Poll::Ready(Err(_))));
    drop(t1);
    let (r2, t2) = h.spawn(async {});
    t2.cancel();
    drop(t2);
    r2.run();
    let (r3, t3) = h.spawn(async { 3 });
    r3.run();
    drop(t3);
    assert_eq!(h.unhandled_count(), 0);
}

#[test]
fn panicking_future_drop_is_contained() {
    let h = Harness::default();

    // Dropped after completing.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(1)
        })
    });
    assert!(runnable.run());
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(1))));

    // Dropped by cancellation at run.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(2)
        })
    });
    task.cancel();
    assert!(runnable.run());
    expect_cancelled(&mut task);

    // Dropped with its runnable.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(3)
        })
    });
    drop(runnable);
    expect_cancelled(&mut task);

    // Dropped after a panicking poll.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            if drops_never_zero() {
                panic!("poll boom");
            }
            Poll::Ready(4)
        })
    });
    assert!(runnable.run());
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("poll boom"));
}

#[test]
fn panicking_drop_of_an_abandoned_future_is_contained() {
    // Pending, no waker kept and no handle: the last reference goes away at the end of run(),
    // which drops the future there.
    let h = Harness::default();
    let (runnable, task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::<()>::Pending
        })
    });
    drop(task);
    let ran = catch_unwind(AssertUnwindSafe(|| runnable.run()));
    assert!(
        matches!(ran, Ok(false)),
        "a destructor's panic escaped run()"
    );
}

#[test]
fn abandoned_pending_future_is_dropped() {
    let h = Harness::default();
    let drops = Drops::default();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (runnable, task) = h.spawn({
        let token = drops.token();
        let slot = slot.clone();
        poll_fn(move |cx| {
            let _keep = &token;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
    });
    drop(task);
    assert!(!runnable.run());
    assert_eq!(drops.get(), 0, "a waker can still wake it");
    drop(slot.lock().unwrap().take());
    assert_eq!(
        drops.get(),
        1,
        "the last waker went away: the future is dropped"
    );
}

// ---------------------------------------------------------------------------------------------
// TaskRef.
// ---------------------------------------------------------------------------------------------

#[test]
fn task_ref_identity_ids_and_names() {
    let h = Harness::default();
    let (r1, t1) = h.spawn(async {});
    let (r2, t2) = h.spawn(async {});
    let a = t1.as_ref();
    let b = r1.task_ref();
    let c = a.clone();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_ne!(a, t2.as_ref());
    assert_ne!(r2.task_ref(), b);
    assert_eq!(a.id(), t1.id());
    assert_eq!(r1.id(), t1.id());
    assert_ne!(t1.id(), t2.id());
    assert!(t2.id() > t1.id(), "ids increase");
    assert_eq!(t1.id().to_string(), t1.id().as_u64().to_string());

    assert_eq!(t1.name(), format!("Task-{}", t1.id()));
    assert_eq!(a.name(), t1.name());
    assert_eq!(t2.name(), format!("Task-{}", t2.id()));
    a.set_name("alpha");
    assert_eq!(t1.name(), "alpha");
    assert_eq!(b.name(), "alpha");
    t1.set_name(String::from("beta"));
    assert_eq!(c.name(), "beta");
    assert!(format!("{t1:?}").contains("beta"));
    assert!(format!("{r1:?}").contains("beta"));
    assert!(format!("{a:?}").contains("beta"));
    assert_eq!(t2.name(), format!("Task-{}", t2.id()));

    let set: HashSet<TaskRef> = [a.clone(), b.clone(), c.clone(), t2.as_ref()]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);

    assert!(!a.is_done());
    r1.run();
    r2.run();
    assert!(a.is_done());
    assert!(!a.is_cancelled());
}

#[test]
fn task_ref_outlives_the_task_handle() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async { 5 });
    let tr = task.as_ref();
    drop(task);
    runnable.run();
    assert!(tr.is_done());
    let mut tr2 = tr.clone();
    drop(tr);
    assert!(matches!(poll_noop(&mut tr2), Poll::Ready(Ok(()))));
}

#[test]
fn awaiting_a_task_ref() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (runnable, mut task) = h.spawn({
        let gate = gate.clone();
        async move { gate.wait().await }
    });
    let mut tr = task.as_ref();
    let mut tr2 = tr.clone();
    let (c1, w1) = counting_waker();
    let (c2, w2) = counting_waker();
    let (c3, w3) = counting_waker();
    assert!(poll_with(&mut tr, &w1).is_pending());
    assert!(poll_with(&mut tr, &w1).is_pending());
    assert!(poll_with(&mut tr2, &w2).is_pending());
    assert!(poll_with(&mut task, &w3).is_pending());
    assert!(!runnable.run());
    gate.open();
    h.run_all();
    // Registering the same waker twice is deduplicated with `Waker::will_wake`, which is only
    // best effort (under Miri vtable addresses are not unique, so it may say no).
    assert!((1..=2).contains(&c1.count()));
    assert_eq!(c2.count(), 1);
    assert_eq!(c3.count(), 1);
    assert!(matches!(poll_noop(&mut tr), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut tr), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut tr2), Poll::Ready(Ok(()))));

    // Cancelled.
    let (runnable, task) = h.spawn(async {});
    let mut tr = task.as_ref();
    let (c, w) = counting_waker();
    assert!(poll_with(&mut tr, &w).is_pending());
    task.cancel();
    runnable.run();
    assert_eq!(c.count(), 1);
    assert!(matches!(
        poll_noop(&mut tr),
        Poll::Ready(Err(JoinError::Cancelled))
    ));

    // Panicked: the payload stays with the typed handle; the TaskRef gets a generic message.
    let (runnable, mut task) = h.spawn(async {
        if drops_never_zero() {
            panic!("boom");
        }
    });
    let mut tr = task.as_ref();
    runnable.run();
    let Poll::Ready(Err(e)) = poll_noop(&mut tr) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("task panicked"));
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("boom"));
}

// ---------------------------------------------------------------------------------------------
// Schedulers that run the runnable at once.
// ---------------------------------------------------------------------------------------------

#[test]
fn inline_scheduler_with_a_detached_task() {
    // The scheduler runs the runnable inside `schedule`, and the task ends (and its last
    // reference goes away) before `schedule` returns: the scheduler's captures must stay valid.
    let runs = Arc::new(AtomicUsize::new(0));
    let drops = Drops::default();
    let (runnable, task) = spawn(
        {
            let token = drops.token();
            async move {
                let _token = token;
                yield_now().await;
                yield_now().await;
            }
        },
        {
            let runs = runs.clone();
            move |r: Runnable| {
                r.run();
                runs.fetch_add(1, SeqCst);
            }
        },
    );
    drop(task);
    runnable.schedule();
    assert_eq!(runs.load(SeqCst), 3);
    assert_eq!(drops.get(), 1);
}

#[test]
fn panicking_scheduler_does_not_leak_the_task() {
    let drops = Drops::default();
    let (runnable, mut task) = spawn(
        {
            let token = drops.token();
            async move {
                let _token = token;
            }
        },
        |r: Runnable| {
            drop(r);
            panic!("scheduler boom");
        },
    );
    assert!(catch_unwind(AssertUnwindSafe(|| runnable.schedule())).is_err());
    assert_eq!(drops.get(), 1);
    expect_cancelled(&mut task);
    // Miri's leak checker reports the task if the panic leaked a reference.
}

// ---------------------------------------------------------------------------------------------
// Threads.
// ---------------------------------------------------------------------------------------------

#[test]
fn join_blocking_on_another_thread() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (runnable, task) = h.spawn({
        let gate = gate.clone();
        async move {
            gate.wait().await;
            yield_now().await;
            99u64
        }
    });
    let joiner = thread::spawn(move || task.join_blocking());
    assert!(!runnable.run());
    let opener = thread::spawn(move || gate.open());
    h.run_until(|| joiner.is_finished());
    opener.join().unwrap();
    assert_eq!(joiner.join().unwrap().unwrap(), 99);
}

#[test]
fn task_awaited_on_another_thread_sees_cancellation() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        yield_now().await;
        1
    });
    let tr = task.as_ref();
    let joiner = thread::spawn(move || task.join_blocking());
    assert!(!runnable.run());
    tr.cancel();
    h.run_until(|| joiner.is_finished());
    assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
}

#[test]
fn wake_of_a_scheduled_task_publishes_earlier_writes() {
    // The waker writes a flag and then wakes a task whose runnable is already queued; the runner
    // polls concurrently. Either that poll sees the flag, or the wake schedules the task again:
    // otherwise the wake-up is lost.
    let rounds = if cfg!(miri) { 30 } else { 2_000 };
    for _ in 0..rounds {
        let h = Harness::default();
        let flag = Arc::new(AtomicBool::new(false));
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (runnable, task) = h.spawn({
            let flag = flag.clone();
            let slot = slot.clone();
            let mut first = true;
            poll_fn(move |cx| {
                if flag.load(Acquire) {
                    return Poll::Ready(());
                }
                if std::mem::take(&mut first) {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            })
        });
        assert!(!runnable.run());
        let waker = slot.lock().unwrap().take().unwrap();
        let queued = h.pop().unwrap(); // SCHEDULED, about to run
        let barrier = Arc::new(Barrier::new(2));
        let waking = thread::spawn({
            let barrier = barrier.clone();
            let flag = flag.clone();
            move || {
                barrier.wait();
                flag.store(true, Release);
                waker.wake_by_ref();
                waker // dropped only after the race
            }
        });
        barrier.wait();
        queued.run();
        drop(waking.join().unwrap());
        h.run_all();
        assert!(task.is_done(), "lost wake-up");
    }
}

/// State shared by the concurrent-wake test's future and threads.
#[derive(Default)]
struct Stress {
    issued: AtomicUsize,
    seen: AtomicUsize,
    in_poll: AtomicBool,
    concurrent_polls: AtomicBool,
    polls: AtomicUsize,
    finish: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

#[test]
fn concurrent_wakes_from_four_threads() {
    const THREADS: usize = 4;
    let per_thread = if cfg!(miri) { 50 } else { 10_000 };
    let h = Harness::default();
    let s = Arc::new(Stress::default());
    let (runnable, task) = h.spawn({
        let s = s.clone();
        poll_fn(move |cx| {
            if s.in_poll.swap(true, SeqCst) {
                s.concurrent_polls.store(true, SeqCst);
            }
            let polls = s.polls.fetch_add(1, SeqCst) + 1;
            s.seen.fetch_max(s.issued.load(SeqCst), SeqCst);
            let finish = s.finish.load(SeqCst);
            {
                let mut w = s.waker.lock().unwrap();
                if w.is_none() {
                    *w = Some(cx.waker().clone());
                }
            }
            s.in_poll.store(false, SeqCst);
            if finish {
                Poll::Ready(polls)
            } else {
                Poll::Pending
            }
        })
    });
    assert!(!runnable.run());
    let waker = s.waker.lock().unwrap().clone().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let runner = thread::spawn({
        let (h, stop) = (h.clone(), stop.clone());
        move || {
            while !stop.load(SeqCst) {
                match h.pop() {
                    Some(r) => {
                        r.run();
                    }
                    None => thread::yield_now(),
                }
            }
        }
    });
    let wakers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (s, waker) = (s.clone(), waker.clone());
            thread::spawn(move || {
                for i in 0..per_thread {
                    s.issued.fetch_add(1, SeqCst);
                    if i % 2 == 0 {
                        waker.wake_by_ref();
                    } else {
                        waker.clone().wake();
                    }
                }
            })
        })
        .collect();
    let all_woken = || wakers.iter().all(|w| w.is_finished());
    h.run_until(all_woken);
    for w in wakers {
        w.join().unwrap();
    }
    stop.store(true, SeqCst);
    runner.join().unwrap();
    h.run_all();

    let total = THREADS * per_thread;
    assert_eq!(s.issued.load(SeqCst), total);
    assert_eq!(s.seen.load(SeqCst), total, "a wake-up was lost");
    assert!(!s.concurrent_polls.load(SeqCst), "polled concurrently");
    assert_eq!(h.max_queued(), 1, "queued twice");
    assert_eq!(
        h.schedules() + 1,
        s.polls.load(SeqCst),
        "one poll per schedule"
    );

    s.finish.store(true, SeqCst);
    waker.wake();
    assert_eq!(h.run_all(), 1);
    let polls = task.join_blocking().unwrap();
    assert_eq!(polls, s.polls.load(SeqCst));
    s.waker.lock().unwrap().take();
}

// ---------------------------------------------------------------------------------------------
// spawn_local.
// ---------------------------------------------------------------------------------------------

/// A `!Send` future that owns no heap memory, so leaking it is invisible to Miri's leak checker.
struct LocalProbe {
    polls: &'static AtomicUsize,
    drops: &'static AtomicUsize,
    _not_send: PhantomData<*const ()>,
}

impl Future for LocalProbe {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, SeqCst);
        Poll::Ready(())
    }
}

impl Drop for LocalProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn spawn_local_runs_on_its_thread() {
    let h = Harness::default();
    let shared = Rc::new(5);
    let (runnable, mut task) = spawn_local(
        {
            let shared = shared.clone();
            async move {
                yield_now().await;
                Rc::strong_count(&shared)
            }
        },
        h.sched(),
    );
    // The runnable may travel through other threads as long as it is run back here.
    let runnable = thread::spawn(move || runnable).join().unwrap();
    assert!(!runnable.run());
    let again = h.pop().unwrap();
    let again = thread::spawn(move || again).join().unwrap();
    assert!(again.run());
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(2))));
    assert_eq!(Rc::strong_count(&shared), 1, "the future was dropped here");
}

#[test]
fn spawn_local_run_on_another_thread_panics() {
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let (runnable, mut task) = spawn_local(
        LocalProbe {
            polls: &POLLS,
            drops: &DROPS,
            _not_send: PhantomData,
        },
        h.sched(),
    );
    let panicked = thread::spawn(move || runnable.run()).join().is_err();
    assert!(panicked);
    assert_eq!(POLLS.load(SeqCst), 0);
    assert_eq!(DROPS.load(SeqCst), 0, "never dropped on the foreign thread");
    // The runnable is gone, so the task cannot end any other way than cancelled.
    assert!(task.is_done());
    expect_cancelled(&mut task);
    assert_eq!(
        DROPS.load(SeqCst),
        0,
        "leaked, not dropped later on this thread"
    );
}

#[test]
fn spawn_local_owner_is_not_mistaken_for_a_later_thread() {
    // A thread-local's address is reused by the next thread once its thread has exited; the
    // owner check must not use it as the thread's identity.
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let sched = h.sched();
    let (runnable, task) = thread::spawn(move || {
        spawn_local(
            LocalProbe {
                polls: &POLLS,
                drops: &DROPS,
                _not_send: PhantomData,
            },
            sched,
        )
    })
    .join()
    .unwrap();
    let panicked = thread::spawn(move || runnable.run()).join().is_err();
    assert!(
        panicked,
        "a local task ran on a thread that did not spawn it"
    );
    assert_eq!(POLLS.load(SeqCst), 0);
    assert_eq!(DROPS.load(SeqCst), 0);
    assert!(task.is_cancelled());
}

#[test]
// Under Miri the leaked `Rc` allocation would be reported as a memory leak, and that leak is
// exactly the behaviour under test (a `!Send` future must not be dropped on a foreign thread).
#[cfg_attr(miri, ignore)]
fn spawn_local_runnable_dropped_on_another_thread_leaks_the_future() {
    let h = Harness::default();
    let shared = Rc::new(());
    let (runnable, mut task) = spawn_local(
        {
            let shared = shared.clone();
            async move {
                let _shared = shared;
            }
        },
        h.sched(),
    );
    thread::spawn(move || drop(runnable)).join().unwrap();
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "the clone was leaked, not dropped"
    );
    assert!(task.is_done());
    expect_cancelled(&mut task);
    drop(task);
    assert_eq!(Rc::strong_count(&shared), 2);
}

#[test]
fn spawn_local_runnable_dropped_on_another_thread_without_heap() {
    // Same as above but with a future that owns no heap memory, so it also runs under Miri.
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let (runnable, mut task) = spawn_local(
        LocalProbe {
            polls: &POLLS,
            drops: &DROPS,
            _not_send: PhantomData,
        },
        h.sched(),
    );
    thread::spawn(move || drop(runnable)).join().unwrap();
    assert_eq!(DROPS.load(SeqCst), 0);
    expect_cancelled(&mut task);
    drop(task);
    assert_eq!(DROPS.load(SeqCst), 0);
    assert_eq!(POLLS.load(SeqCst), 0);
}

#[test]
fn spawn_local_runnable_dropped_on_its_thread_drops_the_future() {
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let (runnable, mut task) = spawn_local(
        LocalProbe {
            polls: &POLLS,
            drops: &DROPS,
            _not_send: PhantomData,
        },
        h.sched(),
    );
    drop(runnable);
    assert_eq!(DROPS.load(SeqCst), 1);
    expect_cancelled(&mut task);
}

#[test]
fn a_task_is_terminated_once_its_output_was_taken() {
    use futures_core::FusedFuture;
    let (runnable, mut task) = spawn(async { 5 }, |_r: Runnable| {});
    assert!(!task.is_terminated());
    runnable.run();
    assert!(!task.is_terminated(), "done, but the output is still there");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut task).poll(&mut cx),
        Poll::Ready(Ok(5))
    ));
    assert!(task.is_terminated());
}
