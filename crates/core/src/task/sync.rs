//! The synchronisation primitives of the task core: std's, or loom's under `--cfg loom`, so that
//! the loom models (`tests/loom_task.rs`) explore every interleaving of the state word *and*
//! check every access to the cells it guards.

#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, fence};

/// An `UnsafeCell` whose only access is a closure over a raw pointer (loom's shape), so the same
/// code is checked by loom and runs at full speed otherwise.
pub(crate) struct RawCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
}

impl<T> RawCell<T> {
    pub(crate) fn new(value: T) -> RawCell<T> {
        RawCell {
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a pointer to the value. Reading or writing through it is the caller's
    /// claim of exclusive access, which the task core backs with an ownership token.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in the task core only moves
/// wakers and names and leaves the data consistent even if a panic unwinds through it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> impl std::ops::DerefMut<Target = T> + '_ {
    #[cfg(loom)]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
