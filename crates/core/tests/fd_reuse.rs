//! `add_reader` / `add_writer` when the watched fd number is closed and reused (issue 9, §2):
//! a registration watches the file the number named when it was added, goes inert when that
//! file is closed, never runs for another file, and never touches the file now at the number.
//! Plus the typed form, `add_reader_fd`, which owns the fd.
//!
//! Numbers are reused with `dup2` onto the exact number (atomically: close + reuse), so a test
//! running in parallel cannot take the number in between.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{DropCounter, Watchdog, run_one};
use evloop_core::EventLoop;

fn counter() -> (Rc<Cell<u32>>, impl FnMut() + 'static) {
    let c = Rc::new(Cell::new(0));
    let c2 = c.clone();
    (c, move || c2.set(c2.get() + 1))
}

/// Makes the number of `target` name the file of `src` (closing what it named before).
fn reuse_number(target: &mut OwnedFd, src: &impl std::os::fd::AsFd) {
    rustix::io::dup2(src, target).unwrap();
}

/// How many of `waits` reactor waits of 20 ms each returned early. Nothing is ready in these
/// tests when this is called, so each wait should sleep its full timeout (load only makes it
/// longer); a registration that keeps the poller reporting (a spinning loop) returns at once.
/// One early return is allowed for a notification left over from the loop, one for a signal.
fn early_waits(lp: &EventLoop, waits: usize) -> usize {
    let timeout = Duration::from_millis(20);
    (0..waits)
        .filter(|_| {
            let start = Instant::now();
            lp.reactor().wait(Some(timeout)).unwrap();
            start.elapsed() < timeout
        })
        .count()
}

/// (1) The watched pipe is closed (both ends: the reader by the user, the writer hung up) and
/// its number reused; the old reader never runs and nothing keeps the poller busy.
#[test]
fn a_closed_and_reused_number_does_not_run_the_old_reader() {
    let _wd = Watchdog::new("closed_and_reused", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r1, w1) = std::io::pipe().unwrap();
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let (old, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    run_one(&lp);
    assert_eq!(old.get(), 0);

    // The user closes the watched file; a new file gets its number.
    let (r2, mut w2) = std::io::pipe().unwrap();
    reuse_number(&mut number, &r2);
    drop(r2);
    // The old file's writer writes and hangs up.
    let mut w1 = w1;
    let wrote_old = w1.write_all(b"to the old file");
    drop(w1);
    // Data for the new file at the same number.
    w2.write_all(b"new").unwrap();
    for _ in 0..20 {
        run_one(&lp);
    }
    assert_eq!(old.get(), 0, "the old reader ran for another file");
    // The old file was really closed: its writer saw a broken pipe (the loop kept no copy).
    assert_eq!(
        wrote_old.unwrap_err().kind(),
        ErrorKind::BrokenPipe,
        "the loop kept the old file open"
    );
    assert!(early_waits(&lp, 5) <= 2, "the poller keeps reporting");
    // The stale registration is still there to be removed (asyncio's `remove_reader` is True).
    assert!(lp.remove_reader(fd));
    assert!(!lp.remove_reader(fd));
    drop(number);
}

/// (2) The old file stays open through a duplicate kept elsewhere and gets data: the reader
/// registered before the number was reused does not run for it, and it does not make the loop
/// spin.
#[test]
fn data_for_the_old_file_does_not_run_the_old_reader() {
    let _wd = Watchdog::new("old_file_data_old_reader", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r1, mut w1) = std::io::pipe().unwrap();
    let _kept = r1.try_clone().unwrap(); // the old file stays open through this
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let (old, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    run_one(&lp);

    let (r2, _w2) = std::io::pipe().unwrap();
    reuse_number(&mut number, &r2);
    drop(r2);
    // Data for the old file, nobody reads it: it stays readable for good.
    w1.write_all(b"for the old file").unwrap();
    for _ in 0..20 {
        run_one(&lp);
    }
    assert_eq!(old.get(), 0, "the old reader ran for the old file");
    assert!(
        early_waits(&lp, 5) <= 2,
        "the old file's readiness keeps the poller busy"
    );
    assert!(lp.remove_reader(fd));
}

/// (2b) The case: a reader registered for the reused number (the old one never
/// removed) does not run for data written to the old file, which stays open elsewhere.
#[test]
fn data_for_the_old_file_does_not_run_a_reader_of_the_reused_number() {
    let _wd = Watchdog::new("old_file_data_new_reader", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r1, mut w1) = std::io::pipe().unwrap();
    let _kept = r1.try_clone().unwrap();
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let (old, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    run_one(&lp);

    let (r2, _w2) = std::io::pipe().unwrap();
    reuse_number(&mut number, &r2);
    drop(r2);
    let (new, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    w1.write_all(b"for the old file").unwrap();
    for _ in 0..20 {
        run_one(&lp);
    }
    assert_eq!(
        new.get(),
        0,
        "a reader of the reused number ran for the old file"
    );
    assert_eq!(old.get(), 0);
    assert!(
        early_waits(&lp, 5) <= 2,
        "the old file's readiness keeps the poller busy"
    );
    assert!(lp.remove_reader(fd));
    assert!(!lp.remove_reader(fd));
}

/// (3) `add_reader` on a reused number is a fresh watch of the new file: level-triggered as
/// usual, and `remove_reader` ends it.
#[test]
fn add_reader_on_a_reused_number_watches_the_new_file() {
    let _wd = Watchdog::new("reused_number_new_file", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r1, _w1) = std::io::pipe().unwrap();
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let drops = DropCounter::default();
    let guard = drops.guard();
    lp.add_reader(fd, move || {
        let _ = &guard;
    })
    .unwrap();
    let (wrote, wcb) = counter();
    lp.add_writer(fd, wcb).unwrap(); // a read end is never writable: never runs
    run_one(&lp);

    let (r2, mut w2) = std::io::pipe().unwrap();
    reuse_number(&mut number, &r2);
    drop(r2);
    let (new, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    assert_eq!(drops.get(), 1, "the stale reader is dropped when replaced");
    run_one(&lp);
    assert_eq!(new.get(), 0, "nothing to read yet");
    w2.write_all(b"xy").unwrap();
    for i in 1..=3 {
        run_one(&lp);
        assert_eq!(new.get(), i, "once per iteration while data stays unread");
    }
    let mut buf = [0u8; 2];
    std::fs::File::from(number.try_clone().unwrap())
        .read_exact(&mut buf)
        .unwrap();
    assert_eq!(&buf, b"xy");
    run_one(&lp);
    run_one(&lp);
    assert_eq!(new.get(), 3, "drained: it stops");
    assert_eq!(wrote.get(), 0);
    // The fresh watch replaced the stale one whole: the old file's writer went with it.
    assert!(!lp.remove_writer(fd));
    assert!(lp.remove_reader(fd));
    w2.write_all(b"z").unwrap();
    run_one(&lp);
    assert_eq!(new.get(), 3, "removed");
}

/// `remove_reader` on a number that now names a file registered by somebody else (here an
/// `Async` of the same reactor) leaves that registration alone.
#[test]
fn remove_reader_on_a_reused_number_does_not_touch_the_new_file() {
    use std::os::unix::net::UnixStream;
    use std::task::{Context, Poll, Waker};
    let _wd = Watchdog::new("remove_reader_new_file", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r1, _w1) = std::io::pipe().unwrap();
    let mut number = OwnedFd::from(r1);
    let fd = number.as_raw_fd();
    let (old, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    run_one(&lp);

    // The number now names a socket that an `Async` registers with the same reactor.
    let (a, mut b) = UnixStream::pair().unwrap();
    reuse_number(&mut number, &a);
    drop(a);
    let sock = evloop_reactor::Async::new(UnixStream::from(number), lp.reactor()).unwrap();
    assert_eq!(sock.get_ref().as_raw_fd(), fd);
    assert!(lp.remove_reader(fd));
    assert!(!lp.remove_reader(fd));

    // The socket's registration still delivers readiness.
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 8];
    let mut read = Box::pin(sock.read_with(|s| (&*s).read(&mut buf)));
    assert!(read.as_mut().poll(&mut cx).is_pending());
    b.write_all(b"hi").unwrap();
    let mut got = None;
    for _ in 0..100 {
        lp.reactor().wait(Some(Duration::from_secs(1))).unwrap();
        if let Poll::Ready(n) = read.as_mut().poll(&mut cx) {
            got = Some(n.unwrap());
            break;
        }
    }
    assert_eq!(got, Some(2), "the Async lost its registration");
    assert_eq!(old.get(), 0);
}

/// A watched fd closed (not reused) while registered: the watch goes inert, closing really
/// closes the file, and `remove_reader` still reports the registration.
#[test]
fn closing_a_watched_fd_closes_the_file_and_the_watch_goes_inert() {
    let lp = EventLoop::new().unwrap();
    let (r, mut w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let (count, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    run_one(&lp);
    drop(r);
    let err = w.write_all(b"x").unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::BrokenPipe,
        "the loop kept the file open"
    );
    run_one(&lp);
    assert_eq!(count.get(), 0);
    assert!(lp.remove_reader(fd));
    assert!(!lp.remove_reader(fd));
}

/// (4) The typed form owns the fd: the callback gets it by reference, and dropping the
/// registration removes the reader and closes the fd.
#[test]
fn typed_add_reader_fd_owns_the_fd_and_removes_on_drop() {
    let _wd = Watchdog::new("typed_add_reader_fd", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (r, mut w) = std::io::pipe().unwrap();
    let fd = r.as_raw_fd();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = got.clone();
    let reg = lp
        .add_reader_fd(r, move |mut r: &std::io::PipeReader| {
            let mut buf = [0u8; 16];
            let n = r.read(&mut buf).unwrap();
            g.borrow_mut().extend_from_slice(&buf[..n]);
        })
        .unwrap();
    assert_eq!(reg.fd(), fd);
    assert!(reg.is_registered());
    w.write_all(b"typed").unwrap();
    run_one(&lp);
    assert_eq!(&*got.borrow(), b"typed");

    drop(reg);
    assert!(
        !lp.remove_reader(fd),
        "dropping the registration removed the reader"
    );
    let err = w.write_all(b"x").unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::BrokenPipe,
        "the owner (and its fd) was dropped"
    );

    // A registration that was replaced through the number does not remove its successor.
    let (r, mut w) = std::io::pipe().unwrap();
    let (typed, mut tcb) = counter();
    let reg = lp
        .add_writer_fd(w.try_clone().unwrap(), move |_| tcb())
        .unwrap();
    run_one(&lp);
    assert_eq!(typed.get(), 1, "a pipe's write end is writable");
    let wfd = reg.fd();
    let (plain, cb) = counter();
    lp.add_writer(wfd, cb).unwrap(); // replaces it, dropping the owner: `wfd` closes...
    assert!(!reg.is_registered());
    drop(reg);
    // ...and the plain writer, registered on a closed number, is inert but still there.
    run_one(&lp);
    assert_eq!(plain.get(), 0);
    assert!(lp.remove_writer(wfd));
    w.write_all(b"still open").unwrap();
    drop(r);
}
