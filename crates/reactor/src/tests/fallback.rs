//! The fallbacks for pollers without edge- or level-triggered mode, forced on
//! epoll: oneshot registration re-armed for the awaited directions.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::task::{Context, Waker};

use super::async_io::{pipe_slow_reader, tcp_round_trip};
use super::reactor::{LONG, NOW, level_reports_five_times, make_unready, ready_tick};
use crate::Direction::{Read as R, Write as W};
use crate::{Async, Reactor};

fn no_edge() -> Reactor {
    Reactor::with_modes(false, true).unwrap()
}

#[test]
#[cfg_attr(miri, ignore)]
fn oneshot_fallback_rearms_after_clear() {
    let reactor = no_edge();
    let (reader, writer) = io::pipe().unwrap();
    let source = reactor.register(reader.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // Starts ready like an edge source; arming happens only once we wait.
    assert_eq!(reactor.modify_calls(), 0);
    make_unready(&source, &mut cx);
    assert_eq!(reactor.modify_calls(), 1);
    assert_eq!(reactor.wait(NOW).unwrap(), 0);

    (&writer).write_all(b"x").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    let tick = ready_tick(source.poll_ready(R, &mut cx));
    // Delivered once: the fd is now disarmed.
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    // A clear plus a pending poll re-arms; the unread byte is reported again.
    source.clear_ready(R, tick);
    assert!(source.poll_ready(R, &mut cx).is_pending());
    assert_eq!(reactor.modify_calls(), 2);
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert!(ready_tick(source.poll_ready(R, &mut cx)) > tick);
}

#[test]
#[cfg_attr(miri, ignore)]
fn oneshot_fallback_keeps_the_other_direction_armed() {
    let reactor = no_edge();
    let (a, b) = UnixStream::pair().unwrap();
    let source = reactor.register(a.as_fd()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    for dir in [R, W] {
        let tick = ready_tick(source.poll_ready(dir, &mut cx));
        source.clear_ready(dir, tick);
        assert!(source.poll_ready(dir, &mut cx).is_pending());
    }
    // Writable at once; the read waiter is re-armed after that event.
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert!(source.poll_ready(W, &mut cx).is_ready());
    assert!(source.poll_ready(R, &mut cx).is_pending());
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    (&b).write_all(b"x").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert!(source.poll_ready(R, &mut cx).is_ready());
}

#[test]
#[cfg_attr(miri, ignore)]
fn level_fallback_still_reports_every_wait() {
    let reactor = Reactor::with_modes(true, false).unwrap();
    // One re-arm per round instead of a single arm.
    assert!(level_reports_five_times(&reactor) >= 5);
}

#[test]
#[cfg_attr(miri, ignore)]
fn async_over_oneshot_fallback() {
    let reactor = no_edge();
    tcp_round_trip(&reactor);
    pipe_slow_reader(&reactor);
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Async::new(a, &reactor).unwrap();
    assert_eq!(reactor.registered(), 1);
    drop(a);
    assert_eq!(reactor.registered(), 0);
}
