//! The guarantees the redesign of the task core is about: a pinned future is dropped where it
//! was polled, panicking destructors of futures and outputs are contained and reported, and
//! the header stays small.

#![allow(clippy::unwrap_used)]

use std::marker::PhantomPinned;

use super::*;

/// Pending `pending_polls` times, then ready. Records its address at the first poll and counts,
/// in `misplaced`, every later poll or drop that finds it elsewhere — what an intrusive waiter
/// (e.g. `tokio::sync::Notify::notified()`) relies on, and what Miri and AddressSanitizer see
/// as a use-after-free when it breaks.
struct PinCheck {
    addr: usize,
    pending_polls: usize,
    misplaced: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
    _pinned: PhantomPinned,
}

impl PinCheck {
    fn new(pending_polls: usize, misplaced: &Arc<AtomicUsize>, drops: &Arc<AtomicUsize>) -> Self {
        PinCheck {
            addr: 0,
            pending_polls,
            misplaced: misplaced.clone(),
            drops: drops.clone(),
            _pinned: PhantomPinned,
        }
    }
}

impl Future for PinCheck {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u8> {
        // SAFETY: nothing is moved out of the pinned value; the fields are plain data.
        let this = unsafe { self.get_unchecked_mut() };
        let here = this as *const PinCheck as usize;
        if this.addr == 0 {
            this.addr = here;
        } else if this.addr != here {
            this.misplaced.fetch_add(1, SeqCst);
        }
        if this.pending_polls == 0 {
            return Poll::Ready(9);
        }
        this.pending_polls -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for PinCheck {
    fn drop(&mut self) {
        let here = self as *const PinCheck as usize;
        if self.addr != 0 && self.addr != here {
            self.misplaced.fetch_add(1, SeqCst);
        }
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_polled_future_is_dropped_at_the_address_it_was_pinned_at() {
    let h = Harness::default();
    let misplaced = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));

    // Completed.
    let (r, mut done) = h.spawn(PinCheck::new(1, &misplaced, &drops));
    r.run();
    h.run_all();
    assert!(matches!(poll_noop(&mut done), Poll::Ready(Ok(9))));

    // Cancelled while pending (dropped by the runnable the cancel schedules... here the task
    // is already queued by its self-wake, so the queued runnable drops it).
    let (r, mut cancelled) = h.spawn(PinCheck::new(5, &misplaced, &drops));
    r.run();
    assert!(cancelled.cancel());
    h.run_all();
    expect_cancelled(&mut cancelled);

    // Cancelled from inside a poll's aftermath: the runnable is dropped unrun.
    let (r, mut dropped) = h.spawn(PinCheck::new(5, &misplaced, &drops));
    r.run();
    drop(h.pop().unwrap());
    expect_cancelled(&mut dropped);

    // Abandoned while pending: no runnable, no waker, no handle; the last reference frees it.
    let (r, abandoned) = spawn(
        poll_fn({
            let mut inner = Box::pin(PinCheck::new(0, &misplaced, &drops));
            let mut first = true;
            move |cx| {
                if first {
                    first = false;
                    // Pin the inner future at its heap address, then abandon the task.
                    let _ = inner.as_mut().poll(cx);
                }
                Poll::<()>::Pending
            }
        }),
        |_r: Runnable| {},
    );
    drop(abandoned);
    assert!(!r.run());
    let (r, abandoned) = spawn(PinCheck::new(3, &misplaced, &drops), |r: Runnable| drop(r));
    drop(abandoned);
    // Its self-wake reschedules it, and the scheduler drops that runnable: cancelled, dropped.
    assert!(!r.run());

    assert_eq!(drops.load(SeqCst), 5);
    assert_eq!(
        misplaced.load(SeqCst),
        0,
        "a pinned future was moved before its drop"
    );
}

#[test]
fn a_pinned_future_that_is_abandoned_pending_is_dropped_in_place() {
    let misplaced = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (r, task) = spawn(
        {
            let slot = slot.clone();
            let mut check = PinCheck::new(1, &misplaced, &drops);
            // The outer future is the task's own future: pinned in the cell. Keep the waker
            // elsewhere, then drop it: the last reference frees the task.
            check.pending_polls = usize::MAX;
            WithWakerSlot { check, slot }
        },
        |_r: Runnable| {},
    );
    drop(task);
    assert!(!r.run());
    let waker = slot.lock().unwrap().take().unwrap();
    drop(waker);
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(misplaced.load(SeqCst), 0, "moved before its drop");
}

/// Polls a `PinCheck` in place (structural pinning) and stashes the waker, without waking.
struct WithWakerSlot {
    check: PinCheck,
    slot: Arc<Mutex<Option<Waker>>>,
}

impl Future for WithWakerSlot {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `check` is structurally pinned: never moved out of `self`.
        let this = unsafe { self.get_unchecked_mut() };
        *this.slot.lock().unwrap() = Some(cx.waker().clone());
        let noop = Context::from_waker(Waker::noop());
        let mut noop = noop;
        // SAFETY: as above.
        let _ = unsafe { Pin::new_unchecked(&mut this.check) }.poll(&mut noop);
        Poll::Pending
    }
}

/// An output whose destructor panics.
struct PanickingOutput;

impl Drop for PanickingOutput {
    fn drop(&mut self) {
        if drops_never_zero() {
            panic!("output drop boom");
        }
    }
}

#[test]
fn an_unread_output_whose_drop_panics_is_contained_and_reported() {
    let h = Harness::default();
    let (r, task) = h.spawn(async { PanickingOutput });
    assert!(r.run());
    let id = task.id();
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(task)));
    assert!(
        dropped.is_ok(),
        "the output's panic escaped the handle's drop"
    );
    assert_eq!(
        h.destructor_panics(),
        vec![(id, Some("output drop boom".to_owned()))]
    );
}

#[test]
fn a_detached_output_whose_drop_panics_still_wakes_its_awaiters() {
    let h = Harness::default();
    let (r, task) = h.spawn(async { PanickingOutput });
    let mut awaiter = task.as_ref();
    drop(task);
    let (count, waker) = counting_waker();
    assert!(poll_with(&mut awaiter, &waker).is_pending());
    let ran = catch_unwind(AssertUnwindSafe(|| r.run()));
    assert!(matches!(ran, Ok(true)), "the output's panic escaped run()");
    assert_eq!(count.count(), 1, "the awaiter was not woken");
    assert!(matches!(
        poll_with(&mut awaiter, &waker),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(h.destructor_panics().len(), 1);
}

#[test]
fn a_future_whose_drop_panics_is_reported_to_the_scheduler() {
    let h = Harness::default();
    let (r, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(1)
        })
    });
    assert!(r.run());
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(1))));
    assert_eq!(h.destructor_panics().len(), 1);
}

#[test]
fn the_task_header_is_at_most_56_bytes() {
    // state word, vtable, id, owner mark + tag, the rare-part pointer, the handle's waker.
    assert!(std::mem::size_of::<super::super::header::Header>() <= 56);
}

/// A waker whose wake panics (a foreign executor's, say, or one whose scheduler is gone).
struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        if drops_never_zero() {
            panic!("wake boom");
        }
    }
}

#[test]
fn a_panicking_awaiter_waker_is_contained_and_the_others_are_still_woken() {
    let h = Harness::default();
    let drops = Drops::default();
    let gate = Arc::new(Gate::default());
    let (r, mut task) = h.spawn({
        let wait = gate.wait();
        let token = drops.token();
        async move {
            wait.await;
            token
        }
    });
    assert!(!r.run());
    // The handle waits with a waker whose wake panics; a TaskRef waits with a good one.
    let bad = Waker::from(Arc::new(PanickingWaker));
    assert!(poll_with(&mut task, &bad).is_pending());
    let mut awaiter = task.as_ref();
    let (count, good) = counting_waker();
    assert!(poll_with(&mut awaiter, &good).is_pending());
    gate.open();
    let r = h.pop().unwrap();
    let ran = catch_unwind(AssertUnwindSafe(|| r.run()));
    assert!(matches!(ran, Ok(true)), "a waker's panic escaped run()");
    assert_eq!(count.count(), 1, "the TaskRef awaiter was not woken");
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(_))));
    assert_eq!(drops.get(), 1, "the output was dropped once");
    drop(task);
    drop(awaiter);
    assert_eq!(
        Arc::weak_count(&h.0),
        0,
        "the task (which holds the scheduler) was never freed"
    );
}

/// A waker whose drop panics.
fn waker_panicking_on_drop() -> Waker {
    use std::task::{RawWaker, RawWakerVTable};
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    fn drop_boom(_: *const ()) {
        if drops_never_zero() {
            panic!("waker drop boom");
        }
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, drop_boom);
    // SAFETY: the vtable's functions ignore the (null) data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

#[test]
fn a_handle_whose_registered_waker_panics_on_drop_still_releases_the_task() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (r, mut task) = h.spawn(gate.wait());
    assert!(!r.run());
    let bad = std::mem::ManuallyDrop::new(waker_panicking_on_drop());
    assert!(poll_with(&mut task, &bad).is_pending());
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(task)));
    assert!(
        dropped.is_ok(),
        "the waker's panic escaped the handle's drop"
    );
    gate.open();
    assert_eq!(h.run_all(), 1);
    assert_eq!(
        Arc::weak_count(&h.0),
        0,
        "the handle's reference was never released"
    );
}

#[test]
fn a_panicking_drop_of_a_task_ref_awaiters_waker_left_at_the_free_is_contained() {
    // A `TaskRef` future registered its waker and went away; the task is abandoned, so the
    // waker is still in the rare part when the task is freed.
    let h = Harness::default();
    let (r, task) = h.spawn(poll_fn(|_| Poll::<()>::Pending));
    assert!(!r.run());
    let mut awaiter = task.as_ref();
    let bad = std::mem::ManuallyDrop::new(waker_panicking_on_drop());
    assert!(poll_with(&mut awaiter, &bad).is_pending());
    drop(awaiter);
    let freed = catch_unwind(AssertUnwindSafe(move || drop(task)));
    assert!(freed.is_ok(), "the waker's panic escaped the task's free");
    assert_eq!(Arc::weak_count(&h.0), 0, "the task was not freed");
}

#[test]
fn an_awaiter_that_gives_up_on_a_task_ref_is_not_kept_by_the_task() {
    // Tasks that await a long-running task's `TaskRef` and are cancelled (a timeout, say) must
    // not stay allocated, through their wakers, until that task ends.
    let h = Harness::default();
    let (rb, b) = h.spawn(poll_fn(|_| Poll::<()>::Pending));
    assert!(!rb.run());
    let base = Arc::weak_count(&h.0);
    for _ in 0..if cfg!(miri) { 3 } else { 50 } {
        let mut awaiter = b.as_ref();
        let (ra, a) = h.spawn(poll_fn(move |cx| Pin::new(&mut awaiter).poll(cx)));
        assert!(!ra.run());
        assert!(a.cancel());
        h.run_all();
        drop(a);
    }
    assert_eq!(
        Arc::weak_count(&h.0),
        base,
        "the cancelled awaiters' cells are retained"
    );
    // Two futures waiting with one waker: one giving up leaves the other registered.
    let (count, waker) = counting_waker();
    let mut first = b.as_ref();
    let mut second = b.as_ref();
    assert!(poll_with(&mut first, &waker).is_pending());
    assert!(poll_with(&mut second, &waker).is_pending());
    drop(first);
    assert!(b.cancel());
    h.run_all();
    assert_eq!(count.count(), 1, "the remaining awaiter was not woken");
    assert!(matches!(
        poll_with(&mut second, &waker),
        Poll::Ready(Err(_))
    ));
}
