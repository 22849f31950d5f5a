//! How to build your own runtime on evloop-core.
//!
//! `evloop_core::task::spawn(future, schedule)` turns a future into a [`Task`] handle (await it
//! for the output) and a [`Runnable`]: the right to poll the future once. A runtime is just a
//! place to keep runnables plus threads that run them:
//!
//! * the `schedule` function you pass to `spawn` is called with the task's `Runnable` every time
//!   the task is woken (from whichever thread wakes it) — push it onto your run queue;
//! * a worker pops a runnable and calls [`Runnable::run`], which polls the future once; if the
//!   future is woken again it comes back through `schedule`, never twice at a time;
//! * dropping a runnable instead of running it cancels the task.
//!
//! This example builds a small multi-threaded runtime that way: one global queue
//! (`Mutex<VecDeque<Runnable>>` + `Condvar`), a few worker threads and a `block_on` for the main
//! thread that parks until it is woken. It spawns 1000 tasks that each yield a few times, sums
//! their outputs and checks the result.
//!
//! Run it with `cargo run -p evloop-core --example custom_runtime`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};

use evloop_core::task::{Runnable, Task, spawn};

/// The run queue shared by the workers and by every task's schedule function.
#[derive(Default)]
struct Shared {
    state: Mutex<QueueState>,
    available: Condvar,
}

#[derive(Default)]
struct QueueState {
    runnables: VecDeque<Runnable>,
    shutdown: bool,
}

impl Shared {
    fn push(&self, runnable: Runnable) {
        let mut state = self.state.lock().expect("run queue poisoned");
        if state.shutdown {
            // Dropping the runnable cancels its task.
            return;
        }
        state.runnables.push_back(runnable);
        drop(state);
        self.available.notify_one();
    }

    /// Blocks until there is a runnable, or returns `None` at shutdown.
    fn pop(&self) -> Option<Runnable> {
        let mut state = self.state.lock().expect("run queue poisoned");
        loop {
            if state.shutdown {
                return None;
            }
            if let Some(r) = state.runnables.pop_front() {
                return Some(r);
            }
            state = self.available.wait(state).expect("run queue poisoned");
        }
    }
}

/// A fixed pool of worker threads running tasks from one shared queue.
struct Runtime {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Runtime {
    fn new(threads: usize) -> Runtime {
        let shared = Arc::new(Shared::default());
        let workers = (0..threads)
            .map(|i| {
                let shared = shared.clone();
                thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || {
                        while let Some(runnable) = shared.pop() {
                            // Polls the future once; panics inside it are caught and become
                            // `Err(JoinError::Panicked)` for whoever awaits the task.
                            runnable.run();
                        }
                    })
                    .expect("failed to start a worker thread")
            })
            .collect();
        Runtime { shared, workers }
    }

    /// Spawns a future onto the workers.
    fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = self.shared.clone();
        let (runnable, task) = spawn(future, move |r: Runnable| shared.push(r));
        // A new task is not queued yet: schedule it once to get it polled.
        runnable.schedule();
        task
    }

    /// Stops the workers; tasks still queued are cancelled (their runnables are dropped).
    fn shutdown(self) {
        let leftover = {
            let mut state = self.shared.state.lock().expect("run queue poisoned");
            state.shutdown = true;
            std::mem::take(&mut state.runnables)
        };
        self.shared.available.notify_all();
        for worker in self.workers {
            worker.join().expect("a worker thread panicked");
        }
        drop(leftover);
    }
}

/// Runs a future to completion on the current thread, parking while it is pending.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unparker(Thread);

    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // Spurious wake-ups only cost an extra poll.
        thread::park();
    }
}

/// Pending once (after waking itself), then ready: lets other tasks run.
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

fn main() {
    const TASKS: u64 = 1000;
    let rt = Runtime::new(4);

    let tasks: Vec<Task<u64>> = (0..TASKS)
        .map(|i| {
            rt.spawn(async move {
                for _ in 0..(1 + i % 4) {
                    yield_now().await;
                }
                i
            })
        })
        .collect();

    // Cancellation: a task that would wait forever ends as `Err(JoinError::Cancelled)`.
    let stuck = rt.spawn(std::future::pending::<()>());
    assert!(stuck.cancel());

    let (sum, cancelled) = block_on(async {
        let mut sum = 0;
        for task in tasks {
            sum += task.await.expect("a task failed");
        }
        let cancelled = stuck.await.is_err_and(|e| e.is_cancelled());
        (sum, cancelled)
    });

    println!("sum of {TASKS} task outputs: {sum}");
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    assert!(cancelled);

    rt.shutdown();
}
