//! An echo server with a task per connection (tokio style): `TcpListener` + `AsyncRead` /
//! `AsyncWrite`.
//!
//! ```text
//! cargo run --release -p evloop --example echo_server_tasks -- [PORT]
//! ```
//! Listens on 127.0.0.1:PORT (default 0: any free port) and prints the address.

use std::io;

use evloop::net::TcpListener;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 0,
    };
    evloop::run(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("echo (tasks) listening on {}", listener.local_addr()?);
        loop {
            let (mut stream, _peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    // e.g. out of file descriptors: the listener stays usable.
                    eprintln!("accept failed: {err}");
                    evloop::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            evloop::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
        #[allow(unreachable_code)]
        io::Result::Ok(())
    })??;
    Ok(())
}
