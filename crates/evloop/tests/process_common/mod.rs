//! Test cases shared by `process_pidfd.rs` and `process_sigchld.rs`: the same behaviour on
//! both reaping paths. Each case takes the reaper kind its binary expects.

#![allow(dead_code)]

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use evloop::EventLoop;
use evloop::process::{Child, Command};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn check_kind(child: &Child, expect: &str) {
    assert_eq!(child.reaper_kind(), expect, "{child:?}");
}

/// The state letter of `/proc/<pid>/stat`, or `None` once the process is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Waits (polling /proc, 10 s at most) until `pid` is gone: exited *and* reaped.
fn assert_reaped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match proc_state(pid) {
            None => return,
            Some(state) if Instant::now() > deadline => {
                panic!("process {pid} is still there, state {state}")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

pub(crate) fn echo_output(kind: &str) -> TestResult {
    evloop::run(async {
        let out = Command::new("echo")
            .args(["hello", "world"])
            .output()
            .await?;
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello world\n");
        assert!(out.stderr.is_empty());

        let child = Command::new("echo")
            .arg("x")
            .stdout(Stdio::piped())
            .spawn()?;
        check_kind(&child, kind);
        let out = child.wait_with_output().await?;
        assert_eq!(out.stdout, b"x\n");
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn exit_code(kind: &str) -> TestResult {
    evloop::run(async {
        let status = Command::new("sh").args(["-c", "exit 3"]).status().await?;
        assert_eq!(status.code(), Some(3));
        assert!(!status.success());

        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn()?;
        check_kind(&child, kind);
        let pid = child.id().expect("running");
        assert_eq!(child.wait().await?.code(), Some(7));
        // Again: the same status; the pid is no longer ours.
        assert_eq!(child.wait().await?.code(), Some(7));
        assert_eq!(child.try_wait()?.and_then(|s| s.code()), Some(7));
        assert_eq!(child.id(), None);
        assert_eq!(proc_state(pid), None);
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn stdin_cat_round_trip_1mib(kind: &str) -> TestResult {
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected = data.clone();
    evloop::run(async move {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        check_kind(&child, kind);
        let mut stdin = child.stdin.take().expect("piped");
        // Written by another task while this one reads: neither pipe may fill up.
        let writer = evloop::spawn(async move {
            stdin.write_all(&data).await?;
            stdin.flush().await?;
            drop(stdin);
            io::Result::Ok(())
        });
        let mut got = Vec::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_end(&mut got)
            .await?;
        writer.await.expect("writer task")?;
        assert!(child.wait().await?.success());
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "cat changed the data");
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn stderr_capture(kind: &str) -> TestResult {
    evloop::run(async {
        let out = Command::new("sh")
            .args(["-c", "echo to-out; echo to-err >&2; exit 1"])
            .output()
            .await?;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(out.stdout, b"to-out\n");
        assert_eq!(out.stderr, b"to-err\n");

        let mut child = Command::new("sh")
            .args(["-c", "echo oops >&2"])
            .stderr(Stdio::piped())
            .spawn()?;
        check_kind(&child, kind);
        assert!(child.stdout.is_none());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("piped")
            .read_to_string(&mut err)
            .await?;
        assert_eq!(err, "oops\n");
        assert!(child.wait().await?.success());
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn kill_sleep(kind: &str) -> TestResult {
    evloop::run(async {
        let mut child = Command::new("sleep").arg("100").spawn()?;
        check_kind(&child, kind);
        assert_eq!(child.try_wait()?, None);
        child.kill()?;
        let status = child.wait().await?;
        assert_eq!(status.signal(), Some(9));
        assert_eq!(status.code(), None);
        // Killing an exited (reaped) child is fine, and signals nobody.
        child.kill()?;
        child.start_kill()?;
        child.terminate()?;

        let mut child = Command::new("sleep").arg("100").spawn()?;
        child.terminate()?;
        assert_eq!(child.wait().await?.signal(), Some(15));
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn fifty_concurrent(kind: &str) -> TestResult {
    let codes = evloop::run(async {
        let mut children = Vec::new();
        for n in 0..50 {
            let child = Command::new("sh")
                .args(["-c", &format!("exit {n}")])
                .spawn()?;
            check_kind(&child, kind);
            children.push(child);
        }
        let waits = children.into_iter().map(|mut child| async move {
            let status = child.wait().await?;
            io::Result::Ok(status.code())
        });
        let results = evloop::gather(waits).await;
        results.into_iter().collect::<io::Result<Vec<_>>>()
    })??;
    let expected: Vec<Option<i32>> = (0..50).map(Some).collect();
    assert_eq!(codes, expected);
    Ok(())
}

pub(crate) fn fifty_concurrent_tasks(kind: &str) -> TestResult {
    let kind = kind.to_owned();
    let codes = evloop::run(async move {
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let kind = kind.clone();
                evloop::spawn(async move {
                    let mut child = Command::new("sh")
                        .args(["-c", &format!("exit {n}")])
                        .spawn()?;
                    check_kind(&child, &kind);
                    io::Result::Ok(child.wait().await?.code())
                })
            })
            .collect();
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.expect("task")?);
        }
        io::Result::Ok(codes)
    })??;
    assert_eq!(codes, (0..50).map(Some).collect::<Vec<_>>());
    Ok(())
}

/// A task still waiting for a child when its loop closes: the child is killed
/// (`kill_on_drop`) and reaped.
pub(crate) fn kill_on_drop_at_close(kind: &str) -> TestResult {
    let lp = EventLoop::new()?;
    let kind = kind.to_owned();
    let pid = lp.run_until_complete(async move {
        let mut child = Command::new("sleep")
            .arg("100")
            .kill_on_drop(true)
            .spawn()?;
        check_kind(&child, &kind);
        let pid = child.id().expect("running");
        evloop::spawn(async move {
            let _ = child.wait().await;
            unreachable!("sleep 100 was killed when the loop closed");
        });
        evloop::yield_now().await;
        io::Result::Ok(pid)
    })??;
    assert!(matches!(proc_state(pid), Some(s) if s != 'Z'));
    lp.close()?;
    assert_reaped(pid);
    Ok(())
}

/// A child still running when its loop closes, without `kill_on_drop`: it keeps running,
/// and is reaped by the background reaper once it exits.
pub(crate) fn orphan_reaped_after_close(kind: &str) -> TestResult {
    let lp = EventLoop::new()?;
    let kind = kind.to_owned();
    let pid = lp.run_until_complete(async move {
        let mut child = Command::new("sleep").arg("100").spawn()?;
        check_kind(&child, &kind);
        let pid = child.id().expect("running");
        evloop::spawn(async move {
            let _ = child.wait().await;
        });
        evloop::yield_now().await;
        io::Result::Ok(pid)
    })??;
    lp.close()?;
    // Still running: not killed.
    assert!(
        matches!(proc_state(pid), Some(s) if s != 'Z'),
        "{:?}",
        proc_state(pid)
    );
    // Make it exit; no zombie may be left.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    assert_reaped(pid);
    Ok(())
}

/// A child that exits by itself after its loop closed (its stdin pipe closed with the loop).
pub(crate) fn orphan_exits_after_close(kind: &str) -> TestResult {
    let lp = EventLoop::new()?;
    let kind = kind.to_owned();
    let pid = lp.run_until_complete(async move {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        check_kind(&child, &kind);
        let pid = child.id().expect("running");
        let stdin = child.stdin.take();
        evloop::spawn(async move {
            let _stdin = stdin;
            let _ = child.wait().await;
        });
        evloop::yield_now().await;
        io::Result::Ok(pid)
    })??;
    lp.close()?; // drops the task: stdin closes, cat exits
    assert_reaped(pid);
    Ok(())
}

/// A `Child` dropped without waiting, its process already exited: reaped on the spot or soon.
pub(crate) fn drop_without_wait(kind: &str) -> TestResult {
    let pid = evloop::run(async {
        let child = Command::new("true").stdout(Stdio::piped()).spawn()?;
        check_kind(&child, kind);
        let pid = child.id().expect("running");
        // Wait for it to exit without reaping: its stdout reaches end of file.
        let mut out = Vec::new();
        let mut child = child;
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_end(&mut out)
            .await?;
        drop(child);
        io::Result::Ok(pid)
    })??;
    assert_reaped(pid);
    Ok(())
}

pub(crate) fn errors(_kind: &str) -> TestResult {
    // Outside a running loop.
    let err = Command::new("true").spawn().expect_err("no loop");
    assert_eq!(err.to_string(), "no running event loop");
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<evloop::Error>());
    assert!(matches!(inner, Some(evloop::Error::NoRunningLoop)));

    evloop::run(async {
        let err = Command::new("/nonexistent/program")
            .spawn()
            .expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = Command::new("/nonexistent/program")
            .output()
            .await
            .expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        io::Result::Ok(())
    })??;
    Ok(())
}

pub(crate) fn builder(kind: &str) -> TestResult {
    evloop::run(async {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("printf '%s|%s|%s|' \"$A\" \"$B\" \"$C\"; pwd")
            .envs([("A", "1"), ("B", "2")])
            .env("C", "3")
            .env_remove("B")
            .current_dir("/tmp");
        assert!(!cmd.get_kill_on_drop());
        assert_eq!(cmd.as_std().get_program(), "sh");
        let out = cmd.output().await?;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1||3|/tmp\n");

        // env_clear: no PATH either, so give the full path.
        let out = Command::new("/bin/sh")
            .args(["-c", "echo \"${HOME:-unset}\""])
            .env_clear()
            .output()
            .await?;
        assert_eq!(out.stdout, b"unset\n");

        // From std's builder.
        let mut std_cmd = std::process::Command::new("echo");
        std_cmd.arg("from-std");
        let mut child = Command::from(std_cmd).stdout(Stdio::piped()).spawn()?;
        check_kind(&child, kind);
        let mut s = String::new();
        child
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut s)
            .await?;
        assert_eq!(s, "from-std\n");
        child.wait().await?;
        io::Result::Ok(())
    })??;
    Ok(())
}

/// One child's stdout handed to another child as its stdin (`TryFrom<ChildStdout> for Stdio`).
pub(crate) fn pipe_between_children(kind: &str) -> TestResult {
    evloop::run(async {
        let mut first = Command::new("printf")
            .arg("b\\na\\nc\\n")
            .stdout(Stdio::piped())
            .spawn()?;
        check_kind(&first, kind);
        let pipe = Stdio::try_from(first.stdout.take().expect("piped"))?;
        let sorted = Command::new("sort").stdin(pipe).output().await?;
        assert!(first.wait().await?.success());
        assert_eq!(sorted.stdout, b"a\nb\nc\n");
        io::Result::Ok(())
    })??;
    Ok(())
}

/// Other work goes on while children run: the loop is never blocked by a wait.
pub(crate) fn loop_not_blocked(kind: &str) -> TestResult {
    evloop::run(async {
        let mut child = Command::new("sh")
            .args(["-c", "read line; exit 5"])
            .stdin(Stdio::piped())
            .spawn()?;
        check_kind(&child, kind);
        let mut stdin = child.stdin.take().expect("piped");
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let waiter = evloop::spawn(async move { child.wait().await });
        for _ in 0..5 {
            evloop::yield_now().await;
            t.set(t.get() + 1);
        }
        assert!(!waiter.is_done());
        assert_eq!(ticks.get(), 5);
        stdin.write_all(b"go\n").await?;
        let status = waiter.await.expect("task")?;
        assert_eq!(status.code(), Some(5));
        io::Result::Ok(())
    })??;
    Ok(())
}
