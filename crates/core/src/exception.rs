//! `ExceptionContext`: what the loop's exception handler is told.

use std::any::Any;
use std::fmt;

use crate::task::{TaskRef, panic_message};

/// An error the loop could not hand to anyone else: a panic in a callback, a task's panic
/// that nobody read, a task destroyed while pending (asyncio's exception-handler `context`).
///
/// ```
/// use evloop_core::ExceptionContext;
///
/// let ctx = ExceptionContext::new("Exception in callback").with_panic(Box::new("boom"));
/// assert_eq!(ctx.message(), "Exception in callback");
/// assert_eq!(ctx.panic_message(), Some("boom"));
/// assert!(ctx.task().is_none());
/// ```
pub struct ExceptionContext {
    message: String,
    panic: Option<Box<dyn Any + Send>>,
    task: Option<TaskRef>,
}

impl ExceptionContext {
    /// A context with a message.
    pub fn new(message: impl Into<String>) -> ExceptionContext {
        ExceptionContext {
            message: message.into(),
            panic: None,
            task: None,
        }
    }

    /// Attaches a panic payload.
    pub fn with_panic(mut self, payload: Box<dyn Any + Send>) -> ExceptionContext {
        self.panic = Some(payload);
        self
    }

    /// Attaches the task concerned.
    pub fn with_task(mut self, task: TaskRef) -> ExceptionContext {
        self.task = Some(task);
        self
    }

    /// The message, e.g. "Task exception was never retrieved".
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The panic's message, if there was a panic with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_deref().and_then(panic_message)
    }

    /// The panic payload, if any.
    pub fn panic_payload(&self) -> Option<&(dyn Any + Send)> {
        self.panic.as_deref()
    }

    /// The task concerned, if any.
    pub fn task(&self) -> Option<TaskRef> {
        self.task.clone()
    }
}

impl fmt::Debug for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExceptionContext")
            .field("message", &self.message)
            .field("panic", &self.panic_message())
            .field("task", &self.task.as_ref().map(TaskRef::name))
            .finish()
    }
}

/// What the default exception handler does: one `tracing::error!` event.
pub(crate) fn log_exception(ctx: &ExceptionContext) {
    match (&ctx.task, ctx.panic_message()) {
        (Some(t), Some(p)) => tracing::error!(
            task.id = t.id().as_u64(),
            task.name = %t.name(),
            panic = p,
            "{}",
            ctx.message
        ),
        (Some(t), None) => tracing::error!(
            task.id = t.id().as_u64(),
            task.name = %t.name(),
            "{}",
            ctx.message
        ),
        (None, Some(p)) => tracing::error!(panic = p, "{}", ctx.message),
        (None, None) => tracing::error!("{}", ctx.message),
    }
}
