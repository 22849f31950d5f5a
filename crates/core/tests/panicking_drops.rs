//! Destructors that panic — of a pending callback, timer, thread-safe closure, fd-watcher
//! callback or loop extension — neither leave `close()` half done nor unwind into the caller
//! of `Handle::cancel`: each panic goes to the exception handler and the work goes on.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use common::{DropCounter, Report, record_exceptions, run_one};
use evloop_core::EventLoop;

/// Panics (with its message) when dropped, unless a panic is already unwinding.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// A callback whose destructor panics with `msg`.
fn bomb(msg: &'static str) -> impl FnOnce() + Send + 'static {
    let p = PanicOnDrop(msg);
    move || {
        let _keep = &p;
    }
}

fn destructor_reports(reports: &Rc<RefCell<Vec<Report>>>) -> Vec<String> {
    reports
        .borrow()
        .iter()
        .filter(|r| r.message.starts_with("Exception in the destructor of"))
        .map(|r| r.panic.clone().unwrap_or_default())
        .collect()
}

/// `close()` went to the end: the reactor is closed (and holds no fds: waiting on it
/// fails), everything after the panicking item was dropped too, and a second close is fine.
fn assert_fully_closed(lp: &EventLoop, after: &DropCounter, dropped_after: usize) {
    assert!(lp.is_closed());
    assert!(
        lp.reactor().is_closed(),
        "close() stopped before the reactor"
    );
    assert!(lp.reactor().wait(Some(Duration::ZERO)).is_err());
    assert_eq!(after.get(), dropped_after, "close() stopped half way");
    lp.close().unwrap();
}

#[test]
fn close_contains_panicking_destructors_of_everything_pending() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let after = DropCounter::default();
    let (a, _b) = UnixStream::pair().unwrap();

    lp.call_soon(bomb("callback drop"));
    let g = after.guard();
    lp.call_soon(move || drop(g));
    let _timer = lp.call_later(Duration::from_secs(3600), bomb("timer drop"));
    let g = after.guard();
    lp.call_later(Duration::from_secs(3600), move || drop(g));
    // Not running: a thread-safe callback goes through the injection queue.
    lp.handle()
        .call_soon_threadsafe(bomb("threadsafe drop"))
        .unwrap();
    let g = after.guard();
    lp.handle().call_soon_threadsafe(move || drop(g)).unwrap();
    let fd_bomb = bomb("reader drop");
    lp.add_reader(a.as_raw_fd(), move || {
        let _keep = &fd_bomb;
    })
    .unwrap();
    lp.extension(|| PanicOnDrop("extension drop"));
    let _kept = lp.extension(|| after.guard());
    let lp2 = lp.clone();
    let _task = lp.create_task(async move {
        evloop_core::sleep(&lp2, Duration::from_secs(3600)).await;
    });

    lp.close().unwrap();
    let mut got = destructor_reports(&reports);
    got.sort();
    assert_eq!(
        got,
        [
            "callback drop",
            "extension drop",
            "reader drop",
            "threadsafe drop",
            "timer drop"
        ]
    );
    // The extension is kept alive by `_kept`, so only the 3 others count.
    assert_fully_closed(&lp, &after, 3);
}

#[test]
fn a_panicking_destructor_of_a_due_timer_or_a_queued_callback_is_contained_at_close() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let after = DropCounter::default();
    // A zero-delay timer becomes due on the first iteration; stop before it runs.
    lp.call_soon({
        let lp = lp.clone();
        move || {
            lp.call_later(Duration::ZERO, bomb("due timer drop"));
            lp.call_soon(bomb("queued callback drop"));
            lp.stop();
        }
    });
    let g = after.guard();
    lp.call_later(Duration::from_secs(3600), move || drop(g));
    lp.run_forever().unwrap();
    lp.close().unwrap();
    let mut got = destructor_reports(&reports);
    got.sort();
    assert_eq!(got, ["due timer drop", "queued callback drop"]);
    assert_fully_closed(&lp, &after, 1);
}

#[test]
fn cancelling_a_callback_or_timer_whose_destructor_panics_reports_it() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let finished = Rc::new(RefCell::new(false));
    let handles = Rc::new(RefCell::new(None));
    let (f, hs) = (finished.clone(), handles.clone());
    // Runs first, in the iteration where the callback it cancels is also due.
    lp.call_soon(move || {
        let (h, t): (evloop_core::Handle, evloop_core::TimerHandle) =
            hs.borrow_mut().take().unwrap();
        h.cancel();
        t.cancel();
        *f.borrow_mut() = true;
    });
    let h = lp.call_soon(bomb("cancelled callback drop"));
    let t = lp.call_later(Duration::from_secs(3600), bomb("cancelled timer drop"));
    *handles.borrow_mut() = Some((h, t));
    run_one(&lp);
    assert!(*finished.borrow(), "cancel() returned normally");
    let got = destructor_reports(&reports);
    assert_eq!(got, ["cancelled callback drop", "cancelled timer drop"]);
    assert_eq!(reports.borrow().len(), 2, "{:?}", reports.borrow());
    lp.close().unwrap();
    lp.close().unwrap();
}

#[test]
fn a_callback_whose_destructor_panics_after_it_ran_is_reported_and_the_loop_goes_on() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    lp.call_soon(bomb("ran callback drop"));
    lp.call_later(Duration::ZERO, bomb("ran timer drop"));
    lp.handle()
        .call_soon_threadsafe(bomb("ran threadsafe drop"))
        .unwrap();
    for _ in 0..3 {
        run_one(&lp);
    }
    let mut got: Vec<String> = reports
        .borrow()
        .iter()
        .map(|r| {
            assert!(r.message.starts_with("Exception in callback"), "{r:?}");
            r.panic.clone().unwrap_or_default()
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        ["ran callback drop", "ran threadsafe drop", "ran timer drop"]
    );
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
    lp.close().unwrap();
}

#[test]
fn a_panicking_closure_refused_or_discarded_by_a_closed_loop_does_not_unwind_into_the_sender() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.close().unwrap();
    let refused = std::thread::spawn(move || handle.call_soon_threadsafe(bomb("refused drop")))
        .join()
        .expect("the sender's thread did not panic");
    assert!(refused.is_err());
}

#[test]
fn removing_or_replacing_an_fd_callback_whose_destructor_panics_reports_it() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let first = bomb("replaced reader drop");
    lp.add_reader(fd, move || {
        let _keep = &first;
    })
    .unwrap();
    let second = bomb("removed reader drop");
    lp.add_reader(fd, move || {
        let _keep = &second;
    })
    .unwrap();
    assert!(lp.remove_reader(fd));
    assert_eq!(
        destructor_reports(&reports),
        ["replaced reader drop", "removed reader drop"]
    );
    // A writer that removes itself while it runs: its last reference goes after the call.
    let lp2 = lp.clone();
    let third = bomb("self-removed writer drop");
    lp.add_writer(fd, move || {
        let _keep = &third;
        lp2.remove_writer(fd);
    })
    .unwrap();
    run_one(&lp);
    assert_eq!(
        destructor_reports(&reports),
        [
            "replaced reader drop",
            "removed reader drop",
            "self-removed writer drop"
        ]
    );
    lp.close().unwrap();
}
