//! What the bridge costs: request/response round trips (8 bytes each way) against one evloop
//! echo server, from a native evloop client and from a tokio client through `compat`, on the
//! same loop. Each readiness event of the tokio socket is seen by the side runtime's worker
//! thread and reaches the evloop task as a cross-thread wake; the native client's is seen by
//! the loop itself.
//!
//! ```sh
//! cargo run --release -p evloop-compat --example bridge_cost [ROUNDS]
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use evloop::net::{TcpListener, TcpStream};
use evloop_compat::CompatExt;
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn echo_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        evloop::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok(());
                }
                stream.write_all(&buf[..n]).await?;
            }
        });
    }
}

async fn native(addr: SocketAddr, rounds: u64) -> io::Result<Duration> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let start = Instant::now();
    for i in 0..rounds {
        stream.write_all(&i.to_le_bytes()).await?;
        let mut back = [0u8; 8];
        stream.read_exact(&mut back).await?;
        assert_eq!(u64::from_le_bytes(back), i);
    }
    Ok(start.elapsed())
}

async fn bridged(addr: SocketAddr, rounds: u64) -> io::Result<Duration> {
    async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let start = Instant::now();
        for i in 0..rounds {
            stream.write_all(&i.to_le_bytes()).await?;
            let mut back = [0u8; 8];
            stream.read_exact(&mut back).await?;
            assert_eq!(u64::from_le_bytes(back), i);
        }
        Ok(start.elapsed())
    }
    .compat()
    .await
}

fn main() -> io::Result<()> {
    let rounds: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("ROUNDS: {e}")))?,
        None => 20_000,
    };
    evloop::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(echo_server(listener));
        // Warm up both paths (the side runtime is built on the first compat poll).
        native(addr, 100).await?;
        bridged(addr, 100).await?;
        let mut best_native = Duration::MAX;
        let mut best_bridged = Duration::MAX;
        for _ in 0..3 {
            best_native = best_native.min(native(addr, rounds).await?);
            best_bridged = best_bridged.min(bridged(addr, rounds).await?);
        }
        server.cancel();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
        println!("{rounds} round trips, best of 3");
        println!(
            "native evloop TcpStream:        {:7.2} us/round trip",
            per(best_native)
        );
        println!(
            "tokio TcpStream through compat: {:7.2} us/round trip",
            per(best_bridged)
        );
        println!(
            "ratio bridged/native:           {:7.2}x",
            per(best_bridged) / per(best_native)
        );
        Ok(())
    })
    .map_err(io::Error::other)?
}
