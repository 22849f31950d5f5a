//! Every panicking-`Drop` site, mixed on one loop, round after round (quick: [`QUICK_ROUNDS`],
//! full: 10×), while another thread wakes, cancels, spawns, connects, writes and posts
//! closures into it. Each destructor panic must be contained: reported to the loop's
//! exception handler (or, where no loop can receive it, logged), the loop goes on, `close()`
//! completes (the reactor is closed, a kept `UdpSocket` errors in the next loop, the
//! process's open fds are back to the baseline), `Server::wait_closed` returns and every
//! `Task`/`TaskRef` awaiting a task resolves.
//!
//! The sites: a task's future (dropped after completing, cancelled on the loop or from
//! another thread, left to the close, abandoned, spawned from another thread, created on a
//! closed loop), a task's output (read, unread with the handle dropped on the loop, on another
//! thread or after the close, detached), `call_soon` and `call_later` callbacks (run,
//! cancelled, pending at the close, refused by a closed loop), `call_soon_threadsafe`
//! closures (run, pending at the close, racing it, refused), `add_reader` callbacks
//! (replaced, removed, removing themselves, left to the close), a loop extension, `Protocol`s
//! (connection lost, open at the close) and `DatagramProtocol`s (closed, open at the close),
//! and the default executor's jobs and results.
//!
//! The rounds alternate between `evloop::run` and a hand-driven `EventLoop`
//! (`run_until_complete` then `close`, with and without `protocol::close_all`). The counts
//! are exact, per site: every bomb created is dropped (none leaked), and every drop's panic
//! is received once, by the handler or by the tracing layer (`bombs.rs`). The sites that log
//! (`tracing::error!`, as documented) are those where the loop is closed for good, or not
//! running and not closing its protocol layer:
//! - a task created on a closed loop (`create_task`, `LoopHandle::spawn` racing the close):
//!   its future is dropped at once, and the report finds the loop sealed;
//! - a closure `call_soon_threadsafe` refuses (loop closed) or accepts just before the seal;
//! - a `Task` whose unread output panics when the handle is dropped after the close;
//! - a protocol still open when a hand-driven loop is closed without `protocol::close_all`
//!   (its registry, a loop extension, drops it while the loop neither runs nor closes its
//!   protocols, so there is no loop to report to).
//!
//! Those are counted through a tracing layer; any other warning or error event, and any
//! report that is not a bomb's (except "Task was destroyed but it is pending!", counted
//! too), fails the test. Bombs panic with a `bomb:` payload, which the panic hook swallows.

#[path = "panicking_drops/bombs.rs"]
mod bombs;

use std::future::{Future, pending, poll_fn};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bombs::*;
use evloop::net::UdpSocket;
use evloop::protocol::{self, DatagramProtocol, DatagramTransport, Protocol, Server, Transport};
use evloop::{EventLoop, ExceptionContext, JoinError, LoopHandle, RunInExecutor, Task, TaskRef};
use evloop_stress::{Scale, open_fds, with_watchdog};
use tracing_subscriber::layer::SubscriberExt;

/// Rounds in quick mode (a few seconds); full mode runs 10×.
const QUICK_ROUNDS: u64 = 2_000;
/// Bombs of each kind per round (the per-loop sites — the extension, the fd callbacks, the
/// datagram endpoints, what is left pending at a hand-driven close — have one).
const K: u64 = 3;
/// Closures posted and tasks spawned by the other thread in each of its two bursts: one
/// while the loop runs, one racing its end.
const FLOOD: u64 = 16;
/// A wait inside a round that takes longer than this failed (a round takes milliseconds).
const WAIT: Duration = Duration::from_secs(10);
/// A round that makes no progress for this long is hung.
const STALL: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// Waits for `fut`, failing the round (instead of hanging it) after [`WAIT`].
async fn wait(round: u64, what: &str, fut: impl Future<Output = ()>) {
    if evloop::time::timeout(WAIT, fut).await.is_err() {
        panic!("round {round}: {what}: not done within {WAIT:?}");
    }
}

/// A stream protocol that panics when dropped.
struct BombProto {
    made: Gauge,
    _transport: Option<Transport>,
    _bomb: Bomb,
}

impl Protocol for BombProto {
    fn connection_made(&mut self, t: Transport) {
        self._transport = Some(t);
        self.made.bump();
    }
    fn data_received(&mut self, _: &[u8]) {}
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

fn bomb_proto(site: Site, made: &Gauge) -> impl Fn() -> BombProto + 'static {
    let made = made.clone();
    move || BombProto {
        made: made.clone(),
        _transport: None,
        _bomb: Bomb::new(site),
    }
}

/// A datagram protocol that panics when dropped.
struct DatagramBomb {
    got: Gauge,
    _bomb: Bomb,
}

impl DatagramProtocol for DatagramBomb {
    fn connection_made(&mut self, _: DatagramTransport) {}
    fn datagram_received(&mut self, _: &[u8], _: SocketAddr) {
        self.got.bump();
    }
    fn connection_lost(&mut self, _: Option<io::Error>) {}
}

/// A loop extension that panics when dropped.
struct ExtensionBomb(#[allow(dead_code)] Bomb);

/// Reads everything available on a non-blocking socket.
fn drain(mut s: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// An `add_reader` callback that drains `s`, counts its run and panics when dropped.
fn reader_cb(site: Site, s: &Rc<UnixStream>, reads: &Gauge) -> impl FnMut() + 'static {
    let (b, s, reads) = (Bomb::new(site), s.clone(), reads.clone());
    move || {
        let _keep = &b;
        drain(&s);
        reads.bump();
    }
}

// -- the other threads --

/// What the worker thread is asked to do.
enum Msg {
    /// Set the flag, then wake the task.
    Wake(Waker, Arc<AtomicBool>),
    Cancel(TaskRef),
    /// Wait for the task, then drop its handle (its unread output panics) and ack.
    DropOutput(TaskRef, Task<Bomb>, Gauge),
    /// Open `n` connections; `keep`: until the thread ends, else until `DisconnectA`.
    Connect(SocketAddr, u64, bool),
    DisconnectA,
    /// Write a byte (to a watched socket) and drop this clone of it.
    Write(UnixStream),
    Datagram(SocketAddr),
    /// Post [`FLOOD`] closures and spawn [`FLOOD`] tasks, each with a bomb.
    Flood,
}

/// Does what it is told until every sender is gone, then joins the tasks it spawned.
/// Returns the failures it saw.
fn worker(handle: LoopHandle, rx: mpsc::Receiver<Msg>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut spawned: Vec<Task<u8>> = Vec::new();
    let (mut group_a, mut group_b) = (Vec::new(), Vec::new());
    for msg in rx {
        match msg {
            Msg::Wake(waker, flag) => {
                flag.store(true, SeqCst);
                waker.wake();
            }
            Msg::Cancel(task) => {
                task.cancel();
            }
            Msg::DropOutput(r, task, ack) => {
                if let Err(err) = futures_lite::future::block_on(r) {
                    failures.push(format!("an unread output's task: {err}"));
                }
                drop(task);
                ack.bump();
            }
            Msg::Connect(addr, n, keep) => {
                for _ in 0..n {
                    match TcpStream::connect(addr) {
                        Ok(s) if keep => group_b.push(s),
                        Ok(s) => group_a.push(s),
                        Err(err) => failures.push(format!("connect: {err}")),
                    }
                }
            }
            Msg::DisconnectA => group_a.clear(),
            Msg::Write(mut s) => {
                if let Err(err) = s.write_all(b"x") {
                    failures.push(format!("write: {err}"));
                }
            }
            Msg::Datagram(addr) => {
                let sent =
                    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|u| u.send_to(b"d", addr));
                if let Err(err) = sent {
                    failures.push(format!("send_to: {err}"));
                }
            }
            Msg::Flood => {
                for _ in 0..FLOOD {
                    // Refused once the loop is closed (the closure is dropped then, logged).
                    let _ = handle.call_soon_threadsafe(bomb_cb(Site::Threadsafe));
                    spawned.push(handle.spawn(holding(Site::TaskSpawned, async { 7u8 })));
                }
            }
        }
    }
    drop((group_a, group_b));
    for task in spawned {
        match task.join_blocking() {
            Ok(7) => {}
            Err(err) if err.is_cancelled() => {}
            other => failures.push(format!("a spawned task: {other:?}")),
        }
    }
    failures
}

/// How an awaited task must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Done,
    Cancelled,
    Panicked,
}

/// Awaits each task it is sent (from this foreign thread); returns the mismatches.
fn awaiter(rx: mpsc::Receiver<(TaskRef, Expect)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (task, expect) in rx {
        let name = task.name();
        let got = match futures_lite::future::block_on(task) {
            Ok(()) => Expect::Done,
            Err(JoinError::Cancelled) => Expect::Cancelled,
            Err(err) if err.is_panic() => Expect::Panicked,
            Err(err) => {
                failures.push(format!("{name}: {err}"));
                continue;
            }
        };
        if got != expect {
            failures.push(format!("{name}: {got:?}, expected {expect:?}"));
        }
    }
    failures
}

// -- one round --

/// How the round's loop is driven and closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `evloop::run`: cancels the remaining tasks, closes the protocols, closes the loop.
    Run,
    /// `run_until_complete`, then `protocol::close_all` if `close_all`, then `close()`.
    Hand { close_all: bool },
}

/// What the main future leaves for after the close.
struct Kept {
    lp: EventLoop,
    at_close: Vec<Task<()>>,
    outputs: Vec<Task<Bomb>>,
    server_b: Rc<Server>,
    datagram_b: DatagramTransport,
    udp: UdpSocket,
    sockets: Vec<UnixStream>,
}

/// Counts what the loop's exception handler receives.
fn record(_: &EventLoop, ctx: &ExceptionContext) {
    let msg = ctx.message();
    match ctx.panic_message().and_then(site_of) {
        Some(site) => {
            HANDLED[site as usize].fetch_add(1, SeqCst);
            COUNTED.bump();
            if !message_fits(site, msg) {
                unexpected(format!("{site:?} reported as {msg:?}"));
            }
        }
        None if msg == "Task was destroyed but it is pending!" => {
            PENDING_DESTROYED.fetch_add(1, SeqCst);
        }
        None => unexpected(format!("report {msg:?} ({:?})", ctx.panic_message())),
    }
}

/// The round runs in `evloop::run` (`Mode::Run`): tasks still pending when the main future
/// ends are cancelled by its shutdown, which reports their panics as such.
static IN_RUN: AtomicBool = AtomicBool::new(false);

fn message_fits(site: Site, msg: &str) -> bool {
    use Site::*;
    let destructor = msg.starts_with("Exception in the destructor of");
    let callback = msg.starts_with("Exception in callback");
    match site {
        TaskAtClose | TaskAbandoned if IN_RUN.load(SeqCst) => {
            msg == "unhandled exception during run() shutdown"
        }
        TaskDone | TaskCancelled | TaskRemoteCancelled | TaskAtClose | TaskAbandoned
        | TaskSpawned | TaskOnClosedLoop | OutputUnread | OutputUnreadRemote | OutputDetached
        | OutputAfterClose => msg.ends_with("panicked while being dropped"),
        OutputRead => msg == "Task exception was never retrieved",
        ExecutorJob | ExecutorUnread => destructor || msg.ends_with("panicked while being dropped"),
        CallSoonRan | TimerRan => callback,
        Threadsafe => callback || destructor,
        _ => destructor,
    }
}

/// Where a site's panic must arrive.
#[derive(Debug)]
enum Channel {
    Handler,
    Log,
    Either,
}

fn channel(site: Site, mode: Mode) -> Channel {
    use Site::*;
    match site {
        Threadsafe | TaskSpawned => Channel::Either,
        TaskOnClosedLoop | ThreadsafeRefused | OutputAfterClose => Channel::Log,
        ProtocolAtClose | DatagramAtClose if mode == (Mode::Hand { close_all: false }) => {
            Channel::Log
        }
        _ => Channel::Handler,
    }
}

/// How many bombs of `site` a round creates.
fn created_per_round(site: Site, mode: Mode) -> u64 {
    use Site::*;
    match site {
        Threadsafe | TaskSpawned => 2 * FLOOD,
        ReaderReplaced | ReaderRemoved | ReaderSelfRemoved | ReaderAtClose | Extension
        | DatagramClosed | DatagramAtClose | CallSoonOnClosed | TimerOnClosed
        | ThreadsafeRefused | ExecutorRefused => 1,
        CallSoonAtClose | ThreadsafeAtClose => u64::from(mode != Mode::Run),
        _ => K,
    }
}

/// The round's main future: plants every kind of bomb, sets most of them off while the loop
/// runs, and leaves the rest to the close.
async fn plant(round: u64, tx: mpsc::Sender<Msg>, aw: mpsc::Sender<(TaskRef, Expect)>) -> Kept {
    let lp = evloop::get_running_loop().expect("running");
    let send = |m: Msg| tx.send(m).expect("worker alive");
    let expect = |t: TaskRef, e: Expect| aw.send((t, e)).expect("awaiter alive");
    drop(lp.extension(|| ExtensionBomb(Bomb::new(Site::Extension))));
    // The worker posts closures and spawns tasks while everything below goes on.
    send(Msg::Flood);

    // Task futures.
    let (mut woken, mut cancel, mut at_close) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..K {
        let flag = Arc::new(AtomicBool::new(false));
        let tx = tx.clone();
        let t = lp.create_task(holding(
            Site::TaskDone,
            poll_fn(move |cx| {
                if flag.load(SeqCst) {
                    return Poll::Ready(());
                }
                let _ = tx.send(Msg::Wake(cx.waker().clone(), flag.clone()));
                Poll::Pending
            }),
        ));
        expect(t.as_ref(), Expect::Done);
        woken.push(t.as_ref());
        let t = lp.create_task(holding(Site::TaskCancelled, pending::<()>()));
        expect(t.as_ref(), Expect::Cancelled);
        cancel.push(t);
        let t = lp.create_task(holding(Site::TaskRemoteCancelled, pending::<()>()));
        expect(t.as_ref(), Expect::Cancelled);
        send(Msg::Cancel(t.as_ref()));
        let t = lp.create_task(holding(Site::TaskAtClose, pending::<()>()));
        expect(t.as_ref(), Expect::Cancelled);
        at_close.push(t);
        // No handle, no waker, no awaiter: only the loop knows it, until it closes.
        drop(lp.create_task(holding(Site::TaskAbandoned, pending::<()>())));
    }

    // Task outputs.
    let (mut unread, mut outputs) = (Vec::new(), Vec::new());
    let acks = Gauge::default();
    for _ in 0..K {
        let producer = lp.create_task(async { Bomb::new(Site::OutputRead) });
        // Reads it and drops it: the panic is in the (detached) reader's poll.
        let reader = lp.create_task(async move { drop(producer.await) });
        expect(reader.as_ref(), Expect::Panicked);
        let t = lp.create_task(async { Bomb::new(Site::OutputUnread) });
        unread.push(t);
        let t = lp.create_task(async { Bomb::new(Site::OutputUnreadRemote) });
        send(Msg::DropOutput(t.as_ref(), t, acks.clone()));
        let t = lp.create_task(async {
            evloop::yield_now().await;
            Bomb::new(Site::OutputDetached)
        });
        expect(t.as_ref(), Expect::Done);
        drop(t);
        outputs.push(lp.create_task(async { Bomb::new(Site::OutputAfterClose) }));
    }

    // Callbacks and timers.
    let ran = Gauge::default();
    for _ in 0..K {
        lp.call_soon(bomb_cb_ran(Site::CallSoonRan, ran.clone()));
        lp.call_soon(bomb_cb(Site::CallSoonCancelled)).cancel();
        lp.call_later(Duration::ZERO, bomb_cb_ran(Site::TimerRan, ran.clone()));
        lp.call_later(HOUR, bomb_cb(Site::TimerCancelled)).cancel();
        drop(lp.call_later(HOUR, bomb_cb(Site::TimerAtClose)));
    }

    evloop::yield_now().await;
    for t in cancel {
        t.cancel();
    }

    // fd callbacks: replaced, removed, removing itself while it runs, left to the close.
    let (a1, b1) = UnixStream::pair().expect("socketpair");
    let (a2, b2) = UnixStream::pair().expect("socketpair");
    a1.set_nonblocking(true).expect("nonblocking");
    let (a1, a2) = (Rc::new(a1), Rc::new(a2));
    let fd = a1.as_raw_fd();
    let reads = Gauge::default();
    let write = || send(Msg::Write(b1.try_clone().expect("dup")));
    lp.add_reader(fd, reader_cb(Site::ReaderReplaced, &a1, &reads))
        .expect("add_reader");
    write();
    wait(round, "reader 1", reads.reach(1)).await;
    lp.add_reader(fd, reader_cb(Site::ReaderRemoved, &a1, &reads))
        .expect("add_reader");
    write();
    wait(round, "reader 2", reads.reach(2)).await;
    assert!(lp.remove_reader(fd));
    let mut cb = reader_cb(Site::ReaderSelfRemoved, &a1, &reads);
    let lp2 = lp.clone();
    lp.add_reader(fd, move || {
        cb();
        lp2.remove_reader(fd);
    })
    .expect("add_reader");
    write();
    wait(round, "reader 3", reads.reach(3)).await;
    lp.add_reader(a2.as_raw_fd(), reader_cb(Site::ReaderAtClose, &a2, &reads))
        .expect("add_reader");

    // Protocols: server A's connections end (and `wait_closed` returns), server B's stay
    // open until the loop closes.
    let (made_a, made_b) = (Gauge::default(), Gauge::default());
    let server_a = protocol::create_server(bomb_proto(Site::ProtocolLost, &made_a), "127.0.0.1:0")
        .await
        .expect("server A");
    let server_b =
        protocol::create_server(bomb_proto(Site::ProtocolAtClose, &made_b), "127.0.0.1:0")
            .await
            .expect("server B");
    send(Msg::Connect(server_a.local_addr().expect("addr"), K, false));
    send(Msg::Connect(server_b.local_addr().expect("addr"), K, true));
    let got = Gauge::default();
    let g = got.clone();
    let (datagram_a, p) = protocol::create_datagram_endpoint(
        move || DatagramBomb {
            got: g,
            _bomb: Bomb::new(Site::DatagramClosed),
        },
        "127.0.0.1:0",
        None,
    )
    .await
    .expect("datagram endpoint");
    drop(p);
    send(Msg::Datagram(datagram_a.local_addr().expect("addr")));
    let (datagram_b, p) = protocol::create_datagram_endpoint(
        || DatagramBomb {
            got: Gauge::default(),
            _bomb: Bomb::new(Site::DatagramAtClose),
        },
        "127.0.0.1:0",
        None,
    )
    .await
    .expect("datagram endpoint");
    drop(p);
    wait(round, "server A's connections", made_a.reach(K)).await;
    wait(round, "server B's connections", made_b.reach(K)).await;
    let (server_a, server_b) = (Rc::new(server_a), Rc::new(server_b));
    let s = server_a.clone();
    let waiter_a = lp.create_task(async move { s.wait_closed().await });
    expect(waiter_a.as_ref(), Expect::Done);
    let s = server_b.clone();
    let waiter_b = lp.create_task(async move { s.wait_closed().await });
    expect(waiter_b.as_ref(), Expect::Cancelled);
    server_a.close();
    send(Msg::DisconnectA);
    wait(round, "server A's wait_closed", server_a.wait_closed()).await;
    assert_eq!(server_a.active_connections(), 0);
    wait(round, "a datagram", got.reach(1)).await;
    datagram_a.close();
    // Closing is asynchronous (as in asyncio): the protocols go in a later iteration, which
    // the loop must reach (a hand-driven close without `close_all` could only log them).
    let closed = || dropped(Site::ProtocolLost) == K && dropped(Site::DatagramClosed) == 1;
    wait(round, "closed protocols dropped", COUNTED.until(closed)).await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");

    // The default executor's jobs.
    for n in 0..K {
        let b = Bomb::new(Site::ExecutorJob);
        let t = lp.run_in_executor(move || b);
        if n > 0 {
            t.cancel();
        }
        let t = lp.run_in_executor(|| Bomb::new(Site::ExecutorUnread));
        wait(round, "an executor job", async { drop(t.as_ref().await) }).await;
    }
    // Their reports come from the pool's threads: wait until the loop has them.
    let reported = || handled(Site::ExecutorJob) == K && handled(Site::ExecutorUnread) == K;
    wait(round, "the executor's reports", COUNTED.until(reported)).await;

    // Everything that must have happened before the end has.
    wait(round, "callbacks and timers", ran.reach(2 * K)).await;
    wait(round, "remote output drops", acks.reach(K)).await;
    for t in woken.into_iter().chain(unread.iter().map(Task::as_ref)) {
        let what = format!("task {}", t.name());
        wait(round, &what, async move { drop(t.await) }).await;
    }
    drop(unread);
    for t in &outputs {
        wait(round, "an output", async { drop(t.as_ref().await) }).await;
    }
    // The second burst races the loop's end.
    send(Msg::Flood);
    Kept {
        lp,
        at_close,
        outputs,
        server_b,
        datagram_b,
        udp,
        sockets: vec![b1, b2],
    }
}

fn round(i: u64, mode: Mode, baseline: usize) {
    reset_counts();
    IN_RUN.store(mode == Mode::Run, SeqCst);
    let (tx, rx) = mpsc::channel::<Msg>();
    let (aw, aw_rx) = mpsc::channel::<(TaskRef, Expect)>();
    let awaiting = thread::spawn(move || awaiter(aw_rx));
    let aw2 = aw.clone();
    let (kept, working) = match mode {
        Mode::Run => {
            let (handle_tx, handle_rx) = mpsc::channel::<LoopHandle>();
            let working = thread::spawn(move || match handle_rx.recv() {
                Ok(handle) => worker(handle, rx),
                Err(_) => vec!["no loop handle".to_string()],
            });
            let kept = evloop::run(async move {
                let lp = evloop::get_running_loop().expect("running");
                lp.set_exception_handler(Some(record));
                handle_tx.send(lp.handle()).expect("worker waiting");
                plant(i, tx, aw2).await
            })
            .expect("run");
            (kept, working)
        }
        Mode::Hand { close_all } => {
            let lp = EventLoop::new().expect("loop");
            lp.set_exception_handler(Some(record));
            let handle = lp.handle();
            let working = thread::spawn(move || worker(handle, rx));
            let kept = lp.run_until_complete(plant(i, tx, aw2)).expect("run");
            // Left pending by the loop's own thread for the close to drop.
            drop(lp.call_soon(bomb_cb(Site::CallSoonAtClose)));
            lp.handle()
                .call_soon_threadsafe(bomb_cb(Site::ThreadsafeAtClose))
                .expect("open");
            if close_all {
                protocol::close_all(&lp);
            }
            lp.close().expect("close");
            (kept, working)
        }
    };
    let lp = &kept.lp;
    assert!(
        lp.is_closed() && lp.reactor().is_closed(),
        "round {i}: close() half done"
    );
    lp.close().expect("a second close");

    // What a closed loop can only drop: reported where it can be, else logged.
    lp.call_soon(bomb_cb(Site::CallSoonOnClosed));
    drop(lp.call_later(HOUR, bomb_cb(Site::TimerOnClosed)));
    assert!(
        lp.handle()
            .call_soon_threadsafe(bomb_cb(Site::ThreadsafeRefused))
            .is_err()
    );
    let b = Bomb::new(Site::ExecutorRefused);
    drop(lp.run_in_executor(move || b));
    for _ in 0..K {
        let t = lp.create_task(holding(Site::TaskOnClosedLoop, pending::<()>()));
        aw.send((t.as_ref(), Expect::Cancelled))
            .expect("awaiter alive");
    }
    let Kept {
        lp,
        at_close,
        outputs,
        server_b,
        datagram_b,
        udp,
        sockets,
    } = kept;
    assert!(!server_b.is_serving());
    drop((outputs, at_close, server_b, datagram_b, sockets));
    drop(aw);
    let mut failures = awaiting.join().expect("awaiter thread");
    failures.extend(working.join().expect("worker thread"));
    assert!(failures.is_empty(), "round {i} ({mode:?}): {failures:#?}");

    // The close released the loop's fds, though a socket of it is still alive (the socket
    // keeps its own fd, and only that one, until it is dropped).
    assert_eq!(
        open_fds().expect("fds"),
        baseline + 1,
        "round {i} ({mode:?}): fds with the UDP socket kept"
    );
    assert!(std::fs::metadata(format!("/proc/self/fd/{}", udp.get_ref().as_raw_fd())).is_ok());
    let got = evloop::run(async move {
        let mut buf = [0u8; 8];
        udp.recv_from(&mut buf).await
    })
    .expect("a second loop");
    assert!(
        got.is_err(),
        "round {i}: a socket of a closed loop: {got:?}"
    );
    drop(lp);
    assert_eq!(
        open_fds().expect("fds"),
        baseline,
        "round {i} ({mode:?}): fds"
    );
    check_counts(i, mode);
}

fn check_counts(i: u64, mode: Mode) {
    let unexpected = std::mem::take(&mut *UNEXPECTED.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(
        unexpected.is_empty(),
        "round {i} ({mode:?}): {unexpected:#?}"
    );
    assert_eq!(
        SKIPPED.load(SeqCst),
        0,
        "round {i}: a bomb dropped while unwinding"
    );
    for &site in SITES {
        let at = |c: &[AtomicU64; MAX_SITES]| c[site as usize].load(SeqCst);
        let (c, d, h, l) = (at(&CREATED), at(&DROPPED), at(&HANDLED), at(&LOGGED));
        let what = format!("round {i} ({mode:?}), {site:?}");
        assert_eq!(c, created_per_round(site, mode), "{what}: bombs created");
        assert_eq!(d, c, "{what}: {c} created, {d} dropped (leaked)");
        assert_eq!(h + l, d, "{what}: {d} panicked, {h} reported, {l} logged");
        match channel(site, mode) {
            Channel::Handler => assert_eq!(l, 0, "{what}: logged, not reported"),
            Channel::Log => assert_eq!(h, 0, "{what}: reported"),
            Channel::Either => {}
        }
        TOTAL_HANDLED.fetch_add(h, SeqCst);
        TOTAL_LOGGED.fetch_add(l, SeqCst);
        if site == Site::Threadsafe {
            RACED_THREADSAFE.fetch_add(l, SeqCst);
        }
    }
    // Hand-driven, the close finds the tasks left pending: K at close, K abandoned, and
    // server B's waiter; plus remote spawns that had not run yet. `evloop::run` cancels them
    // all first (but a spawn racing its end can still be found pending).
    let pending = PENDING_DESTROYED.load(SeqCst);
    let local = if mode == Mode::Run { 0 } else { 2 * K + 1 };
    assert!(
        (local..=local + FLOOD).contains(&pending),
        "round {i} ({mode:?}): {pending} tasks destroyed pending, expected {local} (+ races)"
    );
}

#[test]
fn every_panicking_destructor_is_contained_round_after_round() {
    assert!(SITES.len() <= MAX_SITES);
    let rounds = Scale::from_env().pick(QUICK_ROUNDS, 10 * QUICK_ROUNDS);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountLogs))
        .expect("the only subscriber");
    let quiet = quiet_bombs();
    let start = Instant::now();
    with_watchdog("panicking-drop rounds", STALL, move |progress| {
        let baseline = open_fds().expect("fds");
        for i in 0..rounds {
            let mode = match i % 3 {
                0 => Mode::Run,
                1 => Mode::Hand { close_all: true },
                _ => Mode::Hand { close_all: false },
            };
            // A bomb's panic that escapes is a failure (the hook kept it quiet: say it here).
            if let Err(payload) = panic::catch_unwind(|| round(i, mode, baseline)) {
                match payload_str(payload.as_ref()).filter(|m| m.starts_with(PREFIX)) {
                    Some(m) => panic!("round {i} ({mode:?}): a destructor's panic escaped: {m}"),
                    None => panic::resume_unwind(payload),
                }
            }
            progress.fetch_add(1, SeqCst);
        }
    });
    drop(quiet);
    eprintln!(
        "{rounds} rounds in {:.2?}: {} destructor panics reported, {} logged \
         ({} thread-safe closures raced the close)",
        start.elapsed(),
        TOTAL_HANDLED.load(SeqCst),
        TOTAL_LOGGED.load(SeqCst),
        RACED_THREADSAFE.load(SeqCst),
    );
}
