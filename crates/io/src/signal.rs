//! Signals: Ctrl-C, asyncio's signal handlers, signal streams.
//!
//! - [`ctrl_c`] waits for the next SIGINT on the running loop. `evloop::run` and
//!   `evloop::Runner::run` use the same plumbing on the main thread to turn the
//!   first Ctrl-C into [`Error::Interrupted`].
//! - [`SignalHandlers`] (re-exported at the crate root) adds asyncio's
//!   `add_signal_handler(sig, callback)` / `remove_signal_handler(sig)` to [`EventLoop`].
//! - [`signal()`] gives a [`Signals`] stream of one signal's deliveries (tokio's
//!   `signal::unix::signal`).
//! - [`consts`]: the signal numbers (`SIGINT`, `SIGTERM`, `SIGUSR1`, …).
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use evloop_io::SignalHandlers;
//! use evloop_io::signal::consts::SIGUSR1;
//!
//! evloop_core::EventLoop::new()?.run_until_complete(async {
//!     let lp = evloop_core::running_loop().ok_or(evloop_core::Error::NoRunningLoop)?;
//!     let thread = std::thread::current().id();
//!     let got = Rc::new(Cell::new(false));
//!     let flag = got.clone();
//!     // Runs on the loop's thread, never inside the OS signal handler.
//!     lp.add_signal_handler(SIGUSR1, move || {
//!         assert_eq!(std::thread::current().id(), thread);
//!         flag.set(true);
//!     })?;
//!     std::process::Command::new("kill")
//!         .args(["-USR1", &std::process::id().to_string()])
//!         .status()?;
//!     while !got.get() {
//!         evloop_io::time::sleep(std::time::Duration::from_millis(1)).await;
//!     }
//!     lp.remove_signal_handler(SIGUSR1);
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works, and what the process sees
//!
//! The signal handling is [`signal_hook`]'s: each listener (a loop's handler, a stream, a
//! `ctrl_c()` future, a run's Ctrl-C watch, the SIGCHLD watch of
//! [`process`](crate::process)) is a socket pair whose write end signal-hook writes a byte to
//! from the signal handler, and whose read end a loop watches. The OS-level handler does
//! nothing else; user code runs on a loop thread. No `unsafe` code is involved.
//!
//! - Until evloop first listens for a signal, the process keeps its disposition (Ctrl-C
//!   terminates it).
//! - While a listener exists, the signal is delivered to the listeners and does not get its
//!   default action (SIGINT, SIGTERM, … no longer terminate the process).
//! - During a `run()`, the first SIGINT also *arms* the default action: a second SIGINT, before
//!   the run has dropped its main future and released its listener, terminates the process as
//!   an unhandled Ctrl-C does — the way out of a run that is stuck in blocking code.
//! - Once no listener of a signal is left (a `run()` returned, a `ctrl_c()` future completed
//!   or dropped, a handler removed, a stream dropped, a loop closed), the signal gets back the
//!   disposition it had before evloop first listened to it: the default action (SIGINT
//!   terminates the process again, killed by the signal), or *ignored* if it was ignored (a
//!   background job's SIGINT, SIGPIPE in every Rust program), or the handler installed before
//!   evloop's (signal-hook chains to it). Technically signal-hook's handler stays installed
//!   (signal-hook cannot uninstall it), with an action that emulates the default one
//!   ([`signal_hook::low_level::emulate_default_handler`]) while nobody listens; the disposition
//!   before evloop is read from `/proc/self/status` (assumed default where that is missing).
//!
//! Limit: if the program registers its own actions for a signal with signal-hook *after*
//! evloop first listened to it, evloop's emulated default action runs before them whenever no
//! evloop listener exists. Programs that manage SIGINT themselves should turn the runner's
//! handling off with `evloop::RunnerBuilder::ctrl_c(false)`.

mod handlers;
pub(crate) mod registry;
mod stream;

use std::future::{Future, pending};
use std::io;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use evloop_core::{Error, EventLoop};
use evloop_reactor::Async;
use signal_hook::consts::SIGINT;

pub use handlers::SignalHandlers;
pub use stream::{Signals, signal};

/// The signal numbers (`SIGINT`, `SIGTERM`, `SIGUSR1`, `SIGCHLD`, …), signal-hook's
/// `consts::signal`.
pub mod consts {
    pub use signal_hook::consts::signal::*;
}

use self::registry::Subscription;

/// How many SIGINTs `ctrl_c()` futures have taken (the run's listener leaves those alone).
static USER_CLAIMS: AtomicU64 = AtomicU64::new(0);

/// One SIGINT registration: a byte arrives on `reader` for every SIGINT.
struct SigintListener {
    reader: Async<UnixStream>,
    _subscription: Subscription,
}

impl SigintListener {
    /// Registers a listener whose reader is watched by `lp`'s reactor. `user`: counted as a
    /// user listener of SIGINT (see [`registry::user_listeners`]); `arm`: the first SIGINT arms
    /// the default action (a run's listener).
    fn new(lp: &EventLoop, user: bool, arm: bool) -> Result<SigintListener, Error> {
        let (subscription, reader) = Subscription::with_options(SIGINT, user, arm)?;
        let reader = Async::new(reader, lp.reactor())?;
        Ok(SigintListener {
            reader,
            _subscription: subscription,
        })
    }

    /// Waits for the next SIGINT (several that arrived together count as one). `claim` (a
    /// `ctrl_c()`): count it in [`USER_CLAIMS`] *before* reading it, so that a run watching
    /// Ctrl-C on another thread, which looks for the unread byte first and then for a claim
    /// (see [`run_interrupt`]), cannot miss both.
    async fn recv(&self, claim: bool) -> io::Result<()> {
        let n = self
            .reader
            .read_with(|s| {
                if claim {
                    if !has_pending_byte(s) {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    USER_CLAIMS.fetch_add(1, Ordering::SeqCst);
                }
                let n = registry::drain(s)?;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            })
            .await?;
        debug_assert!(n > 0);
        Ok(())
    }
}

/// Read ends (duplicated) of the live `ctrl_c()` listeners, so that a run can tell whether one
/// of them received the SIGINT it is looking at.
static CTRL_C_READERS: Mutex<Vec<(u64, UnixStream)>> = Mutex::new(Vec::new());

static NEXT_CTRL_C: AtomicU64 = AtomicU64::new(1);

fn ctrl_c_readers() -> MutexGuard<'static, Vec<(u64, UnixStream)>> {
    CTRL_C_READERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// True if a live `ctrl_c()` listener has a SIGINT waiting to be read.
fn ctrl_c_has_pending_signal() -> bool {
    ctrl_c_readers()
        .iter()
        .any(|(_, reader)| has_pending_byte(reader))
}

/// True if a byte waits on `reader` (a subscription's read end, non-blocking: `WouldBlock`
/// when nothing is pending).
fn has_pending_byte(reader: &UnixStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    matches!(socket2::SockRef::from(reader).peek(&mut byte), Ok(n) if n > 0)
}

/// The listener of one `ctrl_c()` future. Not counted as a "user listener" of SIGINT (those
/// take every SIGINT for as long as they exist): a `ctrl_c()` only takes the SIGINTs it
/// actually receives.
struct CtrlCListener {
    listener: SigintListener,
    id: u64,
}

impl CtrlCListener {
    fn new(lp: &EventLoop) -> Result<CtrlCListener, Error> {
        let listener = SigintListener::new(lp, false, false)?;
        let peek = listener.reader.get_ref().try_clone()?;
        let id = NEXT_CTRL_C.fetch_add(1, Ordering::Relaxed);
        ctrl_c_readers().push((id, peek));
        Ok(CtrlCListener { listener, id })
    }
}

impl Drop for CtrlCListener {
    fn drop(&mut self) {
        let removed = {
            let mut readers = ctrl_c_readers();
            let at = readers.iter().position(|(id, _)| *id == self.id);
            at.map(|i| readers.swap_remove(i))
        };
        drop(removed);
    }
}

/// Waits for the next Ctrl-C (SIGINT) — tokio's `signal::ctrl_c`.
///
/// The listener is registered when `ctrl_c()` is called inside a running loop (otherwise when
/// the future is first polled), so a SIGINT that arrives between the call and the `.await` is
/// not missed; it is released when the future completes or is dropped. SIGINTs that arrive
/// while no listener exists get the signal's original disposition (by default they terminate
/// the process; see the [module docs](self)). Errors: `Err(Error::NoRunningLoop)` when not
/// polled inside a running loop, `Err(Error::Io)` if the signal cannot be watched.
///
/// Inside `evloop::run`, `ctrl_c()` takes Ctrl-C for itself: the run does not cancel its
/// main future for a SIGINT that a `ctrl_c()` future receives (nor while a loop has a SIGINT
/// handler or a SIGINT [`Signals`] stream exists). That is how a program shuts down
/// gracefully on Ctrl-C:
///
/// ```no_run
/// let lp = evloop_core::EventLoop::new()?;
/// lp.run_until_complete(async {
///     let server = lp.create_task(async { /* serve until cancelled */ });
///     let ctrl_c = evloop_io::signal::ctrl_c(); // listening from here on
///     println!("press Ctrl-C to stop");
///     ctrl_c.await?;
///     println!("shutting down");
///     server.cancel();
///     Ok::<(), evloop_core::Error>(())
/// })??;
/// # Ok::<(), evloop_core::Error>(())
/// ```
pub fn ctrl_c() -> CtrlC {
    let early = evloop_core::running_loop().map(|lp| CtrlCListener::new(&lp));
    CtrlC {
        inner: Box::pin(async move {
            let listener = match early {
                Some(registered) => registered?,
                None => {
                    CtrlCListener::new(&evloop_core::running_loop().ok_or(Error::NoRunningLoop)?)?
                }
            };
            listener.listener.recv(true).await?;
            Ok(())
        }),
    }
}

/// The future of [`ctrl_c`]: `Ok(())` at the next SIGINT.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct CtrlC {
    inner: Pin<Box<dyn Future<Output = Result<(), Error>>>>,
}

impl Future for CtrlC {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for CtrlC {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CtrlC").finish_non_exhaustive()
    }
}

/// The future a run on the main thread races its main future against: it completes at the
/// first SIGINT that no user listener (`ctrl_c()`, a handler, a stream) takes. Registered at
/// once (before the run starts). `evloop::run` and `Runner::run` use it on the main thread;
/// a runner of your own can race its main future against it the same way.
///
/// Errors: `Err(Error::Io)` if SIGINT cannot be watched.
pub fn run_interrupt(lp: &EventLoop) -> Result<Pin<Box<dyn Future<Output = ()>>>, Error> {
    let listener = SigintListener::new(lp, false, true)?;
    Ok(Box::pin(async move {
        let mut claims = USER_CLAIMS.load(Ordering::SeqCst);
        loop {
            if let Err(e) = listener.recv(false).await {
                tracing::warn!(error = %e, "evloop: no longer watching SIGINT");
                pending::<()>().await;
            }
            // The unread byte first, then the claims: a `ctrl_c()` (maybe on another loop's
            // thread, as with `evloop::multi`) claims before it reads the byte.
            let unread = ctrl_c_has_pending_signal();
            let now = USER_CLAIMS.load(Ordering::SeqCst);
            let taken = registry::user_listeners(SIGINT) > 0 || unread || now != claims;
            if !taken {
                return;
            }
            // User code handles this one: disarm, keep waiting.
            claims = now;
            registry::disarm(SIGINT);
        }
    }))
}
