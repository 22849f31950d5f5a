//! `LoopHandle::spawn` and `call_soon_threadsafe` from another thread while the loop
//! finishes and closes (quick: 10^3 rounds, full: 10^4). Every task spawned from outside
//! resolves (its output, or cancelled once the loop is gone), and every closure is either
//! run or dropped, never kept. A hang fails the test (with the round it hung in) instead
//! of blocking it (after [`STALL`] without progress).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use evloop::LoopHandle;
use evloop_stress::{Scale, with_watchdog};

/// A round that makes no progress for this long is hung (a round takes well under 1 ms).
const STALL: Duration = Duration::from_secs(5);

/// Threads spawning into each round's loop.
const SPAWNERS: usize = 2;
/// The main future ends after `round % PER_ROUND` yields.
const PER_ROUND: u64 = 16;

/// Counts itself dropped (whether or not the closure that owns it ran).
struct Guard(Arc<AtomicU64>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Spawns tasks and sends closures until the loop is closed (and a few more after);
/// reports how many closures it sent once its last call returned, waits for the check,
/// then joins every task. Returns (tasks spawned, tasks resolved).
fn spawner(
    handle: LoopHandle,
    dropped: Arc<AtomicU64>,
    sent_tx: mpsc::Sender<u64>,
    checked_rx: mpsc::Receiver<()>,
) -> (u64, u64) {
    let mut tasks = Vec::new();
    let mut sent = 0;
    let mut after_close = 0;
    while after_close < 4 && sent < 10_000 {
        if handle.is_closed() {
            after_close += 1;
        }
        let n = sent;
        tasks.push(handle.spawn(async move { n }));
        let guard = Guard(dropped.clone());
        let _ = handle.call_soon_threadsafe(move || drop(guard));
        sent += 1;
    }
    // The loop is closed and this thread's calls have returned: every closure must be run
    // or dropped by now, though this handle still keeps the loop's memory alive.
    let _ = sent_tx.send(sent);
    let _ = checked_rx.recv();
    drop(handle);
    let mut resolved = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        match task.join_blocking() {
            Ok(out) => assert_eq!(out, n as u64),
            Err(err) => assert!(err.is_cancelled(), "task {n}: {err}"),
        }
        resolved += 1;
    }
    (sent, resolved)
}

/// One round: a loop runs a short main future while [`SPAWNERS`] threads spawn into it.
fn round(i: u64, dropped: &Arc<AtomicU64>) -> Round {
    let dropped_before = dropped.load(Ordering::SeqCst);
    let (handle_tx, handle_rx) = mpsc::channel::<LoopHandle>();
    let (sent_tx, sent_rx) = mpsc::channel::<u64>();
    let mut checks = Vec::new();
    let mut threads = Vec::new();
    let handle_rx = Arc::new(std::sync::Mutex::new(handle_rx));
    for _ in 0..SPAWNERS {
        let (checked_tx, checked_rx) = mpsc::channel::<()>();
        checks.push(checked_tx);
        let (rx, dropped, sent_tx) = (handle_rx.clone(), dropped.clone(), sent_tx.clone());
        threads.push(thread::spawn(move || {
            let handle = rx
                .lock()
                .expect("handle channel")
                .recv()
                .expect("the handle");
            spawner(handle, dropped, sent_tx, checked_rx)
        }));
    }
    drop(sent_tx);
    evloop::run(async move {
        let handle = evloop::get_running_loop().expect("running").handle();
        for _ in 0..SPAWNERS {
            handle_tx.send(handle.clone()).expect("spawner waiting");
        }
        // End at a different point of the spawners' bursts each round.
        for _ in 0..(i % PER_ROUND) {
            evloop::yield_now().await;
        }
    })
    .expect("run");
    // The loop is closed (run returned); wait for the spawners' last calls to return.
    let sent: u64 = sent_rx.iter().take(SPAWNERS).sum();
    let kept = sent - (dropped.load(Ordering::SeqCst) - dropped_before);
    for c in checks {
        let _ = c.send(());
    }
    let (spawned, resolved) = threads
        .into_iter()
        .map(|t| t.join().expect("spawner thread"))
        .fold((0, 0), |(a, b), (s, r)| (a + s, b + r));
    Round {
        spawned,
        resolved,
        kept,
    }
}

/// What one round saw.
struct Round {
    spawned: u64,
    resolved: u64,
    /// Closures neither run nor dropped once the loop was closed.
    kept: u64,
}

#[test]
fn spawns_and_callbacks_racing_the_loops_end_all_resolve() {
    // The race window is narrow: quick mode runs more rounds than the 10^3 so
    // that it catches a lost task or closure reliably (about 0.3 ms a round).
    let rounds = Scale::from_env().pick(5_000, 10_000);
    with_watchdog("spawn-vs-close rounds", STALL, move |progress| {
        let dropped = Arc::new(AtomicU64::new(0));
        let (mut kept, mut rounds_keeping) = (0, 0);
        for i in 0..rounds {
            let r = round(i, &dropped);
            assert_eq!(r.resolved, r.spawned, "round {i}: tasks unresolved");
            kept += r.kept;
            rounds_keeping += u64::from(r.kept > 0);
            progress.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(
            kept, 0,
            "{kept} closures (in {rounds_keeping} of {rounds} rounds) were neither run nor \
             dropped once the loop was closed"
        );
    });
}
