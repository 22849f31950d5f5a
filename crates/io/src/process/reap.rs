//! Knowing when a child has exited, and reaping the ones nobody waits for.
//!
//! - **pidfd** (Linux ≥ 5.4): `pidfd_open(pid)` gives an fd that becomes readable when the
//!   child exits; it is registered with the loop's reactor like any other fd, and the status is
//!   then collected with `waitpid(pid, WNOHANG)` (std's `try_wait`). The pid cannot be reused
//!   before that: the child stays a zombie until it is reaped, and only its `Child` reaps it.
//! - **SIGCHLD** (the fallback when `pidfd_open` fails, or when forced): one subscription to
//!   SIGCHLD per loop, watched with `add_reader`; every SIGCHLD wakes every `wait` pending on
//!   that loop, and each one tries `try_wait` again (SIGCHLDs coalesce, so one signal may stand
//!   for several exits).
//! - **Orphans**: a `Child` dropped before its status was collected (its task cancelled, its
//!   loop closed, or simply not awaited) is handed to one process-wide background thread,
//!   which reaps it when it exits, so that no zombie is left behind. With `kill_on_drop` it is
//!   killed first.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;

use evloop_core::EventLoop;
#[cfg(target_os = "linux")]
use evloop_reactor::Async;
use signal_hook::consts::SIGCHLD;

use crate::signal::registry::{Subscription, drain};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Set by [`force_sigchld_reaper`](super::force_sigchld_reaper).
static FORCE_SIGCHLD: AtomicBool = AtomicBool::new(false);
/// Set once `pidfd_open` said the kernel does not have it.
#[cfg(target_os = "linux")]
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

pub(super) fn force_sigchld(on: bool) {
    FORCE_SIGCHLD.store(on, Ordering::SeqCst);
}

fn sigchld_forced() -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    FORCE_SIGCHLD.load(Ordering::SeqCst)
        || *FROM_ENV.get_or_init(|| {
            std::env::var_os("EVLOOP_FORCE_SIGCHLD").is_some_and(|v| !v.is_empty() && v != "0")
        })
}

/// How a child's exit is noticed.
pub(super) enum ExitWatch {
    /// The child's pidfd, registered with the loop's reactor.
    #[cfg(target_os = "linux")]
    PidFd(Async<std::os::fd::OwnedFd>),
    /// The loop's SIGCHLD notifier.
    SigChld(Arc<SigchldNotifier>),
}

impl ExitWatch {
    /// Sets up the watch for `child`, spawned just now on `lp`.
    pub(super) fn new(lp: &EventLoop, child: &std::process::Child) -> io::Result<ExitWatch> {
        #[cfg(target_os = "linux")]
        if !sigchld_forced() && !NO_PIDFD.load(Ordering::Relaxed) {
            use rustix::process::{Pid, PidfdFlags, pidfd_open};
            match pidfd_open(Pid::from_child(child), PidfdFlags::empty()) {
                Ok(fd) => return Ok(ExitWatch::PidFd(Async::new(fd, lp.reactor())?)),
                Err(e) => {
                    if e == rustix::io::Errno::NOSYS {
                        NO_PIDFD.store(true, Ordering::Relaxed);
                    }
                    tracing::debug!(error = %e, "pidfd_open failed; reaping on SIGCHLD");
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = child;
        Ok(ExitWatch::SigChld(SigchldNotifier::for_loop(lp)?))
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            ExitWatch::PidFd(_) => "pidfd",
            ExitWatch::SigChld(_) => "sigchld",
        }
    }
}

/// Wakes the `wait`s pending on one loop at every SIGCHLD.
pub(super) struct SigchldNotifier {
    wakers: Mutex<Vec<Waker>>,
}

/// The loop extension holding its notifier. The subscription itself lives in the loop's
/// reader callback, so it goes when the loop closes.
struct LoopSigchld(Arc<SigchldNotifier>);

impl SigchldNotifier {
    /// The notifier of `lp`, subscribing to SIGCHLD on first use.
    fn for_loop(lp: &EventLoop) -> io::Result<Arc<SigchldNotifier>> {
        if let Some(ext) = lp.find_extension::<LoopSigchld>() {
            return Ok(ext.0.clone());
        }
        let (subscription, reader) = Subscription::internal(SIGCHLD)?;
        let notifier = Arc::new(SigchldNotifier {
            wakers: Mutex::new(Vec::new()),
        });
        let to_wake = notifier.clone();
        lp.add_reader(reader.as_raw_fd(), move || {
            let _subscribed = &subscription;
            if let Err(e) = drain(&reader) {
                tracing::debug!(error = %e, "reading the SIGCHLD pipe failed");
            }
            to_wake.wake_all();
        })
        .map_err(core_to_io)?;
        lp.extension(|| LoopSigchld(notifier.clone()));
        Ok(notifier)
    }

    /// Wakes `waker` at the next SIGCHLD.
    pub(super) fn register(&self, waker: &Waker) {
        let mut wakers = lock(&self.wakers);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for w in wakers {
            w.wake();
        }
    }
}

pub(super) fn core_to_io(e: evloop_core::Error) -> io::Error {
    match e {
        evloop_core::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// Children handed over to the reaper thread.
struct Orphans {
    children: Vec<std::process::Child>,
    /// Whether the reaper thread runs (started on the first orphan).
    started: bool,
}

static ORPHANS: Mutex<Orphans> = Mutex::new(Orphans {
    children: Vec::new(),
    started: false,
});

/// Makes sure `child` gets reaped: now if it has exited, else by the reaper thread when it does.
pub(super) fn orphan(mut child: std::process::Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let mut orphans = lock(&ORPHANS);
    if !orphans.started {
        match start_reaper() {
            Ok(()) => orphans.started = true,
            Err(e) => tracing::error!(
                error = %e,
                pid = child.id(),
                "cannot start the reaper thread; the child will stay a zombie after it exits"
            ),
        }
    }
    // Checked again under the lock, after the thread's SIGCHLD subscription exists: an exit
    // from now on makes the thread look at the list, which it can only do after this push.
    if matches!(child.try_wait(), Ok(None)) {
        orphans.children.push(child);
    }
}

/// Starts the thread that reaps orphans: it blocks on a SIGCHLD subscription (kept for the
/// life of the process) and collects every orphan that has exited.
fn start_reaper() -> io::Result<()> {
    let (subscription, reader) = Subscription::internal(SIGCHLD)?;
    reader.set_nonblocking(false)?;
    std::thread::Builder::new()
        .name("evloop-reaper".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _subscribed = subscription;
            let mut buf = [0u8; 64];
            loop {
                match io::Read::read(&mut &reader, &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "the reaper thread stops");
                        break;
                    }
                }
                lock(&ORPHANS)
                    .children
                    .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            }
        })?;
    Ok(())
}
