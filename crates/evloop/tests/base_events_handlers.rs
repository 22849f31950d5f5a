//! CPython's `Lib/test/test_asyncio/test_base_events.py`, the exception-handler, debug-mode
//! and slow-callback cases (of BaseEventLoopTests and BaseEventLoopWithSelectorTests), ported
//! to evloop. What the loop logs (CPython patches `asyncio.base_events.logger`) is read from
//! a tracing subscriber. The rest of the file's cases, and the list of those left out, are in
//! `base_events.rs`.

mod envdebug;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use evloop::{Error, EventLoop, ExceptionContext};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One loop iteration (test_utils.run_once), as in base_events.rs.
fn run_once(lp: &EventLoop) -> Result<(), Error> {
    lp.stop();
    lp.run_forever()
}

/// What the loop logs (CPython patches `asyncio.base_events.logger`): a tracing subscriber
/// for this test's thread, writing into a buffer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's tracing events until the guard is dropped.
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The logged lines at `level` (e.g. "ERROR").
    fn lines(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(level))
            .map(str::to_string)
            .collect()
    }
}

fn zero_error() {
    panic!("ZeroDivisionError: division by zero");
}

#[test]
fn test_set_debug() -> TestResult {
    let lp = EventLoop::new()?;
    lp.set_debug(true);
    assert!(lp.get_debug());
    lp.set_debug(false);
    assert!(!lp.get_debug());
    Ok(())
}

#[test]
fn test_default_exc_handler_callback() -> TestResult {
    let lp = EventLoop::new()?;
    let (logs, _guard) = Logs::capture();

    // Test call_soon (events.Handle). zero_error's fut.set_result + done callback (which
    // stops the loop) is a stop callback scheduled after it.
    lp.call_soon(zero_error);
    let l = lp.clone();
    lp.call_soon(move || l.stop());
    lp.run_forever()?;
    let errors = logs.lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("Exception in callback"), "{errors:?}");
    assert!(errors[0].contains("zero_error"), "{errors:?}");
    assert!(errors[0].contains("ZeroDivisionError"), "{errors:?}");
    logs.clear();

    // Test call_later (events.TimerHandle)
    lp.call_later(Duration::from_millis(10), zero_error);
    let l = lp.clone();
    lp.call_later(Duration::from_millis(10), move || l.stop());
    lp.run_forever()?;
    let errors = logs.lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("Exception in callback"), "{errors:?}");
    assert!(errors[0].contains("zero_error"), "{errors:?}");
    assert!(errors[0].contains("ZeroDivisionError"), "{errors:?}");
    Ok(())
}

#[test]
fn test_default_exc_handler_coro() -> TestResult {
    let lp = EventLoop::new()?;
    let (logs, _guard) = Logs::capture();
    let fut = lp.create_task(async {
        evloop::sleep(Duration::from_millis(10)).await;
        zero_error();
    });
    // fut.add_done_callback(stop) + run_forever: wait for the task without reading its
    // outcome (a TaskRef's await does not take the panic out of the task).
    let done = fut.as_ref();
    // fut = None: the handle is dropped unread.
    drop(fut);
    let outcome = lp.run_until_complete(done)?;
    assert!(outcome.is_err_and(|e| e.is_panic()));
    lp.close()?; // a report still queued reaches the handler at the latest here
    let errors = logs.lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("exception was never retrieved"),
        "{errors:?}"
    );
    assert!(errors[0].contains("ZeroDivisionError"), "{errors:?}");
    Ok(())
}

#[test]
fn test_set_exc_handler_custom() -> TestResult {
    let lp = EventLoop::new()?;
    let run_loop = || -> Result<(), Error> {
        lp.call_soon(zero_error);
        run_once(&lp)
    };
    lp.set_debug(true);

    assert!(lp.get_exception_handler().is_none());
    let calls = Rc::new(RefCell::new(Vec::new()));
    let (c, me) = (calls.clone(), lp.clone());
    lp.set_exception_handler(Some(move |l: &EventLoop, ctx: &ExceptionContext| {
        assert!(*l == me, "the handler gets the loop");
        c.borrow_mut().push((
            ctx.message().to_string(),
            ctx.panic_message().map(str::to_string),
        ));
    }));
    // assertIs(get_exception_handler(), mock_handler): the handler is set (the same one on
    // every call).
    let set = lp.get_exception_handler().ok_or("no handler")?;
    assert!(Rc::ptr_eq(
        &set,
        &lp.get_exception_handler().ok_or("no handler")?
    ));
    run_loop()?;
    {
        let calls = calls.borrow();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].0.starts_with("Exception in callback"), "{calls:?}");
        assert!(calls[0].0.contains("zero_error"), "{calls:?}");
        assert!(
            calls[0]
                .1
                .as_deref()
                .is_some_and(|p| p.contains("ZeroDivisionError"))
        );
    }
    calls.borrow_mut().clear();

    lp.set_exception_handler(None::<fn(&EventLoop, &ExceptionContext)>);
    let (logs, _guard) = Logs::capture();
    run_loop()?;
    let errors = logs.lines("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("Exception in callback"), "{errors:?}");
    assert!(errors[0].contains("zero_error"), "{errors:?}");
    assert!(errors[0].contains("ZeroDivisionError"), "{errors:?}");

    assert!(calls.borrow().is_empty());
    Ok(())
}

#[test]
fn test_set_exc_handler_broken() -> TestResult {
    let lp = EventLoop::new()?;
    lp.set_exception_handler(Some(|_: &EventLoop, _: &ExceptionContext| {
        panic!("AttributeError: spam");
    }));
    let (logs, _guard) = Logs::capture();
    lp.call_soon(zero_error);
    run_once(&lp)?;
    let text = logs.text();
    let broken = logs
        .lines("ERROR")
        .into_iter()
        .find(|l| l.contains("Unhandled error in exception handler"))
        .ok_or(format!("not logged: {text:?}"))?;
    assert!(broken.contains("AttributeError: spam"), "{broken:?}");
    Ok(())
}

/// CPython's test_env_var_debug, in the shared `envdebug` module.
#[test]
fn test_env_var_debug() -> TestResult {
    envdebug::test_env_var_debug("EVLOOP_BASE_EVENTS_ENV_CHILD")
}

fn stop_loop_cb() {
    // CPython passes the loop as the callback's argument; a fn item cannot capture, so it
    // asks for the running loop.
    evloop::get_running_loop().expect("runs on the loop").stop();
}

async fn stop_loop_coro() {
    evloop::get_running_loop().expect("runs on the loop").stop();
}

#[test]
fn test_log_slow_callbacks() -> TestResult {
    let lp = EventLoop::new()?;
    let (logs, _guard) = Logs::capture();
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::ZERO);

    // slow callback
    lp.call_soon(stop_loop_cb);
    lp.run_forever()?;
    let warnings = logs.lines("WARN");
    // "^Executing <Handle.*stop_loop_cb.*> took .* seconds$": evloop names a callback by its
    // type (a fn item: its path), without asyncio's <Handle ...> repr.
    let last = warnings.last().ok_or("nothing logged")?;
    let message = &last[last.find("Executing ").ok_or(format!("{last:?}"))?..];
    assert!(message.contains("stop_loop_cb"), "{message:?}");
    assert!(
        message.contains(" took ") && message.ends_with(" seconds"),
        "{message:?}"
    );
    logs.clear();

    // slow task: "^Executing <Task.*stop_loop_coro.*> took .* seconds$"; evloop names a task
    // step by the task's name (Task-N), as asyncio's Task repr starts.
    let task = lp.create_task(stop_loop_coro());
    lp.run_forever()?;
    let warnings = logs.lines("WARN");
    let last = warnings.last().ok_or("nothing logged")?;
    let message = &last[last.find("Executing ").ok_or(format!("{last:?}"))?..];
    assert!(
        message.starts_with(&format!("Executing {} took ", task.name())),
        "{message:?}"
    );
    assert!(
        task.name().starts_with("Task-") && message.ends_with(" seconds"),
        "{message:?}"
    );
    Ok(())
}
