//! [`join_set`]: a scope whose children return any `T` (only panics fail), taken back one by
//! one as they finish with [`JoinSet::join_next`] (tokio's `JoinSet`, with the guarantees of
//! [`task_group`](crate::task_group)).

use std::fmt;
use std::future::{Future, poll_fn};
use std::rc::Rc;

use evloop_core::{JoinError, TaskRef};

use super::core::Core;
use super::scope::{Body, CloseOnDrop, run_scope};
use super::{TaskGroupErrors, running_loop_for};

/// Runs `body` as the scope of a set of children of one output type `T`, which the body takes
/// back as they finish with [`JoinSet::join_next`] — tokio's `JoinSet`, as a scope.
///
/// The scope behaves as [`task_group`](crate::task_group)'s, except that children are not
/// `Result`-shaped: a child returns any `T`, and only a **panic** is a failure (an `Err` a
/// child returns is just its value). So:
///
/// - a panicking child (also: one that panics in its destructor while being cancelled)
///   cancels the other children and the body, and the scope returns every failure;
/// - a body that returns `Err(e)` or panics cancels the children; `e` (or the panic) is among
///   the errors;
/// - a body that returns `Ok(value)` makes the scope wait for the children it has not taken
///   back (call [`JoinSet::cancel`] first to stop them instead); their values are dropped;
/// - dropping the scope future drops the body and every child's future at once, as for
///   `task_group`.
///
/// Named after tokio's `JoinSet`, which it follows for `spawn` and `join_next`; unlike
/// tokio's, the set is lent to a body and cannot outlive it. `E` is the body's own error type
/// (children cannot produce one).
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use evloop::join_set;
///
/// evloop::run(async {
///     let order = join_set(async |set| {
///         for ms in [30u64, 10, 20] {
///             set.spawn(async move {
///                 evloop::sleep(Duration::from_millis(ms)).await;
///                 ms
///             });
///         }
///         let mut order = Vec::new();
///         while let Some(outcome) = set.join_next().await {
///             order.push(outcome.unwrap());
///         }
///         Ok::<_, Infallible>(order)
///     })
///     .await
///     .unwrap();
///     assert_eq!(order, [10, 20, 30]); // as they finished
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub async fn join_set<T, E, R, B>(body: B) -> Result<R, TaskGroupErrors<E>>
where
    T: 'static,
    E: 'static,
    B: AsyncFnOnce(&JoinSet<T, E>) -> Result<R, E>,
{
    let set = JoinSet {
        core: Core::new(true),
    };
    // Declared before the body: dropped after it, also when the scope future is dropped.
    let _close = CloseOnDrop(&set.core);
    let mut body = Body::new(body(&set));
    run_scope(&set.core, &mut body).await
}

/// The set of children of a [`join_set`] scope, as its body sees it. `T` is the children's
/// output, `E` the body's error type.
pub struct JoinSet<T, E> {
    core: Rc<Core<E, T>>,
}

impl<T: 'static, E: 'static> JoinSet<T, E> {
    /// Starts `future` as a child task on the running loop; its output is for
    /// [`join_next`](JoinSet::join_next). The returned view can cancel it, name it and
    /// await its end. A child spawned after [`cancel`](JoinSet::cancel) is cancelled at once.
    ///
    /// # Panics
    ///
    /// "no running event loop", when the scope is polled outside a running loop.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> TaskRef
    where
        F: Future<Output = T> + 'static,
    {
        self.core
            .spawn_child(&running_loop_for("JoinSet::spawn"), future, Core::collect)
            .as_ref()
    }

    /// The outcome of the next child to finish, in the order they finished: `Ok(value)`, or
    /// `Err(JoinError::Cancelled)` for a child that was cancelled (through its [`TaskRef`] or
    /// [`cancel`](JoinSet::cancel)). `None` once every child has been taken back.
    ///
    /// A panicking child never shows up here: it is a failure of the set, which cancels the
    /// body (this call included).
    pub async fn join_next(&self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.core.poll_joined(cx)).await
    }

    /// Cancels every child, and the children spawned from now on; not a failure. Their
    /// outcomes (`Err(JoinError::Cancelled)`, or a value for those that finished first) still
    /// come out of `join_next`.
    pub fn cancel(&self) {
        self.core.abort();
    }

    /// Children whose outcome has not been taken back yet (running or finished).
    pub fn len(&self) -> usize {
        self.core.live() + self.core.queued()
    }

    /// True if `join_next` would return `None`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, E> fmt::Debug for JoinSet<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("running", &self.core.live())
            .field("finished", &self.core.queued())
            .field("aborting", &self.core.is_aborting())
            .finish()
    }
}
