//! `LoopFuture`: asyncio's `Future` — a result that callbacks or tasks set, and that tasks
//! await, bound to one loop (`EventLoop::create_future`).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use crate::exception::{ExceptionContext, log_exception};
use crate::exception_handler::drop_reported;
use crate::loop_state::{EventLoop, LoopInner};

impl EventLoop {
    /// A new pending [`LoopFuture`] bound to this loop (asyncio's `loop.create_future()`):
    /// its done callbacks are scheduled with this loop's `call_soon`.
    ///
    /// ```
    /// use evloop_core::{EventLoop, FutureError, LoopFuture};
    ///
    /// let lp = EventLoop::new()?;
    /// let fut: LoopFuture<u32, String> = lp.create_future();
    /// let setter = fut.clone();
    /// lp.call_soon(move || setter.set_result(42).unwrap());
    /// assert_eq!(lp.run_until_complete(fut.clone())?, Ok(42));
    ///
    /// let failing: LoopFuture<u32, String> = lp.create_future();
    /// failing.set_error("boom".to_string()).unwrap();
    /// assert_eq!(failing.result(), Some(Err(FutureError::Failed("boom".to_string()))));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn create_future<T: 'static, E: 'static>(&self) -> LoopFuture<T, E> {
        LoopFuture::new(self)
    }
}

/// Why a [`LoopFuture`] has no value: it was cancelled, or it was given an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FutureError<E> {
    /// Cancelled (asyncio's `CancelledError`), with the message given to
    /// [`cancel_with`](LoopFuture::cancel_with), if any.
    Cancelled(Option<String>),
    /// The error given to [`set_error`](LoopFuture::set_error) (asyncio's `set_exception`).
    Failed(E),
}

impl<E> FutureError<E> {
    /// True if the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FutureError::Cancelled(_))
    }

    /// The cancel message, if the future was cancelled with one.
    pub fn cancel_message(&self) -> Option<&str> {
        match self {
            FutureError::Cancelled(m) => m.as_deref(),
            FutureError::Failed(_) => None,
        }
    }

    /// The error set with `set_error`, if that is what ended the future.
    pub fn into_error(self) -> Option<E> {
        match self {
            FutureError::Failed(e) => Some(e),
            FutureError::Cancelled(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for FutureError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled(None) => f.write_str("future was cancelled"),
            FutureError::Cancelled(Some(m)) => write!(f, "future was cancelled: {m}"),
            FutureError::Failed(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FutureError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FutureError::Failed(e) => Some(e),
            FutureError::Cancelled(_) => None,
        }
    }
}

/// A [`LoopFuture`] was set or failed a second time (asyncio's `InvalidStateError`): it is
/// done already. Gives back the value that was refused.
pub struct InvalidStateError<V> {
    value: V,
    cancelled: bool,
}

impl<V> InvalidStateError<V> {
    /// The value that was not stored.
    pub fn into_inner(self) -> V {
        self.value
    }

    /// True if the future had been cancelled (else it had a result or an error).
    pub fn was_cancelled(&self) -> bool {
        self.cancelled
    }

    fn state(&self) -> &'static str {
        if self.cancelled {
            "CANCELLED"
        } else {
            "FINISHED"
        }
    }
}

impl<V> fmt::Debug for InvalidStateError<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InvalidStateError({})", self.state())
    }
}

impl<V> fmt::Display for InvalidStateError<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid state: {}", self.state())
    }
}

impl<V> std::error::Error for InvalidStateError<V> {}

/// Names a done callback of a [`LoopFuture`], for
/// [`remove_done_callback`](LoopFuture::remove_done_callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DoneCallbackId(u64);

type DoneCallback<T, E> = Box<dyn FnOnce(&LoopFuture<T, E>)>;

enum State<T, E> {
    Pending,
    Done(Result<T, E>),
    Cancelled(Option<String>),
}

/// Who waits for the future, in registration order: a done callback, or an awaiter's waker.
enum Waiter<T, E> {
    Callback(DoneCallback<T, E>),
    Waker(Waker),
}

struct Core<T, E> {
    state: State<T, E>,
    waiters: Vec<(u64, Waiter<T, E>)>,
    next_key: u64,
    /// The error was read (or the future cancelled after it): no "never retrieved" report.
    retrieved: bool,
}

struct Shared<T, E> {
    lp: Weak<LoopInner>,
    core: RefCell<Core<T, E>>,
}

/// asyncio's `Future`, bound to one loop: a value (or an error, or a cancellation) that one
/// place sets — a callback, a task, a protocol — and others await or get called back about.
///
/// Made by [`EventLoop::create_future`] (or [`LoopFuture::new`]). A cheap `Clone` handle: the
/// clones are the same future (the setter and the awaiters usually hold different ones).
/// `!Send`, like [`EventLoop`]: it lives on its loop's thread; from another thread, set it in
/// a [`call_soon_threadsafe`](crate::LoopHandle::call_soon_threadsafe) callback.
///
/// - [`set_result`](Self::set_result), [`set_error`](Self::set_error) (asyncio's
///   `set_exception`: the error type is `E`), [`cancel`](Self::cancel) /
///   [`cancel_with`](Self::cancel_with): the first one wins; setting a done future gives
///   `Err(InvalidStateError)` back with the value.
/// - Awaiting it gives `Result<T, FutureError<E>>`, to every awaiter (so `T` and `E` must be
///   `Clone`; wrap a value that is not in an `Rc`). [`result`](Self::result) reads it without
///   waiting.
/// - [`add_done_callback`](Self::add_done_callback): once the future is done, each callback is
///   scheduled with `call_soon` on the future's loop, in registration order (an awaiting task
///   is woken at its place in that order); one added later is scheduled at once.
/// - An error nobody read (by `result`, by awaiting, or by a `cancel` after it) is reported as
///   "Future exception was never retrieved" through the loop's exception handler when the
///   last handle goes.
///
/// The future holds its loop weakly: it does not keep a loop alive, and callbacks added or
/// due after the loop is gone are dropped.
///
/// ```
/// use evloop_core::{EventLoop, LoopFuture};
/// use std::{cell::RefCell, rc::Rc};
///
/// let lp = EventLoop::new()?;
/// let fut: LoopFuture<&str> = lp.create_future();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// fut.add_done_callback(move |f| l.borrow_mut().push(f.is_cancelled()));
/// let canceller = fut.clone();
/// lp.call_soon(move || {
///     canceller.cancel_with("no longer needed");
/// });
/// let err = lp.run_until_complete(fut.clone())?.unwrap_err();
/// assert_eq!(err.cancel_message(), Some("no longer needed"));
/// assert!(fut.set_result("late").is_err()); // InvalidStateError: it is done
/// lp.run_until_complete(evloop_core::yield_now())?;
/// assert_eq!(*log.borrow(), [true]);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub struct LoopFuture<T, E = std::convert::Infallible> {
    shared: Rc<Shared<T, E>>,
    /// The key of the waker this handle registered as an awaiter, if any.
    waiting: Option<u64>,
}

impl<T: 'static, E: 'static> LoopFuture<T, E> {
    /// A new pending future bound to `lp` (as [`EventLoop::create_future`]).
    pub fn new(lp: &EventLoop) -> LoopFuture<T, E> {
        LoopFuture {
            shared: Rc::new(Shared {
                lp: Rc::downgrade(&lp.inner),
                core: RefCell::new(Core {
                    state: State::Pending,
                    waiters: Vec::new(),
                    next_key: 0,
                    retrieved: false,
                }),
            }),
            waiting: None,
        }
    }

    /// Marks the future done with `value` and schedules its callbacks. `Err` (with `value`) if
    /// it was done already.
    pub fn set_result(&self, value: T) -> Result<(), InvalidStateError<T>> {
        self.finish(value, |v| State::Done(Ok(v)))
    }

    /// Marks the future failed with `error` (asyncio's `set_exception`) and schedules its
    /// callbacks. `Err` (with `error`) if it was done already.
    pub fn set_error(&self, error: E) -> Result<(), InvalidStateError<E>> {
        self.finish(error, |e| State::Done(Err(e)))
    }

    /// Cancels the future and schedules its callbacks; `false` (and nothing changes) if it
    /// was done already. Awaiting it then gives `Err(FutureError::Cancelled(None))`.
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// [`cancel`](Self::cancel) with a message (asyncio's `cancel(msg)`), which
    /// [`FutureError::cancel_message`] reads back.
    pub fn cancel_with(&self, message: impl Into<String>) -> bool {
        self.cancel_inner(Some(message.into()))
    }

    fn cancel_inner(&self, message: Option<String>) -> bool {
        {
            let mut core = self.shared.core.borrow_mut();
            // As asyncio, even a refused cancel means the error need not be reported.
            core.retrieved = true;
        }
        self.finish(message, State::Cancelled).is_ok()
    }

    /// Stores the outcome `make(value)` unless the future is done, then wakes its waiters in
    /// registration order: callbacks through `call_soon`, awaiters through their wakers.
    fn finish<V>(
        &self,
        value: V,
        make: impl FnOnce(V) -> State<T, E>,
    ) -> Result<(), InvalidStateError<V>> {
        let waiters = {
            let mut core = self.shared.core.borrow_mut();
            match core.state {
                State::Pending => {}
                State::Cancelled(_) => {
                    return Err(InvalidStateError {
                        value,
                        cancelled: true,
                    });
                }
                State::Done(_) => {
                    return Err(InvalidStateError {
                        value,
                        cancelled: false,
                    });
                }
            }
            core.state = make(value);
            std::mem::take(&mut core.waiters)
        };
        let lp = self.get_loop();
        for (_, waiter) in waiters {
            match waiter {
                Waiter::Waker(w) => w.wake(),
                Waiter::Callback(f) => self.schedule(lp.as_ref(), f),
            }
        }
        Ok(())
    }

    /// Schedules the done callback `f` on `lp` (dropped if the loop is gone).
    fn schedule(&self, lp: Option<&EventLoop>, f: DoneCallback<T, E>) {
        match lp {
            Some(lp) => {
                let me = self.clone();
                lp.call_soon(move || f(&me));
            }
            None => drop_reported(f, "a done callback of a future whose loop is gone"),
        }
    }

    /// True once the future has a result or an error, or was cancelled (asyncio's `done()`).
    pub fn is_done(&self) -> bool {
        !matches!(self.shared.core.borrow().state, State::Pending)
    }

    /// True if the future was cancelled (asyncio's `cancelled()`).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.shared.core.borrow().state, State::Cancelled(_))
    }

    /// The outcome, without waiting: `None` while pending (where asyncio's `result()` raises
    /// `InvalidStateError`), else the value, the error or the cancellation. Reading an error
    /// counts as retrieving it.
    pub fn result(&self) -> Option<Result<T, FutureError<E>>>
    where
        T: Clone,
        E: Clone,
    {
        let mut core = self.shared.core.borrow_mut();
        let out = match &core.state {
            State::Pending => return None,
            State::Done(Ok(v)) => Ok(v.clone()),
            State::Done(Err(e)) => Err(FutureError::Failed(e.clone())),
            State::Cancelled(m) => Err(FutureError::Cancelled(m.clone())),
        };
        core.retrieved = true;
        Some(out)
    }

    /// Calls `f` with this future once it is done: scheduled with `call_soon` on the future's
    /// loop when it completes, after the callbacks added before it; if the future is done
    /// already, scheduled now. Returns an id for [`remove_done_callback`](Self::remove_done_callback).
    pub fn add_done_callback(&self, f: impl FnOnce(&LoopFuture<T, E>) + 'static) -> DoneCallbackId {
        let f: DoneCallback<T, E> = Box::new(f);
        let mut core = self.shared.core.borrow_mut();
        let key = core.next_key;
        core.next_key += 1;
        if matches!(core.state, State::Pending) {
            core.waiters.push((key, Waiter::Callback(f)));
        } else {
            drop(core);
            self.schedule(self.get_loop().as_ref(), f);
        }
        DoneCallbackId(key)
    }

    /// Removes a done callback that has not been scheduled yet (asyncio's
    /// `remove_done_callback`; a Rust closure has no equality, so it is named by the id
    /// `add_done_callback` returned). True if it was removed, false if it was scheduled
    /// already or removed before. The callback is dropped now.
    pub fn remove_done_callback(&self, id: DoneCallbackId) -> bool {
        let removed = {
            let mut core = self.shared.core.borrow_mut();
            let at = core
                .waiters
                .iter()
                .position(|(k, w)| *k == id.0 && matches!(w, Waiter::Callback(_)));
            at.map(|i| core.waiters.remove(i))
        };
        let found = removed.is_some();
        drop_reported(removed, "a removed done callback");
        found
    }

    /// The loop the future is bound to, unless it is gone (asyncio's `get_loop()`).
    pub fn get_loop(&self) -> Option<EventLoop> {
        self.shared.lp.upgrade().map(|inner| EventLoop { inner })
    }

    /// Number of done callbacks waiting for the future (for `Debug` and tests).
    fn pending_callbacks(&self) -> usize {
        let core = self.shared.core.borrow();
        core.waiters
            .iter()
            .filter(|(_, w)| matches!(w, Waiter::Callback(_)))
            .count()
    }
}

impl<T, E> LoopFuture<T, E> {
    /// Takes back the waker this handle registered as an awaiter, if any.
    fn stop_waiting(&mut self) {
        if let Some(key) = self.waiting.take() {
            let removed = {
                let mut core = self.shared.core.borrow_mut();
                let at = core.waiters.iter().position(|(k, _)| *k == key);
                at.map(|i| core.waiters.remove(i))
            };
            // Outside the borrow: dropping a waker may drop a task that holds this future.
            drop(removed);
        }
    }
}

impl<T, E> Clone for LoopFuture<T, E> {
    fn clone(&self) -> LoopFuture<T, E> {
        LoopFuture {
            shared: self.shared.clone(),
            waiting: None,
        }
    }
}

impl<T, E> Drop for LoopFuture<T, E> {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

impl<T, E> Drop for Shared<T, E> {
    /// asyncio's "Future exception was never retrieved", when the last handle goes.
    fn drop(&mut self) {
        let core = self.core.get_mut();
        if matches!(core.state, State::Done(Err(_))) && !core.retrieved {
            let ctx = ExceptionContext::new("Future exception was never retrieved");
            match self.lp.upgrade() {
                Some(inner) => EventLoop { inner }.call_exception_handler(ctx),
                None => log_exception(&ctx),
            }
        }
    }
}

impl<T: Clone + 'static, E: Clone + 'static> Future for LoopFuture<T, E> {
    type Output = Result<T, FutureError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut stale = None;
        {
            let mut core = this.shared.core.borrow_mut();
            if matches!(core.state, State::Pending) {
                let known = this.waiting.and_then(|key| {
                    core.waiters.iter_mut().find_map(|(k, w)| match w {
                        Waiter::Waker(w) if *k == key => Some(w),
                        _ => None,
                    })
                });
                match known {
                    Some(w) => {
                        if !w.will_wake(cx.waker()) {
                            stale = Some(std::mem::replace(w, cx.waker().clone()));
                        }
                    }
                    None => {
                        let key = core.next_key;
                        core.next_key += 1;
                        core.waiters.push((key, Waiter::Waker(cx.waker().clone())));
                        this.waiting = Some(key);
                    }
                }
                drop(core);
                // Outside the borrow, as in `stop_waiting`.
                drop(stale);
                return Poll::Pending;
            }
        }
        // Done: the completion took our waker along with the rest.
        this.waiting = None;
        match this.result() {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<T: fmt::Debug + 'static, E: fmt::Debug + 'static> fmt::Debug for LoopFuture<T, E> {
    /// asyncio's repr: `<LoopFuture pending>`, `<LoopFuture pending callbacks=2>`,
    /// `<LoopFuture cancelled>`, `<LoopFuture finished result=4>`,
    /// `<LoopFuture finished error="boom">`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let callbacks = self.pending_callbacks();
        let core = self.shared.core.borrow();
        match &core.state {
            State::Pending if callbacks == 0 => f.write_str("<LoopFuture pending>"),
            State::Pending => write!(f, "<LoopFuture pending callbacks={callbacks}>"),
            State::Cancelled(_) => f.write_str("<LoopFuture cancelled>"),
            State::Done(Ok(v)) => write!(f, "<LoopFuture finished result={v:?}>"),
            State::Done(Err(e)) => write!(f, "<LoopFuture finished error={e:?}>"),
        }
    }
}
