//! `wait` / `wait_timeout`: asyncio's `wait` over tasks.
//!
//! The CPython cases (Lib/test/test_asyncio/test_tasks.py) are at the end, named after the
//! CPython tests, with CPython's expected sets (here in input order) and its delays (CPython
//! runs them on a virtual clock; here they are real, and each task's deadline is fixed before
//! `wait` computes its timeout, so that equal delays keep CPython's order).
//!
//! Ported (11): test_wait, test_wait_first_completed, test_wait_really_done,
//! test_wait_first_exception, test_wait_first_exception_in_wait, test_wait_with_exception,
//! test_wait_with_timeout, test_wait_concurrent_complete, test_wait_with_iterator_of_tasks,
//! test_yield_wait_does_not_shield_cancel, test_wait_invalid_args (its Rust part).
//! Left out (2): test_wait_duplicate_coroutines (a `Task` is not `Clone`: one task cannot be
//! passed twice); test_wait_errors (an empty set is a `ValueError` in asyncio; evloop's `wait`
//! returns `([], [])` at once, as documented and tested in `wait_on_nothing_returns_at_once`,
//! and an invalid `return_when` cannot be written: `ReturnWhen` is an enum).
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use evloop::{LoopFuture, ReturnWhen, Task, sleep, sleep_until, wait, wait_timeout, yield_now};

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

fn after(ms: u64, value: u64) -> Task<u64> {
    evloop::spawn(async move {
        sleep(Duration::from_millis(ms)).await;
        value
    })
}

#[test]
fn first_completed_returns_as_soon_as_one_ends() {
    block_on(async {
        let start = Instant::now();
        let tasks = vec![after(10_000, 1), after(5, 2), after(10_000, 3)];
        let (done, pending) = wait(tasks, ReturnWhen::FirstCompleted).await;
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(done.len(), 1);
        assert_eq!(pending.len(), 2);
        // Nothing was cancelled: the pending tasks still run.
        assert!(pending.iter().all(|t| !t.is_done() && !t.is_cancelled()));
        let ids: Vec<_> = pending.iter().map(Task::id).collect();
        assert!(ids[0] < ids[1], "pending keeps input order");
        for t in done {
            assert_eq!(t.await.expect("ok"), 2);
        }
        for t in &pending {
            t.cancel();
        }
    });
}

#[test]
fn all_completed_waits_for_every_task() {
    block_on(async {
        let start = Instant::now();
        let tasks = vec![after(20, 1), after(5, 2), after(10, 3)];
        let (done, pending) = wait(tasks, ReturnWhen::AllCompleted).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(pending.is_empty());
        let mut outputs = Vec::new();
        for t in done {
            outputs.push(t.await.expect("ok"));
        }
        assert_eq!(outputs, vec![1, 2, 3], "done keeps input order");
    });
}

#[test]
fn first_exception_returns_on_a_panic() {
    block_on(async {
        let slow = after(10_000, 1);
        let boom: Task<u64> = evloop::spawn(async {
            sleep(Duration::from_millis(5)).await;
            panic!("boom")
        });
        let quick = after(1, 3);
        let (done, pending) = wait([slow, boom, quick], ReturnWhen::FirstException).await;
        assert_eq!(done.len(), 2, "the quick one and the panicking one");
        assert_eq!(pending.len(), 1);
        let mut done = done.into_iter();
        let boom = done.next().expect("boom");
        assert_eq!(
            boom.await.expect_err("panicked").panic_message(),
            Some("boom")
        );
        assert_eq!(done.next().expect("quick").await.expect("ok"), 3);
        pending[0].cancel();
    });
}

#[test]
fn first_exception_without_panics_is_all_completed() {
    block_on(async {
        let (done, pending) = wait([after(5, 1), after(10, 2)], ReturnWhen::FirstException).await;
        assert_eq!((done.len(), pending.len()), (2, 0));
    });
}

#[test]
fn cancelled_tasks_count_as_completed() {
    block_on(async {
        let victim = after(10_000, 1);
        victim.cancel();
        let (done, pending) = wait([victim, after(10_000, 2)], ReturnWhen::FirstCompleted).await;
        assert_eq!((done.len(), pending.len()), (1, 1));
        assert!(done[0].is_cancelled());
        pending[0].cancel();
    });
}

#[test]
fn wait_timeout_returns_the_split_at_the_deadline() {
    block_on(async {
        let start = Instant::now();
        let tasks = vec![after(5, 1), after(10_000, 2)];
        let (done, pending) =
            wait_timeout(tasks, ReturnWhen::AllCompleted, Duration::from_millis(30)).await;
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!((done.len(), pending.len()), (1, 1));
        pending[0].cancel();
        // A timeout longer than needed changes nothing.
        let (done, pending) = wait_timeout(
            [after(1, 1)],
            ReturnWhen::AllCompleted,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!((done.len(), pending.len()), (1, 0));
    });
}

#[test]
fn wait_on_nothing_returns_at_once() {
    block_on(async {
        let (done, pending) = wait(Vec::<Task<()>>::new(), ReturnWhen::AllCompleted).await;
        assert!(done.is_empty() && pending.is_empty());
    });
}

/// A task that sleeps until `deadline`, then returns `value`.
fn at(deadline: Instant, value: u64) -> Task<u64> {
    evloop::spawn(async move {
        sleep_until(deadline).await;
        value
    })
}

/// A task that yields to the loop `turns` times, then returns `value`.
fn after_turns(turns: usize, value: u64) -> Task<u64> {
    evloop::spawn(async move {
        for _ in 0..turns {
            yield_now().await;
        }
        value
    })
}

fn ids<T>(tasks: &[Task<T>]) -> Vec<evloop::TaskId> {
    tasks.iter().map(Task::id).collect()
}

/// asyncio's rule: `wait` reports as done every task that is done when the waiting task
/// resumes. Here the second task ends in the same iteration as the first, after the first has
/// woken the waiter: both must be reported done, in every mode.
#[test]
fn a_task_ending_in_the_same_iteration_as_the_first_is_reported_done() {
    block_on(async {
        for mode in [
            ReturnWhen::FirstCompleted,
            ReturnWhen::FirstException,
            ReturnWhen::AllCompleted,
        ] {
            let (a, b) = (after_turns(1, 1), after_turns(1, 2));
            let want = vec![a.id(), b.id()];
            let (done, pending) = wait([a, b], mode).await;
            assert_eq!(ids(&done), want, "{mode:?}");
            assert!(pending.is_empty(), "{mode:?}");
        }
        // FIRST_EXCEPTION: the panicking task wakes the waiter; the other ends after it in
        // the same iteration.
        let boom: Task<u64> = evloop::spawn(async {
            yield_now().await;
            panic!("boom")
        });
        let quiet = after_turns(1, 2);
        let want = vec![boom.id(), quiet.id()];
        let (done, pending) = wait([boom, quiet], ReturnWhen::FirstException).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
    });
}

#[test]
fn test_wait() {
    block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_millis(100), 1);
        let b = at(start + Duration::from_millis(150), 2);
        let want = vec![b.id(), a.id()];
        let (done, pending) = wait([b, a], ReturnWhen::AllCompleted).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(150));
        // Doing it again should take no time (here: it is ready on its first poll).
        let again = wait(done, ReturnWhen::AllCompleted);
        let mut again = pin!(again);
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready((done, pending)) = again.as_mut().poll(&mut cx) else {
            panic!("a wait on done tasks waited");
        };
        assert_eq!((done.len(), pending.len()), (2, 0));
        42
    });
}

#[test]
fn test_wait_first_completed() {
    block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_secs(10), 1);
        let b = at(start + Duration::from_millis(100), 2);
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = wait([b, a], ReturnWhen::FirstCompleted).await;
        assert_eq!(ids(&done), [b_id]);
        assert_eq!(ids(&pending), [a_id]);
        assert!(!pending[0].is_done());
        assert!(done[0].is_done());
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(10));
        for t in done {
            assert_eq!(t.await.unwrap(), 2);
        }
        pending[0].cancel();
    });
}

/// There is a possibility that some tasks in the pending list became done but their
/// callbacks have not all been called yet (CPython's comment): `a` ends after one turn,
/// `b` after two; asyncio resumes the waiter late enough that both are done.
#[test]
fn test_wait_really_done() {
    block_on(async {
        let a = after_turns(1, 1);
        let b = after_turns(2, 2);
        let want = vec![b.id(), a.id()];
        let (done, pending) = wait([b, a], ReturnWhen::FirstCompleted).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        let outputs: Vec<u64> = evloop::gather(done)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(outputs, [2, 1]);
    });
}

#[test]
fn test_wait_first_exception() {
    block_on(async {
        let start = Instant::now();
        // first_exception, task already has exception
        let a = at(start + Duration::from_secs(10), 1);
        let b: Task<u64> = evloop::spawn(async { panic!("err") });
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = wait([b, a], ReturnWhen::FirstException).await;
        assert_eq!(ids(&done), [b_id]);
        assert_eq!(ids(&pending), [a_id]);
        assert!(start.elapsed() < Duration::from_secs(10));
        let mut done = done.into_iter();
        let err = done.next().unwrap().await.unwrap_err();
        assert_eq!(err.panic_message(), Some("err"));
        pending[0].cancel();
    });
}

#[test]
fn test_wait_first_exception_in_wait() {
    block_on(async {
        let start = Instant::now();
        // first_exception, exception during waiting
        let a = at(start + Duration::from_secs(10), 1);
        let b: Task<u64> = evloop::spawn(async move {
            sleep_until(start + Duration::from_millis(10)).await;
            panic!("err")
        });
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) = wait([b, a], ReturnWhen::FirstException).await;
        assert_eq!(ids(&done), [b_id]);
        assert_eq!(ids(&pending), [a_id]);
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(10) && elapsed < Duration::from_secs(10));
        assert!(done[0].is_done());
        drop(done);
        pending[0].cancel();
    });
}

#[test]
fn test_wait_with_exception() {
    block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_millis(100), 1);
        let b: Task<u64> = evloop::spawn(async move {
            sleep_until(start + Duration::from_millis(150)).await;
            panic!("really")
        });
        let (done, pending) = wait([b, a], ReturnWhen::AllCompleted).await;
        assert_eq!(done.len(), 2);
        assert!(pending.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(150));
        // Again: no time.
        let (done, pending) = wait(done, ReturnWhen::AllCompleted).await;
        assert_eq!((done.len(), pending.len()), (2, 0));
        let errors = evloop::gather(done)
            .await
            .into_iter()
            .filter(|r| r.is_err())
            .count();
        assert_eq!(errors, 1);
    });
}

#[test]
fn test_wait_with_timeout() {
    block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_millis(100), 1);
        // CPython's b ends at 0.15 s, after the 0.11 s timeout; 1.5 s here, so that a loaded
        // machine's late timers cannot make it due in the timeout's iteration.
        let b = at(start + Duration::from_millis(1500), 2);
        let (a_id, b_id) = (a.id(), b.id());
        let (done, pending) =
            wait_timeout([b, a], ReturnWhen::AllCompleted, Duration::from_millis(110)).await;
        assert_eq!(ids(&done), [a_id]);
        assert_eq!(ids(&pending), [b_id]);
        assert!(start.elapsed() >= Duration::from_millis(110));
        pending[0].cancel();
    });
}

#[test]
fn test_wait_concurrent_complete() {
    block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_millis(100), 1);
        // As in test_wait_with_timeout: CPython's 0.15 s, 10 times longer here.
        let b = at(start + Duration::from_millis(1500), 2);
        let (a_id, b_id) = (a.id(), b.id());
        // The timeout is due with `a` (CPython: both at 0.1 on its virtual clock).
        let (done, pending) =
            wait_timeout([b, a], ReturnWhen::AllCompleted, Duration::from_millis(100)).await;
        assert_eq!(ids(&done), [a_id]);
        assert_eq!(ids(&pending), [b_id]);
        assert!(start.elapsed() >= Duration::from_millis(100));
        pending[0].cancel();
    });
}

#[test]
fn test_wait_with_iterator_of_tasks() {
    let res = block_on(async {
        let start = Instant::now();
        let a = at(start + Duration::from_millis(100), 1);
        let b = at(start + Duration::from_millis(150), 2);
        let want = vec![b.id(), a.id()];
        let (done, pending) = wait(std::iter::once(b).chain([a]), ReturnWhen::AllCompleted).await;
        assert_eq!(ids(&done), want);
        assert!(pending.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(150));
        42
    });
    assert_eq!(res, 42);
}

#[test]
fn test_wait_invalid_args() {
    // CPython: a future or a coroutine instead of a collection is a TypeError; here it does
    // not compile. An empty list is a ValueError there; `([], [])` here (see the header).
    block_on(async {
        let (done, pending) =
            wait(std::iter::empty::<Task<()>>(), ReturnWhen::FirstCompleted).await;
        assert!(done.is_empty() && pending.is_empty());
    });
}

/// Cancelling outer() makes wait() return early (here: dropped with outer's future), leaves
/// inner() running.
#[test]
fn test_yield_wait_does_not_shield_cancel() {
    block_on(async {
        let lp = evloop::get_running_loop().unwrap();
        let proof = Rc::new(Cell::new(0));
        let waiter: LoopFuture<()> = lp.create_future();
        let (p, w) = (proof.clone(), waiter.clone());
        let inner = async move {
            w.await.unwrap();
            p.set(p.get() + 1);
        };
        let p = proof.clone();
        let outer = evloop::spawn(async move {
            let (_d, _p) = wait([evloop::spawn(inner)], ReturnWhen::AllCompleted).await;
            p.set(p.get() + 100);
        });
        yield_now().await; // run_briefly
        outer.cancel();
        assert!(outer.await.unwrap_err().is_cancelled());
        waiter.set_result(()).unwrap();
        yield_now().await; // run_briefly
        yield_now().await;
        assert_eq!(proof.get(), 1);
    });
}
