//! Serving with `server::Builder` and `GracefulShutdown`: Unix streams, `!Send` services,
//! and a graceful shutdown that lets requests in flight (HTTP/1 and HTTP/2) finish.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::client::conn::{http1, http2};
use evloop::hyper::hyper::rt::Executor;
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response, StatusCode, Version};
use evloop::hyper::{EvloopExecutor, EvloopTimer, GracefulShutdown, HyperIo, server};
use evloop::net::{TcpListener, TcpStream, UnixStream};
use evloop::{LoopFuture, Task};
use http_body_util::{BodyExt, Empty, Full};

/// Bounds every wait (generous: a loaded 2-core CI).
const BOUND: Duration = Duration::from_secs(60);

type Reply = Result<Response<Full<Bytes>>, Infallible>;

#[test]
fn http1_over_a_unix_stream_with_a_not_send_service() {
    evloop::run(async {
        let (server_end, client_end) = UnixStream::pair().expect("a socket pair");
        // `Rc`: the service is `!Send`, which evloop's tasks allow.
        let served = Rc::new(Cell::new(0u32));
        let count = served.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            count.set(count.get() + 1);
            let n = count.get();
            async move {
                let body = format!("{} #{n}", req.uri().path());
                Reply::Ok(Response::new(Full::new(Bytes::from(body))))
            }
        });
        let conn = server::Builder::new().serve_connection(HyperIo::new(server_end), service);
        let server = evloop::spawn(conn);

        let (mut sender, client) = http1::handshake(HyperIo::new(client_end))
            .await
            .expect("handshake");
        let client = evloop::spawn(client);
        for (i, path) in ["/a", "/b"].into_iter().enumerate() {
            let req = Request::get(path)
                .header("host", "unix")
                .body(Empty::<Bytes>::new())
                .expect("a valid request");
            let res = sender.send_request(req).await.expect("a response");
            assert_eq!(res.status(), StatusCode::OK);
            let body = res
                .into_body()
                .collect()
                .await
                .expect("the body")
                .to_bytes();
            assert_eq!(body, format!("{path} #{}", i + 1));
        }
        drop(sender);
        client
            .await
            .expect("client task")
            .expect("client connection");
        server
            .await
            .expect("server task")
            .expect("server connection");
        assert_eq!(served.get(), 2);
    })
    .expect("the loop ran");
}

/// A service whose responses wait for `gate`; `arrived` counts the requests it has seen.
fn gated(
    gate: LoopFuture<(), ()>,
    arrived: Rc<Cell<u32>>,
) -> impl Fn(Request<Incoming>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> + Clone
{
    move |_req| {
        arrived.set(arrived.get() + 1);
        let gate = gate.clone();
        Box::pin(async move {
            let _ = gate.await;
            Reply::Ok(Response::new(Full::new(Bytes::from_static(b"finished"))))
        })
    }
}

/// Yields to the loop until `cond` holds, at most `BOUND` long.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let waited = evloop::timeout(BOUND, async {
        while !cond() {
            evloop::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

#[test]
fn graceful_shutdown_lets_http1_and_http2_requests_in_flight_finish() {
    evloop::run(async {
        let lp = evloop::get_running_loop().expect("a running loop");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let gate = lp.create_future::<(), ()>();
        let arrived = Rc::new(Cell::new(0));
        let graceful = GracefulShutdown::new();
        let service = gated(gate.clone(), arrived.clone());
        let watcher = graceful.clone();
        let acceptor: Task<()> = evloop::spawn(async move {
            let builder = server::Builder::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let conn =
                    builder.serve_connection(HyperIo::new(stream), service_fn(service.clone()));
                evloop::spawn(watcher.watch(conn));
            }
        });

        // One HTTP/1 and one HTTP/2 client, each with a request in flight.
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut h1, h1_conn) = http1::handshake(HyperIo::new(stream)).await.expect("h1");
        let h1_conn = evloop::spawn(h1_conn);
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut h2, h2_conn) = http2::Builder::new(EvloopExecutor)
            .timer(EvloopTimer)
            .handshake(HyperIo::new(stream))
            .await
            .expect("h2");
        let h2_conn = evloop::spawn(h2_conn);
        let h1_req = evloop::spawn(async move {
            let req = Request::get("/")
                .header("host", "x")
                .body(Empty::<Bytes>::new());
            h1.send_request(req.expect("a valid request")).await
        });
        let h2_req = evloop::spawn(async move {
            let req = Request::get(format!("http://{addr}/")).body(Empty::<Bytes>::new());
            h2.send_request(req.expect("a valid request")).await
        });
        until("both requests to reach the service", || arrived.get() == 2).await;
        acceptor.cancel();

        // The shutdown waits for the two requests in flight...
        let shutdown = evloop::spawn({
            let graceful = graceful.clone();
            async move { graceful.shutdown().await }
        });
        for _ in 0..10 {
            evloop::yield_now().await;
        }
        assert!(
            !shutdown.is_done(),
            "shutdown ended with requests in flight"
        );
        assert_eq!(graceful.active(), 2);
        assert!(graceful.is_shutting_down());

        // ...which finish once released, with their responses.
        gate.set_result(()).expect("released once");
        for (req, version) in [(h1_req, Version::HTTP_11), (h2_req, Version::HTTP_2)] {
            let res = evloop::timeout(BOUND, req)
                .await
                .expect("the response in time")
                .expect("the request task")
                .expect("a response");
            assert_eq!((res.status(), res.version()), (StatusCode::OK, version));
            let body = res
                .into_body()
                .collect()
                .await
                .expect("the body")
                .to_bytes();
            assert_eq!(&body[..], b"finished");
        }
        evloop::timeout(BOUND, shutdown)
            .await
            .expect("the shutdown ended")
            .expect("the shutdown task");
        assert_eq!(graceful.active(), 0);
        // Both client connections were closed by the server.
        for conn in [h1_conn, h2_conn] {
            evloop::timeout(BOUND, conn)
                .await
                .expect("the client connection ended")
                .expect("the client task")
                .expect("a clean close");
        }
        assert_eq!(arrived.get(), 2);
    })
    .expect("the loop ran");
}

#[test]
fn a_connection_watched_after_shutdown_is_shut_down_at_once() {
    evloop::run(async {
        let (server_end, client_end) = UnixStream::pair().expect("a socket pair");
        let graceful = GracefulShutdown::new();
        graceful.shutdown().await; // nothing to wait for
        let conn = server::Builder::new().serve_connection(
            HyperIo::new(server_end),
            service_fn(|_req| async { Reply::Ok(Response::new(Full::new(Bytes::new()))) }),
        );
        let watched = evloop::spawn(graceful.watch(conn));
        // Before its first byte: the connection just ends, and the client sees EOF.
        let done = evloop::timeout(BOUND, watched)
            .await
            .expect("ended in time");
        done.expect("the task").expect("a clean end");
        let mut buf = Vec::new();
        let mut client = client_end;
        let n = futures_lite::AsyncReadExt::read_to_end(&mut client, &mut buf)
            .await
            .expect("read");
        assert_eq!(n, 0);
    })
    .expect("the loop ran");
}

#[test]
#[should_panic(expected = "no running event loop")]
fn the_executor_needs_a_running_loop() {
    EvloopExecutor.execute(async {});
}

/// A connection that ends as soon as it is asked to shut down gracefully.
struct EndsOnShutdown {
    asked: bool,
}

impl std::future::Future for EndsOnShutdown {
    type Output = Result<(), Infallible>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.asked {
            std::task::Poll::Ready(Ok(()))
        } else {
            std::task::Poll::Pending
        }
    }
}

impl evloop::hyper::GracefulConnection for EndsOnShutdown {
    type Error = Infallible;
    fn graceful_shutdown(mut self: std::pin::Pin<&mut Self>) {
        self.asked = true;
    }
}

/// Two tasks awaiting `shutdown()` of one watcher (it is `Clone`) both return when the last
/// connection ends: each `Shutdown` is woken, not only the one polled last.
#[test]
fn every_task_awaiting_shutdown_is_woken() {
    evloop::run(async {
        let graceful = GracefulShutdown::new();
        let conn = evloop::spawn(graceful.watch(EndsOnShutdown { asked: false }));
        evloop::yield_now().await; // the connection is watched and pending
        assert_eq!(graceful.active(), 1);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let g = graceful.clone();
                evloop::spawn(async move { g.shutdown().await })
            })
            .collect();
        let all = evloop::timeout(BOUND, async {
            for w in waiters {
                w.await.expect("a waiter");
            }
        });
        all.await.expect("both waiters woke");
        conn.await.expect("the task").expect("a clean end");
        assert_eq!(graceful.active(), 0);
    })
    .expect("the loop ran");
}
