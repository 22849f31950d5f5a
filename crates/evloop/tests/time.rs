//! `sleep`, `sleep_until`, `timeout`, `timeout_at`, `interval` on a real loop.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use evloop::time::{MissedTickBehavior, interval_at};
use evloop::{Elapsed, interval, sleep, sleep_until, timeout, timeout_at, yield_now};
use futures_core::Stream;

const MS: Duration = Duration::from_millis(1);

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

#[test]
fn sleep_waits_at_least_its_duration() {
    block_on(async {
        for ms in [0, 1, 5, 20] {
            let start = Instant::now();
            sleep(ms * MS).await;
            assert!(start.elapsed() >= ms * MS, "sleep({ms} ms) ended early");
        }
    });
}

#[test]
fn concurrent_sleeps_end_in_deadline_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    block_on(async move {
        let start = Instant::now();
        let tasks: Vec<_> = [30u32, 10, 20]
            .into_iter()
            .map(|ms| {
                let o = o.clone();
                evloop::spawn(async move {
                    sleep(Duration::from_millis(ms.into())).await;
                    assert!(start.elapsed() >= Duration::from_millis(ms.into()));
                    o.borrow_mut().push(ms);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    });
    assert_eq!(*order.borrow(), vec![10, 20, 30]);
}

#[test]
fn sleep_until_reaches_the_deadline() {
    block_on(async {
        let deadline = Instant::now() + 15 * MS;
        let s = sleep_until(deadline);
        assert_eq!(s.deadline(), deadline);
        s.await;
        assert!(Instant::now() >= deadline);
        // A deadline in the past completes (after one trip through the loop).
        sleep_until(Instant::now() - 10 * MS).await;
    });
}

#[test]
fn sleep_created_outside_the_loop_is_bound_at_first_poll() {
    let s = sleep(5 * MS);
    let deadline = s.deadline();
    block_on(s);
    assert!(Instant::now() >= deadline);
}

#[test]
fn sleep_reset_moves_the_deadline() {
    block_on(async {
        let start = Instant::now();
        let mut s = sleep(Duration::from_secs(60));
        // Arm the 60 s timer, then move it to 10 ms from now.
        assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx).is_pending())).await);
        s.reset(Instant::now() + 10 * MS);
        s.await;
        assert!(start.elapsed() >= 10 * MS);
        assert!(start.elapsed() < Duration::from_secs(60));
    });
}

#[test]
#[should_panic(expected = "no running event loop")]
fn sleep_polled_outside_a_running_loop_panics() {
    let mut s = sleep(MS);
    let _ = Pin::new(&mut s).poll(&mut Context::from_waker(Waker::noop()));
}

#[test]
fn timeout_returns_the_output_in_time() {
    block_on(async {
        assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
        let slowish = async {
            sleep(5 * MS).await;
            "done"
        };
        assert_eq!(timeout(Duration::from_secs(5), slowish).await, Ok("done"));
        // A zero duration is a deadline already passed: the future is not even polled, so
        // one that would be ready at once loses too (asyncio's `wait_for(coro, 0)`).
        assert!(timeout(Duration::ZERO, async { 1 }).await.is_err());
    });
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn timeout_elapses_and_drops_the_future() {
    let drops = Arc::new(AtomicUsize::new(0));
    let completed = Rc::new(RefCell::new(false));
    let (d, c) = (drops.clone(), completed.clone());
    block_on(async move {
        let start = Instant::now();
        let guard = DropCounter(d.clone());
        let inner = async move {
            let _guard = guard;
            sleep(Duration::from_secs(60)).await;
            *c.borrow_mut() = true;
        };
        let res: Result<(), Elapsed> = timeout(20 * MS, inner).await;
        assert!(res.is_err());
        assert!(start.elapsed() >= 20 * MS, "elapsed early");
        assert_eq!(
            d.load(Ordering::SeqCst),
            1,
            "inner future dropped on elapse"
        );
        let err = res.expect_err("elapsed");
        assert_eq!(err.to_string(), "deadline has elapsed");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        // The inner future's timer was cancelled with it.
        let lp = evloop::get_running_loop().expect("running");
        assert_eq!(lp.pending_timers(), 0);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(!*completed.borrow());
}

#[test]
fn timeout_at_uses_an_absolute_deadline() {
    block_on(async {
        let deadline = Instant::now() + 15 * MS;
        let res = timeout_at(deadline, std::future::pending::<()>()).await;
        assert!(res.is_err());
        assert!(Instant::now() >= deadline);
        let res = timeout_at(Instant::now() + Duration::from_secs(5), sleep(MS)).await;
        assert!(res.is_ok());
        // A deadline already past: a pending future times out at once.
        let res = timeout_at(Instant::now() - MS, std::future::pending::<()>()).await;
        assert!(res.is_err());
    });
}

#[test]
fn interval_ticks_on_schedule() {
    block_on(async {
        let period = 10 * MS;
        let start = Instant::now();
        let mut ticks = interval(period);
        let first = ticks.tick().await;
        assert!(first >= start && first <= Instant::now());
        let mut scheduled = vec![first];
        for _ in 0..4 {
            let t = ticks.tick().await;
            assert!(Instant::now() >= t, "a tick fired before its time");
            scheduled.push(t);
        }
        // Exactly one period apart on the schedule, the first one immediate.
        for pair in scheduled.windows(2) {
            assert_eq!(pair[1] - pair[0], period);
        }
        assert!(start.elapsed() >= 4 * period);
        assert_eq!(ticks.period(), period);
    });
}

#[test]
fn interval_is_a_stream() {
    block_on(async {
        let mut ticks = interval(5 * MS);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let next = poll_fn(|cx| Pin::new(&mut ticks).poll_next(cx)).await;
            seen.push(next.expect("an interval never ends"));
        }
        assert_eq!(seen[2] - seen[0], 10 * MS);
    });
}

#[test]
fn interval_bursts_missed_ticks_by_default() {
    block_on(async {
        let period = 10 * MS;
        let start = Instant::now();
        let mut ticks = interval_at(start, period);
        assert_eq!(ticks.missed_tick_behavior(), MissedTickBehavior::Burst);
        ticks.tick().await;
        // The loop is busy (blocked) for three and a half periods.
        std::thread::sleep(35 * MS);
        let before = Instant::now();
        let mut late = Vec::new();
        for _ in 0..3 {
            late.push(ticks.tick().await);
        }
        // The three missed ticks fire at once, keeping the original schedule.
        assert_eq!(
            late,
            vec![start + period, start + 2 * period, start + 3 * period]
        );
        assert!(before.elapsed() < period, "a burst does not wait");
        assert_eq!(ticks.tick().await, start + 4 * period);
    });
}

#[test]
fn interval_delay_and_skip_behaviors() {
    block_on(async {
        let period = 10 * MS;
        let start = Instant::now();
        let mut delayed = interval_at(start, period);
        delayed.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut skipping = interval_at(start, period);
        skipping.set_missed_tick_behavior(MissedTickBehavior::Skip);
        delayed.tick().await;
        skipping.tick().await;
        std::thread::sleep(35 * MS);
        let busy_end = Instant::now();
        assert_eq!(delayed.tick().await, start + period); // the missed tick, once
        let next = delayed.tick().await;
        assert!(
            next >= busy_end + period,
            "Delay: a full period after the late tick"
        );
        assert_eq!(skipping.tick().await, start + period);
        let next = skipping.tick().await;
        // Skip: the next multiple of the period on the original schedule.
        assert_eq!((next - start).as_nanos() % period.as_nanos(), 0);
        assert!(next >= busy_end);
    });
}

#[test]
fn interval_reset_restarts_the_schedule() {
    block_on(async {
        let mut ticks = interval(Duration::from_secs(60));
        ticks.tick().await;
        let before = Instant::now();
        ticks.reset(); // next tick one period from now: check it is not immediate
        let res = timeout(10 * MS, ticks.tick()).await;
        assert!(res.is_err());
        assert!(before.elapsed() >= 10 * MS);
    });
}

#[test]
#[should_panic(expected = "non-zero")]
fn interval_of_zero_panics() {
    let _ = interval(Duration::ZERO);
}

#[test]
fn yield_now_lets_other_tasks_run() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    block_on(async move {
        let l2 = l.clone();
        let other = evloop::spawn(async move { l2.borrow_mut().push("other") });
        l.borrow_mut().push("main before");
        // The task starts on the next iteration; yielding twice is enough to let it run.
        yield_now().await;
        yield_now().await;
        l.borrow_mut().push("main after");
        other.await.expect("other");
    });
    assert_eq!(*log.borrow(), vec!["main before", "other", "main after"]);
}

#[test]
fn a_huge_sleep_or_timeout_does_not_overflow() {
    evloop::run(async {
        let r = evloop::timeout(Duration::from_millis(5), evloop::sleep(Duration::MAX)).await;
        assert!(r.is_err());
        let r = evloop::timeout(Duration::MAX, async { 3 }).await;
        assert_eq!(r.ok(), Some(3));
    })
    .expect("run");
}

#[test]
fn sleep_and_timeout_work_in_a_future_spawned_from_another_thread() {
    evloop::run(async {
        let handle = evloop::get_running_loop().expect("running").handle();
        let task = std::thread::spawn(move || {
            // Both futures are `Send`, so they may go into `LoopHandle::spawn`.
            handle.spawn(async {
                evloop::sleep(Duration::from_millis(2)).await;
                evloop::timeout(Duration::from_secs(5), async { 5 }).await
            })
        })
        .join()
        .expect("thread");
        assert_eq!(task.await.expect("task").ok(), Some(5));
    })
    .expect("run");
}

/// A waker of our own that forwards to the task's; its `Arc`'s strong count tells how many
/// clones of it are kept.
struct Forward(Waker);

impl std::task::Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.0.wake_by_ref();
    }
}

/// Polls `fut` once (it must be pending) with a counted waker, drops it, and returns how
/// many clones of that waker outlived it.
async fn wakers_kept_after_drop<F: Future>(fut: F) -> usize {
    let probe = poll_fn(|cx| Poll::Ready(Arc::new(Forward(cx.waker().clone())))).await;
    let waker = Waker::from(probe.clone());
    let mut fut = Box::pin(fut);
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    drop(waker);
    drop(fut);
    Arc::strong_count(&probe) - 1
}

#[test]
fn dropped_time_futures_release_their_wakers_at_once() {
    const LONG: Duration = Duration::from_secs(3600);
    block_on(async {
        // A timer due before the others stays at the top of the loop's timer heap, so the
        // cancelled entries behind it are neither skipped nor compacted away meanwhile.
        let first = evloop::spawn(sleep(LONG / 2));
        yield_now().await;

        assert_eq!(wakers_kept_after_drop(sleep(LONG)).await, 0, "sleep");
        assert_eq!(
            wakers_kept_after_drop(sleep_until(Instant::now() + LONG)).await,
            0,
            "sleep_until"
        );
        let never = std::future::pending::<()>();
        assert_eq!(
            wakers_kept_after_drop(timeout(LONG, never)).await,
            0,
            "timeout"
        );
        let never = std::future::pending::<()>();
        assert_eq!(
            wakers_kept_after_drop(timeout_at(Instant::now() + LONG, never)).await,
            0,
            "timeout_at"
        );
        let mut ticks = interval(LONG);
        ticks.tick().await; // the first tick is immediate; the next one is an hour away
        assert_eq!(
            wakers_kept_after_drop(async move { ticks.tick().await }).await,
            0,
            "interval"
        );

        // `Sleep::reset` drops the armed timer: it must let go of the waker too.
        let probe = poll_fn(|cx| Poll::Ready(Arc::new(Forward(cx.waker().clone())))).await;
        let waker = Waker::from(probe.clone());
        let mut s = sleep(LONG);
        assert!(
            Pin::new(&mut s)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker);
        s.reset(Instant::now() + 2 * LONG);
        assert_eq!(Arc::strong_count(&probe), 1, "Sleep::reset");

        first.cancel();
    });
}

#[test]
fn time_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&sleep(MS));
    assert_send(&interval(MS));
    assert_send(&timeout(MS, async {}));
}
