//! Polling one task on the loop: its budget, its end (leaving the task table), a wake during
//! its own poll.

use std::borrow::Cow;

use evloop_reactor::coop;

use crate::loop_state::EventLoop;
use crate::task::{Runnable, Step};
use crate::work::Work;

impl EventLoop {
    /// Polls a task once; returns its name when `named` (debug mode).
    pub(super) fn step_task(&self, r: Runnable, named: bool) -> Cow<'static, str> {
        let (id, slot) = (r.id(), r.tag());
        let name = if named {
            r.task_ref().name().into()
        } else {
            "".into()
        };
        // Each poll gets a fresh co-operative budget of I/O operations: a task whose I/O is
        // always ready yields after DEFAULT_BUDGET of them instead of starving the loop.
        match coop::with_budget(coop::DEFAULT_BUDGET, || r.step()) {
            Step::Finished => {
                tracing::trace!(task = id.as_u64(), "task finished");
                self.forget_task(slot, id);
            }
            Step::Pending => {}
            // Woken during its own poll (e.g. `yield_now`): straight back onto the local queue.
            Step::Woken(r) => self.push_ready(Work::Task(r)),
        }
        name
    }
}
