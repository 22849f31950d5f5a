//! A background "indication" task printing dots while the main coroutine sleeps, from
//! "asyncio: get_event_loop":
//!
//! ```python
//! async def sleep(t, indication_t):
//!     async def indication():
//!         while True:
//!             print('.', end='')
//!             sys.stdout.flush()
//!             await asyncio.sleep(indication_t)
//!
//!     loop = asyncio.get_event_loop()  # <-- here: the *running* loop
//!     task = loop.create_task(indication())
//!     await asyncio.sleep(t)
//!     task.cancel()
//!
//! loop = asyncio.get_event_loop()
//! loop.run_until_complete(sleep(5, 0.5))
//! ```
//!
//! Inside a coroutine `get_event_loop()` returns the loop that runs it, even when another loop
//! is the thread's current loop — shown here by running the coroutine on a second loop.
//!
//! Run with `cargo run -p evloop --example indication`.

use std::io::Write;
use std::time::Duration;

async fn sleep(t: Duration, indication_t: Duration) {
    async fn indication(indication_t: Duration) {
        loop {
            print!(".");
            let _ = std::io::stdout().flush();
            evloop::sleep(indication_t).await;
        }
    }

    let lp = evloop::get_event_loop().expect("inside a coroutine: the running loop"); // <-- here
    let task = lp.create_task(indication(indication_t));
    evloop::sleep(t).await;
    task.cancel();
    // Awaiting a cancelled task gives Err(Cancelled).
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    println!();
}

fn main() -> Result<(), evloop::Error> {
    let lp = evloop::get_event_loop()?;
    lp.run_until_complete(sleep(Duration::from_secs(5), Duration::from_millis(500)))?;

    // The same coroutine on a loop that is *not* the thread's current loop: inside it,
    // get_event_loop() returns the loop that runs it.
    let other = evloop::new_event_loop()?;
    let seen = other.run_until_complete(async { evloop::get_event_loop() })??;
    assert!(seen == other && seen != lp);
    other.run_until_complete(sleep(Duration::from_secs(1), Duration::from_millis(250)))?;
    println!("(the second line of dots ran on another loop; the current one stayed {lp:?})");

    other.close()?;
    lp.close()
}
