//! `LoopFuture` (`EventLoop::create_future`): CPython's Lib/test/test_asyncio/test_futures.py
//! ported where the case has a Rust meaning, named after the CPython test, with its expected
//! values; then the Rust-only cases.
//!
//! Ported (27): test_initial_state, test_constructor_use_running_loop,
//! test_future_cancel_message_getter, test_cancel, test_result, test_exception,
//! test_yield_from_twice, test_future_repr, test_tb_logger_abandoned,
//! test_tb_logger_not_called_after_cancel, test_tb_logger_result_unretrieved,
//! test_tb_logger_result_retrieved, test_tb_logger_exception_unretrieved,
//! test_tb_logger_exception_retrieved, test_tb_logger_exception_result_retrieved,
//! test_future_exception_never_retrieved, test_set_result_unless_cancelled,
//! test_future_stop_iteration_args, test_copy_state, and from the done-callback tests:
//! test_callbacks_remove_first_callback, test_callbacks_remove_first_and_second_callback,
//! test_callbacks_remove_third_callback, test_callbacks_invoked_on_set_result,
//! test_callbacks_invoked_on_set_exception, test_remove_done_callback,
//! test_schedule_callbacks_list_mutation_1, test_exception_class (as a unit error type).
//!
//! Left out (25), and why:
//! - test_isfuture, test_generic_alias, test_ensure_future, test_constructor_positional,
//!   test_inherit_without_calling_super_init, test_uninitialized: Python typing, subclassing
//!   and `__new__` without `__init__`; Rust's types rule these out at compile time.
//! - test_constructor_without_loop, test_constructor_use_global_loop: a `LoopFuture` is always
//!   made from a loop (`create_future`/`LoopFuture::new(&lp)`); there is no implicit loop in
//!   the core.
//! - test_future_cancel_message_setter, test_log_traceback: private attributes
//!   (`_cancel_message`, `_log_traceback`).
//! - test_iter, test_future_iter_throw: the generator protocol (`yield from`, `throw`).
//! - test_future_source_traceback, test_future_exception_never_retrieved_debug: debug-mode
//!   creation tracebacks, which evloop does not record.
//! - test_wrap_future, test_wrap_future_future, test_wrap_future_without_loop,
//!   test_wrap_future_use_running_loop, test_wrap_future_use_global_loop,
//!   test_wrap_future_cancel, test_wrap_future_cancel2: `concurrent.futures` interop; evloop's
//!   thread pool returns `Task`s.
//! - test_future_del_collect, test_future_del_segfault: garbage-collector and C-implementation
//!   crashes.
//! - test_remove_done_callbacks_list_mutation, test_remove_done_callbacks_list_clear,
//!   test_schedule_callbacks_list_mutation_2: they mutate the list from a callback's `__eq__`;
//!   a done callback is removed by its id here, no user code runs during the search.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Wake, Waker};

use common::{record_exceptions, run_one};
use evloop_core::{EventLoop, FutureError, LoopFuture};

/// CPython's `RuntimeError()`.
#[derive(Debug, Clone, PartialEq)]
struct RuntimeError(&'static str);

type Bag = Rc<RefCell<Vec<i32>>>;

/// CPython's `_make_callback(bag, thing)`: a done callback that appends `thing` to `bag`.
fn make_callback<T, E>(bag: &Bag, thing: i32) -> impl FnOnce(&LoopFuture<T, E>) + 'static {
    let bag = bag.clone();
    move |_| bag.borrow_mut().push(thing)
}

#[test]
fn test_initial_state() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<()> = lp.create_future();
    assert!(!f.is_cancelled());
    assert!(!f.is_done());
    f.cancel();
    assert!(f.is_cancelled());
}

#[test]
fn test_constructor_use_running_loop() {
    let lp = EventLoop::new().unwrap();
    // Made inside the running loop (returned in a `Vec`: a future is itself awaitable).
    let mut made: Vec<LoopFuture<()>> = lp
        .run_until_complete(async { vec![evloop_core::running_loop().unwrap().create_future()] })
        .unwrap();
    let f = made.pop().unwrap();
    assert!(f.get_loop().unwrap() == lp);
}

#[test]
fn test_future_cancel_message_getter() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<()> = lp.create_future();
    f.cancel_with("my message");
    let err = lp.run_until_complete(f.clone()).unwrap().unwrap_err();
    assert_eq!(err, FutureError::Cancelled(Some("my message".into())));
    assert_eq!(err.cancel_message(), Some("my message"));
}

#[test]
fn test_cancel() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<Option<()>, Option<()>> = lp.create_future();
    assert!(f.cancel());
    assert!(f.is_cancelled());
    assert!(f.is_done());
    // asyncio: result() and exception() raise CancelledError.
    assert_eq!(f.result(), Some(Err(FutureError::Cancelled(None))));
    let refused = f.set_result(None).unwrap_err();
    assert!(refused.was_cancelled());
    assert_eq!(refused.to_string(), "invalid state: CANCELLED");
    assert!(f.set_error(None).is_err());
    assert!(!f.cancel());
}

#[test]
fn test_result() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<Option<i32>, Option<()>> = lp.create_future();
    // asyncio: InvalidStateError while pending; here `None`.
    assert_eq!(f.result(), None);
    f.set_result(Some(42)).unwrap();
    assert!(!f.is_cancelled());
    assert!(f.is_done());
    assert_eq!(f.result(), Some(Ok(Some(42))));
    let refused = f.set_result(None).unwrap_err();
    assert!(!refused.was_cancelled());
    assert_eq!(refused.to_string(), "invalid state: FINISHED");
    assert_eq!(refused.into_inner(), None);
    assert!(f.set_error(None).is_err());
    assert!(!f.cancel());
}

#[test]
fn test_exception() {
    let lp = EventLoop::new().unwrap();
    let exc = RuntimeError("");
    let f: LoopFuture<Option<()>, RuntimeError> = lp.create_future();
    assert_eq!(f.result(), None);
    // (CPython's StopIteration check has no Rust meaning.)
    f.set_error(exc.clone()).unwrap();
    assert!(!f.is_cancelled());
    assert!(f.is_done());
    // asyncio: result() raises it, exception() returns it.
    assert_eq!(f.result(), Some(Err(FutureError::Failed(exc.clone()))));
    assert_eq!(f.set_result(None).unwrap_err().into_inner(), None);
    assert_eq!(
        f.set_error(RuntimeError("again")).unwrap_err().into_inner(),
        RuntimeError("again")
    );
    assert!(!f.cancel());
}

#[test]
fn test_exception_class() {
    // CPython sets the class and reads back an instance; Rust's nearest is a unit error type.
    #[derive(Debug, Clone, PartialEq)]
    struct Unit;
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<(), Unit> = lp.create_future();
    f.set_error(Unit).unwrap();
    assert_eq!(f.result().unwrap().unwrap_err().into_error(), Some(Unit));
}

#[test]
fn test_yield_from_twice() {
    // Awaited twice by one task: the second await does not wait.
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<i32> = lp.create_future();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let (fut, l) = (f.clone(), log.clone());
    let task = lp.create_task(async move {
        l.borrow_mut().push("A".into());
        let x = fut.clone().await.unwrap();
        l.borrow_mut().push(format!("B {x}"));
        let y = fut.await.unwrap();
        l.borrow_mut().push(format!("C {y}"));
    });
    run_one(&lp);
    assert_eq!(*log.borrow(), ["A"]);
    f.set_result(42).unwrap();
    lp.run_until_complete(task).unwrap().unwrap();
    assert_eq!(*log.borrow(), ["A", "B 42", "C 42"]);
}

#[test]
fn test_future_repr() {
    let lp = EventLoop::new().unwrap();
    let f_pending: LoopFuture<i32, RuntimeError> = lp.create_future();
    assert_eq!(format!("{f_pending:?}"), "<LoopFuture pending>");
    f_pending.cancel();

    let f_cancelled: LoopFuture<i32, RuntimeError> = lp.create_future();
    f_cancelled.cancel();
    assert_eq!(format!("{f_cancelled:?}"), "<LoopFuture cancelled>");

    let f_result: LoopFuture<i32, RuntimeError> = lp.create_future();
    f_result.set_result(4).unwrap();
    assert_eq!(format!("{f_result:?}"), "<LoopFuture finished result=4>");
    assert_eq!(f_result.result(), Some(Ok(4)));

    let f_exception: LoopFuture<i32, RuntimeError> = lp.create_future();
    f_exception.set_error(RuntimeError("")).unwrap();
    assert_eq!(
        format!("{f_exception:?}"),
        r#"<LoopFuture finished error=RuntimeError("")>"#
    );
    assert!(f_exception.result().is_some());

    // CPython shows the callbacks' names; a closure has none, so the count.
    let f_one_callbacks: LoopFuture<i32, RuntimeError> = lp.create_future();
    f_one_callbacks.add_done_callback(|_| {});
    assert_eq!(
        format!("{f_one_callbacks:?}"),
        "<LoopFuture pending callbacks=1>"
    );
    f_one_callbacks.cancel();
    assert_eq!(format!("{f_one_callbacks:?}"), "<LoopFuture cancelled>");

    let f_many_callbacks: LoopFuture<i32, RuntimeError> = lp.create_future();
    for _ in 0..10 {
        f_many_callbacks.add_done_callback(|_| {});
    }
    assert_eq!(
        format!("{f_many_callbacks:?}"),
        "<LoopFuture pending callbacks=10>"
    );
    f_many_callbacks.cancel();
    assert_eq!(format!("{f_many_callbacks:?}"), "<LoopFuture cancelled>");
}

#[test]
fn test_copy_state() {
    // asyncio's private `_copy_future_state`, written as a user would with the public API.
    fn copy_state(from: &LoopFuture<i32, RuntimeError>, to: &LoopFuture<i32, RuntimeError>) {
        match from.result().unwrap() {
            Ok(v) => to.set_result(v).unwrap(),
            Err(FutureError::Failed(e)) => to.set_error(e).unwrap(),
            Err(FutureError::Cancelled(_)) => assert!(to.cancel()),
        }
    }
    let lp = EventLoop::new().unwrap();
    let f = lp.create_future();
    f.set_result(10).unwrap();
    let newf = lp.create_future();
    copy_state(&f, &newf);
    assert!(newf.is_done());
    assert_eq!(newf.result(), Some(Ok(10)));

    let f_exception = lp.create_future();
    f_exception.set_error(RuntimeError("")).unwrap();
    let newf_exception = lp.create_future();
    copy_state(&f_exception, &newf_exception);
    assert!(newf_exception.is_done());
    assert_eq!(
        newf_exception.result(),
        Some(Err(FutureError::Failed(RuntimeError(""))))
    );

    let f_cancelled = lp.create_future();
    f_cancelled.cancel();
    let newf_cancelled = lp.create_future();
    copy_state(&f_cancelled, &newf_cancelled);
    assert!(newf_cancelled.is_cancelled());
}

/// `(loop, reports)`: a loop whose exception handler records what it is told (CPython mocks
/// `asyncio.base_events.logger`).
fn logged_loop() -> (EventLoop, Rc<RefCell<Vec<common::Report>>>) {
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    (lp, reports)
}

#[test]
fn test_tb_logger_abandoned() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<()> = lp.create_future();
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_tb_logger_not_called_after_cancel() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<(), RuntimeError> = lp.create_future();
    fut.set_error(RuntimeError("")).unwrap();
    assert!(!fut.cancel());
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_tb_logger_result_unretrieved() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<i32> = lp.create_future();
    fut.set_result(42).unwrap();
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_tb_logger_result_retrieved() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<i32> = lp.create_future();
    fut.set_result(42).unwrap();
    assert_eq!(fut.result(), Some(Ok(42)));
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_tb_logger_exception_unretrieved() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<(), RuntimeError> = lp.create_future();
    let other_handle = fut.clone();
    fut.set_error(RuntimeError("boom")).unwrap();
    drop(fut);
    run_one(&lp);
    // Reported when the last handle goes, not before.
    assert!(reports.borrow().is_empty());
    drop(other_handle);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].message, "Future exception was never retrieved");
}

#[test]
fn test_tb_logger_exception_retrieved() {
    // asyncio reads it with exception(); here by awaiting the future.
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<(), RuntimeError> = lp.create_future();
    fut.set_error(RuntimeError("boom")).unwrap();
    let out = lp.run_until_complete(fut.clone()).unwrap();
    assert_eq!(out, Err(FutureError::Failed(RuntimeError("boom"))));
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_tb_logger_exception_result_retrieved() {
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<(), RuntimeError> = lp.create_future();
    fut.set_error(RuntimeError("boom")).unwrap();
    assert!(fut.result().unwrap().is_err());
    drop(fut);
    assert!(reports.borrow().is_empty());
}

#[test]
fn test_future_exception_never_retrieved() {
    // CPython's check: the loop's handler is called with the message (and the exception; the
    // context here carries only the message).
    let (lp, reports) = logged_loop();
    let fut: LoopFuture<(), RuntimeError> = lp.create_future();
    let setter = fut.clone();
    lp.call_soon(move || setter.set_error(RuntimeError("ERR")).unwrap());
    run_one(&lp);
    assert!(fut.is_done());
    drop(fut);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].message, "Future exception was never retrieved");
}

#[test]
fn test_set_result_unless_cancelled() {
    let lp = EventLoop::new().unwrap();
    let fut: LoopFuture<i32> = lp.create_future();
    fut.cancel();
    // asyncio's `_set_result_unless_cancelled(fut, 2)`: here `set_result` refuses.
    assert_eq!(fut.set_result(2).unwrap_err().into_inner(), 2);
    assert!(fut.is_cancelled());
}

#[test]
fn test_future_stop_iteration_args() {
    let lp = EventLoop::new().unwrap();
    let fut: LoopFuture<(i32, i32)> = lp.create_future();
    fut.set_result((1, 2)).unwrap();
    // Polled once, it is ready at once with the tuple.
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok((1, 2))));
}

// -- done callbacks (CPython's BaseFutureDoneCallbackTests) --

#[test]
fn test_callbacks_remove_first_callback() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<&str> = lp.create_future();
    let cb1 = f.add_done_callback(make_callback(&bag, 42));
    f.add_done_callback(make_callback(&bag, 17));
    f.add_done_callback(make_callback(&bag, 100));
    assert!(f.remove_done_callback(cb1));
    assert!(!f.remove_done_callback(cb1));
    assert!(bag.borrow().is_empty());
    f.set_result("foo").unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [17, 100]);
    assert_eq!(f.result(), Some(Ok("foo")));
}

#[test]
fn test_callbacks_remove_first_and_second_callback() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<&str> = lp.create_future();
    let cb1 = f.add_done_callback(make_callback(&bag, 42));
    let cb2 = f.add_done_callback(make_callback(&bag, 17));
    f.add_done_callback(make_callback(&bag, 100));
    assert!(f.remove_done_callback(cb1));
    assert!(f.remove_done_callback(cb2));
    assert!(!f.remove_done_callback(cb1));
    assert!(bag.borrow().is_empty());
    f.set_result("foo").unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [100]);
    assert_eq!(f.result(), Some(Ok("foo")));
}

#[test]
fn test_callbacks_remove_third_callback() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<&str> = lp.create_future();
    f.add_done_callback(make_callback(&bag, 42));
    f.add_done_callback(make_callback(&bag, 17));
    let cb3 = f.add_done_callback(make_callback(&bag, 100));
    assert!(f.remove_done_callback(cb3));
    assert!(!f.remove_done_callback(cb3));
    assert!(bag.borrow().is_empty());
    f.set_result("foo").unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [42, 17]);
    assert_eq!(f.result(), Some(Ok("foo")));
}

#[test]
fn test_callbacks_invoked_on_set_result() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<&str> = lp.create_future();
    f.add_done_callback(make_callback(&bag, 42));
    f.add_done_callback(make_callback(&bag, 17));
    assert!(bag.borrow().is_empty());
    f.set_result("foo").unwrap();
    // Scheduled with call_soon: nothing ran yet.
    assert!(bag.borrow().is_empty());
    run_one(&lp);
    assert_eq!(*bag.borrow(), [42, 17]);
    assert_eq!(f.result(), Some(Ok("foo")));
}

#[test]
fn test_callbacks_invoked_on_set_exception() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<(), RuntimeError> = lp.create_future();
    f.add_done_callback(make_callback(&bag, 100));
    assert!(bag.borrow().is_empty());
    let exc = RuntimeError("");
    f.set_error(exc.clone()).unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [100]);
    assert_eq!(f.result(), Some(Err(FutureError::Failed(exc))));
}

#[test]
fn test_remove_done_callback() {
    // CPython removes "every instance of cb1" at once and counts them; a closure has no
    // equality, so each registration is removed by its id and the removals are counted.
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<&str> = lp.create_future();
    let mut cb1 = vec![f.add_done_callback(make_callback(&bag, 1))];
    let cb2 = f.add_done_callback(make_callback(&bag, 2));
    // One instance of cb2 removed. Now there's only one cb1.
    assert_eq!(usize::from(f.remove_done_callback(cb2)), 1);
    // Never had any cb3 in there: an id removed before stands for it.
    assert_eq!(usize::from(f.remove_done_callback(cb2)), 0);
    // After this there will be 6 instances of cb1 and one of cb2.
    f.add_done_callback(make_callback(&bag, 2));
    for _ in 0..5 {
        cb1.push(f.add_done_callback(make_callback(&bag, 1)));
    }
    // Remove all instances of cb1. One cb2 remains.
    let removed = cb1.iter().filter(|id| f.remove_done_callback(**id)).count();
    assert_eq!(removed, 6);
    assert!(bag.borrow().is_empty());
    f.set_result("foo").unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [2]);
    assert_eq!(f.result(), Some(Ok("foo")));
}

#[test]
fn test_schedule_callbacks_list_mutation_1() {
    // A callback that removes later ones once they are scheduled: too late, they all run.
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let fut: LoopFuture<i32> = lp.create_future();
    let ids: Rc<RefCell<Vec<evloop_core::DoneCallbackId>>> = Rc::default();
    let (i, b) = (ids.clone(), bag.clone());
    fut.add_done_callback(move |f| {
        for id in i.borrow().iter() {
            assert!(!f.remove_done_callback(*id));
        }
        b.borrow_mut().push(0);
    });
    ids.borrow_mut()
        .push(fut.add_done_callback(make_callback(&bag, 1)));
    ids.borrow_mut()
        .push(fut.add_done_callback(make_callback(&bag, 2)));
    fut.set_result(1).unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [0, 1, 2]);
}

// -- Rust-only cases --

#[test]
fn a_callback_added_after_completion_is_scheduled_at_once_not_called() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<i32> = lp.create_future();
    f.set_result(1).unwrap();
    f.add_done_callback(make_callback(&bag, 7));
    assert!(bag.borrow().is_empty());
    run_one(&lp);
    assert_eq!(*bag.borrow(), [7]);
}

#[test]
fn awaiters_and_callbacks_are_woken_in_registration_order() {
    let lp = EventLoop::new().unwrap();
    let bag: Bag = Rc::default();
    let f: LoopFuture<i32> = lp.create_future();
    f.add_done_callback(make_callback(&bag, 1));
    let (fut, b) = (f.clone(), bag.clone());
    let _task = lp.create_task(async move {
        let v = fut.await.unwrap();
        b.borrow_mut().push(v);
    });
    run_one(&lp); // the task starts and waits
    f.add_done_callback(make_callback(&bag, 3));
    f.set_result(2).unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [1, 2, 3]);
}

#[test]
fn every_awaiter_gets_the_result() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<String, RuntimeError> = lp.create_future();
    let tasks: Vec<_> = (0..3)
        .map(|_| lp.create_task(f.clone()))
        .collect::<Vec<_>>();
    run_one(&lp);
    let setter = f.clone();
    lp.call_soon(move || setter.set_result("shared".into()).unwrap());
    for t in tasks {
        assert_eq!(
            lp.run_until_complete(t).unwrap().unwrap(),
            Ok("shared".into())
        );
    }
}

#[test]
fn a_panicking_done_callback_is_reported_and_the_others_run() {
    let (lp, reports) = logged_loop();
    let bag: Bag = Rc::default();
    let f: LoopFuture<i32> = lp.create_future();
    f.add_done_callback(|_| panic!("callback boom"));
    f.add_done_callback(make_callback(&bag, 2));
    f.set_result(1).unwrap();
    run_one(&lp);
    assert_eq!(*bag.borrow(), [2]);
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].message.starts_with("Exception in callback"));
    assert_eq!(reports[0].panic.as_deref(), Some("callback boom"));
}

/// Counts wakes and the waker's drops, to see that an awaiter that gives up is forgotten.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn an_awaiter_dropped_before_completion_takes_its_waker_back() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<i32> = lp.create_future();
    let counter = std::sync::Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut awaiter = Box::pin(f.clone());
    assert_eq!(awaiter.as_mut().poll(&mut cx), Poll::Pending);
    // Polled again with the same waker: still one registration.
    assert_eq!(awaiter.as_mut().poll(&mut cx), Poll::Pending);
    assert_eq!(std::sync::Arc::strong_count(&counter), 3);
    drop(awaiter);
    assert_eq!(std::sync::Arc::strong_count(&counter), 2);
    f.set_result(1).unwrap();
    assert_eq!(counter.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_future_does_not_keep_its_loop_alive() {
    let lp = EventLoop::new().unwrap();
    let f: LoopFuture<i32> = lp.create_future();
    let bag: Bag = Rc::default();
    f.add_done_callback(make_callback(&bag, 1));
    drop(lp);
    assert!(f.get_loop().is_none());
    // The loop is gone: the callback is dropped, never run.
    f.set_result(5).unwrap();
    assert_eq!(f.result(), Some(Ok(5)));
    assert!(bag.borrow().is_empty());
    assert_eq!(Rc::strong_count(&bag), 1);
}

#[test]
fn errors_display_as_asyncio_says() {
    let cancelled: FutureError<std::fmt::Error> = FutureError::Cancelled(None);
    assert_eq!(cancelled.to_string(), "future was cancelled");
    let with_msg: FutureError<std::fmt::Error> = FutureError::Cancelled(Some("bye".into()));
    assert_eq!(with_msg.to_string(), "future was cancelled: bye");
    assert!(with_msg.is_cancelled());
    let failed: FutureError<std::fmt::Error> = FutureError::Failed(std::fmt::Error);
    assert_eq!(failed.to_string(), std::fmt::Error.to_string());
}
