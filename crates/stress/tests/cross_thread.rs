//! Cross-thread traffic into one loop (quick: 10^5 of each, full: 10^6): wakes of a task
//! from other threads and `call_soon_threadsafe` callbacks. None is lost, and each sending
//! thread's items arrive in the order it sent them.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use evloop_stress::{Scale, within};

/// Threads sending at once.
const SENDERS: u64 = 3;

fn total() -> u64 {
    Scale::from_env().pick(100_000, 1_000_000)
}

/// (sender, sequence number) items, and the waker of the task reading them.
type Queue = (VecDeque<(u64, u64)>, Option<Waker>);

/// A multi-producer queue read by one task on the loop; a push wakes the task.
#[derive(Default)]
struct Inbox {
    items: Mutex<Queue>,
}

impl Inbox {
    fn push(&self, item: (u64, u64)) {
        let waker = {
            let mut inner = self.items.lock().unwrap_or_else(|e| e.into_inner());
            inner.0.push_back(item);
            inner.1.take()
        };
        // Woken from this (foreign) thread, outside the lock.
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[test]
fn cross_thread_wakes_are_never_lost_and_keep_each_senders_order() {
    let total = total();
    let per_sender = total / SENDERS;
    within("cross-thread wakes", Duration::from_secs(120), move || {
        let inbox = Arc::new(Inbox::default());
        let received = evloop::run({
            let inbox = inbox.clone();
            async move {
                let senders: Vec<_> = (0..SENDERS)
                    .map(|s| {
                        let inbox = inbox.clone();
                        thread::spawn(move || {
                            for seq in 0..per_sender {
                                inbox.push((s, seq));
                            }
                        })
                    })
                    .collect();
                let mut next = vec![0u64; SENDERS as usize];
                let mut received = 0u64;
                while received < per_sender * SENDERS {
                    let batch = poll_fn(|cx| {
                        let mut inner = inbox.items.lock().unwrap_or_else(|e| e.into_inner());
                        if inner.0.is_empty() {
                            inner.1 = Some(cx.waker().clone());
                            Poll::Pending
                        } else {
                            Poll::Ready(std::mem::take(&mut inner.0))
                        }
                    })
                    .await;
                    for (s, seq) in batch {
                        assert_eq!(seq, next[s as usize], "sender {s}: out of order");
                        next[s as usize] += 1;
                        received += 1;
                    }
                }
                for t in senders {
                    t.join().expect("sender thread");
                }
                received
            }
        })
        .expect("run");
        assert_eq!(received, per_sender * SENDERS);
    });
}

/// What the callbacks of one run record, shared with the sending threads.
struct Tally {
    /// Per sender: the next sequence number expected.
    next: Vec<AtomicU64>,
    /// Callbacks that ran out of their sender's order.
    out_of_order: AtomicUsize,
    ran: AtomicU64,
    done: Mutex<Option<Waker>>,
}

#[test]
fn call_soon_threadsafe_callbacks_all_run_in_each_senders_order() {
    let total = total();
    let per_sender = total / SENDERS;
    within(
        "call_soon_threadsafe",
        Duration::from_secs(120),
        move || {
            let tally = Arc::new(Tally {
                next: (0..SENDERS).map(|_| AtomicU64::new(0)).collect(),
                out_of_order: AtomicUsize::new(0),
                ran: AtomicU64::new(0),
                done: Mutex::new(None),
            });
            let expected = per_sender * SENDERS;
            let t = tally.clone();
            evloop::run(async move {
                let handle = evloop::get_running_loop().expect("running").handle();
                let senders: Vec<_> = (0..SENDERS)
                    .map(|s| {
                        let (handle, tally) = (handle.clone(), t.clone());
                        thread::spawn(move || {
                            for seq in 0..per_sender {
                                let tally = tally.clone();
                                handle
                                    .call_soon_threadsafe(move || {
                                        let next = &tally.next[s as usize];
                                        if next.load(Ordering::Relaxed) != seq {
                                            tally.out_of_order.fetch_add(1, Ordering::Relaxed);
                                        }
                                        next.store(seq + 1, Ordering::Relaxed);
                                        if tally.ran.fetch_add(1, Ordering::Relaxed) + 1 == expected
                                        {
                                            let waker = tally.done.lock().expect("done").take();
                                            if let Some(w) = waker {
                                                w.wake();
                                            }
                                        }
                                    })
                                    .expect("loop open");
                            }
                        })
                    })
                    .collect();
                poll_fn(|cx| {
                    // Callbacks run on this thread, between polls: no race with the check.
                    if t.ran.load(Ordering::Relaxed) == expected {
                        Poll::Ready(())
                    } else {
                        *t.done.lock().expect("done") = Some(cx.waker().clone());
                        Poll::Pending
                    }
                })
                .await;
                for s in senders {
                    s.join().expect("sender thread");
                }
            })
            .expect("run");
            assert_eq!(
                tally.ran.load(Ordering::Relaxed),
                expected,
                "callbacks lost"
            );
            assert_eq!(tally.out_of_order.load(Ordering::Relaxed), 0, "FIFO broken");
        },
    );
}
