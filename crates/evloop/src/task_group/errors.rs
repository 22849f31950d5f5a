//! How a group reports failures: [`TaskGroupError`] (one child), [`TaskGroupErrors`] (all of
//! them: asyncio's `ExceptionGroup`), and [`SpawnError`].

use std::any::Any;
use std::fmt;

/// Why a child of a [`TaskGroup`](crate::TaskGroup) failed.
pub enum TaskGroupError<E> {
    /// The child returned `Err(e)`.
    Failed(E),
    /// The child panicked; this is the panic payload (use it with `std::panic::resume_unwind`).
    Panicked(Box<dyn Any + Send + 'static>),
}

impl<E> TaskGroupError<E> {
    /// True if the child panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, TaskGroupError::Panicked(_))
    }

    /// The child's error, if it returned one.
    pub fn into_failure(self) -> Option<E> {
        match self {
            TaskGroupError::Failed(e) => Some(e),
            TaskGroupError::Panicked(_) => None,
        }
    }

    /// The panic payload, if the child panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            TaskGroupError::Panicked(p) => Some(p),
            TaskGroupError::Failed(_) => None,
        }
    }

    /// The panic message, if the child panicked with a string payload.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskGroupError::Panicked(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            TaskGroupError::Failed(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            TaskGroupError::Panicked(_) => match self.panic_message() {
                Some(m) => f.debug_tuple("Panicked").field(&m).finish(),
                None => f.write_str("Panicked(..)"),
            },
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskGroupError::Failed(e) => write!(f, "task failed: {e}"),
            TaskGroupError::Panicked(_) => match self.panic_message() {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TaskGroupError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskGroupError::Failed(e) => Some(e),
            TaskGroupError::Panicked(_) => None,
        }
    }
}

/// Every failure of a [`task_group`](crate::task_group) or [`join_set`](crate::join_set)
/// scope, in the order they happened: asyncio's `ExceptionGroup`.
///
/// Each entry is a child that returned `Err` or panicked (also while being cancelled: a panic
/// in its destructor), or the body itself — an `Err` it returned, a panic, or a panic in its
/// destructor when the group cancelled it. Children the group cancelled are not failures.
/// It is never empty.
///
/// ```
/// use evloop::{TaskGroupError, task_group};
///
/// evloop::run(async {
///     let errors = task_group(async |g| {
///         g.spawn(async { Err::<(), _>("child") });
///         evloop::sleep(std::time::Duration::from_secs(60)).await; // cancelled here
///         Ok(())
///     })
///     .await
///     .unwrap_err();
///     assert_eq!(errors.len(), 1);
///     assert_eq!(errors.failures().collect::<Vec<_>>(), [&"child"]);
///     assert_eq!(errors.to_string(), "1 error in the task group: task failed: child");
///     assert!(matches!(errors.into_vec()[..], [TaskGroupError::Failed("child")]));
/// })?;
/// # Ok::<(), evloop::Error>(())
/// ```
pub struct TaskGroupErrors<E> {
    errors: Vec<TaskGroupError<E>>,
}

impl<E> TaskGroupErrors<E> {
    pub(super) fn new(errors: Vec<TaskGroupError<E>>) -> TaskGroupErrors<E> {
        TaskGroupErrors { errors }
    }

    /// How many failures.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false (a group with no failure returns `Ok`); here for clippy's sake and for
    /// symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The failures, in the order they happened.
    pub fn errors(&self) -> &[TaskGroupError<E>] {
        &self.errors
    }

    /// The failures, in the order they happened.
    pub fn iter(&self) -> std::slice::Iter<'_, TaskGroupError<E>> {
        self.errors.iter()
    }

    /// The `Err` values (of children and of the body), skipping panics.
    pub fn failures(&self) -> impl Iterator<Item = &E> {
        self.errors.iter().filter_map(|e| match e {
            TaskGroupError::Failed(e) => Some(e),
            TaskGroupError::Panicked(_) => None,
        })
    }

    /// The panic payloads, skipping `Err` values.
    pub fn panics(&self) -> impl Iterator<Item = &(dyn Any + Send + 'static)> {
        self.errors.iter().filter_map(|e| match e {
            TaskGroupError::Panicked(p) => Some(p.as_ref()),
            TaskGroupError::Failed(_) => None,
        })
    }

    /// The failures, by value.
    pub fn into_vec(self) -> Vec<TaskGroupError<E>> {
        self.errors
    }
}

impl<E> IntoIterator for TaskGroupErrors<E> {
    type Item = TaskGroupError<E>;
    type IntoIter = std::vec::IntoIter<TaskGroupError<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a, E> IntoIterator for &'a TaskGroupErrors<E> {
    type Item = &'a TaskGroupError<E>;
    type IntoIter = std::slice::Iter<'a, TaskGroupError<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl<E> From<TaskGroupErrors<E>> for Vec<TaskGroupError<E>> {
    fn from(errors: TaskGroupErrors<E>) -> Vec<TaskGroupError<E>> {
        errors.errors
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupErrors<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskGroupErrors")
            .field(&self.errors)
            .finish()
    }
}

/// `N errors in the task group: <first>; <second>; ...`
impl<E: fmt::Display> fmt::Display for TaskGroupErrors<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the task group",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The source is the first failure.
impl<E: std::error::Error + 'static> std::error::Error for TaskGroupErrors<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.errors
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why a [`TaskSpawner`](crate::TaskSpawner) did not start a child (asyncio's
/// `create_task` raises `RuntimeError` for the same cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The group is cancelling its children (a child failed, the body failed, or `cancel`
    /// was called): "TaskGroup is shutting down".
    ShuttingDown,
    /// The group's scope has returned or was dropped: "TaskGroup is finished".
    Finished,
    /// No event loop runs on this thread.
    NoRunningLoop,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::ShuttingDown => "TaskGroup is shutting down",
            SpawnError::Finished => "TaskGroup is finished",
            SpawnError::NoRunningLoop => "no running event loop",
        })
    }
}

impl std::error::Error for SpawnError {}
