//! `LoopHandle::spawn` and `call_soon_threadsafe` racing the loop's close: every task spawned
//! from another thread runs or resolves cancelled, and every closure posted is run or dropped
//! (none is kept in the closed loop's queue), whatever the interleaving.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use common::DropCounter;
use evloop_core::{Error, EventLoop, JoinError};

/// Most posts per round from the other thread (it stops soon after it sees the loop closed).
const MAX_POSTS: usize = 2_000;

struct Posted {
    tasks: Vec<evloop_core::Task<usize>>,
    accepted: usize,
    refused: usize,
}

/// One round: the other thread spawns tasks and posts closures while this thread runs a short
/// `run_until_complete` and closes the loop. Returns what the other thread did.
fn round(ran: &Arc<AtomicUsize>, dropped: &DropCounter) -> Posted {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    let start = Arc::new(Barrier::new(2));
    let poster = {
        let (start, ran, dropped) = (start.clone(), ran.clone(), dropped.clone());
        thread::spawn(move || {
            let mut posted = Posted {
                tasks: Vec::new(),
                accepted: 0,
                refused: 0,
            };
            start.wait();
            let mut after_close = 0;
            for i in 0..MAX_POSTS {
                posted.tasks.push(handle.spawn(async move { i }));
                let (ran, guard) = (ran.clone(), dropped.guard());
                match handle.call_soon_threadsafe(move || {
                    let _guard = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                }) {
                    Ok(()) => posted.accepted += 1,
                    Err(Error::Closed) => posted.refused += 1,
                    Err(e) => panic!("unexpected error {e}"),
                }
                if handle.is_closed() {
                    after_close += 1;
                    if after_close > 3 {
                        break;
                    }
                }
            }
            posted
        })
    };
    start.wait();
    lp.run_until_complete(async {
        for _ in 0..3 {
            evloop_core::yield_now().await;
        }
    })
    .unwrap();
    lp.close().unwrap();
    poster.join().unwrap()
}

#[test]
fn remote_spawns_and_callbacks_racing_close_are_all_resolved_run_or_dropped() {
    let ran = Arc::new(AtomicUsize::new(0));
    let dropped = DropCounter::default();
    let mut total_posts = 0;
    let mut total_refused = 0;
    for _ in 0..300 {
        let ran_before = ran.load(Ordering::SeqCst);
        let Posted {
            tasks,
            accepted,
            refused,
        } = round(&ran, &dropped);
        total_posts += accepted + refused;
        total_refused += refused;
        // Both threads are done: every closure made so far was run or dropped, none is
        // retained (the tasks, still alive, keep the loop's shared state alive).
        assert_eq!(
            dropped.get(),
            total_posts,
            "closures neither run nor dropped"
        );
        let ran_now = ran.load(Ordering::SeqCst) - ran_before;
        assert!(ran_now <= accepted, "{ran_now} ran, {accepted} accepted");

        // Every task resolves: joined on a helper thread, so that a lost task fails the test
        // instead of hanging it.
        let n = tasks.len();
        let (tx, rx) = mpsc::channel();
        let joiner = thread::spawn(move || {
            for (i, task) in tasks.into_iter().enumerate() {
                let result = task.join_blocking();
                if tx.send((i, result)).is_err() {
                    return;
                }
            }
        });
        for want in 0..n {
            let (i, result) = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("task {want} of {n} never resolved"));
            match result {
                Ok(v) => assert_eq!(v, i),
                Err(JoinError::Cancelled) => {}
                Err(e) => panic!("task {i}: unexpected {e:?}"),
            }
        }
        joiner.join().unwrap();
    }
    // The race was exercised: some posts were refused (the loop was closed by then).
    assert!(total_refused > 0);
}

/// A sleep polled off the loop thread is on its way to the timer heap, through the injection
/// queue, when the loop closes: it ends then, instead of waiting forever.
#[test]
fn a_sleep_queued_for_the_timer_heap_when_the_loop_closes_ends_instead_of_hanging() {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let lp = EventLoop::new().unwrap();
    let mut sleep = Box::pin(evloop_core::sleep(&lp, Duration::from_secs(3600)));
    let woken = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    // The loop is not running here: the sleep goes through the injection queue.
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    lp.close().unwrap();
    assert!(woken.0.load(Ordering::SeqCst), "the sleep was never woken");
    assert_eq!(sleep.as_mut().poll(&mut cx), Poll::Ready(()));
}

/// Local tasks woken from another thread while their loop closes: each future is dropped on
/// the loop thread (a wake that finds the loop closing leaves the runnable to `close`, rather
/// than dropping it on the waking thread, where a local future can only be leaked).
#[test]
fn local_tasks_woken_from_another_thread_during_close_are_dropped_on_the_loop_thread() {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    struct Parked {
        wakers: Arc<Mutex<Vec<Waker>>>,
        registered: bool,
        dropped_here: Arc<AtomicUsize>,
        home: thread::ThreadId,
    }
    impl Future for Parked {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if !self.registered {
                self.registered = true;
                self.wakers.lock().unwrap().push(cx.waker().clone());
            }
            Poll::Pending
        }
    }
    impl Drop for Parked {
        fn drop(&mut self) {
            if thread::current().id() == self.home {
                self.dropped_here.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    const TASKS: usize = 100;
    for _ in 0..100 {
        let lp = EventLoop::new().unwrap();
        // No report noise: the tasks are destroyed pending on purpose.
        lp.set_exception_handler(Some(|_: &EventLoop, _: &evloop_core::ExceptionContext| {}));
        let wakers = Arc::new(Mutex::new(Vec::new()));
        let dropped_here = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS {
            lp.create_task(Parked {
                wakers: wakers.clone(),
                registered: false,
                dropped_here: dropped_here.clone(),
                home: thread::current().id(),
            });
        }
        common::run_one(&lp);
        let taken: Vec<Waker> = std::mem::take(&mut *wakers.lock().unwrap());
        assert_eq!(taken.len(), TASKS);
        let start = Arc::new(Barrier::new(2));
        let waker_thread = {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for w in &taken {
                    w.wake_by_ref();
                }
                drop(taken);
            })
        };
        start.wait();
        lp.close().unwrap();
        waker_thread.join().unwrap();
        assert_eq!(
            dropped_here.load(Ordering::SeqCst),
            TASKS,
            "local futures dropped off their thread (leaked)"
        );
    }
}
