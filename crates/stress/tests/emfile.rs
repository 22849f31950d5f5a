//! EMFILE on accept under a lowered `RLIMIT_NOFILE`, round after round (quick: 3, full: 20),
//! for a stream accept loop and a `Protocol` server: each round the descriptors run out,
//! the server's accept fails with EMFILE, and once the pressure goes every waiting client
//! is served. Descriptors are back to the baseline after the loop is closed.
//!
//! One test in its own binary: it changes the process's limit and exhausts descriptors.

use std::cell::RefCell;
use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use evloop::net::{TcpListener, TcpStream};
use evloop::protocol::{self, Protocol, Transport};
use evloop_stress::{Scale, nofile, open_fds, set_nofile_soft, within};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

const EMFILE: i32 = 24; // Linux
/// Clients waiting in the backlog each round.
const CLIENTS: usize = 8;

/// A counter that a task can wait on (one loop; no sleeping to wait).
#[derive(Clone, Default)]
struct Counter(Rc<RefCell<(u64, Vec<Waker>)>>);

impl Counter {
    fn bump(&self) {
        let wakers = {
            let mut inner = self.0.borrow_mut();
            inner.0 += 1;
            std::mem::take(&mut inner.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
    fn get(&self) -> u64 {
        self.0.borrow().0
    }
    async fn wait_above(&self, n: u64) {
        poll_fn(|cx| {
            let mut inner = self.0.borrow_mut();
            if inner.0 > n {
                Poll::Ready(())
            } else {
                inner.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

/// Opens `/dev/null` until EMFILE; returns the files.
fn exhaust() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
                return files;
            }
        }
        assert!(files.len() < 100_000, "no EMFILE under the lowered limit");
    }
}

/// One round against the server at `addr`: clients connect, descriptors run out, the
/// server reports EMFILE (`errors` goes up), the pressure goes, every client is echoed.
async fn round(addr: SocketAddr, errors: &Counter, round: usize) -> io::Result<()> {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        // Connected (in the backlog) before the descriptors run out.
        clients.push(TcpStream::from_std(std::net::TcpStream::connect(addr)?)?);
    }
    let before = errors.get();
    let files = exhaust();
    errors.wait_above(before).await;
    drop(files);
    for (i, client) in clients.iter_mut().enumerate() {
        let msg = format!("round {round} client {i}");
        client.write_all(msg.as_bytes()).await?;
        let mut back = vec![0u8; msg.len()];
        client.read_exact(&mut back).await?;
        assert_eq!(back, msg.as_bytes(), "echo after EMFILE");
    }
    Ok(())
}

async fn stream_server(rounds: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let errors = Counter::default();
    let e = errors.clone();
    let server = evloop::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((mut stream, _)) => {
                    evloop::spawn(async move {
                        let mut buf = [0u8; 256];
                        loop {
                            let n = stream.read(&mut buf).await?;
                            if n == 0 {
                                return io::Result::Ok(());
                            }
                            stream.write_all(&buf[..n]).await?;
                        }
                    });
                }
                Err(err) if err.raw_os_error() == Some(EMFILE) => {
                    e.bump();
                    // What a real server does: back off, then retry.
                    evloop::sleep(Duration::from_millis(5)).await;
                }
                Err(err) => return Err::<(), _>(err),
            }
        }
    });
    for r in 0..rounds {
        round(addr, &errors, r).await?;
    }
    server.cancel();
    Ok(())
}

struct Echo(Option<Transport>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Transport) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {
        self.0 = None;
    }
}

async fn protocol_server(rounds: usize) -> io::Result<()> {
    let errors = Counter::default();
    let e = errors.clone();
    evloop::get_running_loop()
        .map_err(io::Error::other)?
        .set_exception_handler(Some(
            move |_: &evloop::EventLoop, ctx: &evloop::ExceptionContext| {
                assert!(
                    ctx.message().starts_with("accept() failed"),
                    "unexpected report: {}",
                    ctx.message()
                );
                e.bump();
            },
        ));
    let server = protocol::create_server(|| Echo(None), "127.0.0.1:0").await?;
    let addr = server.local_addr()?;
    for r in 0..rounds {
        round(addr, &errors, r).await?;
    }
    server.close();
    server.wait_closed().await;
    Ok(())
}

#[test]
fn servers_keep_serving_after_emfile_on_accept() {
    let rounds = Scale::from_env().pick(3, 20);
    within("EMFILE rounds", Duration::from_secs(180), move || {
        let (old_soft, _) = nofile();
        let baseline = open_fds().expect("/proc/self/fd");
        // Room for the loop, the listeners and the clients; then `exhaust` fills the rest.
        let soft = baseline as u64 + 64;
        set_nofile_soft(Some(soft)).expect("lower RLIMIT_NOFILE");
        evloop::run(stream_server(rounds))
            .expect("run")
            .expect("stream server");
        evloop::run(protocol_server(rounds))
            .expect("run")
            .expect("protocol server");
        set_nofile_soft(old_soft).expect("restore RLIMIT_NOFILE");
        assert_eq!(
            open_fds().expect("/proc/self/fd"),
            baseline,
            "descriptors leaked"
        );
    });
}
