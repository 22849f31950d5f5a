//! The readiness driver behind protocols and servers: no task per connection.
//!
//! Every connection and listening socket of the protocol layer is an *entry* in a per-loop
//! [`Registry`] (a loop extension). Its socket is registered once, edge-triggered, with the
//! loop's reactor (an [`Async`](evloop_reactor::Async)); the waker it leaves with the
//! reactor is a [`Notifier`]: `Send`, allocated once per entry, and all it does on a wake is
//! push the entry's key onto the loop's pending list (once, until the entry has run) and, if
//! no dispatch is scheduled yet, schedule one with `call_soon_threadsafe` (which, on the loop
//! thread, is a push onto the local ready queue). The dispatch runs on the loop thread, looks
//! each key up in the registry and lets the entry do its I/O and call its protocol.
//!
//! So in steady state a readiness event costs: the reactor setting the flag and calling the
//! notifier (an atomic swap and a short mutex-protected push), one dispatch callback per loop
//! iteration for all connections together, and the read/write system calls themselves.

use std::cell::{Cell, RefCell, RefMut};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

use evloop_core::{EventLoop, ExceptionContext, LoopHandle};

/// The size of the loop's shared read buffer (one per loop, reused by every connection).
const READ_BUF_SIZE: usize = 64 * 1024;

/// Something the driver runs when its socket becomes ready.
pub(crate) trait Entry {
    /// Does the I/O that is possible now and calls the protocol.
    fn process(self: Rc<Self>, reg: &Rc<Registry>);
    /// The entry's waker state.
    fn notifier(&self) -> &Arc<Notifier>;
    /// The loop is closing: let go of the socket and the protocol without callbacks.
    fn detach(&self);
}

/// The pending keys of one loop, and whether a dispatch is scheduled.
pub(crate) struct Queue {
    pending: Mutex<Vec<usize>>,
    scheduled: AtomicBool,
    handle: LoopHandle,
}

impl Queue {
    fn push(self: &Arc<Queue>, key: usize) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key);
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            let queue = self.clone();
            // Err only once the loop is closed: nothing is left to drive then.
            let _ = self.handle.call_soon_threadsafe(move || dispatch(&queue));
        }
    }
}

/// The waker of one entry (`Send + Sync`; the entry itself lives on the loop thread).
pub(crate) struct Notifier {
    key: usize,
    queued: AtomicBool,
    queue: Arc<Queue>,
}

impl Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.key);
        }
    }
}

/// What [`Registry::read_buf`] lends.
pub(crate) enum ReadBuf<'a> {
    Shared(RefMut<'a, Box<[u8]>>),
    Own(Vec<u8>),
}

impl std::ops::Deref for ReadBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ReadBuf::Shared(b) => b,
            ReadBuf::Own(b) => b,
        }
    }
}

impl std::ops::DerefMut for ReadBuf<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            ReadBuf::Shared(b) => b,
            ReadBuf::Own(b) => b,
        }
    }
}

/// The protocol layer's per-loop state.
pub(crate) struct Registry {
    queue: Arc<Queue>,
    entries: RefCell<Vec<Option<Rc<dyn Entry>>>>,
    free: RefCell<Vec<usize>>,
    /// The dispatch's working list, kept to reuse its allocation.
    batch: Cell<Vec<usize>>,
    /// The shared read buffer (see [`read_buf`](Self::read_buf)).
    shared_buf: RefCell<Box<[u8]>>,
}

impl Registry {
    /// The registry of the running loop (created on first use).
    pub(crate) fn get() -> io::Result<(EventLoop, Rc<Registry>)> {
        let lp = crate::net::running_loop()?;
        let reg = lp.extension(|| Registry::new(lp.handle()));
        Ok((lp, reg))
    }

    fn new(handle: LoopHandle) -> Registry {
        Registry {
            queue: Arc::new(Queue {
                pending: Mutex::new(Vec::new()),
                scheduled: AtomicBool::new(false),
                handle,
            }),
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            batch: Cell::new(Vec::new()),
            shared_buf: RefCell::new(vec![0; READ_BUF_SIZE].into_boxed_slice()),
        }
    }

    /// Reserves a key and makes its notifier; [`insert`](Self::insert) the entry next.
    pub(crate) fn reserve(&self) -> (usize, Arc<Notifier>) {
        let key = match self.free.borrow_mut().pop() {
            Some(key) => key,
            None => {
                let mut entries = self.entries.borrow_mut();
                entries.push(None);
                entries.len() - 1
            }
        };
        let notifier = Arc::new(Notifier {
            key,
            queued: AtomicBool::new(false),
            queue: self.queue.clone(),
        });
        (key, notifier)
    }

    pub(crate) fn insert(&self, key: usize, entry: Rc<dyn Entry>) {
        if let Some(slot) = self.entries.borrow_mut().get_mut(key) {
            *slot = Some(entry);
        }
    }

    pub(crate) fn remove(&self, key: usize) {
        let old = self
            .entries
            .borrow_mut()
            .get_mut(key)
            .and_then(Option::take);
        if old.is_some() {
            self.free.borrow_mut().push(key);
        }
        drop(old); // outside the borrow
    }

    /// A buffer to read into: the loop's shared one, or (if a callback up the stack holds
    /// it, e.g. a protocol reading from inside another protocol's callback) a fresh one.
    pub(crate) fn read_buf(&self) -> ReadBuf<'_> {
        match self.shared_buf.try_borrow_mut() {
            Ok(buf) => ReadBuf::Shared(buf),
            Err(_) => ReadBuf::Own(vec![0; READ_BUF_SIZE]),
        }
    }

    fn entry(&self, key: usize) -> Option<Rc<dyn Entry>> {
        self.entries.borrow().get(key).cloned().flatten()
    }
}

impl Registry {
    /// Detaches every entry (closes its socket and drops its protocol, without callbacks),
    /// each with panics caught and reported: one protocol's panicking destructor does not
    /// keep the others (or the loop's close) from finishing.
    fn detach_all(&self) {
        let entries = std::mem::take(&mut *self.entries.borrow_mut());
        self.free.borrow_mut().clear();
        for entry in entries.into_iter().flatten() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| entry.detach())) {
                report(destructor_panic(payload));
            }
            drop_protocol(entry);
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Normally done by `close_all` already; this covers a loop closed by hand.
        self.detach_all();
    }
}

/// Closes the protocol layer of `lp` before the loop itself closes (`evloop::run` and
/// `Runner` call this; a custom runtime closing a loop by hand should too): every
/// connection, endpoint and server is detached, and a panicking protocol destructor is
/// reported to `lp`'s exception handler (which the loop's own close, dropping the registry,
/// could only log: the loop is not running then). Does nothing if `lp` has no protocols.
pub fn close_all(lp: &EventLoop) {
    let Some(reg) = lp.find_extension::<Registry>() else {
        return;
    };
    let previous = CLOSING.replace(Some(lp.clone()));
    reg.detach_all();
    drop(CLOSING.replace(previous));
}

thread_local! {
    /// The loop whose protocols `close_all` is detaching: reports go to its handler.
    static CLOSING: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// The loop to report to: the running one, or the one being closed by `close_all`.
fn reporting_loop() -> Option<EventLoop> {
    evloop_core::running_loop().or_else(|| CLOSING.with(|c| c.borrow().clone()))
}

fn report(ctx: ExceptionContext) {
    match reporting_loop() {
        Some(lp) => lp.call_exception_handler(ctx),
        None => tracing::error!(message = ctx.message(), panic = ?ctx.panic_message()),
    }
}

fn destructor_panic(payload: Box<dyn std::any::Any + Send>) -> ExceptionContext {
    ExceptionContext::new("Exception in the destructor of a protocol").with_panic(payload)
}

/// Drops a protocol (or whatever holds the last reference to one); a panic in its
/// destructor goes to the exception handler instead of unwinding through the driver.
pub(crate) fn drop_protocol<T>(protocol: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(protocol))) {
        report(destructor_panic(payload));
    }
}

/// Runs every pending entry of the loop that owns `queue` (on that loop's thread).
fn dispatch(queue: &Arc<Queue>) {
    queue.scheduled.store(false, Ordering::Release);
    let Some(lp) = evloop_core::running_loop() else {
        return;
    };
    let Some(reg) = lp.find_extension::<Registry>() else {
        return;
    };
    if !Arc::ptr_eq(&reg.queue, queue) {
        return;
    }
    let mut batch = reg.batch.take();
    std::mem::swap(
        &mut *queue.pending.lock().unwrap_or_else(PoisonError::into_inner),
        &mut batch,
    );
    for &key in &batch {
        if let Some(entry) = reg.entry(key) {
            entry.notifier().queued.store(false, Ordering::Release);
            entry.process(&reg);
        }
    }
    batch.clear();
    reg.batch.set(batch);
}

/// Reports a panic from user code (a protocol callback or factory) to the loop's exception
/// handler, as asyncio reports a protocol exception ("Fatal error: protocol.X() call failed.").
pub(crate) fn report_panic(what: &str, payload: Box<dyn std::any::Any + Send>) {
    report(
        ExceptionContext::new(format!("Fatal error: protocol.{what}() call failed."))
            .with_panic(payload),
    );
}

/// Reports a non-fatal error (e.g. a failed `accept`) to the loop's exception handler.
pub(crate) fn report_error(message: String) {
    report(ExceptionContext::new(message));
}

/// A `Waker` for `notifier`.
pub(crate) fn waker(notifier: &Arc<Notifier>) -> Waker {
    Waker::from(notifier.clone())
}
