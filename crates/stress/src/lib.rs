//! # evloop-stress: helpers for evloop's stress tests
//!
//! The tests live in `tests/*.rs`, each binary its own process (they change process-wide
//! limits and count descriptors). Run them with `cargo xtask stress [--quick | --full]`,
//! which builds in release mode and passes the scale as `EVLOOP_STRESS=quick|full`
//! (quick is the default and what CI runs: minutes on two cores; full uses the issue's
//! counts).
//!
//! ```
//! use evloop_stress::Scale;
//!
//! // 1 000 connections in quick mode, 10 000 in full mode.
//! let connections = Scale::from_env().pick(1_000, 10_000);
//! assert!(connections >= 1_000);
//! ```
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// How big the stress runs are (env `EVLOOP_STRESS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Minutes on two cores: what `.ci/run` and the default `cargo xtask stress` use.
    Quick,
    /// The issue's counts (`EVLOOP_STRESS=full`, `cargo xtask stress --full`).
    Full,
}

impl Scale {
    /// `Full` if `EVLOOP_STRESS=full`, else `Quick`.
    pub fn from_env() -> Scale {
        match std::env::var("EVLOOP_STRESS").as_deref() {
            Ok("full") => Scale::Full,
            _ => Scale::Quick,
        }
    }

    /// `quick` or `full`, by scale.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Scale::Quick => quick,
            Scale::Full => full,
        }
    }
}

/// The number of open descriptors of this process (entries of `/proc/self/fd`, minus the
/// one the listing itself uses).
pub fn open_fds() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

/// The `RLIMIT_NOFILE` soft and hard limits (`None` is unlimited).
pub fn nofile() -> (Option<u64>, Option<u64>) {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    (current, maximum)
}

/// Sets the soft `RLIMIT_NOFILE` (the hard limit is kept).
pub fn set_nofile_soft(soft: Option<u64>) -> std::io::Result<()> {
    let (_, maximum) = nofile();
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: soft,
            maximum,
        },
    )?;
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit
/// (`None` is unlimited).
pub fn raise_nofile() -> std::io::Result<Option<u64>> {
    let (_, maximum) = nofile();
    set_nofile_soft(maximum)?;
    Ok(nofile().0)
}

/// Runs `f` on a thread of its own and returns its result, or panics (failing the test)
/// if it has not finished within `limit`: a hang becomes a failure with `what` in the
/// message. A panic in `f` is resumed here. On a timeout the thread is left behind (it is
/// stuck); the test process ends anyway.
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("stress: {what}"))
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(out);
        })
        .unwrap_or_else(|err| panic!("{what}: cannot start a thread: {err}"));
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => {
            let _ = worker.join();
            out
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: did not finish within {limit:?} (hung)"),
    }
}

/// Runs `f` on a thread of its own, giving it a progress counter to bump; panics (failing
/// the test) if the counter stays the same for `stall`: a hang becomes a failure that
/// names `what` and how far it got. A panic in `f` is resumed here.
pub fn with_watchdog<T: Send + 'static>(
    what: &str,
    stall: Duration,
    f: impl FnOnce(&AtomicUsize) -> T + Send + 'static,
) -> T {
    let progress = Arc::new(AtomicUsize::new(0));
    let p = progress.clone();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("stress: {what}"))
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&p)));
            let _ = tx.send(out);
        })
        .unwrap_or_else(|err| panic!("{what}: cannot start a thread: {err}"));
    let mut seen = 0;
    let mut since = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(out)) => {
                let _ = worker.join();
                return out;
            }
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: worker vanished"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = progress.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    since = Instant::now();
                } else if since.elapsed() >= stall {
                    panic!("{what}: no progress for {stall:?} after {now} steps (hung)");
                }
            }
        }
    }
}

/// The output of a joined task; a task's panic is resumed here (so the test fails with
/// its message) and a cancelled task fails the test.
pub fn joined<T>(result: Result<T, evloop::JoinError>) -> T {
    match result {
        Ok(out) => out,
        Err(evloop::JoinError::Panicked(payload)) => std::panic::resume_unwind(payload),
        Err(err) => panic!("task did not finish: {err}"),
    }
}

/// Byte `pos` of connection `id`'s test stream: cheap to compute on both sides, and
/// different for every connection and position (so a lost, duplicated or swapped chunk
/// shows).
pub fn pattern_byte(id: u64, pos: u64) -> u8 {
    let x = id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(pos.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    (x ^ (x >> 29) ^ (pos >> 8)) as u8
}

/// Fills `buf` with bytes `start..` of connection `id`'s stream.
pub fn fill_pattern(id: u64, start: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(id, start + i as u64);
    }
}

/// The first position in `buf` (which holds bytes `start..` of connection `id`'s stream)
/// that differs from the pattern.
pub fn pattern_mismatch(id: u64, start: u64, buf: &[u8]) -> Option<u64> {
    buf.iter()
        .enumerate()
        .find(|&(i, &b)| b != pattern_byte(id, start + i as u64))
        .map(|(i, _)| start + i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_round_trips_and_differs_by_connection() {
        let mut buf = [0u8; 300];
        fill_pattern(7, 1000, &mut buf);
        assert_eq!(pattern_mismatch(7, 1000, &buf), None);
        assert!(pattern_mismatch(8, 1000, &buf).is_some());
        assert!(pattern_mismatch(7, 1001, &buf).is_some());
    }

    #[test]
    fn a_hang_becomes_a_failure() {
        let hung = std::panic::catch_unwind(|| {
            within("sleeper", Duration::from_millis(20), || {
                std::thread::sleep(Duration::from_secs(2));
            })
        });
        assert!(hung.is_err());
        assert_eq!(within("quick", Duration::from_secs(5), || 5), 5);
    }

    #[test]
    fn a_stall_becomes_a_failure_but_progress_does_not() {
        let stalled = std::panic::catch_unwind(|| {
            with_watchdog("staller", Duration::from_millis(100), |_| {
                std::thread::sleep(Duration::from_secs(2));
            })
        });
        assert!(stalled.is_err());
        let out = with_watchdog("stepper", Duration::from_secs(5), |p| {
            for _ in 0..3 {
                p.fetch_add(1, Ordering::SeqCst);
            }
            7
        });
        assert_eq!(out, 7);
    }
}
