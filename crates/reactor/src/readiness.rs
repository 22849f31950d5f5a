//! Per-direction readiness: [`Direction`] and the lock-free state word.
//!
//! Each registered source keeps one [`Readiness`] word per direction. The word
//! packs three things into one `AtomicU64` so that the hot path ("is it ready?")
//! is a single atomic load:
//!
//! ```text
//!  63                                   2   1   0
//! +---------------------------------------+---+---+
//! |                 tick                  | C | R |
//! +---------------------------------------+---+---+
//! R = ready flag, C = closed flag, tick = events seen so far (wrapping)
//! ```
//!
//! The reactor *sets* readiness (and bumps the tick) when the poller reports an
//! event; an operation that hit `WouldBlock` *clears* it, but only if the tick
//! it observed is still current (see [`Readiness::clear`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Which way readiness flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The source can be read from (or accepted on) without blocking.
    Read,
    /// The source can be written to (or finished connecting) without blocking.
    Write,
}

impl Direction {
    /// Both directions, in index order.
    pub(crate) const ALL: [Direction; 2] = [Direction::Read, Direction::Write];

    /// Index into per-direction arrays.
    pub(crate) const fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }

    /// Bit used in [`Interest`] masks.
    pub(crate) const fn bit(self) -> u8 {
        1 << self.index()
    }
}

/// A set of directions, as a bit mask of [`Direction::bit`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest(u8);

impl Interest {
    /// No direction.
    pub(crate) const NONE: Interest = Interest(0);

    /// Does the set contain `dir`?
    pub(crate) const fn has(self, dir: Direction) -> bool {
        self.0 & dir.bit() != 0
    }

    /// The set plus `dir`.
    pub(crate) const fn with(self, dir: Direction) -> Interest {
        Interest(self.0 | dir.bit())
    }

    /// The set minus `dir`.
    pub(crate) const fn without(self, dir: Direction) -> Interest {
        Interest(self.0 & !dir.bit())
    }

    /// Is the set empty?
    pub(crate) const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const READY: u64 = 0b001;
const CLOSED: u64 = 0b010;
/// "The peer closed this direction" (EPOLLRDHUP/EPOLLHUP): sticky for short operations (every
/// further stream read returns at once, EOF or an error, see [`Readiness::clear_unless_hup`]);
/// a `WouldBlock` clears it with the flag ([`Readiness::clear`]).
const HUP: u64 = 0b100;
const TICK_SHIFT: u32 = 3;

/// What a look at a [`Readiness`] word found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Ready, as of the given tick.
    Ready(u64),
    /// Not ready: the caller has to wait for the next event.
    NotReady,
    /// The source is closed (deregistered or its reactor dropped).
    Closed,
}

/// One direction's state word: `tick << 3 | hup << 2 | closed << 1 | ready`.
#[derive(Debug)]
pub(crate) struct Readiness(AtomicU64);

impl Readiness {
    /// A fresh word at tick 0, ready or not.
    pub(crate) const fn new(ready: bool) -> Readiness {
        Readiness(AtomicU64::new(if ready { READY } else { 0 }))
    }

    /// The current state, with one `Acquire` load.
    #[inline]
    pub(crate) fn check(&self) -> Check {
        decode(self.0.load(Ordering::Acquire))
    }

    /// Records an event: sets the ready flag and bumps the tick.
    ///
    /// Returns `false` (and changes nothing) if the word is closed.
    pub(crate) fn set_ready(&self, hup: bool) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                if word & CLOSED != 0 {
                    None
                } else {
                    let tick = (word >> TICK_SHIFT).wrapping_add(1);
                    Some((tick << TICK_SHIFT) | READY | (word & HUP) | if hup { HUP } else { 0 })
                }
            })
            .is_ok()
    }

    /// Clears the ready flag (and the hang-up bit), but only if it is set *and* no event
    /// arrived since `tick` was handed out by [`check`](Self::check).
    ///
    /// For an operation that failed with `WouldBlock`: the kernel has just said "not ready",
    /// hang-up or not. (A datagram socket whose read side is shut down reports EPOLLRDHUP for
    /// good yet answers EAGAIN; keeping the flag set would retry forever.) An edge-triggered
    /// event reports the fd's whole current state, so a hang-up still in force comes back
    /// with the next event.
    ///
    /// Returns whether the flag was cleared. A stale tick means a newer event
    /// raced with the operation that failed: the flag stays set so the caller
    /// retries instead of sleeping through that event.
    pub(crate) fn clear(&self, tick: u64) -> bool {
        let ready = (tick << TICK_SHIFT) | READY;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word & !HUP == ready).then_some(ready & !READY)
            })
            .is_ok()
    }

    /// Like [`clear`](Self::clear), but leaves a hung-up direction set: for a *short*
    /// operation (the queue ran dry), after which an EOF reported with the data must still
    /// be read.
    pub(crate) fn clear_unless_hup(&self, tick: u64) -> bool {
        let ready = (tick << TICK_SHIFT) | READY;
        self.0
            .compare_exchange(ready, ready & !READY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Marks the word closed for good. Returns `false` if it already was.
    pub(crate) fn close(&self) -> bool {
        self.0.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }

    /// Is the word closed?
    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }
}

#[inline]
fn decode(word: u64) -> Check {
    if word & CLOSED != 0 {
        Check::Closed
    } else if word & READY != 0 {
        Check::Ready(word >> TICK_SHIFT)
    } else {
        Check::NotReady
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_ready_or_not() {
        assert_eq!(Readiness::new(true).check(), Check::Ready(0));
        assert_eq!(Readiness::new(false).check(), Check::NotReady);
    }

    #[test]
    fn clear_with_current_tick_clears() {
        let r = Readiness::new(true);
        assert!(r.clear(0));
        assert_eq!(r.check(), Check::NotReady);
        // Clearing again is a no-op.
        assert!(!r.clear(0));
    }

    #[test]
    fn event_bumps_tick_and_sets_ready() {
        let r = Readiness::new(false);
        assert!(r.set_ready(false));
        assert_eq!(r.check(), Check::Ready(1));
        assert!(r.set_ready(false));
        assert_eq!(r.check(), Check::Ready(2));
    }

    #[test]
    fn stale_tick_does_not_clear() {
        let r = Readiness::new(true);
        let Check::Ready(tick) = r.check() else {
            panic!("fresh word should be ready");
        };
        // An event lands between the failed operation and the clear.
        assert!(r.set_ready(false));
        assert!(!r.clear(tick));
        assert_eq!(r.check(), Check::Ready(tick + 1));
        // The fresh tick clears.
        assert!(r.clear(tick + 1));
        assert_eq!(r.check(), Check::NotReady);
    }

    #[test]
    fn closed_is_sticky() {
        let r = Readiness::new(true);
        assert!(r.close());
        assert!(!r.close());
        assert!(r.is_closed());
        assert_eq!(r.check(), Check::Closed);
        assert!(!r.set_ready(false));
        assert!(!r.clear(0));
        assert_eq!(r.check(), Check::Closed);
    }

    #[test]
    fn tick_wraps_without_touching_flags() {
        let r = Readiness(AtomicU64::new(!CLOSED));
        assert_eq!(r.check(), Check::Ready(u64::MAX >> TICK_SHIFT));
        assert!(r.set_ready(false));
        assert_eq!(r.check(), Check::Ready(0));
    }

    #[test]
    fn interest_set_ops() {
        let i = Interest::NONE.with(Direction::Read);
        assert!(i.has(Direction::Read));
        assert!(!i.has(Direction::Write));
        let both = i.with(Direction::Write);
        assert_eq!(
            both.without(Direction::Read).without(Direction::Write),
            Interest::NONE
        );
        assert!(Interest::NONE.is_empty());
        assert!(!both.is_empty());
    }

    #[test]
    fn concurrent_events_never_lose_ticks() {
        let r = std::sync::Arc::new(Readiness::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        r.set_ready(false);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("event thread panicked");
        }
        assert_eq!(r.check(), Check::Ready(200));
    }

    #[test]
    fn hup_makes_the_flag_sticky_for_short_operations() {
        let r = Readiness::new(false);
        assert!(r.set_ready(true));
        let Check::Ready(tick) = r.check() else {
            panic!("not ready")
        };
        assert!(!r.clear_unless_hup(tick), "a hung-up direction stays ready");
        assert!(r.set_ready(false));
        let Check::Ready(tick) = r.check() else {
            panic!("not ready")
        };
        assert!(!r.clear_unless_hup(tick), "HUP survives later events");
    }

    #[test]
    fn would_block_clears_even_a_hung_up_direction() {
        let r = Readiness::new(false);
        assert!(r.set_ready(true));
        let Check::Ready(tick) = r.check() else {
            panic!("not ready")
        };
        assert!(!r.clear(tick + 1), "a stale tick never clears");
        assert!(r.clear(tick), "WouldBlock proves the direction not ready");
        assert_eq!(r.check(), Check::NotReady);
        // The hang-up went with it: a later plain event is not sticky.
        assert!(r.set_ready(false));
        let Check::Ready(tick) = r.check() else {
            panic!("not ready")
        };
        assert!(r.clear_unless_hup(tick));
        // A closed word is never cleared.
        assert!(r.set_ready(true));
        assert!(r.close());
        assert!(!r.clear(tick + 1));
        assert_eq!(r.check(), Check::Closed);
    }
}
