//! The error type of every loop operation.

use std::fmt;
use std::io;

/// What went wrong. The `Display` texts are asyncio's and are part of the contract.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// "This event loop is already running"
    AlreadyRunning,
    /// "Cannot run the event loop while another loop is running"
    AnotherLoopRunning,
    /// "Event loop is closed"
    Closed,
    /// "Cannot close a running event loop"
    CloseRunning,
    /// "Event loop stopped before Future completed."
    StoppedBeforeComplete,
    /// "no running event loop"
    NoRunningLoop,
    /// "There is no current event loop in thread 'NAME'."
    NoCurrentLoop {
        /// The thread's name (or its id when unnamed).
        thread: String,
    },
    /// "run() cannot be called from a running event loop"
    RunInRunningLoop,
    /// "interrupted by Ctrl-C"
    Interrupted,
    /// "the main task was cancelled": the task that `run_until_complete` runs its future as was
    /// cancelled (asyncio's `CancelledError` out of `run_until_complete`).
    Cancelled,
    /// A reactor or OS failure.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning => f.write_str("This event loop is already running"),
            Error::AnotherLoopRunning => {
                f.write_str("Cannot run the event loop while another loop is running")
            }
            Error::Closed => f.write_str("Event loop is closed"),
            Error::CloseRunning => f.write_str("Cannot close a running event loop"),
            Error::StoppedBeforeComplete => {
                f.write_str("Event loop stopped before Future completed.")
            }
            Error::NoRunningLoop => f.write_str("no running event loop"),
            Error::NoCurrentLoop { thread } => {
                write!(f, "There is no current event loop in thread '{thread}'.")
            }
            Error::RunInRunningLoop => {
                f.write_str("run() cannot be called from a running event loop")
            }
            Error::Interrupted => f.write_str("interrupted by Ctrl-C"),
            Error::Cancelled => f.write_str("the main task was cancelled"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// So that `?` works in functions returning `io::Result` (e.g. `#[evloop::main] async fn
/// main() -> std::io::Result<()>`): an `Io` error is unwrapped, the others become
/// `ErrorKind::Other` carrying the `Error`.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::Interrupted => io::Error::new(io::ErrorKind::Interrupted, e),
            other => io::Error::other(other),
        }
    }
}
