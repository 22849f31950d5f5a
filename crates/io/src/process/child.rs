//! [`Child`]: a spawned process, awaited on the loop.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::process::{ExitStatus, Output};
use std::task::{Context, Poll, ready};

use evloop_core::EventLoop;

use super::pipe::{ChildStderr, ChildStdin, ChildStdout, poll_read_to_end};
use super::reap::{ExitWatch, orphan};

/// A child process spawned by [`Command::spawn`](super::Command::spawn) on the running loop
/// (asyncio's `Process`, tokio's `Child`).
///
/// Its standard streams, when [piped](std::process::Stdio::piped), are async pipes in the
/// public fields. Its exit is awaited with [`wait`](Child::wait) without blocking the loop.
/// A `Child` belongs to the loop it was spawned on: await it there.
///
/// Dropping a `Child` whose exit status has not been collected does not kill it (unless
/// [`kill_on_drop`](super::Command::kill_on_drop) was set) and does not leave a zombie: it is
/// handed to a background reaper that collects it when it exits. The same happens when the
/// loop closes with a task still waiting for a child.
///
/// ```
/// use evloop_io::process::Command;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn()?;
///     assert!(child.id().is_some());
///     let status = child.wait().await?;
///     assert_eq!(status.code(), Some(3));
///     assert!(child.id().is_none()); // reaped: the pid may belong to someone else now
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Child {
    /// The child's stdin, if it was piped. Drop it to close the pipe.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    /// `Some` until dropped (then handed to the reaper if still running).
    child: Option<std::process::Child>,
    status: Option<ExitStatus>,
    exit: ExitWatch,
    kill_on_drop: bool,
}

impl Child {
    /// Wraps a child just spawned on `lp`. On error the child is killed (and reaped).
    pub(super) fn new(
        lp: &EventLoop,
        mut child: std::process::Child,
        kill_on_drop: bool,
    ) -> io::Result<Child> {
        let reactor = lp.reactor();
        let parts = (|| {
            let stdin = child
                .stdin
                .take()
                .map(|io| ChildStdin::new(io, reactor))
                .transpose()?;
            let stdout = child
                .stdout
                .take()
                .map(|io| ChildStdout::new(io, reactor))
                .transpose()?;
            let stderr = child
                .stderr
                .take()
                .map(|io| ChildStderr::new(io, reactor))
                .transpose()?;
            let exit = ExitWatch::new(lp, &child)?;
            io::Result::Ok((stdin, stdout, stderr, exit))
        })();
        match parts {
            Ok((stdin, stdout, stderr, exit)) => Ok(Child {
                stdin,
                stdout,
                stderr,
                child: Some(child),
                status: None,
                exit,
                kill_on_drop,
            }),
            Err(e) => {
                if let Err(kill) = child.kill() {
                    tracing::debug!(error = %kill, "killing a child that could not be set up");
                }
                orphan(child);
                Err(e)
            }
        }
    }

    fn std(&mut self) -> &mut std::process::Child {
        self.child
            .as_mut()
            // cannot fail: `child` is only taken in `Drop`.
            .expect("a Child holds its process until dropped")
    }

    /// The OS process id, or `None` once the exit status was collected (the pid may then be
    /// reused by another process).
    pub fn id(&self) -> Option<u32> {
        match (&self.child, self.status) {
            (Some(child), None) => Some(child.id()),
            _ => None,
        }
    }

    /// Waits for the child to exit and returns its status; the loop runs other work meanwhile.
    ///
    /// Closes the child's stdin first (as std's `wait` does), so a child that reads its input
    /// to the end can finish. Can be called again: it then returns the same status. Cancelling
    /// it (dropping the future) is harmless.
    ///
    /// Does not read stdout/stderr: a child that fills a pipe nobody reads blocks forever.
    /// Use [`wait_with_output`](Child::wait_with_output) to collect them.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        poll_fn(|cx| self.poll_wait(cx)).await
    }

    /// Polls for the child's exit (the poll form of [`wait`](Child::wait), which does not
    /// close stdin).
    pub fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        if let Some(status) = self.status {
            return Poll::Ready(Ok(status));
        }
        let child = self
            .child
            .as_mut()
            // cannot fail: `child` is only taken in `Drop`.
            .expect("a Child holds its process until dropped");
        let result = match &self.exit {
            #[cfg(target_os = "linux")]
            ExitWatch::PidFd(pidfd) => ready!(pidfd.poll_read_with(cx, |_| {
                match child.try_wait() {
                    Ok(Some(status)) => Ok(status),
                    Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(e),
                }
            })),
            ExitWatch::SigChld(notifier) => {
                // Registered before looking, so an exit right after the look still wakes us.
                notifier.register(cx.waker());
                match child.try_wait() {
                    Ok(Some(status)) => Ok(status),
                    Ok(None) => return Poll::Pending,
                    Err(e) => Err(e),
                }
            }
        };
        if let Ok(status) = result {
            self.status = Some(status);
        }
        Poll::Ready(result)
    }

    /// The exit status if the child has exited, without waiting (std's `try_wait`).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let status = self.std().try_wait()?;
        self.status = status;
        Ok(status)
    }

    /// Sends SIGKILL to the child (std's `kill`), without waiting for it to exit; follow with
    /// [`wait`](Child::wait) to collect the status. `Ok(())` if it has already exited.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use evloop_io::process::Command;
    ///
    /// evloop_core::EventLoop::new()?.run_until_complete(async {
    ///     let mut child = Command::new("sleep").arg("100").spawn()?;
    ///     child.kill()?;
    ///     let status = child.wait().await?;
    ///     assert_eq!(status.signal(), Some(9));
    ///     std::io::Result::Ok(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.std().kill()
    }

    /// tokio's name for [`kill`](Child::kill): sends SIGKILL and returns at once.
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.kill()
    }

    /// Sends `signal` (e.g. [`SIGTERM`](crate::signal::consts::SIGTERM)) to the child
    /// (asyncio's `send_signal`). Does nothing if the child has already exited, so a signal
    /// never reaches a process that reused its pid. Real-time signals are not supported
    /// (`InvalidInput`).
    pub fn send_signal(&mut self, signal: i32) -> io::Result<()> {
        use rustix::process::{Pid, Signal, kill_process};
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let sig = Signal::from_named_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send signal {signal}"),
            )
        })?;
        #[cfg(target_os = "linux")]
        if let ExitWatch::PidFd(pidfd) = &self.exit {
            return Ok(rustix::process::pidfd_send_signal(pidfd.get_ref(), sig)?);
        }
        // Not reaped yet (try_wait said so), so the pid is still this child's.
        Ok(kill_process(Pid::from_child(self.std()), sig)?)
    }

    /// Sends SIGTERM (asyncio's `terminate`).
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(signal_hook::consts::SIGTERM)
    }

    /// Waits for the child to exit while collecting all of its stdout and stderr (the piped
    /// ones; the others are left empty), std's `wait_with_output`. Closes stdin first.
    ///
    /// ```
    /// use std::process::Stdio;
    /// use evloop_io::process::Command;
    ///
    /// evloop_core::EventLoop::new()?.run_until_complete(async {
    ///     let child = Command::new("sh")
    ///         .args(["-c", "echo out; echo err >&2"])
    ///         .stdout(Stdio::piped())
    ///         .stderr(Stdio::piped())
    ///         .spawn()?;
    ///     let output = child.wait_with_output().await?;
    ///     assert!(output.status.success());
    ///     assert_eq!(output.stdout, b"out\n");
    ///     assert_eq!(output.stderr, b"err\n");
    ///     std::io::Result::Ok(())
    /// })??;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let mut stdout = self.stdout.take();
        let mut stderr = self.stderr.take();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut status = None;
        poll_fn(|cx| {
            if let Some(pipe) = stdout.as_mut() {
                if ready_or_err(poll_read_to_end(pipe, cx, &mut out))? {
                    stdout = None;
                }
            }
            if let Some(pipe) = stderr.as_mut() {
                if ready_or_err(poll_read_to_end(pipe, cx, &mut err))? {
                    stderr = None;
                }
            }
            if status.is_none() {
                if let Poll::Ready(s) = self.poll_wait(cx) {
                    status = Some(s?);
                }
            }
            match status {
                Some(status) if stdout.is_none() && stderr.is_none() => Poll::Ready(Ok(status)),
                _ => Poll::Pending,
            }
        })
        .await
        .map(|status| Output {
            status,
            stdout: std::mem::take(&mut out),
            stderr: std::mem::take(&mut err),
        })
    }

    #[doc(hidden)]
    /// How this child's exit is noticed: `"pidfd"` or `"sigchld"` (for tests).
    pub fn reaper_kind(&self) -> &'static str {
        self.exit.kind()
    }
}

/// `Ok(true)` when the poll finished, `Ok(false)` while pending, the error if it failed.
fn ready_or_err(poll: Poll<io::Result<()>>) -> io::Result<bool> {
    match poll {
        Poll::Ready(Ok(())) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(false),
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.status.is_some() {
            return;
        }
        if self.kill_on_drop {
            if let Err(e) = child.kill() {
                tracing::debug!(error = %e, pid = child.id(), "kill_on_drop: kill failed");
            }
        }
        orphan(child);
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.child.as_ref().map(std::process::Child::id))
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("reaper", &self.exit.kind())
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}
