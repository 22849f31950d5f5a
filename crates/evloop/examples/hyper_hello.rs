//! hyper's hello world on evloop: answers every request with `200` and `Hello, world!`, over
//! HTTP/1.1 (keep-alive) and HTTP/2 with prior knowledge (h2c), and shuts down gracefully on
//! Ctrl-C: it stops accepting, lets the connections finish their requests in flight, and
//! exits with status 0.
//!
//! ```text
//! $ cargo run -p evloop --example hyper_hello --features hyper -- 127.0.0.1:3000
//! listening on 127.0.0.1:3000
//! $ curl --http1.1 http://127.0.0.1:3000/ http://127.0.0.1:3000/again   # one connection
//! Hello, world!Hello, world!
//! $ curl --http2-prior-knowledge http://127.0.0.1:3000/
//! Hello, world!
//! ^C
//! shutting down
//! served 2 connection(s)
//! ```
//! ADDR defaults to 127.0.0.1:0 (any free port; the line printed names it).

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response};
use evloop::hyper::{GracefulShutdown, HyperIo, server};
use evloop::net::TcpListener;
use http_body_util::Full;

/// The whole application.
async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

/// Serves `listener` until `stop` completes, then shuts down gracefully: the listener is
/// closed, every connection finishes its requests in flight and closes. Returns the number
/// of connections accepted.
pub(crate) async fn serve(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
) -> io::Result<u64> {
    let builder = server::Builder::new();
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
    let mut accepted = 0;
    loop {
        let next = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stop.as_mut().await;
            None
        })
        .await;
        let stream = match next {
            None => break,
            Some(Ok((stream, _peer))) => stream,
            Some(Err(err)) => {
                // e.g. out of file descriptors: the listener stays usable.
                eprintln!("accept failed: {err}");
                evloop::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        accepted += 1;
        stream.set_nodelay(true)?;
        let conn =
            graceful.watch(builder.serve_connection(HyperIo::new(stream), service_fn(hello)));
        evloop::spawn(async move {
            if let Err(err) = conn.await {
                eprintln!("connection: {err}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(accepted)
}

/// Binds `addr`, calls `listening` with the bound address, serves until Ctrl-C, then shuts
/// down gracefully. Returns the number of connections accepted.
pub(crate) async fn serve_until_ctrl_c(
    addr: &str,
    listening: impl FnOnce(SocketAddr),
) -> io::Result<u64> {
    // Listening for SIGINT from here on: a Ctrl-C from now is a graceful shutdown.
    let ctrl_c = evloop::signal::ctrl_c();
    let listener = TcpListener::bind(addr).await?;
    listening(listener.local_addr()?);
    serve(listener, async {
        if let Err(err) = ctrl_c.await {
            eprintln!("cannot watch Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
        println!("shutting down");
    })
    .await
}

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    // Ctrl-C is ours (a graceful shutdown), not the runner's (which would cancel at once).
    let mut runner = evloop::Runner::builder().ctrl_c(false).build();
    let outcome = runner.run(async move {
        let served = serve_until_ctrl_c(&addr, |local| {
            println!("listening on {local}");
            let _ = io::stdout().flush();
        })
        .await?;
        println!("served {served} connection(s)");
        io::Result::Ok(())
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
