//! `Reactor::watch`: a caller's fd number, watched without owning it (Linux).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Waker};

use super::CountWaker;
use super::reactor::{LONG, NOW, ready_tick};
use crate::Direction::Read as R;
use crate::Reactor;

#[test]
#[cfg_attr(miri, ignore)]
fn watch_is_level_style_and_keeps_no_copy_of_the_file() {
    let reactor = Reactor::new().unwrap();
    let (reader, mut writer) = io::pipe().unwrap();
    let source = reactor.watch(reader.as_raw_fd()).unwrap();
    assert_eq!(source.raw_fd(), reader.as_raw_fd());
    let (count, waker) = CountWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(
        source.poll_ready(R, &mut cx).is_pending(),
        "starts not ready"
    );
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    writer.write_all(b"abc").unwrap();
    for round in 1..=3 {
        assert_eq!(reactor.wait(LONG).unwrap(), 1, "round {round}");
        assert_eq!(count.count(), round);
        let tick = ready_tick(source.poll_ready(R, &mut cx));
        source.check_file(Some(R)).unwrap();
        source.clear_ready(R, tick);
        assert!(source.poll_ready(R, &mut cx).is_pending());
    }
    // Read: no more reports, although armed.
    (&reader).read_exact(&mut [0; 3]).unwrap();
    assert_eq!(reactor.wait(NOW).unwrap(), 0);
    // Closing the number closes the file: the reactor holds no duplicate.
    drop(reader);
    assert_eq!(
        writer.write_all(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    assert!(source.check_file(None).is_err(), "closed number: stale");
    assert!(source.is_closed());
    reactor.deregister(&source).unwrap();
    assert_eq!(reactor.registered(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_reused_number_makes_the_watch_stale_and_can_be_watched_afresh() {
    let reactor = Reactor::new().unwrap();
    let (r1, w1) = io::pipe().unwrap();
    let _kept = r1.try_clone().unwrap();
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let old = reactor.watch(fd).unwrap();
    let (woken, waker) = CountWaker::new();
    assert!(
        old.poll_ready(R, &mut Context::from_waker(&waker))
            .is_pending()
    );
    let err = reactor.watch(fd).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");

    let (r2, w2) = io::pipe().unwrap();
    rustix::io::dup2(&r2, &mut number).unwrap();
    drop(r2);
    // A fresh watch of the new file at the same number: the old one is found stale.
    let new = reactor.watch(fd).unwrap();
    assert!(old.is_closed());
    assert_eq!(woken.count(), 1, "the stale watch's waiter is woken");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(old.poll_ready(R, &mut cx).is_ready(), "stale: an error");
    assert!(new.poll_ready(R, &mut cx).is_pending());

    // The old file (still open elsewhere, still armed) reports once, to the closed old
    // source (nobody), and its oneshot entry then stays disarmed.
    (&w1).write_all(b"old").unwrap();
    let reports: Vec<usize> = (0..3).map(|_| reactor.wait(NOW).unwrap()).collect();
    assert_eq!(reports, [1, 0, 0]);
    assert!(new.poll_ready(R, &mut cx).is_pending());
    // The new file reports to the new watch.
    (&w2).write_all(b"new").unwrap();
    assert_eq!(reactor.wait(LONG).unwrap(), 1);
    assert!(new.poll_ready(R, &mut cx).is_ready());
    new.check_file(None).unwrap();
    reactor.deregister(&old).unwrap();
    reactor.deregister(&new).unwrap();
    assert_eq!(reactor.registered(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn watching_a_bad_number_is_an_error() {
    let reactor = Reactor::new().unwrap();
    assert!(reactor.watch(-1).is_err());
    let closed = io::pipe().unwrap().0.as_raw_fd();
    let _ = closed; // may have been reused by a parallel test: only check it does not panic
    let _ = reactor.watch(closed);
    assert_eq!(
        reactor.watch(1 << 30).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    // A regular file cannot be watched by epoll.
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    assert!(reactor.watch(file.as_raw_fd()).is_err());
}
