//! Helpers of `multi.rs` and `multi_interrupt.rs` (`evloop::multi`, a loop per thread). Not a
//! test target itself.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

/// How long a test waits for anything before it fails instead of hanging.
pub const BOUND: Duration = Duration::from_secs(60);

/// Counts the drops of the values holding it: a future that owns one and is dropped before
/// it completes was cancelled.
pub struct DropCount(pub Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (off the loop thread) until `barrier` is passed by all.
pub async fn cross(barrier: &Arc<Barrier>) {
    let b = barrier.clone();
    evloop::to_thread(move || {
        b.wait();
    })
    .await
    .expect("the barrier thread does not panic");
}

/// Ends the test process if the test is not over within [`BOUND`] (the guard it returns is
/// dropped): a joint shutdown that does not happen hangs `run`, and must fail instead.
#[must_use]
pub fn watchdog(test: &'static str) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(BOUND) {
            eprintln!("{test}: still running after {BOUND:?}");
            std::process::exit(101);
        }
    });
    tx
}
