//! The four runtimes behind one small trait, so that a workload is written once.
//!
//! Every runtime is single-threaded; what differs is only the executor/reactor:
//!
//! | kind | executor | spawn |
//! |---|---|---|
//! | `evloop` | `evloop_core::EventLoop::run_until_complete` | `running_loop().create_task` |
//! | `tokio-local` | tokio `current_thread` + `LocalSet::run_until` | `tokio::task::spawn_local` |
//! | `tokio-spawn` | tokio `current_thread` `block_on` | `tokio::spawn` |
//! | `smol` | `async_executor::LocalExecutor::run` in `async_io::block_on` | `LocalExecutor::spawn` |
//!
//! The spawn functions are static (they find the running executor through a thread-local, as
//! `tokio::spawn` and asyncio's `create_task` do), so a spawned future can spawn again.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_executor::LocalExecutor;
use evloop_core::EventLoop;

/// Which runtime; the order is the order of the report's columns and of each repetition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Evloop,
    TokioLocal,
    TokioSpawn,
    Smol,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] =
        [Kind::Evloop, Kind::TokioLocal, Kind::TokioSpawn, Kind::Smol];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Evloop => "evloop",
            Kind::TokioLocal => "tokio-local",
            Kind::TokioSpawn => "tokio-spawn",
            Kind::Smol => "smol",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A single-threaded async runtime.
pub(crate) trait Runtime: Sized + 'static {
    /// The handle of a spawned task; resolves to its output (a failed task panics the awaiter,
    /// which the harness reports as a failed sample).
    type Join<T: Send + 'static>: Future<Output = T> + Send + Unpin + 'static;

    /// A fresh runtime (not timed).
    fn new() -> Self;
    /// Runs `fut` to completion on this thread, tasks spawned meanwhile included.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
    /// Spawns onto the runtime running on this thread. `Send` is required because
    /// `tokio::spawn` requires it; the other runtimes never move the future.
    fn spawn<F>(fut: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// Lets the task run on without its handle.
    fn detach<T: Send + 'static>(join: Self::Join<T>);
    /// The runtime's own yield.
    fn yield_now() -> impl Future<Output = ()> + Send;
    /// The runtime's own sleep.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;
}

// ---------------------------------------------------------------------------------------------
// evloop

/// evloop-core's `EventLoop`.
pub(crate) struct Evloop(pub(crate) EventLoop);

/// `Task<T>` resolved to `T`.
pub(crate) struct EvJoin<T>(evloop_core::Task<T>);

impl<T> Future for EvJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(v) => v,
            Err(e) => panic!("evloop task failed: {e:?}"),
        })
    }
}

/// Makes an evloop future (which holds an `Rc`-based `EventLoop`) pass the trait's `Send`
/// bound. Sound here because every future that reaches it is spawned with `create_task`
/// (`spawn_local`: the task never leaves the loop thread); nothing moves it across threads.
pub(crate) struct AssertSend<F>(F);

// SAFETY: see the type's docs — an `AssertSend` only ever lives inside evloop tasks or
// `run_until_complete` futures, which are polled and dropped on the loop's own thread.
unsafe impl<F> Send for AssertSend<F> {}

impl<F: Future + Unpin> Future for AssertSend<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// The loop running on this thread (panics outside one, like asyncio's `get_running_loop`).
pub(crate) fn running() -> EventLoop {
    evloop_core::running_loop().expect("no evloop running on this thread")
}

impl Runtime for Evloop {
    type Join<T: Send + 'static> = EvJoin<T>;

    fn new() -> Self {
        Evloop(EventLoop::new().expect("EventLoop::new"))
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.run_until_complete(fut).expect("run_until_complete")
    }

    fn spawn<F>(fut: F) -> EvJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        EvJoin(running().create_task(fut))
    }

    fn detach<T: Send + 'static>(join: EvJoin<T>) {
        drop(join); // dropping an evloop Task detaches it
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        evloop_core::yield_now()
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        AssertSend(evloop_core::sleep(&running(), d))
    }
}

impl Drop for Evloop {
    fn drop(&mut self) {
        let _ = self.0.close();
    }
}

// ---------------------------------------------------------------------------------------------
// tokio

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `JoinHandle<T>` resolved to `T`.
pub(crate) struct TokioJoin<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(v) => v,
            Err(e) => panic!("tokio task failed: {e}"),
        })
    }
}

/// tokio `current_thread`, tasks spawned with `spawn_local` inside a `LocalSet`.
pub(crate) struct TokioLocal(pub(crate) tokio::runtime::Runtime);

impl Runtime for TokioLocal {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn new() -> Self {
        TokioLocal(tokio_runtime())
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let local = tokio::task::LocalSet::new();
        self.0.block_on(local.run_until(fut))
    }

    fn spawn<F>(fut: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::task::spawn_local(fut))
    }

    fn detach<T: Send + 'static>(join: TokioJoin<T>) {
        drop(join);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

/// tokio `current_thread`, tasks spawned with plain `tokio::spawn`.
pub(crate) struct TokioSpawn(pub(crate) tokio::runtime::Runtime);

impl Runtime for TokioSpawn {
    type Join<T: Send + 'static> = TokioJoin<T>;

    fn new() -> Self {
        TokioSpawn(tokio_runtime())
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }

    fn spawn<F>(fut: F) -> TokioJoin<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioJoin(tokio::spawn(fut))
    }

    fn detach<T: Send + 'static>(join: TokioJoin<T>) {
        drop(join);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }
}

// ---------------------------------------------------------------------------------------------
// smol

thread_local! {
    /// This thread's executor (smol's `LocalExecutor`, run inside `async_io::block_on`).
    static SMOL: LocalExecutor<'static> = const { LocalExecutor::new() };
}

/// smol: `async_executor::LocalExecutor` driven by `async_io::block_on`.
pub(crate) struct Smol;

impl Runtime for Smol {
    type Join<T: Send + 'static> = async_executor::Task<T>;

    fn new() -> Self {
        Smol
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        SMOL.with(|ex| async_io::block_on(ex.run(fut)))
    }

    fn spawn<F>(fut: F) -> async_executor::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        SMOL.with(|ex| ex.spawn(fut))
    }

    fn detach<T: Send + 'static>(join: async_executor::Task<T>) {
        join.detach(); // dropping a smol Task would cancel it
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }

    async fn sleep(d: Duration) {
        async_io::Timer::after(d).await;
    }
}
