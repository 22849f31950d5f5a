//! [`task_group`]: asyncio's `async with TaskGroup() as g:` as a scope — [`TaskScope`] (the
//! body's borrowed handle), [`TaskSpawner`] (a handle children may keep), and the scope loop
//! that [`join_set`](crate::join_set) shares.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;

use evloop_core::Task;

use super::core::Core;
use super::{Payload, SpawnError, TaskGroupError, TaskGroupErrors, report, running_loop_for};

/// Runs `body` as the scope of a new task group and returns when the body **and every child**
/// have ended: asyncio's `async with asyncio.TaskGroup() as g: ...` with Rust's shapes.
///
/// `body` is an async closure that gets the group as `&TaskScope<E>`: it spawns children with
/// [`TaskScope::spawn`], each returning `Result<T, E>`. Named `task_group` because it *is*
/// asyncio's `TaskGroup` (opening it and its `async with` block are one call, so a group that
/// was never entered, or is entered twice, cannot exist); the handle is a *scope* because it
/// is valid only inside the body.
///
/// - **A failure cancels everything.** When a child returns `Err` or panics (also: panics in
///   its destructor while being cancelled), the group cancels the other children and **the
///   body**: the body's future is dropped at the scope's next poll (in Rust, dropping a future
///   is what cancelling it means), then the scope waits until every child has ended and
///   returns `Err` with every failure, in order ([`TaskGroupErrors`], asyncio's
///   `ExceptionGroup`). Siblings get their cancellation from a callback on the next loop
///   iteration, as in asyncio: siblings already scheduled for this iteration take that step,
///   and their failures are reported too. Children the group cancelled are no failures.
/// - **The body's own failure counts too.** If the body returns `Err(e)` (e.g. through `?`)
///   or panics, the children are cancelled at once, the scope waits for them, and `e` (or the
///   panic) is among the errors, after the children's failures that happened before it — as
///   asyncio adds the body's exception to the group. A panic in the body's destructor when
///   the group cancels it is a failure as well.
/// - **A body that returns `Ok(value)`** makes the scope wait for all children (asyncio's
///   `__aexit__`), which may still spawn more; then the scope returns `Ok(value)`, or `Err` if
///   a child failed meanwhile.
/// - **Nothing outlives the scope.** When the scope future is dropped before it finished —
///   the enclosing task was cancelled, a `timeout` expired, a `select!` took another branch —
///   the body is dropped first, then every child: each child's task gets a cancel request and
///   each child's future is dropped, all before the drop returns. The child *tasks* are
///   marked cancelled (and their handles resolve) at their next scheduling point, i.e. on the
///   loop's next iteration. Failures that happen during that drop have nobody to go to: they
///   go to the loop's exception handler.
///
/// Children are tasks of the running loop (the scope must run on one, e.g. inside
/// [`run`](crate::run)); they cannot borrow from the body (`'static`). A child that needs to
/// spawn siblings gets a [`TaskSpawner`] from [`TaskScope::spawner`]. For children of any
/// output type (only panics fail) and `join_next`, see [`join_set`](crate::join_set).
///
/// ```
/// use std::time::Duration;
/// use evloop::{TaskGroupError, sleep, task_group};
///
/// evloop::run(async {
///     // Every child succeeds: the scope returns the body's value once all are done.
///     let sum = task_group(async |g| {
///         let a = g.spawn(async { Ok::<_, String>(1) });
///         let b = g.spawn(async { Ok(2) });
///         Ok(a.await.unwrap() + b.await.unwrap())
///     })
///     .await;
///     assert_eq!(sum.unwrap(), 3);
///
///     // A child fails: the other child and the body are cancelled.
///     let errors = task_group(async |g| {
///         g.spawn(async {
///             sleep(Duration::from_secs(60)).await;
///             Ok(())
///         });
///         g.spawn(async { Err::<(), _>("boom".to_string()) });
///         sleep(Duration::from_secs(60)).await; // dropped here
///         Ok(())
///     })
///     .await
///     .unwrap_err();
///     assert!(matches!(errors.errors(), [TaskGroupError::Failed(e)] if e == "boom"));
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub async fn task_group<E, R, B>(body: B) -> Result<R, TaskGroupErrors<E>>
where
    E: 'static,
    B: AsyncFnOnce(&TaskScope<E>) -> Result<R, E>,
{
    let scope = TaskScope {
        core: Core::new(false),
    };
    // Declared before the body: dropped after it, also when the scope future is dropped.
    let _close = CloseOnDrop(&scope.core);
    let mut body = Body::new(body(&scope));
    run_scope(&scope.core, &mut body).await
}

/// The group, as the body of a [`task_group`] scope sees it: spawn children, cancel them.
///
/// It is only lent to the body (`&TaskScope<E>`), so it cannot outlive the scope; a child
/// that spawns siblings uses a [`TaskSpawner`].
pub struct TaskScope<E> {
    core: Rc<Core<E, ()>>,
}

impl<E: 'static> TaskScope<E> {
    /// Starts `future` as a child task on the running loop and returns its handle
    /// (asyncio's `g.create_task`).
    ///
    /// The handle resolves to `Ok(value)` when the child succeeds, and to
    /// `Err(JoinError::Cancelled)` when it was cancelled *or failed* (the failure belongs to
    /// the group). Awaiting it from the body is fine; a failing child cancels the body
    /// anyway. A child spawned after [`cancel`](TaskScope::cancel) is cancelled at once.
    ///
    /// # Panics
    ///
    /// "no running event loop", when the scope is polled outside a running loop.
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> Task<T>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        self.core
            .spawn_child(&running_loop_for("TaskScope::spawn"), future, |out, _| out)
    }

    /// A handle that children may keep to spawn into this group while it runs; it refuses
    /// once the group is shutting down or finished.
    ///
    /// ```
    /// use evloop::{SpawnError, task_group};
    ///
    /// evloop::run(async {
    ///     let mut kept = None;
    ///     task_group(async |g| {
    ///         let spawner = g.spawner();
    ///         g.spawn(async move {
    ///             // A child spawns a sibling: the scope waits for it too.
    ///             let sibling = spawner.spawn(async { Ok::<_, ()>(7) }).unwrap();
    ///             assert_eq!(sibling.await.unwrap(), 7);
    ///             Ok(())
    ///         });
    ///         kept = Some(g.spawner());
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    ///     let late = kept.unwrap().spawn(async { Ok(()) });
    ///     assert_eq!(late.unwrap_err(), SpawnError::Finished);
    /// })?;
    /// # Ok::<(), evloop::Error>(())
    /// ```
    pub fn spawner(&self) -> TaskSpawner<E> {
        TaskSpawner {
            core: Rc::downgrade(&self.core),
        }
    }

    /// Cancels every child, and the children spawned from now on; not a failure, and the
    /// body goes on (asyncio has no such call: cancel the children you no longer need).
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
}

impl<E> fmt::Debug for TaskScope<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskScope")
            .field("children", &self.core.live())
            .field("failures", &self.core.failure_count())
            .field("aborting", &self.core.is_aborting())
            .finish()
    }
}

/// A handle that spawns into a [`task_group`] from anywhere on the loop's thread — typically
/// from a child that starts siblings. It does not keep the group alive: once the group has
/// ended, [`spawn`](TaskSpawner::spawn) returns [`SpawnError::Finished`], so no child can
/// outlive its group.
pub struct TaskSpawner<E> {
    core: Weak<Core<E, ()>>,
}

impl<E: 'static> TaskSpawner<E> {
    /// Starts `future` as a child of the group, as [`TaskScope::spawn`] does; `Err` if the
    /// group is shutting down (a failure happened, or it was cancelled), has finished, or no
    /// loop runs (asyncio's `create_task` raises `RuntimeError` in the first two cases).
    #[track_caller]
    pub fn spawn<F, T>(&self, future: F) -> Result<Task<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: 'static,
    {
        let core = match self.core.upgrade() {
            Some(core) if !core.is_closed() => core,
            _ => return Err(SpawnError::Finished),
        };
        if core.is_aborting() {
            return Err(SpawnError::ShuttingDown);
        }
        let lp = evloop_core::running_loop().ok_or(SpawnError::NoRunningLoop)?;
        Ok(core.spawn_child(&lp, future, |out, _| out))
    }

    /// True once the group has ended: `spawn` refuses from then on.
    pub fn is_finished(&self) -> bool {
        self.core.upgrade().is_none_or(|core| core.is_closed())
    }
}

impl<E> Clone for TaskSpawner<E> {
    fn clone(&self) -> TaskSpawner<E> {
        TaskSpawner {
            core: self.core.clone(),
        }
    }
}

impl<E> fmt::Debug for TaskSpawner<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finished = self.core.upgrade().is_none_or(|core| core.is_closed());
        f.debug_struct("TaskSpawner")
            .field("finished", &finished)
            .finish()
    }
}

/// Ends the group when the scope returns or is dropped (after the body: declared before it).
pub(super) struct CloseOnDrop<'a, E, O>(pub(super) &'a Core<E, O>);

impl<E, O> Drop for CloseOnDrop<'_, E, O> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A scope's body: dropped by the scope when a failure cancels it.
pub(super) struct Body<F>(Option<Pin<Box<F>>>);

impl<F> Body<F> {
    pub(super) fn new(body: F) -> Body<F> {
        Body(Some(Box::pin(body)))
    }

    /// Drops the body now; `Err` if its destructor panicked.
    fn cancel(&mut self) -> Result<(), Payload> {
        match self.0.take() {
            Some(body) => catch_unwind(AssertUnwindSafe(move || drop(body))),
            None => Ok(()),
        }
    }
}

impl<F> Drop for Body<F> {
    fn drop(&mut self) {
        // The scope itself is being dropped mid-body: nobody reads the group's result.
        if let Err(payload) = self.cancel() {
            report(
                "the body of a task group panicked while it was being cancelled",
                Some(payload),
                None,
            );
        }
    }
}

/// The scope loop: polls the body and watches the children (see [`task_group`]).
pub(super) async fn run_scope<E, O, R, F>(
    core: &Core<E, O>,
    body: &mut Body<F>,
) -> Result<R, TaskGroupErrors<E>>
where
    F: Future<Output = Result<R, E>>,
{
    let mut value = None;
    poll_fn(|cx| {
        loop {
            if body.0.is_some() && core.has_failed() {
                // A failure cancels the body.
                if let Err(payload) = body.cancel() {
                    core.fail_body(TaskGroupError::Panicked(payload));
                }
            }
            let Some(running) = body.0.as_mut() else {
                break;
            };
            match catch_unwind(AssertUnwindSafe(|| running.as_mut().poll(cx))) {
                Ok(Poll::Pending) if core.has_failed() => continue,
                Ok(Poll::Pending) => {
                    core.register_waiter(cx);
                    return Poll::Pending;
                }
                Ok(Poll::Ready(result)) => {
                    let dropped = body.cancel();
                    match result {
                        Ok(v) => value = Some(v),
                        Err(e) => core.fail_body(TaskGroupError::Failed(e)),
                    }
                    if let Err(payload) = dropped {
                        core.fail_body(TaskGroupError::Panicked(payload));
                    }
                }
                Err(payload) => {
                    let dropped = body.cancel();
                    core.fail_body(TaskGroupError::Panicked(payload));
                    if let Err(payload) = dropped {
                        core.fail_body(TaskGroupError::Panicked(payload));
                    }
                }
            }
        }
        // The body has ended: wait for the children.
        if core.live() > 0 {
            core.register_waiter(cx);
            return Poll::Pending;
        }
        let failures = core.take_failures();
        Poll::Ready(match value.take() {
            Some(v) if failures.is_empty() => Ok(v),
            _ => Err(TaskGroupErrors::new(failures)),
        })
    })
    .await
}
