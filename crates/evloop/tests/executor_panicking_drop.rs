//! Destructors that panic in the default executor's hands — a job closure that never runs
//! (its task was cancelled, the executor was shut down, the loop is closed), a job's result
//! nobody reads (its task was cancelled while the job ran, or its handle dropped unread) —
//! are reported to the loop's exception handler, never lost on a pool thread nor unwound
//! into the caller of `run_in_executor`. A report still on its way to a loop that closes
//! first is logged, not lost.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use evloop::executor::{ThreadPool, shutdown_default_executor};
use evloop::{EventLoop, ExceptionContext, RunInExecutor};

/// Panics with its message when dropped.
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// The panic messages of the reports `lp`'s handler receives.
fn record(lp: &EventLoop) -> Rc<RefCell<Vec<String>>> {
    let got: Rc<RefCell<Vec<String>>> = Rc::default();
    let g = got.clone();
    lp.set_exception_handler(Some(move |_: &EventLoop, ctx: &ExceptionContext| {
        g.borrow_mut()
            .push(ctx.panic_message().unwrap_or("<none>").to_string());
    }));
    got
}

/// Runs `lp` until `got` holds `n` reports (or 10 s passed).
fn until_reports(lp: &EventLoop, got: &Rc<RefCell<Vec<String>>>, n: usize) {
    let got = got.clone();
    lp.run_until_complete(async move {
        let _ = evloop::time::timeout(Duration::from_secs(10), async {
            while got.borrow().len() < n {
                evloop::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    })
    .expect("run");
}

#[test]
fn a_job_cancelled_before_it_ran_reports_its_closures_panicking_drop() {
    let lp = EventLoop::new().expect("loop");
    let got = record(&lp);
    lp.set_default_executor(ThreadPool::builder().max_threads(1).build());
    // The only thread is busy: the bomb's job waits in the queue while its task is cancelled.
    let (release, blocked) = mpsc::channel::<()>();
    let busy = lp.run_in_executor(move || {
        let _ = blocked.recv();
    });
    let bomb = Bomb("queued job drop");
    let task = lp.run_in_executor(move || drop(bomb));
    task.cancel();
    let cancelled = lp.run_until_complete(task.as_ref()).expect("run");
    assert!(cancelled.is_err_and(|e| e.is_cancelled()));
    release.send(()).expect("the busy job waits");
    assert!(lp.run_until_complete(busy).expect("run").is_ok());
    until_reports(&lp, &got, 1);
    assert_eq!(*got.borrow(), ["queued job drop"]);
    shutdown_default_executor(&lp);
    lp.close().expect("close");
}

#[test]
fn the_result_of_a_job_whose_task_was_cancelled_while_it_ran_is_reported() {
    let lp = EventLoop::new().expect("loop");
    let got = record(&lp);
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, blocked) = mpsc::channel::<()>();
    let task = lp.run_in_executor(move || {
        let _ = started_tx.send(());
        let _ = blocked.recv();
        Bomb("unread result drop")
    });
    started.recv().expect("the job started");
    task.cancel();
    // The cancelled task ends on the loop, its future (the job's receiving end) dropped.
    let cancelled = lp.run_until_complete(task.as_ref()).expect("run");
    assert!(cancelled.is_err_and(|e| e.is_cancelled()));
    drop(task);
    release.send(()).expect("the job waits");
    until_reports(&lp, &got, 1);
    assert_eq!(*got.borrow(), ["unread result drop"]);
    shutdown_default_executor(&lp);
    lp.close().expect("close");
}

#[test]
fn an_unread_output_of_an_executor_task_is_reported_to_the_handler() {
    let lp = EventLoop::new().expect("loop");
    let got = record(&lp);
    let task = lp.run_in_executor(|| Bomb("unread output drop"));
    let r = task.as_ref();
    lp.run_until_complete(r).expect("run").expect("the job ran");
    drop(task);
    until_reports(&lp, &got, 1);
    assert_eq!(*got.borrow(), ["unread output drop"]);
    shutdown_default_executor(&lp);
    lp.close().expect("close");
}

#[test]
fn a_job_refused_by_a_shut_down_executor_or_a_closed_loop_does_not_unwind_into_the_caller() {
    let lp = EventLoop::new().expect("loop");
    let got = record(&lp);
    assert!(
        lp.run_until_complete(lp.run_in_executor(|| 1))
            .expect("run")
            .is_ok()
    );
    shutdown_default_executor(&lp);
    let bomb = Bomb("refused job drop");
    let refused = catch_unwind(AssertUnwindSafe(|| {
        lp.run_in_executor(move || drop(bomb)).is_done()
    }));
    assert!(
        refused.is_ok(),
        "the closure's panic unwound into run_in_executor's caller"
    );
    lp.close().expect("close");
    let bomb = Bomb("closed loop job drop");
    let refused = catch_unwind(AssertUnwindSafe(|| {
        lp.run_in_executor(move || drop(bomb)).is_done()
    }));
    assert!(
        refused.is_ok(),
        "the closure's panic unwound into run_in_executor's caller"
    );
    assert_eq!(*got.borrow(), ["refused job drop", "closed loop job drop"]);
}

/// Captures what tracing logs on this thread.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[test]
fn a_report_still_on_its_way_when_the_loop_closes_is_logged_not_lost() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let lp = EventLoop::new().expect("loop");
    let got = record(&lp);
    let task = lp.run_in_executor(|| -> u8 { panic!("never retrieved") });
    let outcome = lp.run_until_complete(task.as_ref()).expect("run");
    assert!(outcome.is_err_and(|e| e.is_panic()));
    // The loop does not run: the report goes to its queue, and the close finds it there.
    drop(task);
    lp.close().expect("close");
    let logged = logs.text();
    assert!(
        !got.borrow().is_empty() || logged.contains("never retrieved"),
        "the report was lost: handler {:?}, logs {logged:?}",
        got.borrow()
    );
}
