//! [`Loops`]: the handles of every loop of a [`multi::run`](super::run).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use evloop_core::{Error, LoopHandle, Task};

thread_local! {
    /// On a loop thread of `multi::run`, the handles of all its loops.
    static CURRENT: RefCell<Option<Loops>> = const { RefCell::new(None) };
}

/// The loops of a [`multi::run`](super::run), by index: [`LoopHandle`]s to send work to a
/// given loop from any thread. Get it with [`multi::loops()`](super::loops) on a loop's
/// thread; it is `Clone + Send + Sync`, so it can be handed to other threads too.
///
/// Every loop exists before any loop's future starts, and a loop whose future is done stays
/// open (running its tasks and the work sent to it) until the joint stop, so every index in
/// `0..len()` can take work for the whole run. After the stop, the loops are closed:
/// `call_soon_threadsafe` is `Err(Error::Closed)` and tasks spawned on them are cancelled.
///
/// ```
/// use evloop::multi;
///
/// let names = multi::run(3, |i| async move {
///     let loops = multi::loops().expect("on a loop thread");
///     let next = (i + 1) % loops.len();
///     // Runs on loop `next`'s thread; the task can be awaited from this loop.
///     let task = loops.spawn_on(next, async {
///         std::thread::current().name().map(str::to_owned)
///     })?;
///     Ok::<_, evloop::Error>(task.await.ok().flatten())
/// })?;
/// assert_eq!(names[0].as_deref(), Some("evloop-multi-1"));
/// assert_eq!(names[2].as_deref(), Some("evloop-multi-0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Loops {
    handles: Arc<[LoopHandle]>,
}

impl Loops {
    pub(super) fn new(handles: Vec<LoopHandle>) -> Loops {
        Loops {
            handles: handles.into(),
        }
    }

    /// How many loops there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True if there are none (never, for a `Loops` from [`multi::loops()`](super::loops)).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Loop `index`'s handle, `None` if `index >= len()`.
    pub fn handle(&self, index: usize) -> Option<&LoopHandle> {
        self.handles.get(index)
    }

    /// Every loop's handle, in index order.
    pub fn handles(&self) -> &[LoopHandle] {
        &self.handles
    }

    /// Runs `fut` as a task on loop `index` ([`LoopHandle::spawn`]): the returned [`Task`]
    /// can be awaited on any loop or joined with [`Task::join_blocking`].
    ///
    /// Errors: [`Error::Io`] with [`io::ErrorKind::InvalidInput`] if there is no loop
    /// `index`. On a closed loop the task is cancelled at once (it resolves to
    /// `Err(JoinError::Cancelled)`).
    pub fn spawn_on<F>(&self, index: usize, fut: F) -> Result<Task<F::Output>, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(self.get(index)?.spawn(fut))
    }

    /// Schedules `f` on loop `index`'s thread ([`LoopHandle::call_soon_threadsafe`]).
    ///
    /// Errors: [`Error::Io`] with [`io::ErrorKind::InvalidInput`] if there is no loop
    /// `index`; [`Error::Closed`] if that loop is closed (`f` is dropped unrun).
    pub fn call_soon_threadsafe(
        &self,
        index: usize,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        self.get(index)?.call_soon_threadsafe(f)
    }

    fn get(&self, index: usize) -> Result<&LoopHandle, Error> {
        self.handles.get(index).ok_or_else(|| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no loop {index}: there are {}", self.handles.len()),
            ))
        })
    }
}

impl fmt::Debug for Loops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loops")
            .field("len", &self.handles.len())
            .finish_non_exhaustive()
    }
}

/// The [`Loops`] of the [`multi::run`](super::run) this thread is a loop of; `None` on any
/// other thread (the caller of `multi::run` included).
///
/// ```
/// let lens = evloop::multi::run(2, |_| async {
///     Ok::<_, evloop::Error>(evloop::multi::loops().map(|l| l.len()))
/// })?;
/// assert_eq!(lens, [Some(2), Some(2)]);
/// assert!(evloop::multi::loops().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn loops() -> Option<Loops> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Sets this thread's [`loops()`] while the guard lives.
pub(super) struct CurrentLoops(());

impl CurrentLoops {
    pub(super) fn set(loops: Loops) -> CurrentLoops {
        CURRENT.with(|c| *c.borrow_mut() = Some(loops));
        CurrentLoops(())
    }
}

impl Drop for CurrentLoops {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}
