//! The default executor: a per-loop pool of threads for blocking work (asyncio's
//! `run_in_executor(None, ...)` and `to_thread`).
//!
//! Each loop gets its own [`ThreadPool`] the first time it is used. The pool is bounded (by
//! default `min(32, available_parallelism + 4)` threads, as asyncio's), creates its threads on
//! demand and retires a thread after it has been idle for a while (10 s by default). The
//! result of a job comes back to the loop as a [`Task`]; a panic in the job comes back as
//! `Err(JoinError::Panicked)`.
//!
//! `evloop::run` shuts the pool down when its main future is done (queued and running jobs
//! finish, the threads are joined); closing a loop shuts its pool down without waiting.

mod pool;

use std::future::{pending, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::thread::{self};

use evloop_core::task::{Runnable, Schedule};
use evloop_core::{EventLoop, ExceptionContext, LoopHandle, Task, TaskId, TaskRef};

use pool::{Job, SHUTDOWN_TIMEOUT, lock};
pub use pool::{ThreadPool, ThreadPoolBuilder};

/// The loop's default executor (the loop extension). Replaceable, so it is a cell.
struct ExecutorSlot {
    pool: std::cell::RefCell<Option<ThreadPool>>,
}

impl ExecutorSlot {
    fn of(lp: &EventLoop) -> Rc<ExecutorSlot> {
        lp.extension(|| ExecutorSlot {
            pool: std::cell::RefCell::new(None),
        })
    }

    fn pool(&self) -> ThreadPool {
        self.pool
            .borrow_mut()
            .get_or_insert_with(ThreadPool::new)
            .clone()
    }
}

impl Drop for ExecutorSlot {
    /// The loop closes: the pool stops taking jobs and its threads exit once the queue is
    /// done, but nobody waits for them (asyncio's `shutdown(wait=False)` in `close()`).
    fn drop(&mut self) {
        if let Some(pool) = self.pool.get_mut().take() {
            pool.begin_shutdown();
        }
    }
}

/// Shuts the loop's default executor down (asyncio's `loop.shutdown_default_executor()`): it
/// stops accepting jobs (later ones resolve as cancelled), the queued and running jobs finish,
/// and the threads are joined. If the loop is not running, it runs meanwhile, so jobs that
/// need the loop can finish. Gives up waiting after 300 s (asyncio's `THREAD_JOIN_TIMEOUT`,
/// what `asyncio.run` passes), with a warning; see [`shutdown_default_executor_timeout`] for
/// another limit. No-op if the loop never had an executor. `evloop::run` and
/// `Runner::close` call it after cancelling the loop's tasks; a runtime of your own can call
/// it the same way before closing a loop.
///
/// ```
/// use evloop_core::EventLoop;
/// use evloop_io::executor::{RunInExecutor, shutdown_default_executor};
///
/// let lp = EventLoop::new()?;
/// let job = lp.run_in_executor(|| 6 * 7);
/// shutdown_default_executor(&lp); // the job finishes first
/// assert_eq!(lp.run_until_complete(job)?.unwrap(), 42);
/// // Later jobs are refused: their task is cancelled.
/// let late = lp.run_in_executor(|| ());
/// assert!(lp.run_until_complete(late)?.unwrap_err().is_cancelled());
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn shutdown_default_executor(lp: &EventLoop) {
    shutdown_default_executor_timeout(lp, SHUTDOWN_TIMEOUT);
}

/// [`shutdown_default_executor`] that gives up waiting for the pool's threads after `timeout`
/// (asyncio's `loop.shutdown_default_executor(timeout)`; `Duration::MAX` waits for as long as
/// it takes, as asyncio's `timeout=None`). Threads still running then are detached, with a
/// warning ("the default executor did not finish joining its threads within N seconds").
///
/// ```
/// use std::time::Duration;
/// use evloop_core::EventLoop;
/// use evloop_io::executor::{RunInExecutor, shutdown_default_executor_timeout};
///
/// let lp = EventLoop::new()?;
/// let job = lp.run_in_executor(|| "done");
/// shutdown_default_executor_timeout(&lp, Duration::from_secs(10));
/// assert_eq!(lp.run_until_complete(job)?.unwrap(), "done");
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn shutdown_default_executor_timeout(lp: &EventLoop, timeout: std::time::Duration) {
    let Some(slot) = lp.find_extension::<ExecutorSlot>() else {
        return;
    };
    let pool = slot.pool.borrow().clone();
    let Some(pool) = pool else { return };
    pool.begin_shutdown();
    let deadline = evloop_core::deadline_after(timeout);
    if !lp.is_running() && !lp.is_closed() {
        let waited = lp.run_until_complete(crate::time::timeout_at(deadline, pool.drained()));
        if let Err(e) = waited {
            tracing::debug!(error = %e, "could not run the loop while the default executor shut down");
        }
    }
    pool.join(deadline, timeout);
}

/// Where a job's outcome meets the task awaiting it.
struct Slot<T> {
    result: Option<thread::Result<T>>,
    waker: Option<Waker>,
    /// The job was dropped without running (its pool shut down or failed).
    abandoned: bool,
    /// The task was cancelled: the job need not run.
    cancelled: bool,
}

/// The job's end of the slot: dropping it unfilled marks the job abandoned.
struct Completer<T> {
    slot: Arc<Mutex<Slot<T>>>,
    /// Where a panicking destructor of the job's closure or unread result is reported.
    handle: LoopHandle,
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = lock(&self.slot);
            if slot.result.is_none() {
                slot.abandoned = true;
            }
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The task's end of the slot: dropping it (the task was cancelled) tells the job not to run.
struct Receiver<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Drop for Receiver<T> {
    /// A result that arrived but was never read is dropped here, on the loop, inside the
    /// task's future (whose panicking destructor the task core reports), not with the slot,
    /// which may go last on a pool thread.
    fn drop(&mut self) {
        let unread = {
            let mut slot = lock(&self.slot);
            slot.cancelled = true;
            slot.result.take()
        };
        drop(unread);
    }
}

/// Where an executor task's runnables go: onto its loop, as `call_soon_threadsafe` callbacks.
///
/// An executor task is not one of the loop's tasks (`all_tasks`, and so `evloop::run`'s final
/// cancellation, do not see it), just as asyncio's `run_in_executor` returns a future, not a
/// task: the job's outcome still reaches the loop when the executor is shut down.
struct OnLoop {
    handle: LoopHandle,
}

impl Schedule for OnLoop {
    fn schedule(&self, runnable: Runnable) {
        // On a closed loop the callback (and the runnable in it) is dropped: that cancels the
        // task.
        let _ = self.handle.call_soon_threadsafe(move || {
            runnable.run();
        });
    }

    fn unhandled_panic(&self, task: TaskRef, payload: Box<dyn std::any::Any + Send>) {
        let ctx = ExceptionContext::new("Future exception was never retrieved")
            .with_task(task)
            .with_panic(payload);
        report_to(&self.handle, ctx);
    }

    fn destructor_panicked(&self, task: TaskId, payload: Box<dyn std::any::Any + Send>) {
        let ctx = ExceptionContext::new(format!(
            "Task-{task}'s future or output panicked while being dropped"
        ))
        .with_panic(payload);
        report_to(&self.handle, ctx);
    }
}

/// Hands `ctx` to the exception handler of `handle`'s loop, from any thread (through
/// `call_soon_threadsafe`). If that loop is closed, or closes before the report's turn comes
/// (`close` drops queued callbacks unrun), the report is logged instead of lost.
fn report_to(handle: &LoopHandle, ctx: ExceptionContext) {
    let report = InFlight(Some(ctx));
    let _ = handle.call_soon_threadsafe(move || {
        let mut report = report;
        if let (Some(lp), Some(ctx)) = (evloop_core::running_loop(), report.0.take()) {
            lp.call_exception_handler(ctx);
        }
    });
}

/// A report on its way to a loop: dropped undelivered, it logs itself.
struct InFlight(Option<ExceptionContext>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(ctx) = self.0.take() {
            tracing::error!(
                panic = ?ctx.panic_message(),
                "{} (in a job of a closed loop)",
                ctx.message()
            );
        }
    }
}

fn job_destructor_panic(payload: Box<dyn std::any::Any + Send>) -> ExceptionContext {
    ExceptionContext::new("Exception in the destructor of a run_in_executor job")
        .with_panic(payload)
}

/// Drops part of a job (its closure, its unread result) off the loop: a panicking
/// destructor is reported to the loop instead of being lost on the pool thread.
fn drop_reported<V>(handle: &LoopHandle, value: V) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        report_to(handle, job_destructor_panic(payload));
    }
}

/// Drops a job the executor refused, on the loop's thread: a panicking destructor goes to
/// the handler instead of unwinding into the caller of `run_in_executor`.
fn drop_refused<V>(lp: &EventLoop, value: V) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        lp.call_exception_handler(job_destructor_panic(payload));
    }
}

fn run_in_pool<T, F>(lp: &EventLoop, pool: &ThreadPool, f: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
        abandoned: false,
        cancelled: false,
    }));
    let completer = Completer {
        slot: slot.clone(),
        handle: lp.handle(),
    };
    let receiver = Receiver { slot };
    // The task's own view, so it can cancel itself if the job is abandoned.
    let me: Arc<OnceLock<TaskRef>> = Arc::default();
    let me_inside = me.clone();
    let waiting = async move {
        let outcome = poll_fn(|cx| {
            let mut slot = lock(&receiver.slot);
            if let Some(result) = slot.result.take() {
                Poll::Ready(Some(result))
            } else if slot.abandoned {
                Poll::Ready(None)
            } else {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        })
        .await;
        match outcome {
            Some(Ok(value)) => value,
            // Re-raised in the task, so the core stores it as `JoinError::Panicked(payload)`
            // (resume_unwind does not run the panic hook a second time).
            Some(Err(payload)) => resume_unwind(payload),
            None => {
                if let Some(me) = me_inside.get() {
                    me.cancel();
                }
                pending().await
            }
        }
    };
    let (runnable, task) = evloop_core::task::spawn(
        waiting,
        OnLoop {
            handle: lp.handle(),
        },
    );
    if lp.is_closed() {
        drop(runnable); // cancels the task
        drop_refused(lp, (completer, f));
        return task;
    }
    let _ = me.set(task.as_ref());
    let job: Job = Box::new(move || run_job(completer, f));
    if let Err(job) = pool.submit(job) {
        drop(runnable);
        drop_refused(lp, job);
        return task;
    }
    // The first poll (on the loop) registers the task's waker with the slot.
    runnable.schedule();
    task
}

/// Runs `f` on a pool thread unless its task was cancelled meanwhile, and hands the outcome
/// back (waking the task, which wakes its loop).
fn run_job<T, F: FnOnce() -> T>(completer: Completer<T>, f: F) {
    if lock(&completer.slot).cancelled {
        drop_reported(&completer.handle, f);
        return;
    }
    let result = catch_unwind(AssertUnwindSafe(f));
    let (waker, unread) = {
        let mut slot = lock(&completer.slot);
        if slot.cancelled {
            // Cancelled while it ran: nobody will read the result.
            (None, Some(result))
        } else {
            slot.result = Some(result);
            (slot.waker.take(), None)
        }
    };
    drop_reported(&completer.handle, unread);
    if let Some(w) = waker {
        w.wake();
    }
}

/// `run_in_executor` and the default executor on [`EventLoop`] (asyncio's
/// `loop.run_in_executor(None, f)` and `loop.set_default_executor`).
///
/// ```
/// use evloop_io::RunInExecutor;
///
/// let lp = evloop_core::EventLoop::new()?;
/// let task = lp.run_in_executor(|| std::thread::current().name().map(str::to_owned));
/// let name = lp.run_until_complete(task)?.unwrap();
/// assert!(name.unwrap().starts_with("evloop-executor-"));
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub trait RunInExecutor {
    /// Runs `f` on the loop's default executor and returns a task (of this loop) that
    /// resolves to its result; a panic in `f` resolves it to `Err(JoinError::Panicked)`.
    ///
    /// Cancelling the task before `f` started means `f` never runs; once it runs, it runs to
    /// the end (a thread cannot be interrupted) and its result is dropped. After the executor
    /// was shut down (or the loop closed) the task is cancelled at once. A closure dropped
    /// unrun or a result dropped unread whose destructor panics is reported to the loop's
    /// exception handler ("Exception in the destructor of a run_in_executor job"; logged if
    /// the loop is closed by then), never unwound into the caller.
    fn run_in_executor<T, F>(&self, f: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// The loop's default executor (created on first use).
    fn default_executor(&self) -> ThreadPool;

    /// Replaces the loop's default executor. The old one stops taking jobs (those it has run
    /// to the end). The loop shuts `pool` down when it closes, even if other loops use it too.
    fn set_default_executor(&self, pool: ThreadPool);
}

impl RunInExecutor for EventLoop {
    fn run_in_executor<T, F>(&self, f: F) -> Task<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = if self.is_closed() {
            // No extension on a closed loop (it would never be dropped); a task created on a
            // closed loop is cancelled at once anyway.
            ThreadPool::new()
        } else {
            ExecutorSlot::of(self).pool()
        };
        run_in_pool(self, &pool, f)
    }

    fn default_executor(&self) -> ThreadPool {
        ExecutorSlot::of(self).pool()
    }

    fn set_default_executor(&self, pool: ThreadPool) {
        let old = ExecutorSlot::of(self).pool.replace(Some(pool));
        if let Some(old) = old {
            old.begin_shutdown();
        }
    }
}

/// Runs the blocking `f` on a thread of the running loop's default executor (asyncio's
/// `to_thread`); await the returned task for its result.
///
/// A panic in `f` comes back as `Err(JoinError::Panicked)`. See
/// [`RunInExecutor::run_in_executor`] for cancellation.
///
/// # Panics
///
/// Panics outside a running event loop ("no running event loop"), like `spawn`.
///
/// ```
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let len = evloop_io::to_thread(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0));
///     println!("{} entries", len.await.unwrap());
///     let boom = evloop_io::to_thread(|| panic!("in a thread"));
///     assert!(boom.await.unwrap_err().is_panic());
/// })?;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn to_thread<T, F>(f: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match evloop_core::running_loop() {
        Some(lp) => lp.run_in_executor(f),
        None => {
            panic!("no running event loop (evloop::to_thread must be called on a running loop)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn shutdown_lets_queued_jobs_finish_and_joins_the_threads() -> Result<(), evloop_core::Error> {
        static EXITED: AtomicUsize = AtomicUsize::new(0);
        struct OnExit;
        impl Drop for OnExit {
            fn drop(&mut self) {
                EXITED.fetch_add(1, Ordering::SeqCst);
            }
        }
        thread_local!(static EXIT_MARK: OnExit = const { OnExit });

        let lp = EventLoop::new()?;
        lp.set_default_executor(ThreadPool::builder().max_threads(2).build());
        let done = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<Task<thread::ThreadId>> = (0..8)
            .map(|_| {
                let done = done.clone();
                lp.run_in_executor(move || {
                    EXIT_MARK.with(|_| {});
                    thread::sleep(Duration::from_millis(5)); // blocking work
                    done.fetch_add(1, Ordering::SeqCst);
                    thread::current().id()
                })
            })
            .collect();
        let pool = lp.default_executor();
        shutdown_default_executor(&lp);
        assert_eq!(done.load(Ordering::SeqCst), 8, "queued jobs ran");
        assert_eq!(pool.num_threads(), 0);
        assert!(pool.is_shutdown());
        // The tasks were delivered on the loop while it ran during the shutdown.
        assert!(tasks.iter().all(Task::is_done));
        let mut workers = Vec::new();
        for task in tasks {
            let id = lp.run_until_complete(task)?.expect("job");
            if !workers.contains(&id) {
                workers.push(id);
            }
        }
        assert!(workers.len() <= 2);
        // Joined: the threads' thread-locals were destroyed before shutdown returned.
        assert_eq!(EXITED.load(Ordering::SeqCst), workers.len());
        // Later jobs are refused: their tasks are cancelled.
        let late = lp.run_in_executor(|| 1);
        assert!(
            lp.run_until_complete(late)?
                .expect_err("refused")
                .is_cancelled()
        );
        lp.close()
    }

    #[test]
    fn shutdown_without_executor_is_a_no_op() -> Result<(), evloop_core::Error> {
        let lp = EventLoop::new()?;
        shutdown_default_executor(&lp);
        assert!(lp.find_extension::<ExecutorSlot>().is_none());
        lp.close()
    }

    #[test]
    fn close_shuts_the_pool_down_without_waiting() -> Result<(), evloop_core::Error> {
        let lp = EventLoop::new()?;
        let pool = lp.default_executor();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let task = lp.run_in_executor(move || rx.recv().is_ok());
        // One iteration: the task waits for its job.
        lp.stop();
        lp.run_forever()?;
        assert!(!task.is_done());
        lp.close()?; // must not block on the running job
        assert!(pool.is_shutdown());
        drop(tx); // let the job end: its outcome cannot reach the closed loop
        assert!(task.join_blocking().expect_err("cancelled").is_cancelled());
        Ok(())
    }
}
