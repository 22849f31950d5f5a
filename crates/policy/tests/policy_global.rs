//! The process-wide policy: `set_event_loop_policy` / `get_event_loop_policy`.
//!
//! Policies are process-global, so this file is its own test binary and its tests take a lock
//! so that they never overlap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use evloop_core::{Error, EventLoop};
use evloop_policy::{
    DefaultEventLoopPolicy, EventLoopPolicy, StrictEventLoopPolicy, get_event_loop,
    get_event_loop_policy, new_event_loop, set_event_loop, set_event_loop_policy,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests and puts the default policy back afterwards.
struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

fn serial() -> Serial {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    set_event_loop_policy(None);
    Serial(guard)
}

impl Drop for Serial {
    fn drop(&mut self) {
        set_event_loop_policy(None);
    }
}

fn on_thread<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread panicked")
}

/// A "main" thread, as far as the policy layer can tell (it goes by the thread's name).
fn on_pseudo_main<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    on_thread("main", f)
}

#[test]
fn strict_policy_never_creates_a_loop() {
    let _s = serial();
    set_event_loop_policy(Some(Box::new(StrictEventLoopPolicy::new())));
    let text = on_pseudo_main(|| {
        assert!(evloop_policy::is_main_thread());
        get_event_loop().expect_err("strict").to_string()
    });
    assert_eq!(text, "There is no current event loop in thread 'main'.");
    on_thread("strict-worker", || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        assert!(get_event_loop().expect("set") == lp);
    });
}

#[test]
fn default_policy_creates_on_main_only() {
    let _s = serial();
    on_pseudo_main(|| {
        let a = get_event_loop().expect("auto-created on main");
        let b = get_event_loop().expect("same loop");
        assert!(a == b);
        set_event_loop(None);
        assert_eq!(
            get_event_loop().expect_err("unset").to_string(),
            "There is no current event loop in thread 'main'."
        );
    });
    on_pseudo_main(|| {
        // set_event_loop was called here (even with None): no auto-creation.
        set_event_loop(None);
        assert!(get_event_loop().is_err());
    });
}

#[test]
fn set_event_loop_policy_none_restores_a_fresh_default() {
    let _s = serial();
    on_thread("fresh", || {
        let lp = new_event_loop().expect("new loop");
        set_event_loop(Some(&lp));
        assert!(get_event_loop().expect("set") == lp);
        set_event_loop_policy(None);
        // The new default policy starts with no loop on any thread.
        assert!(get_event_loop().is_err());
        // The old policy's handle is released on the next use of the policy layer: we hold
        // the only other handle, so the loop is still open.
        assert!(!lp.is_closed());
    });
}

/// A custom policy: counts calls, makes debug loops, delegates the binding.
struct Counting {
    inner: DefaultEventLoopPolicy,
    gets: Arc<AtomicUsize>,
    news: Arc<AtomicUsize>,
}

impl EventLoopPolicy for Counting {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_event_loop()
    }
    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.inner.set_event_loop(lp);
    }
    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        self.news.fetch_add(1, Ordering::SeqCst);
        let lp = EventLoop::new()?;
        lp.set_debug(true);
        Ok(lp)
    }
}

#[test]
fn custom_policy_is_used_by_the_free_functions() {
    let _s = serial();
    let gets = Arc::new(AtomicUsize::new(0));
    let news = Arc::new(AtomicUsize::new(0));
    set_event_loop_policy(Some(Box::new(Counting {
        inner: DefaultEventLoopPolicy::new(),
        gets: gets.clone(),
        news: news.clone(),
    })));
    on_thread("custom", || {
        let lp = new_event_loop().expect("new loop");
        assert!(lp.get_debug(), "made by the custom policy");
        set_event_loop(Some(&lp));
        assert!(get_event_loop().expect("set") == lp);
        // Inside a running loop the policy is not asked.
        let inside = lp
            .run_until_complete(async { get_event_loop() })
            .expect("run");
        assert!(inside.expect("running") == lp);
    });
    assert_eq!(news.load(Ordering::SeqCst), 1);
    assert_eq!(gets.load(Ordering::SeqCst), 1);

    let policy = get_event_loop_policy();
    let lp = policy.new_event_loop().expect("through the Arc");
    assert!(lp.get_debug());
    assert_eq!(news.load(Ordering::SeqCst), 2);
}

#[test]
fn a_policy_may_be_replaced_from_inside_a_policy_call() {
    let _s = serial();
    struct Swapping;
    impl EventLoopPolicy for Swapping {
        fn get_event_loop(&self) -> Result<EventLoop, Error> {
            // Re-entering the global slot must not deadlock.
            set_event_loop_policy(None);
            Err(Error::NoRunningLoop)
        }
        fn set_event_loop(&self, _: Option<&EventLoop>) {}
        fn new_event_loop(&self) -> Result<EventLoop, Error> {
            EventLoop::new()
        }
    }
    set_event_loop_policy(Some(Box::new(Swapping)));
    on_thread("swap", || {
        assert!(matches!(get_event_loop(), Err(Error::NoRunningLoop)));
        // Now the default policy is back.
        assert!(matches!(get_event_loop(), Err(Error::NoCurrentLoop { .. })));
    });
}
