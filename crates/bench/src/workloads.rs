//! The workloads: what each one does on each runtime, and the sanity check that keeps a
//! broken runtime from looking fast.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;

use crate::rt::{Evloop, Kind, Runtime, Smol, TokioLocal, TokioSpawn};

/// Sizes: the full counts, or ÷10 with `--quick`.
pub(crate) struct Scale {
    pub(crate) quick: bool,
}

impl Scale {
    pub(crate) fn pick(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }

    /// How long one TCP echo sample runs.
    pub(crate) fn tcp_duration(&self) -> Duration {
        if self.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(2)
        }
    }
}

/// What one run of a workload on one runtime produced.
pub(crate) enum Sample {
    /// One value per metric of the workload (lower is better for every metric).
    Values(Vec<f64>),
    /// The runtime has no counterpart for this workload.
    NotApplicable(&'static str),
}

/// One reported number of a workload.
pub(crate) struct Metric {
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
}

/// A workload: its name (for `--filter`), its metrics, what it measures, and how to run it.
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) metrics: &'static [Metric],
    pub(crate) about: &'static str,
    pub(crate) run: fn(Kind, &Scale) -> Result<Sample, String>,
    /// Runs in a child process / for a fixed time: no warm-up round.
    pub(crate) warm_up: bool,
}

const MS: &[Metric] = &[Metric {
    name: "",
    unit: "ms",
}];

/// Every workload, in report order.
pub(crate) fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "spawn_many",
            metrics: MS,
            about: "10^5 tasks spawned (each returns its index), then awaited one by one; \
                    check: the sum of the outputs.",
            run: spawn_many,
            warm_up: true,
        },
        Workload {
            name: "yield_many",
            metrics: MS,
            about: "10^3 tasks × 10^3 `yield_now()` each (the runtime's own yield); \
                    check: the total count of yields.",
            run: yield_many,
            warm_up: true,
        },
        Workload {
            name: "chained_spawn",
            metrics: MS,
            about: "each task spawns the next and ends (depth 10^4), the last one reports \
                    through a channel; 10 chains in a row (1 with --quick); check: the number \
                    of links that ran.",
            run: chained_spawn,
            warm_up: true,
        },
        Workload {
            name: "ping_pong",
            metrics: MS,
            about: "100 pairs of tasks × 10^3 round trips over two `async_channel::bounded(1)` \
                    (10^5 round trips); check: every reply is the request + 1.",
            run: ping_pong,
            warm_up: true,
        },
        Workload {
            name: "timers",
            metrics: MS,
            about: "10^5 tasks each sleeping 0–1 ms (deterministic spread) with the runtime's \
                    own sleep; includes the ≈1 ms of waiting; check: every sleep lasted at \
                    least its duration.",
            run: timers,
            warm_up: true,
        },
        Workload {
            name: "timer_churn",
            metrics: MS,
            about: "10^6 timers scheduled then cancelled at once (1–1000 ms ahead), with a \
                    yield every 1024. evloop: `call_later` + `TimerHandle::cancel`; tokio: \
                    `tokio::time::sleep` pinned, polled once (registers in the wheel), dropped; \
                    smol: `async_io::Timer::after`, polled once, dropped; check: every first \
                    poll was pending / no callback ran.",
            run: timer_churn,
            warm_up: true,
        },
        Workload {
            name: "call_soon",
            metrics: MS,
            about: "2^20 (≈10^6) trivial jobs in batches of 1024 (then yield until the batch ran). \
                    evloop: `call_soon` callbacks; the peers have no callback queue, so they \
                    spawn a trivial detached task per job — asymmetric on purpose: it is what \
                    each runtime offers for \"run this soon\"; check: the job count.",
            run: call_soon,
            warm_up: true,
        },
        Workload {
            name: "remote_wake",
            metrics: MS,
            about: "4 std threads × 10^5 messages into one `async_channel::unbounded` whose \
                    receiver is a task on the runtime (same channel for all: what differs is \
                    how each runtime is woken from another thread); check: the message count.",
            run: remote_wake,
            warm_up: true,
        },
        Workload {
            name: "remote_call",
            metrics: MS,
            about: "4 std threads × 10^5 jobs submitted into the loop. evloop: \
                    `LoopHandle::call_soon_threadsafe` callbacks; tokio: \
                    `runtime::Handle::spawn` of a trivial task (tokio has no cross-thread \
                    callback; the LocalSet changes nothing here, so tokio-local is not run); \
                    smol's LocalExecutor cannot be reached from other threads; check: the \
                    job count.",
            run: remote_call,
            warm_up: true,
        },
        Workload {
            name: "remote_spawn",
            metrics: MS,
            about: "as remote_call but a trivial task per job on both sides: evloop \
                    `LoopHandle::spawn` vs tokio `runtime::Handle::spawn`.",
            run: remote_spawn,
            warm_up: true,
        },
        Workload {
            name: "memory",
            metrics: &[Metric {
                name: "",
                unit: "B/task",
            }],
            about: "10^6 detached tasks each sleeping for an hour (the runtime's own sleep, \
                    after their first poll: task plus timer), in a fresh child process per \
                    sample: (RSS after − RSS before) / 10^6, from /proc/self/statm. Includes \
                    the runtime's queues, registries and timer structures grown for them.",
            run: crate::memory::run,
            warm_up: false,
        },
    ]
    .into_iter()
    .chain(crate::tcp::workloads())
    .chain(crate::http::workloads())
    .collect()
}

/// Calls `$f::<R>($args)` for the runtime `$kind`.
macro_rules! on_kind {
    ($kind:expr, $f:ident ( $($arg:expr),* )) => {
        match $kind {
            Kind::Evloop => $f::<Evloop>($($arg),*),
            Kind::TokioLocal => $f::<TokioLocal>($($arg),*),
            Kind::TokioSpawn => $f::<TokioSpawn>($($arg),*),
            Kind::Smol => $f::<Smol>($($arg),*),
        }
    };
}
pub(crate) use on_kind;

/// Runs `fut` on a fresh runtime `R`; times `block_on` only (not building/dropping the runtime).
fn timed<R: Runtime, T>(fut: impl Future<Output = T>) -> (Duration, T) {
    let rt = R::new();
    let start = Instant::now();
    let out = rt.block_on(fut);
    let took = start.elapsed();
    drop(rt);
    (took, out)
}

/// The sanity check: a wrong count fails the sample.
fn check(what: &str, got: u64, expected: u64) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {expected}"))
    }
}

fn ms(d: Duration) -> Sample {
    Sample::Values(vec![d.as_secs_f64() * 1e3])
}

/// A deterministic pseudo-random sequence (xorshift64*).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

// ---------------------------------------------------------------------------------------------

fn spawn_many(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let n = scale.pick(100_000, 10_000) as u64;
    fn go<R: Runtime>(n: u64) -> (Duration, u64) {
        timed::<R, _>(async move {
            let mut handles = Vec::with_capacity(n as usize);
            for i in 0..n {
                handles.push(R::spawn(async move { i }));
            }
            let mut sum = 0;
            for h in handles {
                sum += h.await;
            }
            sum
        })
    }
    let (took, sum) = on_kind!(kind, go(n));
    check("sum of outputs", sum, n * (n - 1) / 2)?;
    Ok(ms(took))
}

fn yield_many(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let tasks = scale.pick(1_000, 100) as u64;
    let yields = 1_000u64;
    fn go<R: Runtime>(tasks: u64, yields: u64) -> (Duration, u64) {
        timed::<R, _>(async move {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    R::spawn(async move {
                        let mut n = 0;
                        for _ in 0..yields {
                            R::yield_now().await;
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await;
            }
            total
        })
    }
    let (took, total) = on_kind!(kind, go(tasks, yields));
    check("yields", total, tasks * yields)?;
    Ok(ms(took))
}

fn chained_spawn(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let depth = 10_000u64;
    let chains = scale.pick(10, 1) as u64;
    fn link<R: Runtime>(left: u64, ran: u64, done: async_channel::Sender<u64>) {
        R::detach(R::spawn(async move {
            if left == 0 {
                let _ = done.try_send(ran + 1);
            } else {
                link::<R>(left - 1, ran + 1, done);
            }
        }));
    }
    fn go<R: Runtime>(depth: u64, chains: u64) -> (Duration, u64) {
        timed::<R, _>(async move {
            let mut ran = 0;
            for _ in 0..chains {
                let (tx, rx) = async_channel::bounded(1);
                link::<R>(depth, 0, tx);
                ran += rx.recv().await.unwrap_or(0);
            }
            ran
        })
    }
    let (took, ran) = on_kind!(kind, go(depth, chains));
    check("links run", ran, chains * (depth + 1))?;
    Ok(ms(took))
}

fn ping_pong(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let pairs = 100u64;
    let rounds = scale.pick(1_000, 100) as u64;
    fn go<R: Runtime>(pairs: u64, rounds: u64) -> (Duration, u64) {
        timed::<R, _>(async move {
            let mut pingers = Vec::new();
            let mut pongers = Vec::new();
            for _ in 0..pairs {
                let (ping_tx, ping_rx) = async_channel::bounded::<u64>(1);
                let (pong_tx, pong_rx) = async_channel::bounded::<u64>(1);
                pongers.push(R::spawn(async move {
                    while let Ok(v) = ping_rx.recv().await {
                        if pong_tx.send(v + 1).await.is_err() {
                            break;
                        }
                    }
                }));
                pingers.push(R::spawn(async move {
                    let mut ok = 0;
                    for i in 0..rounds {
                        if ping_tx.send(i).await.is_err() {
                            break;
                        }
                        if pong_rx.recv().await == Ok(i + 1) {
                            ok += 1;
                        }
                    }
                    ok
                }));
            }
            let mut ok = 0;
            for p in pingers {
                ok += p.await;
            }
            for p in pongers {
                p.await;
            }
            ok
        })
    }
    let (took, ok) = on_kind!(kind, go(pairs, rounds));
    check("correct round trips", ok, pairs * rounds)?;
    Ok(ms(took))
}

fn timers(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let n = scale.pick(100_000, 10_000);
    let mut rng = Rng::new(0x5eed);
    let delays: Vec<Duration> = (0..n)
        .map(|_| Duration::from_micros(rng.next() % 1_001))
        .collect();
    fn go<R: Runtime>(delays: Vec<Duration>) -> (Duration, u64) {
        timed::<R, _>(async move {
            let handles: Vec<_> = delays
                .into_iter()
                .map(|d| {
                    R::spawn(async move {
                        let start = Instant::now();
                        R::sleep(d).await;
                        u64::from(start.elapsed() >= d)
                    })
                })
                .collect();
            let mut ok = 0;
            for h in handles {
                ok += h.await;
            }
            ok
        })
    }
    let (took, ok) = on_kind!(kind, go(delays));
    check("sleeps that lasted long enough", ok, n as u64)?;
    Ok(ms(took))
}

fn churn_delays(n: usize) -> Vec<Duration> {
    let mut rng = Rng::new(0xc4a7);
    (0..n)
        .map(|_| Duration::from_micros(1_000 + rng.next() % 999_001))
        .collect()
}

fn timer_churn(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let delays = churn_delays(scale.pick(1_000_000, 100_000));
    let n = delays.len() as u64;
    let (took, pending) = match kind {
        Kind::Evloop => {
            let rt = Evloop::new();
            let lp = rt.0.clone();
            let fired = Arc::new(AtomicU64::new(0));
            let f = fired.clone();
            let start = Instant::now();
            let cancelled = rt.block_on(async move {
                let mut cancelled = 0u64;
                for (i, d) in delays.into_iter().enumerate() {
                    let f = f.clone();
                    let h = lp.call_later(d, move || {
                        f.fetch_add(1, Ordering::Relaxed);
                    });
                    h.cancel();
                    cancelled += 1;
                    if i % 1024 == 1023 {
                        evloop_core::yield_now().await;
                    }
                }
                evloop_core::yield_now().await;
                cancelled
            });
            let took = start.elapsed();
            check(
                "callbacks of cancelled timers that ran",
                fired.load(Ordering::Relaxed),
                0,
            )?;
            (took, cancelled)
        }
        Kind::TokioLocal => on_kind!(Kind::TokioLocal, tokio_churn(delays)),
        Kind::TokioSpawn => on_kind!(Kind::TokioSpawn, tokio_churn(delays)),
        Kind::Smol => timed::<Smol, _>(async move {
            let mut pending = 0u64;
            for (i, d) in delays.into_iter().enumerate() {
                let mut t = async_io::Timer::after(d);
                if poll_once(&mut t).await.is_none() {
                    pending += 1;
                }
                drop(t);
                if i % 1024 == 1023 {
                    futures_lite::future::yield_now().await;
                }
            }
            pending
        }),
    };
    check("timers pending at their first poll", pending, n)?;
    Ok(ms(took))
}

fn tokio_churn<R: Runtime>(delays: Vec<Duration>) -> (Duration, u64) {
    timed::<R, _>(async move {
        let mut pending = 0u64;
        for (i, d) in delays.into_iter().enumerate() {
            let mut s = pin!(tokio::time::sleep(d));
            if poll_once(s.as_mut()).await.is_none() {
                pending += 1;
            }
            if i % 1024 == 1023 {
                tokio::task::yield_now().await;
            }
        }
        pending
    })
}

/// Counts jobs; the one that reaches the target signals `done`.
struct Counter {
    n: AtomicU64,
    target: u64,
    done: async_channel::Sender<()>,
}

impl Counter {
    fn new(target: u64) -> (Arc<Counter>, async_channel::Receiver<()>) {
        let (done, rx) = async_channel::bounded(1);
        let c = Counter {
            n: AtomicU64::new(0),
            target,
            done,
        };
        (Arc::new(c), rx)
    }

    fn hit(&self) {
        if self.n.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            let _ = self.done.try_send(());
        }
    }

    fn count(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }
}

fn call_soon(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let n = scale.pick(1 << 20, 1 << 17) as u64;
    const BATCH: u64 = 1024;
    fn peers<R: Runtime>(n: u64) -> (Duration, u64) {
        let (c, _rx) = Counter::new(n);
        timed::<R, _>(async move {
            for b in 1..=n / BATCH {
                for _ in 0..BATCH {
                    let c = c.clone();
                    R::detach(R::spawn(async move { c.hit() }));
                }
                while c.count() < b * BATCH {
                    R::yield_now().await;
                }
            }
            c.count()
        })
    }
    let (took, count) = match kind {
        Kind::Evloop => {
            let rt = Evloop::new();
            let lp = rt.0.clone();
            let (c, _rx) = Counter::new(n);
            let start = Instant::now();
            let count = rt.block_on(async move {
                for b in 1..=n / BATCH {
                    for _ in 0..BATCH {
                        let c = c.clone();
                        lp.call_soon(move || c.hit());
                    }
                    while c.count() < b * BATCH {
                        evloop_core::yield_now().await;
                    }
                }
                c.count()
            });
            (start.elapsed(), count)
        }
        other => on_kind!(other, peers(n)),
    };
    check("jobs run", count, n)?;
    Ok(ms(took))
}

/// Starts `threads` std threads, each calling `send(i)` `per` times.
fn senders(
    threads: u64,
    per: u64,
    send: impl Fn(u64) + Send + Sync + Clone + 'static,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let send = send.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    send(i);
                }
            })
        })
        .collect()
}

fn join_all(threads: Vec<std::thread::JoinHandle<()>>) {
    for t in threads {
        t.join().expect("sender thread panicked");
    }
}

fn remote_sizes(scale: &Scale) -> (u64, u64) {
    (4, scale.pick(100_000, 10_000) as u64)
}

fn remote_wake(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let (threads, per) = remote_sizes(scale);
    fn go<R: Runtime>(threads: u64, per: u64) -> (Duration, u64) {
        timed::<R, _>(async move {
            let (tx, rx) = async_channel::unbounded::<u64>();
            let receiver = R::spawn(async move {
                let mut n = 0;
                while rx.recv().await.is_ok() {
                    n += 1;
                }
                n
            });
            let ts = senders(threads, per, move |i| {
                tx.try_send(i).expect("unbounded send");
            });
            let n = receiver.await;
            join_all(ts);
            n
        })
    }
    let (took, n) = on_kind!(kind, go(threads, per));
    check("messages received", n, threads * per)?;
    Ok(ms(took))
}

fn remote_call(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let (threads, per) = remote_sizes(scale);
    let total = threads * per;
    let (c, done) = Counter::new(total);
    let counter = c.clone();
    let (took, threads_joined) = match kind {
        Kind::Evloop => {
            let rt = Evloop::new();
            let handle = rt.0.handle();
            let start = Instant::now();
            let ts = rt.block_on(async move {
                let ts = senders(threads, per, move |_| {
                    let c = c.clone();
                    handle
                        .call_soon_threadsafe(move || c.hit())
                        .expect("call_soon_threadsafe");
                });
                let _ = done.recv().await;
                ts
            });
            (start.elapsed(), ts)
        }
        Kind::TokioSpawn => tokio_remote_spawn(threads, per, c, done),
        Kind::TokioLocal => return Ok(Sample::NotApplicable("same path as tokio-spawn")),
        Kind::Smol => {
            return Ok(Sample::NotApplicable(
                "no cross-thread spawn on LocalExecutor",
            ));
        }
    };
    join_all(threads_joined);
    check("jobs run", counter.count(), total)?;
    Ok(ms(took))
}

fn tokio_remote_spawn(
    threads: u64,
    per: u64,
    c: Arc<Counter>,
    done: async_channel::Receiver<()>,
) -> (Duration, Vec<std::thread::JoinHandle<()>>) {
    let rt = TokioSpawn::new();
    let start = Instant::now();
    let ts = rt.block_on(async move {
        let handle = tokio::runtime::Handle::current();
        let ts = senders(threads, per, move |_| {
            let c = c.clone();
            drop(handle.spawn(async move { c.hit() }));
        });
        let _ = done.recv().await;
        ts
    });
    (start.elapsed(), ts)
}

fn remote_spawn(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let (threads, per) = remote_sizes(scale);
    let total = threads * per;
    let (c, done) = Counter::new(total);
    let counter = c.clone();
    let (took, ts) = match kind {
        Kind::Evloop => {
            let rt = Evloop::new();
            let handle = rt.0.handle();
            let start = Instant::now();
            let ts = rt.block_on(async move {
                let ts = senders(threads, per, move |_| {
                    let c = c.clone();
                    drop(handle.spawn(async move { c.hit() }));
                });
                let _ = done.recv().await;
                ts
            });
            (start.elapsed(), ts)
        }
        Kind::TokioSpawn => tokio_remote_spawn(threads, per, c, done),
        Kind::TokioLocal => return Ok(Sample::NotApplicable("same path as tokio-spawn")),
        Kind::Smol => {
            return Ok(Sample::NotApplicable(
                "no cross-thread spawn on LocalExecutor",
            ));
        }
    };
    join_all(ts);
    check("jobs run", counter.count(), total)?;
    Ok(ms(took))
}
