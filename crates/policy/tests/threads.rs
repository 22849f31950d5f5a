//! Thread binding under the default policy: real threads, exact error texts.
//!
//! These tests never change the process-wide policy (see `policy_global.rs` for that) and
//! never run on the main thread (see `main_thread.rs`).

use std::cell::RefCell;
use std::rc::Rc;
use std::thread;

use evloop_core::{Error, EventLoop, ExceptionContext};
use evloop_policy::{
    get_event_loop, get_running_loop, is_main_thread, new_event_loop, set_event_loop,
};

fn in_thread<T: Send + 'static>(name: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let mut builder = thread::Builder::new();
    if let Some(name) = name {
        builder = builder.name(name.to_owned());
    }
    builder
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("the test thread panicked")
}

#[test]
fn named_thread_has_no_loop_until_it_sets_one() {
    in_thread(Some("worker-7"), || {
        assert!(!is_main_thread());
        let err = get_event_loop().expect_err("no loop on a new thread");
        assert!(matches!(&err, Error::NoCurrentLoop { thread } if thread == "worker-7"));
        assert_eq!(
            err.to_string(),
            "There is no current event loop in thread 'worker-7'."
        );
        // Asking again does not create one either.
        assert!(get_event_loop().is_err());

        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        let a = get_event_loop().expect("current loop");
        let b = get_event_loop().expect("current loop");
        assert!(a == b && a == lp);
    });
}

#[test]
fn unnamed_thread_is_named_by_its_thread_id() {
    let (id, text) = in_thread(None, || {
        let id = format!("{:?}", thread::current().id());
        (id, get_event_loop().expect_err("no loop").to_string())
    });
    assert!(id.starts_with("ThreadId("), "{id}");
    assert_eq!(
        text,
        format!("There is no current event loop in thread '{id}'.")
    );
}

#[test]
fn a_thread_named_like_the_test_is_not_main() {
    // The test harness names this thread after the test.
    assert!(!is_main_thread());
    assert!(get_event_loop().is_err());
}

#[test]
fn set_event_loop_none_unsets() {
    in_thread(Some("unset"), || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        assert!(get_event_loop().expect("set") == lp);
        set_event_loop(None);
        let err = get_event_loop().expect_err("unset");
        assert_eq!(
            err.to_string(),
            "There is no current event loop in thread 'unset'."
        );
        // We still hold a handle: unsetting did not close the loop.
        assert!(!lp.is_closed());
    });
}

#[test]
fn replacing_the_current_loop_releases_the_old_one() {
    in_thread(Some("replace"), || {
        let old = new_event_loop().expect("new loop");
        let old_handle = old.handle();
        set_event_loop(Some(&old));
        drop(old); // the policy holds the last handle now
        assert!(!old_handle.is_closed());
        let new = new_event_loop().expect("new loop");
        set_event_loop(Some(&new));
        assert!(
            old_handle.is_closed(),
            "the old loop's last handle was dropped"
        );
        assert!(get_event_loop().expect("set") == new);
    });
}

#[test]
fn new_event_loop_makes_distinct_loops_and_does_not_set_them() {
    in_thread(Some("fresh"), || {
        let a = new_event_loop().expect("new loop");
        let b = new_event_loop().expect("new loop");
        assert!(a != b);
        assert!(
            get_event_loop().is_err(),
            "new_event_loop does not make it current"
        );
    });
}

#[test]
fn running_loop_beats_current_loop() {
    in_thread(Some("running"), || {
        let current = new_event_loop().expect("new loop");
        set_event_loop(Some(&current));
        let other = new_event_loop().expect("new loop");
        let (seen, running) = other
            .run_until_complete(async { (get_event_loop(), get_running_loop()) })
            .expect("run");
        let (seen, running) = (seen.expect("get_event_loop"), running.expect("running"));
        assert!(seen == other && running == other);
        assert!(seen != current);
        // Once the run is over, the current loop is back.
        assert!(get_event_loop().expect("current") == current);
    });
}

#[test]
fn running_loop_is_returned_even_with_no_current_loop() {
    in_thread(Some("no-current"), || {
        let lp = new_event_loop().expect("new loop");
        let seen = lp
            .run_until_complete(async { get_event_loop() })
            .expect("run")
            .expect("get_event_loop inside a coroutine");
        assert!(seen == lp);
        // Callbacks see the running loop too.
        let seen_in_cb = Rc::new(RefCell::new(None));
        let slot = seen_in_cb.clone();
        lp.call_soon(move || *slot.borrow_mut() = get_event_loop().ok());
        lp.stop();
        lp.run_forever().expect("one iteration");
        assert!(seen_in_cb.borrow().as_ref() == Some(&lp));
    });
}

#[test]
fn get_running_loop_outside_a_loop_errors() {
    let err = get_running_loop().expect_err("not running");
    assert!(matches!(err, Error::NoRunningLoop));
    assert_eq!(err.to_string(), "no running event loop");
    in_thread(Some("set-but-not-running"), || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        // A current loop is not a running loop.
        assert!(matches!(get_running_loop(), Err(Error::NoRunningLoop)));
    });
}

#[test]
fn a_second_loop_inside_a_running_one_is_refused() {
    in_thread(Some("nested"), || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        let outer = get_event_loop().expect("current");
        let inner_result = outer
            .run_until_complete(async {
                let another = new_event_loop()?;
                another.run_forever()
            })
            .expect("outer run");
        let err = inner_result.expect_err("nested run");
        assert!(matches!(err, Error::AnotherLoopRunning));
        assert_eq!(
            err.to_string(),
            "Cannot run the event loop while another loop is running"
        );
    });
}

#[test]
fn thread_exit_closes_its_current_loop() {
    let handle = in_thread(Some("exiting"), || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        let handle = lp.handle();
        assert!(!handle.is_closed());
        handle
    });
    assert!(
        handle.is_closed(),
        "the thread's current loop closes when the thread ends"
    );
}

#[test]
fn thread_exit_reports_tasks_destroyed_while_pending() {
    let (handle, seen) = in_thread(Some("exiting-with-task"), || {
        let lp = new_event_loop().expect("new loop");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
            // The handler may use the policy layer while the thread is being torn down.
            let _ = get_event_loop();
            sink.lock()
                .expect("not poisoned")
                .push(ctx.message().to_owned());
        }));
        let _task = lp.create_task(std::future::pending::<()>());
        set_event_loop(Some(&lp));
        (lp.handle(), seen)
    });
    assert!(handle.is_closed());
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(
        seen,
        vec!["Task was destroyed but it is pending!".to_owned()]
    );
}

#[test]
fn a_loop_closing_while_being_replaced_may_call_back_into_the_policy() {
    in_thread(Some("reentrant"), || {
        let lp = new_event_loop().expect("new loop");
        let calls = Rc::new(RefCell::new(Vec::new()));
        let sink = calls.clone();
        lp.set_exception_handler(Some(move |_: &EventLoop, _: &ExceptionContext| {
            // Re-enter the policy from the loop's destructor.
            sink.borrow_mut().push(get_event_loop().is_ok());
            set_event_loop(None);
        }));
        let _task = lp.create_task(std::future::pending::<()>());
        set_event_loop(Some(&lp));
        drop(lp);
        set_event_loop(None); // drops the last handle: the loop closes, the handler runs
        assert_eq!(*calls.borrow(), vec![false]);
        assert!(get_event_loop().is_err());
    });
}

#[test]
fn each_thread_has_its_own_current_loop() {
    let (tx, rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("t{i}"))
                .spawn(move || {
                    let lp = new_event_loop().expect("new loop");
                    set_event_loop(Some(&lp));
                    let value = lp
                        .run_until_complete(async move {
                            let me = get_running_loop().expect("running");
                            assert!(me == get_event_loop().expect("current"));
                            i * 10
                        })
                        .expect("run");
                    tx.send((i, value)).expect("send");
                    assert!(get_event_loop().expect("still current") == lp);
                })
                .expect("spawn")
        })
        .collect();
    drop(tx);
    for t in threads {
        t.join().expect("thread");
    }
    let mut got: Vec<_> = rx.iter().collect();
    got.sort();
    assert_eq!(got, vec![(0, 0), (1, 10), (2, 20), (3, 30)]);
}
