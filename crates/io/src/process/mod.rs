//! Subprocesses: asyncio's `create_subprocess_exec`, written as tokio's `process` module.
//!
//! [`Command`] is std's builder ([`std::process::Command`], wrapped), with
//! [`spawn`](Command::spawn), [`output`](Command::output) and [`status`](Command::status)
//! that never block the loop. A [`Child`] has its piped standard streams as async pipes
//! ([`ChildStdin`] is a `futures_io::AsyncWrite`, [`ChildStdout`] / [`ChildStderr`] are
//! `futures_io::AsyncRead`, all on the running loop's reactor) and an async
//! [`wait`](Child::wait).
//!
//! ```
//! use std::process::Stdio;
//! use evloop_io::process::Command;
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! evloop_core::EventLoop::new()?.run_until_complete(async {
//!     // Output and exit status, all at once.
//!     let out = Command::new("echo").arg("hello").output().await?;
//!     assert_eq!(out.stdout, b"hello\n");
//!     assert!(out.status.success());
//!
//!     // Talk to a child through its pipes.
//!     let mut child = Command::new("tr")
//!         .args(["a-z", "A-Z"])
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let mut stdin = child.stdin.take().expect("piped");
//!     stdin.write_all(b"shout\n").await?;
//!     drop(stdin); // end of file for tr
//!     let mut text = String::new();
//!     child.stdout.take().expect("piped").read_to_string(&mut text).await?;
//!     assert_eq!(text, "SHOUT\n");
//!     assert!(child.wait().await?.success());
//!     std::io::Result::Ok(())
//! })??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reaping
//!
//! On Linux ≥ 5.4 each child gets a pidfd that the loop's reactor watches; elsewhere (or when
//! `pidfd_open` fails) a loop subscribes to SIGCHLD through [`signal`](crate::signal)'s
//! machinery and re-checks its waiting children at every SIGCHLD. A `Child` dropped before it
//! was reaped — its task cancelled, its loop closed — is handed to a background thread that
//! reaps it when it exits (after killing it, with [`Command::kill_on_drop`]): no zombies.
//! Setting the environment variable `EVLOOP_FORCE_SIGCHLD=1` forces the SIGCHLD path.

mod child;
mod pipe;
mod reap;

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};

/// A process builder: std's [`std::process::Command`] with async `spawn`/`output`/`status`
/// on the running loop.
///
/// As with std: by default [`spawn`](Command::spawn) and [`status`](Command::status) let the
/// child inherit the three standard streams, while [`output`](Command::output) reads stdout
/// and stderr through pipes and gives the child an empty stdin (each unless set explicitly).
///
/// ```
/// use evloop_io::process::Command;
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let status = Command::new("sh")
///         .arg("-c")
///         .arg("test \"$GREETING\" = hi && test \"$(pwd)\" = /")
///         .env("GREETING", "hi")
///         .current_dir("/")
///         .status()
///         .await?;
///     assert!(status.success());
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command to run `program` (looked up in `PATH` if it has no slash), with no
    /// arguments, the parent's environment and working directory.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Clears the child's environment (it inherits nothing).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::piped()`] makes [`Child::stdin`] an async pipe.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout: [`Stdio::piped()`] makes [`Child::stdout`] an async pipe.
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr: [`Stdio::piped()`] makes [`Child::stderr`] an async pipe.
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether a [`Child`] dropped before its exit status was collected is killed (SIGKILL)
    /// first. Default `false`: it keeps running, and is reaped in the background when it
    /// exits. Either way no zombie is left.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// The `kill_on_drop` setting.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }

    /// The wrapped std builder (for `get_program`, `get_args`, …).
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The wrapped std builder, mutably (for `std::os::unix::process::CommandExt`: `uid`,
    /// `process_group`, `arg0`, …). Standard streams set through it count as unset for the
    /// defaults of [`output`](Command::output).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the child on the running loop.
    ///
    /// Errors: `io::Error` "no running event loop" (its inner error is
    /// [`evloop::Error::NoRunningLoop`](evloop_core::Error::NoRunningLoop)) when called outside a
    /// running loop; the OS errors of std's `spawn` (e.g. `NotFound` for a missing program).
    pub fn spawn(&mut self) -> io::Result<Child> {
        let lp = evloop_core::running_loop()
            .ok_or_else(|| io::Error::other(evloop_core::Error::NoRunningLoop))?;
        let child = self.std.spawn()?;
        Child::new(&lp, child, self.kill_on_drop)
    }

    /// Runs the command to completion and collects its output (std's `output`): stdout and
    /// stderr are piped and read unless set otherwise, stdin is empty (`Stdio::null()`) unless
    /// set otherwise. Other work runs on the loop meanwhile.
    pub async fn output(&mut self) -> io::Result<Output> {
        let (stdin, stdout, stderr) = (!self.stdin_set, !self.stdout_set, !self.stderr_set);
        if stdin {
            self.std.stdin(Stdio::null());
        }
        if stdout {
            self.std.stdout(Stdio::piped());
        }
        if stderr {
            self.std.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // Back to the defaults of `spawn` for the next use of this builder.
        if stdin {
            self.std.stdin(Stdio::inherit());
        }
        if stdout {
            self.std.stdout(Stdio::inherit());
        }
        if stderr {
            self.std.stderr(Stdio::inherit());
        }
        child?.wait_with_output().await
    }

    /// Runs the command to completion and returns its exit status (std's `status`; the
    /// standard streams are inherited unless set otherwise).
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        // Pipes the caller asked for are of no use to anyone: close them, as std does.
        drop(child.stdout.take());
        drop(child.stderr.take());
        child.wait().await
    }
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.std, f)
    }
}

/// Forces (`true`) the SIGCHLD reaping path for children spawned from now on, even where
/// pidfds work. For tests; the environment variable `EVLOOP_FORCE_SIGCHLD=1` does the same.
#[doc(hidden)]
pub fn force_sigchld_reaper(on: bool) {
    reap::force_sigchld(on);
}
