//! A dropped `Sleep` releases its waker at once, so the memory of the task that owned it
//! (the task's cell, sized for its whole future) is freed when the task ends, not when the
//! timer heap is next compacted or the deadline passes.
//!
//! This binary counts the bytes live on the heap with a counting global allocator, so it
//! holds a single test (the harness runs tests of one binary on parallel threads).
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use evloop_core::{EventLoop, Task, sleep};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so `System`'s
// guarantees hold; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    /// # Safety
    /// `GlobalAlloc::alloc`'s contract.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above (i.e. by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    /// # Safety
    /// `GlobalAlloc::realloc`'s contract.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract, which we pass on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TASKS: usize = 50;
const BUF: usize = 64 * 1024;
/// Far beyond the test's run time: no sleep may end by its deadline.
const LONG: Duration = Duration::from_secs(3600);

/// A pending timer due before the sleeps: it stays at the top of the timer heap, so the
/// cancelled sleeps behind it are not popped off the top (the heap removes cancelled entries
/// lazily, when they reach the top or at a compaction).
fn keep_heap_top(lp: &EventLoop) -> evloop_core::TimerHandle {
    lp.call_later(LONG / 2, || {})
}

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Runs `lp` until every task has ended (and the loop has had one more iteration).
fn finish(lp: &EventLoop, tasks: Vec<Task<()>>) {
    for t in tasks {
        let _ = lp.run_until_complete(t).unwrap();
    }
    lp.stop();
    lp.run_forever().unwrap();
}

/// The heap grew by about the tasks' futures while they lived, and is back near `base` once
/// they ended (what the loop's timer heap still holds is tiny: fewer than `TASKS` cancelled
/// entries, so no compaction has run).
fn assert_released(what: &str, base: usize, peak: usize, after: usize) {
    assert!(
        peak >= base + TASKS * BUF,
        "{what}: the tasks' futures should hold {} bytes (grew {} bytes)",
        TASKS * BUF,
        peak.saturating_sub(base)
    );
    assert!(
        after < base + TASKS * BUF / 8,
        "{what}: {} bytes still live after the tasks ended (the cells of {TASKS} tasks of \
         {BUF} bytes are retained)",
        after.saturating_sub(base)
    );
}

#[test]
fn ended_tasks_that_dropped_pending_sleeps_are_freed_at_once() {
    let started = Instant::now();

    // 1. Tasks cancelled while they wait in a long sleep.
    let lp = EventLoop::new().unwrap();
    let _earlier = keep_heap_top(&lp);
    let base = live();
    let tasks: Vec<Task<()>> = (0..TASKS)
        .map(|_| {
            let lp2 = lp.clone();
            lp.create_task(async move {
                let buf = [7u8; BUF];
                sleep(&lp2, LONG).await;
                black_box(&buf);
            })
        })
        .collect();
    // One iteration: every task is now waiting in its sleep.
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(lp.pending_timers(), TASKS + 1);
    let peak = live();
    for t in &tasks {
        assert!(t.cancel());
    }
    finish(&lp, tasks);
    assert_eq!(lp.pending_timers(), 1);
    assert_released("cancelled sleepers", base, peak, live());
    lp.close().unwrap();

    // 2. Tasks that raced a long sleep against a short one and ended normally: the loser was
    //    dropped pending, and the task went on to complete.
    let lp = EventLoop::new().unwrap();
    let _earlier = keep_heap_top(&lp);
    let base = live();
    let tasks: Vec<Task<()>> = (0..TASKS)
        .map(|_| {
            let lp2 = lp.clone();
            lp.create_task(async move {
                let buf = [7u8; BUF];
                let mut long = std::pin::pin!(sleep(&lp2, LONG));
                let mut short = std::pin::pin!(sleep(&lp2, Duration::from_millis(1)));
                std::future::poll_fn(|cx| {
                    if long.as_mut().poll(cx).is_ready() {
                        unreachable!("an hour passed");
                    }
                    short.as_mut().poll(cx)
                })
                .await;
                black_box(&buf);
            })
        })
        .collect();
    lp.stop();
    lp.run_forever().unwrap();
    let peak = live();
    finish(&lp, tasks);
    assert_released("tasks that dropped a pending sleep", base, peak, live());
    lp.close().unwrap();

    assert!(started.elapsed() < LONG);
}
