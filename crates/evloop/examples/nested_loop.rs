//! You can run any loop, but never two at once on one thread ("asyncio: get_event_loop"):
//!
//! ```python
//! async def run_another():
//!     loop = asyncio.new_event_loop()
//!     loop.run_forever()
//!
//! loop = asyncio.get_event_loop()
//! loop.run_until_complete(run_another())
//! # RuntimeError: Cannot run the event loop while another loop is running
//! ```
//!
//! Run with `cargo run -p evloop --example nested_loop`.

async fn run_another() -> Result<(), evloop::Error> {
    let another = evloop::new_event_loop()?;
    another.run_forever()
}

fn main() -> Result<(), evloop::Error> {
    let lp = evloop::get_event_loop()?;
    match lp.run_until_complete(run_another())? {
        Ok(()) => println!("unexpected: the nested loop ran"),
        Err(e) => println!("Error: {e}"),
    }
    // Running the same loop again from inside itself is refused too.
    let again = lp.clone();
    if let Err(e) = lp.run_until_complete(async move { again.run_forever() })? {
        println!("Error: {e}");
    }
    // And so is run() inside a running loop.
    if let Err(e) = lp.run_until_complete(async { evloop::run(async {}) })? {
        println!("Error: {e}");
    }
    lp.close()
}
