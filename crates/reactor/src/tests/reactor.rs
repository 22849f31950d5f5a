//! Reactor behaviour on real fds: wait, notify, deregister, drop, modes.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use super::{CountWaker, block_on};
use crate::Direction::{Read as R, Write as W};
use crate::{Reactor, Source};

pub(super) const LONG: Option<Duration> = Some(Duration::from_secs(10));
pub(super) const NOW: Option<Duration> = Some(Duration::ZERO);

pub(super) fn ready_tick(poll: Poll<io::Result<u64>>) -> u64 {
    match poll {
        Poll::Ready(Ok(tick)) => tick,
        other => panic!("expected ready, got {other:?}"),
    }
}

/// Consumes an edge source's initial "ready" for `Read`, leaving it waiting.
pub(super) fn make_unready(source: &Source, cx: &mut Context<'_>) {
    let tick = ready_tick(source.poll_ready(R, cx));
    source.clear_ready(R, tick);
    assert!(source.poll_ready(R, cx).is_pending());
}

fn assert_closed_error(poll: Poll<io::Result<()>>) {
    match poll {
        Poll::Ready(Err(err)) => {
            assert_eq!(err.kind(), io::ErrorKind::Other);
            assert_eq!(err.to_string(), "I/O source deregistered from the reactor");
        }
        other => panic!("expected the deregistered error, got {other:?}"),
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn pipe_becomes_readable_while_another_thread_waits() {
    let reactor = Reactor::new().unwrap();
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register(reader.as_fd()).unwrap();
    assert_eq!(source.raw_fd(), reader.as_raw_fd());
    let (count, waker) = CountWaker::new();
    make_unready(&source, &mut Context::from_waker(&waker));

    let waiter = {
        let (reactor, source) = (reactor.clone(), source.clone());
        thread::spawn(move || {
            let mut events = 0;
            let mut cx = Context::from_waker(Waker::noop());
            while source.poll_readable(&mut cx).is_pending() {
                events += reactor.wait(None).unwrap();
            }
            events
        })
    };
    (&writer).write_all(b"x").unwrap();
    assert!(waiter.join().unwrap() >= 1);
    assert_eq!(count.count(), 1, "the stored waker is woken by the event");
    let mut byte = [0];
    (&reader).read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
    reactor.deregister(&source).unwrap();
    assert_eq!(reactor.registered(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn notify_wakes_wait_forever_from_another_thread() {
    let reactor = Reactor::new().unwrap();
    let waiter = {
        let reactor = reactor.clone();
        thread::spawn(move || reactor.wait(None).unwrap())
    };
    reactor.notify().unwrap();
    assert_eq!(
        waiter.join().unwrap(),
        0,
        "notifications are not I/O events"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn notify_burst_from_four_threads_is_always_observed() {
    // The loop pattern: publish work, then notify; the waiter re-checks after
    // every wait. A lost notify would leave wait(None) blocked forever.
    let reactor = Reactor::new().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let notifiers: Vec<_> = (0..4)
        .map(|_| {
            let (reactor, done) = (reactor.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..250 {
                    done.fetch_add(1, Ordering::Relaxed);
                    reactor.notify().unwrap();
                }
            })
        })
        .collect();
    // Even if every notify lands before the first wait, that wait returns.
    loop {
        reactor.wait(None).unwrap();
        if done.load(Ordering::Relaxed) == 1000 {
            break;
        }
    }
    for t in notifiers {
        t.join().unwrap();
    }
    assert!(
        reactor.notify_syscalls() <= 1000,
        "coalescing never adds syscalls"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn notify_is_coalesced_until_wait_returns() {
    let reactor = Reactor::new().unwrap();
    reactor.notify().unwrap();
    reactor.notify().unwrap();
    reactor.notify().unwrap();
    assert_eq!(reactor.notify_syscalls(), 1);
    // The pending notification makes wait(None) return at once.
    assert_eq!(reactor.wait(None).unwrap(), 0);
    reactor.notify().unwrap();
    assert_eq!(reactor.notify_syscalls(), 2);
    assert_eq!(reactor.wait(LONG).unwrap(), 0);
    // Nothing pending now: a zero wait just looks.
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn deregister_wakes_waiter_with_error() {
    let reactor = Reactor::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let source = reactor.register(a.as_fd()).unwrap();
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    make_unready(&source, &mut cx);

    // A task blocked on readiness in another thread, woken by the deregister.
    let blocked = {
        let source = source.clone();
        thread::spawn(move || block_on(source.readable()))
    };
    let deregistering = {
        let (reactor, source) = (reactor.clone(), source.clone());
        thread::spawn(move || reactor.deregister(&source))
    };
    deregistering.join().unwrap().unwrap();
    assert_eq!(count.count(), 1);
    assert!(source.is_closed());
    assert_closed_error(source.poll_readable(&mut cx));
    assert_closed_error(source.poll_writable(&mut cx));
    let err = blocked.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    // Idempotent.
    reactor.deregister(&source).unwrap();
    assert_eq!(reactor.registered(), 0);
    // Another reactor's source is refused.
    let other = Reactor::new().unwrap();
    let foreign = other.register(a.as_fd()).unwrap();
    assert_eq!(
        reactor.deregister(&foreign).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn dropping_the_reactor_wakes_waiters_with_error() {
    let reactor = Reactor::new().unwrap();
    let (reader, _writer) = io::pipe().unwrap();
    let edge = reactor.register(reader.as_fd()).unwrap();
    let level = reactor.register_level(reader.as_fd()).unwrap();
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    make_unready(&edge, &mut cx);
    assert!(level.poll_readable(&mut cx).is_pending());
    drop(reactor);
    assert_eq!(count.count(), 2);
    assert!(edge.is_closed() && level.is_closed());
    assert_closed_error(edge.poll_readable(&mut cx));
    assert_closed_error(level.poll_readable(&mut cx));
}

#[test]
#[cfg_attr(miri, ignore)]
fn edge_reports_once_until_cleared() {
    let reactor = Reactor::new().unwrap();
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register(reader.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    make_unready(&source, &mut cx);

    (&writer).write_all(b"abc").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    let tick = ready_tick(source.poll_ready(R, &mut cx));
    // Data is still unread, but the edge was already reported.
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    assert_eq!(ready_tick(source.poll_ready(R, &mut cx)), tick);
    // Pretend the read hit WouldBlock: clear and wait again.
    source.clear_ready(R, tick);
    assert!(source.poll_ready(R, &mut cx).is_pending());
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    // New data is a new edge.
    (&writer).write_all(b"d").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert_eq!(ready_tick(source.poll_ready(R, &mut cx)), tick + 1);
    assert_eq!(reactor.modify_calls(), 0);
}

/// Registers a pipe level-triggered and checks that five waits in a row
/// report the unread data. Returns the number of `modify` calls made.
pub(super) fn level_reports_five_times(reactor: &Reactor) -> usize {
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register_level(reader.as_fd()).unwrap();
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(
        source.poll_ready(R, &mut cx).is_pending(),
        "level starts not ready"
    );
    assert_eq!(reactor.wait(NOW).unwrap(), 0);

    (&writer).write_all(b"abc").unwrap();
    let mut last = None;
    for round in 1..=5 {
        assert_eq!(reactor.wait(LONG).unwrap(), 1, "round {round}");
        assert_eq!(count.count(), round);
        let tick = ready_tick(source.poll_ready(R, &mut cx));
        assert!(last < Some(tick), "each report bumps the tick");
        last = Some(tick);
        // The callback ran without reading; clear and keep watching.
        source.clear_ready(R, tick);
        assert!(source.poll_ready(R, &mut cx).is_pending());
    }
    let modifies = reactor.modify_calls();

    // Once the data is read, nothing more is reported.
    let mut buf = [0; 3];
    (&reader).read_exact(&mut buf).unwrap();
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    reactor.deregister(&source).unwrap();
    modifies
}

#[test]
#[cfg_attr(miri, ignore)]
fn level_reports_on_every_wait_while_data_is_unread() {
    let reactor = Reactor::new().unwrap();
    // Arming read interest was the only modify.
    assert_eq!(level_reports_five_times(&reactor), 1);
}

#[test]
#[cfg_attr(miri, ignore)]
fn level_interest_follows_waiters_so_wait_does_not_spin() {
    let reactor = Reactor::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let source = reactor.register_level(a.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // Watched for reading only: the always-writable side is not reported.
    assert!(source.poll_ready(R, &mut cx).is_pending());
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    assert_eq!(reactor.wait(NOW).unwrap(), 0);

    (&b).write_all(b"x").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1); // wakes the waiter
    // Nobody re-registers: reported once more, then read interest is dropped.
    assert_eq!(reactor.wait(NOW).unwrap(), 1);
    assert_eq!(reactor.wait(NOW).unwrap(), 0);

    // Watching writability reports it.
    let tick = ready_tick(source.poll_ready(R, &mut cx));
    source.clear_ready(R, tick);
    assert!(source.poll_ready(W, &mut cx).is_pending());
    assert!(reactor.wait(LONG).unwrap() >= 1);
    assert!(source.poll_ready(W, &mut cx).is_ready());
}

#[test]
#[cfg_attr(miri, ignore)]
fn stale_tick_from_real_event_does_not_clear() {
    let reactor = Reactor::new().unwrap();
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register(reader.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // The operation is tried with tick 0 and "fails"...
    let tick = ready_tick(source.poll_ready(R, &mut cx));
    // ...while data arrives and the reactor records it.
    (&writer).write_all(b"x").unwrap();
    assert!(reactor.wait(LONG).unwrap() >= 1);
    source.clear_ready(R, tick);
    // The late clear is ignored: the flag is still set, with a newer tick.
    assert!(ready_tick(source.poll_ready(R, &mut cx)) > tick);
}

#[test]
#[cfg_attr(miri, ignore)]
fn registered_dup_keeps_working_after_caller_closes_fd() {
    let reactor = Reactor::new().unwrap();
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register(reader.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    make_unready(&source, &mut cx);
    drop(reader);
    // The reactor's duplicate keeps the pipe open and registered.
    (&writer).write_all(b"x").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert!(source.poll_readable(&mut cx).is_ready());
    reactor.deregister(&source).unwrap();
    // Deregistering closed the last read end.
    assert_eq!(
        (&writer).write_all(b"y").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn close_wakes_waiters_with_an_error_and_refuses_new_registrations() {
    use std::task::{Context, Wake, Waker};

    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let reactor = Reactor::new().expect("reactor");
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let a = crate::Async::new(a, &reactor).expect("async");
    let count = Arc::new(Count(Default::default()));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    // Nothing to read: the read waits (after clearing the initial readiness).
    let mut buf = [0u8; 8];
    assert!(
        a.poll_read_with(&mut cx, |mut s| std::io::Read::read(&mut s, &mut buf))
            .is_pending()
    );
    reactor.close();
    assert!(reactor.is_closed());
    assert_eq!(
        count.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the waiter was woken"
    );
    let again = a.poll_read_with(&mut cx, |mut s| std::io::Read::read(&mut s, &mut buf));
    assert!(
        matches!(again, std::task::Poll::Ready(Err(_))),
        "and now gets an error"
    );
    let (c, _d) = std::os::unix::net::UnixStream::pair().expect("pair");
    assert!(
        crate::Async::new(c, &reactor).is_err(),
        "no new registrations"
    );
    reactor.close(); // idempotent
    drop(a); // releasing after close is fine
}

#[test]
#[cfg_attr(miri, ignore)]
fn close_releases_the_poller_wakes_a_blocked_wait_and_later_waits_fail() {
    let reactor = Reactor::new().expect("reactor");
    let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let kept = crate::Async::new(a, &reactor).expect("async");
    let r = reactor.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = thread::spawn(move || {
        // Before the close: blocks until woken by it. After: fails at once.
        let _ = tx.send(r.wait(None).map_err(|e| e.to_string()));
    });
    reactor.close();
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a wait blocked across close() returned");
    waiter.join().expect("waiter");
    if let Err(e) = first {
        assert!(e.contains("closed"), "{e}");
    }
    assert!(
        !reactor.holds_os(),
        "close() dropped the poller and its fds"
    );
    assert!(reactor.wait(Some(Duration::ZERO)).is_err());
    assert!(
        reactor.notify().is_ok(),
        "notify on a closed reactor is a no-op"
    );
    let (c, _d) = std::os::unix::net::UnixStream::pair().expect("pair");
    assert!(reactor.register(c.as_fd()).is_err());
    drop(kept); // an Async outliving the poller releases without it
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_wait_with_a_huge_timeout_still_returns_on_notify() {
    let reactor = Reactor::new().expect("reactor");
    let r = reactor.clone();
    let notifier = thread::spawn(move || {
        // Before or during the wait: either way the wait returns (a notify is sticky).
        r.notify().expect("notify");
    });
    reactor
        .wait(Some(Duration::MAX))
        .expect("a huge timeout is accepted");
    notifier.join().expect("join");
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_registration_racing_close_is_refused_or_closed_by_it() {
    let (a, _b) = UnixStream::pair().expect("pair");
    let a = Arc::new(a);
    let mut live = 0;
    for _ in 0..300 {
        let reactor = Reactor::new().expect("reactor");
        let start = Arc::new(std::sync::Barrier::new(2));
        let registrar = {
            let (reactor, start, a) = (reactor.clone(), start.clone(), a.clone());
            thread::spawn(move || {
                let mut kept = Vec::new();
                start.wait();
                for _ in 0..2_000 {
                    match reactor.register(a.as_fd()) {
                        Ok(source) => kept.push(source),
                        Err(_) => break,
                    }
                }
                kept
            })
        };
        start.wait();
        reactor.close();
        let kept = registrar.join().expect("registrar");
        // Whatever registered before or during the close was closed by it.
        live += kept.iter().filter(|s| !s.is_closed()).count();
    }
    assert_eq!(live, 0, "registrations outlived close() unclosed");
}
