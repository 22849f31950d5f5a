//! The bombs of `panicking_drops.rs` and their counters: where each panicking destructor
//! sits, how many were created, dropped, reported and logged, the tracing layer that counts
//! what only the logs receive, and the panic hook that keeps the bombs quiet.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{self, PanicHookInfo};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

/// What every bomb's panic payload starts with.
pub(crate) const PREFIX: &str = "bomb:";

macro_rules! sites {
    ($($site:ident = $name:literal,)*) => {
        /// Where a bomb sits (each has its own payload, `bomb:<name>`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Site { $($site,)* }
        pub(crate) const SITES: &[Site] = &[$(Site::$site,)*];
        impl Site {
            pub(crate) fn name(self) -> &'static str {
                match self { $(Site::$site => $name,)* }
            }
        }
    };
}

sites! {
    // A task's future (dropped by the task core, in place).
    TaskDone = "task-done",
    TaskCancelled = "task-cancelled",
    TaskRemoteCancelled = "task-remote-cancelled",
    TaskAtClose = "task-at-close",
    TaskAbandoned = "task-abandoned",
    TaskSpawned = "task-spawned",
    TaskOnClosedLoop = "task-on-closed-loop",
    // A task's output.
    OutputRead = "output-read",
    OutputUnread = "output-unread",
    OutputUnreadRemote = "output-unread-remote",
    OutputDetached = "output-detached",
    OutputAfterClose = "output-after-close",
    // Callbacks, timers, thread-safe closures.
    CallSoonRan = "call-soon-ran",
    CallSoonCancelled = "call-soon-cancelled",
    CallSoonAtClose = "call-soon-at-close",
    CallSoonOnClosed = "call-soon-on-closed",
    TimerRan = "timer-ran",
    TimerCancelled = "timer-cancelled",
    TimerAtClose = "timer-at-close",
    TimerOnClosed = "timer-on-closed",
    Threadsafe = "threadsafe",
    ThreadsafeAtClose = "threadsafe-at-close",
    ThreadsafeRefused = "threadsafe-refused",
    // fd callbacks, the loop extension, protocols.
    ReaderReplaced = "reader-replaced",
    ReaderRemoved = "reader-removed",
    ReaderSelfRemoved = "reader-self-removed",
    ReaderAtClose = "reader-at-close",
    Extension = "extension",
    ProtocolLost = "protocol-lost",
    ProtocolAtClose = "protocol-at-close",
    DatagramClosed = "datagram-closed",
    DatagramAtClose = "datagram-at-close",
    // The default executor: a job's closure returns its bomb (dropped unrun, or as a result
    // nobody reads: cancelled before, while or after it ran); an unread output; a job
    // refused by a closed loop.
    ExecutorJob = "executor-job",
    ExecutorUnread = "executor-unread",
    ExecutorRefused = "executor-refused",
}

pub(crate) const MAX_SITES: usize = 40;

/// Per site: bombs created, dropped, reported to a handler, logged through tracing.
pub(crate) static CREATED: [AtomicU64; MAX_SITES] = [const { AtomicU64::new(0) }; MAX_SITES];
pub(crate) static DROPPED: [AtomicU64; MAX_SITES] = [const { AtomicU64::new(0) }; MAX_SITES];
pub(crate) static HANDLED: [AtomicU64; MAX_SITES] = [const { AtomicU64::new(0) }; MAX_SITES];
pub(crate) static LOGGED: [AtomicU64; MAX_SITES] = [const { AtomicU64::new(0) }; MAX_SITES];
/// Bombs dropped while a panic was already unwinding (they cannot panic: none may be).
pub(crate) static SKIPPED: AtomicU64 = AtomicU64::new(0);
/// "Task was destroyed but it is pending!" reports.
pub(crate) static PENDING_DESTROYED: AtomicU64 = AtomicU64::new(0);
/// Over all rounds: panics reported, logged, and thread-safe closures that raced the
/// close (logged: refused, or accepted just before the seal).
pub(crate) static TOTAL_HANDLED: AtomicU64 = AtomicU64::new(0);
pub(crate) static TOTAL_LOGGED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RACED_THREADSAFE: AtomicU64 = AtomicU64::new(0);
/// Reports and events that are not a bomb's.
pub(crate) static UNEXPECTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn unexpected(what: String) {
    UNEXPECTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(what);
}

pub(crate) fn site_of(text: &str) -> Option<Site> {
    let rest = text.split_once(PREFIX)?.1;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(rest.len());
    SITES.iter().copied().find(|s| s.name() == &rest[..end])
}

/// Panics with `bomb:<site>` when dropped; counts itself created and dropped.
pub(crate) struct Bomb(Site);

impl Bomb {
    pub(crate) fn new(site: Site) -> Bomb {
        CREATED[site as usize].fetch_add(1, SeqCst);
        Bomb(site)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        DROPPED[self.0 as usize].fetch_add(1, SeqCst);
        COUNTED.bump();
        if thread::panicking() {
            SKIPPED.fetch_add(1, SeqCst);
            return;
        }
        panic!("{PREFIX}{}", self.0.name());
    }
}

pub(crate) fn dropped(site: Site) -> u64 {
    DROPPED[site as usize].load(SeqCst)
}

pub(crate) fn handled(site: Site) -> u64 {
    HANDLED[site as usize].load(SeqCst)
}

/// A callback whose destructor panics.
pub(crate) fn bomb_cb(site: Site) -> impl FnOnce() + Send + 'static {
    let b = Bomb::new(site);
    move || {
        let _keep = &b;
    }
}

/// A callback whose destructor panics, and that counts its run on `ran`.
pub(crate) fn bomb_cb_ran(site: Site, ran: Gauge) -> impl FnOnce() + Send + 'static {
    let b = Bomb::new(site);
    move || {
        let _keep = &b;
        ran.bump();
    }
}

/// A future that holds a bomb besides the future it polls: the bomb goes off only when the
/// task core drops the future (not inside a poll).
pub(crate) struct Holding<F> {
    inner: Pin<Box<F>>,
    _bomb: Bomb,
}

impl<F: Future> Future for Holding<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.inner.as_mut().poll(cx)
    }
}

pub(crate) fn holding<F: Future>(site: Site, fut: F) -> Holding<F> {
    Holding {
        inner: Box::pin(fut),
        _bomb: Bomb::new(site),
    }
}

/// A thread-safe counter that a future can wait on.
#[derive(Clone, Default)]
pub(crate) struct Gauge(Arc<Mutex<(u64, Vec<Waker>)>>);

impl Gauge {
    pub(crate) fn bump(&self) {
        let wakers = {
            let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            g.0 += 1;
            std::mem::take(&mut g.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn reach(&self, n: u64) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 >= n {
                return Poll::Ready(());
            }
            if !g.1.iter().any(|w| w.will_wake(cx.waker())) {
                g.1.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Waits until `cond` holds, checked again at each bump.
    pub(crate) fn until<'a>(
        &'a self,
        cond: impl Fn() -> bool + 'a,
    ) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock that `bump` takes after its count changed: no lost wake.
            if cond() {
                return Poll::Ready(());
            }
            if !g.1.iter().any(|w| w.will_wake(cx.waker())) {
                g.1.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// Bumped whenever a bomb is dropped or a report counted (wait on it with `until`).
pub(crate) static COUNTED: std::sync::LazyLock<Gauge> = std::sync::LazyLock::new(Gauge::default);

pub(crate) fn reset_counts() {
    for c in [&CREATED, &DROPPED, &HANDLED, &LOGGED] {
        c.iter().for_each(|a| a.store(0, SeqCst));
    }
    SKIPPED.store(0, SeqCst);
    PENDING_DESTROYED.store(0, SeqCst);
}

// -- what the handler cannot receive, and the panic hook --

/// Counts the warning and error events: a bomb's (by its `panic` field) per site, anything
/// else as unexpected.
pub(crate) struct CountLogs;

#[derive(Default)]
pub(crate) struct Fields {
    message: Option<String>,
    panic: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value);
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let value = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(value),
            "panic" => self.panic = Some(value),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() > tracing::Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        match fields.panic.as_deref().and_then(site_of) {
            Some(site) => {
                LOGGED[site as usize].fetch_add(1, SeqCst);
            }
            None => unexpected(format!("event {:?} ({:?})", fields.message, fields.panic)),
        }
    }
}

pub(crate) type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Swallows the bombs' panics (the rest goes to the previous hook); restores it on drop.
pub(crate) struct QuietBombs(Arc<Hook>);

/// A panic payload's message, if it is a string.
pub(crate) fn payload_str(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

pub(crate) fn quiet_bombs() -> QuietBombs {
    let prev: Arc<Hook> = Arc::new(panic::take_hook());
    let p = prev.clone();
    panic::set_hook(Box::new(move |info| {
        if !payload_str(info.payload()).is_some_and(|m| m.starts_with(PREFIX)) {
            p(info);
        }
    }));
    QuietBombs(prev)
}

impl Drop for QuietBombs {
    fn drop(&mut self) {
        if thread::panicking() {
            return; // the hook cannot be changed now; it passes the failure on anyway
        }
        let prev = self.0.clone();
        drop(panic::take_hook());
        panic::set_hook(Box::new(move |info| prev(info)));
    }
}
