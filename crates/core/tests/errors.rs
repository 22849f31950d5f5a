//! Misuse is an `Err`, never a panic or a hang: re-entrant runs, two loops on one thread,
//! error texts, the running-loop slot (also after a panic), and loop identity.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use common::run_one;
use evloop_core::{Error, EventLoop, running_loop};

#[test]
fn error_texts_are_asyncios() {
    let cases: Vec<(Error, &str)> = vec![
        (Error::AlreadyRunning, "This event loop is already running"),
        (
            Error::AnotherLoopRunning,
            "Cannot run the event loop while another loop is running",
        ),
        (Error::Closed, "Event loop is closed"),
        (Error::CloseRunning, "Cannot close a running event loop"),
        (
            Error::StoppedBeforeComplete,
            "Event loop stopped before Future completed.",
        ),
        (Error::NoRunningLoop, "no running event loop"),
        (
            Error::NoCurrentLoop {
                thread: "worker-7".into(),
            },
            "There is no current event loop in thread 'worker-7'.",
        ),
        (
            Error::RunInRunningLoop,
            "run() cannot be called from a running event loop",
        ),
        (Error::Interrupted, "interrupted by Ctrl-C"),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
        let _: &dyn std::error::Error = &err;
    }
    let io = Error::Io(std::io::Error::other("disk on fire"));
    assert!(io.to_string().contains("disk on fire"), "{io}");
}

#[test]
fn running_the_same_loop_reentrantly_is_already_running() {
    let lp = EventLoop::new().unwrap();
    let lp2 = lp.clone();
    let (a, b) = lp
        .run_until_complete(async move {
            let a = lp2.run_forever();
            let b = lp2.run_until_complete(async { 1 });
            // The failed attempts left the running loop alone.
            assert!(lp2.is_running());
            assert!(running_loop() == Some(lp2.clone()));
            (a, b)
        })
        .unwrap();
    let a = a.unwrap_err();
    assert!(matches!(a, Error::AlreadyRunning), "{a:?}");
    assert_eq!(a.to_string(), "This event loop is already running");
    assert!(matches!(b, Err(Error::AlreadyRunning)), "{b:?}");

    // From a callback and from a task, too.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, lp2) = (seen.clone(), lp.clone());
    lp.call_soon(move || s.borrow_mut().push(lp2.run_forever()));
    let (s, lp2) = (seen.clone(), lp.clone());
    let _t = lp.create_task(async move { s.borrow_mut().push(lp2.run_until_complete(async {})) });
    run_one(&lp);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| matches!(r, Err(Error::AlreadyRunning))));
    // The loop is fine afterwards.
    assert!(!lp.is_running());
    assert_eq!(lp.run_until_complete(async { 2 }).unwrap(), 2);
}

#[test]
fn running_another_loop_while_one_runs_is_an_error() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let o = other.clone();
    let (a, b, other_running) = lp
        .run_until_complete(async move {
            let a = o.run_forever();
            let b = o.run_until_complete(async { 1 });
            let here = running_loop().unwrap();
            assert!(here != o && here.is_running());
            (a, b, o.is_running())
        })
        .unwrap();
    let a = a.unwrap_err();
    assert!(matches!(a, Error::AnotherLoopRunning), "{a:?}");
    assert_eq!(
        a.to_string(),
        "Cannot run the event loop while another loop is running"
    );
    assert!(matches!(b, Err(Error::AnotherLoopRunning)), "{b:?}");
    assert!(!other_running);

    let seen = Rc::new(RefCell::new(None));
    let (s, o) = (seen.clone(), other.clone());
    lp.call_soon(move || *s.borrow_mut() = Some(o.run_forever()));
    run_one(&lp);
    assert!(matches!(
        seen.borrow_mut().take(),
        Some(Err(Error::AnotherLoopRunning))
    ));
    // Both loops run fine one after the other.
    assert_eq!(other.run_until_complete(async { 3 }).unwrap(), 3);
    assert_eq!(lp.run_until_complete(async { 4 }).unwrap(), 4);
}

#[test]
fn a_closed_loop_run_inside_another_is_closed() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    other.close().unwrap();
    let o = other.clone();
    let r = lp
        .run_until_complete(async move { o.run_forever() })
        .unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

#[test]
fn closing_another_loop_from_inside_a_running_one_is_fine() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let o = other.clone();
    lp.run_until_complete(async move { o.close() })
        .unwrap()
        .unwrap();
    assert!(other.is_closed());
}

#[test]
fn running_loop_is_set_only_while_running() {
    let lp = EventLoop::new().unwrap();
    assert!(running_loop().is_none());
    let inside = lp.run_until_complete(async { running_loop() }).unwrap();
    assert!(inside == Some(lp.clone()));
    assert!(running_loop().is_none());

    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.call_soon(move || *s.borrow_mut() = running_loop());
    run_one(&lp);
    assert!(seen.borrow().as_ref() == Some(&lp));

    let task = lp.create_task(async { running_loop() });
    let from_task = lp.run_until_complete(task).unwrap().unwrap();
    assert!(from_task == Some(lp.clone()));

    // Another loop run later reports itself.
    let other = EventLoop::new().unwrap();
    let o = other.run_until_complete(async { running_loop() }).unwrap();
    assert!(o == Some(other.clone()));
    assert!(o != Some(lp.clone()));
    assert!(running_loop().is_none());
}

#[test]
fn the_running_loop_guard_is_released_after_a_panic_in_the_main_future() {
    let lp = EventLoop::new().unwrap();
    let pending = lp.create_task(async {
        evloop_core::yield_now().await;
        evloop_core::yield_now().await;
        "finished later"
    });
    let lp2 = lp.clone();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        lp.run_until_complete(async move {
            assert!(running_loop().is_some());
            evloop_core::yield_now().await;
            if lp2.is_running() {
                panic!("main future boom");
            }
        })
    }));
    let payload = caught.unwrap_err();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    assert_eq!(msg.as_deref(), Some("main future boom"));

    assert!(running_loop().is_none());
    assert!(!lp.is_running());
    assert!(!lp.is_closed());
    // The same loop runs again (and its tasks go on), and so does another one.
    assert_eq!(
        lp.run_until_complete(pending).unwrap().unwrap(),
        "finished later"
    );
    let other = EventLoop::new().unwrap();
    assert_eq!(other.run_until_complete(async { 9 }).unwrap(), 9);
    run_one(&lp);
    assert!(running_loop().is_none());
}

#[test]
fn a_panic_in_the_first_poll_of_the_main_future_releases_the_guard() {
    let lp = EventLoop::new().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        lp.run_until_complete(async {
            panic!("first poll");
        })
    }));
    assert!(caught.is_err());
    assert!(running_loop().is_none());
    assert!(!lp.is_running());
    lp.close().unwrap();
    assert!(lp.is_closed());
}

#[test]
fn loop_identity() {
    let a = EventLoop::new().unwrap();
    let b = EventLoop::new().unwrap();
    let a2 = a.clone();
    assert!(a == a2);
    assert!(a2 == a);
    assert!(a != b);
    assert!(b == b.clone());
    assert!(a.clone() != b.clone());
}
