//! Huge durations and far deadlines saturate: `Duration::MAX` and the farthest `Instant` mean
//! "never" in every API that takes one, and nothing panics or overflows.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use evloop::executor::ThreadPool;
use evloop::time::{MissedTickBehavior, interval_at};
use evloop::{
    ReturnWhen, RunInExecutor, interval, sleep, sleep_until, timeout, timeout_at, wait_timeout,
};

const MS: Duration = Duration::from_millis(1);

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
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

/// True if `fut` is still pending once a short sleep has ended (polling it first each time).
async fn still_pending_after_a_short_sleep<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    let mut short = pin!(sleep(5 * MS));
    poll_fn(|cx| {
        if fut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(false);
        }
        short.as_mut().poll(cx).map(|()| true)
    })
    .await
}

#[test]
fn a_far_sleep_never_ends_and_does_not_overflow() {
    block_on(async {
        let far = far_instant();
        assert!(still_pending_after_a_short_sleep(sleep(Duration::MAX)).await);
        assert!(still_pending_after_a_short_sleep(sleep_until(far)).await);
        let s = sleep(Duration::MAX);
        assert!(s.deadline() > Instant::now() + Duration::from_secs(86_400 * 365));
        assert!(!s.is_elapsed());
        let mut s = sleep(MS);
        s.reset(far);
        assert!(still_pending_after_a_short_sleep(s).await);
    });
}

#[test]
fn a_timeout_of_duration_max_or_a_far_deadline_never_elapses() {
    block_on(async {
        let far = far_instant();
        assert_eq!(timeout(Duration::MAX, async { 1 }).await, Ok(1));
        assert_eq!(timeout_at(far, async { 2 }).await, Ok(2));
        assert_eq!(timeout(Duration::MAX, sleep(2 * MS)).await, Ok(()));
        assert_eq!(timeout_at(far, sleep(2 * MS)).await, Ok(()));
        let never = std::future::pending::<()>();
        assert!(still_pending_after_a_short_sleep(timeout(Duration::MAX, never)).await);
        let never = std::future::pending::<()>();
        assert!(still_pending_after_a_short_sleep(timeout_at(far, never)).await);
    });
}

#[test]
fn an_interval_of_duration_max_ticks_once_then_never() {
    block_on(async {
        let before = Instant::now();
        let mut ticks = interval(Duration::MAX);
        let first = ticks.tick().await; // at once
        assert!(first >= before && first <= Instant::now());
        assert!(still_pending_after_a_short_sleep(ticks.tick()).await);
        ticks.reset(); // one period from now: never
        assert!(still_pending_after_a_short_sleep(ticks.tick()).await);
    });
}

#[test]
fn an_interval_with_a_missed_tick_and_a_huge_period_does_not_overflow() {
    block_on(async {
        for behavior in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            // The first tick is long past: it counts as missed.
            let start = Instant::now() - Duration::from_secs(1);
            let mut ticks = interval_at(start, Duration::MAX);
            ticks.set_missed_tick_behavior(behavior);
            assert_eq!(ticks.tick().await, start, "{behavior:?}");
            assert!(
                still_pending_after_a_short_sleep(ticks.tick()).await,
                "{behavior:?}"
            );
        }
    });
}

#[test]
fn an_interval_starting_at_a_far_instant_never_ticks() {
    block_on(async {
        let mut ticks = interval_at(far_instant(), Duration::MAX);
        assert!(still_pending_after_a_short_sleep(ticks.tick()).await);
        let mut ticks = interval_at(far_instant(), MS);
        assert!(still_pending_after_a_short_sleep(ticks.tick()).await);
    });
}

#[test]
fn wait_timeout_of_duration_max_waits_for_the_tasks() {
    block_on(async {
        let tasks = vec![evloop::spawn(sleep(2 * MS)), evloop::spawn(async {})];
        let (done, pending) = wait_timeout(tasks, ReturnWhen::AllCompleted, Duration::MAX).await;
        assert_eq!((done.len(), pending.len()), (2, 0));
    });
}

#[test]
fn run_with_a_pool_whose_idle_timeout_is_duration_max_exits_promptly() {
    let (tx, rx) = mpsc::channel();
    // In a thread of its own, so that a hang is a failure, not a stuck test run.
    std::thread::spawn(move || {
        let start = Instant::now();
        let out = evloop::run(async {
            let lp = evloop::get_running_loop().expect("running loop");
            let pool = ThreadPool::builder().idle_timeout(Duration::MAX).build();
            lp.set_default_executor(pool.clone());
            let job = lp.run_in_executor(|| 6 * 7).await.expect("job");
            (job, pool)
        });
        let _ = tx.send((out, start.elapsed()));
    });
    let (out, took) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("run() did not return within 10 s");
    let (job, pool) = out.expect("run");
    assert_eq!(job, 42);
    assert!(took < Duration::from_secs(5), "run() took {took:?}");
    // The idle worker saw the shutdown and exited (it did not die, nor wait forever).
    assert_eq!(pool.num_threads(), 0);
    assert_eq!(pool.idle_timeout(), Duration::MAX);
}
