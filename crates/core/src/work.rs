//! The units of work an iteration runs: plain data (how they reach the loop is `shared.rs`).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use evloop_reactor::Direction;

use std::panic::Location;

use crate::exception::ExceptionContext;
use crate::task::Runnable;
use crate::timer_heap::{SleepState, TimerCell};

/// One item of the loop's ready queue (lives on the loop thread only).
pub(crate) enum Work {
    /// A task to poll.
    Task(Runnable),
    /// A task spawned from another thread (and where): register it, then poll it.
    Spawned(Runnable, &'static Location<'static>),
    /// A `call_soon` callback.
    Callback(Rc<CallbackCell>),
    /// A due `call_later`/`call_at` callback.
    Timer(Rc<TimerCell>),
    /// A `call_soon_threadsafe` callback.
    Remote(Box<dyn FnOnce() + Send>),
    /// An fd watched by `add_reader`/`add_writer` became ready (fd, direction, watch generation).
    Fd(RawFd, Direction, u64),
    /// The future of `run_until_complete` was woken (its generation).
    Main(u64),
    /// An exception to hand to the exception handler (boxed: keeps `Work` small).
    Report(Box<ExceptionContext>),
    /// A sleep first polled off the loop's thread: put it in the timer heap.
    Sleep(Box<(Instant, Arc<SleepState>)>),
}

/// Work that crosses threads: what the injection queue carries.
pub(crate) enum Injected {
    Task(Runnable),
    Spawned(Runnable, &'static Location<'static>),
    Remote(Box<dyn FnOnce() + Send>),
    Fd(RawFd, Direction, u64),
    Main(u64),
    Report(Box<ExceptionContext>),
    Sleep(Box<(Instant, Arc<SleepState>)>),
}

impl From<Injected> for Work {
    fn from(i: Injected) -> Work {
        match i {
            Injected::Task(r) => Work::Task(r),
            Injected::Spawned(r, at) => Work::Spawned(r, at),
            Injected::Remote(f) => Work::Remote(f),
            Injected::Fd(fd, d, g) => Work::Fd(fd, d, g),
            Injected::Main(g) => Work::Main(g),
            Injected::Report(c) => Work::Report(c),
            Injected::Sleep(s) => Work::Sleep(s),
        }
    }
}

/// A scheduled callback (asyncio's `Handle`).
pub(crate) struct CallbackCell {
    pub(crate) callback: Cell<Option<Box<dyn FnOnce()>>>,
    pub(crate) cancelled: Cell<bool>,
    pub(crate) name: &'static str,
}

impl CallbackCell {
    pub(crate) fn new(callback: Box<dyn FnOnce()>, name: &'static str) -> CallbackCell {
        CallbackCell {
            callback: Cell::new(Some(callback)),
            cancelled: Cell::new(false),
            name,
        }
    }

    /// Cancels the callback and hands it back (unless it ran or was cancelled already), for
    /// the caller to drop where a panicking destructor is contained.
    pub(crate) fn cancel(&self) -> Option<Box<dyn FnOnce()>> {
        if self.cancelled.replace(true) {
            None
        } else {
            self.callback.take()
        }
    }
}
