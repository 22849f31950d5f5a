//! Source logic without a poller: flags, ticks, wakers, closing. Runs under Miri.

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::CountWaker;
use crate::Direction::{Read, Write};
use crate::source::Source;

fn ready_tick(poll: Poll<io::Result<u64>>) -> u64 {
    match poll {
        Poll::Ready(Ok(tick)) => tick,
        other => panic!("expected ready, got {other:?}"),
    }
}

#[test]
fn fresh_edge_source_is_ready_both_ways() {
    let source = Source::detached(true);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(ready_tick(source.poll_ready(Read, &mut cx)), 0);
    assert_eq!(ready_tick(source.poll_ready(Write, &mut cx)), 0);
    assert!(!source.is_closed());
}

#[test]
fn clear_then_wait_then_event_wakes() {
    let source = Source::detached(true);
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);

    let tick = ready_tick(source.poll_ready(Read, &mut cx));
    source.clear_ready(Read, tick);
    assert!(source.poll_ready(Read, &mut cx).is_pending());
    // The write direction is independent.
    assert_eq!(ready_tick(source.poll_ready(Write, &mut cx)), 0);

    assert_eq!(source.fire(true, false), 1);
    assert_eq!(count.count(), 1);
    assert_eq!(ready_tick(source.poll_ready(Read, &mut cx)), tick + 1);
    assert_eq!(source.waiter_count(Read), 0);
}

#[test]
fn same_waker_is_stored_once() {
    // `Waker::will_wake` is best-effort: Miri gives each use of a vtable its
    // own address, so a clone never "will wake" its original there and the
    // dedup cannot be observed.
    let dedups = !cfg!(miri);
    let source = Source::detached(false);
    let (count, waker) = CountWaker::new();
    let (_, other) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..5 {
        assert!(source.poll_readable(&mut cx).is_pending());
    }
    let stored = source.waiter_count(Read);
    assert_eq!(stored, if dedups { 1 } else { 5 });
    assert!(
        source
            .poll_readable(&mut Context::from_waker(&other))
            .is_pending()
    );
    assert_eq!(source.waiter_count(Read), stored + 1);
    assert!(source.poll_writable(&mut cx).is_pending());
    assert_eq!(source.waiter_count(Write), 1);

    // A write event wakes only the write waiter.
    assert_eq!(source.fire(false, true), 1);
    assert_eq!(count.count(), 1);
    assert_eq!(source.waiter_count(Read), stored + 1);
    // Both ways at once wakes the rest.
    assert_eq!(source.fire(true, true), stored + 1);
    assert_eq!(source.waiter_count(Read), 0);
}

#[test]
fn stale_tick_does_not_clear() {
    let source = Source::detached(true);
    let mut cx = Context::from_waker(Waker::noop());
    let tick = ready_tick(source.poll_ready(Read, &mut cx));
    // An event lands between the failed operation and its clear...
    source.fire(true, false);
    source.clear_ready(Read, tick);
    // ...so the flag stays set, with the new tick.
    assert_eq!(ready_tick(source.poll_ready(Read, &mut cx)), tick + 1);
    source.clear_ready(Read, tick + 1);
    assert!(source.poll_ready(Read, &mut cx).is_pending());
}

#[test]
fn level_style_source_starts_not_ready() {
    let source = Source::detached(false);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(source.poll_ready(Read, &mut cx).is_pending());
    assert!(source.poll_ready(Write, &mut cx).is_pending());
}

#[test]
fn close_wakes_everyone_and_errors() {
    let source = Source::detached(false);
    let (count, waker) = CountWaker::new();
    let (count2, waker2) = CountWaker::new();
    assert!(
        source
            .poll_readable(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert!(
        source
            .poll_writable(&mut Context::from_waker(&waker2))
            .is_pending()
    );
    source.close_detached();
    assert!(source.is_closed());
    assert_eq!((count.count(), count2.count()), (1, 1));
    match source.poll_readable(&mut Context::from_waker(&waker)) {
        Poll::Ready(Err(err)) => {
            assert_eq!(err.kind(), io::ErrorKind::Other);
            assert_eq!(err.to_string(), "I/O source deregistered from the reactor");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Events after closing change nothing and wake nobody.
    assert_eq!(source.fire(true, true), 0);
    assert!(matches!(
        source.poll_ready(Write, &mut Context::from_waker(&waker)),
        Poll::Ready(Err(_))
    ));
}

#[test]
fn event_from_another_thread_is_never_lost() {
    // Each round the waiter clears and re-polls while another thread delivers
    // the next event: whichever order they race in, the waiter either sees the
    // flag set or gets woken.
    let source = Arc::new(Source::detached(true));
    let rounds = if cfg!(miri) { 20 } else { 2000 };
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let events = {
        let source = source.clone();
        std::thread::spawn(move || {
            while rx.recv().is_ok() {
                source.fire(true, false);
            }
        })
    };
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    for round in 0..rounds {
        let tick = ready_tick(source.poll_ready(Read, &mut cx));
        assert_eq!(tick, round);
        source.clear_ready(Read, tick);
        tx.send(()).unwrap();
        // Either the flag is set, or our waker is stored and gets woken. (A
        // wake can also come from the previous event's dispatch, which may
        // still be running: then just poll again.)
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let woken_before = count.count();
            match source.poll_ready(Read, &mut cx) {
                Poll::Ready(result) => {
                    assert_eq!(result.unwrap(), round + 1);
                    break;
                }
                Poll::Pending => {
                    while count.count() == woken_before {
                        assert!(Instant::now() < deadline, "wakeup lost in round {round}");
                        std::thread::yield_now();
                    }
                }
            }
        }
    }
    drop(tx);
    events.join().unwrap();
}
