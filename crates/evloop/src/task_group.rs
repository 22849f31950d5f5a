//! [`TaskGroup`]: structured concurrency (asyncio's `TaskGroup`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, pending, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use evloop_core::{Task, TaskRef};

/// Why a child of a [`TaskGroup`] failed.
pub enum TaskGroupError<E> {
    /// The child returned `Err(e)`.
    Failed(E),
    /// The child panicked; this is the panic payload (use it with `std::panic::resume_unwind`).
    Panicked(Box<dyn Any + Send + 'static>),
}

impl<E> TaskGroupError<E> {
    /// True if the child panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskGroupError::Panicked(_))
    }

    /// The child's error, if it returned one.
    pub fn into_failure(self) -> Option<E> {
        match self {
            TaskGroupError::Failed(e) => Some(e),
            TaskGroupError::Panicked(_) => None,
        }
    }

    /// The panic payload, if the child panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            TaskGroupError::Panicked(p) => Some(p),
            TaskGroupError::Failed(_) => None,
        }
    }

    /// The panic message, if the child panicked with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskGroupError::Panicked(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            TaskGroupError::Failed(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            TaskGroupError::Panicked(_) => match self.panic_message() {
                Some(m) => f.debug_tuple("Panicked").field(&m).finish(),
                None => f.write_str("Panicked(..)"),
            },
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Failed(e) => write!(f, "task failed: {e}"),
            TaskGroupError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TaskGroupError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskGroupError::Failed(e) => Some(e),
            TaskGroupError::Panicked(_) => None,
        }
    }
}

/// What the group and its children share (all on the loop's thread).
struct GroupState<E> {
    /// The children not ended yet, by a group-local key.
    children: RefCell<HashMap<u64, TaskRef>>,
    next_key: Cell<u64>,
    /// Children whose future has not been dropped yet (includes those about to be inserted).
    live: Cell<usize>,
    failures: RefCell<Vec<TaskGroupError<E>>>,
    /// A child failed or `cancel` was called: children are cancelled, new ones too.
    aborting: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl<E> GroupState<E> {
    /// Cancels every child. No borrow is held while a task is cancelled: on a closed loop
    /// cancelling drops the child's future at once, which runs `ChildGuard::drop`.
    fn cancel_all(&self) {
        let children: Vec<TaskRef> = self.children.borrow().values().cloned().collect();
        for child in children {
            child.cancel();
        }
    }

    fn abort(&self) {
        self.aborting.set(true);
        self.cancel_all();
    }

    /// The child `key` failed: record it, end the child, and — at the first failure — cancel
    /// the others from a callback on the next iteration (as asyncio's `_on_task_done` does).
    fn fail(self: &Rc<Self>, key: u64, failure: TaskGroupError<E>)
    where
        E: 'static,
    {
        self.failures.borrow_mut().push(failure);
        let me = self.children.borrow().get(&key).cloned();
        if let Some(me) = me {
            // The child's future is dropped when its current poll ends.
            me.cancel();
        }
        if self.aborting.replace(true) {
            return;
        }
        let state = Rc::downgrade(self);
        let abort = move || {
            if let Some(state) = state.upgrade() {
                state.cancel_all();
            }
        };
        match evloop_core::running_loop() {
            Some(lp) => {
                lp.call_soon(abort);
            }
            None => abort(),
        }
    }

    fn wake_waiter(&self) {
        let waiter = self.waiter.borrow_mut().take();
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// Lives in a child's future: when the future ends or is dropped (cancelled), the child
/// leaves the group.
struct ChildGuard<E> {
    state: Weak<GroupState<E>>,
    key: u64,
}

impl<E> Drop for ChildGuard<E> {
    fn drop(&mut self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let removed = state.children.borrow_mut().remove(&self.key);
        drop(removed);
        state.live.set(state.live.get().saturating_sub(1));
        if state.live.get() == 0 {
            state.wake_waiter();
        }
    }
}

/// A group of child tasks that succeed or fail together (asyncio's `TaskGroup`: structured
/// concurrency).
///
/// - [`spawn`](TaskGroup::spawn) starts a child on the running loop. A child returns
///   `Result<T, E>`.
/// - The first child that fails — returns `Err`, or panics — makes the group cancel all the
///   other children (their futures are dropped; they never complete). As in asyncio, the
///   cancellation is delivered by a callback on the next loop iteration: siblings that were
///   already scheduled for the current iteration still take that one step, and if they fail
///   too, every failure is reported. Children spawned into a group that is aborting are
///   cancelled before they start.
/// - [`wait`](TaskGroup::wait) waits until every child has ended and returns
///   `Err(failures)` with every `Err` value and panic in the order they happened (children
///   cancelled by the group are not failures).
/// - Dropping the group without waiting for it — or dropping the `wait` future, e.g. because
///   the awaiting task was cancelled — cancels all its children.
///
/// The [`Task`] handle of a child resolves to `Ok(value)` when the child succeeded, and to
/// `Err(JoinError::Cancelled)` when it was cancelled *or failed* (its error belongs to the
/// group). The group is `!Send`: it lives in a task of its loop.
///
/// ```
/// use std::time::Duration;
/// use evloop::{TaskGroup, TaskGroupError};
///
/// evloop::run(async {
///     let group = TaskGroup::new();
///     let a = group.spawn(async { Ok::<_, String>(1) });
///     let b = group.spawn(async { Ok(2) });
///     assert!(group.wait().await.is_ok());
///     assert_eq!(a.await.unwrap() + b.await.unwrap(), 3);
///
///     let group = TaskGroup::new();
///     let slow = group.spawn(async {
///         evloop::sleep(Duration::from_secs(60)).await;
///         Ok(())
///     });
///     group.spawn(async { Err::<(), _>("boom".to_string()) });
///     let failures = group.wait().await.unwrap_err();
///     assert!(matches!(&failures[..], [TaskGroupError::Failed(e)] if e == "boom"));
///     assert!(slow.is_cancelled());
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub struct TaskGroup<E> {
    state: Rc<GroupState<E>>,
}

impl<E: 'static> TaskGroup<E> {
    /// An empty group.
    pub fn new() -> TaskGroup<E> {
        TaskGroup {
            state: Rc::new(GroupState {
                children: RefCell::new(HashMap::new()),
                next_key: Cell::new(0),
                live: Cell::new(0),
                failures: RefCell::new(Vec::new()),
                aborting: Cell::new(false),
                waiter: RefCell::new(None),
            }),
        }
    }

    /// Starts `future` as a child task on the running loop and returns its handle.
    ///
    /// If the child returns `Err(e)` or panics, the failure goes to the group (see
    /// [`wait`](TaskGroup::wait)) and the other children are cancelled; the child's own
    /// handle then resolves to `Err(JoinError::Cancelled)`. A child spawned while the group is
    /// aborting is cancelled at once.
    ///
    /// # Panics
    ///
    /// Panics outside a running event loop, as [`EventLoop::create_task`] needs one:
    /// "no running event loop".
    ///
    /// [`EventLoop::create_task`]: crate::EventLoop::create_task
    pub fn spawn<F, T>(&self, future: F) -> Task<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let Some(lp) = evloop_core::running_loop() else {
            panic!("no running event loop (TaskGroup::spawn must be called on a running loop)");
        };
        let key = self.state.next_key.get();
        self.state.next_key.set(key + 1);
        self.state.live.set(self.state.live.get() + 1);
        let guard = ChildGuard {
            state: Rc::downgrade(&self.state),
            key,
        };
        let task = lp.create_task(async move {
            let guard = guard;
            let mut future = pin!(future);
            let outcome = poll_fn(|cx: &mut Context<'_>| {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Ready(Ok(value))) => Poll::Ready(Ok(value)),
                    Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(TaskGroupError::Failed(e))),
                    Ok(Poll::Pending) => Poll::Pending,
                    Err(payload) => Poll::Ready(Err(TaskGroupError::Panicked(payload))),
                }
            })
            .await;
            match outcome {
                Ok(value) => value,
                Err(failure) => {
                    if let Some(state) = guard.state.upgrade() {
                        state.fail(guard.key, failure);
                    }
                    pending().await
                }
            }
        });
        if !task.is_done() {
            self.state.children.borrow_mut().insert(key, task.as_ref());
            if self.state.aborting.get() {
                task.cancel();
            }
        }
        task
    }

    /// Cancels every child (as a failure would, but without being one): `wait` then returns
    /// `Ok(())` unless a child had failed.
    pub fn cancel(&self) {
        self.state.abort();
    }

    /// The number of children that have not ended.
    pub fn len(&self) -> usize {
        self.state.live.get()
    }

    /// True if no child is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every child has ended: `Ok(())` if none failed, else every failure (`Err`
    /// values and panics) in the order they happened. Cancellations caused by the group (or by
    /// [`cancel`](TaskGroup::cancel)) are not failures; a child cancelled from outside is not
    /// either.
    pub async fn wait(self) -> Result<(), Vec<TaskGroupError<E>>> {
        poll_fn(|cx| {
            if self.state.live.get() == 0 {
                return Poll::Ready(());
            }
            let mut waiter = self.state.waiter.borrow_mut();
            match &*waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waiter = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        let failures = std::mem::take(&mut *self.state.failures.borrow_mut());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }
}

impl<E: 'static> Default for TaskGroup<E> {
    fn default() -> TaskGroup<E> {
        TaskGroup::new()
    }
}

impl<E> Drop for TaskGroup<E> {
    fn drop(&mut self) {
        self.state.cancel_all();
        let failures = self.state.failures.borrow().len();
        if failures > 0 {
            tracing::warn!(
                failures,
                "a TaskGroup with failed children was dropped without being waited for"
            );
        }
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("children", &self.state.live.get())
            .field("failures", &self.state.failures.borrow().len())
            .field("aborting", &self.state.aborting.get())
            .finish()
    }
}
