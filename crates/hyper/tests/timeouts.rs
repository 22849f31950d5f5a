//! hyper's timeouts on evloop's timers: the HTTP/1 header-read timeout (through
//! `EvloopTimer`) and the wait for the first bytes in `server::Builder`.
//!
//! Each client is a raw TCP stream that sends a partial request (or a partial HTTP/2
//! preface, or nothing) and then reads: the server must close the connection once the
//! configured timeout has passed, and not before. Every wait is bounded by `BOUND`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::server::conn::http1;
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response};
use evloop::hyper::{EvloopTimer, HyperIo, server};
use evloop::net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use http_body_util::Full;

/// The configured timeout.
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long a test waits at most for the server to close (generous: a loaded 2-core CI).
const BOUND: Duration = Duration::from_secs(30);

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

/// Which server the test runs.
#[derive(Clone, Copy)]
enum Server {
    /// hyper's own HTTP/1 builder with `EvloopTimer`.
    Http1,
    /// This crate's HTTP/1 + HTTP/2 builder.
    Auto,
}

/// Accepts connections on `listener` forever, each served with a `TIMEOUT` header-read
/// timeout.
async fn accept_loop(listener: TcpListener, kind: Server) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let io = HyperIo::new(stream);
        match kind {
            Server::Http1 => {
                let conn = http1::Builder::new()
                    .timer(EvloopTimer)
                    .header_read_timeout(TIMEOUT)
                    .serve_connection(io, service_fn(hello));
                evloop::spawn(async move { drop(conn.await) });
            }
            Server::Auto => {
                let conn = server::Builder::new()
                    .header_read_timeout(TIMEOUT)
                    .serve_connection(io, service_fn(hello));
                evloop::spawn(async move { drop(conn.await) });
            }
        }
    }
}

/// Connects, sends `sent`, reads until the server closes; returns what came back and how
/// long after connecting the close came.
async fn send_and_read(addr: std::net::SocketAddr, sent: &[u8]) -> (String, Duration) {
    let start = Instant::now();
    let mut client = TcpStream::connect(addr).await.expect("connect");
    client.write_all(sent).await.expect("write");
    let mut reply = Vec::new();
    match evloop::timeout(BOUND, client.read_to_end(&mut reply)).await {
        Ok(Ok(_)) => {}
        // A reset is a close too.
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(err)) => panic!("read failed: {err}"),
        Err(_) => panic!("the server did not close the connection within {BOUND:?}"),
    }
    (
        String::from_utf8_lossy(&reply).into_owned(),
        start.elapsed(),
    )
}

/// Runs `kind`'s server and checks that `partial` is cut off after the timeout while a
/// complete request is answered.
fn check_cut_off(kind: Server, partial: &'static [u8]) {
    evloop::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        evloop::spawn(accept_loop(listener, kind));

        let (reply, elapsed) = send_and_read(addr, partial).await;
        assert!(
            elapsed >= TIMEOUT,
            "closed after {elapsed:?}, before the {TIMEOUT:?} timeout"
        );
        assert!(
            !reply.contains("200 OK"),
            "answered a partial request: {reply:?}"
        );

        // The same server answers a complete request (so the close above was the timeout).
        let (reply, _) = send_and_read(
            addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
        assert!(reply.ends_with("\r\n\r\nHello, world!"), "{reply:?}");
    })
    .expect("the loop ran");
}

#[test]
fn header_read_timeout_fires_through_evloop_timer() {
    check_cut_off(Server::Http1, b"GET / HTTP/1.1\r\nHost: x\r\n");
}

#[test]
fn header_read_timeout_fires_on_the_auto_builder() {
    check_cut_off(Server::Auto, b"GET / HTTP/1.1\r\nHost: x\r\n");
}

#[test]
fn a_partial_http2_preface_is_cut_off() {
    check_cut_off(Server::Auto, b"PRI * HTTP/2.0\r\n");
}

#[test]
fn a_silent_client_is_cut_off() {
    check_cut_off(Server::Auto, b"");
}
