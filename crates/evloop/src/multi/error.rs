//! [`MultiError`]: why [`multi::run`](super::run) stopped its loops.

use std::any::Any;
use std::fmt;

use evloop_core::Error;

/// Why [`multi::run`](super::run) stopped every loop: the first failure of any loop, or
/// Ctrl-C. By the time it is returned, every loop's thread has been joined.
///
/// Only the first failure is returned; a loop failing while the others were being stopped is
/// logged (`tracing` at error level) and otherwise dropped.
///
/// ```
/// use evloop::multi::{self, MultiError};
///
/// let err = multi::run(2, |i| async move {
///     if i == 1 {
///         return Err("loop 1 gave up");
///     }
///     std::future::pending::<Result<(), &str>>().await // cancelled when loop 1 fails
/// })
/// .unwrap_err();
/// assert_eq!(err.index(), Some(1));
/// assert!(matches!(err, MultiError::Failed { error: "loop 1 gave up", .. }));
/// assert_eq!(err.to_string(), "loop 1 failed: loop 1 gave up");
/// ```
pub enum MultiError<E> {
    /// Loop `index`'s future returned `Err(error)`.
    Failed {
        /// The loop's index (the `i` its closure was called with).
        index: usize,
        /// What its future returned.
        error: E,
    },
    /// Loop `index`'s future panicked. `payload` is the panic's; to turn it back into a panic
    /// on this thread, `std::panic::resume_unwind(payload)`.
    Panicked {
        /// The loop's index.
        index: usize,
        /// The panic payload.
        payload: Box<dyn Any + Send + 'static>,
    },
    /// Ctrl-C (the first SIGINT on the main thread): every loop's main task was cancelled.
    Interrupted,
    /// The machinery failed rather than a loop's future: a loop or thread could not be
    /// created, a loop's shutdown failed, its main task was cancelled by something other than
    /// `multi::run`, or `run` was called from a running loop ([`Error::RunInRunningLoop`]).
    /// `index` is the loop's, `None` for the calling thread's own part.
    Loop {
        /// The loop's index, `None` for the calling thread.
        index: Option<usize>,
        /// What went wrong.
        error: Error,
    },
}

impl<E> MultiError<E> {
    /// The index of the loop that failed, `None` for [`Interrupted`](MultiError::Interrupted)
    /// and for failures of the calling thread's own part.
    pub fn index(&self) -> Option<usize> {
        match self {
            MultiError::Failed { index, .. } | MultiError::Panicked { index, .. } => Some(*index),
            MultiError::Loop { index, .. } => *index,
            MultiError::Interrupted => None,
        }
    }

    /// True if a loop's future panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, MultiError::Panicked { .. })
    }

    /// The error a loop's future returned, if that is what happened.
    pub fn into_failure(self) -> Option<E> {
        match self {
            MultiError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The panic payload, if a loop's future panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            MultiError::Panicked { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// The panic message, if a loop's future panicked with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            MultiError::Panicked { payload, .. } => payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for MultiError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultiError::Failed { index, error } => f
                .debug_struct("Failed")
                .field("index", index)
                .field("error", error)
                .finish(),
            MultiError::Panicked { index, .. } => f
                .debug_struct("Panicked")
                .field("index", index)
                .field("message", &self.panic_message())
                .finish_non_exhaustive(),
            MultiError::Interrupted => f.write_str("Interrupted"),
            MultiError::Loop { index, error } => f
                .debug_struct("Loop")
                .field("index", index)
                .field("error", error)
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for MultiError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultiError::Failed { index, error } => write!(f, "loop {index} failed: {error}"),
            MultiError::Panicked { index, .. } => match self.panic_message() {
                Some(m) => write!(f, "loop {index} panicked: {m}"),
                None => write!(f, "loop {index} panicked"),
            },
            MultiError::Interrupted => f.write_str("interrupted by Ctrl-C"),
            MultiError::Loop {
                index: Some(index),
                error,
            } => write!(f, "loop {index}: {error}"),
            MultiError::Loop { index: None, error } => write!(f, "{error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for MultiError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MultiError::Loop { error, .. } => Some(error),
            _ => None,
        }
    }
}
