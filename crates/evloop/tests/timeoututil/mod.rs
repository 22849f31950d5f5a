//! Helpers of `timeouts.rs` and `wait_for.rs` (CPython's test_timeouts.py and
//! test_waitfor.py). Not a test target itself.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use evloop::{JoinError, LoopFuture, TaskRef, timeout};

pub const MS: Duration = Duration::from_millis(1);

/// How long a test waits for what must happen at once before it fails. Not a sleep: the wait
/// ends as soon as the awaited thing does.
pub const BOUND: Duration = Duration::from_secs(10);

/// `loop.create_future()` on the running loop.
pub fn create_future<T: 'static>() -> LoopFuture<T> {
    evloop::get_running_loop()
        .expect("a running loop")
        .create_future()
}

/// Awaits the end of the task behind `task` (bounded by [`BOUND`]) and returns its outcome.
pub async fn ended(task: &TaskRef) -> Result<(), JoinError> {
    timeout(BOUND, task.clone())
        .await
        .expect("the task did not end in time")
}
