//! Polling one task on the loop: its budget, its end (leaving the task table), a wake during
//! its own poll, and what the loop records of the poll (the metrics, what the task now waits
//! for, and in debug mode the task's poll count and busy time).

use std::borrow::Cow;
use std::time::Instant;

use evloop_reactor::coop;

use crate::loop_state::EventLoop;
use crate::metrics::bump;
use crate::task::{self, Runnable, Step, TaskId};
use crate::work::Work;

impl EventLoop {
    /// Polls a task once; returns its name when `named` (debug mode), and then also counts the
    /// poll and its duration in the task's statistics.
    #[inline]
    pub(super) fn step_task(&self, r: Runnable, named: bool) -> Cow<'static, str> {
        if named {
            self.step_timed(r).into()
        } else {
            self.step(r);
            "".into()
        }
    }

    /// `step`, timed into the task's statistics (debug mode); returns the task's name.
    #[cold]
    fn step_timed(&self, r: Runnable) -> String {
        let id = r.id();
        let name = r.task_ref().name();
        let started = Instant::now();
        if self.step(r) {
            let took = started.elapsed();
            let mut stats = self.inner.task_stats.borrow_mut();
            let entry = stats.entry(id).or_default();
            entry.polls += 1;
            entry.busy += took;
        }
        name
    }

    /// Polls a task once; false if it ended.
    #[inline]
    fn step(&self, r: Runnable) -> bool {
        let (id, slot) = (r.id(), r.tag());
        // Each poll gets a fresh co-operative budget of I/O operations: a task whose I/O is
        // always ready yields after DEFAULT_BUDGET of them instead of starving the loop.
        let step = coop::with_budget(coop::DEFAULT_BUDGET, || r.step());
        let inner = &*self.inner;
        bump(&inner.counters.task_polls, 1);
        match step {
            Step::Finished => {
                self.forget_task(slot, id);
                return false;
            }
            Step::Pending => self.record_awaiting(slot, id),
            // Woken during its own poll (e.g. `yield_now`): straight back onto the local queue.
            // (It shows as scheduled in a dump; its next step records what it awaits.)
            Step::Woken(r) => self.push_ready(Work::Task(r)),
        }
        true
    }

    /// After a poll that left the task `id` (at `slot` in the task table) pending: records
    /// what it now waits for (a `Task`/`TaskRef` it awaits), for the task dump; the table entry
    /// is only written when that changes.
    #[inline]
    pub(super) fn record_awaiting(&self, slot: u32, id: TaskId) {
        let awaited = task::take_awaited(id);
        self.inner
            .tasks
            .borrow_mut()
            .set_awaiting(slot, id, awaited);
    }
}
