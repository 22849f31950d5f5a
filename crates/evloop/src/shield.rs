//! [`Shield`]: awaiting a task without cancelling it when the awaiter goes away (asyncio's
//! `shield`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use evloop_core::{JoinError, Task};

/// A task awaited through a shield: when this future is dropped before the task ended (the
/// awaiting task was cancelled, a timeout expired), the task runs on, detached — where a plain
/// awaited [`Task`] would be cancelled with its awaiter (asyncio's `shield`).
///
/// Cancelling the task itself still cancels it: the shield then gives `Err(Cancelled)`, as
/// asyncio's does when the inner future is cancelled. Build one with `Shield::from(task)`, or
/// [`shield`], which spawns the future first.
///
/// ```
/// use std::time::Duration;
///
/// evloop::run(async {
///     let inner = evloop::spawn(async {
///         evloop::sleep(Duration::from_millis(20)).await;
///         "finished"
///     });
///     let inner_ref = inner.as_ref();
///     let shielded = evloop::Shield::from(inner);
///     // The timeout gives up on the shield; the task behind it goes on.
///     assert!(evloop::timeout(Duration::from_millis(1), shielded).await.is_err());
///     inner_ref.await.unwrap();
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Shield<T> {
    task: Option<Task<T>>,
}

impl<T> From<Task<T>> for Shield<T> {
    fn from(task: Task<T>) -> Shield<T> {
        Shield { task: Some(task) }
    }
}

impl<T> Shield<T> {
    /// The shielded task's handle back (awaiting it directly is no longer shielded).
    pub fn into_inner(mut self) -> Option<Task<T>> {
        self.task.take()
    }
}

impl<T> Future for Shield<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            panic!("`Shield` polled after it completed");
        };
        let out = Pin::new(task).poll(cx);
        if out.is_ready() {
            self.task = None;
        }
        out
    }
}

impl<T> Drop for Shield<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}

/// Spawns `future` as a task on the running loop and returns it [`Shield`]ed (asyncio's
/// `shield(coro)`): cancelling the task that awaits the shield — or dropping the shield any
/// other way — leaves the work running.
///
/// # Panics
///
/// With the message "no running event loop" outside a running loop, as [`spawn`](crate::spawn).
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// evloop::run(async {
///     let saved = Rc::new(Cell::new(false));
///     let s = saved.clone();
///     let outer = evloop::spawn(async move {
///         evloop::shield(async move {
///             evloop::yield_now().await;
///             s.set(true); // runs to the end although `outer` is cancelled
///         })
///         .await
///     });
///     evloop::yield_now().await;
///     outer.cancel();
///     assert!(outer.await.unwrap_err().is_cancelled());
///     while !saved.get() {
///         evloop::yield_now().await;
///     }
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
#[track_caller]
pub fn shield<F>(future: F) -> Shield<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Shield::from(crate::spawn(future))
}
