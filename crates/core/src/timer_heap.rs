//! `TimerHeap`: pending timers in deadline order, ties in scheduling order.
//!
//! A heap (a 4-ary one, `QuadHeap`) with lazy removal, as asyncio does it: cancelling only marks the entry (O(1))
//! and drops its callback; cancelled entries are skipped when they reach the top, and the heap
//! is rebuilt without them once they are more than half of it. Scheduling is O(log n).
//!
//! Two kinds of entries: `call_later`/`call_at` callbacks (`TimerCell`, loop-thread only) and
//! `sleep` futures (`SleepState`, shared with a `Send` future that may be dropped — cancelled —
//! on any thread; such cancellations are counted in an atomic the heap reads).

use std::cell::Cell;
use std::cmp::Ordering;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

use crate::quad_heap::QuadHeap;
use crate::task::lock;

/// What a callback timer does when it fires.
pub(crate) enum TimerAction {
    /// Run a callback (through the ready queue).
    Callback(Box<dyn FnOnce()>),
    /// Fired or cancelled.
    Nothing,
}

/// In the heap.
const PENDING: u8 = 0;
/// Fired; the action ran or is running.
const FIRED: u8 = 1;
/// Cancelled (in the heap until skipped, or already out of it).
const CANCELLED: u8 = 2;
/// Due: out of the heap, its callback waiting in the ready queue (still cancellable).
const DUE: u8 = 3;

/// One callback timer; shared by the heap and its `TimerHandle`.
pub(crate) struct TimerCell {
    pub(crate) when: Instant,
    pub(crate) name: &'static str,
    state: Cell<u8>,
    action: Cell<TimerAction>,
    /// The heap's count of cancelled entries still in it.
    heap_cancelled: Rc<Cell<usize>>,
}

impl TimerCell {
    /// Cancels the timer and hands back its callback (if it had not run), for the caller to
    /// drop where a panicking destructor is contained.
    pub(crate) fn cancel(&self) -> Option<Box<dyn FnOnce()>> {
        match self.state.get() {
            PENDING => self.heap_cancelled.set(self.heap_cancelled.get() + 1),
            DUE => {}
            _ => return None,
        }
        self.state.set(CANCELLED);
        match self.action.replace(TimerAction::Nothing) {
            TimerAction::Callback(f) => Some(f),
            TimerAction::Nothing => None,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.get() == CANCELLED
    }

    /// The due callback, unless it was cancelled meanwhile.
    pub(crate) fn take_due(&self) -> Option<Box<dyn FnOnce()>> {
        if self.state.get() != DUE {
            return None;
        }
        self.state.set(FIRED);
        match self.action.replace(TimerAction::Nothing) {
            TimerAction::Callback(f) => Some(f),
            TimerAction::Nothing => None,
        }
    }
}

/// The timer of one `Sleep` future: `Send + Sync`, so the future is `Send`.
#[derive(Default)]
pub(crate) struct SleepState {
    fired: AtomicBool,
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl SleepState {
    pub(crate) fn new(waker: &Waker) -> SleepState {
        SleepState {
            waker: Mutex::new(Some(waker.clone())),
            ..SleepState::default()
        }
    }

    pub(crate) fn has_fired(&self) -> bool {
        self.fired.load(AtomicOrdering::Acquire)
    }

    /// Marks it cancelled; true if it was still pending (so the heap should count it).
    pub(crate) fn cancel(&self) -> bool {
        !self.has_fired() && !self.cancelled.swap(true, AtomicOrdering::AcqRel)
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(AtomicOrdering::Relaxed)
    }

    /// Stores the waker to wake when it fires; false if it already fired.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut slot = lock(&self.waker);
        if self.has_fired() {
            return false;
        }
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
        true
    }

    /// Takes the stored waker out (for the caller to drop outside the lock). A dropped
    /// `Sleep` calls this: its heap entry may stay until it reaches the top of the heap or a
    /// compaction, but it must not keep the waker — a task's waker holds the task's memory.
    pub(crate) fn take_waker(&self) -> Option<Waker> {
        lock(&self.waker).take()
    }

    /// Wakes the sleeper without firing (after a cancellation by the loop closing).
    pub(crate) fn wake(&self) {
        if let Some(w) = self.take_waker() {
            w.wake();
        }
    }

    /// Fires: marks it and wakes the sleeper.
    pub(crate) fn fire(&self) {
        let waker = {
            let mut slot = lock(&self.waker);
            self.fired.store(true, AtomicOrdering::Release);
            slot.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// What a heap entry is.
enum Timer {
    Callback(Rc<TimerCell>),
    Sleep(Arc<SleepState>),
}

impl Timer {
    fn is_cancelled(&self) -> bool {
        match self {
            Timer::Callback(c) => c.is_cancelled(),
            Timer::Sleep(s) => s.is_cancelled(),
        }
    }
}

/// A timer that is due.
pub(crate) enum Due {
    /// A callback timer (now `DUE`).
    Callback(Rc<TimerCell>),
    /// A sleep to fire.
    Sleep(Arc<SleepState>),
}

/// A heap entry: 32 bytes (the deadline as nanoseconds since the heap's epoch), so that more
/// of a large heap stays in cache.
struct Entry {
    when: u64,
    seq: u64,
    timer: Timer,
}

impl Entry {
    /// The order of entries: by deadline, then by creation (FIFO among equal deadlines), as
    /// one 128-bit number, so that a comparison in the heap is one wide compare without
    /// branches.
    #[inline]
    fn key(&self) -> u128 {
        (u128::from(self.when) << 64) | u128::from(self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
    #[inline]
    fn lt(&self, other: &Entry) -> bool {
        self.key() < other.key()
    }
    #[inline]
    fn ge(&self, other: &Entry) -> bool {
        self.key() >= other.key()
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The loop's pending timers.
pub(crate) struct TimerHeap {
    heap: QuadHeap<Entry>,
    /// Deadlines are stored as nanoseconds since this instant (a year before the heap was
    /// made, where the clock allows, so that deadlines in the past keep their order).
    epoch: Instant,
    seq: u64,
    /// Cancelled callback entries still in the heap.
    cancelled: Rc<Cell<usize>>,
    /// Cancelled sleep entries still in the heap (incremented by `Sleep` drops, any thread).
    sleeps_cancelled: Arc<AtomicUsize>,
}

impl Default for TimerHeap {
    fn default() -> TimerHeap {
        let now = Instant::now();
        let epoch = [86_400 * 365, 86_400, 60]
            .into_iter()
            .find_map(|secs| now.checked_sub(std::time::Duration::from_secs(secs)))
            .unwrap_or(now);
        TimerHeap {
            heap: QuadHeap::default(),
            epoch,
            seq: 0,
            cancelled: Rc::default(),
            sleeps_cancelled: Arc::default(),
        }
    }
}

/// Below this many cancelled entries the heap is never rebuilt.
const MIN_CANCELLED_FOR_COMPACTION: usize = 100;

impl TimerHeap {
    /// A heap whose cancelled-sleep count is `counter` (shared with the loop's `Shared`).
    pub(crate) fn new(counter: Arc<AtomicUsize>) -> TimerHeap {
        TimerHeap {
            sleeps_cancelled: counter,
            ..TimerHeap::default()
        }
    }

    /// The counter `Sleep` drops increment.
    #[cfg(test)]
    pub(crate) fn sleep_cancel_counter(&self) -> Arc<AtomicUsize> {
        self.sleeps_cancelled.clone()
    }

    fn key(&self, when: Instant) -> u64 {
        let nanos = when.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// The deadline of `key`. Keys saturate (at 584 years after the epoch), so this is at most
    /// that far; where the platform's `Instant` cannot go so far, "never" (30 years away).
    fn instant(&self, key: u64) -> Instant {
        let after = std::time::Duration::from_nanos(key);
        self.epoch
            .checked_add(after)
            .unwrap_or_else(|| crate::time::deadline_after(after))
    }

    fn push_entry(&mut self, when: Instant, timer: Timer) {
        self.seq += 1;
        let when = self.key(when);
        self.heap.push(Entry {
            when,
            seq: self.seq,
            timer,
        });
        self.maybe_compact();
    }

    /// Schedules a callback timer.
    pub(crate) fn push(
        &mut self,
        when: Instant,
        action: TimerAction,
        name: &'static str,
    ) -> Rc<TimerCell> {
        let cell = Rc::new(TimerCell {
            when,
            name,
            state: Cell::new(PENDING),
            action: Cell::new(action),
            heap_cancelled: self.cancelled.clone(),
        });
        self.push_entry(when, Timer::Callback(cell.clone()));
        cell
    }

    /// Schedules a sleep.
    pub(crate) fn push_sleep(&mut self, when: Instant, sleep: Arc<SleepState>) {
        self.push_entry(when, Timer::Sleep(sleep));
    }

    fn cancelled_count(&self) -> usize {
        self.cancelled.get() + self.sleeps_cancelled.load(AtomicOrdering::Relaxed)
    }

    fn maybe_compact(&mut self) {
        let cancelled = self.cancelled_count();
        if cancelled > MIN_CANCELLED_FOR_COMPACTION && cancelled * 2 > self.heap.len() {
            let mut sleeps_removed = 0;
            self.heap.retain(|e| match &e.timer {
                Timer::Sleep(s) if s.is_cancelled() => {
                    sleeps_removed += 1;
                    false
                }
                t => !t.is_cancelled(),
            });
            self.cancelled.set(0);
            self.uncount_sleeps(sleeps_removed);
        }
    }

    fn uncount_sleeps(&self, n: usize) {
        if n > 0 {
            // Saturating: a drop racing with this may have counted an entry we already removed.
            let _ = self.sleeps_cancelled.fetch_update(
                AtomicOrdering::Relaxed,
                AtomicOrdering::Relaxed,
                |c| Some(c.saturating_sub(n)),
            );
        }
    }

    /// Pops cancelled entries off the top.
    fn skip_cancelled(&mut self) {
        while let Some(top) = self.heap.peek() {
            if !top.timer.is_cancelled() {
                break;
            }
            if let Some(e) = self.heap.pop() {
                match e.timer {
                    Timer::Callback(_) => {
                        self.cancelled.set(self.cancelled.get().saturating_sub(1))
                    }
                    Timer::Sleep(_) => self.uncount_sleeps(1),
                }
            }
        }
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_cancelled();
        self.heap.peek().map(|e| self.instant(e.when))
    }

    /// The next timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        self.skip_cancelled();
        if self.heap.peek()?.when > self.key(now) {
            return None;
        }
        match self.heap.pop()?.timer {
            Timer::Callback(cell) => {
                // Its callback stays in the cell until the ready queue reaches it (`take_due`),
                // so an earlier callback of the same iteration can still cancel it.
                cell.state.set(DUE);
                Some(Due::Callback(cell))
            }
            Timer::Sleep(s) => Some(Due::Sleep(s)),
        }
    }

    /// No entries at all (not even cancelled ones).
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pending (not cancelled) timers.
    pub(crate) fn len(&self) -> usize {
        self.heap.len().saturating_sub(self.cancelled_count())
    }

    /// Entries physically in the heap, cancelled ones included.
    #[cfg(test)]
    pub(crate) fn raw_len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every timer; what they held is returned for the caller to drop outside any
    /// borrow. Sleeps are marked cancelled (their futures then complete at once): call
    /// [`SleepState::wake`] on the returned ones, outside the borrow too.
    pub(crate) fn take_all(&mut self) -> (Vec<TimerAction>, Vec<Arc<SleepState>>) {
        let entries = self.heap.take();
        self.cancelled.set(0);
        self.sleeps_cancelled.store(0, AtomicOrdering::Relaxed);
        let mut actions = Vec::new();
        let mut sleeps = Vec::new();
        for e in entries {
            match e.timer {
                Timer::Callback(cell) => {
                    cell.state.set(CANCELLED);
                    actions.push(cell.action.replace(TimerAction::Nothing));
                }
                Timer::Sleep(s) => {
                    s.cancel();
                    sleeps.push(s);
                }
            }
        }
        (actions, sleeps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> TimerAction {
        TimerAction::Callback(Box::new(|| {}))
    }

    fn name_of(due: Due) -> &'static str {
        match due {
            Due::Callback(c) => c.name,
            Due::Sleep(_) => "sleep",
        }
    }

    #[test]
    fn sleeps_and_callbacks_share_one_order_and_cancelled_sleeps_are_skipped() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let waker = std::task::Waker::noop();
        let s1 = Arc::new(SleepState::new(waker));
        let s2 = Arc::new(SleepState::new(waker));
        heap.push_sleep(t0 + Duration::from_millis(2), s1.clone());
        heap.push(t0 + Duration::from_millis(1), noop(), "cb");
        heap.push_sleep(t0 + Duration::from_millis(3), s2.clone());
        assert!(s2.cancel());
        heap.sleep_cancel_counter()
            .fetch_add(1, AtomicOrdering::Relaxed);
        assert_eq!(heap.len(), 2);
        let now = t0 + Duration::from_millis(5);
        let order: Vec<_> = std::iter::from_fn(|| heap.pop_due(now).map(name_of)).collect();
        assert_eq!(order, ["cb", "sleep"]);
        assert_eq!(heap.len(), 0);
        assert!(heap.is_empty());
    }

    #[test]
    fn pops_in_deadline_order_ties_in_scheduling_order() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let late = heap.push(t0 + Duration::from_millis(5), noop(), "late");
        let a = heap.push(t0, noop(), "a");
        let b = heap.push(t0, noop(), "b");
        let now = t0 + Duration::from_millis(10);
        let order: Vec<_> = std::iter::from_fn(|| heap.pop_due(now).map(name_of)).collect();
        assert_eq!(order, ["a", "b", "late"]);
        assert!(!a.is_cancelled() && !b.is_cancelled() && !late.is_cancelled());
    }

    #[test]
    fn not_due_is_not_popped() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        heap.push(t0 + Duration::from_secs(1), noop(), "x");
        assert!(heap.pop_due(t0).is_none());
        assert_eq!(heap.next_deadline(), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn cancelled_entries_are_skipped_and_compacted() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let n = if cfg!(miri) { 300 } else { 100_000 };
        let cells: Vec<_> = (0..n)
            .map(|i| heap.push(t0 + Duration::from_micros(i as u64), noop(), "t"))
            .collect();
        // Cancel 60%: more than half of the heap, so the next push rebuilds it.
        for (i, c) in cells.iter().enumerate() {
            if i % 5 < 3 {
                c.cancel();
            }
        }
        let live = n * 2 / 5;
        assert_eq!(heap.len(), live);
        heap.push(t0 + Duration::from_secs(10), noop(), "t");
        assert_eq!(heap.raw_len(), live + 1);
        let now = t0 + Duration::from_secs(1);
        let mut fired = 0;
        while let Some(due) = heap.pop_due(now) {
            assert!(matches!(due, Due::Callback(ref c) if !c.is_cancelled()));
            fired += 1;
        }
        assert_eq!(fired, live);
    }

    #[test]
    fn cancel_after_fire_is_a_no_op() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let c = heap.push(t0, noop(), "x");
        assert!(heap.pop_due(t0).is_some());
        assert!(c.take_due().is_some());
        c.cancel();
        assert!(!c.is_cancelled());
        assert_eq!(heap.len(), 0);
    }
}
