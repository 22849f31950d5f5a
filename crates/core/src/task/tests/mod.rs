//! Unit tests of the raw task machinery. They are written to run under Miri too
//! (`cargo +nightly miri test -p evloop-core --lib task::`), so loop counts stay small there.

// `waker.clone().wake()` is deliberate: it exercises the consuming wake path.
#![allow(clippy::unwrap_used, clippy::waker_clone_wake)]

mod basic;
mod local;
mod more;
mod soundness;

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
    /// Messages of the destructor panics reported through `Schedule::destructor_panicked`.
    destructor_panics: Mutex<Vec<(TaskId, Option<String>)>>,
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

    fn destructor_panicked(&self, task: TaskId, payload: Box<dyn Any + Send>) {
        if let Some(inner) = self.0.upgrade() {
            let message = super::panic_message(payload.as_ref()).map(str::to_owned);
            inner
                .destructor_panics
                .lock()
                .unwrap()
                .push((task, message));
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

    fn destructor_panics(&self) -> Vec<(TaskId, Option<String>)> {
        self.0.destructor_panics.lock().unwrap().clone()
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
fn drops_never_zero() -> bool {
    std::hint::black_box(true)
}

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
