//! Loom models of the task state machine: every interleaving of the runner's poll and
//! completion with wakes, cancels, the handle registering its waker or going away, a `TaskRef`
//! awaiter and the last reference dropping on another thread, checked for lost wake-ups,
//! double scheduling, double drops, and — since the stage (future, output) and the handle's
//! waker slot are loom `UnsafeCell`s under `--cfg loom` — for any unsynchronised access to them.
//!
//! Built only with `--cfg loom`, where the task's atomics, cells and mutex are loom's:
//! `RUSTFLAGS="--cfg loom" cargo test -p evloop-core --test loom_task --release`
//! (or `cargo xtask loom`).
#![cfg(loom)]
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

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

/// A waker that records that it was woken.
struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn flag_waker() -> (std::sync::Arc<Flag>, Waker) {
    let flag = std::sync::Arc::new(Flag(AtomicUsize::new(0)));
    (flag.clone(), Waker::from(flag))
}

#[test]
fn the_handle_registering_its_waker_while_the_task_completes_is_woken_or_sees_the_output() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let a = loom::thread::spawn(move || {
            let mut task = task;
            let (flag, w) = flag_waker();
            let mut cx = Context::from_waker(&w);
            match Pin::new(&mut task).poll(&mut cx) {
                Poll::Ready(out) => (Some(out.unwrap()), flag, task),
                Poll::Pending => (None, flag, task),
            }
        });
        waker.wake();
        loop {
            let next = queue.lock().unwrap().pop_front();
            match next {
                Some(r) => {
                    if r.run() {
                        break;
                    }
                }
                None => loom::thread::yield_now(),
            }
        }
        let (out, flag, task) = a.join().unwrap();
        match out {
            Some(v) => assert_eq!(v, 7),
            None => {
                // Pending: the completion must have woken that waker, and the output is there.
                assert_eq!(
                    flag.0.load(Ordering::SeqCst),
                    1,
                    "lost wake-up of the handle"
                );
                assert_eq!(take_output(task).unwrap(), 7);
            }
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_task_ref_awaiter_racing_completion_is_woken_or_sees_the_end() {
    model(|| {
        let (queue, task, waker, _drops) = started();
        let mut awaiter = task.as_ref();
        let a = loom::thread::spawn(move || {
            let (flag, w) = flag_waker();
            let mut cx = Context::from_waker(&w);
            let ready = Pin::new(&mut awaiter).poll(&mut cx).is_ready();
            // Still waiting (alive) while the task completes: a dropped `TaskRef` future takes
            // its waker back.
            (ready, flag, awaiter)
        });
        waker.wake();
        run_until_done(&queue, &task);
        let (ready, flag, awaiter) = a.join().unwrap();
        if !ready {
            assert_eq!(
                flag.0.load(Ordering::SeqCst),
                1,
                "lost wake-up of a TaskRef"
            );
        }
        drop(awaiter);
        assert_eq!(take_output(task).unwrap(), 7);
    });
}

#[test]
fn cancel_racing_the_completing_poll_decides_the_outcome_once() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let task_ref = task.as_ref();
        waker.wake();
        let b = loom::thread::spawn(move || task_ref.cancel());
        run_until_done(&queue, &task);
        let cancelled = b.join().unwrap();
        let out = take_output(task);
        assert_eq!(
            out.is_err(),
            cancelled,
            "cancel() said one thing, the outcome another"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn the_last_reference_dropping_on_another_thread_while_the_task_is_woken() {
    model(|| {
        let (queue, task, waker, drops) = started();
        // Detach: only the waker (elsewhere) and a wake keep the task.
        drop(task);
        let waker2 = waker.clone();
        let a = loom::thread::spawn(move || drop(waker));
        let b = loom::thread::spawn(move || waker2.wake());
        a.join().unwrap();
        b.join().unwrap();
        // The wake scheduled it (the last reference may be the runnable's).
        while let Some(r) = queue.lock().unwrap().pop_front() {
            r.run();
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// An output that counts its drops.
struct Out(Arc<AtomicUsize>);

impl Drop for Out {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Pending on its first poll (leaving its waker in `slot`), ready with an `Out` on the next.
struct WakeOnceOut {
    polls: usize,
    slot: Arc<Mutex<Option<Waker>>>,
    out_drops: Arc<AtomicUsize>,
}

impl Future for WakeOnceOut {
    type Output = Out;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Out> {
        self.polls += 1;
        if self.polls == 1 {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(Out(self.out_drops.clone()))
        }
    }
}

#[test]
fn the_handle_dropped_elsewhere_while_the_task_completes_and_a_task_ref_awaits() {
    model(|| {
        let queue: Queue = Arc::new(Mutex::new(VecDeque::new()));
        let slot = Arc::new(Mutex::new(None));
        let out_drops = Arc::new(AtomicUsize::new(0));
        let q = queue.clone();
        let fut = WakeOnceOut {
            polls: 0,
            slot: slot.clone(),
            out_drops: out_drops.clone(),
        };
        let (runnable, task) = spawn(fut, move |r| q.lock().unwrap().push_back(r));
        assert!(!runnable.run());
        let waker = slot.lock().unwrap().take().unwrap();
        let mut awaiter = task.as_ref();
        let a = loom::thread::spawn(move || drop(task));
        let b = loom::thread::spawn(move || {
            let (flag, w) = flag_waker();
            let mut cx = Context::from_waker(&w);
            let ready = Pin::new(&mut awaiter).poll(&mut cx).is_ready();
            (ready, flag, awaiter)
        });
        waker.wake();
        let r = queue.lock().unwrap().pop_front().unwrap();
        assert!(r.run());
        a.join().unwrap();
        let (ready, flag, awaiter) = b.join().unwrap();
        if !ready {
            assert_eq!(
                flag.0.load(Ordering::SeqCst),
                1,
                "lost wake-up of a TaskRef"
            );
        }
        assert!(awaiter.is_done());
        assert_eq!(
            out_drops.load(Ordering::SeqCst),
            1,
            "the output is dropped once"
        );
        drop(awaiter); // the last reference frees the task (loom checks its Arcs for leaks)
    });
}

#[test]
fn cancel_racing_the_handle_re_registering_its_waker() {
    model(|| {
        let (queue, mut task, _waker, drops) = started();
        // The handle registered a first waker; it re-polls with a second one while another
        // thread cancels the idle task and runs the runnable the cancel made.
        let (_first, w1) = flag_waker();
        assert!(
            Pin::new(&mut task)
                .poll(&mut Context::from_waker(&w1))
                .is_pending()
        );
        let task_ref = task.as_ref();
        let q = queue.clone();
        let a = loom::thread::spawn(move || {
            assert!(task_ref.cancel());
            let r = q.lock().unwrap().pop_front().unwrap();
            assert!(r.run());
        });
        let (second, w2) = flag_waker();
        let polled = Pin::new(&mut task).poll(&mut Context::from_waker(&w2));
        a.join().unwrap();
        match polled {
            Poll::Ready(out) => assert!(out.is_err()),
            Poll::Pending => {
                assert_eq!(
                    second.0.load(Ordering::SeqCst),
                    1,
                    "lost wake-up of the re-registered waker"
                );
                assert!(take_output(task).is_err());
            }
        }
        assert!(queue.lock().unwrap().is_empty());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_wake_racing_runnable_schedule_keeps_one_runnable() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let waker2 = waker.clone();
        waker.wake();
        let r = queue.lock().unwrap().pop_front().unwrap();
        let a = loom::thread::spawn(move || waker2.wake());
        // The scheduler re-queues the runnable (as a fairness policy might) while it is woken.
        r.schedule();
        a.join().unwrap();
        assert_eq!(queue.lock().unwrap().len(), 1, "one runnable, queued once");
        run_until_done(&queue, &task);
        assert!(queue.lock().unwrap().is_empty());
        assert_eq!(take_output(task).unwrap(), 7);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// Pending on its first `pending` polls (leaving its waker in `slot` each time), then ready.
struct PendingN {
    pending: usize,
    slot: Arc<Mutex<Option<Waker>>>,
    drops: Arc<AtomicUsize>,
}

impl Future for PendingN {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.pending == 0 {
            return Poll::Ready(7);
        }
        self.pending -= 1;
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for PendingN {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_wake_racing_a_step_is_handed_back_or_scheduled_exactly_once() {
    model(|| {
        let queue: Queue = Arc::new(Mutex::new(VecDeque::new()));
        let slot = Arc::new(Mutex::new(None));
        let drops = Arc::new(AtomicUsize::new(0));
        let q = queue.clone();
        let fut = PendingN {
            pending: 2,
            slot: slot.clone(),
            drops: drops.clone(),
        };
        let (runnable, task) = spawn(fut, move |r| q.lock().unwrap().push_back(r));
        assert!(matches!(runnable.step(), evloop_core::task::Step::Pending));
        let waker = slot.lock().unwrap().take().unwrap();
        let a = loom::thread::spawn(move || waker.wake());
        // The wake may land before the step (the runnable is in the queue), during it (handed
        // back to us) or after it (queued by the waker's thread).
        let mut handed_back = None;
        loop {
            let next = queue.lock().unwrap().pop_front();
            match next {
                Some(r) => match r.step() {
                    evloop_core::task::Step::Woken(r) => {
                        handed_back = Some(r);
                        break;
                    }
                    evloop_core::task::Step::Pending => {
                        if slot.lock().unwrap().is_some() {
                            break;
                        }
                    }
                    evloop_core::task::Step::Finished => panic!("finished too early"),
                },
                None => loom::thread::yield_now(),
            }
        }
        a.join().unwrap();
        match handed_back {
            Some(r) => {
                assert!(
                    queue.lock().unwrap().is_empty(),
                    "scheduled and handed back"
                );
                assert!(r.run());
            }
            None => {
                // Polled the second time: the wake came before that poll or was spent on it.
                let second = slot.lock().unwrap().take().unwrap();
                second.wake();
                run_until_done(&queue, &task);
            }
        }
        assert!(queue.lock().unwrap().is_empty());
        assert_eq!(take_output(task).unwrap(), 7);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn cancel_racing_the_scheduler_dropping_the_runnable() {
    model(|| {
        let (queue, mut task, waker, drops) = started();
        let task_ref = task.as_ref();
        waker.wake();
        let r = queue.lock().unwrap().pop_front().unwrap();
        let a = loom::thread::spawn(move || task_ref.cancel());
        drop(r);
        // Either the cancel came first or found the task already cancelled by the drop.
        a.join().unwrap();
        assert!(queue.lock().unwrap().is_empty());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let (flag, w) = flag_waker();
        let out = Pin::new(&mut task).poll(&mut Context::from_waker(&w));
        assert!(matches!(out, Poll::Ready(Err(ref e)) if e.is_cancelled()));
        assert_eq!(flag.0.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn the_last_task_ref_dropping_elsewhere_while_a_detached_task_completes() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let probe = task.as_ref();
        drop(task);
        let a = loom::thread::spawn(move || drop(probe));
        waker.wake();
        let r = queue.lock().unwrap().pop_front().unwrap();
        assert!(r.run());
        a.join().unwrap();
        assert!(queue.lock().unwrap().is_empty());
        // Freed exactly once, by whichever reference went last (loom checks the future's Arcs).
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_task_ref_giving_up_while_the_task_completes_leaves_the_other_awaiter_woken() {
    model(|| {
        let (queue, task, waker, _drops) = started();
        // Two `TaskRef` futures wait with one waker; one gives up on another thread while the
        // task completes: the other must still be woken.
        let (flag, w) = flag_waker();
        let mut first = task.as_ref();
        let mut second = task.as_ref();
        let mut cx = Context::from_waker(&w);
        assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
        let a = loom::thread::spawn(move || drop(first));
        waker.wake();
        run_until_done(&queue, &task);
        a.join().unwrap();
        assert_eq!(
            flag.0.load(Ordering::SeqCst),
            1,
            "lost wake-up of a TaskRef"
        );
        assert!(Pin::new(&mut second).poll(&mut cx).is_ready());
        assert_eq!(take_output(task).unwrap(), 7);
    });
}

/// `uncancel()` withdrawing a request while the task runs: the task ends exactly once, with
/// its output (the request was withdrawn in time) or cancelled, and its future is dropped once.
#[test]
fn an_uncancel_racing_the_run_withdraws_or_cancels_exactly_once() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let task_ref = task.as_ref();
        waker.wake();
        let b = loom::thread::spawn(move || {
            task_ref.cancel();
            task_ref.uncancel()
        });
        run_until_done(&queue, &task);
        assert_eq!(b.join().unwrap(), 0);
        let out = take_output(task);
        assert!(
            matches!(out, Ok(7) | Err(evloop_core::JoinError::Cancelled)),
            "{out:?}"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(queue.lock().unwrap().is_empty());
    });
}

/// A cancel request's message is published with the request: whoever sees the task end
/// cancelled sees the message.
#[test]
fn a_cancel_message_reaches_whoever_sees_the_cancellation() {
    model(|| {
        let (queue, task, waker, drops) = started();
        let task_ref = task.as_ref();
        waker.wake();
        let b = loom::thread::spawn(move || task_ref.cancel_with("stop"));
        run_until_done(&queue, &task);
        let cancelled = b.join().unwrap();
        match take_output(task) {
            Ok(v) => assert!(v == 7 && !cancelled),
            Err(e) => assert_eq!(e.cancel_message(), Some("stop")),
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
