//! Ctrl-C with real signals, in real child processes (a `harness = false` test: both the
//! parent checks and the children run `main` on the process's main thread, where `run()`
//! watches SIGINT).
//!
//! The parent spawns the `ctrl_c` example, and this very binary again in "child" modes
//! (selected by the `EVLOOP_CTRL_C_CHILD` environment variable), waits for a line on the
//! child's stdout that says it is ready, sends SIGINT with `kill -INT <pid>`, and checks what
//! the child printed and how it ended. A watchdog kills a child that hangs, so a regression
//! fails instead of hanging.

mod exampleutil;

use exampleutil::build_example;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CHILD_ENV: &str = "EVLOOP_CTRL_C_CHILD";
const SIGINT: i32 = 2;
const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The children.

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn read_stdin_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim_end().to_owned()
}

/// Prints "shutting down" when dropped, then blocks until stdin says otherwise.
struct SlowShutdown;

impl Drop for SlowShutdown {
    fn drop(&mut self) {
        say("shutting down");
        let _ = read_stdin_line();
        say("shutdown finished");
    }
}

fn child(mode: &str) -> ExitCode {
    match mode {
        // The loop is stuck in blocking code: the first Ctrl-C cannot be acted upon, the
        // second terminates the process.
        "stuck" => {
            let r = evloop::run(async {
                say("ready");
                loop {
                    let line = read_stdin_line();
                    if line.is_empty() {
                        break;
                    }
                    say(&format!("echo: {line}"));
                }
            });
            say(&format!("run returned {r:?}"));
        }
        // A second Ctrl-C while run() shuts down terminates the process.
        "shutdown" => {
            let r = evloop::run(async {
                let guard = SlowShutdown;
                let _task = evloop::spawn(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                });
                say("ready");
                evloop::sleep(Duration::from_secs(3600)).await;
            });
            say(&format!("run returned {r:?}"));
        }
        // After run() returned, Ctrl-C has its default effect again.
        "after" => {
            let r = evloop::run(async { 7 });
            say(&format!("after run: {r:?}"));
            let _ = read_stdin_line();
            say("still alive");
        }
        // A pending ctrl_c() future takes Ctrl-C: the run is not interrupted.
        "ctrl_c_future" => {
            let r = evloop::run(async {
                let ctrl_c = evloop::signal::ctrl_c(); // listening from here on
                say("ready");
                ctrl_c.await.map(|()| "graceful")
            });
            say(&format!("run returned {r:?}"));
        }
        // The same, with ctrl_c() awaited by a task the main future waits for.
        "ctrl_c_task" => {
            let r = evloop::run(async {
                let waiter =
                    evloop::spawn(async { evloop::signal::ctrl_c().await.map(|()| "graceful") });
                evloop::yield_now().await; // let the task register its listener
                say("ready");
                waiter.await.expect("task")
            });
            say(&format!("run returned {r:?}"));
        }
        // A SIGINT that arrived before a ctrl_c() was created is not that ctrl_c()'s: the run
        // is interrupted by it.
        "ctrl_c_late" => {
            let r = evloop::run(async {
                say("ready");
                let _ = read_stdin_line(); // blocks the loop while the SIGINT arrives
                let ctrl_c = evloop::signal::ctrl_c();
                say("listening");
                ctrl_c.await.map(|()| "graceful")
            });
            say(&format!("run returned {r:?}"));
        }
        // A runner configured not to watch Ctrl-C leaves SIGINT alone.
        "ctrl_c_off" => {
            let r = evloop::Runner::builder().ctrl_c(false).build().run(async {
                say("ready");
                let _ = read_stdin_line();
            });
            say(&format!("run returned {r:?}"));
        }
        other => {
            say(&format!("unknown child mode {other}"));
            return ExitCode::from(3);
        }
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------
// The parent.

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    lines: Vec<String>,
    done: Arc<AtomicBool>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Result<Proc, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let done = Arc::new(AtomicBool::new(false));
        // Watchdog: a child that hangs is killed (its stdout then ends, and the check fails).
        let pid = child.id();
        let flag = done.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while start.elapsed() < WATCHDOG {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(200));
            }
            if !flag.load(Ordering::SeqCst) {
                eprintln!("watchdog: killing child {pid}");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        });
        Ok(Proc {
            child,
            stdin,
            stdout,
            lines: Vec::new(),
            done,
        })
    }

    fn child_mode(mode: &str) -> Result<Proc, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.env(CHILD_ENV, mode);
        Proc::spawn(cmd)
    }

    /// Reads lines until one equals `want` (or starts with it).
    fn expect_line(&mut self, want: &str) -> Result<(), String> {
        loop {
            let mut line = String::new();
            let n = self
                .stdout
                .read_line(&mut line)
                .map_err(|e| format!("reading the child's stdout: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "no line {want:?}; the child printed {:?}",
                    self.lines
                ));
            }
            let line = line.trim_end().to_owned();
            self.lines.push(line.clone());
            if line.starts_with(want) {
                return Ok(());
            }
        }
    }

    fn sigint(&self) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("running kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -INT: {status}"))
        }
    }

    fn send_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}").map_err(|e| format!("writing to the child: {e}"))?;
        stdin.flush().map_err(|e| e.to_string())
    }

    /// Reads the rest of the output and waits for the child.
    fn finish(mut self) -> Result<(ExitStatus, Vec<String>), String> {
        drop(self.stdin.take());
        let mut rest = String::new();
        loop {
            rest.clear();
            match self.stdout.read_line(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(_) => self.lines.push(rest.trim_end().to_owned()),
            }
        }
        let status = self.child.wait().map_err(|e| e.to_string())?;
        self.done.store(true, Ordering::SeqCst);
        Ok((status, self.lines))
    }
}

fn killed_by_sigint(status: ExitStatus) -> bool {
    status.signal() == Some(SIGINT)
}

fn example_is_interrupted() -> Result<(), String> {
    let exe = build_example("ctrl_c", &[])?;
    let mut cmd = Command::new(exe);
    cmd.arg("3600");
    let mut p = Proc::spawn(cmd)?;
    p.expect_line("ready")?;
    p.sigint()?;
    let (status, lines) = p.finish()?;
    if status.code() != Some(130) {
        return Err(format!("exit status {status}, output {lines:?}"));
    }
    for want in [
        "background task cancelled",
        "interrupted: interrupted by Ctrl-C",
    ] {
        if !lines.iter().any(|l| l == want) {
            return Err(format!("no line {want:?} in {lines:?}"));
        }
    }
    Ok(())
}

fn stuck_loop_second_ctrl_c_kills() -> Result<(), String> {
    let mut p = Proc::child_mode("stuck")?;
    p.expect_line("ready")?;
    p.sigint()?;
    // The child answering proves it got past the first SIGINT alive (the signal was
    // pending before its read returned, so it has been handled by then).
    p.send_line("ping")?;
    p.expect_line("echo: ping")?;
    p.sigint()?;
    let (status, lines) = p.finish()?;
    if !killed_by_sigint(status) {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn second_ctrl_c_during_shutdown_kills() -> Result<(), String> {
    let mut p = Proc::child_mode("shutdown")?;
    p.expect_line("ready")?;
    p.sigint()?;
    p.expect_line("shutting down")?;
    p.sigint()?;
    let (status, lines) = p.finish()?;
    if !killed_by_sigint(status) || lines.iter().any(|l| l == "shutdown finished") {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn one_ctrl_c_then_clean_shutdown() -> Result<(), String> {
    let mut p = Proc::child_mode("shutdown")?;
    p.expect_line("ready")?;
    p.sigint()?;
    p.expect_line("shutting down")?;
    p.send_line("go on")?;
    p.expect_line("shutdown finished")?;
    p.expect_line("run returned Err(Interrupted)")?;
    let (status, lines) = p.finish()?;
    if !status.success() {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn after_run_ctrl_c_has_its_default_effect() -> Result<(), String> {
    let mut p = Proc::child_mode("after")?;
    p.expect_line("after run: Ok(7)")?;
    p.sigint()?;
    let (status, lines) = p.finish()?;
    if !killed_by_sigint(status) || lines.iter().any(|l| l == "still alive") {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn ctrl_c_future_takes_the_signal(mode: &str) -> Result<(), String> {
    let mut p = Proc::child_mode(mode)?;
    p.expect_line("ready")?;
    p.sigint()?;
    p.expect_line("run returned")?;
    let (status, lines) = p.finish()?;
    let last = lines.last().cloned().unwrap_or_default();
    if !status.success() || last != "run returned Ok(Ok(\"graceful\"))" {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn a_sigint_before_ctrl_c_was_created_interrupts_the_run() -> Result<(), String> {
    let mut p = Proc::child_mode("ctrl_c_late")?;
    p.expect_line("ready")?;
    p.sigint()?;
    p.send_line("go")?;
    p.expect_line("listening")?;
    p.expect_line("run returned")?;
    let (status, lines) = p.finish()?;
    let last = lines.last().cloned().unwrap_or_default();
    if !status.success() || last != "run returned Err(Interrupted)" {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

fn runner_with_ctrl_c_off_leaves_sigint_alone() -> Result<(), String> {
    let mut p = Proc::child_mode("ctrl_c_off")?;
    p.expect_line("ready")?;
    p.sigint()?;
    let (status, lines) = p.finish()?;
    if !killed_by_sigint(status) {
        return Err(format!("status {status}, output {lines:?}"));
    }
    Ok(())
}

/// Whether this process was started with SIGINT ignored (e.g. as a background job of a
/// non-interactive shell). The children inherit that, and evloop then gives SIGINT back its
/// *ignored* disposition when it stops listening: the checks that expect SIGINT to terminate
/// a child do not apply.
fn sigint_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (SIGINT - 1)) != 0)
}

fn main() -> ExitCode {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        return child(&mode);
    }
    type Check = (&'static str, bool, fn() -> Result<(), String>);
    // (name, expects SIGINT to terminate a child, check)
    let checks: &[Check] = &[
        ("example_is_interrupted", false, example_is_interrupted),
        (
            "stuck_loop_second_ctrl_c_kills",
            true,
            stuck_loop_second_ctrl_c_kills,
        ),
        (
            "second_ctrl_c_during_shutdown_kills",
            true,
            second_ctrl_c_during_shutdown_kills,
        ),
        (
            "one_ctrl_c_then_clean_shutdown",
            false,
            one_ctrl_c_then_clean_shutdown,
        ),
        (
            "after_run_ctrl_c_has_its_default_effect",
            true,
            after_run_ctrl_c_has_its_default_effect,
        ),
        ("ctrl_c_future_in_main_takes_the_signal", false, || {
            ctrl_c_future_takes_the_signal("ctrl_c_future")
        }),
        ("ctrl_c_future_in_a_task_takes_the_signal", false, || {
            ctrl_c_future_takes_the_signal("ctrl_c_task")
        }),
        (
            "a_sigint_before_ctrl_c_was_created_interrupts_the_run",
            false,
            a_sigint_before_ctrl_c_was_created_interrupts_the_run,
        ),
        (
            "runner_with_ctrl_c_off_leaves_sigint_alone",
            true,
            runner_with_ctrl_c_off_leaves_sigint_alone,
        ),
    ];
    let ignored = sigint_ignored();
    if ignored {
        println!(
            "note: SIGINT is ignored in this process; skipping the checks that expect it to terminate"
        );
    }
    let mut failed = 0;
    let mut skipped = 0;
    for (name, kills, check) in checks {
        if *kills && ignored {
            skipped += 1;
            println!("test {name} ... skipped (SIGINT ignored)");
            continue;
        }
        match check() {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n    {why}");
            }
        }
    }
    let passed = checks.len() - failed - skipped;
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
