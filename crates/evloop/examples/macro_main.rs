//! `#[evloop::main]`: an `async fn main` run by `evloop::run` on a fresh loop.
//!
//! ```text
//! cargo run -p evloop --example macro_main
//! ```

use std::time::{Duration, Instant};

#[evloop::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // Two tasks and a blocking job, concurrently.
    let greetings = evloop::gather(["hello", "world"].into_iter().map(|word| async move {
        evloop::sleep(Duration::from_millis(10)).await;
        word.to_uppercase()
    }));
    let sum = evloop::to_thread(|| (1..=100u32).sum::<u32>());
    let words = greetings.await;
    let sum = sum.await?;
    println!(
        "{} (sum {sum}) after {:?}",
        words.join(" "),
        start.elapsed()
    );
    // `?` works as in any `main` returning a Result; `evloop::run`'s own errors would too.
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}
