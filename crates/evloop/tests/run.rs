//! `evloop::run` and `evloop::spawn`: results, errors, and the shutdown sequence.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evloop::{Error, EventLoop, ExceptionContext};

/// Counts its drops: shows a task's future was dropped (cancelled) at shutdown.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn run_returns_the_output() {
    assert_eq!(evloop::run(async { 6 * 7 }).expect("run"), 42);
    let text = evloop::run(async {
        evloop::sleep(Duration::from_millis(1)).await;
        String::from("done")
    })
    .expect("run");
    assert_eq!(text, "done");
}

#[test]
fn run_polls_a_borrowing_non_send_future() {
    let local = Rc::new(RefCell::new(Vec::new()));
    let borrowed = &local;
    evloop::run(async move {
        borrowed.borrow_mut().push(1);
        evloop::yield_now().await;
        borrowed.borrow_mut().push(2);
    })
    .expect("run");
    assert_eq!(*local.borrow(), vec![1, 2]);
}

#[test]
fn run_inside_a_running_loop_is_an_error_and_changes_nothing() {
    let lp = EventLoop::new().expect("loop");
    evloop::set_event_loop(Some(&lp));
    let nested = lp
        .run_until_complete(async { evloop::run(async { 1 }) })
        .expect("outer run");
    let err = nested.expect_err("nested run()");
    assert!(matches!(err, Error::RunInRunningLoop));
    assert_eq!(
        err.to_string(),
        "run() cannot be called from a running event loop"
    );
    // The refused run did not touch the thread's current loop, nor close the running one.
    assert!(evloop::get_event_loop().expect("still current") == lp);
    assert!(!lp.is_closed());
}

#[test]
fn run_inside_run_is_an_error() {
    let inner = evloop::run(async { evloop::run(async { 1 }) }).expect("outer run");
    assert!(matches!(inner, Err(Error::RunInRunningLoop)));
}

#[test]
fn run_makes_its_loop_current_then_unsets_it_and_closes_it() {
    // Some other loop is current before run(): asyncio's run() does not restore it.
    let before = EventLoop::new().expect("loop");
    evloop::set_event_loop(Some(&before));
    let (lp, current_inside) = evloop::run(async {
        let lp = evloop::get_running_loop().expect("running");
        let current = evloop::get_event_loop_policy()
            .get_event_loop()
            .expect("current during the run");
        (lp, current)
    })
    .expect("run");
    assert!(
        lp == current_inside,
        "the run's loop is current during the run"
    );
    assert!(lp != before);
    assert!(lp.is_closed(), "closed after run()");
    assert!(
        matches!(evloop::get_event_loop(), Err(Error::NoCurrentLoop { .. })),
        "current loop unset after run()"
    );
    assert!(!before.is_closed());
}

#[test]
fn run_cancels_pending_tasks_and_waits_for_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (d1, d2) = (drops.clone(), drops.clone());
    let (forever, sleeper, done) = evloop::run(async move {
        let forever = evloop::spawn(async move {
            let _guard = DropCount(d1);
            std::future::pending::<()>().await;
        });
        let sleeper = evloop::spawn(async move {
            let _guard = DropCount(d2);
            evloop::sleep(Duration::from_secs(3600)).await;
        });
        let done = evloop::spawn(async { 1 });
        evloop::yield_now().await; // let them start
        evloop::yield_now().await;
        (forever, sleeper, done)
    })
    .expect("run");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both pending futures were dropped"
    );
    assert!(forever.is_cancelled() && sleeper.is_cancelled());
    assert!(done.is_done() && !done.is_cancelled());
    assert_eq!(evloop::run(done).expect("run").expect("task"), 1);
}

#[test]
fn tasks_cancelled_at_shutdown_are_not_reported_as_destroyed() {
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = messages.clone();
    evloop::run(async move {
        let lp = evloop::get_running_loop().expect("running");
        lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
            sink.lock().expect("lock").push(ctx.message().to_owned());
        }));
        let _forever = evloop::spawn(std::future::pending::<()>());
    })
    .expect("run");
    // The shutdown cancelled and awaited the task before closing: nothing was "destroyed
    // while pending".
    assert!(messages.lock().expect("lock").is_empty(), "{messages:?}");
}

#[test]
fn a_panicked_task_nobody_awaited_is_reported_during_shutdown() {
    let messages = Arc::new(Mutex::new(Vec::<(String, Option<String>)>::new()));
    let sink = messages.clone();
    evloop::run(async move {
        let lp = evloop::get_running_loop().expect("running");
        lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
            sink.lock().expect("lock").push((
                ctx.message().to_owned(),
                ctx.panic_message().map(str::to_owned),
            ));
        }));
        // Keep the handle until the task has panicked, so the report comes at shutdown.
        let doomed = evloop::spawn(async { panic!("boom in a task") });
        while !doomed.is_done() {
            evloop::yield_now().await;
        }
        // A detached task that panics is reported as soon as it panics.
        drop(evloop::spawn(async { panic!("boom while detached") }));
        evloop::yield_now().await;
        // Hand the unread handle to a task that is still pending at shutdown: the shutdown
        // cancels that task, which drops the handle, which reports the panic.
        evloop::spawn(async move {
            let _keep = doomed;
            std::future::pending::<()>().await;
        });
    })
    .expect("a task's panic does not take the run down");
    let messages = messages.lock().expect("lock").clone();
    let never = |m: &str| {
        (
            "Task exception was never retrieved".to_owned(),
            Some(m.to_owned()),
        )
    };
    assert_eq!(
        messages,
        vec![never("boom while detached"), never("boom in a task")]
    );
}

#[test]
fn a_panic_in_the_main_future_cleans_up_then_resumes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let handle = Rc::new(RefCell::new(None));
    let slot = handle.clone();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        evloop::run(async move {
            let lp = evloop::get_running_loop().expect("running");
            *slot.borrow_mut() = Some(lp.handle());
            let _pending = evloop::spawn(async move {
                let _guard = DropCount(d);
                std::future::pending::<()>().await;
            });
            evloop::yield_now().await;
            panic!("main future panicked");
        })
    }));
    let payload = caught.expect_err("the panic resumes");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"main future panicked")
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the pending task was cancelled"
    );
    let handle = handle.borrow_mut().take().expect("loop handle");
    assert!(handle.is_closed(), "the loop was closed");
    assert!(
        evloop::get_event_loop().is_err(),
        "the current loop was unset"
    );
}

#[test]
fn spawn_outside_a_running_loop_panics() {
    let caught = catch_unwind(|| evloop::spawn(async {}));
    let payload = caught.expect_err("spawn outside a loop");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(message, Some("no running event loop"));
}

#[test]
fn spawn_runs_on_the_running_loop() {
    let same = evloop::run(async {
        let lp = evloop::get_running_loop().expect("running");
        let task = evloop::spawn(async { evloop::get_running_loop().expect("running") });
        task.await.expect("task") == lp
    })
    .expect("run");
    assert!(same);
}

#[test]
fn run_on_worker_threads_in_parallel() {
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("run-{i}"))
                .spawn(move || {
                    evloop::run(async move {
                        evloop::sleep(Duration::from_millis(5)).await;
                        i * 2
                    })
                })
                .expect("spawn")
        })
        .collect();
    let results: Vec<u64> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("run"))
        .collect();
    assert_eq!(results, vec![0, 2, 4, 6]);
}

#[test]
fn run_uses_the_default_executor_and_shuts_it_down() {
    let out = evloop::run(async {
        evloop::to_thread(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("job")
    })
    .expect("run");
    assert_ne!(
        out.as_deref(),
        Some("run_uses_the_default_executor_and_shuts_it_down")
    );
}

/// The main task's spawn location (in the task dump and its `task` span) is where the user
/// called `evloop::run` / `Runner::run`, not a line inside evloop.
#[test]
fn the_main_task_is_located_at_the_users_run_call() {
    fn main_task_line() -> Option<u32> {
        let lp = evloop::get_running_loop().ok()?;
        let id = lp.current_task()?.id();
        Some(lp.dump_tasks().get(id)?.spawned_at?.line())
    }
    let line = line!() + 1;
    let at = evloop::run(async { main_task_line() }).expect("run");
    assert_eq!(at, Some(line));
    let mut runner = evloop::Runner::new();
    let line = line!() + 1;
    let at = runner.run(async { main_task_line() }).expect("run");
    assert_eq!(at, Some(line));
}
