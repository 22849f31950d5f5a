//! The "Hello!/Goodbye!" walk-through of asyncio, step by step with the loop API:
//!
//! ```python
//! async def main():
//!     print(f"{time.ctime()} Hello!")
//!     await asyncio.sleep(1.0)
//!     print(f"{time.ctime()} Goodbye!")
//!
//! loop = asyncio.get_event_loop()
//! task = loop.create_task(main())
//! loop.run_until_complete(task)
//! pending = asyncio.all_tasks(loop=loop)
//! for task in pending:
//!     task.cancel()
//! group = asyncio.gather(*pending, return_exceptions=True)
//! loop.run_until_complete(group)
//! loop.close()
//! ```
//!
//! `evloop::run` does all of this for you; this is what it does.
//!
//! Run with `cargo run -p evloop --example hello_goodbye`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A `time.ctime()`-like stamp: seconds since the epoch, with milliseconds (std has no
/// calendar formatting).
fn ctime() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("[{}.{:03}]", now.as_secs(), now.subsec_millis())
}

async fn main_coro() {
    // Something left running when `main` returns: the shutdown below cancels it.
    let lp = evloop::get_running_loop().expect("a task runs on a loop");
    let _ticker = lp.create_task(async {
        loop {
            evloop::sleep(Duration::from_millis(300)).await;
        }
    });
    println!("{} Hello!", ctime());
    evloop::sleep(Duration::from_secs(1)).await;
    println!("{} Goodbye!", ctime());
}

fn main() -> Result<(), evloop::Error> {
    // You need a loop instance before you can run any coroutines: on the main thread
    // `get_event_loop()` makes one and gives you the same one each time.
    let lp = evloop::get_event_loop()?;
    assert!(evloop::get_event_loop()? == lp);

    // Schedule the coroutine as a task, and block this thread until it is done.
    let task = lp.create_task(main_coro());
    lp.run_until_complete(task)?
        .map_err(|e| std::io::Error::other(format!("main task failed: {e}")))?;

    // Cancel whatever is still pending, and let the loop finish it ("gather" with
    // return_exceptions=True: collect each outcome, whatever it is).
    let pending = lp.all_tasks();
    for task in &pending {
        task.cancel();
    }
    let outcomes = lp.run_until_complete(async move {
        let mut outcomes = Vec::new();
        for task in pending {
            outcomes.push(task.await);
        }
        outcomes
    })?;
    println!(
        "{} pending task(s) were cancelled at shutdown",
        outcomes.len()
    );

    lp.close()?;
    Ok(())
}
