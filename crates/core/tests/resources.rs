//! Loops give their OS resources back: closing (or dropping) a loop, and removing fd watchers,
//! closes every fd the loop and its reactor opened. Alone in its binary because it counts the
//! process's open fds.
#![allow(clippy::unwrap_used)]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evloop_core::EventLoop;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn busy_loop(close: bool, socket: &UnixStream) {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let sleeper = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::from_secs(3600)).await;
    });
    let _pending = lp.create_task(std::future::pending::<()>());
    lp.call_later(Duration::from_secs(3600), || {});
    lp.call_soon(|| {});
    let h = lp.handle();
    let spawned = h.spawn(async { 1 });
    lp.add_reader(socket.as_raw_fd(), || {}).unwrap();
    lp.add_writer(socket.as_raw_fd(), || {}).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert!(spawned.is_done());
    if close {
        lp.close().unwrap();
    } else {
        // A sleeping task holds its loop (documented): cancel it so the last drop closes.
        sleeper.cancel();
        lp.stop();
        lp.run_forever().unwrap();
    }
    drop((lp, sleeper, h));
}

#[test]
fn closed_and_dropped_loops_release_their_fds() {
    let (a, _b) = UnixStream::pair().unwrap();
    // Warm up (lazy statics, the thread-local slot, tracing's callsites).
    busy_loop(true, &a);
    let before = open_fds();
    for i in 0..200 {
        busy_loop(i % 2 == 0, &a);
    }
    assert_eq!(open_fds(), before, "fds leaked by closed / dropped loops");

    // Watchers removed from a loop that stays open release their fds too.
    let lp = EventLoop::new().unwrap();
    let base = open_fds();
    for _ in 0..200 {
        lp.add_reader(a.as_raw_fd(), || {}).unwrap();
        lp.add_writer(a.as_raw_fd(), || {}).unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert!(lp.remove_reader(a.as_raw_fd()));
        assert!(lp.remove_writer(a.as_raw_fd()));
    }
    assert_eq!(open_fds(), base, "fds leaked by add_reader/remove_reader");
}
