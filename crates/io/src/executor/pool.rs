//! `ThreadPool`: the bounded, on-demand pool of threads behind the default executor.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long `shutdown_default_executor` waits for the pool's threads (asyncio's
/// `THREAD_JOIN_TIMEOUT`).
pub(super) const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(300);

/// The default idle time after which a pool thread exits.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// asyncio's default bound: `min(32, os.cpu_count() + 4)`.
fn default_max_threads() -> usize {
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    (cpus + 4).min(32)
}

pub(super) type Job = Box<dyn FnOnce() + Send + 'static>;

struct PoolState {
    queue: VecDeque<Job>,
    /// Live worker threads.
    threads: usize,
    /// Workers waiting for a job.
    idle: usize,
    shutdown: bool,
    handles: Vec<JoinHandle<()>>,
    /// Woken when the last thread of a shut-down pool exits.
    drained: Option<Waker>,
    next_thread: usize,
}

struct PoolInner {
    state: Mutex<PoolState>,
    /// Signals workers: a job was queued, or the pool shuts down.
    work: Condvar,
    /// Signals `shutdown`: a worker exited.
    exited: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
    thread_name: String,
}

/// A bounded pool of threads that runs blocking jobs for a loop: the default executor.
///
/// A cheap `Clone` handle. Get a loop's pool with [`RunInExecutor::default_executor`](super::RunInExecutor::default_executor), or
/// build one with [`ThreadPool::builder`] and install it with
/// [`RunInExecutor::set_default_executor`](super::RunInExecutor::set_default_executor).
///
/// ```
/// use evloop_io::RunInExecutor;
///
/// let lp = evloop_core::EventLoop::new()?;
/// let pool = evloop_io::executor::ThreadPool::builder().max_threads(2).build();
/// lp.set_default_executor(pool.clone());
/// let sum = lp.run_until_complete(lp.run_in_executor(|| (1..=10).sum::<u32>()))?;
/// assert_eq!(sum.unwrap(), 55);
/// assert!(pool.num_threads() <= 2);
/// # Ok::<(), evloop_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    inner: Arc<PoolInner>,
}

/// Configures a [`ThreadPool`].
#[derive(Debug, Clone)]
pub struct ThreadPoolBuilder {
    max_threads: usize,
    idle_timeout: Duration,
    thread_name: String,
}

impl ThreadPoolBuilder {
    /// The most threads the pool runs at once (at least 1). Default
    /// `min(32, available_parallelism + 4)`.
    pub fn max_threads(mut self, n: usize) -> ThreadPoolBuilder {
        self.max_threads = n.max(1);
        self
    }

    /// How long a thread waits for a job before it exits. Default 10 s. `Duration::MAX` (or any
    /// duration too long for `Instant`) means threads never retire while the pool is up; they
    /// still exit promptly when it shuts down.
    pub fn idle_timeout(mut self, d: Duration) -> ThreadPoolBuilder {
        self.idle_timeout = d;
        self
    }

    /// The threads' name prefix (`NAME-N`). Default `evloop-executor`.
    pub fn thread_name(mut self, name: impl Into<String>) -> ThreadPoolBuilder {
        self.thread_name = name.into();
        self
    }

    /// The pool. It has no threads until it gets work.
    pub fn build(self) -> ThreadPool {
        ThreadPool {
            inner: Arc::new(PoolInner {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                    handles: Vec::new(),
                    drained: None,
                    next_thread: 0,
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                max_threads: self.max_threads,
                idle_timeout: self.idle_timeout,
                thread_name: self.thread_name,
            }),
        }
    }
}

impl Default for ThreadPoolBuilder {
    fn default() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            max_threads: default_max_threads(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            thread_name: "evloop-executor".to_string(),
        }
    }
}

impl ThreadPool {
    /// A pool with the default settings.
    pub fn new() -> ThreadPool {
        ThreadPool::builder().build()
    }

    /// Configures a pool.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The bound on the number of threads.
    pub fn max_threads(&self) -> usize {
        self.inner.max_threads
    }

    /// How long an idle thread lives.
    pub fn idle_timeout(&self) -> Duration {
        self.inner.idle_timeout
    }

    /// The number of live threads right now.
    pub fn num_threads(&self) -> usize {
        lock(&self.inner.state).threads
    }

    /// The number of jobs waiting for a thread.
    pub fn queued_jobs(&self) -> usize {
        lock(&self.inner.state).queue.len()
    }

    /// True once the pool was shut down (it runs no new jobs).
    pub fn is_shutdown(&self) -> bool {
        lock(&self.inner.state).shutdown
    }

    /// Queues `job`; `Err(job)` if the pool is shut down.
    pub(super) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut state = lock(&self.inner.state);
        if state.shutdown {
            return Err(job);
        }
        state.queue.push_back(job);
        let mut unrunnable = VecDeque::new();
        if state.idle >= state.queue.len() {
            // Enough idle threads for every queued job: wake one.
            self.inner.work.notify_one();
        } else if state.threads < self.inner.max_threads {
            unrunnable = self.spawn_thread(&mut state);
        } else if state.queue.len() == state.idle + 1 {
            // Every thread is busy and the pool may not grow: the job waits for the first one
            // to finish. Reported once per saturation (when the first job has to wait), not
            // for every job queued behind it.
            tracing::debug!(
                threads = state.threads,
                max_threads = self.inner.max_threads,
                "the default executor is saturated: jobs wait for a thread"
            );
        }
        drop(state);
        // Dropped outside the lock: dropping a job runs user destructors and wakes its task.
        drop(unrunnable);
        Ok(())
    }

    /// Starts a worker. If that fails and the pool has no thread at all, returns the queued
    /// jobs, which nobody can run: dropping them resolves their tasks as cancelled.
    fn spawn_thread(&self, state: &mut PoolState) -> VecDeque<Job> {
        let n = state.next_thread;
        state.next_thread += 1;
        let inner = self.inner.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-{n}", self.inner.thread_name))
            .spawn(move || worker(&inner));
        match spawned {
            Ok(handle) => {
                state.threads += 1;
                // Forget the handles of threads that retired (dropping one detaches a thread
                // that has already finished).
                state.handles.retain(|h| !h.is_finished());
                state.handles.push(handle);
                VecDeque::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "the default executor failed to start a thread");
                if state.threads == 0 {
                    std::mem::take(&mut state.queue)
                } else {
                    VecDeque::new()
                }
            }
        }
    }

    /// Stops taking jobs; the threads finish the queued and running ones, then exit.
    pub(super) fn begin_shutdown(&self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.work.notify_all();
    }

    /// Waits (on the loop) until every thread has exited.
    pub(super) async fn drained(&self) {
        poll_fn(|cx| {
            let mut state = lock(&self.inner.state);
            if state.threads == 0 {
                Poll::Ready(())
            } else {
                state.drained = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    /// Blocks until every thread has exited (at most until `deadline`, `timeout` from when the
    /// shutdown began), then joins them. Threads still running at the deadline are detached.
    pub(super) fn join(&self, deadline: Instant, timeout: Duration) {
        let mut state = lock(&self.inner.state);
        while state.threads > 0 {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    threads = state.threads,
                    "the default executor did not finish joining its threads within {} seconds",
                    timeout.as_secs_f64()
                );
                return;
            }
            state = self
                .inner
                .exited
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let handles = std::mem::take(&mut state.handles);
        drop(state);
        for handle in handles {
            // Every worker catches its jobs' panics, so a join error cannot happen; if it
            // did, the thread is gone either way.
            let _ = handle.join();
        }
    }
}

impl Default for ThreadPool {
    fn default() -> ThreadPool {
        ThreadPool::new()
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("ThreadPool")
            .field("threads", &state.threads)
            .field("max_threads", &self.inner.max_threads)
            .field("queued", &state.queue.len())
            .field("shutdown", &state.shutdown)
            .finish()
    }
}

/// A pool thread: runs jobs until it has been idle for `idle_timeout`, or the pool shuts down
/// and the queue is empty.
fn worker(inner: &PoolInner) {
    let _exit = WorkerExit(inner);
    let mut state = lock(&inner.state);
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            // Jobs catch their own panics (see `run_job`); this is a second line of defence
            // so that a worker never dies with the count still counting it.
            let _ = catch_unwind(AssertUnwindSafe(job));
            state = lock(&inner.state);
            continue;
        }
        if state.shutdown {
            break;
        }
        // Idle: wait for work until the idle deadline (spurious wake-ups keep the deadline). An
        // idle timeout too long for `Instant` (`Duration::MAX`) means "never retire".
        let deadline = Instant::now().checked_add(inner.idle_timeout);
        let mut timed_out = false;
        state.idle += 1;
        while state.queue.is_empty() && !state.shutdown {
            let Some(deadline) = deadline else {
                state = inner
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            state = inner
                .work
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.idle -= 1;
        if timed_out {
            break;
        }
    }
    drop(state);
}

/// Uncounts a worker thread when it ends — even by a panic outside its jobs, so that a
/// shutdown never waits for a thread that is gone.
struct WorkerExit<'a>(&'a PoolInner);

impl Drop for WorkerExit<'_> {
    fn drop(&mut self) {
        let inner = self.0;
        let mut state = lock(&inner.state);
        state.threads -= 1;
        let drained = if state.threads == 0 {
            state.drained.take()
        } else {
            None
        };
        drop(state);
        inner.exited.notify_all();
        if let Some(w) = drained {
            w.wake();
        }
    }
}
