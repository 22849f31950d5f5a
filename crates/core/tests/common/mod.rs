//! Helpers shared by the integration tests of `evloop-core`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use evloop_core::{EventLoop, ExceptionContext, TaskRef};

/// Runs exactly one iteration of `lp` (`stop(); run_forever()`).
pub(crate) fn run_one(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().expect("stop(); run_forever() failed");
}

/// Counts how many of its guards were dropped. `Send + Sync`, so guards fit in any closure.
#[derive(Clone, Default)]
pub(crate) struct DropCounter(Arc<AtomicUsize>);

/// Increments its counter when dropped.
pub(crate) struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl DropCounter {
    pub(crate) fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// What an exception handler was told.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) message: String,
    pub(crate) panic: Option<String>,
    pub(crate) task: Option<TaskRef>,
}

/// Installs an exception handler on `lp` that records every context it is given.
pub(crate) fn record_exceptions(lp: &EventLoop) -> Rc<RefCell<Vec<Report>>> {
    let reports: Rc<RefCell<Vec<Report>>> = Rc::default();
    let r = reports.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        r.borrow_mut().push(Report {
            message: ctx.message().to_string(),
            panic: ctx.panic_message().map(str::to_string),
            task: ctx.task(),
        });
    }));
    reports
}

/// A one-shot, thread-safe flag that a future can wait for.
#[derive(Clone, Default)]
pub(crate) struct Signal(Arc<Mutex<SignalState>>);

#[derive(Default)]
struct SignalState {
    set: bool,
    waker: Option<Waker>,
}

impl Signal {
    /// Sets the flag and wakes the waiter (from any thread).
    pub(crate) fn set(&self) {
        let waker = {
            let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
            s.set = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).set
    }

    /// True once a waiter has registered its waker (and the flag is not set yet).
    pub(crate) fn has_waiter(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waker
            .is_some()
    }

    /// Waits until the flag is set.
    pub(crate) fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        std::future::poll_fn(move |cx| {
            let mut s = this.0.lock().unwrap_or_else(|e| e.into_inner());
            if s.set {
                Poll::Ready(())
            } else {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// Aborts the process (with a message) if dropped later than `limit` after creation:
/// turns a hang (a lost wakeup) into a visible failure instead of a stuck test run.
pub(crate) struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn new(what: &'static str, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: `{what}` still running after {limit:?} (hang / lost wakeup)");
                std::process::abort();
            }
        });
        Watchdog {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A future that never completes, holding `guard` (so its destruction is observable).
pub(crate) async fn pending_holding(guard: DropGuard) {
    let _guard = guard;
    std::future::pending::<()>().await;
}
