//! A TCP client for the echo servers: sends lines and prints the echoes, or measures round
//! trips per second.
//!
//! ```text
//! cargo run -p evloop --example tcp_client                    # starts its own echo server
//! cargo run -p evloop --example tcp_client -- 127.0.0.1:7000 hello world
//! cargo run --release -p evloop --example tcp_client -- 127.0.0.1:7000 --bench \
//!     [--conns 50] [--size 1024] [--secs 3]
//! ```
//! Without an address it starts a task-based echo server in-process (on the same loop).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

struct Bench {
    conns: usize,
    size: usize,
    secs: f64,
}

/// What the command line asks for: an address (if any), lines to send, or a benchmark.
struct Args {
    addr: Option<SocketAddr>,
    lines: Vec<String>,
    bench: Option<Bench>,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let addr = match args.first().map(|a| a.parse::<SocketAddr>()) {
        Some(Ok(addr)) => {
            args.remove(0);
            Some(addr)
        }
        _ => None,
    };
    if args.first().map(String::as_str) != Some("--bench") {
        return Ok(Args {
            addr,
            lines: args,
            bench: None,
        });
    }
    let mut bench = Bench {
        conns: 50,
        size: 1024,
        secs: 3.0,
    };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--conns" => bench.conns = value.parse()?,
            "--size" => bench.size = value.parse()?,
            "--secs" => bench.secs = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(Args {
        addr,
        lines: Vec::new(),
        bench: Some(bench),
    })
}

/// A task-per-connection echo server on the running loop; returns its address.
async fn start_echo_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    evloop::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            evloop::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Sends each line and prints its echo.
async fn lines(addr: SocketAddr, lines: Vec<String>) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    println!("connected to {addr} from {}", stream.local_addr()?);
    let lines = if lines.is_empty() {
        vec!["hello".into(), "from".into(), "evloop".into()]
    } else {
        lines
    };
    for line in lines {
        let msg = format!("{line}\n");
        stream.write_all(msg.as_bytes()).await?;
        let mut echo = vec![0u8; msg.len()];
        stream.read_exact(&mut echo).await?;
        print!("echo: {}", String::from_utf8_lossy(&echo));
    }
    Ok(())
}

/// `conns` connections doing `size`-byte round trips for `secs` seconds.
async fn bench(addr: SocketAddr, b: Bench) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs_f64(b.secs);
    let total = Rc::new(Cell::new(0u64));
    let mut tasks = Vec::new();
    for _ in 0..b.conns {
        let total = total.clone();
        let size = b.size;
        tasks.push(evloop::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let msg = vec![b'x'; size];
            let mut back = vec![0u8; size];
            while Instant::now() < deadline {
                stream.write_all(&msg).await?;
                stream.read_exact(&mut back).await?;
                total.set(total.get() + 1);
            }
            io::Result::Ok(())
        }));
    }
    let started = Instant::now();
    for result in evloop::gather(tasks).await {
        match result {
            Ok(r) => r?,
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = total.get();
    println!(
        "{} conns x {} B: {n} round trips in {secs:.2} s = {:.0} round trips/s ({:.1} MiB/s each way)",
        b.conns,
        b.size,
        n as f64 / secs,
        (n as f64 * b.size as f64) / secs / (1024.0 * 1024.0),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        addr,
        lines: args,
        bench: bench_opts,
    } = parse_args()?;
    evloop::run(async move {
        let addr = match addr {
            Some(addr) => addr,
            None => {
                let addr = start_echo_server().await?;
                println!("no address given: started an echo server on {addr}");
                addr
            }
        };
        match bench_opts {
            Some(b) => bench(addr, b).await,
            None => lines(addr, args).await,
        }
    })??;
    Ok(())
}
