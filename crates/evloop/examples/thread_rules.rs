//! Which loop does `get_event_loop()` return, and where ("asyncio: get_event_loop"):
//!
//! ```python
//! In : asyncio.get_event_loop()
//! Out: <_UnixSelectorEventLoop running=False closed=False debug=False>
//!
//! In : Thread(target=asyncio.get_event_loop).start()
//! Exception in thread Thread-385:
//! RuntimeError: There is no current event loop in thread 'Thread-385'.
//! ```
//!
//! Run with `cargo run -p evloop --example thread_rules`.

use std::thread;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // On the main thread the loop is created on first use, and it is the same every time.
    let lp = evloop::get_event_loop()?;
    let lp2 = evloop::get_event_loop()?;
    println!("main thread: {lp:?}; the same loop twice: {}", lp == lp2);

    // A new thread has no current loop...
    let worker = thread::Builder::new().name("Thread-385".into()).spawn(
        || -> Result<(), evloop::Error> {
            match evloop::get_event_loop() {
                Ok(lp) => println!("unexpected: {lp:?}"),
                Err(e) => println!("Exception in thread Thread-385: {e}"),
            }
            // ...until it creates one and sets it.
            let lp = evloop::new_event_loop()?;
            evloop::set_event_loop(Some(&lp));
            let same = evloop::get_event_loop()? == lp;
            println!("after new_event_loop + set_event_loop: the same loop: {same}");
            let answer = lp.run_until_complete(async { 40 + 2 })?;
            println!("and it runs: {answer}");
            Ok(())
            // The thread ends here: its current loop is dropped, and so closed.
        },
    )?;
    worker.join().map_err(|_| "the worker thread panicked")??;

    // Setting None unsets the main thread's loop for good: no more automatic creation.
    evloop::set_event_loop(None);
    match evloop::get_event_loop() {
        Ok(lp) => println!("unexpected: {lp:?}"),
        Err(e) => println!("after set_event_loop(None): {e}"),
    }
    lp.close()?;
    Ok(())
}
