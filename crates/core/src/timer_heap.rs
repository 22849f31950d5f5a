//! `TimerHeap`: pending timers in deadline order, ties in scheduling order.
//!
//! A binary heap with lazy removal, as asyncio does it: cancelling only marks the entry (O(1))
//! and drops its callback; cancelled entries are skipped when they reach the top, and the heap
//! is rebuilt without them once they are more than half of it. Scheduling is O(log n).

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

/// What a timer does when it fires.
pub(crate) enum TimerAction {
    /// Run a callback (through the ready queue).
    Callback(Box<dyn FnOnce()>),
    /// Wake a future (a `Sleep`).
    Wake(Option<Waker>),
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

/// One timer; shared by the heap and its handle.
pub(crate) struct TimerCell {
    pub(crate) when: Instant,
    pub(crate) name: &'static str,
    state: Cell<u8>,
    pub(crate) action: Cell<TimerAction>,
    /// The heap's count of cancelled entries still in it.
    heap_cancelled: Rc<Cell<usize>>,
}

impl TimerCell {
    pub(crate) fn cancel(&self) {
        match self.state.get() {
            PENDING => self.heap_cancelled.set(self.heap_cancelled.get() + 1),
            DUE => {}
            _ => return,
        }
        self.state.set(CANCELLED);
        drop(self.action.replace(TimerAction::Nothing));
    }

    /// Parks a due callback until the ready queue reaches it.
    pub(crate) fn set_due(&self, callback: Box<dyn FnOnce()>) {
        self.state.set(DUE);
        self.action.set(TimerAction::Callback(callback));
    }

    /// The due callback, unless it was cancelled meanwhile.
    pub(crate) fn take_due(&self) -> Option<Box<dyn FnOnce()>> {
        if self.state.get() != DUE {
            return None;
        }
        self.state.set(FIRED);
        match self.action.replace(TimerAction::Nothing) {
            TimerAction::Callback(f) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.get() == CANCELLED
    }

    pub(crate) fn has_fired(&self) -> bool {
        self.state.get() == FIRED
    }

    /// Replaces the waker of a `Wake` timer that has not fired.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        if self.state.get() != PENDING {
            return;
        }
        match self.action.replace(TimerAction::Nothing) {
            TimerAction::Wake(Some(w)) if w.will_wake(waker) => {
                self.action.set(TimerAction::Wake(Some(w)))
            }
            _ => self.action.set(TimerAction::Wake(Some(waker.clone()))),
        }
    }
}

struct Entry {
    when: Instant,
    seq: u64,
    cell: Rc<TimerCell>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.when == other.when && self.seq == other.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest deadline on top.
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

/// The loop's pending timers.
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Entry>,
    seq: u64,
    cancelled: Rc<Cell<usize>>,
}

/// Below this many cancelled entries the heap is never rebuilt.
const MIN_CANCELLED_FOR_COMPACTION: usize = 100;

impl TimerHeap {
    /// Schedules a timer.
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
        self.seq += 1;
        self.heap.push(Entry {
            when,
            seq: self.seq,
            cell: cell.clone(),
        });
        self.maybe_compact();
        cell
    }

    fn maybe_compact(&mut self) {
        let cancelled = self.cancelled.get();
        if cancelled > MIN_CANCELLED_FOR_COMPACTION && cancelled * 2 > self.heap.len() {
            self.heap.retain(|e| !e.cell.is_cancelled());
            self.cancelled.set(0);
        }
    }

    /// Pops cancelled entries off the top.
    fn skip_cancelled(&mut self) {
        while let Some(top) = self.heap.peek() {
            if !top.cell.is_cancelled() {
                break;
            }
            self.heap.pop();
            self.cancelled.set(self.cancelled.get().saturating_sub(1));
        }
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_cancelled();
        self.heap.peek().map(|e| e.when)
    }

    /// The next timer due at `now`, marked fired, with its action.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Rc<TimerCell>, TimerAction)> {
        self.skip_cancelled();
        if self.heap.peek()?.when > now {
            return None;
        }
        let entry = self.heap.pop()?;
        entry.cell.state.set(FIRED);
        let action = entry.cell.action.replace(TimerAction::Nothing);
        Some((entry.cell, action))
    }

    /// No entries at all (not even cancelled ones).
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Pending (not cancelled) timers.
    pub(crate) fn len(&self) -> usize {
        self.heap.len() - self.cancelled.get().min(self.heap.len())
    }

    /// Entries physically in the heap, cancelled ones included.
    #[cfg(test)]
    pub(crate) fn raw_len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every timer, returning their actions so the caller drops them outside any borrow.
    pub(crate) fn take_all(&mut self) -> Vec<TimerAction> {
        let entries = std::mem::take(&mut self.heap);
        self.cancelled.set(0);
        entries
            .into_iter()
            .map(|e| {
                e.cell.state.set(CANCELLED);
                e.cell.action.replace(TimerAction::Nothing)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> TimerAction {
        TimerAction::Callback(Box::new(|| {}))
    }

    #[test]
    fn pops_in_deadline_order_ties_in_scheduling_order() {
        let mut heap = TimerHeap::default();
        let t0 = Instant::now();
        let late = heap.push(t0 + Duration::from_millis(5), noop(), "late");
        let a = heap.push(t0, noop(), "a");
        let b = heap.push(t0, noop(), "b");
        let now = t0 + Duration::from_millis(10);
        let order: Vec<_> = std::iter::from_fn(|| heap.pop_due(now).map(|(c, _)| c.name)).collect();
        assert_eq!(order, ["a", "b", "late"]);
        assert!(a.has_fired() && b.has_fired() && late.has_fired());
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
        while let Some((c, _)) = heap.pop_due(now) {
            assert!(!c.is_cancelled());
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
        c.cancel();
        assert!(!c.is_cancelled());
        assert_eq!(heap.len(), 0);
    }
}
