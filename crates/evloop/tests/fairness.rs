//! A loop nobody can freeze or starve: sockets that stay ready (or report a hang-up
//! forever) must leave room for timers and other tasks.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use evloop::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Counts how many times the future it wraps was polled.
struct CountPolls<F> {
    polls: Rc<Cell<usize>>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.fut.as_mut().poll(cx)
    }
}

/// Runs `f` (which runs a loop) on its own thread and waits at most `limit` for its result:
/// a frozen loop fails the test instead of hanging it.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(_) => panic!("the loop did not finish within {limit:?}: frozen"),
    }
}

/// A UDP socket whose read side is shut down reports EPOLLIN | EPOLLRDHUP for good, while
/// its non-blocking `recvfrom` keeps answering EAGAIN. A `recv_from` pending on it must
/// wait quietly (a 200 ms timer fires; the receive is polled a handful of times), not spin
/// on the sticky hang-up (it used to, inside one poll, freezing the loop at 100 % CPU).
#[test]
fn udp_recv_from_after_shutdown_read_does_not_spin() -> io::Result<()> {
    let polls = within(Duration::from_secs(5), || {
        evloop::run(async {
            let a = Rc::new(UdpSocket::bind("127.0.0.1:0").await?);
            let b = UdpSocket::bind("127.0.0.1:0").await?;
            a.connect(b.local_addr()?).await?;
            let polls = Rc::new(Cell::new(0));
            let receiver = {
                let a = a.clone();
                evloop::spawn(CountPolls {
                    polls: polls.clone(),
                    fut: Box::pin(async move {
                        let mut buf = [0u8; 64];
                        a.recv_from(&mut buf).await
                    }),
                })
            };
            // Let the receive start and find nothing to read.
            while polls.get() == 0 {
                evloop::yield_now().await;
            }
            socket2::SockRef::from(a.get_ref()).shutdown(std::net::Shutdown::Read)?;
            evloop::sleep(Duration::from_millis(200)).await;
            let receiving = !receiver.is_done();
            receiver.cancel();
            io::Result::Ok((polls.get(), receiving))
        })
        .expect("evloop::run")
    })?;
    let (polls, receiving) = polls;
    assert!(
        receiving,
        "recv_from returned on a socket with nothing to read"
    );
    assert!(polls <= 4, "recv_from was polled {polls} times in 200 ms");
    Ok(())
}

/// The outcome of a [`Starvation`] probe.
#[derive(Debug)]
struct Seen {
    /// After how many operations the other task had run.
    other_task_at: Option<u32>,
    /// After how many operations the timer had fired.
    timer_at: Option<u32>,
    /// Operations done in all.
    ops: u32,
}

/// What a task that never awaits anything but always-ready I/O let happen meanwhile:
/// started with another task and a due (zero-delay) timer waiting to run, it records after
/// how many of the hog's operations each of them got its turn.
struct Starvation {
    /// After how many operations the other task had run.
    other_task_at: Option<u32>,
    /// After how many operations the timer had fired.
    timer_at: Option<u32>,
    ops: u32,
    other: Rc<Cell<bool>>,
    timer: Rc<Cell<bool>>,
}

impl Starvation {
    fn start() -> Starvation {
        let lp = evloop::get_running_loop().expect("running loop");
        let (other, timer) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let t = timer.clone();
        lp.call_later(Duration::ZERO, move || t.set(true));
        let o = other.clone();
        drop(evloop::spawn(async move { o.set(true) }));
        Starvation {
            other_task_at: None,
            timer_at: None,
            ops: 0,
            other,
            timer,
        }
    }

    /// Should the hog do another operation (up to `limit`, until both others ran)?
    fn keep_going(&self, limit: u32) -> bool {
        self.ops < limit && (self.other_task_at.is_none() || self.timer_at.is_none())
    }

    /// What the hog saw (the part that may leave the loop's thread).
    fn finish(self) -> Seen {
        Seen {
            other_task_at: self.other_task_at,
            timer_at: self.timer_at,
            ops: self.ops,
        }
    }

    /// One operation done.
    fn op(&mut self) {
        self.ops += 1;
        if self.other.get() && self.other_task_at.is_none() {
            self.other_task_at = Some(self.ops);
        }
        if self.timer.get() && self.timer_at.is_none() {
            self.timer_at = Some(self.ops);
        }
    }
}

/// With a budget of 128 operations per poll, the others run within a few budgets; without
/// one, never while the hog has work (up to `LIMIT` operations, all ready at once).
const LIMIT: u32 = 2000;
const WITHIN: u32 = 4 * evloop::coop::DEFAULT_BUDGET;

fn assert_not_starved(seen: &Seen) {
    let ok = |at: Option<u32>| at.is_some_and(|n| n <= WITHIN);
    assert!(
        ok(seen.other_task_at) && ok(seen.timer_at),
        "starved by always-ready I/O ({} operations): {seen:?}",
        seen.ops
    );
}

/// A task reading, one byte at a time, a socket that always has data (4 KiB queued, so
/// every read succeeds at once) lets another task and a due timer run.
#[test]
fn an_always_readable_socket_does_not_starve_the_loop() -> io::Result<()> {
    let seen = within(Duration::from_secs(10), || {
        evloop::run(async {
            let (mut a, mut b) = UnixStream::pair()?;
            a.write_all(&[7u8; 4096]).await?;
            // In a task of its own (the accept test hogs `run`'s main future).
            let hog = evloop::spawn(async move {
                let mut byte = [0u8; 1];
                let mut seen = Starvation::start();
                while seen.keep_going(LIMIT) {
                    assert_eq!(b.read(&mut byte).await?, 1);
                    seen.op();
                }
                io::Result::Ok(seen.finish())
            });
            hog.await.expect("the reading task")
        })
        .expect("evloop::run")
    })?;
    assert_not_starved(&seen);
    Ok(())
}

/// A task peeking at a socket that always has data never gets `Pending` from the socket:
/// a 10 ms timer must still fire on time, and another task run.
#[test]
fn peeking_an_always_readable_socket_does_not_starve_a_timer() -> io::Result<()> {
    const DELAY: Duration = Duration::from_millis(10);
    const GIVE_UP: Duration = Duration::from_secs(2);
    let (late, other_ran) = within(Duration::from_secs(10), || {
        evloop::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let mut client = TcpStream::connect(listener.local_addr()?).await?;
            let (server, _) = listener.accept().await?;
            client.write_all(b"always here").await?;
            let lp = evloop::get_running_loop().expect("running loop");
            let fired = Rc::new(Cell::new(None));
            let deadline = Instant::now() + DELAY;
            let f = fired.clone();
            lp.call_at(deadline, move || f.set(Some(Instant::now())));
            let other = Rc::new(Cell::new(false));
            let o = other.clone();
            let _other = evloop::spawn(async move { o.set(true) });
            let start = Instant::now();
            let mut buf = [0u8; 4];
            while (fired.get().is_none() || !other.get()) && start.elapsed() < GIVE_UP {
                assert_eq!(server.peek(&mut buf).await?, 4);
            }
            let late = fired.get().map(|at| at.saturating_duration_since(deadline));
            io::Result::Ok((late, other.get()))
        })
        .expect("evloop::run")
    })?;
    assert!(other_ran, "the other task never ran");
    let late = late.expect("the timer never fired while the socket was peeked at");
    assert!(
        late < Duration::from_secs(1),
        "the timer fired {late:?} late"
    );
    Ok(())
}

/// An accept loop on a listener that always has a connection waiting (the loop connects
/// the next client itself, a blocking loopback connect) lets another task and a due timer
/// run.
#[test]
fn an_accept_loop_with_connections_always_waiting_does_not_starve_the_loop() -> io::Result<()> {
    let seen = within(Duration::from_secs(10), || {
        evloop::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let mut seen = Starvation::start();
            while seen.keep_going(LIMIT / 4) {
                let client = std::net::TcpStream::connect(addr)?;
                let (server, _) = listener.accept().await?;
                drop((client, server));
                seen.op();
            }
            io::Result::Ok(seen.finish())
        })
        .expect("evloop::run")
    })?;
    assert_not_starved(&seen);
    Ok(())
}
