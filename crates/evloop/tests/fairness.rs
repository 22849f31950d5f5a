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
use std::time::Duration;

use evloop::net::UdpSocket;

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
