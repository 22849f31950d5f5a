//! `evloop::Runner` (asyncio.Runner): one loop for several runs, lazy creation, builder
//! options, close semantics.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use evloop::{Error, EventLoop, Runner};

#[test]
fn several_runs_share_one_loop() {
    let mut runner = Runner::new();
    let first = runner
        .run(async { evloop::get_running_loop().expect("running") })
        .expect("run 1");
    let second = runner
        .run(async { evloop::get_running_loop().expect("running") })
        .expect("run 2");
    assert!(first == second);
    assert!(runner.get_loop().expect("loop") == first);
    assert!(!first.is_closed(), "the loop stays open between runs");
    runner.close().expect("close");
    assert!(first.is_closed());
}

#[test]
#[allow(clippy::async_yields_async)] // handing the task's handle out of the run is the point
fn tasks_live_on_between_runs_until_close() {
    let mut runner = Runner::new();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = runner
        .run(async move {
            evloop::spawn(async move {
                loop {
                    t.set(t.get() + 1);
                    evloop::yield_now().await;
                }
            })
        })
        .expect("run 1");
    let after_first = ticks.get();
    runner
        .run(async {
            for _ in 0..5 {
                evloop::yield_now().await;
            }
        })
        .expect("run 2");
    assert!(
        ticks.get() > after_first,
        "the task ran during the second run"
    );
    assert!(!ticker.is_done());
    runner.close().expect("close");
    assert!(ticker.is_cancelled());
}

#[test]
fn the_loop_is_created_lazily_and_made_current() {
    let made = Rc::new(Cell::new(0));
    let m = made.clone();
    let mut runner = Runner::builder()
        .loop_factory(move || {
            m.set(m.get() + 1);
            EventLoop::new()
        })
        .build();
    assert_eq!(made.get(), 0, "nothing until first use");
    assert!(evloop::get_event_loop().is_err());
    let lp = runner.get_loop().expect("loop");
    assert_eq!(made.get(), 1);
    assert!(evloop::get_event_loop().expect("current") == lp);
    runner.run(async {}).expect("run");
    runner.run(async {}).expect("run");
    assert_eq!(made.get(), 1, "one loop for the runner's life");
    runner.close().expect("close");
    assert!(evloop::get_event_loop().is_err(), "unset by close");
}

#[test]
fn builder_debug_and_factory() {
    let mut runner = Runner::builder().debug(true).build();
    assert!(runner.get_loop().expect("loop").get_debug());
    let mut runner = Runner::builder().debug(false).build();
    assert!(!runner.get_loop().expect("loop").get_debug());

    let mut runner = Runner::builder()
        .loop_factory(|| {
            let lp = EventLoop::new()?;
            lp.set_slow_callback_duration(Duration::from_millis(7));
            Ok(lp)
        })
        .debug(true)
        .build();
    let lp = runner.get_loop().expect("loop");
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(7));
    assert!(lp.get_debug(), "debug applies to factory-made loops too");
}

#[test]
fn a_failing_factory_is_an_error_each_time() {
    let mut runner = Runner::builder()
        .loop_factory(|| Err(Error::Io(std::io::Error::other("no loops today"))))
        .build();
    let err = runner.run(async {}).expect_err("factory failed");
    assert_eq!(err.to_string(), "no loops today");
    assert!(runner.get_loop().is_err());
    runner.close().expect("nothing to close");
}

#[test]
fn errors_after_close() {
    let mut runner = Runner::new();
    runner.run(async {}).expect("run");
    runner.close().expect("close");
    assert!(matches!(runner.run(async {}), Err(Error::Closed)));
    assert!(matches!(runner.get_loop(), Err(Error::Closed)));
    assert_eq!(
        runner.run(async {}).expect_err("closed").to_string(),
        "Event loop is closed"
    );
    runner.close().expect("idempotent");

    // A runner closed before any use never makes a loop.
    let mut unused = Runner::new();
    unused.close().expect("close");
    assert!(matches!(unused.run(async {}), Err(Error::Closed)));
}

#[test]
fn run_inside_a_running_loop() {
    let mut outer = Runner::new();
    let lp = outer.get_loop().expect("loop");
    let nested = outer
        .run(async {
            let mut inner = Runner::new();
            let r = inner.run(async { 1 });
            (r, inner.get_loop().is_ok())
        })
        .expect("outer run");
    assert!(matches!(nested.0, Err(Error::RunInRunningLoop)));
    assert!(nested.1, "the inner runner could still make its loop");
    // The inner runner's close (on drop, inside the outer run) unset the current loop, as
    // asyncio's does; the outer loop is still fine.
    assert!(!lp.is_closed());
    assert_eq!(outer.run(async { 2 }).expect("outer again"), 2);
}

#[test]
fn stopped_before_complete() {
    let mut runner = Runner::new();
    let err = runner
        .run(async {
            evloop::get_running_loop().expect("running").stop();
            std::future::pending::<()>().await;
        })
        .expect_err("stopped");
    assert!(matches!(err, Error::StoppedBeforeComplete));
    assert_eq!(runner.run(async { 3 }).expect("still usable"), 3);
}

#[test]
fn drop_closes_the_runner() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let lp;
    {
        let mut runner = Runner::new();
        let d = drops.clone();
        lp = runner
            .run(async move {
                let guard = Guard(d); // owned by the task's future, started or not
                evloop::spawn(async move {
                    let _g = guard;
                    std::future::pending::<()>().await;
                });
                evloop::get_running_loop().expect("running")
            })
            .expect("run");
    }
    assert!(lp.is_closed());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(evloop::get_event_loop().is_err());
}

#[test]
fn a_panicking_run_closes_the_runner() {
    let mut runner = Runner::new();
    let lp = runner.get_loop().expect("loop");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        runner.run(async { panic!("oops") }).expect("unreachable")
    }));
    assert!(caught.is_err());
    assert!(lp.is_closed());
    assert!(matches!(runner.run(async {}), Err(Error::Closed)));
}

#[test]
fn the_user_may_close_the_loop_between_runs() {
    let mut runner = Runner::new();
    let lp = runner.get_loop().expect("loop");
    lp.close().expect("close the loop itself");
    assert!(matches!(runner.run(async {}), Err(Error::Closed)));
    runner.close().expect("closing the runner still works");
}

#[test]
fn runners_on_several_threads() {
    let threads: Vec<_> = (0..3)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("runner-{i}"))
                .spawn(move || {
                    let mut runner = Runner::new();
                    let a = runner.run(async move { i }).expect("run");
                    let b = runner
                        .run(async move {
                            evloop::sleep(Duration::from_millis(2)).await;
                            i + 10
                        })
                        .expect("run");
                    runner.close().expect("close");
                    a + b
                })
                .expect("spawn")
        })
        .collect();
    let sums: Vec<i32> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(sums, vec![10, 12, 14]);
}
