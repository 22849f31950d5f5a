//! A task dump printed on a real SIGUSR1 (sent to this very process with `kill`), and the
//! `tracing` events of signal delivery and of a saturated default executor.
//!
//! Signals are process-wide: this binary is the only one that sends SIGUSR1 to itself while
//! a handler for it is installed, and its tests take `SERIAL`.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use evloop::executor::ThreadPool;
use evloop::signal::consts::SIGUSR1;
use evloop::{EventLoop, RunInExecutor, SignalHandlers, TaskBuilder};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// Runs `f` with a fmt subscriber (DEBUG and up) writing into a buffer; returns the text.
fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
    let buf = Buf::default();
    let b = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || b.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

fn kill_self(signal: &str) -> io::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), std::process::id().to_string()])
        .status()?;
    assert!(status.success(), "kill -{signal}: {status}");
    Ok(())
}

#[test]
fn sigusr1_prints_a_task_dump_with_the_chain_of_awaited_tasks() {
    let _serial = serial();
    let lp = EventLoop::new().unwrap();
    let dumps: Rc<RefCell<Vec<String>>> = Rc::default();
    let (result, log) = capture(|| {
        let d = dumps.clone();
        let probe = lp.clone();
        // The documented recipe: dump the loop's tasks from a SIGUSR1 handler.
        lp.add_signal_handler(SIGUSR1, move || {
            d.borrow_mut().push(probe.dump_tasks().to_string());
        })
        .unwrap();
        let d = dumps.clone();
        lp.run_until_complete(async move {
            let leaf = TaskBuilder::new()
                .name("leaf")
                .spawn(std::future::pending::<()>());
            let middle = TaskBuilder::new().name("middle").spawn(leaf);
            let top = TaskBuilder::new().name("top").spawn(middle);
            evloop::yield_now().await; // all three started and wait on each other
            kill_self("USR1").unwrap();
            // Wait (on the loop) until the handler ran.
            while d.borrow().is_empty() {
                evloop::sleep(Duration::from_millis(1)).await;
            }
            top.cancel();
            let _ = top.await;
        })
    });
    result.unwrap();
    assert!(lp.remove_signal_handler(SIGUSR1));
    let dumps = dumps.borrow();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let dump = &dumps[0];
    assert!(dump.starts_with("4 live task(s)"), "{dump}");
    assert!(dump.contains("top (id "), "{dump}");
    assert!(dump.contains(&format!("spawned at {}:", file!())), "{dump}");
    let awaiting = dump
        .lines()
        .find(|l| l.contains("awaiting middle"))
        .unwrap_or_else(|| panic!("{dump}"));
    assert!(awaiting.contains("-> leaf (id "), "{dump}");
    // Delivery was logged (DEBUG), once.
    assert_eq!(
        log.matches("signal delivered to its handler").count(),
        1,
        "{log}"
    );
    lp.close().unwrap();
}

#[test]
fn a_saturated_default_executor_says_so_once() {
    let _serial = serial();
    let lp = EventLoop::new().unwrap();
    let pool = ThreadPool::builder().max_threads(1).build();
    lp.set_default_executor(pool.clone());
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (sum, log) = capture(|| {
        lp.run_until_complete(async {
            let first = lp.run_in_executor(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                1
            });
            // The pool's one thread is busy with `first` (a blocking wait on the loop thread:
            // the job runs on the pool's thread meanwhile).
            started_rx.recv().unwrap();
            let queued: Vec<_> = (0..3).map(|i| lp.run_in_executor(move || i)).collect();
            release_tx.send(()).unwrap();
            let mut sum = first.await.unwrap();
            for q in queued {
                sum += q.await.unwrap();
            }
            sum
        })
    });
    assert_eq!(sum.unwrap(), 1 + 3);
    // Once for the first job that had to wait, not for each of the three.
    let saturated = log.matches("the default executor is saturated").count();
    assert_eq!(saturated, 1, "{log}");
    lp.close().unwrap();
}
