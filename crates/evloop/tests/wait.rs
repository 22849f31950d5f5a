//! `wait` / `wait_timeout`: asyncio's `wait` over tasks.

use std::future::Future;
use std::time::{Duration, Instant};

use evloop::{ReturnWhen, Task, sleep, wait, wait_timeout};

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
