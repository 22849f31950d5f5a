//! Ctrl-C during `evloop::run` (asyncio.run's KeyboardInterrupt handling).
//!
//! `run()` watches SIGINT on the main thread: the first Ctrl-C cancels the main future and
//! `run()` returns `Err(Error::Interrupted)`; pending tasks are cancelled and the loop closed
//! as usual. Press Ctrl-C while it sleeps:
//!
//! ```text
//! $ cargo run -p evloop --example ctrl_c
//! ready: sleeping 30 s, press Ctrl-C
//! ^Cinterrupted: interrupted by Ctrl-C
//! ```
//!
//! The exit code is 130 when interrupted (the shell convention for SIGINT), 0 otherwise.
//! An optional argument sets the sleep in seconds.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Prints a line when dropped: shows that the task was cancelled during shutdown.
struct Announce(&'static str);

impl Drop for Announce {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

fn main() -> ExitCode {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let result = evloop::run(async move {
        let _background = evloop::spawn(async {
            let _announce = Announce("background task cancelled");
            std::future::pending::<()>().await;
        });
        println!("ready: sleeping {secs} s, press Ctrl-C");
        let _ = std::io::stdout().flush();
        evloop::sleep(Duration::from_secs(secs)).await;
        println!("slept {secs} s");
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(evloop::Error::Interrupted) => {
            println!("interrupted: {}", evloop::Error::Interrupted);
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
