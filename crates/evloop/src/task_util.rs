//! Waiting for many things at once: [`gather`] (asyncio's `gather`) and [`wait`] (asyncio's
//! `wait`).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use evloop_core::{JoinError, Task, TaskRef};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs all `futures` concurrently and returns their outputs **in input order** (asyncio's
/// `gather`).
///
/// The futures run inside the task that awaits `gather` (they are not spawned as tasks, so
/// they need not be `'static`). Each one gets its own waker, and a wake-up polls only the
/// futures that were woken, so gathering many futures costs per wake-up, not per future.
/// A panic in one of them propagates out of `gather` (and drops the others).
///
/// For asyncio's `return_exceptions=True`, gather [`Task`]s: each output is then a
/// `Result<T, JoinError>`, and a panicking task does not disturb the others.
///
/// ```
/// use std::time::Duration;
///
/// evloop::run(async {
///     let delays = [30, 10, 20];
///     let out = evloop::gather(delays.iter().map(|&ms| async move {
///         evloop::sleep(Duration::from_millis(ms)).await;
///         ms
///     }))
///     .await;
///     assert_eq!(out, vec![30, 10, 20]); // input order, not completion order
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub async fn gather<I, F>(futures: I) -> Vec<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future,
{
    let mut children: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = children.iter().map(|_| None).collect();
    let shared = Arc::new(GatherShared {
        // At first every future is due for a poll.
        woken: Mutex::new((0..children.len()).collect()),
        parent: Mutex::new(None),
    });
    let wakers: Vec<Arc<ChildWaker>> = (0..children.len())
        .map(|index| {
            Arc::new(ChildWaker {
                index,
                queued: AtomicBool::new(true),
                shared: shared.clone(),
            })
        })
        .collect();
    let mut remaining = children.len();
    let mut batch = Vec::new();

    poll_fn(|cx| {
        {
            let mut parent = lock(&shared.parent);
            match &*parent {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *parent = Some(cx.waker().clone()),
            }
        }
        // Only the futures woken so far: one woken again while we poll waits for our next
        // poll (its wake-up reschedules us), so a future that always wakes itself cannot
        // starve the loop.
        std::mem::swap(&mut batch, &mut *lock(&shared.woken));
        for index in batch.drain(..) {
            let (Some(slot), Some(waker)) = (children.get_mut(index), wakers.get(index)) else {
                continue;
            };
            let Some(child) = slot.as_mut() else { continue };
            waker.queued.store(false, Ordering::Release);
            let child_waker = Waker::from(waker.clone());
            let mut child_cx = Context::from_waker(&child_waker);
            if let Poll::Ready(out) = child.as_mut().poll(&mut child_cx) {
                *slot = None;
                if let Some(o) = outputs.get_mut(index) {
                    *o = Some(out);
                }
                remaining -= 1;
            }
        }
        if remaining == 0 {
            Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The state the child wakers of one `gather` share.
struct GatherShared {
    /// Indices of the futures woken since the last poll.
    woken: Mutex<Vec<usize>>,
    /// The waker of the task that awaits `gather`.
    parent: Mutex<Option<Waker>>,
}

struct ChildWaker {
    index: usize,
    /// Already in `woken` (one entry per wake-up burst).
    queued: AtomicBool,
    shared: Arc<GatherShared>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.shared.woken).push(self.index);
        let parent = lock(&self.shared.parent).clone();
        if let Some(w) = parent {
            w.wake();
        }
    }
}

/// When [`wait`] returns (asyncio's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as at least one task has ended (completed, panicked or was cancelled).
    FirstCompleted,
    /// As soon as a task has ended by panicking (Rust's exception; a task whose output is an
    /// `Err` value completed normally); if none panics, when all have ended.
    FirstException,
    /// When every task has ended.
    AllCompleted,
}

/// Waits for `tasks` until `return_when` holds, and returns them split into
/// `(done, pending)`, each in input order (asyncio's `wait`).
///
/// Nothing is cancelled and no output is consumed: await the done tasks for their outputs
/// (they are ready at once), and keep, await or cancel the pending ones. With no tasks it
/// returns at once.
///
/// As asyncio, the split is made when the waiting task resumes, and every task done by then is
/// in `done` (with `FirstCompleted` that may be more than one); the waiting task resumes when
/// asyncio's would, one turn of the ready queue after the end that satisfies `return_when`
/// (asyncio's done callback, then its waiter future). If `return_when` holds on the first
/// poll, it returns without waiting.
///
/// ```
/// use std::time::Duration;
/// use evloop::{ReturnWhen, wait};
///
/// evloop::run(async {
///     let fast = evloop::spawn(async { evloop::sleep(Duration::from_millis(1)).await; 1 });
///     let slow = evloop::spawn(async { evloop::sleep(Duration::from_secs(60)).await; 2 });
///     let (done, pending) = wait([fast, slow], ReturnWhen::FirstCompleted).await;
///     assert_eq!((done.len(), pending.len()), (1, 1));
///     for task in done {
///         assert_eq!(task.await.unwrap(), 1);
///     }
///     pending[0].cancel();
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub async fn wait<T, I>(tasks: I, return_when: ReturnWhen) -> (Vec<Task<T>>, Vec<Task<T>>)
where
    I: IntoIterator<Item = Task<T>>,
{
    wait_inner(tasks.into_iter().collect(), return_when, None).await
}

/// Like [`wait`], but returns when `timeout` has passed too (asyncio's `wait(timeout=...)`):
/// whatever has not ended by then is in the pending list.
///
/// # Panics
///
/// The returned future panics if it is polled outside a running event loop (the timeout
/// needs its timers).
pub async fn wait_timeout<T, I>(
    tasks: I,
    return_when: ReturnWhen,
    timeout: Duration,
) -> (Vec<Task<T>>, Vec<Task<T>>)
where
    I: IntoIterator<Item = Task<T>>,
{
    let deadline = evloop_core::deadline_after(timeout);
    wait_inner(tasks.into_iter().collect(), return_when, Some(deadline)).await
}

/// True if the ended task `r` panicked. Polling a `TaskRef` does not consume the output.
fn panicked(r: &mut TaskRef) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(
        Pin::new(r).poll(&mut cx),
        Poll::Ready(Err(JoinError::Panicked(_)))
    )
}

async fn wait_inner<T>(
    tasks: Vec<Task<T>>,
    return_when: ReturnWhen,
    deadline: Option<Instant>,
) -> (Vec<Task<T>>, Vec<Task<T>>) {
    let mut refs: Vec<TaskRef> = tasks.iter().map(Task::as_ref).collect();
    let mut timer = deadline.map(crate::time::sleep_until);
    let mut waited = false;
    if !refs.is_empty() {
        poll_fn(|cx| {
            let mut any_done = false;
            let mut all_done = true;
            let mut any_panicked = false;
            for r in &mut refs {
                // Polling registers our waker for the task's end; output stays in the task.
                if r.is_done() || Pin::new(&mut *r).poll(cx).is_ready() {
                    any_done = true;
                    any_panicked =
                        any_panicked || (return_when == ReturnWhen::FirstException && panicked(r));
                } else {
                    all_done = false;
                }
            }
            let ready = match return_when {
                ReturnWhen::FirstCompleted => any_done,
                ReturnWhen::FirstException => any_panicked || all_done,
                ReturnWhen::AllCompleted => all_done,
            };
            if ready {
                return Poll::Ready(());
            }
            let polled = match &mut timer {
                Some(t) => Pin::new(t).poll(cx),
                None => Poll::Pending,
            };
            waited |= polled.is_pending();
            polled
        })
        .await;
    }
    if waited {
        // asyncio resumes `wait` two turns of the ready queue after the end (or the timeout)
        // that satisfies it: the tasks' done callbacks run, then the waiter future wakes the
        // task. A waker is one turn; one more, so that every task that ends meanwhile is done
        // when we partition, as it is there (CPython's test_wait_really_done).
        evloop_core::yield_now().await;
    }
    tasks.into_iter().partition(Task::is_done)
}
