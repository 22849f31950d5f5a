//! asyncio's `add_reader`/`add_writer`: level-triggered fd callbacks on the loop.
//!
//! Each watched fd is registered with the reactor once, level-triggered. A readiness wake
//! queues `Work::Fd`; running it clears the readiness, calls the callback, and re-arms. While
//! the fd stays ready the reactor reports it again on the next wait, so the callback runs
//! once per iteration, as in asyncio.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use evloop_reactor::{Direction, Source};

use super::EventLoop;
use crate::error::Error;
use crate::work::{Injected, Shared};

type FdCallback = Rc<RefCell<Box<dyn FnMut()>>>;

struct FdWatch {
    source: Arc<Source>,
    generation: u64,
    reader: Option<FdCallback>,
    writer: Option<FdCallback>,
}

impl FdWatch {
    fn slot(&mut self, dir: Direction) -> &mut Option<FdCallback> {
        match dir {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }
}

/// The loop's watched fds.
#[derive(Default)]
pub(crate) struct FdWatchers {
    map: HashMap<RawFd, FdWatch>,
    generation: u64,
}

/// Queues `Work::Fd` when the reactor reports the fd ready.
struct FdWaker {
    shared: Arc<Shared>,
    fd: RawFd,
    dir: Direction,
    generation: u64,
}

impl Wake for FdWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.shared
            .send(Injected::Fd(self.fd, self.dir, self.generation));
    }
}

impl EventLoop {
    /// Calls `f` whenever `fd` is readable (once per iteration while it stays readable).
    /// Replaces an earlier reader of `fd`. The reactor watches a duplicate of `fd` until
    /// [`remove_reader`](EventLoop::remove_reader)/[`remove_writer`](EventLoop::remove_writer)
    /// (or `close`), so call those before closing `fd`: until then the file stays open.
    pub fn add_reader(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), Error> {
        self.add_watch(fd, Direction::Read, Box::new(f))
    }

    /// Calls `f` whenever `fd` is writable. See [`add_reader`](EventLoop::add_reader).
    pub fn add_writer(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), Error> {
        self.add_watch(fd, Direction::Write, Box::new(f))
    }

    /// Stops watching `fd` for reading. True if it was watched.
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Direction::Read)
    }

    /// Stops watching `fd` for writing. True if it was watched.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.remove_watch(fd, Direction::Write)
    }

    fn add_watch(&self, fd: RawFd, dir: Direction, f: Box<dyn FnMut()>) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if fd < 0 {
            return Err(Error::Io(std::io::Error::from_raw_os_error(9))); // EBADF
        }
        let (generation, old) = {
            let mut guard = self.inner.fds.borrow_mut();
            let fds = &mut *guard;
            if !fds.map.contains_key(&fd) {
                // The borrow lasts only for the registration call, which duplicates the fd
                // (the reactor watches and later closes its own copy).
                // SAFETY: `fd` is not negative (checked above), so it is a valid `BorrowedFd`
                // value, and the caller keeps it open during the call (add_reader's contract).
                let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
                let source = self.reactor().register_level(borrowed)?;
                fds.generation += 1;
                let watch = FdWatch {
                    source,
                    generation: fds.generation,
                    reader: None,
                    writer: None,
                };
                fds.map.insert(fd, watch);
            }
            let watch = fds.map.get_mut(&fd).ok_or(Error::Closed)?;
            let old = watch.slot(dir).replace(Rc::new(RefCell::new(f)));
            (watch.generation, old)
        };
        // Dropped outside the borrow: a callback's destructor may call back into the loop.
        self.drop_caught(old, "an add_reader/add_writer callback");
        self.arm_fd(fd, dir, generation);
        Ok(())
    }

    fn remove_watch(&self, fd: RawFd, dir: Direction) -> bool {
        let mut fds = self.inner.fds.borrow_mut();
        let Some(watch) = fds.map.get_mut(&fd) else {
            return false;
        };
        let old = watch.slot(dir).take();
        let removed = if watch.reader.is_none() && watch.writer.is_none() {
            fds.map.remove(&fd)
        } else {
            None
        };
        drop(fds);
        if let Some(watch) = removed {
            if let Err(e) = self.reactor().deregister(&watch.source) {
                tracing::debug!(fd, error = %e, "deregistering a watched fd failed");
            }
        }
        let had = old.is_some();
        self.drop_caught(old, "an add_reader/add_writer callback");
        had
    }

    /// Waits for readiness of `fd` in `dir` with a waker that queues `Work::Fd`.
    fn arm_fd(&self, fd: RawFd, dir: Direction, generation: u64) {
        let source = {
            let fds = self.inner.fds.borrow();
            match fds.map.get(&fd) {
                Some(w) if w.generation == generation => w.source.clone(),
                _ => return,
            }
        };
        let waker = Waker::from(Arc::new(FdWaker {
            shared: self.inner.shared.clone(),
            fd,
            dir,
            generation,
        }));
        let mut cx = Context::from_waker(&waker);
        if source.poll_ready(dir, &mut cx).is_ready() {
            waker.wake();
        }
    }

    /// Runs the callback of a ready watched fd, then re-arms it.
    pub(crate) fn dispatch_fd(&self, fd: RawFd, dir: Direction, generation: u64) {
        let (source, callback) = {
            let mut fds = self.inner.fds.borrow_mut();
            match fds.map.get_mut(&fd) {
                Some(w) if w.generation == generation => match w.slot(dir).clone() {
                    Some(cb) => (w.source.clone(), cb),
                    None => return,
                },
                _ => return,
            }
        };
        let waker = Waker::noop();
        match source.poll_ready(dir, &mut Context::from_waker(waker)) {
            Poll::Ready(Ok(tick)) => source.clear_ready(dir, tick),
            Poll::Ready(Err(_)) => return,
            Poll::Pending => return,
        }
        let name = match dir {
            Direction::Read => "reader",
            Direction::Write => "writer",
        };
        match callback.try_borrow_mut() {
            Ok(mut f) => self.call_caught(&mut *f, name),
            Err(_) => tracing::warn!(fd, "fd callback re-entered; skipped"),
        }
        // The last reference if the callback removed itself.
        self.drop_caught(callback, "an add_reader/add_writer callback");
        self.arm_fd(fd, dir, generation);
    }

    pub(crate) fn close_fd_watchers(&self) {
        let watchers = std::mem::take(&mut self.inner.fds.borrow_mut().map);
        for (_, watch) in watchers {
            if let Err(e) = self.reactor().deregister(&watch.source) {
                tracing::debug!(error = %e, "deregistering a watched fd failed");
            }
            self.drop_caught(watch, "an add_reader/add_writer callback");
        }
    }
}
