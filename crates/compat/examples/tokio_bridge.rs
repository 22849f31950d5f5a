//! A tokio-only API on an evloop loop: a `tokio::net::TcpStream` client, with
//! `tokio::time::timeout` on each read, against an evloop echo server on the same loop.
//!
//! ```sh
//! cargo run -p evloop-compat --example tokio_bridge
//! ```

use std::io;
use std::time::Duration;

use evloop::net::TcpListener;
use evloop_compat::{CompatExt, spawn_tokio};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// evloop's side: echo each connection's bytes until it closes, but never say anything first.
async fn echo_server(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        evloop::spawn(async move {
            let mut buf = [0u8; 1024];
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

fn main() -> io::Result<()> {
    evloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(echo_server(listener));
        println!("evloop echo server listening");

        // Everything tokio-flavoured runs inside `.compat()`: the tokio socket and timers
        // register with the side runtime, and this future stays on the evloop thread.
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            println!("tokio::net::TcpStream connected to the evloop server");
            let (read_half, mut write_half) = stream.into_split();
            let mut lines = BufReader::new(read_half).lines();
            for word in ["asyncio", "evloop", "tokio"] {
                write_half.write_all(format!("{word}\n").as_bytes()).await?;
                let echoed = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo in 5 s"))??;
                println!("sent {word:?}, echoed {echoed:?}");
            }
            // The server speaks only when spoken to: tokio's timer ends this wait.
            let silent = tokio::time::timeout(Duration::from_millis(20), lines.next_line()).await;
            println!(
                "tokio::time::timeout on a silent read: {}",
                if silent.is_err() {
                    "elapsed"
                } else {
                    "got data?!"
                }
            );
            io::Result::Ok(())
        }
        .compat()
        .await?;

        // A Send future run on the side runtime itself, awaited from evloop.
        let on = spawn_tokio(async { std::thread::current().name().map(str::to_owned) }).await;
        println!("spawn_tokio ran on thread {:?}", on.unwrap_or_default());

        server.cancel();
        println!("done");
        Ok(())
    })
    .map_err(io::Error::other)?
}
