//! How work reaches a loop: `Shared`, the `Send + Sync` part of a loop (the injection queue,
//! the flags, the reactor, and the send/seal handshake with `close`), the local ready queue
//! that `send` uses while the loop runs on the sender's thread, and `LoopScheduler`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex};

use crossbeam_queue::SegQueue;
use evloop_reactor::Reactor;

use crate::exception::ExceptionContext;
use crate::task::{Runnable, Schedule, TaskId, TaskRef};
use crate::work::{Injected, Work};

/// A loop's ready queue (loop thread only): the loop holds it, and so does this thread's
/// [`LOCAL`] slot while the loop runs here.
pub(crate) type ReadyQueue = Rc<RefCell<VecDeque<Work>>>;

thread_local! {
    /// The loop running on this thread, as its `Shared::id` and its ready queue: where `send`
    /// puts work for that loop without atomics. Set and cleared together with the running-loop
    /// slot (`running::RunningGuard`).
    static LOCAL: RefCell<Option<(usize, ReadyQueue)>> = const { RefCell::new(None) };
}

/// Sets this thread's local slot (the running loop's id and ready queue; `None` clears it) and
/// returns what it held.
pub(crate) fn set_local(local: Option<(usize, ReadyQueue)>) -> Option<(usize, ReadyQueue)> {
    LOCAL
        .try_with(|slot| {
            slot.try_borrow_mut()
                .ok()
                .map(|mut s| std::mem::replace(&mut *s, local))
        })
        .ok()
        .flatten()
        .flatten()
}

/// Pushes `item` onto the ready queue of the loop `id` if that loop runs on this thread, after
/// what waits in `injector` (one FIFO, as `EventLoop::push_ready`).
fn push_local(id: usize, injector: &SegQueue<Injected>, item: Injected) -> Result<(), Injected> {
    let mut item = Some(item);
    let pushed = LOCAL
        .try_with(|slot| {
            let Ok(slot) = slot.try_borrow() else {
                return false;
            };
            match &*slot {
                Some((running, ready)) if *running == id => {
                    if let Some(i) = item.take() {
                        let mut ready = ready.borrow_mut();
                        if !injector.is_empty() {
                            drain_into(injector, &mut ready);
                        }
                        ready.push_back(Work::from(i));
                    }
                    true
                }
                _ => false,
            }
        })
        .unwrap_or(false);
    match item {
        Some(i) if !pushed => Err(i),
        _ => Ok(()),
    }
}

/// The most injected items one drain moves to the ready queue (an iteration drains twice).
/// A backlog that other threads built faster than the loop runs it costs a timer at most the
/// time of two such batches (a few hundred microseconds of trivial callbacks), not the time
/// of the whole backlog; the cost of an iteration spread over 4096 items is negligible.
pub(crate) const MAX_INJECTED_PER_DRAIN: usize = 4096;

/// The part of a loop that other threads (and wakers) can reach: `Send + Sync`.
pub(crate) struct Shared {
    /// Unique per loop; identifies "this loop is the one running on this thread".
    pub(crate) id: usize,
    /// Work sent from other threads (or from this thread while the loop is not running).
    pub(crate) injector: SegQueue<Injected>,
    /// The loop is blocked (or about to block) in the reactor.
    pub(crate) parked: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Set by `close()` once every task of the loop is done and its queues are drained: from
    /// then on a sender drops what it sends itself (see `send`).
    pub(crate) sealed: AtomicBool,
    pub(crate) stopping: AtomicBool,
    pub(crate) reactor: Reactor,
    /// Sleeps cancelled while in the timer heap (read by the heap to decide compaction).
    pub(crate) sleeps_cancelled: Arc<AtomicUsize>,
    /// The tasks `EventLoop::cancel_all_tasks` cancelled and is waiting for, sorted by id: a
    /// panicking destructor of one of them is a shutdown report.
    pub(crate) shutdown_tasks: Mutex<Vec<TaskId>>,
    /// Tasks that ended without the loop stepping them (`Schedule::ended_unscheduled`): the
    /// loop forgets them at its next iteration. `ended_unscheduled_any` says the list is not
    /// empty (one load per iteration).
    pub(crate) ended_unscheduled: Mutex<Vec<(u32, TaskId)>>,
    pub(crate) ended_unscheduled_any: AtomicBool,
}

impl Shared {
    pub(crate) fn new(reactor: Reactor) -> Shared {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            injector: SegQueue::new(),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            reactor,
            sleeps_cancelled: Arc::default(),
            shutdown_tasks: Mutex::new(Vec::new()),
            ended_unscheduled: Mutex::new(Vec::new()),
            ended_unscheduled_any: AtomicBool::new(false),
        }
    }

    /// Sends work to the loop: straight onto its local ready queue if it is running on this
    /// thread (no atomics), else through the injection queue, waking the loop if it is parked.
    ///
    /// Never leaves `item` behind in a closed loop: it is run by the loop, or dropped (by the
    /// loop's `close`, or by this call if the loop closed meanwhile).
    ///
    /// # The close handshake
    ///
    /// A sender that checked `closed` before calling this can still lose the race against
    /// `close`, and an item pushed after `close`'s last drain would wait forever in a queue
    /// nobody reads (a spawned task never resolving, a closure never run nor dropped). So:
    ///
    /// - sender: `injector.push(item)`; `fence(SeqCst)`; `sealed.load()`: if set, pop the
    ///   injector empty itself (`discard`)
    /// - `close`: `sealed.store(true)`; `fence(SeqCst)`; drain the injector one last time
    ///
    /// This is the store-buffering (Dekker) pattern: with a SeqCst fence between each side's
    /// write and its read, either `close`'s last drain sees the item, or the sender sees
    /// `sealed` and pops it (or both race to pop: the queue hands each item to one of them).
    ///
    /// Until `sealed`, only the loop thread pops the injector, so what is sent while the loop
    /// closes (a local task's runnable woken from another thread, a report) is dropped there,
    /// and reaches its exception handler. `close` seals only once every task of the loop is
    /// done, and a runnable exists only for a task that is not: after the seal the queue holds
    /// only work that may be dropped on any thread (closures, `Send` tasks' runnables, reports,
    /// which are then logged). The same fence serves the park handshake (`wake_if_parked`), so
    /// a send costs what it did before the handshake: one push, one fence, two loads.
    pub(crate) fn send(&self, item: Injected) {
        let item = match push_local(self.id, &self.injector, item) {
            Ok(()) => return,
            Err(item) => item,
        };
        self.injector.push(item);
        fence(Ordering::SeqCst);
        if self.sealed.load(Ordering::SeqCst) {
            while let Some(item) = self.injector.pop() {
                discard(item);
            }
            return;
        }
        self.notify_if_parked();
    }

    /// `close`'s side of the handshake in `send`, once every task of the loop is done: after
    /// this and one more drain, whatever a sender pushes it drops itself.
    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Pairs with the loop's `parked.store(true); fence; check queues` (a Dekker handshake):
    /// either the loop sees our work, or we see it parked and notify the reactor.
    pub(crate) fn wake_if_parked(&self) {
        fence(Ordering::SeqCst);
        self.notify_if_parked();
    }

    /// `wake_if_parked` after the caller's fence.
    fn notify_if_parked(&self) {
        if self.parked.load(Ordering::SeqCst) {
            if let Err(e) = self.reactor.notify() {
                tracing::error!(error = %e, "failed to wake the event loop");
            }
        }
    }

    /// Work waiting in the injection queue, as ready-queue items, in FIFO order.
    ///
    /// Takes at most the items queued when the call began (asyncio's `ntodo` snapshot), and
    /// at most [`MAX_INJECTED_PER_DRAIN`] of them: other threads posting as fast as they can
    /// cannot keep the drain, and so the iteration, from ending, and a backlog they built up
    /// is worked off a batch per iteration, with timers and I/O looked at between batches.
    pub(crate) fn drain_injected(&self, into: &mut VecDeque<Work>) {
        drain_into(&self.injector, into);
    }
}

/// [`Shared::drain_injected`] of `injector`.
fn drain_into(injector: &SegQueue<Injected>, into: &mut VecDeque<Work>) {
    for _ in 0..injector.len().min(MAX_INJECTED_PER_DRAIN) {
        let Some(i) = injector.pop() else { break };
        into.push_back(i.into());
    }
}

/// Drops one item of work sent to a loop that is closed for good, on the sender's thread (any
/// thread). A runnable is dropped, which cancels its task (a local task's future cannot be
/// dropped here: the task core leaks it, see `task/raw.rs`); a closure is dropped unrun; a
/// report goes to the default handler (the loop's own handler lives on its thread); a sleep
/// ends now, as `close` ends the sleeps it finds. A destructor that panics is caught and
/// logged, so that it cannot unwind into an unrelated `wake` or `call_soon_threadsafe`.
fn discard(item: Injected) {
    match item {
        Injected::Report(ctx) => {
            crate::exception::log_exception(&ctx);
            drop_logged(ctx);
        }
        Injected::Sleep(sleep) => {
            let (_, state) = *sleep;
            state.cancel();
            destroy_logged(move || state.wake());
        }
        other => drop_logged(other),
    }
}

/// Drops work a closed loop will never run, off the loop (no exception handler to reach): a
/// panicking destructor is caught and logged by the default handler.
pub(crate) fn drop_logged<T>(value: T) {
    destroy_logged(move || drop(value));
}

/// Runs `f`, which destroys something (see [`drop_logged`]), with a panic caught and logged.
fn destroy_logged(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        crate::exception::log_exception(
            &ExceptionContext::new("Exception in the destructor of work for a closed event loop")
                .with_panic(payload),
        );
    }
}

/// The `Schedule` of every task on a loop.
pub(crate) struct LoopScheduler {
    pub(crate) shared: Arc<Shared>,
}

impl Schedule for LoopScheduler {
    fn schedule(&self, runnable: Runnable) {
        // On a closed loop `send` drops the runnable (which cancels the task): right here, or,
        // while `close` is still draining, in `close` on the loop thread.
        self.shared.send(Injected::Task(runnable));
    }

    fn unhandled_panic(&self, task: TaskRef, payload: Box<dyn std::any::Any + Send>) {
        let ctx = ExceptionContext::new("Task exception was never retrieved")
            .with_task(task)
            .with_panic(payload);
        self.report(ctx);
    }

    fn destructor_panicked(&self, task: TaskId, payload: Box<dyn std::any::Any + Send>) {
        self.report(destructor_panic_report(task).with_panic(payload));
    }

    fn ended_unscheduled(&self, task: TaskId, tag: u32) {
        crate::task::lock(&self.shared.ended_unscheduled).push((tag, task));
        self.shared
            .ended_unscheduled_any
            .store(true, Ordering::Release);
    }

    fn task_destructor_panicked(&self, task: TaskRef, payload: Box<dyn std::any::Any + Send>) {
        let in_shutdown = crate::task::lock(&self.shared.shutdown_tasks)
            .binary_search(&task.id())
            .is_ok();
        let ctx = if in_shutdown {
            ExceptionContext::new(SHUTDOWN_REPORT)
        } else {
            destructor_panic_report(task.id())
        };
        self.report(ctx.with_task(task).with_panic(payload));
    }
}

/// The message of a report of a task that failed while `EventLoop::cancel_all_tasks` (run()'s
/// shutdown) cancelled it: asyncio's "unhandled exception during asyncio.run() shutdown".
const SHUTDOWN_REPORT: &str = "unhandled exception during run() shutdown";

/// A report of a task whose future or output panicked while being dropped.
fn destructor_panic_report(task: TaskId) -> ExceptionContext {
    ExceptionContext::new(format!(
        "Task-{task}'s future or output panicked while being dropped"
    ))
}

impl LoopScheduler {
    /// Hands `ctx` to the loop's exception handler: on a closed loop `send` logs it with the
    /// default handler (or leaves it to a `close` still draining, which hands it to the loop's
    /// handler).
    fn report(&self, ctx: ExceptionContext) {
        self.shared.send(Injected::Report(Box::new(ctx)));
    }
}
