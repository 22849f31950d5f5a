//! The policy calls of `run()` and `Runner`: the two cases of CPython's `test_runners.py`
//! that install a policy of their own (`BaseTest.setUp` installs CPython's `TestPolicy`).
//!
//! The policy is process-global, so these tests are a test binary of their own, and they take
//! a lock so that they never overlap; each puts the default policy back when it ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use evloop::{DefaultEventLoopPolicy, Error, EventLoop, EventLoopPolicy, Runner};

static SERIAL: Mutex<()> = Mutex::new(());

/// What the policy was asked.
#[derive(Default)]
struct Calls {
    get_event_loop: AtomicUsize,
    set_some: AtomicUsize,
    set_none: AtomicUsize,
    new_event_loop: AtomicUsize,
}

impl Calls {
    fn set_event_loop(&self) -> usize {
        self.set_some.load(Ordering::SeqCst) + self.set_none.load(Ordering::SeqCst)
    }
}

/// CPython's `TestPolicy` with `set_event_loop = mock.Mock()`: counts the calls (and passes
/// them on to a default policy, so that the current loop works as usual).
struct TestPolicy {
    inner: DefaultEventLoopPolicy,
    calls: Arc<Calls>,
}

impl EventLoopPolicy for TestPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        // CPython: "shouldn't ever be called by asyncio.run()" (it raises RuntimeError).
        self.calls.get_event_loop.fetch_add(1, Ordering::SeqCst);
        self.inner.get_event_loop()
    }

    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        let count = match lp {
            Some(_) => &self.calls.set_some,
            None => &self.calls.set_none,
        };
        count.fetch_add(1, Ordering::SeqCst);
        self.inner.set_event_loop(lp);
    }

    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        self.calls.new_event_loop.fetch_add(1, Ordering::SeqCst);
        self.inner.new_event_loop()
    }
}

/// Holds the lock and the test policy; puts the default policy back when dropped
/// (CPython's `tearDown`).
struct Installed {
    calls: Arc<Calls>,
    _serial: MutexGuard<'static, ()>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        evloop::set_event_loop_policy(None);
    }
}

fn install_test_policy() -> Installed {
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let calls = Arc::new(Calls::default());
    evloop::set_event_loop_policy(Some(Box::new(TestPolicy {
        inner: DefaultEventLoopPolicy::new(),
        calls: calls.clone(),
    })));
    Installed {
        calls,
        _serial: serial,
    }
}

#[test]
fn test_asyncio_run_set_event_loop() {
    // See https://github.com/python/cpython/issues/93896
    let policy = install_test_policy();
    let lp = evloop::run(async {
        evloop::yield_now().await; // asyncio.sleep(0)
        evloop::get_running_loop().expect("running")
    })
    .expect("run");
    assert!(policy.calls.set_event_loop() > 0, "set_event_loop called");
    // Beyond CPython's check: set once to the run's loop, once unset; the loop came from the
    // policy, and `get_event_loop` was never asked (CPython's `TestPolicy` raises there).
    assert_eq!(policy.calls.set_some.load(Ordering::SeqCst), 1);
    assert_eq!(policy.calls.set_none.load(Ordering::SeqCst), 1);
    assert_eq!(policy.calls.new_event_loop.load(Ordering::SeqCst), 1);
    assert_eq!(policy.calls.get_event_loop.load(Ordering::SeqCst), 0);
    assert!(lp.is_closed(), "tearDown: the loop is closed");
}

#[test]
fn test_set_event_loop_called_once() {
    // See https://github.com/python/cpython/issues/95736
    let policy = install_test_policy();
    async fn coro() {}
    let mut runner = Runner::new();
    runner.run(coro()).expect("run");
    runner.run(coro()).expect("run");
    assert_eq!(1, policy.calls.set_event_loop());
    let lp = runner.get_loop().expect("loop");
    runner.close().expect("close");
    // Beyond CPython's check: the close unsets it, once.
    assert_eq!(policy.calls.set_none.load(Ordering::SeqCst), 1);
    assert_eq!(policy.calls.set_event_loop(), 2);
    assert_eq!(policy.calls.get_event_loop.load(Ordering::SeqCst), 0);
    assert!(lp.is_closed(), "tearDown: the loop is closed");
}
