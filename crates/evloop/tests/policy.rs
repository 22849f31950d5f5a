//! The policy layer through the facade: `evloop::set_event_loop_policy` and friends, and how
//! `run()`/`Runner` use the policy. Policies are process-global: this binary's tests take a
//! lock so that they never overlap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use evloop::{
    DefaultEventLoopPolicy, Error, EventLoop, EventLoopPolicy, StrictEventLoopPolicy,
    get_event_loop, get_event_loop_policy, new_event_loop, set_event_loop, set_event_loop_policy,
};

static SERIAL: Mutex<()> = Mutex::new(());

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

/// Makes debug loops and counts them.
struct DebugLoops {
    inner: DefaultEventLoopPolicy,
    made: Arc<AtomicUsize>,
}

impl EventLoopPolicy for DebugLoops {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        self.inner.get_event_loop()
    }
    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.inner.set_event_loop(lp);
    }
    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        self.made.fetch_add(1, Ordering::SeqCst);
        let lp = EventLoop::new()?;
        lp.set_debug(true);
        Ok(lp)
    }
}

#[test]
fn run_makes_its_loop_with_the_policy() {
    let _s = serial();
    let made = Arc::new(AtomicUsize::new(0));
    set_event_loop_policy(Some(Box::new(DebugLoops {
        inner: DefaultEventLoopPolicy::new(),
        made: made.clone(),
    })));
    let debug = evloop::run(async { evloop::get_running_loop().expect("running").get_debug() })
        .expect("run");
    assert!(debug, "the loop came from the custom policy");
    assert_eq!(made.load(Ordering::SeqCst), 1);
    assert_eq!(new_event_loop().map(|lp| lp.get_debug()).ok(), Some(true));

    // A loop factory bypasses the policy's new_event_loop.
    let mut runner = evloop::Runner::builder()
        .loop_factory(EventLoop::new)
        .build();
    assert!(!runner.get_loop().expect("loop").get_debug());
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[test]
fn run_sets_the_current_loop_through_the_policy() {
    let _s = serial();
    set_event_loop_policy(Some(Box::new(StrictEventLoopPolicy::new())));
    let same = evloop::run(async {
        let running = evloop::get_running_loop().expect("running");
        let current = get_event_loop_policy()
            .get_event_loop()
            .expect("set by run()");
        running == current
    })
    .expect("run");
    assert!(same);
    assert!(get_event_loop().is_err(), "strict: nothing after run()");
}

#[test]
fn strict_policy_through_the_facade() {
    let _s = serial();
    set_event_loop_policy(Some(Box::new(StrictEventLoopPolicy::new())));
    let err = get_event_loop().expect_err("strict");
    assert!(matches!(err, Error::NoCurrentLoop { .. }));
    let lp = new_event_loop().expect("new loop");
    set_event_loop(Some(&lp));
    assert!(get_event_loop().expect("set") == lp);
    set_event_loop_policy(None);
    assert!(
        get_event_loop().is_err(),
        "a fresh default policy has nothing set"
    );
}
