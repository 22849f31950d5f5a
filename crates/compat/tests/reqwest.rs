//! reqwest, a tokio-only HTTP client, through `evloop_compat` against a real evloop hyper
//! server (`evloop::hyper`) on 127.0.0.1, on the same loop.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::convert::Infallible;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response};
use evloop::hyper::{GracefulShutdown, HyperIo, server};
use evloop::net::TcpListener;
use evloop::{LoopFuture, Task};
use evloop_compat::{CompatExt, compat, spawn_tokio};
use http_body_util::Full;

/// The example's code, run by `example_reqwest_local_demo` below.
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/reqwest_local.rs"]
mod example;

/// `Hello, world!` at `/`, the rest of the path at `/echo/...`, no answer ever at `/never`.
async fn app(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/never" {
        std::future::pending::<()>().await;
    }
    let body = match path.strip_prefix("/echo/") {
        Some(rest) => Bytes::copy_from_slice(rest.as_bytes()),
        None => Bytes::from_static(b"Hello, world!"),
    };
    Ok(Response::new(Full::new(body)))
}

/// An evloop hyper server on 127.0.0.1 that counts the connections it accepts.
struct Server {
    base: String,
    accepted: Rc<Cell<u64>>,
    stop: LoopFuture<(), ()>,
    task: Task<io::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Rc::new(Cell::new(0));
        let stop = evloop::get_running_loop().unwrap().create_future();
        let task = evloop::spawn(serve(listener, stop.clone(), accepted.clone()));
        Server {
            base,
            accepted,
            stop,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops accepting, waits for the connections to finish gracefully, and returns the
    /// number of connections accepted.
    async fn shutdown(self) -> u64 {
        self.stop.set_result(()).unwrap();
        self.task.await.unwrap().unwrap();
        self.accepted.get()
    }
}

async fn serve(
    listener: TcpListener,
    stop: LoopFuture<(), ()>,
    accepted: Rc<Cell<u64>>,
) -> io::Result<()> {
    let builder = server::Builder::new();
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
    loop {
        let next = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            let _ = stop.as_mut().await;
            None
        })
        .await;
        let Some(accept) = next else { break };
        let (stream, _peer) = accept?;
        accepted.set(accepted.get() + 1);
        let conn = graceful.watch(builder.serve_connection(HyperIo::new(stream), service_fn(app)));
        evloop::spawn(conn);
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The text of a caught panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic>")
    }
}

/// Whether a panic message is tokio's "no runtime here" (its reactor's, timer's and
/// `spawn_blocking`'s all end so).
fn is_tokio_context_panic(message: &str) -> bool {
    message.contains("must be called from the context of a Tokio 1.x runtime")
}

#[test]
fn reqwest_get_through_compat_returns_status_and_body() {
    evloop::run(async {
        let server = Server::start().await;
        let client = reqwest::Client::new();
        let (status, body) = compat(async {
            let response = client.get(server.url("/")).send().await?;
            let status = response.status();
            reqwest::Result::Ok((status, response.text().await?))
        })
        .await
        .unwrap();
        assert_eq!(status, reqwest::StatusCode::OK);
        assert_eq!(body, "Hello, world!");
        drop(client);
        assert_eq!(server.shutdown().await, 1);
    })
    .unwrap();
}

/// Not `accepted == 1`: hyper-util hands an HTTP/1 connection back to reqwest's pool from a
/// task on the side runtime once the response is read, and a request sent at once races
/// that task with a connect of its own; on a busy side runtime (the tests share one) the
/// connect wins now and then, and the pool then holds two connections.
#[test]
fn sequential_requests_on_one_client_reuse_the_connection() {
    const REQUESTS: u64 = 10;
    evloop::run(async {
        let server = Server::start().await;
        let client = reqwest::Client::new();
        for i in 0..REQUESTS {
            let body = async {
                client
                    .get(server.url(&format!("/echo/{i}")))
                    .send()
                    .await?
                    .text()
                    .await
            }
            .compat()
            .await
            .unwrap();
            assert_eq!(body, i.to_string());
        }
        drop(client);
        let accepted = server.shutdown().await;
        assert!(
            accepted < REQUESTS,
            "{REQUESTS} sequential requests took {accepted} connections: no keep-alive"
        );
        assert!(accepted >= 1);
    })
    .unwrap();
}

#[test]
fn concurrent_requests_from_several_evloop_tasks() {
    const TASKS: usize = 8;
    evloop::run(async {
        let server = Server::start().await;
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let client = client.clone();
                let url = server.url(&format!("/echo/task-{i}"));
                evloop::spawn(compat(async move {
                    let response = client.get(url).send().await?;
                    assert_eq!(response.status(), reqwest::StatusCode::OK);
                    response.text().await
                }))
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), format!("task-{i}"));
        }
        drop(client);
        let accepted = server.shutdown().await;
        assert!(
            (1..=TASKS as u64).contains(&accepted),
            "{accepted} connections for {TASKS} requests"
        );
    })
    .unwrap();
}

/// reqwest's `.timeout()` is a `tokio::time` timer: it fires through the bridge, and the
/// client keeps working after it.
#[test]
fn request_timeout_against_a_handler_that_never_answers() {
    let timeout = Duration::from_millis(100);
    evloop::run(async move {
        let server = Server::start().await;
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap();
        let start = Instant::now();
        let err = async { client.get(server.url("/never")).send().await }
            .compat()
            .await
            .expect_err("/never must not answer");
        let waited = start.elapsed();
        assert!(err.is_timeout(), "not a timeout: {err:?}");
        assert!(
            waited >= timeout,
            "timed out after {waited:?}, before {timeout:?}"
        );

        // The timed-out request took its connection down with it; the next one gets a fresh
        // connection and an answer.
        let body = async { client.get(server.url("/")).send().await?.text().await }
            .compat()
            .await
            .unwrap();
        assert_eq!(body, "Hello, world!");
        // The `/never` connection stays in flight on the server, so no graceful shutdown
        // here: `run` cancels the server's tasks when this future returns.
        assert_eq!(server.accepted.get(), 2);
    })
    .unwrap();
}

/// The rule of use, for reqwest: call `send()` *inside* the wrapped future. A client with a
/// timeout starts the timeout's `tokio::time::Sleep` in `send()` itself, so
/// `compat(client.get(url).send())` panics before `compat` ever polls.
#[test]
fn send_called_outside_compat_panics_when_the_client_has_a_timeout() {
    evloop::run(async {
        let server = Server::start().await;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = server.url("/");
        let payload = catch_unwind(AssertUnwindSafe(|| drop(compat(client.get(&url).send()))))
            .expect_err("send() outside any tokio runtime must panic");
        let message = panic_text(&*payload);
        assert!(
            is_tokio_context_panic(&message),
            "unexpected panic: {message}"
        );

        // The same request with `send()` inside the wrapped future.
        let body = async { client.get(&url).send().await?.text().await }
            .compat()
            .await
            .unwrap();
        assert_eq!(body, "Hello, world!");
        drop(client);
        server.shutdown().await;
    })
    .unwrap();
}

/// Why the bridge exists: without `compat`, reqwest's first poll looks for a tokio runtime
/// on the evloop thread, finds none and panics with tokio's message.
#[test]
fn reqwest_without_compat_panics_with_tokios_message() {
    evloop::run(async {
        let server = Server::start().await;
        // Building a client needs no runtime.
        let client = reqwest::Client::new();
        let url = server.url("/");
        let err = evloop::spawn(async move { client.get(url).send().await.map(drop) })
            .await
            .expect_err("reqwest outside a tokio runtime must panic");
        assert!(err.is_panic(), "{err:?}");
        let message = err.panic_message().unwrap_or_default().to_owned();
        assert!(
            is_tokio_context_panic(&message),
            "unexpected panic: {message}"
        );
        server.shutdown().await;
    })
    .unwrap();
}

/// The other way in: a `Send` reqwest future run on the side runtime itself.
#[test]
fn reqwest_on_the_side_runtime_through_spawn_tokio() {
    evloop::run(async {
        let server = Server::start().await;
        let url = server.url("/echo/spawned");
        let client = reqwest::Client::new();
        let body = spawn_tokio(async move { client.get(url).send().await?.text().await })
            .await
            .unwrap();
        assert_eq!(body, "spawned");
        server.shutdown().await;
    })
    .unwrap();
}

/// `examples/reqwest_local.rs`, run as its `main` runs it.
#[test]
fn example_reqwest_local_demo() {
    let report = evloop::run(example::demo(&["/", "/echo/evloop", "/nowhere"]))
        .unwrap()
        .unwrap();
    let expected = [
        (200, "Hello, world!".to_owned()),
        (200, "evloop".to_owned()),
        (404, "not found".to_owned()),
    ];
    assert_eq!(report.responses, expected);
    // One connection, or a second one now and then (see
    // `sequential_requests_on_one_client_reuse_the_connection`).
    assert!((1..=3).contains(&report.accepted), "{report:?}");
}
