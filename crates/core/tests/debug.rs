//! Debug mode: `set_debug`/`get_debug`, slow-callback warnings (`tracing::warn!`
//! "Executing … took … seconds"), and the default exception handler's logging.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::run_one;
use evloop_core::{EventLoop, ExceptionContext};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a fmt subscriber writing into a buffer (this thread only); returns the text.
fn capture(f: impl FnOnce()) -> String {
    let buf = Buf::default();
    let b = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || b.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let out = buf.0.lock().unwrap().clone();
    String::from_utf8(out).unwrap()
}

/// Busy-waits (on the clock, not a sleep) for `d`.
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn set_debug_and_get_debug() {
    let lp = EventLoop::new().unwrap();
    if std::env::var_os("EVLOOP_DEBUG").is_none() {
        assert!(!lp.get_debug());
    }
    lp.set_debug(true);
    assert!(lp.get_debug());
    lp.set_debug(false);
    assert!(!lp.get_debug());
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(100));
    lp.set_slow_callback_duration(Duration::from_millis(5));
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(5));
}

#[test]
fn a_slow_callback_in_debug_mode_logs_a_warning() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(5));
    let text = capture(|| {
        lp.call_soon(|| spin_for(Duration::from_millis(20)));
        run_one(&lp);
    });
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("Executing"), "{text}");
    assert!(text.contains("seconds"), "{text}");
    assert!(text.contains("took 0."), "{text}");
}

#[test]
fn a_slow_task_step_in_debug_mode_logs_a_warning_naming_the_task() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(5));
    let text = capture(|| {
        let task = lp.create_task(async { spin_for(Duration::from_millis(20)) });
        task.set_name("slowpoke");
        lp.run_until_complete(task).unwrap().unwrap();
    });
    assert!(text.contains("Executing slowpoke took 0."), "{text}");
    assert!(text.contains("seconds"), "{text}");
}

#[test]
fn a_slow_timer_callback_in_debug_mode_logs_a_warning() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(5));
    let text = capture(|| {
        lp.call_later(Duration::ZERO, || spin_for(Duration::from_millis(20)));
        run_one(&lp);
    });
    assert!(
        text.contains("Executing") && text.contains("seconds"),
        "{text}"
    );
}

#[test]
fn no_slow_callback_warning_outside_debug_mode() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(false);
    lp.set_slow_callback_duration(Duration::from_millis(1));
    let text = capture(|| {
        lp.call_soon(|| spin_for(Duration::from_millis(10)));
        run_one(&lp);
    });
    assert!(!text.contains("Executing"), "{text}");
}

#[test]
fn no_warning_for_fast_callbacks_in_debug_mode() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_secs(30));
    let text = capture(|| {
        lp.call_soon(|| {});
        let _t = lp.create_task(async {});
        run_one(&lp);
    });
    assert!(!text.contains("Executing"), "{text}");
}

#[test]
fn default_exception_handler_logs_an_error() {
    let lp = EventLoop::new().unwrap();
    let task = lp.create_task(async {});
    task.set_name("the-task");
    let text = capture(|| {
        lp.default_exception_handler(
            &ExceptionContext::new("something broke")
                .with_panic(Box::new("the payload"))
                .with_task(task.as_ref()),
        );
    });
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("something broke"), "{text}");
    assert!(text.contains("the payload"), "{text}");
    assert!(text.contains("the-task"), "{text}");
}

#[test]
fn without_a_handler_a_panicking_callback_is_logged_by_the_default_handler() {
    let lp = EventLoop::new().unwrap();
    let text = capture(|| {
        lp.call_soon(|| panic!("logged boom"));
        run_one(&lp);
    });
    assert!(text.contains("Exception in callback"), "{text}");
    assert!(text.contains("logged boom"), "{text}");
}

#[test]
fn a_panicking_handler_falls_back_to_the_default_handler() {
    let lp = EventLoop::new().unwrap();
    lp.set_exception_handler(Some(|_: &EventLoop, _: &ExceptionContext| {
        panic!("handler boom")
    }));
    let text = capture(|| {
        lp.call_soon(|| panic!("original boom"));
        run_one(&lp);
    });
    assert!(text.contains("original boom"), "{text}");
    assert!(text.contains("handler boom"), "{text}");
}

#[test]
fn loop_debug_format_mentions_its_state() {
    let lp = EventLoop::new().unwrap();
    lp.set_debug(true);
    let s = format!("{lp:?}");
    assert!(
        s.contains("running=false") && s.contains("closed=false") && s.contains("debug=true"),
        "{s}"
    );
}
