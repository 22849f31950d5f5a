//! # evloop-compat: tokio-only crates on an evloop loop
//!
//! Anything that uses tokio's *runtime* — `tokio::net`, `tokio::time`, and the crates built on
//! them (reqwest, hyper-util's tokio helpers, tonic, most database drivers) — looks for a tokio
//! reactor and timer in a thread-local "runtime context" and panics without one ("there is no
//! reactor running, must be called from the context of a Tokio 1.x runtime"). An evloop loop
//! is not a tokio runtime, so such code panics on evloop.
//!
//! This crate bridges the two. It keeps one process-wide tokio runtime on a side thread (built
//! on first use, one worker thread), and [`Compat`] — made by [`compat`] or
//! [`CompatExt::compat`] — enters that runtime's context around every poll of the future it
//! wraps. Tokio resources created and polled inside register with the side runtime's reactor
//! and timer; its worker thread drives them and wakes the evloop task from across threads. The
//! future itself stays on the evloop thread: it need not be `Send`, and it can mix evloop and
//! tokio I/O freely.
//!
//! ```
//! use evloop_compat::CompatExt;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let waited = evloop::run(async {
//!         // created *inside* the wrapped future, so it registers with the side runtime
//!         async { tokio::time::sleep(std::time::Duration::from_millis(10)).await; "ok" }
//!             .compat()
//!             .await
//!     })?;
//!     assert_eq!(waited, "ok");
//!     Ok(())
//! }
//! ```
//!
//! [`spawn_tokio`] runs a `Send` future *on* the side runtime instead, and its [`TokioTask`]
//! is awaited from evloop.
//!
//! What works without this crate: anything that only uses `std::task::Waker` — `tokio::sync`
//! (channels, `Mutex`, `Notify` need no runtime), async-channel, async-lock, futures-rustls on
//! evloop's sockets (evloop's I/O traits are `futures-io`'s), and tokio-util's `compat` adapters
//! between `futures-io` and `tokio::io` traits.
//!
//! Rule of use: create tokio resources *inside* the wrapped future (`compat(async {
//! tokio::time::sleep(d).await })`), not in the argument expression (`compat(tokio::time::sleep(d))`
//! creates the `Sleep` before `compat` runs, outside any runtime, and panics). For the rare
//! resource that must be built synchronously, hold [`enter`]'s guard while building it.
//!
//! reqwest, for one, is tested this way against an evloop hyper server (`tests/reqwest.rs`,
//! `examples/reqwest_local.rs`). Its `send()` starts the client's timeout timer at once, so it
//! goes inside the wrapped future too; building the `Client` needs no runtime:
//!
//! ```
//! use std::time::Duration;
//! use evloop_compat::CompatExt;
//! # use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     evloop::run(async {
//! #       // A one-request HTTP server on evloop (see `evloop::hyper` for a real one).
//! #       let listener = evloop::net::TcpListener::bind("127.0.0.1:0").await?;
//! #       let url = format!("http://{}/", listener.local_addr()?);
//! #       evloop::spawn(async move {
//! #           let (mut stream, _) = listener.accept().await?;
//! #           let mut request = Vec::new();
//! #           while !request.ends_with(b"\r\n\r\n") {
//! #               let mut byte = [0u8];
//! #               if stream.read(&mut byte).await? == 0 { break; }
//! #               request.push(byte[0]);
//! #           }
//! #           stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi").await
//! #       });
//!         let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
//!         let body = async { client.get(&url).send().await?.text().await }
//!             .compat()
//!             .await?;
//!         assert_eq!(body, "hi");
//!         Ok(())
//!     })?
//! }
//! ```
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::runtime::{Builder, EnterGuard, Handle, Runtime};

/// The side runtime, or why it could not be built (kept so that every caller sees the reason).
static RUNTIME: OnceLock<Result<Runtime, (io::ErrorKind, String)>> = OnceLock::new();

/// The name of the side runtime's worker thread (`ps -L`, panic messages, debuggers).
pub const THREAD_NAME: &str = "evloop-compat-tokio";

fn build_runtime() -> Result<Runtime, (io::ErrorKind, String)> {
    Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .map_err(|e| (e.kind(), e.to_string()))
}

/// The handle of the process-wide side runtime, building it on first call.
///
/// The runtime has one worker thread, named [`THREAD_NAME`], with tokio's I/O and time
/// drivers enabled; it lives until the process exits. It fails only if the runtime could not
/// be built (the OS refused a thread or an epoll instance); the failure is kept, so every later
/// call reports the same error.
///
/// ```
/// let handle = evloop_compat::try_handle()?;
/// // A Handle is what tokio-only APIs that take one explicitly want.
/// let answer = handle.block_on(async { 42 });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn try_handle() -> io::Result<&'static Handle> {
    match RUNTIME.get_or_init(build_runtime) {
        Ok(runtime) => Ok(runtime.handle()),
        Err((kind, message)) => Err(io::Error::new(
            *kind,
            format!("evloop-compat: building the tokio runtime failed: {message}"),
        )),
    }
}

/// [`try_handle`], panicking with its error: for the places (a `poll`) that cannot return one.
fn handle() -> &'static Handle {
    try_handle().unwrap_or_else(|e| panic!("{e}"))
}

/// Enters the side runtime's context on this thread until the guard is dropped.
///
/// For the few tokio resources that must be created synchronously, outside a [`Compat`]
/// future (`tokio::net::TcpStream::from_std`, a client built in a constructor). Do not hold
/// the guard across an `.await` — wrap the future in [`compat`] instead; the guard is `!Send`
/// and belongs to this thread.
///
/// # Panics
///
/// If the side runtime cannot be built (see [`try_handle`]).
///
/// ```
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     evloop::run(async {
///         let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
///         std_listener.set_nonblocking(true)?;
///         let listener = {
///             let _tokio = evloop_compat::enter();
///             tokio::net::TcpListener::from_std(std_listener)?
///         };
///         assert!(listener.local_addr()?.port() != 0);
///         Ok(())
///     })?
/// }
/// ```
pub fn enter() -> EnterGuard<'static> {
    handle().enter()
}

pin_project_lite::pin_project! {
    /// A future that enters the side tokio runtime around each poll of the future it wraps
    /// (made by [`compat`] or [`CompatExt::compat`]).
    ///
    /// Polling runs on the caller's thread (the evloop loop's): the inner future need not be
    /// `Send`. Tokio resources it creates register with the side runtime, whose worker thread
    /// wakes this future's waker when they are ready. Dropping a `Compat` (the evloop task
    /// cancelled, a `timeout` expired) drops the inner future, inside the runtime context too,
    /// so its tokio resources — sockets, timers — go with it.
    ///
    /// # Panics
    ///
    /// A poll panics if the side runtime cannot be built (see [`try_handle`]), or if the
    /// future is polled again after it completed.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Compat<F> {
        #[pin]
        inner: Option<F>,
    }

    impl<F> PinnedDrop for Compat<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut inner = this.project().inner;
            if inner.is_some() {
                // Only enter a runtime that exists: a future never polled made no tokio
                // resource through this wrapper, and dropping it must not build a runtime.
                let _guard = match RUNTIME.get() {
                    Some(Ok(runtime)) => Some(runtime.enter()),
                    _ => None,
                };
                inner.set(None);
            }
        }
    }
}

/// Without a bound on `F`: an `async` block is not `Debug`.
impl<F> std::fmt::Debug for Compat<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compat")
            .field("done", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<F> Compat<F> {
    /// Wraps `fut`; the same as [`compat`].
    pub fn new(fut: F) -> Compat<F> {
        Compat { inner: Some(fut) }
    }

    /// The wrapped future, `None` once it has completed.
    pub fn get_ref(&self) -> Option<&F> {
        self.inner.as_ref()
    }
}

impl<F: Future> Future for Compat<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut inner = self.project().inner;
        let _guard = handle().enter();
        let Some(fut) = inner.as_mut().as_pin_mut() else {
            panic!("evloop_compat::Compat polled after completion");
        };
        let out = fut.poll(cx);
        if out.is_ready() {
            // Drop the finished future now, while the runtime is entered.
            inner.set(None);
        }
        out
    }
}

/// Wraps `fut` so that each poll runs inside the side tokio runtime's context.
///
/// ```
/// use std::time::Duration;
///
/// fn main() -> Result<(), evloop::Error> {
///     evloop::run(async {
///         let late = evloop_compat::compat(async {
///             tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>()).await
///         })
///         .await;
///         assert!(late.is_err(), "tokio's timeout fired on the side runtime's timer");
///     })
/// }
/// ```
pub fn compat<F: Future>(fut: F) -> Compat<F> {
    Compat::new(fut)
}

/// `.compat()` on every future: [`compat`] as a method.
pub trait CompatExt: Future + Sized {
    /// Wraps `self` in [`Compat`].
    ///
    /// ```
    /// use evloop_compat::CompatExt;
    ///
    /// fn main() -> Result<(), evloop::Error> {
    ///     evloop::run(async {
    ///         async { tokio::task::yield_now().await }.compat().await;
    ///     })
    /// }
    /// ```
    fn compat(self) -> Compat<Self> {
        Compat::new(self)
    }
}

impl<F: Future> CompatExt for F {}

/// Runs `fut` on the side tokio runtime's worker thread; await the [`TokioTask`] from evloop.
///
/// For `Send` work that should live in tokio entirely (a client library's background task, a
/// CPU-light stream of tokio I/O). Dropping the `TokioTask` aborts the tokio task, like
/// dropping a tokio `AbortOnDropHandle`; [`TokioTask::detach`] lets it run on. A panic in
/// `fut` is resumed in the awaiting evloop task, so evloop reports it as that task's panic.
///
/// # Panics
///
/// If the side runtime cannot be built (see [`try_handle`]).
///
/// ```
/// fn main() -> Result<(), evloop::Error> {
///     let name = evloop::run(async {
///         evloop_compat::spawn_tokio(async {
///             std::thread::current().name().map(str::to_owned)
///         })
///         .await
///     })?;
///     assert_eq!(name.as_deref(), Some(evloop_compat::THREAD_NAME));
///     Ok(())
/// }
/// ```
pub fn spawn_tokio<F>(fut: F) -> TokioTask<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    TokioTask {
        join: handle().spawn(fut),
        detached: false,
    }
}

/// A task running on the side tokio runtime, made by [`spawn_tokio`]; resolves to its output.
///
/// Aborts the tokio task when dropped unless [detached](TokioTask::detach).
#[must_use = "dropping a TokioTask aborts the task; call .detach() to let it run"]
pub struct TokioTask<T> {
    join: tokio::task::JoinHandle<T>,
    detached: bool,
}

/// Without a bound on `T`: what the task returns need not be `Debug`.
impl<T> std::fmt::Debug for TokioTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioTask")
            .field("id", &self.join.id())
            .field("finished", &self.join.is_finished())
            .field("detached", &self.detached)
            .finish()
    }
}

impl<T> TokioTask<T> {
    /// Lets the tokio task run to its end without anyone awaiting it.
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Whether the tokio task has finished (its output, or its panic, is waiting).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

impl<T> Future for TokioTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // A JoinHandle is polled through its waker alone: no runtime context is needed here.
        match Pin::new(&mut self.join).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(value)) => Poll::Ready(value),
            Poll::Ready(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only `abort` (in our Drop, after which nobody polls) or a runtime shutdown (the
            // side runtime lives until the process exits) cancel a tokio task.
            Poll::Ready(Err(e)) => panic!("evloop_compat: the tokio task was cancelled: {e}"),
        }
    }
}

impl<T> Drop for TokioTask<T> {
    fn drop(&mut self) {
        if !self.detached {
            self.join.abort();
        }
    }
}
