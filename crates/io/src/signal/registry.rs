//! The process-wide side of signal handling: who listens to which signal.
//!
//! Every listener (a loop's signal handler, a [`Signals`](super::Signals) stream, `ctrl_c()`,
//! `run()`'s Ctrl-C watch, the SIGCHLD reapers of [`process`](crate::process)) is a
//! [`Subscription`]: a socket pair whose write end signal-hook's handler writes one byte to
//! (`signal_hook::low_level::pipe::register`) and whose read end the listener watches. The
//! signal handler itself never runs anything else: the byte is read, and user code run, on a
//! loop thread (or, for the orphan reaper, on its own thread).
//!
//! Signal-hook cannot uninstall its handler. To give a signal back its default disposition
//! when its last listener goes, the first subscription of a signal also registers signal-hook's
//! `register_conditional_default` action, switched by a per-signal flag: on while no listener
//! exists, so the signal then acts as if nobody had ever touched it. That action is only
//! registered for signals whose disposition *was* the default one before evloop first
//! subscribed (read from `/proc/self/status` on Linux): a signal that was ignored (SIGPIPE in
//! every Rust program, SIGINT in a background job) stays ignored, and one that already had a
//! handler keeps it (signal-hook chains to it).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use signal_hook::SigId;

/// The bookkeeping of one signal.
struct SignalState {
    /// True when the default action is to be emulated (no listener, or armed).
    default_on: Arc<AtomicBool>,
    /// Whether the signal had its default disposition before evloop first subscribed to it:
    /// only then is the default action emulated.
    had_default: bool,
    /// The conditional-default action, once registered.
    default_action: Option<SigId>,
    /// Live subscriptions.
    listeners: usize,
    /// Live subscriptions made for user code (handlers, streams, `ctrl_c()`).
    user_listeners: usize,
}

static SIGNALS: Mutex<BTreeMap<i32, SignalState>> = Mutex::new(BTreeMap::new());

fn signals() -> MutexGuard<'static, BTreeMap<i32, SignalState>> {
    SIGNALS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks that `signal` can be listened to: a valid number, not one of the signals that
/// cannot (SIGKILL, SIGSTOP) or must not (SIGSEGV, SIGILL, SIGFPE) be caught.
pub(crate) fn check(signal: i32) -> io::Result<()> {
    if !(1..=64).contains(&signal) || signal_hook::consts::FORBIDDEN.contains(&signal) {
        let name = signal_hook::low_level::signal_name(signal).unwrap_or("?");
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} ({name}) cannot be handled"),
        ));
    }
    Ok(())
}

/// One registration of one signal: while it lives, every delivery of the signal writes a byte
/// to the read end returned with it. Dropping it unregisters (closing the write end) and, if it
/// was the signal's last listener, gives the signal its original disposition back.
pub(crate) struct Subscription {
    signal: i32,
    ids: Vec<SigId>,
    user: bool,
}

impl Subscription {
    /// Subscribes user code (a handler, a stream, `ctrl_c()`) to `signal`. Returns the
    /// subscription and the read end of its socket pair (non-blocking).
    pub(crate) fn new(signal: i32) -> io::Result<(Subscription, UnixStream)> {
        Subscription::with_options(signal, true, false)
    }

    /// A subscription of evloop's own (not counted by [`user_listeners`]).
    pub(crate) fn internal(signal: i32) -> io::Result<(Subscription, UnixStream)> {
        Subscription::with_options(signal, false, false)
    }

    /// `user`: counted by [`user_listeners`]. `arm`: the first delivery also switches the
    /// signal's default action on, so that a second delivery gets it (`run()`'s "a second
    /// Ctrl-C terminates"), until [`disarm`] or until a new subscription is made.
    pub(crate) fn with_options(
        signal: i32,
        user: bool,
        arm: bool,
    ) -> io::Result<(Subscription, UnixStream)> {
        check(signal)?;
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        let mut map = signals();
        let state = map.entry(signal).or_insert_with(|| SignalState {
            default_on: Arc::new(AtomicBool::new(true)),
            // Read before signal-hook installs its handler for this signal.
            had_default: had_default(signal),
            default_action: None,
            listeners: 0,
            user_listeners: 0,
        });
        // Off before anything is registered: from the first registration on, a delivery is
        // the listeners' business.
        state.default_on.store(false, Ordering::SeqCst);
        let mut ids = Vec::new();
        let registered = (|| -> io::Result<()> {
            ids.push(signal_hook::low_level::pipe::register(signal, writer)?);
            if state.had_default && state.default_action.is_none() {
                // Registered once per signal and never removed; later arming actions come
                // after it, so it sees the flag as it was before they set it.
                match signal_hook::flag::register_conditional_default(
                    signal,
                    state.default_on.clone(),
                ) {
                    Ok(id) => state.default_action = Some(id),
                    // A signal signal-hook knows no default action for (a real-time one):
                    // it stays caught by signal-hook's (empty) handler.
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                    Err(e) => return Err(e),
                }
            }
            if arm {
                ids.push(signal_hook::flag::register(
                    signal,
                    state.default_on.clone(),
                )?);
            }
            Ok(())
        })();
        if let Err(e) = registered {
            for id in ids {
                signal_hook::low_level::unregister(id);
            }
            if state.listeners == 0 {
                state.default_on.store(true, Ordering::SeqCst);
            }
            return Err(e);
        }
        state.listeners += 1;
        if user {
            state.user_listeners += 1;
        }
        Ok((Subscription { signal, ids, user }, reader))
    }

    /// The signal subscribed to.
    pub(crate) fn signal(&self) -> i32 {
        self.signal
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = signals();
        for id in self.ids.drain(..) {
            // Also closes the write end of the socket pair.
            signal_hook::low_level::unregister(id);
        }
        if let Some(state) = map.get_mut(&self.signal) {
            state.listeners = state.listeners.saturating_sub(1);
            if self.user {
                state.user_listeners = state.user_listeners.saturating_sub(1);
            }
            if state.listeners == 0 {
                state.default_on.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("signal", &self.signal)
            .finish_non_exhaustive()
    }
}

/// How many subscriptions of user code `signal` has now.
pub(crate) fn user_listeners(signal: i32) -> usize {
    signals().get(&signal).map_or(0, |s| s.user_listeners)
}

/// Switches an armed default action off again (a `ctrl_c()` future took the signal).
pub(crate) fn disarm(signal: i32) {
    let map = signals();
    if let Some(state) = map.get(&signal) {
        if state.listeners > 0 {
            state.default_on.store(false, Ordering::SeqCst);
        }
    }
}

/// Reads everything pending on a subscription's (non-blocking) read end: the number of
/// deliveries recorded since the last drain. `Ok(0)` if none; an error other than
/// `WouldBlock`, or end of file (the write end was closed), is returned as is.
pub(crate) fn drain(mut reader: &UnixStream) -> io::Result<usize> {
    let mut buf = [0u8; 64];
    let mut total = 0;
    loop {
        match reader.read(&mut buf) {
            Ok(0) if total == 0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether `signal` had its default disposition (neither ignored nor caught) before evloop
/// first subscribed to it. Read from the `SigIgn` / `SigCgt` masks of `/proc/self/status`;
/// where that cannot be read, the default disposition is assumed.
fn had_default(signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return true;
    };
    let bit = 1u64 << (signal - 1);
    let set_in = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & bit != 0)
    };
    !set_in("SigIgn:") && !set_in("SigCgt:")
}
