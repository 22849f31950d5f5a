//! `add_reader` / `add_writer` with real pipes and socket pairs: readiness from another thread,
//! level-triggered re-runs, removal, replacement, panics, and closed loops.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{DropCounter, Watchdog, record_exceptions, run_one};
use evloop_core::{Error, EventLoop};

fn counter() -> (Rc<Cell<u32>>, impl FnMut() + 'static) {
    let c = Rc::new(Cell::new(0));
    let c2 = c.clone();
    (c, move || c2.set(c2.get() + 1))
}

#[test]
fn reader_runs_when_data_arrives_from_another_thread() {
    let _wd = Watchdog::new("reader_runs_when_data_arrives", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (g, lp2) = (got.clone(), lp.clone());
    let mut a_reader = a.try_clone().unwrap();
    lp.add_reader(fd, move || {
        let mut buf = [0u8; 64];
        let n = a_reader.read(&mut buf).unwrap();
        g.borrow_mut().extend_from_slice(&buf[..n]);
        if g.borrow().ends_with(b"!") {
            lp2.stop();
        }
    })
    .unwrap();
    // The writer waits until the loop runs (and is about to park with nothing else to do).
    let (tx, rx) = mpsc::channel::<()>();
    lp.call_soon(move || tx.send(()).unwrap());
    let writer = thread::spawn(move || {
        rx.recv().unwrap();
        (&b).write_all(b"hello!").unwrap();
        b
    });
    lp.run_forever().unwrap();
    assert_eq!(&*got.borrow(), b"hello!");
    assert!(lp.remove_reader(fd));
    drop(writer.join().unwrap());
}

#[test]
fn reader_on_a_pipe_with_data_written_before() {
    let _wd = Watchdog::new("reader_on_a_pipe", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (mut r, mut w) = std::io::pipe().unwrap();
    w.write_all(b"abc").unwrap();
    let fd = r.as_raw_fd();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (g, lp2) = (got.clone(), lp.clone());
    lp.add_reader(fd, move || {
        let mut buf = [0u8; 16];
        let n = r.read(&mut buf).unwrap();
        g.borrow_mut().extend_from_slice(&buf[..n]);
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(&*got.borrow(), b"abc");
    assert!(lp.remove_reader(fd));
    drop(w);
}

#[test]
fn reader_is_level_triggered_runs_every_iteration_while_data_is_unread() {
    let lp = EventLoop::new().unwrap();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let (count, cb) = counter();
    lp.add_reader(fd, cb).unwrap();
    // Nothing to read: nothing runs.
    run_one(&lp);
    run_one(&lp);
    assert_eq!(count.get(), 0);
    b.write_all(b"xy").unwrap();
    for i in 1..=4 {
        run_one(&lp);
        assert_eq!(count.get(), i, "once per iteration while data stays unread");
    }
    let mut buf = [0u8; 2];
    a.read_exact(&mut buf).unwrap();
    // Drained: it does not run any more.
    run_one(&lp);
    run_one(&lp);
    let settled = count.get();
    assert_eq!(settled, 4);
    // New data: it runs again.
    b.write_all(b"z").unwrap();
    run_one(&lp);
    assert_eq!(count.get(), settled + 1);
    run_one(&lp);
    assert_eq!(count.get(), settled + 2);
    assert!(lp.remove_reader(fd));
}

#[test]
fn remove_reader_stops_the_callback_and_says_whether_it_was_watched() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    assert!(!lp.remove_reader(fd), "never watched");
    let drops = DropCounter::default();
    let (count, mut cb) = counter();
    let g = drops.guard();
    lp.add_reader(fd, move || {
        let _ = &g;
        cb();
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    run_one(&lp);
    assert_eq!(count.get(), 1);
    assert!(lp.remove_reader(fd));
    assert_eq!(drops.get(), 1, "the callback is dropped on removal");
    run_one(&lp);
    run_one(&lp);
    assert_eq!(count.get(), 1);
    assert!(!lp.remove_reader(fd), "second removal");
    assert!(!lp.remove_writer(fd));
}

#[test]
fn a_reader_can_remove_itself() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let count = Rc::new(Cell::new(0));
    let removed = Rc::new(Cell::new(None));
    let (c, r, lp2) = (count.clone(), removed.clone(), lp.clone());
    lp.add_reader(fd, move || {
        c.set(c.get() + 1);
        r.set(Some(lp2.remove_reader(fd)));
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    run_one(&lp);
    run_one(&lp);
    run_one(&lp);
    assert_eq!(count.get(), 1);
    assert_eq!(removed.get(), Some(true));
    assert!(!lp.remove_reader(fd));
}

#[test]
fn add_reader_replaces_the_previous_reader() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let drops = DropCounter::default();
    let (first, mut cb1) = counter();
    let g = drops.guard();
    lp.add_reader(fd, move || {
        let _ = &g;
        cb1();
    })
    .unwrap();
    let (second, cb2) = counter();
    lp.add_reader(fd, cb2).unwrap();
    assert_eq!(drops.get(), 1, "the replaced callback is dropped");
    b.write_all(b"x").unwrap();
    run_one(&lp);
    run_one(&lp);
    assert_eq!(first.get(), 0);
    assert_eq!(second.get(), 2);
    assert!(lp.remove_reader(fd));
    assert!(!lp.remove_reader(fd));
}

#[test]
fn writer_fires_on_a_writable_socket() {
    let _wd = Watchdog::new("writer_fires_on_a_writable_socket", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let (count, mut cb) = counter();
    let lp2 = lp.clone();
    let mut a_w = a.try_clone().unwrap();
    lp.add_writer(fd, move || {
        cb();
        a_w.write_all(b"from writer").unwrap();
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(count.get(), 1);
    assert!(lp.remove_writer(fd));
    assert!(!lp.remove_writer(fd));
    let mut buf = [0u8; 11];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from writer");
    // Removed: no more calls.
    run_one(&lp);
    assert_eq!(count.get(), 1);
}

#[test]
fn writer_is_level_triggered_too() {
    let lp = EventLoop::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let (count, cb) = counter();
    lp.add_writer(fd, cb).unwrap();
    for i in 1..=3 {
        run_one(&lp);
        assert_eq!(count.get(), i);
    }
    assert!(lp.remove_writer(fd));
    run_one(&lp);
    assert_eq!(count.get(), 3);
}

#[test]
fn reader_and_writer_on_one_fd_are_independent() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let (reads, rcb) = counter();
    let (writes, wcb) = counter();
    lp.add_reader(fd, rcb).unwrap();
    lp.add_writer(fd, wcb).unwrap();
    run_one(&lp);
    assert_eq!(reads.get(), 0, "nothing to read yet");
    assert_eq!(writes.get(), 1);
    assert!(lp.remove_writer(fd));
    b.write_all(b"x").unwrap();
    run_one(&lp);
    run_one(&lp);
    assert_eq!(
        reads.get(),
        2,
        "the reader still works after the writer left"
    );
    assert_eq!(writes.get(), 1);
    assert!(!lp.remove_writer(fd));
    assert!(lp.remove_reader(fd));
}

#[test]
fn a_panicking_reader_is_reported_and_keeps_watching() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    lp.add_reader(fd, move || {
        c.set(c.get() + 1);
        if c.get() == 1 {
            panic!("reader boom");
        }
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    run_one(&lp);
    run_one(&lp);
    assert_eq!(count.get(), 2);
    let r = reports.borrow();
    assert_eq!(r.len(), 1);
    assert!(
        r[0].message.starts_with("Exception in callback"),
        "{}",
        r[0].message
    );
    assert_eq!(r[0].panic.as_deref(), Some("reader boom"));
    assert!(lp.remove_reader(fd));
}

#[test]
fn add_reader_and_add_writer_on_a_closed_loop_are_errors() {
    let lp = EventLoop::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    lp.close().unwrap();
    let drops = DropCounter::default();
    let g = drops.guard();
    let err = lp
        .add_reader(a.as_raw_fd(), move || {
            let _ = &g;
        })
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert_eq!(drops.get(), 1);
    let err = lp.add_writer(a.as_raw_fd(), || {}).unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(!lp.remove_reader(a.as_raw_fd()));
}

#[test]
fn close_drops_fd_callbacks() {
    let lp = EventLoop::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let drops = DropCounter::default();
    let (g1, g2) = (drops.guard(), drops.guard());
    lp.add_reader(fd, move || {
        let _ = &g1;
    })
    .unwrap();
    lp.add_writer(fd, move || {
        let _ = &g2;
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    run_one(&lp);
    lp.close().unwrap();
    assert_eq!(drops.get(), 2);
    assert!(!lp.remove_reader(fd));
    assert!(!lp.remove_writer(fd));
}

#[test]
fn readers_on_many_fds() {
    let lp = EventLoop::new().unwrap();
    let pairs: Vec<_> = (0..20).map(|_| UnixStream::pair().unwrap()).collect();
    let hits = Rc::new(std::cell::RefCell::new(Vec::new()));
    for (i, (a, _)) in pairs.iter().enumerate() {
        let h = hits.clone();
        lp.add_reader(a.as_raw_fd(), move || h.borrow_mut().push(i))
            .unwrap();
    }
    for (i, (_, b)) in pairs.iter().enumerate() {
        if i % 3 == 0 {
            (&*b).write_all(b"x").unwrap();
        }
    }
    run_one(&lp);
    let mut got = hits.borrow().clone();
    got.sort_unstable();
    assert_eq!(got, (0..20).filter(|i| i % 3 == 0).collect::<Vec<_>>());
    for (a, _) in &pairs {
        assert!(lp.remove_reader(a.as_raw_fd()));
    }
}

#[test]
fn add_reader_on_a_bad_fd_is_an_error_not_a_panic() {
    let lp = EventLoop::new().unwrap();
    // A closed fd number.
    let closed = {
        let (a, _b) = UnixStream::pair().unwrap();
        a.as_raw_fd()
    };
    let err = lp.add_reader(closed, || {}).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    let err = lp.add_writer(100_000, || {}).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(!lp.remove_reader(closed));
    // -1 is not an fd either.
    let err = lp.add_reader(-1, || {}).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    // The loop is unaffected.
    assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
}
