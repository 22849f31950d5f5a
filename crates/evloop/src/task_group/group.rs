//! [`TaskGroup`]: spawn children, then `wait` for them (asyncio's `TaskGroup` without the
//! `async with` scope: see [`task_group`](crate::task_group) for that).

use std::fmt;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::Poll;

use evloop_core::Task;

use super::core::Core;
use super::{TaskGroupError, running_loop_for};

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
///   the awaiting task was cancelled — cancels all its children: their tasks get a cancel
///   request and their futures are dropped before the drop returns.
///
/// The [`task_group`](crate::task_group) scope is the closer match to asyncio: a failing
/// child also cancels the code that opened the group, and no child can outlive it.
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
    core: Rc<Core<E, ()>>,
}

impl<E: 'static> TaskGroup<E> {
    /// An empty group.
    pub fn new() -> TaskGroup<E> {
        TaskGroup {
            core: Core::new(false),
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
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> Task<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.core
            .spawn_child(&running_loop_for("TaskGroup::spawn"), future, |out, _| out)
    }

    /// Cancels every child (as a failure would, but without being one): `wait` then returns
    /// `Ok(())` unless a child had failed.
    pub fn cancel(&self) {
        self.core.abort();
    }

    /// The number of children that have not ended.
    pub fn len(&self) -> usize {
        self.core.live()
    }

    /// True if no child is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every child has ended: `Ok(())` if none failed, else every failure (`Err`
    /// values and panics, also a panic in a cancelled child's destructor) in the order they
    /// happened. Cancellations caused by the group (or by [`cancel`](TaskGroup::cancel)) are
    /// not failures; a child cancelled from outside is not either.
    pub async fn wait(self) -> Result<(), Vec<TaskGroupError<E>>> {
        poll_fn(|cx| {
            if self.core.live() == 0 {
                return Poll::Ready(());
            }
            self.core.register_waiter(cx);
            Poll::Pending
        })
        .await;
        let failures = self.core.take_failures();
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
        let failures = self.core.failure_count();
        self.core.close();
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
            .field("children", &self.core.live())
            .field("failures", &self.core.failure_count())
            .field("aborting", &self.core.is_aborting())
            .finish()
    }
}
