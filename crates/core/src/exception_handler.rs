//! The loop's exception handler, and containing panics with it: `call_caught` (a callback),
//! `drop_caught`/`destroy_caught` (a destructor), `drop_reported` (a destructor, with no loop
//! at hand: the running loop's handler).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use crate::exception::{ExceptionContext, log_exception};
use crate::loop_state::{EventLoop, ExceptionHandler};
use crate::running;

impl EventLoop {
    /// Sets the handler called for errors nobody else can receive (panicking callbacks,
    /// unread task panics, tasks destroyed while pending). `None` restores the default, e.g.
    /// `lp.set_exception_handler(None::<fn(&EventLoop, &ExceptionContext)>)`.
    ///
    /// ```
    /// use evloop_core::{EventLoop, ExceptionContext};
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let lp = EventLoop::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let s = seen.clone();
    /// lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
    ///     s.borrow_mut().push(ctx.message().to_string());
    /// }));
    /// lp.call_soon(|| panic!("boom"));
    /// lp.stop();
    /// lp.run_forever()?; // the panic is caught; the loop goes on
    /// assert!(seen.borrow()[0].starts_with("Exception in callback"));
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn set_exception_handler(
        &self,
        handler: Option<impl Fn(&EventLoop, &ExceptionContext) + 'static>,
    ) {
        let handler = handler.map(|h| Rc::new(h) as ExceptionHandler);
        let old = self.inner.exception_handler.replace(handler);
        drop(old);
    }

    /// The handler set with [`set_exception_handler`](EventLoop::set_exception_handler).
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.inner.exception_handler.borrow().clone()
    }

    /// Hands `ctx` to the exception handler (the default one if none is set). A handler that
    /// panics is reported through the default handler.
    pub fn call_exception_handler(&self, ctx: ExceptionContext) {
        let handler = self.get_exception_handler();
        match handler {
            None => self.default_exception_handler(&ctx),
            Some(h) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(|| h(self, &ctx))) {
                    self.default_exception_handler(
                        &ExceptionContext::new("Unhandled error in exception handler")
                            .with_panic(payload),
                    );
                    self.default_exception_handler(&ctx);
                }
            }
        }
    }

    /// The default handler: logs `ctx` with `tracing::error!`.
    pub fn default_exception_handler(&self, ctx: &ExceptionContext) {
        log_exception(ctx);
    }

    /// Drops `value`; a panic in its destructor goes to the exception handler, as
    /// "Exception in the destructor of {what}".
    pub(crate) fn drop_caught<T>(&self, value: T, what: &str) {
        self.destroy_caught(move || drop(value), what);
    }

    /// Runs `f`, which destroys something (drops it, cancels it, wakes its last waker); a
    /// panic goes to the exception handler as for [`drop_caught`](Self::drop_caught).
    pub(crate) fn destroy_caught(&self, f: impl FnOnce(), what: &str) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.call_exception_handler(destructor_panic(what, payload));
        }
    }

    /// Runs a callback; a panic goes to the exception handler and the loop goes on.
    pub(crate) fn call_caught(&self, f: impl FnOnce(), name: &str) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            self.call_exception_handler(
                ExceptionContext::new(format!("Exception in callback {name}")).with_panic(payload),
            );
        }
    }
}

fn destructor_panic(what: &str, payload: Box<dyn std::any::Any + Send>) -> ExceptionContext {
    ExceptionContext::new(format!("Exception in the destructor of {what}")).with_panic(payload)
}

/// [`EventLoop::drop_caught`] for code that has no loop at hand (a `Handle` cancelled by user
/// code): the handler of the loop running on this thread, else the default one.
pub(crate) fn drop_reported<T>(value: T, what: &str) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        let ctx = destructor_panic(what, payload);
        match running::running_loop() {
            Some(lp) => lp.call_exception_handler(ctx),
            None => log_exception(&ctx),
        }
    }
}
