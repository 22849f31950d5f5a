//! Named readiness futures: [`Readable`] and [`Writable`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::source::Source;

/// Future returned by [`Source::readable`]: resolves once the source's read
/// flag is set (or with an error once the source is closed). Takes part in the
/// [`coop`](crate::coop) budget.
#[must_use = "futures do nothing unless polled"]
pub struct Readable<'a> {
    source: &'a Source,
}

impl<'a> Readable<'a> {
    pub(crate) fn new(source: &'a Source) -> Self {
        Readable { source }
    }
}

impl Future for Readable<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::coop::budgeted(cx, |cx| self.source.poll_readable(cx))
    }
}

impl fmt::Debug for Readable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readable")
            .field("source", self.source)
            .finish()
    }
}

/// Future returned by [`Source::writable`]: resolves once the source's write
/// flag is set (or with an error once the source is closed). Takes part in the
/// [`coop`](crate::coop) budget.
#[must_use = "futures do nothing unless polled"]
pub struct Writable<'a> {
    source: &'a Source,
}

impl<'a> Writable<'a> {
    pub(crate) fn new(source: &'a Source) -> Self {
        Writable { source }
    }
}

impl Future for Writable<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::coop::budgeted(cx, |cx| self.source.poll_writable(cx))
    }
}

impl fmt::Debug for Writable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writable")
            .field("source", self.source)
            .finish()
    }
}
