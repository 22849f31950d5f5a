//! Structured concurrency (asyncio's `TaskGroup`): the [`task_group`] and [`join_set`] scopes,
//! and the older [`TaskGroup`] object.
//!
//! - `core.rs`: what a group and its children share; the wrapper future a child runs in.
//! - `scope.rs`: [`task_group`], [`TaskScope`], [`TaskSpawner`] — and the scope loop
//!   [`join_set`] shares.
//! - `join_set.rs`: [`join_set`], [`JoinSet`] (children of any output type; `join_next`).
//! - `group.rs`: [`TaskGroup`] (spawn, then `wait`).
//! - `errors.rs`: [`TaskGroupError`], [`TaskGroupErrors`], [`SpawnError`].

mod core;
mod errors;
mod group;
mod join_set;
mod scope;

use std::any::Any;

use evloop_core::{EventLoop, ExceptionContext, TaskRef};

pub use errors::{SpawnError, TaskGroupError, TaskGroupErrors};
pub use group::TaskGroup;
pub use join_set::{JoinSet, join_set};
pub use scope::{TaskScope, TaskSpawner, task_group};

/// A panic payload.
type Payload = Box<dyn Any + Send + 'static>;

/// The running loop, for a group's `spawn` method named `caller`.
///
/// # Panics
///
/// Outside a running event loop: "no running event loop (`caller` must be called on a
/// running loop)".
#[track_caller]
fn running_loop_for(caller: &str) -> EventLoop {
    let Some(lp) = evloop_core::running_loop() else {
        panic!("no running event loop ({caller} must be called on a running loop)");
    };
    lp
}

/// Hands a failure nobody can receive any more to the running loop's exception handler (or
/// logs it when no loop runs).
fn report(message: &str, payload: Option<Payload>, task: Option<TaskRef>) {
    match evloop_core::running_loop() {
        Some(lp) => {
            let mut ctx = ExceptionContext::new(message);
            if let Some(payload) = payload {
                ctx = ctx.with_panic(payload);
            }
            if let Some(task) = task {
                ctx = ctx.with_task(task);
            }
            lp.call_exception_handler(ctx);
        }
        None => {
            tracing::error!("{message}");
            if let Some(payload) = payload {
                // The payload's destructor is user code too: a second panic is forgotten.
                let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    drop(payload);
                }));
                if let Err(again) = dropped {
                    std::mem::forget(again);
                }
            }
        }
    }
}
