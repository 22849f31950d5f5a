//! reqwest, a tokio-only HTTP client, against an evloop hyper server on the same loop.
//!
//! The server is `evloop::hyper` on evloop's sockets and timers; the client is
//! `reqwest::Client`, which needs tokio's reactor, timer and `tokio::spawn`, so every
//! request runs inside `evloop_compat::compat(...)`. One client makes a few requests over a
//! kept-alive connection (now and then two: reqwest's pool gets an HTTP/1 connection back
//! from a task on the side runtime, which the next request's connect can beat), then the
//! server shuts down gracefully and the program exits 0.
//!
//! ```sh
//! cargo run -p evloop-compat --example reqwest_local
//! ```

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response, StatusCode};
use evloop::hyper::{GracefulShutdown, HyperIo, server};
use evloop::net::TcpListener;
use evloop_compat::compat;
use http_body_util::Full;

/// The server's whole application: `Hello, world!` at `/`, the rest of the path echoed
/// back at `/echo/...`, `404` anywhere else.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let (status, body) = if path == "/" {
        (StatusCode::OK, Bytes::from_static(b"Hello, world!"))
    } else if let Some(rest) = path.strip_prefix("/echo/") {
        (StatusCode::OK, Bytes::copy_from_slice(rest.as_bytes()))
    } else {
        (StatusCode::NOT_FOUND, Bytes::from_static(b"not found"))
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    Ok(response)
}

/// Serves `listener` with [`app`] until `stop` completes, then shuts down gracefully (stops
/// accepting, lets every connection finish its requests in flight). Counts the accepted
/// connections in `accepted`.
async fn serve(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
    accepted: Rc<Cell<u64>>,
) -> io::Result<()> {
    let builder = server::Builder::new();
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
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
        accepted.set(accepted.get() + 1);
        stream.set_nodelay(true)?;
        let conn = graceful.watch(builder.serve_connection(HyperIo::new(stream), service_fn(app)));
        evloop::spawn(async move {
            if let Err(err) = conn.await {
                eprintln!("connection: {err}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// What [`demo`] saw.
#[derive(Debug)]
pub struct Report {
    /// Status and body of each response, in request order.
    pub responses: Vec<(u16, String)>,
    /// Connections the server accepted for all of them.
    pub accepted: u64,
}

/// Starts the server on 127.0.0.1:0, sends `paths` one after another from one
/// `reqwest::Client`, shuts the server down gracefully, and says what happened.
pub async fn demo(paths: &[&str]) -> Result<Report, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let accepted = Rc::new(Cell::new(0));
    let stop = evloop::get_running_loop()?.create_future::<(), ()>();
    let stopped = stop.clone();
    let server = evloop::spawn(serve(
        listener,
        async move {
            let _ = stopped.await;
        },
        accepted.clone(),
    ));

    // Building the client needs no runtime; its requests do (DNS through
    // `spawn_blocking`, tokio sockets, the connection task through `tokio::spawn`, the
    // timeout through `tokio::time`), so each one runs inside `compat`.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut responses = Vec::new();
    for path in paths {
        let url = format!("{base}{path}");
        let (status, body) = compat(async {
            let response = client.get(&url).send().await?;
            let status = response.status().as_u16();
            reqwest::Result::Ok((status, response.text().await?))
        })
        .await?;
        responses.push((status, body));
    }
    drop(client);

    // The graceful shutdown closes the idle kept-alive connection and returns.
    let _ = stop.set_result(());
    server.await??;
    Ok(Report {
        responses,
        accepted: accepted.get(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = evloop::run(demo(&["/", "/echo/evloop", "/", "/nowhere"]))??;
    for (status, body) in &report.responses {
        println!("{status} {body}");
    }
    println!(
        "{} requests over {} connection(s); server shut down",
        report.responses.len(),
        report.accepted
    );
    Ok(())
}
