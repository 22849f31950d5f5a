//! The loop's counters (plain `Cell`s, loop thread only) and [`LoopMetrics`], the snapshot
//! [`EventLoop::metrics`](crate::EventLoop::metrics) reads them into (tokio's `RuntimeMetrics`
//! is the model). Data only: the loop modules bump the counters.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A snapshot of a loop's counters, from [`EventLoop::metrics`](crate::EventLoop::metrics).
///
/// The counts (`iterations`, `tasks_spawned`, …) only grow over the loop's life; the depths
/// (`tasks_alive`, `ready_queue_depth`, …) are what the loop holds right now. Subtract two
/// snapshots to get what happened in between.
///
/// ```
/// use evloop_core::EventLoop;
///
/// let lp = EventLoop::new()?;
/// let before = lp.metrics();
/// let probe = lp.clone();
/// lp.run_until_complete(async move {
///     let child = probe.create_task(async { evloop_core::yield_now().await });
///     child.await.unwrap();
/// })?;
/// let after = lp.metrics();
/// // The child and run_until_complete's main task.
/// assert_eq!(after.tasks_spawned - before.tasks_spawned, 2);
/// assert_eq!(after.tasks_completed - before.tasks_completed, 2);
/// assert_eq!(after.tasks_alive, 0);
/// assert!(after.iterations > before.iterations);
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopMetrics {
    /// Loop iterations run (asyncio's `_run_once` calls).
    pub iterations: u64,
    /// Blocking waits in the reactor (iterations that found nothing ready and parked).
    pub parks: u64,
    /// Tasks the loop registered: every `create_task`/`spawn`, each `LoopHandle::spawn` once
    /// it reached the loop, and each `run_until_complete`'s main task.
    pub tasks_spawned: u64,
    /// Tasks the loop saw end (completed, failed or cancelled), those it learns of lazily (a
    /// task cancelled inline when its awaited handle was dropped) included once it sweeps them.
    pub tasks_completed: u64,
    /// Tasks that have not ended (`all_tasks().len()`; this walks the task table).
    pub tasks_alive: usize,
    /// Polls of tasks (each step of a task's future, the main task's included).
    pub task_polls: u64,
    /// Callbacks run: `call_soon`, timers, `call_soon_threadsafe`, fd callbacks.
    pub callbacks_run: u64,
    /// Readiness events the reactor delivered (one per fd that became readable or writable
    /// in a wait; a cross-thread wake of the loop is not one). Counted rather than traced.
    pub io_events: u64,
    /// Items waiting in the ready queue right now (tasks and callbacks for the next
    /// iteration; what other threads sent and the loop has not moved over yet is not counted).
    pub ready_queue_depth: usize,
    /// Timers in the timer heap (callback timers and sleeps, cancelled ones not yet swept
    /// included, as [`pending_timers`](crate::EventLoop::pending_timers)).
    pub timers_pending: usize,
    /// File descriptors registered with the loop's reactor (sockets, `add_reader`/`add_writer`
    /// watches, the I/O layer's own pipes).
    pub fds_registered: usize,
    /// Time spent inside `run_forever`/`run_until_complete`, not parked: running work and
    /// looking at I/O without blocking.
    pub busy_time: Duration,
    /// Time spent blocked in the reactor waiting for I/O, a timer or a wake.
    pub parked_time: Duration,
}

/// The loop's counters: bumped on the loop thread, read by `EventLoop::metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) iterations: Cell<u64>,
    pub(crate) parks: Cell<u64>,
    pub(crate) tasks_spawned: Cell<u64>,
    pub(crate) tasks_completed: Cell<u64>,
    pub(crate) task_polls: Cell<u64>,
    pub(crate) callbacks_run: Cell<u64>,
    pub(crate) io_events: Cell<u64>,
    pub(crate) parked: Cell<Duration>,
    /// Time in runs that have ended.
    pub(crate) ran: Cell<Duration>,
    /// When the current run began (`None` outside a run).
    pub(crate) run_started: Cell<Option<Instant>>,
}

/// Adds `n` to a counter.
#[inline]
pub(crate) fn bump(counter: &Cell<u64>, n: u64) {
    counter.set(counter.get().wrapping_add(n));
}

impl Counters {
    /// A run begins (twice `Instant::now()` per run, not per iteration).
    pub(crate) fn run_begins(&self) {
        self.run_started.set(Some(Instant::now()));
    }

    /// The run ends.
    pub(crate) fn run_ends(&self) {
        if let Some(started) = self.run_started.take() {
            self.ran.set(self.ran.get() + started.elapsed());
        }
    }

    /// Time spent in runs so far, the current one included.
    pub(crate) fn run_time(&self) -> Duration {
        let current = self
            .run_started
            .get()
            .map_or(Duration::ZERO, |s| s.elapsed());
        self.ran.get() + current
    }

    /// A blocking wait took `d`.
    pub(crate) fn parked_for(&self, d: Duration) {
        bump(&self.parks, 1);
        self.parked.set(self.parked.get() + d);
    }
}

/// Per-task poll statistics, kept in debug mode only (see `EventLoop::set_debug`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TaskStats {
    pub(crate) polls: u64,
    pub(crate) busy: Duration,
}
