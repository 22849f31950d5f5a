//! Helpers shared by the networking tests (not a test target itself).
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};

use evloop::{EventLoop, ExceptionContext};

/// Runs `fut` with `evloop::run`, failing the test on a loop error.
pub fn run<F: Future>(fut: F) -> F::Output {
    evloop::run(fut).expect("evloop::run")
}

/// A one-shot event for tasks and protocol callbacks on one loop (no sleeping to wait).
#[derive(Clone, Default)]
pub struct Flag(Rc<RefCell<(bool, Vec<Waker>)>>);

impl Flag {
    pub fn new() -> Flag {
        Flag::default()
    }

    pub fn set(&self) {
        let wakers = {
            let mut inner = self.0.borrow_mut();
            inner.0 = true;
            std::mem::take(&mut inner.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_set(&self) -> bool {
        self.0.borrow().0
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            let mut inner = self.0.borrow_mut();
            if inner.0 {
                Poll::Ready(())
            } else {
                inner.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// Wakes whoever waits for a condition on a protocol's state, each time it may have changed
/// (CPython's `test_utils.run_until(pred)`, woken by the protocol callbacks).
#[derive(Clone, Default)]
pub struct Watch(Rc<RefCell<Vec<Waker>>>);

impl Watch {
    pub fn notify(&self) {
        let wakers = std::mem::take(&mut *self.0.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
    }

    pub async fn until(&self, mut pred: impl FnMut() -> bool) {
        poll_fn(|cx| {
            if pred() {
                Poll::Ready(())
            } else {
                self.0.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// A loop whose exception handler collects what it is told (a failed state assertion in a
/// protocol callback is a panic, reported there): each test checks it stayed empty.
pub fn new_loop() -> std::io::Result<(EventLoop, Rc<RefCell<Vec<String>>>)> {
    let lp = EventLoop::new().map_err(std::io::Error::from)?;
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        s.borrow_mut()
            .push(format!("{}: {:?}", ctx.message(), ctx.panic_message()));
    }));
    Ok((lp, seen))
}

/// A streaming 64-bit hash (word-wise, so it is quick in debug builds); the result does
/// not depend on how the bytes are split into calls.
#[derive(Default)]
pub struct Hasher {
    state: u64,
    carry: [u8; 8],
    carried: usize,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher {
            state: 0xcbf2_9ce4_8422_2325,
            ..Hasher::default()
        }
    }

    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 8 {
                return;
            }
            let w = u64::from_le_bytes(self.carry);
            self.word(w);
            self.carried = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.word(u64::from_le_bytes(a));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    pub fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.carried].copy_from_slice(&self.carry[..self.carried]);
        self.word(u64::from_le_bytes(last));
        self.word(self.len);
        self.state
    }
}

/// Deterministic pseudo-random bytes: chunk `i` of a test stream.
pub fn chunk(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A fresh socket path in the temp dir (not created).
pub fn temp_socket_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "evloop-{tag}-{}-{n}-{nanos}.sock",
        std::process::id()
    ))
}

/// Removes the file at `path` when dropped.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A single-loop unbounded channel (for tasks on one loop).
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Rc::new(RefCell::new(Chan {
        items: std::collections::VecDeque::new(),
        waker: None,
        closed: false,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

struct Chan<T> {
    items: std::collections::VecDeque<T>,
    waker: Option<Waker>,
    closed: bool,
}

pub struct Sender<T>(Rc<RefCell<Chan<T>>>);
pub struct Receiver<T>(Rc<RefCell<Chan<T>>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    pub fn send(&self, item: T) {
        let waker = {
            let mut chan = self.0.borrow_mut();
            chan.items.push_back(item);
            chan.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // The receiver holds one Rc; when only it and this sender remain, this is the last.
        if Rc::strong_count(&self.0) == 2 {
            let waker = {
                let mut chan = self.0.borrow_mut();
                chan.closed = true;
                chan.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&self) -> Option<T> {
        poll_fn(|cx| {
            let mut chan = self.0.borrow_mut();
            if let Some(item) = chan.items.pop_front() {
                return Poll::Ready(Some(item));
            }
            if chan.closed {
                return Poll::Ready(None);
            }
            chan.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
