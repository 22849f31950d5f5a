//! CPython's `Lib/test/test_asyncio/test_events.py`, PolicyTests and GetEventLoopTestsMixin,
//! ported to evloop's policy layer. A `harness = false` test: CPython runs these on the main
//! thread, where the default policy creates a loop on first use, and libtest would run them on
//! threads of its own. Policies are process-global, so the tests run one after the other, each
//! under a fresh default policy.
//!
//! GetEventLoopTestsMixin runs twice in CPython (TestPyGetEventLoop and TestCGetEventLoop, the
//! Python and the C implementation of get_event_loop); evloop has one, tested once.
//!
//! Left out (the rest of test_events.py's left-out list is in events.rs):
//! - test_event_loop_policy: AbstractEventLoopPolicy's NotImplementedError; a Rust trait has
//!   no unimplemented methods to call.
//! - test_get_event_loop_calls_set_event_loop: mocks the policy's own set_event_loop to see
//!   get_event_loop call it (for the Unix child watcher); an internal call no wrapper sees.
//! - test_get_event_loop_new_process: needs a ProcessPoolExecutor (no process pool in evloop).

mod mainthread;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use evloop::{
    DefaultEventLoopPolicy, Error, EventLoop, EventLoopPolicy, get_event_loop,
    get_event_loop_policy, get_running_loop, new_event_loop, set_event_loop, set_event_loop_policy,
};
use mainthread::run_checks;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ensure(cond: bool, what: &str) -> TestResult {
    if cond { Ok(()) } else { Err(what.into()) }
}

fn is_no_current(res: &Result<EventLoop, Error>) -> bool {
    matches!(res, Err(e @ Error::NoCurrentLoop { .. }) if e.to_string().contains("no current"))
}

fn is_no_running(res: &Result<EventLoop, Error>) -> bool {
    matches!(res, Err(e @ Error::NoRunningLoop) if e.to_string().contains("no running"))
}

// -- PolicyTests --

fn test_get_event_loop() -> TestResult {
    let policy = DefaultEventLoopPolicy::new();
    // (assertIsNone(policy._local._loop): the policy's private slot.)
    let lp = policy.get_event_loop()?;
    ensure(!lp.is_closed(), "a usable loop")?;
    ensure(lp == policy.get_event_loop()?, "the same loop again")?;
    lp.close()?;
    Ok(())
}

fn test_get_event_loop_after_set_none() -> TestResult {
    let policy = DefaultEventLoopPolicy::new();
    policy.set_event_loop(None);
    ensure(is_no_current(&policy.get_event_loop()), "RuntimeError")
}

fn test_get_event_loop_thread() -> TestResult {
    // CPython mocks threading.current_thread so that the thread is not the main one; here it
    // is a real other thread.
    let res = std::thread::spawn(|| {
        let policy = DefaultEventLoopPolicy::new();
        is_no_current(&policy.get_event_loop())
    })
    .join()
    .map_err(|_| "the thread panicked")?;
    ensure(res, "RuntimeError in another thread")
}

fn test_new_event_loop() -> TestResult {
    let policy = DefaultEventLoopPolicy::new();
    let lp = policy.new_event_loop()?;
    ensure(!lp.is_closed(), "a usable loop")?;
    lp.close()?;
    Ok(())
}

fn test_set_event_loop() -> TestResult {
    let policy = DefaultEventLoopPolicy::new();
    let old_loop = policy.new_event_loop()?;
    policy.set_event_loop(Some(&old_loop));
    // (set_event_loop(object()) is a type error in Rust.)
    let lp = policy.new_event_loop()?;
    policy.set_event_loop(Some(&lp));
    ensure(lp == policy.get_event_loop()?, "the loop set")?;
    ensure(old_loop != policy.get_event_loop()?, "not the old loop")?;
    lp.close()?;
    old_loop.close()?;
    Ok(())
}

fn test_get_event_loop_policy() -> TestResult {
    let policy = get_event_loop_policy();
    ensure(
        Arc::ptr_eq(&policy, &get_event_loop_policy()),
        "the same policy",
    )
}

/// A policy whose loops are in debug mode, to tell it from the default one.
struct DebugPolicy(DefaultEventLoopPolicy);

impl EventLoopPolicy for DebugPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        self.0.get_event_loop()
    }
    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.0.set_event_loop(lp);
    }
    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        let lp = self.0.new_event_loop()?;
        lp.set_debug(true);
        Ok(lp)
    }
}

fn test_set_event_loop_policy() -> TestResult {
    // (set_event_loop_policy(object()) is a type error in Rust.)
    let old_policy = get_event_loop_policy();
    set_event_loop_policy(Some(Box::new(DebugPolicy(DefaultEventLoopPolicy::new()))));
    // assertIs(policy, get_event_loop_policy()): the Box moved into the policy slot, so the
    // one in force is recognised by what it does.
    let policy = get_event_loop_policy();
    ensure(
        policy.new_event_loop()?.get_debug(),
        "the policy set is in force",
    )?;
    ensure(
        Arc::ptr_eq(&policy, &get_event_loop_policy()),
        "the same policy",
    )?;
    ensure(!Arc::ptr_eq(&policy, &old_policy), "not the old policy")
}

// -- GetEventLoopTestsMixin --

/// CPython's Policy whose get_event_loop raises TestError.
struct FailingPolicy(DefaultEventLoopPolicy);

fn make_test_error() -> Error {
    Error::Io(io::Error::other("TestError"))
}

fn is_test_error(res: &Result<EventLoop, Error>) -> bool {
    matches!(res, Err(Error::Io(e)) if e.to_string() == "TestError")
}

impl EventLoopPolicy for FailingPolicy {
    fn get_event_loop(&self) -> Result<EventLoop, Error> {
        Err(make_test_error())
    }
    fn set_event_loop(&self, lp: Option<&EventLoop>) {
        self.0.set_event_loop(lp);
    }
    fn new_event_loop(&self) -> Result<EventLoop, Error> {
        self.0.new_event_loop()
    }
}

/// `func()` of both tests: inside the loop, get_event_loop and get_running_loop give it.
fn check_inside(lp: &EventLoop) -> TestResult {
    let (seen, running) =
        lp.run_until_complete(async { (get_event_loop(), get_running_loop()) })?;
    ensure(seen? == *lp, "get_event_loop() is the running loop")?;
    ensure(running? == *lp, "get_running_loop() is the running loop")
}

fn test_get_event_loop_returns_running_loop() -> TestResult {
    set_event_loop_policy(Some(Box::new(FailingPolicy(DefaultEventLoopPolicy::new()))));
    let lp = new_event_loop()?;
    let checked = (|| -> TestResult {
        ensure(is_test_error(&get_event_loop()), "TestError")?;
        set_event_loop(None);
        ensure(is_test_error(&get_event_loop()), "TestError")?;

        // (asyncio._get_running_loop() is None: the same as get_running_loop's error here.)
        ensure(is_no_running(&get_running_loop()), "no running")?;

        check_inside(&lp)?;

        set_event_loop(Some(&lp));
        ensure(is_test_error(&get_event_loop()), "TestError")?;
        set_event_loop(None);
        ensure(is_test_error(&get_event_loop()), "TestError")
    })();
    set_event_loop_policy(None); // finally: set_event_loop_policy(old_policy)
    lp.close()?;
    checked?;
    ensure(is_no_running(&get_running_loop()), "no running")
}

fn test_get_event_loop_returns_running_loop2() -> TestResult {
    set_event_loop_policy(Some(Box::new(DefaultEventLoopPolicy::new())));
    let lp = new_event_loop()?;
    let checked = (|| -> TestResult {
        let loop2 = get_event_loop()?;
        set_event_loop(None);
        ensure(is_no_current(&get_event_loop()), "no current")?;

        ensure(is_no_running(&get_running_loop()), "no running")?;

        check_inside(&lp)?;

        set_event_loop(Some(&lp));
        ensure(get_event_loop()? == lp, "the loop set")?;

        set_event_loop(None);
        ensure(is_no_current(&get_event_loop()), "no current")?;
        loop2.close()?;
        Ok(())
    })();
    set_event_loop_policy(None);
    lp.close()?;
    checked?;
    ensure(is_no_running(&get_running_loop()), "no running")
}

fn main() -> ExitCode {
    type Test = (&'static str, fn() -> TestResult);
    let tests: &[Test] = &[
        ("test_get_event_loop", test_get_event_loop),
        (
            "test_get_event_loop_after_set_none",
            test_get_event_loop_after_set_none,
        ),
        ("test_get_event_loop_thread", test_get_event_loop_thread),
        ("test_new_event_loop", test_new_event_loop),
        ("test_set_event_loop", test_set_event_loop),
        ("test_get_event_loop_policy", test_get_event_loop_policy),
        ("test_set_event_loop_policy", test_set_event_loop_policy),
        (
            "test_get_event_loop_returns_running_loop",
            test_get_event_loop_returns_running_loop,
        ),
        (
            "test_get_event_loop_returns_running_loop2",
            test_get_event_loop_returns_running_loop2,
        ),
    ];
    // A fresh default policy for each test.
    let code = run_checks(tests, || set_event_loop_policy(None));
    set_event_loop_policy(None);
    code
}
