//! `spawn_local` tasks: their futures run and drop on their own thread only.

#![allow(clippy::unwrap_used, clippy::waker_clone_wake)]

use super::*;

/// A `!Send` future that owns no heap memory, so leaking it is invisible to Miri's leak checker.
struct LocalProbe {
    polls: &'static AtomicUsize,
    drops: &'static AtomicUsize,
    _not_send: PhantomData<*const ()>,
}

impl Future for LocalProbe {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, SeqCst);
        Poll::Ready(())
    }
}

impl Drop for LocalProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn spawn_local_runs_on_its_thread() {
    let h = Harness::default();
    let shared = Rc::new(5);
    let (runnable, mut task) = spawn_local(
        {
            let shared = shared.clone();
            async move {
                yield_now().await;
                Rc::strong_count(&shared)
            }
        },
        h.sched(),
    );
    // The runnable may travel through other threads as long as it is run back here.
    let runnable = thread::spawn(move || runnable).join().unwrap();
    assert!(!runnable.run());
    let again = h.pop().unwrap();
    let again = thread::spawn(move || again).join().unwrap();
    assert!(again.run());
    assert!(matches!(poll_noop(&mut task), Poll::Ready(Ok(2))));
    assert_eq!(Rc::strong_count(&shared), 1, "the future was dropped here");
}

#[test]
fn spawn_local_runnable_dropped_on_its_thread_drops_the_future() {
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let (runnable, mut task) = spawn_local(
        LocalProbe {
            polls: &POLLS,
            drops: &DROPS,
            _not_send: PhantomData,
        },
        h.sched(),
    );
    drop(runnable);
    assert_eq!(DROPS.load(SeqCst), 1);
    expect_cancelled(&mut task);
}

#[test]
fn a_task_is_terminated_once_its_output_was_taken() {
    use futures_core::FusedFuture;
    let (runnable, mut task) = spawn(async { 5 }, |_r: Runnable| {});
    assert!(!task.is_terminated());
    runnable.run();
    assert!(!task.is_terminated(), "done, but the output is still there");
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        Pin::new(&mut task).poll(&mut cx),
        Poll::Ready(Ok(5))
    ));
    assert!(task.is_terminated());
}

fn probe(polls: &'static AtomicUsize, drops: &'static AtomicUsize) -> LocalProbe {
    LocalProbe {
        polls,
        drops,
        _not_send: PhantomData,
    }
}

#[test]
fn spawn_local_run_on_another_thread_panics() {
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let (runnable, mut task) = spawn_local(probe(&POLLS, &DROPS), h.sched());
    let panicked = thread::spawn(move || runnable.run()).join().is_err();
    assert!(panicked);
    assert_eq!(POLLS.load(SeqCst), 0);
    assert_eq!(DROPS.load(SeqCst), 0, "never dropped on the foreign thread");
    // The runnable went back to the scheduler, cancelled; run here, it drops the future here.
    assert_eq!(h.len(), 1, "handed back to the scheduler");
    assert!(!task.is_done());
    assert_eq!(h.run_all(), 1);
    assert_eq!(POLLS.load(SeqCst), 0, "a cancelled task is not polled");
    assert_eq!(DROPS.load(SeqCst), 1, "dropped on its own thread");
    expect_cancelled(&mut task);
}

#[test]
// The owner thread is gone, so the future can only be leaked with its cell: Miri would report
// exactly the leak under test.
#[cfg_attr(miri, ignore)]
fn spawn_local_owner_is_not_mistaken_for_a_later_thread() {
    // A thread-local's address is reused by the next thread once its thread has exited; the
    // owner check must not use it as the thread's identity.
    static POLLS: AtomicUsize = AtomicUsize::new(0);
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let h = Harness::default();
    let sched = h.sched();
    let (runnable, task) = thread::spawn(move || spawn_local(probe(&POLLS, &DROPS), sched))
        .join()
        .unwrap();
    let panicked = thread::spawn(move || runnable.run()).join().is_err();
    assert!(
        panicked,
        "a local task ran on a thread that did not spawn it"
    );
    assert_eq!(POLLS.load(SeqCst), 0);
    // Handed back once; dropped off its (exited) thread again, it is leaked and ends cancelled.
    let again = h.pop().unwrap();
    drop(again);
    assert_eq!(POLLS.load(SeqCst), 0);
    assert_eq!(DROPS.load(SeqCst), 0);
    assert!(task.is_cancelled());
}

#[test]
fn spawn_local_runnable_dropped_on_another_thread_is_handed_back() {
    let h = Harness::default();
    let shared = Rc::new(());
    let (runnable, mut task) = spawn_local(
        {
            let shared = shared.clone();
            async move {
                let _shared = shared;
            }
        },
        h.sched(),
    );
    thread::spawn(move || drop(runnable)).join().unwrap();
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "not dropped on the foreign thread"
    );
    assert!(!task.is_done());
    assert_eq!(h.run_all(), 1);
    assert_eq!(
        Rc::strong_count(&shared),
        1,
        "dropped here, on its own thread"
    );
    expect_cancelled(&mut task);
}

#[test]
// Leaking the cell is the behaviour under test; Miri would report it.
#[cfg_attr(miri, ignore)]
fn spawn_local_runnable_dropped_twice_off_its_thread_leaks_the_whole_cell() {
    let h = Harness::default();
    let shared = Rc::new(());
    let (runnable, mut task) = spawn_local(
        {
            let shared = shared.clone();
            async move {
                let _shared = shared;
            }
        },
        h.sched(),
    );
    let awaiter = task.as_ref();
    thread::spawn(move || drop(runnable)).join().unwrap();
    let again = h.pop().unwrap();
    thread::spawn(move || drop(again)).join().unwrap();
    assert_eq!(h.len(), 0, "handed back only once");
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "leaked, never dropped off its thread"
    );
    // Still resolves (cancelled), and wakes a `TaskRef` awaiter.
    assert!(awaiter.is_cancelled());
    expect_cancelled(&mut task);
    drop(task);
    drop(awaiter);
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "the cell is never freed nor reused"
    );
}

#[test]
fn spawn_local_last_waker_dropped_on_another_thread_is_handed_back() {
    // A pending local task whose only reference left is a waker on another thread: the drop
    // of that waker must not drop (or forget) the `!Send` future there.
    let h = Harness::default();
    let shared = Rc::new(());
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (runnable, task) = spawn_local(
        {
            let shared = shared.clone();
            let slot = slot.clone();
            poll_fn(move |cx| {
                let _keep = &shared;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
        },
        h.sched(),
    );
    let probe = task.as_ref();
    drop(task);
    assert!(!runnable.run());
    let waker = slot.lock().unwrap().take().unwrap();
    drop(probe);
    thread::spawn(move || drop(waker)).join().unwrap();
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "not dropped on the foreign thread"
    );
    assert_eq!(h.run_all(), 1, "handed back to the scheduler");
    assert_eq!(
        Rc::strong_count(&shared),
        1,
        "dropped here, on its own thread"
    );
}

#[test]
// Leaking the cell is the behaviour under test; Miri would report it.
#[cfg_attr(miri, ignore)]
fn spawn_local_last_waker_dropped_elsewhere_after_its_scheduler_is_gone_leaks_the_cell() {
    // The last reference goes on a foreign thread and the scheduler, gone, drops the runnable
    // handed back to it right there: the future must be leaked, not dropped there, and the
    // handed-back runnable's references must be released without freeing the cell.
    let h = Harness::default();
    let shared = Rc::new(());
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let (runnable, task) = spawn_local(
        {
            let shared = shared.clone();
            let slot = slot.clone();
            poll_fn(move |cx| {
                let _keep = &shared;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            })
        },
        h.sched(),
    );
    assert!(!runnable.run());
    let probe = task.as_ref();
    drop(task);
    let waker = slot.lock().unwrap().take().unwrap();
    let sched = Arc::downgrade(&h.0);
    drop(h);
    assert!(sched.upgrade().is_none(), "the scheduler is gone");
    let probe = thread::spawn(move || {
        drop(waker);
        probe
    })
    .join()
    .unwrap();
    assert!(!probe.is_done());
    // The TaskRef was the last reference: dropped off the owner thread with no scheduler.
    thread::spawn(move || drop(probe)).join().unwrap();
    assert_eq!(
        Rc::strong_count(&shared),
        2,
        "leaked, never dropped off its thread"
    );
}

/// Records, at its drop, whether it was dropped on the thread that created it.
struct OwnerCheck {
    owner: thread::ThreadId,
    drops: Arc<AtomicUsize>,
    off_thread: Arc<AtomicUsize>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for OwnerCheck {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if thread::current().id() != self.owner {
            self.off_thread.fetch_add(1, SeqCst);
        }
    }
}

#[test]
fn spawn_local_handle_and_last_waker_dropped_at_once_on_two_threads() {
    // Whichever reference goes last — the handle here or the waker on another thread — the
    // future is dropped once, and here.
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for _ in 0..rounds {
        let h = Harness::default();
        let drops = Arc::new(AtomicUsize::new(0));
        let off_thread = Arc::new(AtomicUsize::new(0));
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let check = OwnerCheck {
            owner: thread::current().id(),
            drops: drops.clone(),
            off_thread: off_thread.clone(),
            _not_send: PhantomData,
        };
        let (runnable, task) = spawn_local(
            {
                let slot = slot.clone();
                poll_fn(move |cx| {
                    let _keep = &check;
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    Poll::<()>::Pending
                })
            },
            h.sched(),
        );
        assert!(!runnable.run());
        let waker = slot.lock().unwrap().take().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let other = {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                drop(waker);
            })
        };
        barrier.wait();
        drop(task);
        other.join().unwrap();
        h.run_all();
        assert_eq!(drops.load(SeqCst), 1, "dropped once");
        assert_eq!(off_thread.load(SeqCst), 0, "dropped off its thread");
    }
}

/// An awaited handle of an idle local task, dropped on its thread (the awaiter was cancelled):
/// the task is cancelled at once — its future dropped, its end published — before the awaiter
/// itself has ended, and its scheduler never sees a runnable for it.
#[test]
fn an_abandoned_awaited_local_task_is_cancelled_inline() {
    let h = Harness::default();
    let drops = Drops::default();
    let token = drops.token();
    let (inner_runnable, inner) = spawn_local(
        async move {
            let _token = token;
            std::future::pending::<()>().await
        },
        h.sched(),
    );
    let inner_ref = inner.as_ref();
    let (outer_runnable, outer) = spawn_local(inner, h.sched());
    assert!(!inner_runnable.run());
    assert!(!outer_runnable.run()); // awaits the inner handle
    let before = h.schedules();
    assert!(outer.cancel());
    let outer_next = h.pop().unwrap();
    assert!(outer_next.run()); // drops the outer future, and the awaited handle with it
    assert!(inner_ref.is_done() && inner_ref.is_cancelled());
    assert_eq!(drops.get(), 1);
    assert_eq!(
        h.schedules(),
        before + 1,
        "only the outer cancel went to the scheduler"
    );
    assert!(h.pop().is_none());
    assert!(outer.is_cancelled());
}
