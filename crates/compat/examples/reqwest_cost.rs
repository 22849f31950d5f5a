//! What reqwest through the bridge costs next to hyper's own client on evloop: sequential
//! `GET /` requests over one kept-alive HTTP/1.1 connection against one evloop hyper server
//! (`Hello, world!`), on the same loop. hyper's client runs on evloop's sockets (its
//! connection an evloop task); reqwest runs through `compat`, its socket and connection task
//! on the side runtime, so each request crosses threads both ways.
//!
//! ```sh
//! cargo run --release -p evloop-compat --example reqwest_cost [REQUESTS]
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use evloop::hyper::hyper::body::{Bytes, Incoming};
use evloop::hyper::hyper::client::conn::http1;
use evloop::hyper::hyper::service::service_fn;
use evloop::hyper::hyper::{Request, Response};
use evloop::hyper::{HyperIo, server};
use evloop::net::{TcpListener, TcpStream};
use evloop_compat::CompatExt;
use http_body_util::{BodyExt as _, Empty, Full};

type BoxError = Box<dyn std::error::Error>;

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let builder = server::Builder::new();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        evloop::spawn(builder.serve_connection(HyperIo::new(stream), service_fn(hello)));
    }
}

/// hyper's HTTP/1 client on an evloop `TcpStream`.
async fn hyper_native(addr: SocketAddr, requests: u64) -> Result<Duration, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(HyperIo::new(stream)).await?;
    let conn = evloop::spawn(conn);
    let start = Instant::now();
    for _ in 0..requests {
        let req = Request::get("/")
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())?;
        let res = sender.send_request(req).await?;
        let body = res.into_body().collect().await?.to_bytes();
        assert_eq!(&body[..], b"Hello, world!");
    }
    let elapsed = start.elapsed();
    drop(sender);
    conn.await??;
    Ok(elapsed)
}

/// reqwest through `compat`.
async fn reqwest_bridged(
    client: &reqwest::Client,
    url: &str,
    requests: u64,
) -> Result<Duration, BoxError> {
    async {
        let start = Instant::now();
        for _ in 0..requests {
            let body = client.get(url).send().await?.bytes().await?;
            assert_eq!(&body[..], b"Hello, world!");
        }
        reqwest::Result::Ok(start.elapsed())
    }
    .compat()
    .await
    .map_err(Into::into)
}

fn main() -> Result<(), BoxError> {
    let requests: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("REQUESTS: {e}"))?,
        None => 10_000,
    };
    evloop::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(serve(listener));
        let url = format!("http://{addr}/");
        let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
        // Warm up both paths (the side runtime is built on the first compat poll; reqwest's
        // pool gets its connection).
        hyper_native(addr, 100).await?;
        reqwest_bridged(&client, &url, 100).await?;
        let mut best_native = Duration::MAX;
        let mut best_bridged = Duration::MAX;
        for _ in 0..3 {
            best_native = best_native.min(hyper_native(addr, requests).await?);
            best_bridged = best_bridged.min(reqwest_bridged(&client, &url, requests).await?);
        }
        server.cancel();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
        println!("{requests} sequential GETs, best of 3");
        println!(
            "hyper client on evloop:   {:7.2} us/request",
            per(best_native)
        );
        println!(
            "reqwest through compat:   {:7.2} us/request",
            per(best_bridged)
        );
        println!(
            "ratio reqwest/hyper:      {:7.2}x",
            per(best_bridged) / per(best_native)
        );
        Ok(())
    })?
}
