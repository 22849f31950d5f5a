//! Running the loop: `run_forever`, `run_until_complete`, `stop`, and one iteration.

use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use evloop_reactor::coop;

use super::main_task::MainTask;
use crate::error::Error;
use crate::handle::Handle;
use crate::loop_state::EventLoop;
use crate::metrics::{Counters, bump};
use crate::running::RunningGuard;
use crate::shared::Shared;
use crate::timer_heap::Due;
use crate::work::{Injected, Work};

/// The waker of `run_until_complete`'s future: queues `Work::Main` once per wake.
struct MainWaker {
    shared: Arc<Shared>,
    generation: u64,
    queued: AtomicBool,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.shared.send(Injected::Main(self.generation));
        }
    }
}

/// While work is ready, the reactor is polled (without blocking) once every this many
/// iterations (as tokio's `event_interval`); an idle loop blocks in it every iteration.
pub(crate) const EVENT_INTERVAL: u32 = 61;

/// Ready-queue capacity kept however idle the loop gets.
const READY_QUEUE_KEEP: usize = 4096;

/// One run of the loop, for the metrics' busy time and the start/stop events: made after the
/// running guard, dropped on every exit path (unwinding included).
struct Run<'a>(&'a Counters);

impl<'a> Run<'a> {
    fn begin(lp: &'a EventLoop, how: &'static str) -> Run<'a> {
        tracing::debug!(how, "event loop starts");
        lp.inner.counters.run_begins();
        Run(&lp.inner.counters)
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        self.0.run_ends();
        tracing::debug!("event loop stops");
    }
}

impl EventLoop {
    /// Runs until [`stop`](EventLoop::stop) is called.
    ///
    /// `stop(); run_forever()` runs exactly one iteration.
    /// Errors: [`Error::Closed`], [`Error::AlreadyRunning`] (this loop is running),
    /// [`Error::AnotherLoopRunning`] (another loop runs on this thread), [`Error::Io`].
    pub fn run_forever(&self) -> Result<(), Error> {
        self.check_closed()?;
        let _guard = RunningGuard::enter(self)?;
        let _run = Run::begin(self, "run_forever");
        loop {
            self.run_once(&mut |_| {})?;
            if self.inner.shared.stopping.load(Ordering::Acquire) {
                return Ok(());
            }
        }
    }

    /// Runs the loop until `fut` completes and returns its output.
    ///
    /// The future is polled in place on this thread, so it may borrow locals. Other tasks and
    /// callbacks run meanwhile. If [`stop`](EventLoop::stop) ends the run first:
    /// `Err(Error::StoppedBeforeComplete)`. A panic in `fut` propagates (the loop stays usable).
    ///
    /// The future runs as the loop's *main task* (asyncio wraps it in a task too): while it
    /// runs it is in [`all_tasks`](EventLoop::all_tasks) and is
    /// [`current_task`](EventLoop::current_task) inside the future; cancelling it drops the
    /// future and ends the run with `Err(Error::Cancelled)`. When the run returns, the main
    /// task has ended: completed if the future did, else cancelled.
    ///
    /// As in asyncio (whose run stops from the future's done callback), the run ends on the
    /// iteration after the one the future completed in: what its completion scheduled — the
    /// done callbacks of a task it awaited, say — runs before `run_until_complete` returns.
    ///
    /// ```
    /// use evloop_core::EventLoop;
    ///
    /// let lp = EventLoop::new()?;
    /// let mut log = Vec::new();
    /// let n = lp.run_until_complete(async {
    ///     log.push("borrowed");
    ///     evloop_core::yield_now().await;
    ///     7
    /// })?;
    /// assert_eq!((n, log), (7, vec!["borrowed"]));
    ///
    /// let task = lp.create_task(async { 1 });
    /// let seen = std::rc::Rc::new(std::cell::Cell::new(false));
    /// let s = seen.clone();
    /// task.add_done_callback_on(&lp, move |_| s.set(true))?;
    /// assert_eq!(lp.run_until_complete(task)?.unwrap(), 1);
    /// assert!(seen.get()); // the task's done callback ran before the run returned
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    #[track_caller]
    pub fn run_until_complete<F: Future>(&self, fut: F) -> Result<F::Output, Error> {
        self.run_until_complete_at(fut, Location::caller())
    }

    /// [`run_until_complete`](Self::run_until_complete), with the main task's spawn location
    /// (what its `task` span and the task dump show) given rather than taken from the caller:
    /// for a runner built on this crate that calls it on its users' behalf, as `evloop::run`
    /// does with its own caller's location.
    ///
    /// ```
    /// use evloop_core::EventLoop;
    ///
    /// #[track_caller]
    /// fn my_run<F: Future>(lp: &EventLoop, fut: F) -> Result<F::Output, evloop_core::Error> {
    ///     let at = std::panic::Location::caller();
    ///     // ... set-up of the runner's own ...
    ///     lp.run_until_complete_at(fut, at)
    /// }
    ///
    /// let lp = EventLoop::new()?;
    /// assert_eq!(my_run(&lp, async { 7 })?, 7);
    /// # Ok::<(), evloop_core::Error>(())
    /// ```
    pub fn run_until_complete_at<F: Future>(
        &self,
        fut: F,
        location: &'static Location<'static>,
    ) -> Result<F::Output, Error> {
        self.check_closed()?;
        let _guard = RunningGuard::enter(self)?;
        let _run = Run::begin(self, "run_until_complete");
        let generation = self.inner.main_generation.get() + 1;
        self.inner.main_generation.set(generation);
        let main = Arc::new(MainWaker {
            shared: self.inner.shared.clone(),
            generation,
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(main.clone());
        main.wake_by_ref();

        // The future runs as the loop's main task (see `main_task.rs`); it is dropped in place
        // when it completes, when the task is cancelled, or when the run ends.
        let mut fut = pin!(Some(fut));
        let main_task = MainTask::start(self, waker.clone(), location);
        let mut output = None;
        let mut cancelled = false;
        // asyncio stops the run from the future's done callback: on the iteration after the
        // one the future completed in, so the callbacks its completion scheduled run first.
        let mut stop_soon: Option<Handle> = None;
        let mut poll_main = |lp: &EventLoop| {
            if output.is_some() || cancelled {
                return;
            }
            main.queued.store(false, Ordering::Release);
            if main_task.poll_cancelled() {
                main_task.in_span(|| fut.set(None));
                cancelled = true;
                lp.stop();
                return;
            }
            let Some(f) = fut.as_mut().as_pin_mut() else {
                return;
            };
            let mut cx = Context::from_waker(&waker);
            let current = main_task.enter();
            let polled = coop::with_budget(coop::DEFAULT_BUDGET, || f.poll(&mut cx));
            drop(current);
            main_task.polled();
            if let Poll::Ready(out) = polled {
                output = Some(out);
                main_task.in_span(|| fut.set(None));
                main_task.finish(true);
                // A `LoopHandle`, not an `EventLoop`: the queued callback must not keep its
                // own loop alive.
                let stopper = lp.handle();
                stop_soon = Some(lp.call_soon(move || stopper.stop()));
            }
        };
        loop {
            self.run_once(&mut |lp| poll_main(lp))?;
            if self.inner.shared.stopping.load(Ordering::Acquire) {
                break;
            }
        }
        // A stop that came first leaves ours unrun (asyncio's `remove_done_callback`).
        if let Some(h) = stop_soon.take() {
            h.cancel();
        }
        // Stopped before it completed: the tasks the future awaited stay pending (a later run
        // may finish them), so dropping their handles detaches them.
        crate::task::detaching_awaits(|| main_task.in_span(|| fut.set(None)));
        main_task.finish(output.is_some());
        if cancelled {
            return Err(Error::Cancelled);
        }
        output.ok_or(Error::StoppedBeforeComplete)
    }

    /// Asks the loop to stop: the current iteration finishes (callbacks already in it still
    /// run), then `run_forever`/`run_until_complete` return. Called while the loop is not
    /// running, the next run does one iteration.
    pub fn stop(&self) {
        self.inner.shared.stopping.store(true, Ordering::Release);
    }

    fn check_closed(&self) -> Result<(), Error> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// One iteration, as asyncio's `_run_once`: wait for I/O (not at all if work is ready,
    /// else until the next timer), queue due timers, then run exactly the work that was ready
    /// when the iteration started.
    fn run_once(&self, main: &mut dyn FnMut(&EventLoop)) -> Result<(), Error> {
        let inner = &*self.inner;
        let shared = &*inner.shared;
        if shared.ended_unscheduled_any.load(Ordering::Acquire) {
            self.forget_ended_unscheduled();
        }
        shared.drain_injected(&mut inner.ready.borrow_mut());

        let stopping = shared.stopping.load(Ordering::Acquire);
        let timeout = if !inner.ready.borrow().is_empty() || stopping {
            Some(Duration::ZERO)
        } else {
            inner
                .timers
                .borrow_mut()
                .next_deadline()
                .map(|t| t.saturating_duration_since(Instant::now()))
        };
        let waited = if timeout == Some(Duration::ZERO) {
            // Work is ready: look at I/O without blocking, but not on every pass — a reactor
            // wait costs several syscalls — only every EVENT_INTERVAL busy passes, and on the
            // last iteration before a stop.
            let passes = inner.busy_passes.get().wrapping_add(1);
            inner.busy_passes.set(passes);
            if stopping || passes % EVENT_INTERVAL == 0 {
                shared.reactor.wait(timeout)
            } else {
                Ok(0)
            }
        } else {
            // Going to block: publish `parked`, then look at the injector once more (pairs with
            // the fence in `Shared::wake_if_parked`), so that no remote wake is missed.
            shared.parked.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let late_work = !shared.injector.is_empty() || shared.stopping.load(Ordering::SeqCst);
            // Two clock reads per blocking wait (never per task) for the parked time.
            let parked_at = Instant::now();
            let waited = shared.reactor.wait(if late_work {
                Some(Duration::ZERO)
            } else {
                timeout
            });
            inner.counters.parked_for(parked_at.elapsed());
            shared.parked.store(false, Ordering::Relaxed);
            waited
        };
        match waited {
            Ok(0) => {}
            Ok(events) => bump(&inner.counters.io_events, events as u64),
            Err(e) if e.kind() != std::io::ErrorKind::Interrupted => return Err(Error::Io(e)),
            Err(_) => {}
        }
        shared.drain_injected(&mut inner.ready.borrow_mut());

        let now = if inner.timers.borrow().is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        while let Some(now) = now {
            let due = inner.timers.borrow_mut().pop_due(now);
            match due {
                None => break,
                Some(Due::Callback(cell)) => self.push_ready(Work::Timer(cell)),
                Some(Due::Sleep(sleep)) => sleep.fire(),
            }
        }

        // No tracing event here: an event per iteration would flood any subscriber listening
        // at TRACE; the iteration is counted instead (`EventLoop::metrics`).
        bump(&inner.counters.iterations, 1);
        let ntodo = inner.ready.borrow().len();
        for _ in 0..ntodo {
            let item = inner.ready.borrow_mut().pop_front();
            let Some(item) = item else { break };
            self.run_item(item, main);
        }
        // After a burst (say 10^6 spawns) give the queue's memory back once it has drained.
        let mut ready = inner.ready.borrow_mut();
        if ready.capacity() > READY_QUEUE_KEEP && ready.len() < ready.capacity() / 8 {
            let keep = (ready.len() * 2).max(READY_QUEUE_KEEP);
            ready.shrink_to(keep);
        }
        Ok(())
    }

    fn run_item(&self, item: Work, main: &mut dyn FnMut(&EventLoop)) {
        let started = self.get_debug().then(Instant::now);
        let name: std::borrow::Cow<'static, str> = match item {
            Work::Task(r) => self.step_task(r, started.is_some()),
            Work::Spawned(r, at) => {
                self.register_task(&r, Some(at));
                self.step_task(r, started.is_some())
            }
            Work::Callback(cell) => {
                if let Some(f) = cell.callback.take() {
                    bump(&self.inner.counters.callbacks_run, 1);
                    self.call_caught(f, cell.name);
                }
                cell.name.into()
            }
            Work::Timer(cell) => {
                if let Some(f) = cell.take_due() {
                    bump(&self.inner.counters.callbacks_run, 1);
                    self.call_caught(f, cell.name);
                }
                cell.name.into()
            }
            Work::Remote(f) => {
                bump(&self.inner.counters.callbacks_run, 1);
                self.call_caught(f, "call_soon_threadsafe callback");
                "call_soon_threadsafe callback".into()
            }
            Work::Fd(fd, dir, generation) => {
                self.dispatch_fd(fd, dir, generation);
                "fd callback".into()
            }
            Work::Main(generation) => {
                if generation == self.inner.main_generation.get() {
                    main(self);
                }
                "run_until_complete future".into()
            }
            Work::Sleep(sleep) => {
                let (when, state) = *sleep;
                self.push_sleep(when, state);
                "sleep".into()
            }
            Work::Report(ctx) => {
                self.call_exception_handler(*ctx);
                "exception handler".into()
            }
        };
        if let Some(started) = started {
            let took = started.elapsed();
            if took >= self.slow_callback_duration() {
                tracing::warn!("Executing {} took {:.3} seconds", name, took.as_secs_f64());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // the loop waits in epoll
    fn the_ready_queue_gives_memory_back_after_a_burst() -> Result<(), Error> {
        let lp = EventLoop::new()?;
        for _ in 0..100_000 {
            lp.call_soon(|| {});
        }
        assert!(lp.inner.ready.borrow().capacity() >= 100_000);
        lp.stop();
        lp.run_forever()?;
        let capacity = lp.inner.ready.borrow().capacity();
        assert!(capacity <= 2 * READY_QUEUE_KEEP, "kept {capacity} slots");
        Ok(())
    }

    /// A task cancelled inline (its awaited handle dropped) never passes through the loop's
    /// queue; the loop still forgets it, at its next iteration.
    #[test]
    #[cfg_attr(miri, ignore)] // the loop waits in epoll
    fn a_task_cancelled_inline_leaves_the_task_table() -> Result<(), Error> {
        let lp = EventLoop::new()?;
        let inner = lp.create_task(std::future::pending::<()>());
        let inner_ref = inner.as_ref();
        let outer = lp.create_task(inner);
        lp.stop();
        lp.run_forever()?;
        assert_eq!(lp.inner.tasks.borrow().iter().count(), 2);
        outer.cancel();
        lp.stop();
        lp.run_forever()?;
        assert!(inner_ref.is_cancelled());
        lp.stop();
        lp.run_forever()?;
        assert_eq!(lp.inner.tasks.borrow().iter().count(), 0);
        Ok(())
    }
}
