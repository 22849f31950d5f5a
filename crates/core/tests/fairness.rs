//! Fairness of one iteration: work other threads keep injecting cannot keep timers from
//! firing (an iteration runs only what was queued when it began, as asyncio's `_run_once`).
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use evloop_core::EventLoop;

/// Three threads post `call_soon_threadsafe` callbacks as fast as they can until a flag says
/// stop; the flag is set by a 10 ms `call_later` timer. The timer must fire while the flood is
/// still going (the flooders give up on their own only after `GIVE_UP`).
#[test]
fn threadsafe_flood_does_not_starve_timers() {
    const FLOODERS: usize = 3;
    const DELAY: Duration = Duration::from_millis(10);
    // Bound on how late the timer may fire; without fairness it fires only when the flood
    // ends on its own, after GIVE_UP.
    const BOUND: Duration = Duration::from_secs(1);
    const GIVE_UP: Duration = Duration::from_secs(2);

    let lp = EventLoop::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let gave_up = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicU64::new(0));
    static RAN: AtomicU64 = AtomicU64::new(0);
    let handle = lp.handle();

    let start = Instant::now();
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (stop, gave_up, posted) = (stop.clone(), gave_up.clone(), posted.clone());
            let handle = handle.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if start.elapsed() > GIVE_UP {
                        gave_up.store(true, Ordering::Release);
                        break;
                    }
                    for _ in 0..64 {
                        handle
                            .call_soon_threadsafe(|| {
                                RAN.fetch_add(1, Ordering::Relaxed);
                            })
                            .unwrap();
                    }
                    posted.fetch_add(64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let the flood start before the timer is armed.
    while posted.load(Ordering::Relaxed) < 1_000 && start.elapsed() < GIVE_UP {
        thread::yield_now();
    }

    let fired: Rc<Cell<Option<(Instant, bool)>>> = Rc::default();
    let deadline = Instant::now() + DELAY;
    {
        let (fired, stop, gave_up, lp2) =
            (fired.clone(), stop.clone(), gave_up.clone(), lp.handle());
        lp.call_at(deadline, move || {
            // Were the flooders still posting on their own when the timer fired?
            let flooding = !gave_up.load(Ordering::Acquire);
            fired.set(Some((Instant::now(), flooding)));
            stop.store(true, Ordering::Release);
            lp2.stop();
        });
    }
    lp.run_forever().unwrap();
    for t in flooders {
        t.join().unwrap();
    }
    let (at, flooding) = fired.get().expect("the timer fired");
    let late = at.saturating_duration_since(deadline);
    assert!(flooding, "the timer fired only after the flood gave up");
    assert!(late < BOUND, "the timer fired {late:?} after its deadline");
    assert!(RAN.load(Ordering::Relaxed) > 0, "no injected callback ran");
}

/// Injected callbacks keep their FIFO order across iterations while the loop drains them
/// concurrently with the poster (the drain is bounded per iteration).
#[test]
fn injected_callbacks_keep_fifo_order_across_iterations() {
    const N: u32 = 20_000;
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let poster = {
        let (handle, seen) = (handle.clone(), seen.clone());
        thread::spawn(move || {
            for i in 0..N {
                let (seen, h) = (seen.clone(), handle.clone());
                handle
                    .call_soon_threadsafe(move || {
                        seen.lock().unwrap().push(i);
                        if i == N - 1 {
                            h.stop();
                        }
                    })
                    .unwrap();
            }
        })
    };
    lp.run_forever().unwrap();
    poster.join().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), N as usize);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "order was not kept");
}

/// The loop polls every task within a co-operative budget ([`coop::DEFAULT_BUDGET`]): a task
/// whose (here hand-made, always-ready) I/O takes part in the budget yields after spending
/// it, so a due timer and another task run before it goes on.
#[test]
fn a_task_spending_its_budget_yields_to_timers_and_tasks() {
    use evloop_reactor::coop;
    use std::future::poll_fn;
    use std::task::Poll;

    /// One always-ready operation that takes part in the budget.
    fn poll_op(cx: &mut std::task::Context<'_>) -> Poll<()> {
        if coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        coop::consume();
        Poll::Ready(())
    }

    let lp = EventLoop::new().unwrap();
    let timer = Rc::new(Cell::new(false));
    let other = Rc::new(Cell::new(false));
    let (t, o) = (timer.clone(), other.clone());
    let hog = lp.create_task(async move {
        let lp = evloop_core::running_loop().unwrap();
        lp.call_later(Duration::ZERO, move || t.set(true));
        drop(lp.create_task(async move { o.set(true) }));
        let mut ops = 0u32;
        while !(timer.get() && other.get()) && ops < 100_000 {
            poll_fn(poll_op).await;
            ops += 1;
        }
        (ops, timer.get(), other.get())
    });
    let (ops, timer_ran, other_ran) = lp.run_until_complete(hog).unwrap().unwrap();
    assert!(timer_ran && other_ran, "starved for {ops} operations");
    assert!(
        ops <= 4 * coop::DEFAULT_BUDGET,
        "{ops} operations before the others ran"
    );
}
