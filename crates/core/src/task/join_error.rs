//! Why a task has no output.

use std::any::Any;
use std::fmt;

/// Why awaiting a task gave no output: it was cancelled, its future panicked, or the await
/// itself was wrong (a task awaiting its own handle).
///
/// Match cancellations with [`is_cancelled`](JoinError::is_cancelled): a cancellation that
/// carried a message ([`Task::cancel_with`](super::Task::cancel_with)) is
/// [`CancelledWith`](JoinError::CancelledWith), not [`Cancelled`](JoinError::Cancelled).
#[non_exhaustive]
pub enum JoinError {
    /// The task was cancelled (or its loop closed) before it finished.
    Cancelled,
    /// The task was cancelled by a request that carried this message (asyncio's
    /// `task.cancel(msg)`, whose message reaches the `CancelledError`).
    CancelledWith(String),
    /// The task's future panicked; this is the panic payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// A task awaited its own handle, which could never complete (asyncio raises
    /// `RuntimeError: Task cannot await on itself`). The task itself goes on.
    AwaitedItself,
}

impl JoinError {
    /// True if the task was cancelled, with or without a message.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled | JoinError::CancelledWith(_))
    }

    /// The message of the cancel request that ended the task, if it had one.
    pub fn cancel_message(&self) -> Option<&str> {
        match self {
            JoinError::CancelledWith(m) => Some(m),
            _ => None,
        }
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload, if the task panicked. Use it with `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            JoinError::Panicked(p) => Some(p),
            _ => None,
        }
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => panic_message(p.as_ref()),
            _ => None,
        }
    }
}

/// The text of a panic payload, if it is a `&str` or `String`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        Some(s)
    } else {
        payload.downcast_ref::<String>().map(String::as_str)
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::CancelledWith(m) => write!(f, "JoinError::CancelledWith({m:?})"),
            JoinError::AwaitedItself => f.write_str("JoinError::AwaitedItself"),
            JoinError::Panicked(p) => match panic_message(p.as_ref()) {
                Some(m) => write!(f, "JoinError::Panicked({m:?})"),
                None => f.write_str("JoinError::Panicked(..)"),
            },
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::CancelledWith(m) => write!(f, "task was cancelled: {m}"),
            JoinError::AwaitedItself => f.write_str("Task cannot await on itself"),
            JoinError::Panicked(p) => match panic_message(p.as_ref()) {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl std::error::Error for JoinError {}
