//! Task-local context: [`TaskLocal`] keys, inherited by the tasks a task spawns (asyncio copies
//! its `contextvars` context into every new task; this is the typed equivalent).
//!
//! The *context* is a chain of `(key, value)` entries, innermost first. While a future runs
//! inside [`TaskLocal::scope`], the chain has one more entry at its head. When a task is
//! created on a loop (`EventLoop::create_task`, `evloop::spawn`) from code running in a
//! context, the new task keeps that context for its whole life: a snapshot, as asyncio's
//! `copy_context()` — a scope that ends later in the parent does not change what the child
//! sees. Code outside every scope (and a task spawned from there) sees no values.
//!
//! Costs: nothing for a task spawned outside every scope (one thread-local read at spawn);
//! a task spawned inside one pays one thread-local swap per poll.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

/// One entry of a context chain.
struct Entry {
    key: usize,
    value: Rc<dyn Any>,
    parent: Option<Rc<Entry>>,
}

/// A snapshot of the task-local values visible at some point (cheap to clone).
#[derive(Clone)]
pub(crate) struct ContextSnapshot(Rc<Entry>);

thread_local! {
    /// The context of the code running on this thread right now.
    static CURRENT: RefCell<Option<Rc<Entry>>> = const { RefCell::new(None) };
}

#[inline]
fn current_head() -> Option<Rc<Entry>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// True if some task-local value is set here (the common "no" is one thread-local read).
#[inline(always)]
fn any_set() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// Makes `head` the current context until the guard drops (restoring the previous one).
struct Enter(Option<Rc<Entry>>);

impl Enter {
    fn new(head: Option<Rc<Entry>>) -> Enter {
        Enter(CURRENT.with(|c| c.replace(head)))
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let previous = self.0.take();
        // The value dropped here is a context entry (values are the user's, so a destructor
        // may run; `try_with`: at thread exit the slot may already be gone).
        let _ = CURRENT.try_with(|c| drop(c.replace(previous)));
    }
}

/// The context a task created here and now inherits, if any value is set.
#[inline(always)]
pub(crate) fn snapshot() -> Option<ContextSnapshot> {
    if !any_set() {
        return None;
    }
    current_head().map(ContextSnapshot)
}

/// `f`, bound to the context visible now (asyncio's `call_soon` copies the current context
/// into the callback's handle): it runs in that context wherever it is called.
#[inline(always)]
pub(crate) fn bind_callback(f: Box<dyn FnOnce()>) -> Box<dyn FnOnce()> {
    if !any_set() {
        return f;
    }
    bind_to_current(f)
}

/// `bind_callback`'s slow path: a value is set.
#[inline(never)]
fn bind_to_current(f: Box<dyn FnOnce()>) -> Box<dyn FnOnce()> {
    match current_head() {
        None => f,
        Some(head) => Box::new(move || {
            let _enter = Enter::new(Some(head));
            f()
        }),
    }
}

/// `future`, run in `context` (what `create_task` wraps a future in when the spawning code had
/// a context): every poll swaps the context in and back out.
///
/// The inner future is kept until the wrapper itself is dropped — not dropped inside the poll
/// that completed it, as an `async` block would — so that the task core drops it, in place,
/// after the poll (a panicking destructor is then a destructor panic, not a failed poll), with
/// the context entered for the drop too. It is boxed to be pinned without `unsafe`: one
/// allocation, for tasks with a context only.
pub(crate) fn in_context<F: Future>(context: ContextSnapshot, future: F) -> InContext<F> {
    InContext {
        context,
        future: Some(Box::pin(future)),
    }
}

/// The future of [`in_context`].
pub(crate) struct InContext<F> {
    context: ContextSnapshot,
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _enter = Enter::new(Some(this.context.0.clone()));
        match this.future.as_mut() {
            Some(future) => future.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<F> Drop for InContext<F> {
    fn drop(&mut self) {
        let _enter = Enter::new(Some(self.context.0.clone()));
        drop(self.future.take());
    }
}

/// A key for a task-local value of type `T` (asyncio's `ContextVar`, typed). Declare it as a
/// `static`; its identity is its address.
///
/// ```
/// use evloop_core::{EventLoop, TaskLocal};
///
/// static REQUEST: TaskLocal<u32> = TaskLocal::new();
///
/// let lp = EventLoop::new()?;
/// let seen = lp.run_until_complete(REQUEST.scope(7, async {
///     let probe = evloop_core::running_loop().unwrap();
///     // A task created inside the scope inherits the value...
///     let child = probe.create_task(async { REQUEST.get() });
///     // ...which the parent can override for a part of its own work.
///     let inner = REQUEST.scope(8, async { REQUEST.get() }).await;
///     (REQUEST.get(), inner, child.await.unwrap())
/// }))?;
/// assert_eq!(seen, (Some(7), Some(8), Some(7)));
/// assert_eq!(REQUEST.get(), None); // outside every scope
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub struct TaskLocal<T: 'static> {
    /// Keeps the static from being zero-sized, so that every key has its own address.
    _addr: u8,
    _type: PhantomData<fn() -> T>,
}

impl<T: 'static> TaskLocal<T> {
    /// A new key (for a `static`).
    pub const fn new() -> TaskLocal<T> {
        TaskLocal {
            _addr: 0,
            _type: PhantomData,
        }
    }

    fn id(&'static self) -> usize {
        self as *const TaskLocal<T> as usize
    }

    /// Runs `future` with this key set to `value` (and every other key as it was): the value is
    /// visible to the future's code and inherited by the tasks it creates. The scope sits on top
    /// of the context found at its first poll.
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> impl Future<Output = F::Output> {
        let key = self.id();
        async move {
            let entry = Rc::new(Entry {
                key,
                value: Rc::new(value),
                parent: current_head(),
            });
            let mut future = std::pin::pin!(future);
            std::future::poll_fn(|cx| {
                let _enter = Enter::new(Some(entry.clone()));
                future.as_mut().poll(cx)
            })
            .await
        }
    }

    /// Runs `f` with this key set to `value`.
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        let entry = Rc::new(Entry {
            key: self.id(),
            value: Rc::new(value),
            parent: current_head(),
        });
        let _enter = Enter::new(Some(entry));
        f()
    }

    /// Calls `f` with the value visible here, if the key is set.
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let key = self.id();
        let head = current_head();
        let mut entry = head.as_deref();
        while let Some(e) = entry {
            if e.key == key {
                return f(e.value.downcast_ref::<T>());
            }
            entry = e.parent.as_deref();
        }
        f(None)
    }

    /// A clone of the value visible here, if the key is set.
    pub fn get(&'static self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|v| v.cloned())
    }
}

impl<T: 'static> Default for TaskLocal<T> {
    fn default() -> TaskLocal<T> {
        TaskLocal::new()
    }
}

impl<T: 'static> fmt::Debug for TaskLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocal")
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}
