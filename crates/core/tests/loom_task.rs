//! A loom model of the task state machine: every interleaving of a wake, a cancel, a handle
//! drop and the runner, checked for lost wake-ups, double scheduling and double drops.
//!
//! Built only with `--cfg loom`, where the task's state word is loom's atomic:
//! `RUSTFLAGS="--cfg loom" cargo test -p evloop-core --test loom_task --release`
//! (or `cargo xtask loom`).
#![cfg(loom)]
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use evloop_core::task::{Runnable, Task, spawn};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};

type Queue = Arc<Mutex<VecDeque<Runnable>>>;

/// `loom::model` with a preemption bound (as loom recommends for models with spin loops):
/// every interleaving with up to two preemptions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(f);
}

/// Pending on its first poll (leaving its waker in `slot`), ready with 7 on the next.
struct WakeOnce {
    polls: usize,
    slot: Arc<Mutex<Option<Waker>>>,
    drops: Arc<AtomicUsize>,
}

impl Future for WakeOnce {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        if self.polls == 1 {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(7)
        }
    }
}

impl Drop for WakeOnce {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Spawns a `WakeOnce` task whose runnables go to a queue; runs its first poll.
fn started() -> (Queue, Task<u32>, Waker, Arc<AtomicUsize>) {
    let queue: Queue = Arc::new(Mutex::new(VecDeque::new()));
    let slot = Arc::new(Mutex::new(None));
    let drops = Arc::new(AtomicUsize::new(0));
    let q = queue.clone();
    let fut = WakeOnce {
        polls: 0,
        slot: slot.clone(),
        drops: drops.clone(),
    };
    let (runnable, task) = spawn(fut, move |r| q.lock().unwrap().push_back(r));
    assert!(!runnable.run());
    let waker = slot.lock().unwrap().take().unwrap();
    (queue, task, waker, drops)
}

/// Runs queued runnables until the task is done (yielding to the other loom threads).
fn run_until_done(queue: &Queue, task: &Task<u32>) {
    while !task.is_done() {
        let next = queue.lock().unwrap().pop_front();
        match next {
            Some(r) => {
                r.run();
            }
            None => loom::thread::yield_now(),
        }
    }
}

fn take_output(mut task: Task<u32>) -> Result<u32, evloop_core::JoinError> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut task).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a done task is ready"),
    }
}

#[test]
fn a_wake_from_another_thread_is_never_lost_nor_doubled() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let waker2 = waker.clone();
        let a = loom::thread::spawn(move || waker.wake());
        let b = loom::thread::spawn(move || waker2.wake_by_ref());
        run_until_done(&queue, &task);
        a.join().unwrap();
        b.join().unwrap();
        // At most one runnable ever existed; none is left once the task is done.
        assert!(queue.lock().unwrap().is_empty());
        assert_eq!(take_output(task).unwrap(), 7);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn cancel_racing_with_a_wake_drops_the_future_once() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let task_ref = task.as_ref();
        let a = loom::thread::spawn(move || waker.wake());
        let b = loom::thread::spawn(move || task_ref.cancel());
        run_until_done(&queue, &task);
        a.join().unwrap();
        let cancelled = b.join().unwrap();
        assert!(queue.lock().unwrap().is_empty());
        let out = take_output(task);
        // cancel() either won (the task ends cancelled) or found it done (false).
        assert_eq!(out.is_err(), cancelled);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn dropping_the_handle_while_the_task_completes_drops_the_output_once() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let probe = task.as_ref();
        let a = loom::thread::spawn(move || drop(task));
        waker.wake();
        while !probe.is_done() {
            let next = queue.lock().unwrap().pop_front();
            match next {
                Some(r) => {
                    r.run();
                }
                None => loom::thread::yield_now(),
            }
        }
        a.join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(probe); // the last reference frees the task (loom checks for leaks of its Arcs)
    });
}
