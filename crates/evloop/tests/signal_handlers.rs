//! Signal handlers and signal streams with real signals, sent to this very process with
//! `kill`. Signals are process-wide: every test here holds `SERIAL` and uses its own signal.
//!
//! What a signal does once its handler is removed is checked in child processes: this binary
//! again, running only `helper_child` with `EVLOOP_SIGNAL_HELPER=<mode>` set.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use evloop::SignalHandlers;
use evloop::process::Command;
use evloop::signal::consts::{
    SIGCHLD, SIGHUP, SIGKILL, SIGPIPE, SIGSEGV, SIGSTOP, SIGUSR1, SIGUSR2, SIGWINCH,
};
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncWriteExt, StreamExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const HELPER_ENV: &str = "EVLOOP_SIGNAL_HELPER";
const LONG: Duration = Duration::from_secs(20);

/// Sends `signal` (a name for `kill`, e.g. "USR1") to `pid`.
fn kill(signal: &str, pid: u32) -> io::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()?;
    assert!(status.success(), "kill -{signal} {pid}: {status}");
    Ok(())
}

fn kill_self(signal: &str) -> io::Result<()> {
    kill(signal, std::process::id())
}

/// A one-shot event for the loop's thread: `set` from a callback, `wait` from a task.
#[derive(Clone, Default)]
struct Event(Rc<RefCell<(bool, Option<Waker>)>>);

impl Event {
    fn set(&self) {
        let mut inner = self.0.borrow_mut();
        inner.0 = true;
        if let Some(w) = inner.1.take() {
            w.wake();
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            let mut inner = self.0.borrow_mut();
            if inner.0 {
                Poll::Ready(())
            } else {
                inner.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

#[test]
fn handler_runs_on_the_loop_thread_exactly_once() -> TestResult {
    let _serial = serial();
    let test_thread = std::thread::current().id();
    evloop::run(async move {
        let lp = evloop::get_running_loop()?;
        let calls = Rc::new(RefCell::new(Vec::new()));
        let (seen, done) = (calls.clone(), Event::default());
        let fired = done.clone();
        lp.add_signal_handler(SIGUSR1, move || {
            seen.borrow_mut().push(std::thread::current().id());
            fired.set();
        })?;
        kill_self("USR1")?;
        evloop::timeout(LONG, done.wait()).await?;

        // A second signal, handled after the first: by then a duplicate call of the first
        // handler would have happened.
        let barrier = Event::default();
        let b = barrier.clone();
        lp.add_signal_handler(SIGUSR2, move || b.set())?;
        kill_self("USR2")?;
        evloop::timeout(LONG, barrier.wait()).await?;
        for _ in 0..3 {
            evloop::yield_now().await;
        }
        assert_eq!(*calls.borrow(), vec![test_thread]);

        assert!(lp.remove_signal_handler(SIGUSR1));
        assert!(!lp.remove_signal_handler(SIGUSR1));
        assert!(lp.remove_signal_handler(SIGUSR2));
        assert!(!lp.remove_signal_handler(SIGUSR2));
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

#[test]
fn a_new_handler_replaces_the_old_one() -> TestResult {
    let _serial = serial();
    evloop::run(async {
        let lp = evloop::get_running_loop()?;
        let old_calls = Rc::new(Cell::new(0));
        let o = old_calls.clone();
        lp.add_signal_handler(SIGWINCH, move || o.set(o.get() + 1))?;
        let done = Event::default();
        let d = done.clone();
        let new_calls = Rc::new(Cell::new(0));
        let n = new_calls.clone();
        lp.add_signal_handler(SIGWINCH, move || {
            n.set(n.get() + 1);
            d.set();
        })?;
        kill_self("WINCH")?;
        evloop::timeout(LONG, done.wait()).await?;
        assert_eq!((old_calls.get(), new_calls.get()), (0, 1));
        assert!(lp.remove_signal_handler(SIGWINCH));
        assert!(!lp.remove_signal_handler(SIGWINCH));
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

#[test]
fn a_panicking_handler_goes_to_the_exception_handler() -> TestResult {
    let _serial = serial();
    evloop::run(async {
        let lp = evloop::get_running_loop()?;
        let reported = Event::default();
        let r = reported.clone();
        let message = Rc::new(RefCell::new(String::new()));
        let m = message.clone();
        lp.set_exception_handler(Some(
            move |_: &evloop::EventLoop, ctx: &evloop::ExceptionContext| {
                *m.borrow_mut() = ctx.panic_message().unwrap_or_default().to_owned();
                r.set();
            },
        ));
        lp.add_signal_handler(SIGWINCH, || panic!("boom in a signal handler"))?;
        kill_self("WINCH")?;
        evloop::timeout(LONG, reported.wait()).await?;
        assert_eq!(*message.borrow(), "boom in a signal handler");
        assert!(lp.remove_signal_handler(SIGWINCH));
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

#[test]
fn signals_stream_yields_each_delivery() -> TestResult {
    let _serial = serial();
    evloop::run(async {
        let mut hangups = evloop::signal::signal(SIGHUP)?;
        assert_eq!(hangups.signal(), SIGHUP);
        kill_self("HUP")?;
        assert_eq!(evloop::timeout(LONG, hangups.recv()).await?, Some(SIGHUP));
        kill_self("HUP")?;
        assert_eq!(evloop::timeout(LONG, hangups.next()).await?, Some(SIGHUP));
        // Two streams of one signal both see it.
        let mut other = evloop::signal::signal(SIGHUP)?;
        kill_self("HUP")?;
        assert_eq!(evloop::timeout(LONG, hangups.recv()).await?, Some(SIGHUP));
        assert_eq!(evloop::timeout(LONG, other.recv()).await?, Some(SIGHUP));
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

#[test]
fn errors() -> TestResult {
    let _serial = serial();
    let lp = evloop::EventLoop::new()?;
    for sig in [SIGKILL, SIGSTOP, SIGSEGV, 0, -1, 1000] {
        match lp.add_signal_handler(sig, || {}) {
            Err(evloop::Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput),
            other => panic!("signal {sig}: {other:?}"),
        }
    }
    assert!(!lp.remove_signal_handler(SIGUSR1));
    assert!(!lp.remove_signal_handler(SIGKILL));

    let err = evloop::signal::signal(SIGWINCH).expect_err("no running loop");
    assert_eq!(err.to_string(), "no running event loop");
    lp.run_until_complete(async {
        let err = evloop::signal::signal(SIGKILL).expect_err("SIGKILL");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    })?;

    // Handlers go with their loop; a closed loop takes none.
    lp.add_signal_handler(SIGWINCH, || {})?;
    lp.close()?;
    assert!(!lp.remove_signal_handler(SIGWINCH));
    assert!(matches!(
        lp.add_signal_handler(SIGWINCH, || {}),
        Err(evloop::Error::Closed)
    ));
    Ok(())
}

/// The SIGCHLD reaper of `evloop::process` and a user's SIGCHLD handler share the signal.
#[test]
fn sigchld_handler_coexists_with_child_reaping() -> TestResult {
    let _serial = serial();
    evloop::run(async {
        let lp = evloop::get_running_loop()?;
        let got = Event::default();
        let g = got.clone();
        lp.add_signal_handler(SIGCHLD, move || g.set())?;
        evloop::process::force_sigchld_reaper(true);
        let child = Command::new("sh").args(["-c", "exit 4"]).spawn();
        evloop::process::force_sigchld_reaper(false);
        let mut child = child?;
        assert_eq!(child.reaper_kind(), "sigchld");
        assert_eq!(child.wait().await?.code(), Some(4));
        evloop::timeout(LONG, got.wait()).await?;
        assert!(lp.remove_signal_handler(SIGCHLD));
        Ok::<(), Box<dyn std::error::Error>>(())
    })??;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Dispositions, checked in child processes.

/// Runs in a child process only (see the module docs); a no-op in the normal test run.
#[test]
fn helper_child() -> TestResult {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return Ok(());
    };
    let wait_for_stdin = || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    };
    match mode.as_str() {
        // Handler added then removed: SIGUSR1 terminates the process again.
        "removed" => {
            evloop::run(async {
                let lp = evloop::get_running_loop()?;
                lp.add_signal_handler(SIGUSR1, || println!("handled"))?;
                assert!(lp.remove_signal_handler(SIGUSR1));
                Ok::<(), evloop::Error>(())
            })??;
            println!("ready");
            wait_for_stdin();
            println!("survived");
        }
        // Handler on a loop that is then closed: the same.
        "closed" => {
            let lp = evloop::EventLoop::new()?;
            lp.add_signal_handler(SIGUSR1, || println!("handled"))?;
            lp.close()?;
            println!("ready");
            wait_for_stdin();
            println!("survived");
        }
        // A stream, dropped: the same.
        "stream_dropped" => {
            evloop::run(async {
                let stream = evloop::signal::signal(SIGUSR1)?;
                drop(stream);
                io::Result::Ok(())
            })??;
            println!("ready");
            wait_for_stdin();
            println!("survived");
        }
        // While the handler is installed, SIGUSR1 runs it instead of terminating.
        "handled" => {
            evloop::run(async {
                let lp = evloop::get_running_loop()?;
                let done = Event::default();
                let d = done.clone();
                lp.add_signal_handler(SIGUSR1, move || {
                    println!("handled");
                    d.set();
                })?;
                println!("ready");
                done.wait().await;
                Ok::<(), evloop::Error>(())
            })??;
            println!("exiting");
        }
        // SIGPIPE is ignored in Rust programs: after a handler is removed, it stays ignored.
        // Raised by this thread, so it is handled before `raise` returns.
        "ignored_stays_ignored" => {
            evloop::run(async {
                let lp = evloop::get_running_loop()?;
                lp.add_signal_handler(SIGPIPE, || println!("handled"))?;
                assert!(lp.remove_signal_handler(SIGPIPE));
                Ok::<(), evloop::Error>(())
            })??;
            println!("ready");
            signal_hook::low_level::raise(SIGPIPE)?;
            println!("survived");
        }
        other => panic!("unknown helper mode {other}"),
    }
    Ok(())
}

/// Runs `helper_child` in `mode`; waits for "ready", sends `signal` (if any), writes a line to
/// its stdin; returns its exit status and output.
///
/// The helper has several threads (libtest's), and the kernel may run the OS signal handler on
/// another thread than the one reading stdin: what it printed after "ready" proves nothing
/// about when the signal was handled, only its exit status does.
fn run_helper(
    mode: &str,
    signal: Option<&str>,
) -> Result<(std::process::ExitStatus, Vec<String>), Box<dyn std::error::Error>> {
    let mode = mode.to_owned();
    let signal = signal.map(str::to_owned);
    let out = evloop::run(async move {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "helper_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(HELPER_ENV, &mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut seen = Vec::new();
        loop {
            match evloop::timeout(LONG, lines.next()).await? {
                Some(line) => {
                    let line = line?;
                    // libtest may print "test helper_child ... " in front of it.
                    let ready = line.ends_with("ready");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                None => panic!("the helper ended before it was ready: {seen:?}"),
            }
        }
        if let Some(signal) = signal {
            kill(&signal, child.id().expect("running"))?;
        }
        let mut stdin = child.stdin.take().expect("piped");
        let _ = stdin.write_all(b"go on\n").await;
        drop(stdin);
        while let Some(line) = evloop::timeout(LONG, lines.next()).await? {
            seen.push(line?);
        }
        let status = evloop::timeout(LONG, child.wait()).await??;
        Ok::<_, Box<dyn std::error::Error>>((status, seen))
    })??;
    Ok(out)
}

/// Whether the helper printed `word` (at the end of a line: libtest's own output may precede it).
fn has(lines: &[String], word: &str) -> bool {
    lines.iter().any(|l| l.ends_with(word))
}

#[test]
fn removing_the_handler_restores_the_default_action() -> TestResult {
    for mode in ["removed", "closed", "stream_dropped"] {
        let (status, lines) = run_helper(mode, Some("USR1"))?;
        assert_eq!(
            status.signal(),
            Some(SIGUSR1),
            "{mode}: {status}, output {lines:?}"
        );
        assert!(!has(&lines, "handled"), "{mode}: {lines:?}");
    }
    Ok(())
}

#[test]
fn an_installed_handler_keeps_the_process_alive() -> TestResult {
    let (status, lines) = run_helper("handled", Some("USR1"))?;
    assert!(status.success(), "{status}, output {lines:?}");
    assert!(has(&lines, "handled"), "{lines:?}");
    assert!(has(&lines, "exiting"), "{lines:?}");
    Ok(())
}

#[test]
fn an_ignored_signal_stays_ignored_after_removal() -> TestResult {
    let (status, lines) = run_helper("ignored_stays_ignored", None)?;
    assert!(status.success(), "{status}, output {lines:?}");
    assert!(has(&lines, "survived"), "{lines:?}");
    assert!(!has(&lines, "handled"), "{lines:?}");
    Ok(())
}
