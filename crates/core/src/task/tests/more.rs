//! Panics, `TaskRef`s, schedulers and threads.

#![allow(clippy::unwrap_used, clippy::waker_clone_wake)]

use super::*;

#[test]
fn panic_in_poll_is_caught() {
    let h = Harness::default();
    let drops = Drops::default();
    let (runnable, mut task) = h.spawn({
        let token = drops.token();
        async move {
            let _token = token;
            if drops_never_zero() {
                panic!("boom {}", std::hint::black_box(7));
            }
            0u8
        }
    });
    assert!(runnable.run(), "no unwind escapes run()");
    assert_eq!(drops.get(), 1);
    assert!(task.is_done());
    assert!(!task.is_cancelled());
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected Err(Panicked)");
    };
    assert!(e.is_panic());
    assert!(!e.is_cancelled());
    assert_eq!(e.panic_message(), Some("boom 7"));
    assert_eq!(e.to_string(), "task panicked: boom 7");
    assert_eq!(format!("{e:?}"), "JoinError::Panicked(\"boom 7\")");
    let payload = e.into_panic().unwrap();
    assert_eq!(*payload.downcast::<String>().unwrap(), "boom 7");
    drop(task);
    assert_eq!(h.unhandled_count(), 0, "the outcome was read");
}

/// Always true, but the compiler does not know (keeps the code after `panic!` reachable).

#[test]
fn panic_payloads_str_and_other() {
    let h = Harness::default();
    let (r1, mut t1) = h.spawn(async {
        if drops_never_zero() {
            panic!("static boom");
        }
    });
    let (r2, mut t2) = h.spawn(async {
        if drops_never_zero() {
            std::panic::panic_any(17u32);
        }
    });
    r1.run();
    r2.run();
    let Poll::Ready(Err(e1)) = poll_noop(&mut t1) else {
        panic!("expected a panic");
    };
    assert_eq!(e1.panic_message(), Some("static boom"));
    let Poll::Ready(Err(e2)) = poll_noop(&mut t2) else {
        panic!("expected a panic");
    };
    assert!(e2.is_panic());
    assert_eq!(e2.panic_message(), None);
    assert_eq!(e2.to_string(), "task panicked");
    assert_eq!(format!("{e2:?}"), "JoinError::Panicked(..)");
    assert_eq!(*e2.into_panic().unwrap().downcast::<u32>().unwrap(), 17);
}

#[test]
fn unread_panic_is_reported_when_the_handle_is_dropped() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        if drops_never_zero() {
            panic!("boom");
        }
    });
    let id = task.id();
    runnable.run();
    assert_eq!(h.unhandled_count(), 0, "the handle may still read it");
    drop(task);
    let seen = h.0.unhandled.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, id);
    assert_eq!(seen[0].name, format!("Task-{id}"));
    assert_eq!(seen[0].message.as_deref(), Some("boom"));
    assert!(seen[0].done);
}

#[test]
fn panic_of_a_detached_task_is_reported_at_completion() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        yield_now().await;
        if drops_never_zero() {
            panic!("late boom");
        }
    });
    task.set_name("worker");
    drop(task);
    assert!(!runnable.run());
    assert_eq!(h.unhandled_count(), 0);
    assert_eq!(h.run_all(), 1);
    let seen = h.0.unhandled.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "worker");
    assert_eq!(seen[0].message.as_deref(), Some("late boom"));
}

#[test]
fn no_unhandled_report_for_read_panics_cancellations_or_outputs() {
    let h = Harness::default();
    let (r1, mut t1) = h.spawn(async {
        if drops_never_zero() {
            panic!("read me");
        }
    });
    r1.run();
    assert!(matches!(poll_noop(&mut t1), Poll::Ready(Err(_))));
    drop(t1);
    let (r2, t2) = h.spawn(async {});
    t2.cancel();
    drop(t2);
    r2.run();
    let (r3, t3) = h.spawn(async { 3 });
    r3.run();
    drop(t3);
    assert_eq!(h.unhandled_count(), 0);
}

#[test]
fn panicking_future_drop_is_contained() {
    let h = Harness::default();

    // Dropped after completing.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(1)
        })
    });
    assert!(runnable.run());
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(1))));

    // Dropped by cancellation at run.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(2)
        })
    });
    task.cancel();
    assert!(runnable.run());
    expect_cancelled(&mut task);

    // Dropped with its runnable.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::Ready(3)
        })
    });
    drop(runnable);
    expect_cancelled(&mut task);

    // Dropped after a panicking poll.
    let (runnable, mut task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            if drops_never_zero() {
                panic!("poll boom");
            }
            Poll::Ready(4)
        })
    });
    assert!(runnable.run());
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("poll boom"));
}

#[test]
fn panicking_drop_of_an_abandoned_future_is_contained() {
    // Pending, no waker kept and no handle: the last reference goes away at the end of run(),
    // which drops the future there.
    let h = Harness::default();
    let (runnable, task) = h.spawn({
        let p = PanicOnDrop;
        poll_fn(move |_| {
            let _keep = &p;
            Poll::<()>::Pending
        })
    });
    drop(task);
    let ran = catch_unwind(AssertUnwindSafe(|| runnable.run()));
    assert!(
        matches!(ran, Ok(false)),
        "a destructor's panic escaped run()"
    );
}

#[test]
fn abandoned_pending_future_is_dropped() {
    let h = Harness::default();
    let drops = Drops::default();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (runnable, task) = h.spawn({
        let token = drops.token();
        let slot = slot.clone();
        poll_fn(move |cx| {
            let _keep = &token;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
    });
    drop(task);
    assert!(!runnable.run());
    assert_eq!(drops.get(), 0, "a waker can still wake it");
    drop(slot.lock().unwrap().take());
    assert_eq!(
        drops.get(),
        1,
        "the last waker went away: the future is dropped"
    );
}

// ---------------------------------------------------------------------------------------------
// TaskRef.
// ---------------------------------------------------------------------------------------------

#[test]
fn task_ref_identity_ids_and_names() {
    let h = Harness::default();
    let (r1, t1) = h.spawn(async {});
    let (r2, t2) = h.spawn(async {});
    let a = t1.as_ref();
    let b = r1.task_ref();
    let c = a.clone();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_ne!(a, t2.as_ref());
    assert_ne!(r2.task_ref(), b);
    assert_eq!(a.id(), t1.id());
    assert_eq!(r1.id(), t1.id());
    assert_ne!(t1.id(), t2.id());
    assert!(t2.id() > t1.id(), "ids increase");
    assert_eq!(t1.id().to_string(), t1.id().as_u64().to_string());

    assert_eq!(t1.name(), format!("Task-{}", t1.id()));
    assert_eq!(a.name(), t1.name());
    assert_eq!(t2.name(), format!("Task-{}", t2.id()));
    a.set_name("alpha");
    assert_eq!(t1.name(), "alpha");
    assert_eq!(b.name(), "alpha");
    t1.set_name(String::from("beta"));
    assert_eq!(c.name(), "beta");
    assert!(format!("{t1:?}").contains("beta"));
    assert!(format!("{r1:?}").contains("beta"));
    assert!(format!("{a:?}").contains("beta"));
    assert_eq!(t2.name(), format!("Task-{}", t2.id()));

    let set: HashSet<TaskRef> = [a.clone(), b.clone(), c.clone(), t2.as_ref()]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);

    assert!(!a.is_done());
    r1.run();
    r2.run();
    assert!(a.is_done());
    assert!(!a.is_cancelled());
}

#[test]
fn task_ref_outlives_the_task_handle() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async { 5 });
    let tr = task.as_ref();
    drop(task);
    runnable.run();
    assert!(tr.is_done());
    let mut tr2 = tr.clone();
    drop(tr);
    assert!(matches!(poll_noop(&mut tr2), Poll::Ready(Ok(()))));
}

#[test]
fn awaiting_a_task_ref() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (runnable, mut task) = h.spawn({
        let gate = gate.clone();
        async move { gate.wait().await }
    });
    let mut tr = task.as_ref();
    let mut tr2 = tr.clone();
    let (c1, w1) = counting_waker();
    let (c2, w2) = counting_waker();
    let (c3, w3) = counting_waker();
    assert!(poll_with(&mut tr, &w1).is_pending());
    assert!(poll_with(&mut tr, &w1).is_pending());
    assert!(poll_with(&mut tr2, &w2).is_pending());
    assert!(poll_with(&mut task, &w3).is_pending());
    assert!(!runnable.run());
    gate.open();
    h.run_all();
    // Registering the same waker twice is deduplicated with `Waker::will_wake`, which is only
    // best effort (under Miri vtable addresses are not unique, so it may say no).
    assert!((1..=2).contains(&c1.count()));
    assert_eq!(c2.count(), 1);
    assert_eq!(c3.count(), 1);
    assert!(matches!(poll_noop(&mut tr), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut tr), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(()))));
    assert!(matches!(poll_noop(&mut tr2), Poll::Ready(Ok(()))));

    // Cancelled.
    let (runnable, task) = h.spawn(async {});
    let mut tr = task.as_ref();
    let (c, w) = counting_waker();
    assert!(poll_with(&mut tr, &w).is_pending());
    task.cancel();
    runnable.run();
    assert_eq!(c.count(), 1);
    assert!(matches!(
        poll_noop(&mut tr),
        Poll::Ready(Err(JoinError::Cancelled))
    ));

    // Panicked: the payload stays with the typed handle; the TaskRef gets a generic message.
    let (runnable, mut task) = h.spawn(async {
        if drops_never_zero() {
            panic!("boom");
        }
    });
    let mut tr = task.as_ref();
    runnable.run();
    let Poll::Ready(Err(e)) = poll_noop(&mut tr) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("task panicked"));
    let Poll::Ready(Err(e)) = poll_noop(&mut task) else {
        panic!("expected a panic");
    };
    assert_eq!(e.panic_message(), Some("boom"));
}

// ---------------------------------------------------------------------------------------------
// Schedulers that run the runnable at once.
// ---------------------------------------------------------------------------------------------

#[test]
fn inline_scheduler_with_a_detached_task() {
    // The scheduler runs the runnable inside `schedule`, and the task ends (and its last
    // reference goes away) before `schedule` returns: the scheduler's captures must stay valid.
    let runs = Arc::new(AtomicUsize::new(0));
    let drops = Drops::default();
    let (runnable, task) = spawn(
        {
            let token = drops.token();
            async move {
                let _token = token;
                yield_now().await;
                yield_now().await;
            }
        },
        {
            let runs = runs.clone();
            move |r: Runnable| {
                r.run();
                runs.fetch_add(1, SeqCst);
            }
        },
    );
    drop(task);
    runnable.schedule();
    assert_eq!(runs.load(SeqCst), 3);
    assert_eq!(drops.get(), 1);
}

#[test]
fn panicking_scheduler_does_not_leak_the_task() {
    let drops = Drops::default();
    let (runnable, mut task) = spawn(
        {
            let token = drops.token();
            async move {
                let _token = token;
            }
        },
        |r: Runnable| {
            drop(r);
            panic!("scheduler boom");
        },
    );
    assert!(catch_unwind(AssertUnwindSafe(|| runnable.schedule())).is_err());
    assert_eq!(drops.get(), 1);
    expect_cancelled(&mut task);
    // Miri's leak checker reports the task if the panic leaked a reference.
}

// ---------------------------------------------------------------------------------------------
// Threads.
// ---------------------------------------------------------------------------------------------

#[test]
fn join_blocking_on_another_thread() {
    let h = Harness::default();
    let gate = Arc::new(Gate::default());
    let (runnable, task) = h.spawn({
        let gate = gate.clone();
        async move {
            gate.wait().await;
            yield_now().await;
            99u64
        }
    });
    let joiner = thread::spawn(move || task.join_blocking());
    assert!(!runnable.run());
    let opener = thread::spawn(move || gate.open());
    h.run_until(|| joiner.is_finished());
    opener.join().unwrap();
    assert_eq!(joiner.join().unwrap().unwrap(), 99);
}

#[test]
fn task_awaited_on_another_thread_sees_cancellation() {
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        yield_now().await;
        1
    });
    let tr = task.as_ref();
    let joiner = thread::spawn(move || task.join_blocking());
    assert!(!runnable.run());
    tr.cancel();
    h.run_until(|| joiner.is_finished());
    assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
}

#[test]
fn wake_of_a_scheduled_task_publishes_earlier_writes() {
    // The waker writes a flag and then wakes a task whose runnable is already queued; the runner
    // polls concurrently. Either that poll sees the flag, or the wake schedules the task again:
    // otherwise the wake-up is lost.
    let rounds = if cfg!(miri) { 30 } else { 2_000 };
    for _ in 0..rounds {
        let h = Harness::default();
        let flag = Arc::new(AtomicBool::new(false));
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (runnable, task) = h.spawn({
            let flag = flag.clone();
            let slot = slot.clone();
            let mut first = true;
            poll_fn(move |cx| {
                if flag.load(Acquire) {
                    return Poll::Ready(());
                }
                if std::mem::take(&mut first) {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            })
        });
        assert!(!runnable.run());
        let waker = slot.lock().unwrap().take().unwrap();
        let queued = h.pop().unwrap(); // SCHEDULED, about to run
        let barrier = Arc::new(Barrier::new(2));
        let waking = thread::spawn({
            let barrier = barrier.clone();
            let flag = flag.clone();
            move || {
                barrier.wait();
                flag.store(true, Release);
                waker.wake_by_ref();
                waker // dropped only after the race
            }
        });
        barrier.wait();
        queued.run();
        drop(waking.join().unwrap());
        h.run_all();
        assert!(task.is_done(), "lost wake-up");
    }
}

/// State shared by the concurrent-wake test's future and threads.
#[derive(Default)]
struct Stress {
    issued: AtomicUsize,
    seen: AtomicUsize,
    in_poll: AtomicBool,
    concurrent_polls: AtomicBool,
    polls: AtomicUsize,
    finish: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

#[test]
fn concurrent_wakes_from_four_threads() {
    const THREADS: usize = 4;
    let per_thread = if cfg!(miri) { 50 } else { 10_000 };
    let h = Harness::default();
    let s = Arc::new(Stress::default());
    let (runnable, task) = h.spawn({
        let s = s.clone();
        poll_fn(move |cx| {
            if s.in_poll.swap(true, SeqCst) {
                s.concurrent_polls.store(true, SeqCst);
            }
            let polls = s.polls.fetch_add(1, SeqCst) + 1;
            s.seen.fetch_max(s.issued.load(SeqCst), SeqCst);
            let finish = s.finish.load(SeqCst);
            {
                let mut w = s.waker.lock().unwrap();
                if w.is_none() {
                    *w = Some(cx.waker().clone());
                }
            }
            s.in_poll.store(false, SeqCst);
            if finish {
                Poll::Ready(polls)
            } else {
                Poll::Pending
            }
        })
    });
    assert!(!runnable.run());
    let waker = s.waker.lock().unwrap().clone().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let runner = thread::spawn({
        let (h, stop) = (h.clone(), stop.clone());
        move || {
            while !stop.load(SeqCst) {
                match h.pop() {
                    Some(r) => {
                        r.run();
                    }
                    None => thread::yield_now(),
                }
            }
        }
    });
    let wakers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (s, waker) = (s.clone(), waker.clone());
            thread::spawn(move || {
                for i in 0..per_thread {
                    s.issued.fetch_add(1, SeqCst);
                    if i % 2 == 0 {
                        waker.wake_by_ref();
                    } else {
                        waker.clone().wake();
                    }
                }
            })
        })
        .collect();
    let all_woken = || wakers.iter().all(|w| w.is_finished());
    h.run_until(all_woken);
    for w in wakers {
        w.join().unwrap();
    }
    stop.store(true, SeqCst);
    runner.join().unwrap();
    h.run_all();

    let total = THREADS * per_thread;
    assert_eq!(s.issued.load(SeqCst), total);
    assert_eq!(s.seen.load(SeqCst), total, "a wake-up was lost");
    assert!(!s.concurrent_polls.load(SeqCst), "polled concurrently");
    assert_eq!(h.max_queued(), 1, "queued twice");
    assert_eq!(
        h.schedules() + 1,
        s.polls.load(SeqCst),
        "one poll per schedule"
    );

    s.finish.store(true, SeqCst);
    waker.wake();
    assert_eq!(h.run_all(), 1);
    let polls = task.join_blocking().unwrap();
    assert_eq!(polls, s.polls.load(SeqCst));
    s.waker.lock().unwrap().take();
}

// ---------------------------------------------------------------------------------------------
// spawn_local.
// ---------------------------------------------------------------------------------------------

#[test]
fn current_is_the_task_being_polled_and_only_during_its_poll() {
    let h = Harness::default();
    assert!(super::super::current().is_none());
    let (r, mut task) = h.spawn(async {
        let outer = super::super::current().map(|t| t.id());
        // A task run inline inside this poll (an inline scheduler) is current during its own
        // poll, and this one is current again afterwards.
        let (inner_r, inner) = spawn(
            async { super::super::current().map(|t| t.id()) },
            |_r: Runnable| {},
        );
        let inner_id = inner.id();
        inner_r.run();
        let again = super::super::current().map(|t| t.id());
        (outer, inner, inner_id, again)
    });
    let id = task.id();
    assert!(r.run());
    let Poll::Ready(Ok((outer, mut inner, inner_id, again))) = poll_noop(&mut task) else {
        panic!("the task finished");
    };
    assert_eq!(outer, Some(id));
    assert_eq!(again, Some(id));
    assert!(matches!(poll_noop(&mut inner), Poll::Ready(Ok(Some(i))) if i == inner_id));
    assert!(super::super::current().is_none());
}

#[test]
fn cancel_after_a_panic_marks_it_retrieved() {
    // asyncio: `cancel()` on a done task returns False and clears its `_log_traceback`, so the
    // exception is not reported as "never retrieved" when the task goes away.
    let h = Harness::default();
    let (runnable, task) = h.spawn(async {
        if drops_never_zero() {
            panic!("boom");
        }
    });
    runnable.run();
    let task_ref = task.as_ref();
    assert!(!task_ref.cancel(), "a done task cannot be cancelled");
    assert!(!task.cancel());
    drop(task);
    assert_eq!(
        h.unhandled_count(),
        0,
        "reported although cancel() looked at it"
    );
    assert!(!task_ref.is_cancelled(), "it still ended by its panic");
}
