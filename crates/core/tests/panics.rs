//! A panic in user code never takes the loop down: panicking callbacks, detached and awaited
//! panicking tasks, and panicking exception handlers.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::{record_exceptions, run_one};
use evloop_core::{EventLoop, ExceptionContext, JoinError};

#[test]
fn a_panicking_callback_is_reported_and_the_loop_goes_on() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let after = Rc::new(Cell::new(0));
    lp.call_soon(|| panic!("callback boom"));
    let a = after.clone();
    lp.call_soon(move || a.set(a.get() + 1));
    run_one(&lp);
    assert_eq!(after.get(), 1, "the rest of the iteration ran");
    {
        let r = reports.borrow();
        assert_eq!(r.len(), 1);
        assert!(
            r[0].message.starts_with("Exception in callback"),
            "{:?}",
            r[0].message
        );
        assert_eq!(r[0].panic.as_deref(), Some("callback boom"));
        assert!(r[0].task.is_none());
    }
    // Later iterations and runs work.
    let a = after.clone();
    lp.call_soon(move || a.set(a.get() + 1));
    run_one(&lp);
    assert_eq!(after.get(), 2);
    assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
}

#[test]
fn panicking_timer_and_remote_callbacks_are_reported() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    lp.call_later(Duration::ZERO, || panic!("timer boom {}", 1));
    lp.handle()
        .call_soon_threadsafe(|| panic!("remote boom"))
        .unwrap();
    run_one(&lp);
    let r = reports.borrow();
    let mut panics: Vec<_> = r.iter().map(|r| r.panic.clone().unwrap()).collect();
    panics.sort();
    assert_eq!(panics, ["remote boom", "timer boom 1"]);
    assert!(
        r.iter()
            .all(|r| r.message.starts_with("Exception in callback"))
    );
}

#[test]
fn a_non_string_panic_payload_is_kept() {
    let lp = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        *s.borrow_mut() = Some((
            ctx.panic_message().map(str::to_string),
            ctx.panic_payload()
                .and_then(|p| p.downcast_ref::<u32>().copied()),
        ));
    }));
    lp.call_soon(|| std::panic::panic_any(7u32));
    run_one(&lp);
    assert_eq!(*seen.borrow(), Some((None, Some(7))));
}

#[test]
fn a_detached_panicking_task_is_reported_as_never_retrieved() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let task = lp.create_task(async {
        evloop_core::yield_now().await;
        panic!("detached boom");
    });
    let (id, task_ref) = (task.id(), task.as_ref());
    drop(task);
    let sibling = lp.create_task(async {
        evloop_core::yield_now().await;
        evloop_core::yield_now().await;
        "sibling fine"
    });
    let waited = lp.run_until_complete(task_ref.clone()).unwrap();
    assert!(waited.unwrap_err().is_panic());
    assert_eq!(
        lp.run_until_complete(sibling).unwrap().unwrap(),
        "sibling fine"
    );
    run_one(&lp);
    let r = reports.borrow();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].message, "Task exception was never retrieved");
    assert_eq!(r[0].panic.as_deref(), Some("detached boom"));
    assert_eq!(r[0].task.as_ref().unwrap().id(), id);
    assert!(task_ref.is_done());
}

#[test]
fn a_panic_is_reported_when_the_unread_handle_is_dropped_later() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let task = lp.create_task(async { panic!("read me") });
    run_one(&lp);
    assert!(task.is_done());
    run_one(&lp);
    assert!(reports.borrow().is_empty(), "the handle may still read it");
    let id = task.id();
    drop(task);
    run_one(&lp);
    let r = reports.borrow();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].message, "Task exception was never retrieved");
    assert_eq!(r[0].panic.as_deref(), Some("read me"));
    assert_eq!(r[0].task.as_ref().unwrap().id(), id);
}

#[test]
fn an_unread_panic_dropped_before_close_is_still_reported() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let task = lp.create_task(async { panic!("reported at close") });
    run_one(&lp);
    drop(task);
    lp.close().unwrap();
    let r = reports.borrow();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].message, "Task exception was never retrieved");
    assert_eq!(r[0].panic.as_deref(), Some("reported at close"));
}

#[test]
fn an_awaited_panicking_task_gives_panicked_and_no_report() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let task = lp.create_task(async {
        evloop_core::yield_now().await;
        panic!("kaboom");
    });
    let err = lp.run_until_complete(task).unwrap().unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert_eq!(err.panic_message(), Some("kaboom"));
    assert!(err.to_string().contains("kaboom"), "{err}");
    let payload = err.into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"kaboom"));

    // Awaited from another task, too.
    let n = std::hint::black_box(2);
    let inner = lp.create_task(async move { panic!("inner {n}") });
    let outer = lp.create_task(async move {
        match inner.await {
            Err(e @ JoinError::Panicked(_)) => e.panic_message().map(str::to_string),
            _ => None,
        }
    });
    let msg = lp.run_until_complete(outer).unwrap().unwrap();
    assert_eq!(msg.as_deref(), Some("inner 2"));

    run_one(&lp);
    run_one(&lp);
    lp.close().unwrap();
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn a_panicking_task_does_not_disturb_others() {
    let lp = EventLoop::new().unwrap();
    let _reports = record_exceptions(&lp);
    let bad = lp.create_task(async { panic!("bad") });
    let good = lp.create_task(async {
        let mut n = 0;
        for _ in 0..5 {
            evloop_core::yield_now().await;
            n += 1;
        }
        n
    });
    drop(bad);
    assert_eq!(lp.run_until_complete(good).unwrap().unwrap(), 5);
}

#[test]
fn a_panicking_exception_handler_does_not_take_the_loop_down() {
    let lp = EventLoop::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, _: &ExceptionContext| {
        c.set(c.get() + 1);
        panic!("handler boom");
    }));
    let after = Rc::new(Cell::new(false));
    lp.call_soon(|| panic!("callback boom"));
    let a = after.clone();
    lp.call_soon(move || a.set(true));
    run_one(&lp);
    assert_eq!(calls.get(), 1);
    assert!(after.get());
    // A detached task panic goes through the same handler.
    let t = lp.create_task(async { panic!("task boom") });
    drop(t);
    run_one(&lp);
    run_one(&lp);
    assert_eq!(calls.get(), 2);
    lp.call_exception_handler(ExceptionContext::new("direct call"));
    assert_eq!(calls.get(), 3);
    assert_eq!(lp.run_until_complete(async { "alive" }).unwrap(), "alive");
    lp.close().unwrap();
}

#[test]
fn call_exception_handler_reaches_the_handler_and_none_restores_the_default() {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    assert!(lp.get_exception_handler().is_some());
    let task = lp.create_task(async {});
    lp.call_exception_handler(
        ExceptionContext::new("custom")
            .with_panic(Box::new(String::from("payload")))
            .with_task(task.as_ref()),
    );
    {
        let r = reports.borrow();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].message, "custom");
        assert_eq!(r[0].panic.as_deref(), Some("payload"));
        assert_eq!(r[0].task.as_ref().unwrap().id(), task.id());
    }
    lp.set_exception_handler(None::<fn(&EventLoop, &ExceptionContext)>);
    assert!(lp.get_exception_handler().is_none());
    lp.call_soon(|| panic!("goes to the default handler"));
    run_one(&lp);
    assert_eq!(reports.borrow().len(), 1);
}

#[test]
fn default_exception_handler_logs_without_panicking() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async {});
    lp.default_exception_handler(&ExceptionContext::new("plain"));
    lp.default_exception_handler(
        &ExceptionContext::new("with everything")
            .with_panic(Box::new("p"))
            .with_task(task.as_ref()),
    );
    lp.default_exception_handler(&ExceptionContext::new("non-string").with_panic(Box::new(1u8)));
}

#[test]
fn a_panic_inside_a_task_destructor_on_cancel_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("destructor boom");
            }
        }
    }
    let lp = EventLoop::new().unwrap();
    let _reports = record_exceptions(&lp);
    let task = lp.create_task(async {
        let _p = PanicOnDrop;
        std::future::pending::<()>().await;
    });
    run_one(&lp);
    task.cancel();
    let out = lp.run_until_complete(task).unwrap();
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
}

/// asyncio: `task.cancel()` on a task that already failed returns False and marks the failure
/// as retrieved (no "Task exception was never retrieved" when the task goes away).
#[test]
fn cancel_of_a_failed_task_marks_its_failure_retrieved() {
    use std::cell::RefCell;
    use std::rc::Rc;

    let lp = EventLoop::new().unwrap();
    let reports: Rc<RefCell<Vec<String>>> = Rc::default();
    let seen = reports.clone();
    lp.set_exception_handler(Some(
        move |_: &EventLoop, ctx: &evloop_core::ExceptionContext| {
            seen.borrow_mut().push(ctx.message().to_owned());
        },
    ));
    let failed = lp.create_task(async {
        if std::hint::black_box(true) {
            panic!("boom");
        }
    });
    let other = lp.create_task(async {
        if std::hint::black_box(true) {
            panic!("boom too");
        }
    });
    lp.run_until_complete(evloop_core::sleep(&lp, std::time::Duration::from_millis(1)))
        .unwrap();
    assert!(failed.is_done() && other.is_done());
    assert!(!failed.cancel());
    drop(failed);
    drop(other);
    // The reports travel through the loop: one more iteration delivers them.
    lp.run_until_complete(evloop_core::yield_now()).unwrap();
    assert_eq!(
        *reports.borrow(),
        vec!["Task exception was never retrieved".to_owned()]
    );
    lp.close().unwrap();
}
