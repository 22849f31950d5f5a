//! Three threads flood a loop with `call_soon_threadsafe` while a 10 ms timer is due: the
//! timer must still fire on time (asyncio runs, per iteration, only the callbacks that were
//! ready when it began; timers get their turn every iteration whatever other threads do).
//!
//! In phases (quick: 8, full: 30), each on a fresh loop: the flood starts, a 10 ms timer is armed once the loop
//! is running flood callbacks, and the flood stops when the timer fires or after
//! [`FLOOD_CAP`]; so a frozen loop fails the test (its timer is late) instead of hanging it,
//! and the queue, which grows while three senders outpace one loop, stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use evloop::LoopHandle;
use evloop_stress::{Scale, within};

const FLOODERS: usize = 3;
/// The longest one phase's flood goes on.
const FLOOD_CAP: Duration = Duration::from_secs(1);
/// A 10 ms timer must fire within this, flood or not (generous for a loaded machine).
const LATE: Duration = Duration::from_millis(250);

/// Flood callbacks run so far.
static RAN: AtomicU64 = AtomicU64::new(0);

/// A callback that captures nothing: no allocation per callback, so the queue costs only
/// its slots while it grows.
fn count_one() {
    RAN.fetch_add(1, Ordering::Relaxed);
}

/// Starts the flooding threads; each returns how many callbacks it sent.
fn flood(handle: &LoopHandle, stop: &Arc<AtomicBool>) -> Vec<thread::JoinHandle<u64>> {
    (0..FLOODERS)
        .map(|_| {
            let (handle, stop) = (handle.clone(), stop.clone());
            thread::spawn(move || {
                let start = Instant::now();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && start.elapsed() < FLOOD_CAP {
                    if handle.call_soon_threadsafe(count_one).is_err() {
                        break;
                    }
                    sent += 1;
                }
                sent
            })
        })
        .collect()
}

/// One phase; returns the timer's latency.
async fn phase(handle: &LoopHandle) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let ran_before = RAN.load(Ordering::Relaxed);
    let flooders = flood(handle, &stop);
    // The flood is reaching the loop: it has run some of it.
    while RAN.load(Ordering::Relaxed) < ran_before + 1_000 {
        evloop::yield_now().await;
    }
    let start = Instant::now();
    evloop::sleep(Duration::from_millis(10)).await;
    let latency = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = flooders
        .into_iter()
        .map(|f| f.join().expect("flooding thread"))
        .sum();
    // Nothing is lost either: the loop works off the backlog.
    while RAN.load(Ordering::Relaxed) < ran_before + sent {
        evloop::yield_now().await;
    }
    latency
}

#[test]
fn a_timer_fires_on_time_during_a_threadsafe_flood() {
    let phases = Scale::from_env().pick(8, 30);
    within("threadsafe flood", FLOOD_CAP * 5 * phases, move || {
        // A fresh loop per phase: a loop's queues keep their grown capacity, which makes
        // later floods on the same loop easier on it than the first.
        let latencies: Vec<Duration> = (0..phases)
            .map(|_| {
                evloop::run(async {
                    let handle = evloop::get_running_loop().expect("running").handle();
                    phase(&handle).await
                })
                .expect("run")
            })
            .collect();
        eprintln!("10 ms timer latencies during the floods: {latencies:.1?}");
        let worst = latencies.iter().max().copied().unwrap_or_default();
        assert!(
            worst <= LATE,
            "a 10 ms timer took {worst:?} to fire during a flood (limit {LATE:?}); \
             all phases: {latencies:.1?}"
        );
    });
}
