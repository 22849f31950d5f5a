//! A task awaiting an intrusive, address-sensitive waiter (`tokio::sync::Notify::notified()`
//! links its own stack/heap node into the `Notify`'s list) is cancelled: the node must be
//! unlinked by its destructor *at the address it was pinned at*. When the task core moved the
//! future before dropping it, the list kept a dangling pointer, and the next `notify_waiters`
//! was a heap-use-after-free (AddressSanitizer: `cargo xtask asan`; without ASan a crash or
//! silent corruption).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evloop_core::EventLoop;
use tokio::sync::Notify;

#[test]
fn cancelling_a_task_blocked_on_an_intrusive_waiter_unlinks_it_in_place() {
    let lp = EventLoop::new().unwrap();
    let notify = Arc::new(Notify::new());
    let woken = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let notify = notify.clone();
        let woken = woken.clone();
        tasks.push(lp.create_task(async move {
            // A large neighbour makes the future big, so a moved copy lands far away.
            let pad = [7u8; 512];
            notify.notified().await;
            woken.fetch_add(usize::from(pad[0]), Ordering::SeqCst);
        }));
    }
    // One iteration: every task polls once and links its waiter.
    lp.run_until_complete(evloop_core::yield_now()).unwrap();
    for t in tasks.iter().step_by(2) {
        assert!(t.cancel());
    }
    lp.run_until_complete(evloop_core::yield_now()).unwrap();
    for t in tasks.iter().step_by(2) {
        assert!(t.is_cancelled());
    }
    // Walks the waiter list: every node in it must still be alive and in place.
    notify.notify_waiters();
    for t in tasks {
        let _ = lp.run_until_complete(t).unwrap();
    }
    assert_eq!(woken.load(Ordering::SeqCst), 8 * 7);
    lp.close().unwrap();
}
