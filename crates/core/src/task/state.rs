//! The bits of a task's state word.
//!
//! One `AtomicUsize` per task holds every flag below plus a reference count in the high bits.
//! All transitions are compare-and-swap loops in `header.rs` / `raw.rs`; the comments there say
//! which party owns the future in each state.

/// A `Runnable` for the task exists (queued, or about to run). Whoever holds it owns the future.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// The future is being polled right now.
pub(crate) const RUNNING: usize = 1 << 1;
/// The future is gone and the outcome (output, panic or cancellation) is stored.
pub(crate) const COMPLETED: usize = 1 << 2;
/// The stored outcome has been taken or dropped. Final.
pub(crate) const CLOSED: usize = 1 << 3;
/// The typed `Task<T>` handle is alive.
pub(crate) const HANDLE: usize = 1 << 4;
/// `cancel()` was called; the future is dropped at its next scheduling point.
pub(crate) const CANCEL_REQUESTED: usize = 1 << 5;
/// The task ended by cancellation.
pub(crate) const CANCELLED: usize = 1 << 6;
/// The task ended by a panic.
pub(crate) const PANICKED: usize = 1 << 7;
/// One reference (waker, runnable, `Task`, `TaskRef`).
pub(crate) const REFERENCE: usize = 1 << 8;
/// The reference-count bits.
pub(crate) const REF_MASK: usize = !(REFERENCE - 1);
