//! Why a task has no output.

use std::any::Any;
use std::fmt;

/// Why awaiting a task gave no output: it was cancelled, or its future panicked.
pub enum JoinError {
    /// The task was cancelled (or its loop closed) before it finished.
    Cancelled,
    /// The task's future panicked; this is the panic payload.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// True if the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload, if the task panicked. Use it with `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            JoinError::Panicked(p) => Some(p),
            JoinError::Cancelled => None,
        }
    }

    /// The panic message, when the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => panic_message(p.as_ref()),
            JoinError::Cancelled => None,
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
            JoinError::Panicked(p) => match panic_message(p.as_ref()) {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl std::error::Error for JoinError {}
