//! Cancelling an evloop task that awaits a `Compat` future drops the tokio resources inside it;
//! dropping a `TokioTask` aborts the tokio task.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use evloop::net::TcpListener;
use evloop_compat::{compat, spawn_tokio};
use futures_lite::AsyncReadExt as _;
use tokio::io::AsyncReadExt as _;

/// Records that it was dropped, and whether a tokio runtime context was entered at the time.
struct DropProbe {
    dropped: Arc<AtomicBool>,
    in_runtime: Arc<AtomicBool>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.in_runtime.store(
            tokio::runtime::Handle::try_current().is_ok(),
            Ordering::SeqCst,
        );
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn probe() -> (DropProbe, Arc<AtomicBool>, Arc<AtomicBool>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let in_runtime = Arc::new(AtomicBool::new(false));
    let probe = DropProbe {
        dropped: dropped.clone(),
        in_runtime: in_runtime.clone(),
    };
    (probe, dropped, in_runtime)
}

/// The evloop task is parked in a tokio `read` that never completes; cancelling it closes the
/// tokio socket, which the evloop side sees as EOF.
#[test]
fn cancelling_the_evloop_task_drops_the_tokio_socket() {
    let (probe, dropped, in_runtime) = probe();
    evloop::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
        let reader = evloop::spawn(compat(async move {
            let _probe = probe;
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            connected_tx.send(()).ok();
            let mut buf = [0u8; 16];
            // Nobody writes: this read waits until the task is cancelled.
            let n = stream.read(&mut buf).await?;
            io::Result::Ok(n)
        }));
        let (mut server_side, _) = listener.accept().await?;
        connected_rx
            .await
            .expect("the client task ended before connecting");
        assert!(!dropped.load(Ordering::SeqCst));

        assert!(reader.cancel());
        let err = reader.await.expect_err("the reader must end cancelled");
        assert!(err.is_cancelled(), "{err:?}");
        assert!(
            dropped.load(Ordering::SeqCst),
            "the compat future was not dropped"
        );
        assert!(
            in_runtime.load(Ordering::SeqCst),
            "dropped outside the tokio context"
        );

        // The tokio TcpStream went with the future: its peer reads EOF.
        let mut rest = Vec::new();
        server_side.read_to_end(&mut rest).await?;
        assert!(rest.is_empty());
        io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

/// An evloop timeout around a compat future parked on a tokio timer: the timeout fires on the
/// evloop clock, and the tokio `Sleep` is dropped with the future.
#[test]
fn evloop_timeout_drops_a_compat_future_parked_on_a_tokio_timer() {
    let (probe, dropped, in_runtime) = probe();
    let outcome = evloop::run(async move {
        evloop::timeout(
            Duration::from_millis(10),
            compat(async move {
                let _probe = probe;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }),
        )
        .await
    })
    .unwrap();
    assert!(
        outcome.is_err(),
        "the hour-long tokio sleep cannot have finished"
    );
    assert!(dropped.load(Ordering::SeqCst));
    assert!(in_runtime.load(Ordering::SeqCst));
}

/// A `Compat` that was never polled drops its future without needing (or building) a context.
#[test]
fn dropping_an_unpolled_compat_drops_the_future() {
    let (probe, dropped, _) = probe();
    let fut = compat(async move {
        let _probe = probe;
    });
    drop(fut);
    assert!(dropped.load(Ordering::SeqCst));
}

/// Dropping a `TokioTask` aborts the tokio task: its future is dropped on the side runtime.
#[test]
fn dropping_a_tokio_task_aborts_it() {
    let (probe, dropped, in_runtime) = probe();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    evloop::run(async move {
        let task = spawn_tokio(async move {
            // Locals drop in reverse order: `_gone` last, so once the receiver sees the channel
            // closed, the probe has been dropped too (it was dropped first, on the worker).
            let _gone = gone_tx;
            let _probe = probe;
            started_tx.send(()).ok();
            std::future::pending::<()>().await;
        });
        started_rx.await.expect("the tokio task did not start");
        assert!(!task.is_finished());
        drop(task);
        // The abort runs on the worker thread; the closed channel says it has happened.
        assert!(gone_rx.await.is_err());
    })
    .unwrap();
    assert!(dropped.load(Ordering::SeqCst));
    assert!(in_runtime.load(Ordering::SeqCst));
}

/// A detached `TokioTask` runs to its end with nobody awaiting it.
#[test]
fn a_detached_tokio_task_runs_on() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let got = evloop::run(async move {
        spawn_tokio(async move {
            go_rx.await.ok();
            done_tx.send("finished").ok();
        })
        .detach();
        go_tx.send(()).unwrap();
        done_rx.await
    })
    .unwrap();
    assert_eq!(got, Ok("finished"));
}
