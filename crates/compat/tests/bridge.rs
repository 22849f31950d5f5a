//! tokio-only APIs on an evloop loop, through `evloop_compat`, and the ones that need no bridge.
#![allow(clippy::unwrap_used)]

use std::future::Future as _;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use evloop::net::TcpListener;
use evloop_compat::{CompatExt, compat, spawn_tokio};
use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The text of a caught panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic>")
    }
}

#[test]
fn tokio_sleep_through_compat_completes() {
    let delay = Duration::from_millis(20);
    let (elapsed, on_loop_thread) = evloop::run(async move {
        let loop_thread = std::thread::current().id();
        let start = Instant::now();
        let polled_on = compat(async {
            tokio::time::sleep(delay).await;
            // Still polled by evloop, on the loop's thread: only the timer is tokio's.
            std::thread::current().id()
        })
        .await;
        (start.elapsed(), polled_on == loop_thread)
    })
    .unwrap();
    assert!(
        elapsed >= delay,
        "woke after {elapsed:?}, before the {delay:?} deadline"
    );
    assert!(
        on_loop_thread,
        "the compat future must be polled on the evloop thread"
    );
}

/// Why the bridge exists: tokio's timer (like its reactor) is found through a thread-local
/// runtime context, and an evloop loop is not a tokio runtime.
#[test]
fn tokio_sleep_without_compat_panics_with_tokios_message() {
    let caught = evloop::run(async {
        catch_unwind(|| tokio::time::sleep(Duration::from_millis(1))).map(drop)
    })
    .unwrap();
    let payload = caught.expect_err("tokio::time::sleep outside a tokio runtime must panic");
    let text = panic_text(&*payload);
    assert!(
        text.contains("reactor") || text.contains("runtime"),
        "unexpected panic text: {text}"
    );

    // The same call inside `compat` is fine.
    evloop::run(async {
        async { tokio::time::sleep(Duration::from_millis(1)).await }
            .compat()
            .await
    })
    .unwrap();
}

#[test]
fn tokio_net_connect_outside_compat_panics() {
    let caught = evloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connect = Box::pin(tokio::net::TcpStream::connect(addr));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The first poll creates the socket and registers it with "the" reactor: none here.
        catch_unwind(AssertUnwindSafe(|| {
            connect.as_mut().poll(&mut cx).is_ready()
        }))
        .map(drop)
    })
    .unwrap();
    let payload = caught.expect_err("tokio::net outside a tokio runtime must panic");
    let text = panic_text(&*payload);
    assert!(
        text.contains("reactor") || text.contains("runtime"),
        "unexpected panic text: {text}"
    );
}

/// A tokio `TcpStream` (client, through `compat`) and an evloop `TcpStream` (server side of an
/// evloop `TcpListener`) on one loop, bytes both ways.
#[test]
fn tokio_tcp_stream_talks_to_evloop_listener() {
    evloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut got = [0u8; 5];
            stream.read_exact(&mut got).await?;
            assert_eq!(&got, b"hello");
            stream.write_all(b"world!").await?;
            // Then read to EOF: the client's shutdown arrives.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await?;
            io::Result::Ok(rest)
        });
        let reply = compat(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.write_all(b"hello").await?;
            let mut reply = [0u8; 6];
            stream.read_exact(&mut reply).await?;
            stream.write_all(b" bye").await?;
            stream.shutdown().await?;
            io::Result::Ok(reply)
        })
        .await?;
        assert_eq!(&reply, b"world!");
        let rest = server.await.expect("the server task panicked")?;
        assert_eq!(rest, b" bye");
        io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

/// Many round trips, so that every readiness event takes the cross-thread path many times.
#[test]
fn tokio_tcp_many_round_trips_through_compat() {
    const ROUNDS: usize = 500;
    evloop::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = evloop::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut buf = [0u8; 64];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok(());
                }
                stream.write_all(&buf[..n]).await?;
            }
        });
        compat(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            for round in 0..ROUNDS {
                let msg = (round as u32).to_le_bytes();
                stream.write_all(&msg).await?;
                let mut back = [0u8; 4];
                stream.read_exact(&mut back).await?;
                assert_eq!(back, msg, "round {round}");
            }
            io::Result::Ok(())
        })
        .await?;
        server.await.expect("the server task panicked")
    })
    .unwrap()
    .unwrap();
}

/// `tokio::sync` is runtime-free: its channels use only `Waker`s, so an evloop task and a tokio
/// task talk through one without `compat` around either end.
#[test]
fn tokio_sync_mpsc_needs_no_bridge() {
    evloop::run(async {
        // evloop to evloop, no tokio runtime involved at all.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        let producer = evloop::spawn(async move {
            for i in 0..10 {
                tx.send(i).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        producer.await.unwrap();
        assert_eq!(got, (0..10).collect::<Vec<_>>());

        // evloop to a task on the side tokio runtime and back: the wakes cross threads.
        let (to_tokio, mut from_evloop) = tokio::sync::mpsc::channel::<u32>(1);
        let (to_evloop, mut from_tokio) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let doubler = spawn_tokio(async move {
            while let Some(i) = from_evloop.recv().await {
                to_evloop.send(i * 2).unwrap();
            }
            "tokio side done"
        });
        for i in 0..100 {
            to_tokio.send(i).await.unwrap();
            assert_eq!(from_tokio.recv().await, Some(i * 2));
        }
        drop(to_tokio);
        assert_eq!(doubler.await, "tokio side done");
        assert_eq!(from_tokio.recv().await, None);
    })
    .unwrap();
}

#[test]
fn spawn_tokio_runs_on_the_side_runtime() {
    let (name, has_runtime) = evloop::run(async {
        spawn_tokio(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            (
                std::thread::current().name().map(str::to_owned),
                tokio::runtime::Handle::try_current().is_ok(),
            )
        })
        .await
    })
    .unwrap();
    assert_eq!(name.as_deref(), Some(evloop_compat::THREAD_NAME));
    assert!(has_runtime);
}

/// A panic on the tokio side resumes in the awaiting evloop task: evloop reports it as that
/// task's panic.
#[test]
fn spawn_tokio_panic_resumes_in_the_evloop_task() {
    let err = evloop::run(async {
        evloop::spawn(async { spawn_tokio(async { panic!("boom on tokio") }).await }).await
    })
    .unwrap()
    .expect_err("the evloop task must fail with the tokio task's panic");
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.panic_message(), Some("boom on tokio"));
}

/// One side runtime per process, shared by loops on different threads.
#[test]
fn compat_works_from_loops_on_several_threads() {
    let threads: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                evloop::run(async move {
                    compat(async move {
                        tokio::time::sleep(Duration::from_millis(i)).await;
                        // tokio::spawn inside compat spawns onto the side runtime.
                        tokio::spawn(async { std::thread::current().name().map(str::to_owned) })
                            .await
                            .unwrap()
                    })
                    .await
                })
                .unwrap()
            })
        })
        .collect();
    for thread in threads {
        let name = thread.join().unwrap();
        assert_eq!(name.as_deref(), Some(evloop_compat::THREAD_NAME));
    }
}

/// `Compat` and `TokioTask` are `Debug` whatever they wrap (an `async` block is not `Debug`).
#[test]
fn compat_and_tokio_task_are_debug_for_any_future() {
    let fut = evloop_compat::compat(async { 1 });
    assert_eq!(format!("{fut:?}"), "Compat { done: false, .. }");
    struct NotDebug;
    let out = evloop::run(async {
        let task = evloop_compat::spawn_tokio(async { NotDebug });
        let shown = format!("{task:?}");
        assert!(shown.starts_with("TokioTask { id: "), "{shown}");
        let NotDebug = task.await;
        shown
    })
    .unwrap();
    assert!(out.contains("detached: false"), "{out}");
}
