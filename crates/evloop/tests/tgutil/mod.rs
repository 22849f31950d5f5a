//! Helpers of `taskgroups.rs`: CPython's exceptions, `get_error_types`, and the shapes of
//! `except CancelledError:` / `finally: raise` in Rust.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::panic::panic_any;
use std::rc::Rc;
use std::time::Duration;

use evloop::{EventLoop, ExceptionContext, TaskGroupError, TaskGroupErrors, yield_now};

/// The exceptions of the CPython tests that are values (`Err`) in Rust.
#[derive(Debug)]
pub(crate) enum Exc {
    ZeroDivision,
    Value(u64),
    Custom,
    /// An inner group's `ExceptionGroup`, raised out of an outer group's body.
    Group(TaskGroupErrors<Exc>),
}

impl Exc {
    fn type_name(&self) -> &'static str {
        match self {
            Exc::ZeroDivision => "ZeroDivisionError",
            Exc::Value(_) => "ValueError",
            Exc::Custom => "CustomException",
            Exc::Group(_) => "ExceptionGroup",
        }
    }
}

/// Exceptions raised as panics (`panic_any(..)`): in destructors, and `BaseException`s.
pub(crate) struct ZeroDivisionError;
pub(crate) struct MyExc;
pub(crate) struct MyBaseExc;
pub(crate) struct TypeError;
pub(crate) struct CustomException;

pub(crate) fn panic_type(payload: &(dyn std::any::Any + Send)) -> &'static str {
    if payload.is::<ZeroDivisionError>() {
        "ZeroDivisionError"
    } else if payload.is::<MyExc>() {
        "MyExc"
    } else if payload.is::<MyBaseExc>() {
        "MyBaseExc"
    } else if payload.is::<TypeError>() {
        "TypeError"
    } else if payload.is::<CustomException>() {
        "CustomException"
    } else {
        "other panic"
    }
}

/// CPython's `get_error_types(eg)`: the set of exception types in the group.
pub(crate) fn error_types(errors: &TaskGroupErrors<Exc>) -> BTreeSet<&'static str> {
    errors
        .iter()
        .map(|e| match e {
            TaskGroupError::Failed(exc) => exc.type_name(),
            TaskGroupError::Panicked(p) => panic_type(p.as_ref()),
        })
        .collect()
}

pub(crate) fn set(types: &[&'static str]) -> BTreeSet<&'static str> {
    types.iter().copied().collect()
}

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

/// `except asyncio.CancelledError: <f>; raise`: runs `f` if dropped before `done()`.
pub(crate) struct OnCancel<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnCancel<F> {
    pub(crate) fn new(f: F) -> OnCancel<F> {
        OnCancel(Some(f))
    }

    pub(crate) fn done(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnCancel<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// `finally: raise <payload>` in a coroutine that is cancelled: panics when dropped.
pub(crate) struct RaiseOnDrop(Option<Box<dyn FnOnce()>>);

impl RaiseOnDrop {
    pub(crate) fn new<P: std::any::Any + Send + 'static>(payload: P) -> RaiseOnDrop {
        RaiseOnDrop(Some(Box::new(move || panic_any(payload))))
    }
}

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        if let Some(raise) = self.0.take() {
            raise();
        }
    }
}

/// Collects what reaches the running loop's exception handler: (message, panic type).
pub(crate) fn collect_exceptions() -> Rc<RefCell<Vec<(String, &'static str)>>> {
    let seen: Rc<RefCell<Vec<(String, &'static str)>>> = Rc::default();
    let s = seen.clone();
    let lp = evloop::get_running_loop().expect("running loop");
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        let kind = ctx.panic_payload().map_or("no panic", panic_type);
        s.borrow_mut().push((ctx.message().to_string(), kind));
    }));
    seen
}

/// Waits (yielding to the loop, no timers) until `counter` reaches `n`.
pub(crate) async fn until(counter: &Cell<u32>, n: u32) {
    while counter.get() < n {
        yield_now().await;
    }
}
