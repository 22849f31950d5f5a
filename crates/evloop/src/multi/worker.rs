//! What the loop threads and the coordinating thread share: the start gate, the inbox of
//! outcomes, the per-loop stop flags; and the body of a loop thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use evloop_core::{Error, LoopHandle};

use super::loops::{CurrentLoops, Loops};
use crate::Runner;
use crate::runner::cancel_main_on;

/// How one loop ended.
pub(super) enum Outcome<T, E> {
    /// Its future returned `Ok`; the loop stays open until the joint stop.
    Finished,
    /// Its future had returned `Ok(value)` and the loop is now shut down.
    Done(T),
    /// Its future returned `Err(error)`.
    Failed(E),
    /// Its future (or the thread's set-up) panicked.
    Panicked(Box<dyn std::any::Any + Send + 'static>),
    /// The loop itself failed (creation, shutdown, an unexpected cancellation).
    Loop(Error),
    /// `multi::run` stopped it (its main task cancelled, or it never started).
    Stopped,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves nothing half-done: use the data as it is.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds every loop thread until all loops exist (so that [`Loops`] is complete when the
/// first future starts), or until the start is called off.
struct Gate {
    state: Mutex<GateState>,
    opened: Condvar,
}

struct GateState {
    handles: Vec<Option<LoopHandle>>,
    arrived: usize,
    loops: Option<Loops>,
    aborted: bool,
}

/// A loop's stop request: a flag and the waker of the loop's main task.
struct Stop {
    requested: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Stop {
    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let waker = lock(&self.waker).take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Completes when the stop is requested.
    async fn requested(&self) {
        poll_fn(|cx| {
            {
                let mut slot = lock(&self.waker);
                if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
            }
            if self.is_requested() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Outcomes as the loops report them, first come first served, and the coordinator's waker.
struct Inbox<T, E> {
    queue: VecDeque<(usize, Outcome<T, E>)>,
    waker: Option<Waker>,
}

/// What `multi::run`'s threads share.
pub(super) struct Shared<T, E> {
    gate: Gate,
    inbox: Mutex<Inbox<T, E>>,
    stops: Vec<Stop>,
}

impl<T, E> Shared<T, E> {
    pub(super) fn new(n: usize) -> Shared<T, E> {
        Shared {
            gate: Gate {
                state: Mutex::new(GateState {
                    handles: (0..n).map(|_| None).collect(),
                    arrived: 0,
                    loops: None,
                    aborted: false,
                }),
                opened: Condvar::new(),
            },
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                waker: None,
            }),
            stops: (0..n)
                .map(|_| Stop {
                    requested: AtomicBool::new(false),
                    waker: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// Stops every loop: calls off the start if it is still waiting, cancels every running
    /// loop's main task.
    pub(super) fn stop_all(&self) {
        self.abort_start();
        for stop in &self.stops {
            stop.request();
        }
    }

    /// Calls off the start: loop threads waiting at the gate leave without running.
    pub(super) fn abort_start(&self) {
        let mut state = lock(&self.gate.state);
        if state.loops.is_none() {
            state.aborted = true;
            self.gate.opened.notify_all();
        }
    }

    /// Registers loop `index`'s handle and waits for every other loop's: the complete
    /// [`Loops`], or `None` if the start was called off.
    fn arrive(&self, index: usize, handle: LoopHandle) -> Option<Loops> {
        let mut state = lock(&self.gate.state);
        state.handles[index] = Some(handle);
        state.arrived += 1;
        if state.arrived == state.handles.len() && !state.aborted {
            let handles = state.handles.iter_mut().filter_map(Option::take).collect();
            state.loops = Some(Loops::new(handles));
            self.gate.opened.notify_all();
        }
        loop {
            if let Some(loops) = &state.loops {
                return Some(loops.clone());
            }
            if state.aborted {
                return None;
            }
            state = self
                .gate
                .opened
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn report(&self, index: usize, outcome: Outcome<T, E>) {
        let waker = {
            let mut inbox = lock(&self.inbox);
            inbox.queue.push_back((index, outcome));
            inbox.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The next outcome a loop reports.
    pub(super) async fn next(&self) -> (usize, Outcome<T, E>) {
        poll_fn(|cx| {
            let mut inbox = lock(&self.inbox);
            match inbox.queue.pop_front() {
                Some(item) => Poll::Ready(item),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// What is left in the inbox (after every thread was joined).
    pub(super) fn drain(&self) -> Vec<(usize, Outcome<T, E>)> {
        lock(&self.inbox).queue.drain(..).collect()
    }
}

/// Stops every loop when dropped.
pub(super) struct StopAllOnDrop<'a, T, E>(pub(super) &'a Shared<T, E>);

impl<T, E> Drop for StopAllOnDrop<'_, T, E> {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

/// The body of loop thread `index`: pin it, make its loop, wait for the others, run
/// `make(index)` as the loop's main task (as `evloop::run` does), keep the loop running until
/// the joint stop if the future succeeded, shut the loop down and report how it went.
/// Whatever happens, a final outcome is reported (after `Finished`, if the future succeeded).
pub(super) fn loop_thread<F, Fut, T, E>(
    index: usize,
    cpu: Option<usize>,
    shared: &Shared<T, E>,
    make: &F,
) where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let arrived = Cell::new(false);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if let Some(cpu) = cpu {
            super::pin_current_thread(cpu);
        }
        let mut runner = Runner::builder().ctrl_c(false).build();
        let lp = match runner.get_loop() {
            Ok(lp) => lp,
            Err(e) => return Outcome::Loop(e),
        };
        arrived.set(true);
        let Some(loops) = shared.arrive(index, lp.handle()) else {
            return Outcome::Stopped;
        };
        let _current = CurrentLoops::set(loops);
        let stop = &shared.stops[index];
        let result = runner.run(cancel_main_on(
            async { make(index).await },
            stop.requested(),
            drop,
        ));
        let outcome = match result {
            Ok(Ok(value)) => {
                shared.report(index, Outcome::Finished);
                // Open for the others (their tasks, work they send here) until the joint stop.
                match runner.run(stop.requested()) {
                    Ok(()) => Outcome::Done(value),
                    Err(e) => Outcome::Loop(e),
                }
            }
            Ok(Err(error)) => Outcome::Failed(error),
            Err(Error::Cancelled) if stop.is_requested() => Outcome::Stopped,
            Err(e) => Outcome::Loop(e),
        };
        match (outcome, runner.close()) {
            (outcome, Ok(())) => outcome,
            (Outcome::Done(_), Err(e)) => Outcome::Loop(e),
            (outcome, Err(e)) => {
                tracing::error!(index, error = %e, "evloop::multi: shutting a loop down failed");
                outcome
            }
        }
    }))
    .unwrap_or_else(Outcome::Panicked);
    shared.report(index, outcome);
    if !arrived.get() {
        // This loop will never reach the gate: the others must not wait for it. (Reported
        // first, so that the coordinator sees this failure before the others' `Stopped`.)
        shared.abort_start();
    }
}
