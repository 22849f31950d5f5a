//! Running one external command as a named step: echo it, time it, report failure.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// A step failed; the payload is the exit code `xtask` itself should end with.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) u8);

/// What every task returns: `Ok` or the exit code to end with.
pub(crate) type Outcome = Result<(), Failed>;

/// One command line to run from the workspace root, plus the environment
/// variables it is run with (shown when it is echoed).
pub(crate) struct Step {
    program: OsString,
    shown_program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Step {
    /// The `cargo` that launched us (env `CARGO`), or `cargo` from `PATH`.
    pub(crate) fn cargo() -> Self {
        let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Self::new(program)
    }

    /// `cargo` from `PATH`, which must be the rustup proxy so that
    /// `+toolchain` works (the `CARGO` binary is toolchain-specific).
    pub(crate) fn rustup_cargo() -> Self {
        Self::new("cargo".into())
    }

    /// Any other program, looked up on `PATH`.
    pub(crate) fn program(name: &str) -> Self {
        Self::new(name.into())
    }

    fn new(program: OsString) -> Self {
        // Echo a short name rather than a full toolchain path.
        let shown_program = Path::new(&program)
            .file_stem()
            .map_or_else(|| program.to_string_lossy(), |s| s.to_string_lossy())
            .into_owned();
        Self {
            program,
            shown_program,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Appends arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Echoes `==> <command>`, runs it in `root` with inherited stdio, and
    /// prints the elapsed time. On failure prints which step failed.
    pub(crate) fn run(&self, task: &str, root: &Path) -> Outcome {
        println!("==> {self}");
        let start = Instant::now();
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(root);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let result = command.status();
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(status) if status.success() => {
                println!("    ok ({secs:.1}s)");
                Ok(())
            }
            Ok(status) => {
                eprintln!("cargo xtask {task}: step `{self}` failed ({status}, {secs:.1}s)");
                // A child killed by a signal has no code; report plain failure.
                let code = status.code().and_then(|c| u8::try_from(c).ok());
                Err(Failed(code.filter(|&c| c != 0).unwrap_or(1)))
            }
            Err(err) => {
                eprintln!("cargo xtask {task}: could not start `{self}`: {err}");
                Err(Failed(1))
            }
        }
    }

    /// Like [`run`](Self::run), but pipes the child's stdout through (echoing every
    /// line) and returns how many tests the libtest summaries (`test result: ok. N
    /// passed`) report, so that a task can refuse a run in which no test ran.
    pub(crate) fn run_counting_tests(&self, task: &str, root: &Path) -> Result<usize, Failed> {
        println!("==> {self}");
        let start = Instant::now();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(root)
            .stdout(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                eprintln!("cargo xtask {task}: could not start `{self}`: {err}");
                return Err(Failed(1));
            }
        };
        let mut passed = 0;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                passed += passed_in_summary(&line);
            }
        }
        let result = child.wait();
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(status) if status.success() => {
                println!("    ok ({secs:.1}s, {passed} tests passed)");
                Ok(passed)
            }
            Ok(status) => {
                eprintln!("cargo xtask {task}: step `{self}` failed ({status}, {secs:.1}s)");
                let code = status.code().and_then(|c| u8::try_from(c).ok());
                Err(Failed(code.filter(|&c| c != 0).unwrap_or(1)))
            }
            Err(err) => {
                eprintln!("cargo xtask {task}: waiting for `{self}` failed: {err}");
                Err(Failed(1))
            }
        }
    }

    /// Runs the command silently and returns its stdout, or `None` if it
    /// could not be started or did not succeed.
    pub(crate) fn output(&self, root: &Path) -> Option<String> {
        let out = Command::new(&self.program)
            .args(&self.args)
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in &self.env {
            if value.contains(' ') {
                write!(f, "{key}=\"{value}\" ")?;
            } else {
                write!(f, "{key}={value} ")?;
            }
        }
        f.write_str(&self.shown_program)?;
        for arg in &self.args {
            if arg.is_empty() || arg.contains(' ') {
                write!(f, " \"{arg}\"")?;
            } else {
                write!(f, " {arg}")?;
            }
        }
        Ok(())
    }
}

/// The `N` of a libtest summary line `test result: ok. N passed; ...`, else 0.
pub(crate) fn passed_in_summary(line: &str) -> usize {
    line.trim()
        .strip_prefix("test result: ")
        .and_then(|rest| rest.split_once(". "))
        .and_then(|(_, counts)| counts.split_once(" passed"))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0)
}
