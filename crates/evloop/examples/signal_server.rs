//! A TCP echo server that shuts down cleanly on SIGTERM or SIGINT, the asyncio way:
//! `loop.add_signal_handler(SIGTERM, server_task.cancel)`.
//!
//! ```text
//! $ cargo run -p evloop --example signal_server [ADDR]     # default 127.0.0.1:0
//! listening on 127.0.0.1:40123
//! ```
//! Talk to it (`nc 127.0.0.1 40123`: every line comes back), then press Ctrl-C or run
//! `kill -TERM <pid>`:
//! ```text
//! shutting down (SIGTERM)
//! served 1 connection(s)
//! ```
//! The handler runs on the loop's thread (never inside the OS signal handler) and cancels
//! the accepting task: the listener is dropped (no more connections are accepted), `run()`
//! then cancels the connections still open and closes the loop, and the process exits with
//! status 0.

use std::cell::Cell;
use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;

use evloop::net::{TcpListener, TcpStream};
use evloop::signal::consts::{SIGINT, SIGTERM};
use evloop::{JoinError, SignalHandlers};

/// Echoes everything `stream` sends back to it.
async fn echo(stream: TcpStream) -> std::io::Result<u64> {
    let (reader, mut writer) = stream.split();
    futures_lite::io::copy(reader, &mut writer).await
}

/// Accepts connections until cancelled; each one is served by its own task.
async fn accept_loop(listener: TcpListener, served: Rc<Cell<u32>>) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = listener.accept().await?;
        served.set(served.get() + 1);
        evloop::spawn(echo(stream));
    }
}

async fn serve(addr: String) -> Result<(), Box<dyn Error>> {
    let lp = evloop::get_running_loop()?;
    let listener = TcpListener::bind(addr.as_str()).await?;
    let local = listener.local_addr()?;
    let served = Rc::new(Cell::new(0));
    let server = lp.create_task(accept_loop(listener, served.clone()));

    let stopped_by = Rc::new(Cell::new(None));
    for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
        let (server, stopped_by) = (server.as_ref(), stopped_by.clone());
        lp.add_signal_handler(signal, move || {
            stopped_by.set(Some(name));
            server.cancel();
        })?;
    }
    println!("listening on {local}");
    std::io::stdout().flush()?;

    match server.await {
        Err(JoinError::Cancelled) => {}
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(())) => unreachable!("the accept loop only ends with an error"),
        Err(e) => return Err(format!("the server task failed: {e}").into()),
    }
    println!("shutting down ({})", stopped_by.get().unwrap_or("?"));
    // From here on a second signal has its default effect again.
    lp.remove_signal_handler(SIGTERM);
    lp.remove_signal_handler(SIGINT);
    println!("served {} connection(s)", served.get());
    Ok(())
}

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    match evloop::run(serve(addr)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("signal_server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("signal_server: {e}");
            ExitCode::FAILURE
        }
    }
}
