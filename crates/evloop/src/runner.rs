//! `run()` and `Runner`: asyncio's `asyncio.run` and `asyncio.Runner`.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use evloop_core::{Error, EventLoop, TaskRef};

use crate::signal;

type LoopFactory = Box<dyn Fn() -> Result<EventLoop, Error>>;

/// Runs `fut` to completion on a new event loop, then shuts the loop down (`asyncio.run`).
///
/// In order: creates a loop (the policy's [`new_event_loop`](crate::new_event_loop)), makes it
/// this thread's current loop, runs `fut` on it, then cancels every task still pending and
/// runs the loop until they have finished ([`EventLoop::cancel_all_tasks`]), shuts down the
/// default executor ([`shutdown_default_executor`](crate::executor::shutdown_default_executor)),
/// unsets the current loop (`set_event_loop(None)`, as asyncio does: the previous current loop
/// is not restored) and closes the loop. The clean-up also happens when `fut` panics; the
/// panic then resumes. `fut` need not be `'static` or `Send`: it is polled in place on this
/// thread.
///
/// A task that fails while the shutdown cancels it (its future panics while being dropped)
/// is reported to the loop's exception handler as "unhandled exception during run()
/// shutdown", with the task ([`ExceptionContext::task`](crate::ExceptionContext::task)) and
/// the panic, as asyncio reports it; `run` still returns `fut`'s output.
///
/// Errors: [`Error::RunInRunningLoop`] when called while a loop runs on this thread (nothing
/// is created or changed then); [`Error::Interrupted`] when Ctrl-C interrupted it (main thread
/// only: the first SIGINT cancels the main task, `fut`; see [`Runner::run`]);
/// [`Error::Io`] if the loop cannot be created; or an error from the shutdown.
///
/// ```
/// use std::time::Duration;
///
/// let answer = evloop::run(async {
///     let task = evloop::spawn(async { 6 * 7 });
///     let lp = evloop::get_running_loop().unwrap();
///     evloop_core::sleep(&lp, Duration::from_millis(1)).await;
///     task.await.unwrap()
/// })?;
/// assert_eq!(answer, 42);
///
/// // Not from inside a running loop:
/// let nested = evloop::run(async { evloop::run(async {}) })?;
/// assert_eq!(nested.unwrap_err().to_string(), "run() cannot be called from a running event loop");
/// # Ok::<(), evloop::Error>(())
/// ```
///
/// A hanging task whose clean-up fails when the shutdown cancels it:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use evloop::{EventLoop, ExceptionContext};
///
/// struct Connection;
/// impl Drop for Connection {
///     fn drop(&mut self) {
///         panic!("could not say goodbye");
///     }
/// }
///
/// let reports = Arc::new(Mutex::new(Vec::new()));
/// let sink = reports.clone();
/// let (out, hanging) = evloop::run(async move {
///     let lp = evloop::get_running_loop().unwrap();
///     lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
///         let task = ctx.task().map(|t| t.id());
///         sink.lock().unwrap().push((ctx.message().to_owned(), task));
///     }));
///     let conn = Connection;
///     let hanging = evloop::spawn(async move {
///         let _conn = conn;
///         std::future::pending::<()>().await;
///     });
///     ("done", hanging.id())
/// })?;
/// assert_eq!(out, "done");
/// let reports = reports.lock().unwrap();
/// assert_eq!(*reports, [("unhandled exception during run() shutdown".to_owned(), Some(hanging))]);
/// # Ok::<(), evloop::Error>(())
/// ```
#[track_caller]
pub fn run<F: Future>(fut: F) -> Result<F::Output, Error> {
    let mut runner = Runner::new();
    let out = runner.run(fut);
    let closed = runner.close();
    match (out, closed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), closed) => {
            if let Err(close_err) = closed {
                tracing::error!(error = %close_err, "evloop::run: shutting the loop down failed");
            }
            Err(e)
        }
    }
}

enum State {
    /// No loop yet (created on the first `run` or `get_loop`).
    Initial,
    /// The runner's loop.
    Ready(EventLoop),
    /// After `close`.
    Closed,
}

/// Runs several futures on one loop, then shuts it down (`asyncio.Runner`).
///
/// The loop is created lazily, on the first [`run`](Runner::run) or
/// [`get_loop`](Runner::get_loop), and made this thread's current loop (once: the policy's
/// `set_event_loop` is called once when the loop is made and once, with `None`, when the
/// runner closes, not per `run`); every `run` uses that same loop. [`close`](Runner::close)
/// (or dropping the runner) shuts it down as [`run`] does: pending tasks cancelled and awaited
/// (a task failing meanwhile is reported as "unhandled exception during run() shutdown", with
/// the task), default executor shut down, current loop unset, loop closed. After that, `run`
/// and `get_loop` are `Err(Error::Closed)`.
///
/// ```
/// use evloop::Runner;
///
/// let mut runner = Runner::new();
/// let lp = runner.get_loop()?;
/// let one = runner.run(async { 1 })?;
/// let two = runner.run(async { evloop::get_running_loop().unwrap() })?;
/// assert!(one == 1 && two == lp); // the same loop for every run
/// assert!(evloop::get_event_loop()? == lp); // and it is the current loop
/// runner.close()?;
/// assert!(lp.is_closed());
/// assert!(matches!(runner.run(async {}), Err(evloop::Error::Closed)));
/// # Ok::<(), evloop::Error>(())
/// ```
pub struct Runner {
    state: State,
    debug: Option<bool>,
    factory: Option<LoopFactory>,
    ctrl_c: bool,
}

/// Configures a [`Runner`]: `Runner::builder().debug(true).loop_factory(..).build()`.
///
/// ```
/// use evloop::{EventLoop, Runner};
///
/// let mut runner = Runner::builder()
///     .debug(true)
///     .loop_factory(|| {
///         let lp = EventLoop::new()?;
///         lp.set_slow_callback_duration(std::time::Duration::from_millis(10));
///         Ok(lp)
///     })
///     .build();
/// let lp = runner.get_loop()?;
/// assert!(lp.get_debug());
/// assert_eq!(lp.slow_callback_duration().as_millis(), 10);
/// # Ok::<(), evloop::Error>(())
/// ```
#[must_use = "a builder does nothing until `build()`"]
pub struct RunnerBuilder {
    debug: Option<bool>,
    factory: Option<LoopFactory>,
    ctrl_c: bool,
}

impl RunnerBuilder {
    /// Sets the loop's debug mode (see `EventLoop::set_debug`). Unset: the loop's own default
    /// (on if the environment has `EVLOOP_DEBUG=1`).
    pub fn debug(mut self, on: bool) -> RunnerBuilder {
        self.debug = Some(on);
        self
    }

    /// Makes the runner's loop with `factory` instead of the policy's
    /// [`new_event_loop`](crate::new_event_loop). The loop is still made the thread's current
    /// loop while the runner is open.
    pub fn loop_factory(
        mut self,
        factory: impl Fn() -> Result<EventLoop, Error> + 'static,
    ) -> RunnerBuilder {
        self.factory = Some(Box::new(factory));
        self
    }

    /// Whether `run` on the main thread turns the first Ctrl-C into [`Error::Interrupted`]
    /// (default: `true`). Turn it off when the program handles SIGINT itself.
    pub fn ctrl_c(mut self, on: bool) -> RunnerBuilder {
        self.ctrl_c = on;
        self
    }

    /// The runner. It creates its loop on first use.
    pub fn build(self) -> Runner {
        Runner {
            state: State::Initial,
            debug: self.debug,
            factory: self.factory,
            ctrl_c: self.ctrl_c,
        }
    }
}

impl fmt::Debug for RunnerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerBuilder")
            .field("debug", &self.debug)
            .field("loop_factory", &self.factory.is_some())
            .field("ctrl_c", &self.ctrl_c)
            .finish()
    }
}

impl Default for Runner {
    fn default() -> Runner {
        Runner::new()
    }
}

impl Runner {
    /// A runner with the default settings (no loop is created yet).
    pub fn new() -> Runner {
        Runner::builder().build()
    }

    /// A builder to configure the runner's loop.
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder {
            debug: None,
            factory: None,
            ctrl_c: true,
        }
    }

    /// The runner's loop, created (and made the thread's current loop) if this is the first
    /// use. `Err(Error::Closed)` after [`close`](Runner::close).
    pub fn get_loop(&mut self) -> Result<EventLoop, Error> {
        match &self.state {
            State::Ready(lp) => Ok(lp.clone()),
            State::Closed => Err(Error::Closed),
            State::Initial => {
                let lp = match &self.factory {
                    Some(factory) => factory()?,
                    None => evloop_policy::new_event_loop()?,
                };
                if let Some(on) = self.debug {
                    lp.set_debug(on);
                }
                evloop_policy::set_event_loop(Some(&lp));
                self.state = State::Ready(lp.clone());
                Ok(lp)
            }
        }
    }

    /// Runs `fut` to completion on the runner's loop and returns its output
    /// (`asyncio.Runner.run`). Tasks it spawns and leaves running stay on the loop for the
    /// next `run`, until [`close`](Runner::close) cancels them.
    ///
    /// The loop was made this thread's current loop when the runner created it, once for the
    /// runner's life (asyncio's `Runner` calls the policy's `set_event_loop` once, not per
    /// run); `run` does not set it again. On the main thread (see
    /// [`is_main_thread`](evloop_policy::is_main_thread)), unless turned off with
    /// [`RunnerBuilder::ctrl_c`], a SIGINT listener is installed for the duration of the run:
    /// the first Ctrl-C cancels the main task (the task `fut` runs as, asyncio's rule) and the
    /// run returns `Err(Error::Interrupted)` — or `Err(Error::Cancelled)` if something else had
    /// cancelled the main task too; a second one before that terminates the process; after the
    /// run, Ctrl-C terminates the process as usual (details in [`signal`]).
    ///
    /// If `fut` panics, the runner is closed (as a `with asyncio.Runner()` block would be on
    /// an exception), then the panic resumes.
    ///
    /// Errors: [`Error::RunInRunningLoop`] if a loop runs on this thread; [`Error::Closed`]
    /// after `close`; [`Error::Interrupted`]; [`Error::StoppedBeforeComplete`] if the loop was
    /// stopped before `fut` completed; [`Error::Io`].
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// let mut runner = evloop::Runner::new();
    /// let counter = Cell::new(0);
    /// for _ in 0..3 {
    ///     runner.run(async { counter.set(counter.get() + 1) })?; // borrows locals
    /// }
    /// assert_eq!(counter.get(), 3);
    /// # Ok::<(), evloop::Error>(())
    /// ```
    #[track_caller]
    pub fn run<F: Future>(&mut self, fut: F) -> Result<F::Output, Error> {
        // The main task's spawn location (its `task` span, the task dump): the caller's.
        let location = std::panic::Location::caller();
        if evloop_core::running_loop().is_some() {
            return Err(Error::RunInRunningLoop);
        }
        let lp = self.get_loop()?;

        let interrupt = if self.ctrl_c && evloop_policy::is_main_thread() {
            match signal::run_interrupt(&lp) {
                Ok(interrupt) => Some(interrupt),
                Err(e) => {
                    tracing::warn!(error = %e, "evloop: cannot watch Ctrl-C during this run");
                    None
                }
            }
        } else {
            None
        };
        let interrupted = Rc::new(Cell::new(None));
        // Not watching: a signal that never comes (a zero-sized box, no allocation).
        let interrupt = interrupt.unwrap_or_else(|| Box::pin(std::future::pending()));
        let cancelled_by_ctrl_c = interrupted.clone();
        let main = cancel_main_on(fut, interrupt, move |main| {
            cancelled_by_ctrl_c.set(Some(main));
        });

        match catch_unwind(AssertUnwindSafe(|| {
            lp.run_until_complete_at(main, location)
        })) {
            Ok(Err(Error::Cancelled)) => match interrupted.take() {
                // Ctrl-C cancelled the main task, and nothing else did (asyncio: `uncancel()`
                // back to 0 makes it a `KeyboardInterrupt`).
                Some(main) if main.uncancel() == 0 => Err(Error::Interrupted),
                _ => Err(Error::Cancelled),
            },
            Ok(result) => result,
            Err(panic) => {
                if let Err(e) = self.close() {
                    tracing::error!(error = %e, "evloop: closing the runner after a panic failed");
                }
                resume_unwind(panic)
            }
        }
    }

    /// Shuts the runner's loop down and closes it (`asyncio.Runner.close`): cancels every task
    /// still pending and runs the loop until they have finished
    /// ([`EventLoop::cancel_all_tasks`]: a task that fails while being cancelled is reported
    /// to the exception handler as "unhandled exception during run() shutdown", with the
    /// task), shuts down the default executor
    /// ([`shutdown_default_executor`](crate::executor::shutdown_default_executor)), unsets the
    /// thread's current loop (`set_event_loop(None)`) and closes the loop. Idempotent; a
    /// runner that never made its loop just becomes closed.
    ///
    /// The loop is closed even if a step fails; the first error is returned.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut runner = evloop::Runner::new();
    /// let forever = runner.run(async { evloop::spawn(std::future::pending::<()>()) })?;
    /// assert!(!forever.is_done());
    /// runner.close()?;
    /// assert!(forever.is_cancelled());
    /// assert!(evloop::get_event_loop().is_err()); // unset
    /// runner.close()?; // again: nothing to do
    /// # Ok::<(), evloop::Error>(())
    /// ```
    pub fn close(&mut self) -> Result<(), Error> {
        let lp = match std::mem::replace(&mut self.state, State::Closed) {
            State::Ready(lp) => lp,
            State::Initial | State::Closed => return Ok(()),
        };
        let mut result = Ok(());
        if !lp.is_closed() {
            result = lp.cancel_all_tasks();
            crate::executor::shutdown_default_executor(&lp);
            crate::protocol::close_all(&lp);
        }
        evloop_policy::set_event_loop(None);
        let closed = lp.close();
        result.and(closed)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "evloop: closing a dropped runner failed");
        }
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Initial => "initial",
            State::Ready(_) => "ready",
            State::Closed => "closed",
        };
        f.debug_struct("Runner").field("state", &state).finish()
    }
}

/// `fut`, with `signal` polled alongside: when `signal` completes, the main task — the task
/// this future runs as — is cancelled like any task (asyncio's Runner does that on Ctrl-C,
/// and `evloop::multi` on a joint stop), and `on_cancel` gets it (to tell that cancellation
/// from others).
pub(crate) async fn cancel_main_on<F: Future>(
    fut: F,
    signal: impl Future<Output = ()>,
    on_cancel: impl FnOnce(TaskRef),
) -> F::Output {
    let mut fut = pin!(fut);
    let mut signal = pin!(signal);
    let mut on_cancel = Some(on_cancel);
    poll_fn(|cx| {
        if on_cancel.is_some() && signal.as_mut().poll(cx).is_ready() {
            if let (Some(f), Ok(Some(main))) = (on_cancel.take(), crate::current_task()) {
                main.cancel();
                f(main);
                // The future is dropped when this poll returns.
                return Poll::Pending;
            }
        }
        fut.as_mut().poll(cx)
    })
    .await
}
