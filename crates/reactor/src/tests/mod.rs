//! Tests: pure logic (Miri-friendly) and real-fd behaviour (skipped under Miri,
//! which cannot run epoll-based I/O).

#![allow(clippy::unwrap_used)]

mod async_io;
mod fallback;
mod reactor;
mod source;
#[cfg(target_os = "linux")]
mod watch;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::Reactor;

/// A waker that counts its wakes.
#[derive(Default)]
pub(crate) struct CountWaker(AtomicUsize);

impl CountWaker {
    pub(crate) fn new() -> (Arc<CountWaker>, Waker) {
        let count = Arc::new(CountWaker::default());
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that unparks a thread.
struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread, parking between polls; some other thread (a
/// [`Driver`]) runs the reactor. Panics after 30 s instead of hanging.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "block_on: future did not complete"
        );
        // A watchdog period, not synchronisation: wakes unpark us at once.
        thread::park_timeout(Duration::from_secs(1));
    }
}

/// Runs `reactor.wait(None)` on a background thread until dropped.
pub(crate) struct Driver {
    reactor: Reactor,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    pub(crate) fn start(reactor: &Reactor) -> Driver {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (reactor, stop) = (reactor.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    reactor.wait(None).expect("reactor wait failed");
                }
            })
        };
        Driver {
            reactor: reactor.clone(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.reactor.notify().expect("notify failed");
        if let Some(thread) = self.thread.take() {
            thread.join().expect("driver thread panicked");
        }
    }
}

/// Polls two futures together until both finish.
pub(crate) async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready((out_a.take().unwrap(), out_b.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Reactor>();
    check::<crate::Source>();
    check::<Arc<crate::Source>>();
    check::<crate::Async<std::net::TcpStream>>();
    check::<crate::Readable<'static>>();
    check::<crate::Direction>();
}
