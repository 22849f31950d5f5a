//! evloop-io on a bare core loop: no policy layer, no `evloop::run()` — the loop is found
//! through the core's running-loop slot alone.

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use evloop_core::{Error, EventLoop};
use evloop_io::signal::ctrl_c;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

#[test]
fn sockets_time_and_the_thread_pool_work_on_a_core_loop() -> Result<(), Box<dyn std::error::Error>>
{
    let lp = EventLoop::new()?;
    let (echoed, from_thread) = lp.run_until_complete(async {
        let (mut a, mut b) = evloop_io::net::UnixStream::pair()?;
        a.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        evloop_io::time::timeout(Duration::from_secs(5), b.read_exact(&mut buf)).await??;
        let from_thread = evloop_io::to_thread(|| 6 * 7).await;
        std::io::Result::Ok((buf, from_thread))
    })??;
    assert_eq!(&echoed, b"ping");
    assert_eq!(from_thread.ok(), Some(42));
    evloop_io::executor::shutdown_default_executor(&lp);
    lp.close()?;
    Ok(())
}

#[test]
fn a_socket_made_outside_a_running_loop_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
    let err = evloop_io::net::UnixStream::pair().expect_err("no running loop");
    assert_eq!(err.to_string(), "no running event loop");
    Ok(())
}

/// `ctrl_c()` made outside any loop finds its loop at the first poll, through the core's slot
/// (it used to ask the policy layer).
#[test]
fn ctrl_c_made_outside_a_loop_registers_on_the_core_loop_that_polls_it()
-> Result<(), Box<dyn std::error::Error>> {
    // Polled outside a loop: the documented error.
    let lp = EventLoop::new()?;
    let outside = futures_lite::future::block_on(ctrl_c());
    assert!(matches!(outside, Err(Error::NoRunningLoop)), "{outside:?}");

    // Polled on a core loop: it registers and waits (no SIGINT is sent).
    let waiting = ctrl_c();
    let first_poll = lp.run_until_complete(async {
        let mut waiting = pin!(waiting);
        poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx).map(|r| r.is_ok()))).await
    })?;
    assert_eq!(first_poll, Poll::Pending);
    lp.close()?;
    Ok(())
}
