//! Event loop policies and the process-wide current policy.

use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use evloop_core::{Error, EventLoop};

use crate::binding::Binding;

/// Decides what "the current loop" of a thread is (asyncio's `AbstractEventLoopPolicy`).
///
/// A policy is shared by every thread, so it is `Send + Sync`; the loops themselves are
/// `!Send` and must be kept per thread (the built-in policies keep them in thread-locals).
/// The free functions [`get_event_loop`](crate::get_event_loop),
/// [`set_event_loop`](crate::set_event_loop) and [`new_event_loop`](crate::new_event_loop) go
/// through the policy installed with [`set_event_loop_policy`].
///
/// A custom policy usually wraps a built-in one and changes one thing, for instance how loops
/// are made:
///
/// ```
/// use evloop_core::{Error, EventLoop};
/// use evloop_policy::{DefaultEventLoopPolicy, EventLoopPolicy};
///
/// /// Every loop it makes is in debug mode.
/// struct DebugLoops(DefaultEventLoopPolicy);
///
/// impl EventLoopPolicy for DebugLoops {
///     fn get_event_loop(&self) -> Result<EventLoop, Error> {
///         self.0.get_event_loop()
///     }
///     fn set_event_loop(&self, lp: Option<&EventLoop>) {
///         self.0.set_event_loop(lp)
///     }
///     fn new_event_loop(&self) -> Result<EventLoop, Error> {
///         let lp = EventLoop::new()?;
///         lp.set_debug(true);
///         Ok(lp)
///     }
/// }
///
/// let policy = DebugLoops(DefaultEventLoopPolicy::new());
/// let lp = policy.new_event_loop()?;
/// assert!(lp.get_debug());
/// policy.set_event_loop(Some(&lp));
/// assert!(policy.get_event_loop()? == lp);
/// // Install it for the whole process with
/// // `evloop_policy::set_event_loop_policy(Some(Box::new(policy)))`.
/// # Ok::<(), Error>(())
/// ```
pub trait EventLoopPolicy: Send + Sync {
    /// The current loop of the calling thread, or an error if it has none (what "none" means
    /// is the policy's business; the default policy creates one on the main thread).
    ///
    /// The free function [`get_event_loop`](crate::get_event_loop) returns the *running* loop
    /// without asking the policy when a loop runs on the thread.
    fn get_event_loop(&self) -> Result<EventLoop, Error>;

    /// Makes `lp` the current loop of the calling thread; `None` unsets it.
    fn set_event_loop(&self, lp: Option<&EventLoop>);

    /// A new loop, as this policy makes them. It is not made current.
    fn new_event_loop(&self) -> Result<EventLoop, Error>;
}

/// asyncio's default policy (Python 3.12–3.13 behaviour).
///
/// - [`get_event_loop`](EventLoopPolicy::get_event_loop): the loop set for this thread; else,
///   on the main thread only (see [`is_main_thread`](crate::is_main_thread)) and only if
///   `set_event_loop` was never called there, a new loop that becomes the main thread's
///   current loop; else `Err(Error::NoCurrentLoop)` naming the thread.
/// - [`set_event_loop`](EventLoopPolicy::set_event_loop): sets (or unsets) this thread's loop.
///   The loop that was current is released: if that was its last handle, the loop is closed.
/// - [`new_event_loop`](EventLoopPolicy::new_event_loop): [`EventLoop::new`].
///
/// Each instance has its own per-thread state (as each asyncio policy object has its own
/// `threading.local`): installing a new policy starts every thread with no current loop. A
/// thread that ends drops its current loops, which closes them unless handles to them remain.
///
/// ```
/// use evloop_policy::{DefaultEventLoopPolicy, EventLoopPolicy};
///
/// let policy = DefaultEventLoopPolicy::new();
/// std::thread::Builder::new()
///     .name("worker-7".into())
///     .spawn(move || {
///         let err = policy.get_event_loop().unwrap_err();
///         assert_eq!(err.to_string(), "There is no current event loop in thread 'worker-7'.");
///         let lp = policy.new_event_loop().unwrap();
///         policy.set_event_loop(Some(&lp));
///         assert!(policy.get_event_loop().unwrap() == lp);
///     })?
///     .join()
///     .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DefaultEventLoopPolicy {
    binding: Binding,
}

impl DefaultEventLoopPolicy {
    /// A default policy with no loop set on any thread.
    pub fn new() -> DefaultEventLoopPolicy {
        DefaultEventLoopPolicy {
            binding: Binding::new(),
        }
    }
}

impl Default for DefaultEventLoopPolicy {
    fn default() -> DefaultEventLoopPolicy {
        DefaultEventLoopPolicy::new()
    }
}

impl EventLoopPolicy for DefaultEventLoopPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        self.binding.get_or_create(true, || self.new_event_loop())
    }

    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.binding.set(lp);
    }

    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        EventLoop::new()
    }
}

impl fmt::Debug for DefaultEventLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultEventLoopPolicy")
    }
}

/// A policy that never creates a loop behind your back (asyncio 3.14's behaviour): like
/// [`DefaultEventLoopPolicy`], except that `get_event_loop` on a thread without a current loop
/// is `Err(Error::NoCurrentLoop)` on the main thread too.
///
/// ```
/// use evloop_policy::{EventLoopPolicy, StrictEventLoopPolicy};
///
/// let policy = StrictEventLoopPolicy::new();
/// assert!(policy.get_event_loop().is_err()); // on any thread, main included
/// let lp = policy.new_event_loop()?;
/// policy.set_event_loop(Some(&lp));
/// assert!(policy.get_event_loop()? == lp);
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub struct StrictEventLoopPolicy {
    binding: Binding,
}

impl StrictEventLoopPolicy {
    /// A strict policy with no loop set on any thread.
    pub fn new() -> StrictEventLoopPolicy {
        StrictEventLoopPolicy {
            binding: Binding::new(),
        }
    }
}

impl Default for StrictEventLoopPolicy {
    fn default() -> StrictEventLoopPolicy {
        StrictEventLoopPolicy::new()
    }
}

impl EventLoopPolicy for StrictEventLoopPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        self.binding.get_or_create(false, EventLoop::new)
    }

    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.binding.set(lp);
    }

    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        EventLoop::new()
    }
}

impl fmt::Debug for StrictEventLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StrictEventLoopPolicy")
    }
}

type SharedPolicy = Arc<dyn EventLoopPolicy>;

static POLICY: LazyLock<RwLock<SharedPolicy>> =
    LazyLock::new(|| RwLock::new(Arc::new(DefaultEventLoopPolicy::new())));

/// The policy in force for the whole process (a [`DefaultEventLoopPolicy`] unless
/// [`set_event_loop_policy`] installed another).
///
/// ```
/// let policy = evloop_policy::get_event_loop_policy();
/// let lp = policy.new_event_loop()?;
/// assert!(!lp.is_closed());
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn get_event_loop_policy() -> Arc<dyn EventLoopPolicy> {
    POLICY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Installs `policy` for the whole process; `None` installs a fresh [`DefaultEventLoopPolicy`].
///
/// Every thread starts over under the new policy: the loops set through the old one are no
/// longer current (each thread drops them the next time it uses the policy layer, or when it
/// ends). Policies are process-global, so set one at start-up, before other threads use loops.
///
/// ```
/// use evloop_policy::{StrictEventLoopPolicy, set_event_loop_policy};
///
/// set_event_loop_policy(Some(Box::new(StrictEventLoopPolicy::new())));
/// assert!(evloop_policy::get_event_loop().is_err());
/// set_event_loop_policy(None); // back to the default
/// ```
pub fn set_event_loop_policy(policy: Option<Box<dyn EventLoopPolicy>>) {
    let new: SharedPolicy = match policy {
        Some(p) => Arc::from(p),
        None => Arc::new(DefaultEventLoopPolicy::new()),
    };
    let old = std::mem::replace(
        &mut *POLICY.write().unwrap_or_else(PoisonError::into_inner),
        new,
    );
    // Dropped outside the lock: a policy's destructor may call back into this module.
    drop(old);
}
