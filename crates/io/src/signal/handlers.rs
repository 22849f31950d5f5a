//! asyncio's `loop.add_signal_handler` / `remove_signal_handler`, as an extension trait.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use evloop_core::{Error, EventLoop};

use super::registry::{Subscription, drain};

/// Signal handlers on an [`EventLoop`]: asyncio's `loop.add_signal_handler(sig, callback)` and
/// `loop.remove_signal_handler(sig)`.
///
/// The loop engine (`evloop-core`) knows nothing of signals, so this crate adds these methods
/// to [`EventLoop`] with this trait, re-exported at the crate root (and at `evloop`'s): `use
/// evloop::SignalHandlers;` and call them on any loop.
///
/// The callback never runs inside the OS signal handler. That handler (signal-hook's) only
/// writes a byte to a socket pair; the loop watches the read end
/// ([`add_reader`](EventLoop::add_reader)) and schedules the callback with
/// [`call_soon`](EventLoop::call_soon) once per delivery, so it runs on the loop's thread, as
/// any other callback, at the loop's next iteration (a panic in it goes to the loop's
/// exception handler). Deliveries of one signal that arrive close together may be merged
/// into one, as POSIX merges pending signals.
///
/// Handlers belong to a loop: each loop (on any thread) can have its own, and a signal runs the
/// handlers of every loop that has one. Closing a loop removes its handlers.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use evloop_io::SignalHandlers;
/// use evloop_io::signal::consts::SIGUSR2;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let lp = evloop_core::running_loop().ok_or(evloop_core::Error::NoRunningLoop)?;
///     let seen = Rc::new(Cell::new(0));
///     let counter = seen.clone();
///     lp.add_signal_handler(SIGUSR2, move || counter.set(counter.get() + 1))?;
///
///     // Send ourselves a SIGUSR2, then wait until the handler has run.
///     std::process::Command::new("kill")
///         .args(["-USR2", &std::process::id().to_string()])
///         .status()?;
///     while seen.get() == 0 {
///         evloop_io::time::sleep(std::time::Duration::from_millis(1)).await;
///     }
///     assert!(lp.remove_signal_handler(SIGUSR2)); // back to the default disposition
///     assert!(!lp.remove_signal_handler(SIGUSR2));
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SignalHandlers {
    /// Calls `callback` on this loop whenever signal `signal` arrives, replacing the loop's
    /// earlier handler for that signal. From then on the signal no longer gets its default
    /// action (for SIGINT or SIGTERM: no longer terminates the process).
    ///
    /// Errors: [`Error::Closed`] on a closed loop; [`Error::Io`] with `InvalidInput` for a
    /// signal that cannot be handled (SIGKILL, SIGSTOP; SIGSEGV, SIGILL, SIGFPE, which
    /// signal-hook refuses; a number that is no signal), or an OS error.
    fn add_signal_handler(
        &self,
        signal: i32,
        callback: impl FnMut() + 'static,
    ) -> Result<(), Error>;

    /// Removes the loop's handler for `signal`: `true` if there was one. When no other
    /// listener (another loop's handler, a [`Signals`](super::Signals) stream, …) is left, the
    /// signal gets back the disposition it had before evloop first handled it — the default
    /// action (SIGUSR1 terminates the process again), or ignored if it was ignored (as SIGPIPE
    /// is in Rust programs).
    fn remove_signal_handler(&self, signal: i32) -> bool;
}

/// The loop's handlers: the fd each signal's reader callback watches.
#[derive(Default)]
struct LoopHandlers {
    fds: RefCell<HashMap<i32, RawFd>>,
}

impl SignalHandlers for EventLoop {
    fn add_signal_handler(
        &self,
        signal: i32,
        callback: impl FnMut() + 'static,
    ) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let (subscription, reader) = Subscription::new(signal)?;
        let fd = reader.as_raw_fd();
        let callback: Rc<RefCell<dyn FnMut()>> = Rc::new(RefCell::new(callback));
        // The reader callback owns the subscription and the fd: `remove_reader` (or the loop's
        // close) unregisters the signal and closes the fd, after the fd left the reactor.
        self.add_reader(fd, move || {
            let _subscribed = &subscription;
            let deliveries = match drain(&reader) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(signal, error = %e, "reading a signal pipe failed");
                    0
                }
            };
            if deliveries > 0 {
                tracing::debug!(signal, deliveries, "signal delivered to its handler");
            }
            let Some(lp) = evloop_core::running_loop() else {
                return;
            };
            for _ in 0..deliveries {
                let callback = callback.clone();
                lp.call_soon(move || match callback.try_borrow_mut() {
                    Ok(mut f) => f(),
                    Err(_) => tracing::warn!(signal, "signal handler re-entered; skipped"),
                });
            }
        })?;
        // The new handler is in place before the old one goes, so the signal never falls
        // back to its default action in between.
        let old = self
            .extension(LoopHandlers::default)
            .fds
            .borrow_mut()
            .insert(signal, fd);
        if let Some(old) = old {
            self.remove_reader(old);
        }
        Ok(())
    }

    fn remove_signal_handler(&self, signal: i32) -> bool {
        let Some(handlers) = self.find_extension::<LoopHandlers>() else {
            return false;
        };
        let fd = handlers.fds.borrow_mut().remove(&signal);
        match fd {
            Some(fd) => self.remove_reader(fd),
            None => false,
        }
    }
}
