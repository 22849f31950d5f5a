//! The `hyper_hello` example, in-process: its `serve` runs on a loop on 127.0.0.1:0 and real
//! HTTP clients talk to it — `curl` (HTTP/1.1 keep-alive with two URLs in one invocation,
//! HTTP/2 with prior knowledge) when it is installed, and hyper's own client on evloop
//! always. The example's Ctrl-C is replaced by a future the test completes, which starts the
//! graceful shutdown.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/hyper_hello.rs"]
mod example;

use std::net::SocketAddr;
use std::time::Duration;

use evloop::hyper::hyper::body::Bytes;
use evloop::hyper::hyper::client::conn::{http1, http2};
use evloop::hyper::hyper::{Request, StatusCode};
use evloop::hyper::{EvloopExecutor, EvloopTimer, HyperIo};
use evloop::net::{TcpListener, TcpStream};
use evloop::{LoopFuture, Task};
use futures_lite::AsyncReadExt;
use http_body_util::{BodyExt, Empty};

/// Bounds every wait on a client or on the shutdown (generous: a loaded 2-core CI).
const BOUND: Duration = Duration::from_secs(60);

/// The example's server on a fresh port: its address, the future that stops it, and its task
/// (which returns the number of connections accepted).
async fn start() -> (SocketAddr, LoopFuture<(), ()>, Task<std::io::Result<u64>>) {
    let lp = evloop::get_running_loop().expect("a running loop");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let stop = lp.create_future::<(), ()>();
    let stopped = stop.clone();
    let server = evloop::spawn(example::serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// Stops the server and returns how many connections it accepted.
async fn stop(stop: LoopFuture<(), ()>, server: Task<std::io::Result<u64>>) -> u64 {
    stop.set_result(()).expect("stopped once");
    evloop::timeout(BOUND, server)
        .await
        .expect("the graceful shutdown ended in time")
        .expect("the server task")
        .expect("the server")
}

/// `curl ARGS`, or `None` (with the reason printed) when curl cannot be run.
async fn curl(args: &[&str]) -> Option<std::process::Output> {
    let mut cmd = evloop::process::Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "60"])
        .args(args);
    match evloop::timeout(BOUND, cmd.output()).await {
        Ok(Ok(out)) => Some(out),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: curl is not installed ({err}); the hyper-client tests still run");
            None
        }
        Ok(Err(err)) => panic!("cannot run curl: {err}"),
        Err(_) => panic!("curl did not finish within {BOUND:?}"),
    }
}

#[test]
fn curl_http11_keep_alive_two_urls() {
    evloop::run(async {
        let (addr, stopper, server) = start().await;
        let (a, b) = (format!("http://{addr}/"), format!("http://{addr}/again"));
        let format = "|%{http_code} %{http_version} %{num_connects}\n";
        let Some(out) = curl(&["--http1.1", "--write-out", format, &a, &b]).await else {
            stop(stopper, server).await;
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        // The second transfer re-used the first one's connection: no new connect.
        assert_eq!(
            stdout, "Hello, world!|200 1.1 1\nHello, world!|200 1.1 0\n",
            "{out:?}"
        );
        assert_eq!(
            stop(stopper, server).await,
            1,
            "one connection for both URLs"
        );
    })
    .expect("the loop ran");
}

/// One URL per curl: curl before 8.0 (Debian 12 ships 7.88.1) fails a second transfer that
/// re-uses a prior-knowledge HTTP/2 connection with "Error in the HTTP2 framing layer" (its
/// issue 10634, fixed in 8.0), whatever the server. Several streams on one HTTP/2
/// connection are tested with hyper's client below.
#[test]
fn curl_http2_prior_knowledge() {
    evloop::run(async {
        let (addr, stopper, server) = start().await;
        let format = "|%{http_code} %{http_version}\n";
        for path in ["/", "/two"] {
            let url = format!("http://{addr}{path}");
            let Some(out) = curl(&["--http2-prior-knowledge", "--write-out", format, &url]).await
            else {
                stop(stopper, server).await;
                return;
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{out:?}");
            assert_eq!(stdout, "Hello, world!|200 2\n", "{out:?}");
        }
        assert_eq!(
            stop(stopper, server).await,
            2,
            "one HTTP/2 connection per curl"
        );
    })
    .expect("the loop ran");
}

/// GETs `path` on `sender` and returns the status and the body.
async fn get_h1(sender: &mut http1::SendRequest<Empty<Bytes>>, path: &str) -> (StatusCode, Bytes) {
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .expect("a valid request");
    let res = sender.send_request(req).await.expect("a response");
    let status = res.status();
    let body = res.into_body().collect().await.expect("the body");
    (status, body.to_bytes())
}

#[test]
fn hyper_client_http1_keep_alive() {
    evloop::run(async {
        let (addr, stopper, server) = start().await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = http1::handshake(HyperIo::new(stream))
            .await
            .expect("handshake");
        let conn = evloop::spawn(conn);
        for path in ["/", "/again", "/and/again"] {
            let (status, body) = get_h1(&mut sender, path).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&body[..], b"Hello, world!");
        }
        drop(sender);
        conn.await
            .expect("the client task")
            .expect("the client connection");
        assert_eq!(stop(stopper, server).await, 1);
    })
    .expect("the loop ran");
}

#[test]
fn hyper_client_http2_concurrent_streams() {
    evloop::run(async {
        let (addr, stopper, server) = start().await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = http2::Builder::new(EvloopExecutor)
            .timer(EvloopTimer)
            .handshake(HyperIo::new(stream))
            .await
            .expect("handshake");
        let conn = evloop::spawn(conn);
        // Ten requests in flight at once on one connection.
        let requests: Vec<_> = (0..10)
            .map(|i| {
                let mut sender = sender.clone();
                evloop::spawn(async move {
                    let req = Request::get(format!("http://{addr}/{i}"))
                        .body(Empty::<Bytes>::new())
                        .expect("a valid request");
                    let res = sender.send_request(req).await.expect("a response");
                    assert_eq!(res.version(), evloop::hyper::hyper::Version::HTTP_2);
                    let status = res.status();
                    (
                        status,
                        res.into_body().collect().await.expect("body").to_bytes(),
                    )
                })
            })
            .collect();
        for req in requests {
            let (status, body) = req.await.expect("the request task");
            assert_eq!(status, StatusCode::OK);
            assert_eq!(&body[..], b"Hello, world!");
        }
        drop(sender);
        conn.await
            .expect("the client task")
            .expect("the client connection");
        assert_eq!(stop(stopper, server).await, 1);
    })
    .expect("the loop ran");
}

/// The graceful shutdown: the listener closes at once, an idle keep-alive connection is
/// closed by the server, and the server task ends.
#[test]
fn shutdown_closes_the_listener_and_idle_connections() {
    evloop::run(async {
        let (addr, stopper, server) = start().await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = http1::handshake(HyperIo::new(stream))
            .await
            .expect("handshake");
        let conn = evloop::spawn(conn);
        let (status, _) = get_h1(&mut sender, "/").await;
        assert_eq!(status, StatusCode::OK);

        // The connection is idle now; the shutdown closes it and the server task ends.
        assert_eq!(stop(stopper, server).await, 1);
        let ended = evloop::timeout(BOUND, conn)
            .await
            .expect("the client saw the close");
        ended.expect("the client task").expect("a clean close");
        // No more connections are accepted.
        match TcpStream::connect(addr).await {
            Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused),
            Ok(mut late) => {
                // Accepted by the kernel before the listener closed? Then it reads EOF.
                let mut buf = Vec::new();
                let n = evloop::timeout(BOUND, late.read_to_end(&mut buf)).await;
                panic!("connected after the shutdown: {n:?} {buf:?}");
            }
        }
    })
    .expect("the loop ran");
}
