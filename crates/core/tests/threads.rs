//! `LoopHandle` and threads: `call_soon_threadsafe` from many threads, waking a loop parked in
//! the reactor, `stop` and `spawn` from other threads, `Task` across loops and threads, and a
//! stress test of cross-thread wakeups racing the loop's park/unpark.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use common::{Signal, Watchdog, record_exceptions, run_one};
use evloop_core::{Error, EventLoop, JoinError, LoopHandle, Task, TaskRef};

fn assert_send_sync<T: Send + Sync + 'static>() {}

/// Compiles only if `T` is *not* `Send` (the `static_assertions` ambiguity trick): if `T` were
/// `Send`, both impls would apply and the call below would be ambiguous.
trait AmbiguousIfSend<A> {
    fn not_send() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

#[test]
fn loop_bound_types_are_not_send() {
    <EventLoop as AmbiguousIfSend<_>>::not_send();
    <evloop_core::Handle as AmbiguousIfSend<_>>::not_send();
    <evloop_core::TimerHandle as AmbiguousIfSend<_>>::not_send();
    <Task<Rc<u8>> as AmbiguousIfSend<_>>::not_send();
}

#[test]
fn the_thread_safe_types_are_send_and_sync() {
    assert_send_sync::<LoopHandle>();
    assert_send_sync::<Task<u32>>();
    assert_send_sync::<Task<String>>();
    assert_send_sync::<TaskRef>();
    assert_send_sync::<Error>();
    // A sleep may be awaited in a future given to `LoopHandle::spawn`.
    assert_send_sync::<evloop_core::Sleep>();
    fn assert_send<T: Send>() {}
    assert_send::<JoinError>();
    fn assert_clone<T: Clone>() {}
    assert_clone::<LoopHandle>();
    assert_clone::<TaskRef>();
}

struct Counts {
    next: [AtomicU64; 4],
    total: AtomicU64,
    disorder: AtomicU64,
    handle: LoopHandle,
}

#[test]
fn call_soon_threadsafe_from_four_threads_loses_nothing_and_keeps_per_thread_order() {
    let _wd = Watchdog::new(
        "call_soon_threadsafe_from_four_threads",
        Duration::from_secs(60),
    );
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 100_000;
    const TOTAL: u64 = THREADS as u64 * PER_THREAD;
    let lp = EventLoop::new().unwrap();
    let counts = Arc::new(Counts {
        next: Default::default(),
        total: AtomicU64::new(0),
        disorder: AtomicU64::new(0),
        handle: lp.handle(),
    });
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (counts, barrier, h) = (counts.clone(), barrier.clone(), lp.handle());
            thread::spawn(move || {
                barrier.wait();
                for seq in 0..PER_THREAD {
                    let c = counts.clone();
                    h.call_soon_threadsafe(move || {
                        if c.next[t].load(Ordering::Relaxed) != seq {
                            c.disorder.fetch_add(1, Ordering::Relaxed);
                        }
                        c.next[t].store(seq + 1, Ordering::Relaxed);
                        if c.total.fetch_add(1, Ordering::Relaxed) + 1 == TOTAL {
                            c.handle.stop();
                        }
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    lp.run_forever().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counts.total.load(Ordering::Relaxed), TOTAL);
    assert_eq!(
        counts.disorder.load(Ordering::Relaxed),
        0,
        "per-thread order broken"
    );
    for t in 0..THREADS {
        assert_eq!(counts.next[t].load(Ordering::Relaxed), PER_THREAD);
    }
}

/// The main future waits `rounds` times for a flag that only a remote callback sets. Nothing
/// else is pending (except, optionally, a far timer), so the loop parks in the reactor each time
/// and only the remote call can wake it.
fn remote_wakes_parked_loop(rounds: usize, far_timer: bool) {
    let lp = EventLoop::new().unwrap();
    if far_timer {
        lp.call_later(Duration::from_secs(3600), || {});
    }
    let (tx, rx) = mpsc::channel::<Signal>();
    let h = lp.handle();
    let remote = thread::spawn(move || {
        for s in rx {
            h.call_soon_threadsafe(move || s.set()).unwrap();
        }
    });
    lp.run_until_complete(async move {
        for _ in 0..rounds {
            let s = Signal::default();
            // The callback can only run after this poll returns Pending (it runs on the loop).
            tx.send(s.clone()).unwrap();
            s.wait().await;
        }
    })
    .unwrap();
    remote.join().unwrap();
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_parked_without_timers() {
    let _wd = Watchdog::new(
        "wakes_a_loop_parked_without_timers",
        Duration::from_secs(30),
    );
    remote_wakes_parked_loop(300, false);
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_parked_on_a_far_timer() {
    let _wd = Watchdog::new(
        "wakes_a_loop_parked_on_a_far_timer",
        Duration::from_secs(30),
    );
    remote_wakes_parked_loop(300, true);
}

#[test]
fn a_waker_used_from_another_thread_wakes_a_parked_loop() {
    let _wd = Watchdog::new("a_waker_used_from_another_thread", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let signal = Signal::default();
    let s = signal.clone();
    let task = lp.create_task(async move {
        s.wait().await;
        "woken"
    });
    let s = signal.clone();
    let (tx, rx) = mpsc::channel::<()>();
    lp.call_soon(move || tx.send(()).unwrap());
    let remote = thread::spawn(move || {
        rx.recv().unwrap();
        s.set();
    });
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), "woken");
    remote.join().unwrap();
}

fn remote_stop_of_parked_loop(rounds: usize, far_timer: bool) {
    let lp = EventLoop::new().unwrap();
    if far_timer {
        lp.call_later(Duration::from_secs(3600), || {});
    }
    let (tx, rx) = mpsc::channel::<()>();
    let h = lp.handle();
    let remote = thread::spawn(move || {
        for () in rx {
            h.stop();
        }
    });
    for _ in 0..rounds {
        let tx = tx.clone();
        // Tell the thread the loop runs; it then stops it, whether it is parked yet or not.
        lp.call_soon(move || tx.send(()).unwrap());
        lp.run_forever().unwrap();
        assert!(!lp.is_running());
    }
    drop(tx);
    remote.join().unwrap();
}

#[test]
fn loop_handle_stop_stops_a_parked_run_forever() {
    let _wd = Watchdog::new(
        "loop_handle_stop_stops_a_parked_run_forever",
        Duration::from_secs(30),
    );
    remote_stop_of_parked_loop(200, false);
}

#[test]
fn loop_handle_stop_stops_a_run_forever_parked_on_a_far_timer() {
    let _wd = Watchdog::new("loop_handle_stop_far_timer", Duration::from_secs(30));
    remote_stop_of_parked_loop(200, true);
}

#[test]
fn loop_handle_stop_before_the_run_gives_one_iteration() {
    let lp = EventLoop::new().unwrap();
    let ran = Rc::new(RefCell::new(Vec::new()));
    let (r, lp2) = (ran.clone(), lp.clone());
    lp.call_soon(move || {
        r.borrow_mut().push(1);
        let r = r.clone();
        lp2.call_soon(move || r.borrow_mut().push(2));
    });
    let h = lp.handle();
    thread::spawn(move || h.stop()).join().unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*ran.borrow(), [1]);
}

#[test]
fn spawn_from_other_threads_then_await_on_the_loop() {
    let lp = EventLoop::new().unwrap();
    let loop_thread = thread::current().id();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let h = lp.handle();
            thread::spawn(move || {
                (0..100u64)
                    .map(|i| {
                        h.spawn(async move {
                            evloop_core::yield_now().await;
                            (t * 1000 + i, thread::current().id())
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tasks: Vec<Task<(u64, thread::ThreadId)>> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let outs = lp
        .run_until_complete(async move {
            let mut outs = Vec::new();
            for t in tasks {
                outs.push(t.await.unwrap());
            }
            outs
        })
        .unwrap();
    assert_eq!(outs.len(), 400);
    for (k, (v, tid)) in outs.iter().enumerate() {
        assert_eq!(*v, (k as u64 / 100) * 1000 + k as u64 % 100);
        assert_eq!(*tid, loop_thread, "spawned tasks run on the loop's thread");
    }
}

#[test]
fn spawn_from_another_thread_into_a_running_loop_and_join_blocking() {
    let _wd = Watchdog::new("spawn_and_join_blocking", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let loop_thread = thread::current().id();
    let h = lp.handle();
    let remote = thread::spawn(move || {
        let task = h.spawn(async {
            evloop_core::yield_now().await;
            let running = evloop_core::running_loop().is_some();
            (
                thread::current().id(),
                running,
                String::from("from the loop"),
            )
        });
        let name = task.name();
        let out = task.join_blocking();
        h.stop();
        (out, name)
    });
    lp.run_forever().unwrap();
    let (out, name) = remote.join().unwrap();
    let (tid, running, s) = out.unwrap();
    assert_eq!(tid, loop_thread);
    assert!(running);
    assert_eq!(s, "from the loop");
    assert!(name.starts_with("Task-"));
}

#[test]
fn a_task_on_a_loop_in_another_thread_is_awaited_on_this_loop() {
    let _wd = Watchdog::new("task_awaited_across_loops", Duration::from_secs(30));
    let (htx, hrx) = mpsc::channel();
    let remote = thread::spawn(move || {
        let lp = EventLoop::new().unwrap();
        htx.send(lp.handle()).unwrap();
        lp.run_forever().unwrap();
        lp.close().unwrap();
    });
    let rh: LoopHandle = hrx.recv().unwrap();
    let gate = Signal::default();
    let g = gate.clone();
    let task = rh.spawn(async move {
        g.wait().await;
        thread::current().id()
    });
    let cancelled = rh.spawn(std::future::pending::<()>());
    let blocked = rh.spawn(async { 7u8 });

    let lp = EventLoop::new().unwrap();
    let here = thread::current().id();
    let out = lp
        .run_until_complete(async {
            // Let the local loop park before the remote task can finish.
            gate.set();
            task.await
        })
        .unwrap()
        .unwrap();
    assert_ne!(out, here);
    assert!(cancelled.cancel());
    let c = lp.run_until_complete(cancelled).unwrap();
    assert!(matches!(c, Err(JoinError::Cancelled)), "{c:?}");
    let joiner = thread::spawn(move || blocked.join_blocking());
    assert_eq!(joiner.join().unwrap().unwrap(), 7);
    rh.stop();
    remote.join().unwrap();
    assert!(rh.is_closed());
    assert!(matches!(rh.call_soon_threadsafe(|| {}), Err(Error::Closed)));
    let late = rh.spawn(async {});
    assert!(late.is_cancelled());
}

#[test]
fn call_soon_threadsafe_on_the_loop_thread_runs_on_the_next_iteration() {
    let lp = EventLoop::new().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l, h) = (log.clone(), lp.handle());
    lp.call_soon(move || {
        l.lock().unwrap().push("A");
        let l2 = l.clone();
        h.call_soon_threadsafe(move || l2.lock().unwrap().push("remote from loop"))
            .unwrap();
    });
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), ["A"]);
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), ["A", "remote from loop"]);
}

#[test]
fn remote_callbacks_queued_while_not_running_run_on_the_next_run_in_order() {
    let lp = EventLoop::new().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let h = lp.handle();
    let l = log.clone();
    thread::spawn(move || {
        for i in 0..10 {
            let l = l.clone();
            h.call_soon_threadsafe(move || l.lock().unwrap().push(i))
                .unwrap();
        }
    })
    .join()
    .unwrap();
    assert!(log.lock().unwrap().is_empty());
    run_one(&lp);
    assert_eq!(*log.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_closed_loop_refuses_remote_calls_from_other_threads() {
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    assert!(!h.is_closed());
    lp.close().unwrap();
    let r = thread::spawn(move || (h.is_closed(), h.call_soon_threadsafe(|| {})))
        .join()
        .unwrap();
    assert!(r.0);
    let err = r.1.unwrap_err();
    assert!(matches!(err, Error::Closed));
    assert_eq!(err.to_string(), "Event loop is closed");
}

/// A value and the waker of whoever waits for it to reach a target.
#[derive(Default)]
struct Mailbox(Mutex<(u64, Option<Waker>)>);

impl Mailbox {
    fn post(&self, v: u64) {
        let waker = {
            let mut g = self.0.lock().unwrap();
            g.0 = v;
            g.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    async fn wait_for(&self, want: u64) {
        std::future::poll_fn(|cx| {
            let mut g = self.0.lock().unwrap();
            if g.0 >= want {
                Poll::Ready(())
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[test]
fn stress_cross_thread_wakeups_racing_park_never_get_lost() {
    // A lost wakeup leaves the loop parked forever: the watchdog turns that into a failure.
    let _wd = Watchdog::new("stress_cross_thread_wakeups", Duration::from_secs(60));
    const ROUNDS: u64 = 10_000;
    let lp = EventLoop::new().unwrap();

    // Path A: a task on the loop, woken through its own Waker by thread A.
    let mb_a = Arc::new(Mailbox::default());
    let (a_tx, a_rx) = mpsc::channel::<u64>();
    let m = mb_a.clone();
    let thread_a = thread::spawn(move || {
        for i in a_rx {
            m.post(i);
        }
    });
    // Path B: the main future, woken by thread B alternately through its Waker (from thread B)
    // and through call_soon_threadsafe (the wake then happens on the loop thread).
    let mb_b = Arc::new(Mailbox::default());
    let (b_tx, b_rx) = mpsc::channel::<u64>();
    let (m, h) = (mb_b.clone(), lp.handle());
    let thread_b = thread::spawn(move || {
        for i in b_rx {
            if i % 2 == 0 {
                m.post(i);
            } else {
                let m = m.clone();
                h.call_soon_threadsafe(move || m.post(i)).unwrap();
            }
        }
    });

    let ma = mb_a.clone();
    let task_a = lp.create_task(async move {
        for i in 1..=ROUNDS {
            a_tx.send(i).unwrap();
            ma.wait_for(i).await;
        }
        ROUNDS
    });
    let mb = mb_b.clone();
    let (a_done, b_done) = lp
        .run_until_complete(async move {
            for i in 1..=ROUNDS {
                b_tx.send(i).unwrap();
                mb.wait_for(i).await;
            }
            drop(b_tx);
            (task_a.await.unwrap(), ROUNDS)
        })
        .unwrap();
    assert_eq!((a_done, b_done), (ROUNDS, ROUNDS));
    thread_a.join().unwrap();
    thread_b.join().unwrap();
}

#[test]
fn stress_remote_spawns_while_the_loop_parks() {
    let _wd = Watchdog::new("stress_remote_spawns", Duration::from_secs(60));
    const ROUNDS: u64 = 2_000;
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    let remote = thread::spawn(move || {
        for i in 0..ROUNDS {
            let s = s.clone();
            let t = h.spawn(async move {
                s.fetch_add(i, Ordering::Relaxed);
                i
            });
            // Wait for each one: every spawn lands on a loop that is (about to be) parked.
            assert_eq!(t.join_blocking().unwrap(), i);
        }
        h.stop();
    });
    lp.run_forever().unwrap();
    remote.join().unwrap();
    assert_eq!(sum.load(Ordering::Relaxed), ROUNDS * (ROUNDS - 1) / 2);
}

#[test]
fn loop_handle_stop_ends_run_until_complete_early() {
    let _wd = Watchdog::new(
        "loop_handle_stop_ends_run_until_complete_early",
        Duration::from_secs(30),
    );
    let lp = EventLoop::new().unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let h = lp.handle();
    lp.call_soon(move || tx.send(()).unwrap());
    let remote = thread::spawn(move || {
        rx.recv().unwrap();
        h.stop();
    });
    let err = lp
        .run_until_complete(std::future::pending::<()>())
        .unwrap_err();
    assert!(matches!(err, Error::StoppedBeforeComplete), "{err:?}");
    remote.join().unwrap();
}

#[test]
fn a_panicking_task_spawned_from_another_thread_and_dropped_is_reported() {
    let _wd = Watchdog::new("remote_detached_panic_reported", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let reports = record_exceptions(&lp);
    let r = reports.clone();
    let lp2 = lp.clone();
    // Stop once the report has arrived.
    lp.set_exception_handler(Some(
        move |_: &EventLoop, ctx: &evloop_core::ExceptionContext| {
            r.borrow_mut().push(common::Report {
                message: ctx.message().to_string(),
                panic: ctx.panic_message().map(str::to_string),
                task: ctx.task(),
            });
            lp2.stop();
        },
    ));
    let h = lp.handle();
    let id = thread::spawn(move || {
        let t = h.spawn(async {
            evloop_core::yield_now().await;
            panic!("remote detached boom");
        });
        t.id()
    })
    .join()
    .unwrap();
    lp.run_forever().unwrap();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message, "Task exception was never retrieved");
    assert_eq!(reports[0].panic.as_deref(), Some("remote detached boom"));
    assert_eq!(reports[0].task.as_ref().unwrap().id(), id);
    drop(reports);
    lp.set_exception_handler(None::<fn(&EventLoop, &evloop_core::ExceptionContext)>);
}

#[test]
fn join_blocking_a_panicking_task_gives_the_panic() {
    let _wd = Watchdog::new("join_blocking_panic", Duration::from_secs(30));
    let lp = EventLoop::new().unwrap();
    let h = lp.handle();
    let remote = thread::spawn(move || {
        let n = std::hint::black_box(5);
        let t = h.spawn(async move {
            if n == 5 {
                panic!("joined boom {n}");
            }
            n
        });
        let out = t.join_blocking();
        h.stop();
        out.unwrap_err().panic_message().map(str::to_string)
    });
    lp.run_forever().unwrap();
    assert_eq!(remote.join().unwrap().as_deref(), Some("joined boom 5"));
}

#[test]
fn stress_cancel_racing_wakes_from_another_thread() {
    let _wd = Watchdog::new("stress_cancel_racing_wakes", Duration::from_secs(60));
    const TASKS: usize = 200;
    const STEPS: u64 = 50;
    let lp = EventLoop::new().unwrap();
    let drops = common::DropCounter::default();
    let mailboxes: Vec<Arc<Mailbox>> = (0..TASKS).map(|_| Arc::default()).collect();
    let (req_tx, req_rx) = mpsc::channel::<(usize, u64)>();
    let tasks: Vec<Task<u64>> = (0..TASKS)
        .map(|i| {
            let (mb, tx, g) = (mailboxes[i].clone(), req_tx.clone(), drops.guard());
            lp.create_task(async move {
                let _g = g;
                for j in 1..=STEPS {
                    tx.send((i, j)).unwrap();
                    mb.wait_for(j).await;
                    // At most one step per poll, so a cancel that lands during a poll is
                    // always followed by a scheduling point (see
                    // tasks::a_task_cancelled_during_its_last_poll_ends_cancelled).
                    evloop_core::yield_now().await;
                }
                STEPS
            })
        })
        .collect();
    drop(req_tx);
    let refs: Vec<TaskRef> = tasks.iter().map(Task::as_ref).collect();
    let mbs = mailboxes.clone();
    // Answers each request; for odd tasks, at step i % 20 + 1, it also cancels the task right
    // after (or before) waking it, racing the loop thread that runs it.
    let remote = thread::spawn(move || {
        for (i, j) in req_rx {
            let cancel_now = i % 2 == 1 && j == (i as u64 % 20) + 1;
            if cancel_now && i % 4 == 1 {
                assert!(refs[i].cancel());
            }
            mbs[i].post(j);
            if cancel_now && i % 4 == 3 {
                refs[i].cancel();
            }
        }
    });
    let outs = lp
        .run_until_complete(async move {
            let mut outs = Vec::new();
            for t in tasks {
                outs.push(t.await);
            }
            outs
        })
        .unwrap();
    for (i, out) in outs.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(*out.as_ref().unwrap(), STEPS, "task {i}");
        } else {
            assert!(
                matches!(out, Err(JoinError::Cancelled)),
                "task {i}: {out:?}"
            );
        }
    }
    assert_eq!(drops.get(), TASKS);
    assert!(lp.all_tasks().is_empty());
    drop(outs);
    lp.close().unwrap();
    remote.join().unwrap();
}

#[test]
fn a_sleep_inside_a_future_spawned_from_another_thread_works() {
    let _wd = Watchdog::new(
        "a_sleep_inside_a_future_spawned_from_another_thread_works",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let sleeper = evloop_core::sleep(&lp, Duration::from_millis(5));
    let started = std::time::Instant::now();
    let task = std::thread::spawn(move || {
        handle.spawn(async move {
            sleeper.await;
            7
        })
    })
    .join()
    .unwrap();
    assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), 7);
    assert!(started.elapsed() >= Duration::from_millis(5));
    lp.close().unwrap();
}

#[test]
fn a_sleep_polled_on_another_thread_fires_from_the_loop() {
    let _wd = Watchdog::new(
        "a_sleep_polled_on_another_thread_fires_from_the_loop",
        Duration::from_secs(20),
    );
    let lp = EventLoop::new().unwrap();
    let sleeper = evloop_core::sleep(&lp, Duration::from_millis(2));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let handle = lp.handle();
    // A foreign thread blocks on the sleep; the loop's heap fires it.
    let waiter = std::thread::spawn(move || {
        let task_like = handle.spawn(async {});
        drop(task_like);
        futures_block_on(sleeper);
        done_tx.send(()).unwrap();
    });
    let h2 = lp.handle();
    let stopper = std::thread::spawn(move || {
        done_rx.recv().unwrap();
        h2.stop();
    });
    lp.run_forever().unwrap();
    waiter.join().unwrap();
    stopper.join().unwrap();
    lp.close().unwrap();
}

/// A minimal block_on for a `Send` future on the current thread.
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
