//! [`EventLoop::dump_tasks`]: every live task of a loop, what it is doing and what it waits for.
//!
//! What a task waits for is recorded cheaply as it happens: when a `Task` or `TaskRef` future
//! returns `Pending` inside a task's poll, the task core notes the pair (awaiter, awaited) in a
//! thread-local, and the loop moves it into the awaiter's task-table slot after the step
//! (`event_loop/step.rs`); the next step overwrites it. Nothing else is recorded: a task
//! waiting on a sleep, a socket or a channel shows no awaited task.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::loop_state::EventLoop;
use crate::task::TaskId;

/// What a task is doing at the moment of a [`TaskDump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Being polled right now (the dump was taken from inside it, or from something it runs).
    Running,
    /// Woken: its next step waits in the loop's queues.
    Scheduled,
    /// Waiting for a wake.
    Idle,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Idle => "idle",
        })
    }
}

/// One task of a [`TaskDump`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// Its name (`Task-N` unless one was set).
    pub name: String,
    /// What it is doing.
    pub state: TaskState,
    /// Where it was created (the `create_task`/`spawn`/`LoopHandle::spawn` call; for a run's
    /// main task, the `run_until_complete`/`evloop::run` call); `None` where the creator did
    /// not say (a task made with the raw `task::spawn_local` and registered by hand).
    pub spawned_at: Option<&'static Location<'static>>,
    /// The task its latest poll left it waiting for (a `Task` or `TaskRef` it awaits), if any;
    /// of several awaited at once (a `gather`), the last one polled. A task that woke itself
    /// during its poll (`yield_now`) keeps what it awaited before.
    pub awaiting: Option<TaskId>,
    /// Polls of the task since debug mode was on (`None` outside debug mode).
    pub polls: Option<u64>,
    /// Time spent polling it since debug mode was on (`None` outside debug mode).
    pub busy: Option<Duration>,
}

/// A snapshot of a loop's live tasks, from [`EventLoop::dump_tasks`]; its `Display` is the
/// human-readable dump (one line per task, then the chain of tasks it awaits).
#[derive(Clone, Debug, Default)]
pub struct TaskDump {
    tasks: Vec<TaskInfo>,
}

impl TaskDump {
    /// The tasks, in creation order.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// The task `id`, if it is in the dump.
    pub fn get(&self, id: TaskId) -> Option<&TaskInfo> {
        self.tasks
            .binary_search_by_key(&id, |t| t.id)
            .ok()
            .map(|i| &self.tasks[i])
    }

    /// The chain of tasks `id` waits on: the task it awaits, the one that one awaits, and so
    /// on, until a task that awaits none (or one not in the dump, which ends the chain too). A
    /// cycle is cut where it closes.
    pub fn chain(&self, id: TaskId) -> Vec<TaskId> {
        let mut chain = Vec::new();
        let mut at = self.get(id).and_then(|t| t.awaiting);
        while let Some(next) = at {
            if next == id || chain.contains(&next) {
                break;
            }
            chain.push(next);
            at = self.get(next).and_then(|t| t.awaiting);
        }
        chain
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} live task(s)", self.tasks.len())?;
        for t in &self.tasks {
            write!(f, "{} (id {}) {}", t.name, t.id, t.state)?;
            if let Some(at) = t.spawned_at {
                write!(f, ", spawned at {at}")?;
            }
            if let (Some(polls), Some(busy)) = (t.polls, t.busy) {
                write!(f, ", {polls} polls, busy {:.6}s", busy.as_secs_f64())?;
            }
            writeln!(f)?;
            let chain = self.chain(t.id);
            if !chain.is_empty() {
                f.write_str("    awaiting")?;
                for (i, id) in chain.iter().enumerate() {
                    let sep = if i == 0 { " " } else { " -> " };
                    match self.get(*id) {
                        Some(a) => write!(f, "{sep}{} (id {})", a.name, a.id)?,
                        None => write!(f, "{sep}id {id}")?,
                    }
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl EventLoop {
    /// Every live task of the loop (asyncio's `all_tasks()`, with what each is doing): its id,
    /// name, state, spawn location and the chain of tasks it awaits; in debug mode also its
    /// poll count and busy time. Cheap enough to call on demand (it walks the task table),
    /// from any code on the loop's thread — a signal handler among it:
    ///
    /// ```
    /// use evloop_core::{EventLoop, TaskState};
    ///
    /// let lp = EventLoop::new()?;
    /// let probe = lp.clone();
    /// let dump = lp.run_until_complete(async move {
    ///     let inner = probe.create_task(std::future::pending::<()>());
    ///     let inner_id = inner.id();
    ///     let outer = probe.create_task(inner);
    ///     evloop_core::yield_now().await; // both start: outer now awaits inner
    ///     let dump = probe.dump_tasks();
    ///     assert_eq!(dump.get(outer.id()).unwrap().awaiting, Some(inner_id));
    ///     assert_eq!(dump.get(inner_id).unwrap().state, TaskState::Idle);
    ///     outer.cancel();
    ///     dump
    /// })?;
    /// assert_eq!(dump.tasks().len(), 3); // the main task, outer and inner
    /// println!("{dump}");
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn dump_tasks(&self) -> TaskDump {
        let stats = self.inner.task_stats.borrow();
        let debug = self.get_debug();
        // The main task's work is polled outside its own future (see `main_task.rs`): while it
        // runs, it is running by being this thread's current task.
        let current = crate::task::current().map(|t| t.id());
        let mut tasks: Vec<TaskInfo> = self
            .inner
            .tasks
            .borrow()
            .iter_info()
            .filter(|(t, _)| !t.is_done())
            .map(|(t, info)| {
                let id = t.id();
                let state = match t.activity() {
                    _ if current == Some(id) => TaskState::Running,
                    (true, _) => TaskState::Running,
                    (false, true) => TaskState::Scheduled,
                    (false, false) => TaskState::Idle,
                };
                let s = debug.then(|| stats.get(&id).copied().unwrap_or_default());
                TaskInfo {
                    id,
                    name: t.name(),
                    state,
                    spawned_at: info.location,
                    awaiting: info.awaiting,
                    polls: s.map(|s| s.polls),
                    busy: s.map(|s| s.busy),
                }
            })
            .collect();
        tasks.sort_by_key(|t| t.id);
        TaskDump { tasks }
    }
}
