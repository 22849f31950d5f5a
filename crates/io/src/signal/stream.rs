//! [`Signals`]: a stream of deliveries of one signal.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use evloop_reactor::Async;
use futures_core::Stream;

use super::registry::Subscription;

/// Listens for `signal` on the running loop (tokio's `signal::unix::signal`): the returned
/// [`Signals`] yields the signal's number each time it arrives.
///
/// While it exists the signal no longer gets its default action; once it (and every other
/// listener of the signal) is dropped, the signal gets back the disposition it had before
/// evloop first listened to it.
///
/// Errors: `io::Error` "no running event loop" outside a running loop; `InvalidInput` for a
/// signal that cannot be handled (see
/// [`add_signal_handler`](super::SignalHandlers::add_signal_handler)); OS errors.
///
/// ```
/// use evloop_io::signal::{consts::SIGHUP, signal};
///
/// evloop_core::EventLoop::new()?.run_until_complete(async {
///     let mut hangups = signal(SIGHUP)?;
///     std::process::Command::new("kill")
///         .args(["-HUP", &std::process::id().to_string()])
///         .status()?;
///     assert_eq!(hangups.recv().await, Some(SIGHUP));
///     std::io::Result::Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn signal(signal: i32) -> io::Result<Signals> {
    let lp = evloop_core::running_loop()
        .ok_or_else(|| io::Error::other(evloop_core::Error::NoRunningLoop))?;
    let (subscription, reader) = Subscription::new(signal)?;
    let reader = Async::new(reader, lp.reactor())?;
    Ok(Signals {
        reader,
        subscription,
    })
}

/// The deliveries of one signal, as a [`Stream`] of its number (or with
/// [`recv`](Signals::recv)). Made by [`signal()`].
///
/// Deliveries that arrive while nobody polls are merged into one item (as the kernel merges
/// pending signals). The stream ends (`None`) only if the loop's reactor goes away. It belongs
/// to the loop it was made on.
pub struct Signals {
    reader: Async<UnixStream>,
    subscription: Subscription,
}

impl Signals {
    /// The signal listened to.
    pub fn signal(&self) -> i32 {
        self.subscription.signal()
    }

    /// Waits for the next delivery; `Some(signal number)`, or `None` once the stream has
    /// ended.
    pub async fn recv(&mut self) -> Option<i32> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Signals::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        let signal = self.signal();
        let read = self.reader.poll_read_with(cx, |mut s| {
            let mut buf = [0u8; 64];
            let mut total = 0;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && total > 0 => {
                        return Ok(total);
                    }
                    Err(e) => return Err(e),
                }
            }
        });
        match read {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(n)) if n > 0 => {
                tracing::debug!(signal, deliveries = n, "signal delivered to a stream");
                Poll::Ready(Some(signal))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => {
                tracing::debug!(signal, error = %e, "a signal stream ends");
                Poll::Ready(None)
            }
        }
    }
}

impl Stream for Signals {
    type Item = i32;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<i32>> {
        self.get_mut().poll_recv(cx)
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signal", &self.signal())
            .finish_non_exhaustive()
    }
}
