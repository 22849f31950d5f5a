//! The `tracing` span of a task, and the one spelling of a task's identity in every event.
//!
//! Every task gets a span named `task` (target `evloop::task`, level `INFO`) with the fields
//! `task.id` (the [`TaskId`](crate::TaskId) as a `u64`), `task.name` (the name it was created
//! with: a `TaskBuilder` name, else `Task-N`; a later `set_name` is not reflected) and
//! `task.spawned_at` (`file:line:column` of the `create_task`/`spawn` call, or of the
//! `run_until_complete`/`evloop::run` call for a run's main task). The span is
//! entered around every poll of the task's future and around its drop, so an event the task's
//! code emits carries it. Events that name a task elsewhere (the exception handler's report,
//! a leaked future, an awaiter's panicking waker) use the same fields: `task.id` always,
//! `task.name` where the name is at hand.
//!
//! When no subscriber is interested in the span (none installed, or a filter that leaves
//! `evloop::task` out), the span is never built: creating the task costs one check of the
//! span's cached interest, and the task's future is not wrapped at all, so its polls cost
//! nothing extra.

use std::future::Future;
use std::panic::Location;

use tracing::Instrument;
use tracing::field::Empty;

use crate::task::TaskId;
use crate::task_local::{self, ContextSnapshot};

/// The span for a task created at `location`: disabled (`Span::none()`-like, nothing built)
/// when no subscriber wants it. Its id and name are filled in by [`name_span`] once the task
/// exists.
///
/// The span is a root (no parent): a task is not a part of the code that spawned it (it may
/// outlive it, and a chain of tasks each spawning the next would nest without end). It
/// *follows from* the span current where it was spawned, so a subscriber can link the two.
#[inline]
pub(crate) fn task_span(location: &'static Location<'static>) -> tracing::Span {
    // The common case, nobody listening at INFO, in a few instructions inline; the span's own
    // interest check (a filter on targets) and its building out of line.
    if tracing::level_enabled!(tracing::Level::INFO) {
        build_span(location)
    } else {
        tracing::Span::none()
    }
}

#[inline(never)]
fn build_span(location: &'static Location<'static>) -> tracing::Span {
    let span = tracing::info_span!(
        target: "evloop::task",
        parent: None,
        "task",
        task.id = Empty,
        task.name = Empty,
        task.spawned_at = %location,
    );
    if !span.is_disabled() {
        span.follows_from(tracing::Span::current());
    }
    span
}

/// The span of the main task of a `run_until_complete` called at `location`: a `task` span like
/// any other, except that it is a child of the span current at the call, since the run's
/// future is the caller's own code (a `#[instrument]`ed `main` keeps its span around it).
#[inline]
pub(crate) fn main_task_span(location: &'static Location<'static>) -> tracing::Span {
    if tracing::level_enabled!(tracing::Level::INFO) {
        tracing::info_span!(
            target: "evloop::task",
            "task",
            task.id = Empty,
            task.name = Empty,
            task.spawned_at = %location,
        )
    } else {
        tracing::Span::none()
    }
}

/// Records the task's id and name in its span.
pub(crate) fn name_span(span: &tracing::Span, id: TaskId, name: Option<&str>) {
    span.record("task.id", id.as_u64());
    match name {
        Some(name) => span.record("task.name", name),
        None => span.record(
            "task.name",
            tracing::field::display(format_args!("Task-{id}")),
        ),
    };
}

/// `future` run in `context` inside `span` (each entered for every poll and for the drop).
/// A task with a span and no context is only `future.instrument(span)`.
pub(crate) fn wrap<F: Future>(
    context: ContextSnapshot,
    span: tracing::Span,
    future: F,
) -> impl Future<Output = F::Output> {
    task_local::in_context(context, future).instrument(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// What a task pays when nobody listens: no span is built, so its future is not wrapped.
    #[test]
    fn without_an_interested_subscriber_no_span_is_built() {
        assert!(task_span(Location::caller()).is_disabled());
        // A subscriber whose filter leaves the task spans out.
        let filter = tracing_subscriber::EnvFilter::new("trace,evloop::task=off");
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            assert!(task_span(Location::caller()).is_disabled());
        });
        // One that wants them gets them.
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            assert!(!task_span(Location::caller()).is_disabled());
        });
    }
}
