//! Timers: many timers with half cancelled, `when()`, cancellation before, during and after
//! the iteration a timer is due in.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{DropCounter, Watchdog, run_one};
use evloop_core::{EventLoop, TimerHandle};

#[test]
fn hundred_thousand_timers_half_cancelled_run_the_other_half_in_deadline_order() {
    let _wd = Watchdog::new("hundred_thousand_timers", Duration::from_secs(30));
    const N: u64 = 100_000;
    let lp = EventLoop::new().unwrap();
    let fired: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(Vec::with_capacity(N as usize / 2)));
    let base = lp.time() + Duration::from_millis(5);
    // Scheduled in a scrambled order: the i-th timer is due at base + k(i) µs, k a permutation.
    let mut handles: Vec<(u64, TimerHandle)> = Vec::with_capacity(N as usize);
    for i in 0..N {
        let k = (i * 7919) % N;
        let f = fired.clone();
        let h = lp.call_at(base + Duration::from_micros(k), move || {
            f.borrow_mut().push(k)
        });
        handles.push((i, h));
    }
    let mut expected = Vec::with_capacity(N as usize / 2);
    for (i, h) in &handles {
        if i % 2 == 0 {
            h.cancel();
            assert!(h.cancelled());
        } else {
            expected.push((i * 7919) % N);
        }
    }
    expected.sort_unstable();
    assert_eq!(lp.pending_timers(), N as usize / 2);
    let lp2 = lp.clone();
    lp.call_at(base + Duration::from_micros(N + 1000), move || lp2.stop());
    lp.run_forever().unwrap();
    let fired = fired.borrow();
    assert_eq!(fired.len(), N as usize / 2);
    assert!(
        *fired == expected,
        "timers ran out of deadline order or the wrong ones ran"
    );
    assert_eq!(lp.pending_timers(), 0);
    assert!(handles.iter().all(|(i, h)| h.cancelled() == (i % 2 == 0)));
}

#[test]
fn timer_handle_when() {
    let lp = EventLoop::new().unwrap();
    let d = Duration::from_millis(250);
    let before = lp.time();
    let h = lp.call_later(d, || {});
    let after = lp.time();
    assert!(h.when() >= before + d && h.when() <= after + d);
    let at = Instant::now() + Duration::from_secs(5);
    assert_eq!(lp.call_at(at, || {}).when(), at);
    let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
    assert_eq!(lp.call_at(past, || {}).when(), past);
}

#[test]
fn a_timer_fires_no_earlier_than_its_deadline() {
    let _wd = Watchdog::new(
        "a_timer_fires_no_earlier_than_its_deadline",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let fired_at = Rc::new(Cell::new(None));
    let (f, lp2) = (fired_at.clone(), lp.clone());
    let h = lp.call_later(Duration::from_millis(15), move || {
        f.set(Some(Instant::now()));
        lp2.stop();
    });
    lp.run_forever().unwrap();
    let fired_at = fired_at.get().unwrap();
    assert!(fired_at >= h.when());
    assert!(!h.cancelled());
}

#[test]
fn a_cancelled_timer_does_not_run_and_its_callback_is_dropped_at_once() {
    let lp = EventLoop::new().unwrap();
    let drops = DropCounter::default();
    let ran = Rc::new(Cell::new(false));
    let (r, g) = (ran.clone(), drops.guard());
    let h = lp.call_later(Duration::ZERO, move || {
        let _g = g;
        r.set(true);
    });
    assert!(!h.cancelled());
    h.cancel();
    assert!(h.cancelled());
    assert_eq!(drops.get(), 1);
    h.cancel();
    assert!(h.cancelled());
    assert_eq!(lp.pending_timers(), 0);
    run_one(&lp);
    assert!(!ran.get());
}

#[test]
fn cancel_after_fire_is_harmless() {
    let lp = EventLoop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let h = lp.call_later(Duration::ZERO, move || c.set(c.get() + 1));
    let c = count.clone();
    let later = lp.call_later(Duration::ZERO, move || c.set(c.get() + 10));
    run_one(&lp);
    assert_eq!(count.get(), 11);
    h.cancel();
    h.cancel();
    let _ = h.cancelled();
    assert!(!later.cancelled());
    assert_eq!(lp.pending_timers(), 0);
    run_one(&lp);
    assert_eq!(count.get(), 11);
    // The loop's timers still work.
    let c = count.clone();
    lp.call_later(Duration::ZERO, move || c.set(c.get() + 100));
    run_one(&lp);
    assert_eq!(count.get(), 111);
}

#[test]
fn a_timer_cancelled_by_an_earlier_callback_of_the_same_iteration_does_not_run() {
    // Both timers are due in the first iteration; the first one cancels the second before it
    // runs (asyncio skips a cancelled handle taken from the ready queue).
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let when = lp.time().checked_sub(Duration::from_millis(1)).unwrap();
    let victim_slot: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
    let v = victim_slot.clone();
    lp.call_at(when, move || v.borrow().as_ref().unwrap().cancel());
    let r = ran.clone();
    let victim = lp.call_at(when, move || r.set(true));
    *victim_slot.borrow_mut() = Some(victim.clone());
    run_one(&lp);
    assert!(
        victim.cancelled(),
        "cancel() of a timer that has not run must stick"
    );
    assert!(!ran.get(), "a cancelled timer ran");
}

#[test]
fn a_timer_cancelled_by_a_call_soon_callback_of_the_same_iteration_does_not_run() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let victim = lp.call_later(Duration::ZERO, move || r.set(true));
    let v = victim.clone();
    // The callback is ahead of the due timer in the ready queue.
    lp.call_soon(move || v.cancel());
    run_one(&lp);
    assert!(!ran.get(), "a cancelled timer ran");
    assert!(victim.cancelled());
}

#[test]
fn a_call_soon_handle_cancelled_by_an_earlier_callback_does_not_run() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let slot: Rc<RefCell<Option<evloop_core::Handle>>> = Rc::default();
    let s = slot.clone();
    lp.call_soon(move || s.borrow().as_ref().unwrap().cancel());
    let r = ran.clone();
    let victim = lp.call_soon(move || r.set(true));
    *slot.borrow_mut() = Some(victim.clone());
    run_one(&lp);
    assert!(victim.cancelled());
    assert!(!ran.get());
}

#[test]
fn a_timer_far_in_the_future_does_not_fire_early() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = lp.call_later(Duration::from_secs(3600), move || r.set(true));
    for _ in 0..3 {
        run_one(&lp);
    }
    assert!(!ran.get());
    assert_eq!(lp.pending_timers(), 1);
    h.cancel();
    assert_eq!(lp.pending_timers(), 0);
}

#[test]
fn the_loop_sleeps_until_the_next_timer() {
    // Only a timer is pending: run_forever must wait for it (not spin and not hang).
    let _wd = Watchdog::new(
        "the_loop_sleeps_until_the_next_timer",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    lp.call_later(Duration::from_millis(8), move || o.borrow_mut().push(8));
    let o = order.clone();
    lp.call_later(Duration::from_millis(4), move || o.borrow_mut().push(4));
    let lp2 = lp.clone();
    let start = Instant::now();
    lp.call_later(Duration::from_millis(12), move || lp2.stop());
    lp.run_forever().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(12));
    assert_eq!(*order.borrow(), [4, 8]);
}

#[test]
fn a_huge_delay_does_not_panic() {
    // A "never" timer is a plausible input (tokio's sleep(Duration::MAX) works); misuse is
    // never a panic in this API.
    let lp = EventLoop::new().unwrap();
    let h = lp.call_later(Duration::MAX, || {});
    assert!(!h.cancelled());
    assert!(h.when() > lp.time() + Duration::from_secs(365 * 24 * 3600));
    assert_eq!(lp.pending_timers(), 1);
    run_one(&lp);
    h.cancel();
    assert_eq!(lp.pending_timers(), 0);
}

#[test]
fn sleep_with_a_huge_duration_does_not_panic() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let sleeper = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::MAX).await;
    });
    run_one(&lp);
    assert!(!sleeper.is_done());
    assert!(sleeper.cancel());
    let out = lp.run_until_complete(sleeper).unwrap();
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn the_loop_parks_on_a_very_far_timer_and_is_still_woken() {
    let _wd = Watchdog::new(
        "the_loop_parks_on_a_very_far_timer",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    // Far beyond what an epoll millisecond timeout can hold.
    lp.call_later(Duration::from_secs(100 * 365 * 24 * 3600), || {});
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    lp.call_soon(move || tx.send(()).unwrap());
    let h = lp.handle();
    let remote = std::thread::spawn(move || {
        rx.recv().unwrap();
        h.stop();
    });
    lp.run_forever().unwrap();
    remote.join().unwrap();
}

/// The farthest `Instant` the platform can represent (from now).
fn far_instant() -> Instant {
    let mut far = Instant::now();
    let mut step = Duration::MAX;
    while step > Duration::ZERO {
        match far.checked_add(step) {
            Some(t) => far = t,
            None => step /= 2,
        }
    }
    far
}

#[test]
fn huge_delays_and_far_deadlines_mean_never() {
    let _wd = Watchdog::new(
        "huge_delays_and_far_deadlines_mean_never",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let far = far_instant();
    let fired = Rc::new(Cell::new(0));
    let (f1, f2) = (fired.clone(), fired.clone());
    let later = lp.call_later(Duration::MAX, move || f1.set(f1.get() + 1));
    let at = lp.call_at(far, move || f2.set(f2.get() + 1));
    assert!(later.when() > Instant::now() + Duration::from_secs(86_400 * 365));
    assert_eq!(at.when(), far);
    let sleeps = lp.create_task({
        let lp = lp.clone();
        async move {
            let mut never = Box::pin(evloop_core::sleep(&lp, Duration::MAX));
            let mut never_at = Box::pin(evloop_core::sleep_until(&lp, far));
            let mut short = Box::pin(evloop_core::sleep(&lp, Duration::from_millis(5)));
            std::future::poll_fn(|cx| {
                assert!(never.as_mut().poll(cx).is_pending());
                assert!(never_at.as_mut().poll(cx).is_pending());
                short.as_mut().poll(cx)
            })
            .await;
        }
    });
    // The loop waits for the short sleep (not forever), with the far timers
    // pending behind it.
    let start = Instant::now();
    lp.run_until_complete(sleeps).unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_eq!(lp.pending_timers(), 2);
    run_one(&lp);
    assert_eq!(fired.get(), 0);
    later.cancel();
    at.cancel();
    assert_eq!(lp.pending_timers(), 0);
    lp.close().unwrap();
}
