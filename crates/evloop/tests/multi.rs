//! `evloop::multi`: a loop per thread, `SO_REUSEPORT` spreading, work sent to a given loop,
//! joint shutdown on the first error or panic. (Ctrl-C: `multi_interrupt.rs`.) Real threads
//! and sockets; every wait is on a real event, bounded by a generous timeout.

mod multiutil;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use evloop::multi::{self, Builder, MultiError};
use evloop::{Error, LoopFuture};
use multiutil::{BOUND, DropCount, cross, watchdog};
use socket2::{Domain, Protocol, Socket, Type};

thread_local! {
    /// On each loop thread of the spreading test: resolved when every connection is accepted.
    static ALL_ACCEPTED: RefCell<Option<LoopFuture<()>>> = const { RefCell::new(None) };
}

#[test]
fn reuse_port_connections_are_spread_across_loops() -> Result<(), Box<dyn std::error::Error>> {
    let _watchdog = watchdog("reuse_port_connections_are_spread_across_loops");
    const LOOPS: usize = 4;
    const CONNS: usize = 64;

    // Holds the port (bound with SO_REUSEPORT, never listening, so never given connections)
    // for the loops' listeners to share.
    let probe = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_port(true)?;
    probe.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>()?.into())?;
    let addr = probe
        .local_addr()?
        .as_socket()
        .ok_or("an IPv4 probe address")?;

    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let client = thread::spawn(move || -> io::Result<Vec<std::net::TcpStream>> {
        for _ in 0..LOOPS {
            ready_rx
                .recv_timeout(BOUND)
                .map_err(|_| io::Error::other("the loops did not all listen"))?;
        }
        (0..CONNS)
            .map(|_| std::net::TcpStream::connect(addr))
            .collect()
    });

    let accepted = Arc::new(AtomicUsize::new(0));
    let counts = multi::run(LOOPS, |_| {
        let ready = ready_tx.clone();
        let accepted = accepted.clone();
        async move {
            let lp = evloop::get_running_loop().map_err(|e| e.to_string())?;
            let all_accepted: LoopFuture<()> = lp.create_future();
            ALL_ACCEPTED.with(|f| *f.borrow_mut() = Some(all_accepted.clone()));
            let listener = multi::reuse_port_listener(addr)
                .await
                .map_err(|e| e.to_string())?;
            ready.send(()).map_err(|e| e.to_string())?;
            let mine = Rc::new(Cell::new(0usize));
            let count = mine.clone();
            let total = accepted.clone();
            let _acceptor = evloop::spawn(async move {
                let mut streams = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    streams.push(stream);
                    count.set(count.get() + 1);
                    if total.fetch_add(1, Ordering::SeqCst) + 1 == CONNS {
                        let loops = multi::loops().expect("on a loop thread");
                        for j in 0..loops.len() {
                            let _ = loops.call_soon_threadsafe(j, || {
                                ALL_ACCEPTED.with(|f| {
                                    if let Some(f) = f.borrow().as_ref() {
                                        let _ = f.set_result(());
                                    }
                                });
                            });
                        }
                    }
                }
            });
            match evloop::timeout(BOUND, all_accepted).await {
                Ok(_) => Ok(mine.get()),
                Err(_) => Err(format!("only {} accepted", accepted.load(Ordering::SeqCst))),
            }
        }
    })?;
    let streams = client.join().map_err(|_| "the client panicked")??;
    assert_eq!(streams.len(), CONNS);
    assert_eq!(counts.iter().sum::<usize>(), CONNS, "{counts:?}");
    let busy = counts.iter().filter(|&&c| c > 0).count();
    assert!(busy > 1, "the kernel spread the connections: {counts:?}");
    drop(probe);
    Ok(())
}

#[test]
fn first_error_stops_the_other_loops() {
    let _watchdog = watchdog("first_error_stops_the_other_loops");
    const LOOPS: usize = 3;
    let all_started = Arc::new(Barrier::new(LOOPS));
    let mains_cancelled = Arc::new(AtomicUsize::new(0));
    let tasks_cancelled = Arc::new(AtomicUsize::new(0));
    let result = multi::run(LOOPS, |i| {
        let (started, mains, tasks) = (
            all_started.clone(),
            mains_cancelled.clone(),
            tasks_cancelled.clone(),
        );
        async move {
            let guard = DropCount(tasks);
            evloop::spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
            // Before the barrier: a loop may be stopped before it is back from it.
            let _guard = (i != 1).then(|| DropCount(mains));
            cross(&started).await;
            if i == 1 {
                return Err(format!("loop {i} failed"));
            }
            std::future::pending::<Result<(), String>>().await
        }
    });
    match result {
        Err(MultiError::Failed { index: 1, error }) => assert_eq!(error, "loop 1 failed"),
        other => panic!("loop 1's error expected, got {other:?}"),
    }
    // Back from run(): every thread joined, the others' main futures and everyone's pending
    // tasks dropped.
    assert_eq!(mains_cancelled.load(Ordering::SeqCst), LOOPS - 1);
    assert_eq!(tasks_cancelled.load(Ordering::SeqCst), LOOPS);
}

#[test]
fn a_panicking_loop_stops_the_others() {
    let _watchdog = watchdog("a_panicking_loop_stops_the_others");
    const LOOPS: usize = 3;
    let all_started = Arc::new(Barrier::new(LOOPS));
    let mains_cancelled = Arc::new(AtomicUsize::new(0));
    let result = multi::run(LOOPS, |i| {
        let (started, mains) = (all_started.clone(), mains_cancelled.clone());
        async move {
            let _guard = DropCount(mains);
            cross(&started).await;
            if i == 2 {
                panic!("loop {i} panicked on purpose");
            }
            std::future::pending::<Result<(), String>>().await
        }
    });
    let err = result.expect_err("the panic stops the run");
    assert!(err.is_panic(), "{err:?}");
    assert_eq!(err.index(), Some(2));
    assert_eq!(err.panic_message(), Some("loop 2 panicked on purpose"));
    assert_eq!(
        err.to_string(),
        "loop 2 panicked: loop 2 panicked on purpose"
    );
    // The panicking future was dropped by its unwinding, the others by the stop.
    assert_eq!(mains_cancelled.load(Ordering::SeqCst), LOOPS);
    // The payload can be resumed as a panic on this thread.
    let payload = err.into_panic().expect("a payload");
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        std::panic::resume_unwind(payload)
    }));
    let payload = resumed.expect_err("resumed");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("loop 2 panicked on purpose")
    );
}

#[test]
fn work_sent_to_a_loop_runs_on_its_thread() -> Result<(), Box<dyn std::error::Error>> {
    let _watchdog = watchdog("work_sent_to_a_loop_runs_on_its_thread");
    const LOOPS: usize = 3;
    let threads: Mutex<Vec<Option<ThreadId>>> = Mutex::new(vec![None; LOOPS]);
    let all_started = Arc::new(Barrier::new(LOOPS));
    let seen = multi::run(LOOPS, |i| {
        let (threads, started) = (&threads, all_started.clone());
        async move {
            threads.lock().map_err(|e| e.to_string())?[i] = Some(thread::current().id());
            cross(&started).await;
            let loops = multi::loops().ok_or("no loops() on a loop thread")?;
            if i != 0 {
                return Ok(Vec::new());
            }
            let mut seen = Vec::new();
            for j in 0..loops.len() {
                // A Send future, as a task on loop j.
                let task = loops.spawn_on(j, async move {
                    let on_a_loop = evloop::get_running_loop().is_ok();
                    let loops_there = multi::loops().map(|l| l.len());
                    (thread::current().id(), on_a_loop, loops_there)
                });
                let (tid, on_a_loop, loops_there) = task
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())?;
                assert!(on_a_loop && loops_there == Some(LOOPS));
                // A callback on loop j; its answer comes back through a channel.
                let (tx, rx) = mpsc::channel();
                loops
                    .call_soon_threadsafe(j, move || {
                        let _ = tx.send(thread::current().id());
                    })
                    .map_err(|e| e.to_string())?;
                let called_on = evloop::to_thread(move || rx.recv_timeout(BOUND))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                // The same through the handle.
                let handle = loops.handle(j).ok_or("a handle per loop")?;
                let via_handle = handle
                    .spawn(async { thread::current().id() })
                    .await
                    .map_err(|e| e.to_string())?;
                seen.push((tid, called_on, via_handle));
            }
            // No loop 3.
            assert!(loops.handle(LOOPS).is_none());
            let err = loops
                .spawn_on(LOOPS, async {})
                .expect_err("there is no loop 3");
            assert!(matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::InvalidInput));
            assert_eq!(err.to_string(), "no loop 3: there are 3");
            assert!(loops.call_soon_threadsafe(LOOPS, || {}).is_err());
            Ok::<_, String>(seen)
        }
    })?;
    let threads = threads.into_inner()?;
    let me = thread::current().id();
    for (j, (tid, called_on, via_handle)) in seen[0].iter().enumerate() {
        let expected = threads[j].expect("every loop recorded its thread");
        assert_ne!(expected, me);
        assert_eq!(
            (*tid, *called_on, *via_handle),
            (expected, expected, expected)
        );
    }
    assert_eq!(
        threads
            .iter()
            .flatten()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        LOOPS
    );
    assert!(multi::loops().is_none(), "not on the calling thread");
    Ok(())
}

thread_local! {
    static MAIN_DONE: Cell<bool> = const { Cell::new(false) };
}

#[test]
fn a_finished_loop_keeps_running_until_all_are_done() -> Result<(), Box<dyn std::error::Error>> {
    let _watchdog = watchdog("a_finished_loop_keeps_running_until_all_are_done");
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Mutex::new(Some(rx));
    let out = multi::run(2, |i| {
        let tx = tx.clone();
        let rx = rx
            .lock()
            .ok()
            .and_then(|mut r| if i == 1 { r.take() } else { None });
        async move {
            if i == 0 {
                let _ = tx.send(());
                MAIN_DONE.with(|d| d.set(true));
                return Ok(false); // loop 0's future is done; the loop stays open
            }
            let rx = rx.ok_or("loop 1 has the receiver")?;
            evloop::to_thread(move || rx.recv_timeout(BOUND))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let loops = multi::loops().ok_or("no loops()")?;
            // Runs after loop 0's main future returned (same thread, in a later poll).
            let after = loops
                .spawn_on(0, async { MAIN_DONE.with(Cell::get) })
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(after)
        }
    })?;
    assert_eq!(out, [false, true]);
    Ok(())
}

#[test]
fn outputs_in_index_order_and_borrowed_closure() -> Result<(), Box<dyn std::error::Error>> {
    let base = String::from("loop");
    let out = multi::run(5, |i| {
        let base = &base; // not 'static
        async move {
            evloop::sleep(Duration::from_millis(5 * (5 - i as u64))).await; // finish in reverse
            Ok::<_, String>(format!("{base} {i}"))
        }
    })?;
    assert_eq!(out, ["loop 0", "loop 1", "loop 2", "loop 3", "loop 4"]);
    assert!(multi::run(0, |_| async { Ok::<(), String>(()) })?.is_empty());
    Ok(())
}

#[test]
fn each_loop_is_its_threads_current_loop() -> Result<(), Box<dyn std::error::Error>> {
    let out = multi::run(2, |_| async {
        let running = evloop::get_running_loop().map_err(|e| e.to_string())?;
        let current = evloop::get_event_loop().map_err(|e| e.to_string())?;
        Ok::<_, String>((
            running == current,
            thread::current().name().map(str::to_owned),
        ))
    })?;
    assert_eq!(
        out,
        [
            (true, Some("evloop-multi-0".to_owned())),
            (true, Some("evloop-multi-1".to_owned()))
        ]
    );
    Ok(())
}

#[test]
fn run_inside_a_running_loop_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
    let inner = evloop::run(async { multi::run(2, |_| async { Ok::<(), String>(()) }) })?;
    match inner {
        Err(MultiError::Loop {
            index: None,
            error: Error::RunInRunningLoop,
        }) => Ok(()),
        other => Err(format!("RunInRunningLoop expected, got {other:?}").into()),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn pinned_loops_run_on_one_cpu_each() -> Result<(), Box<dyn std::error::Error>> {
    use rustix::thread::{CpuSet, sched_getaffinity};
    let allowed: Vec<usize> = {
        let set = sched_getaffinity(None)?;
        (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
    };
    let loops = allowed.len() + 1; // wraps around
    let masks = Builder::new(loops).pin_to_cpus(true).run(|_| async {
        let set = sched_getaffinity(None).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            (0..CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .collect::<Vec<_>>(),
        )
    })?;
    for (i, mask) in masks.iter().enumerate() {
        assert_eq!(mask, &[allowed[i % allowed.len()]], "loop {i}");
    }
    // Unpinned: the loops keep the calling thread's mask.
    let masks = Builder::new(2).run(|_| async {
        let set = sched_getaffinity(None).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            (0..CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .collect::<Vec<_>>(),
        )
    })?;
    assert_eq!(masks, [allowed.clone(), allowed]);
    Ok(())
}
