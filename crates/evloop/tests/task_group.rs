//! `TaskGroup`, and the `task_group`/`join_set` scopes: structured concurrency, asyncio's
//! TaskGroup semantics (CPython's own cases are in `taskgroups.rs`).

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use evloop::{
    JoinError, TaskGroup, TaskGroupError, join_set, sleep, task_group, timeout, yield_now,
};

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

/// Counts drops of a child's future and whether it ran to the end.
#[derive(Clone, Default)]
struct Probe {
    dropped: Rc<Cell<u32>>,
    completed: Rc<Cell<bool>>,
}

struct OnDrop(Rc<Cell<u32>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

impl Probe {
    /// A child that sleeps `ms` and then succeeds.
    fn child(&self, ms: u64) -> impl Future<Output = Result<u64, String>> + 'static {
        let guard = OnDrop(self.dropped.clone());
        let completed = self.completed.clone();
        async move {
            let _guard = guard;
            sleep(Duration::from_millis(ms)).await;
            completed.set(true);
            Ok(ms)
        }
    }
}

#[test]
fn all_children_succeed() {
    block_on(async {
        let group = TaskGroup::new();
        let handles: Vec<_> = [15u64, 5, 10]
            .into_iter()
            .map(|ms| {
                group.spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    Ok::<_, String>(ms)
                })
            })
            .collect();
        assert_eq!(group.len(), 3);
        let start = Instant::now();
        assert!(group.wait().await.is_ok());
        assert!(start.elapsed() >= Duration::from_millis(10));
        let mut outputs = Vec::new();
        for h in handles {
            assert!(h.is_done());
            outputs.push(h.await.expect("child output"));
        }
        assert_eq!(outputs, vec![15, 5, 10]);
    });
}

#[test]
fn an_empty_group_waits_for_nothing() {
    block_on(async {
        let group = TaskGroup::<String>::new();
        assert!(group.is_empty());
        assert!(group.wait().await.is_ok());
    });
}

#[test]
fn first_failure_cancels_the_siblings() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let start = Instant::now();
        let group = TaskGroup::new();
        let sibling = group.spawn(p.child(60_000));
        let other_sibling = group.spawn(p.child(60_000));
        let failing = group.spawn(async {
            sleep(Duration::from_millis(10)).await;
            Err::<u64, _>("bad input".to_string())
        });
        let failures = group.wait().await.expect_err("a child failed");
        assert!(start.elapsed() < Duration::from_secs(60));
        assert_eq!(failures.len(), 1);
        assert!(matches!(&failures[0], TaskGroupError::Failed(e) if e == "bad input"));
        assert_eq!(failures[0].to_string(), "task failed: bad input");
        // The siblings were cancelled: their futures were dropped, they never completed.
        assert_eq!(p.dropped.get(), 2);
        assert!(!p.completed.get());
        assert!(sibling.await.expect_err("cancelled").is_cancelled());
        assert!(other_sibling.is_cancelled());
        // The failed child's error went to the group; its handle reads cancelled.
        assert!(failing.await.expect_err("failed").is_cancelled());
    });
    assert!(!probe.completed.get());
}

#[test]
fn a_panicking_child_is_a_failure_and_cancels_the_siblings() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let group = TaskGroup::<String>::new();
        group.spawn(p.child(60_000));
        group.spawn(async {
            yield_now().await;
            if true {
                panic!("child exploded");
            }
            Ok(())
        });
        let failures = group.wait().await.expect_err("a child panicked");
        assert_eq!(failures.len(), 1);
        assert!(failures[0].is_panic());
        assert_eq!(failures[0].panic_message(), Some("child exploded"));
        assert_eq!(p.dropped.get(), 1);
        assert!(!p.completed.get());
    });
}

#[test]
fn wait_returns_every_failure_and_no_cancellation() {
    block_on(async {
        let group = TaskGroup::new();
        // A child cancelled from outside is not a failure either.
        let outsider = group.spawn(async {
            sleep(Duration::from_secs(60)).await;
            Ok(0)
        });
        outsider.cancel();
        group.spawn(async { Err::<u8, _>(1u8) });
        // Siblings cancelled by the group are not failures: only the one error comes back.
        group.spawn(async {
            sleep(Duration::from_secs(60)).await;
            Err::<(), _>(2)
        });
        let failures = group.wait().await.expect_err("one failure");
        let errors: Vec<u8> = failures
            .into_iter()
            .filter_map(TaskGroupError::into_failure)
            .collect();
        assert_eq!(errors, vec![1]);
    });
}

#[test]
fn failures_in_the_same_iteration_are_all_reported() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let group = TaskGroup::new();
        let slow = group.spawn(p.child(60_000));
        // Both timers fire in the same loop iteration: both children fail before the
        // group's cancellation (a callback on the next iteration) reaches them.
        let deadline = Instant::now() + Duration::from_millis(10);
        for code in ["one", "two"] {
            group.spawn(async move {
                evloop::sleep_until(deadline).await;
                Err::<u64, _>(code.to_string())
            });
        }
        let failures = group.wait().await.expect_err("two failures");
        let errors: Vec<String> = failures
            .into_iter()
            .filter_map(TaskGroupError::into_failure)
            .collect();
        assert_eq!(errors, vec!["one", "two"]);
        assert!(slow.is_cancelled());
        assert_eq!(p.dropped.get(), 1);
    });
    assert!(!probe.completed.get());
}

#[test]
fn cancel_stops_every_child_without_failure() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let group = TaskGroup::new();
        let a = group.spawn(p.child(60_000));
        group.spawn(p.child(60_000));
        yield_now().await;
        group.cancel();
        // Spawning into an aborting group: cancelled before it starts.
        let late = group.spawn(p.child(0));
        assert!(group.wait().await.is_ok());
        assert!(a.is_cancelled() && late.is_cancelled());
        assert_eq!(p.dropped.get(), 3);
        assert!(!p.completed.get());
    });
}

#[test]
fn dropping_the_group_cancels_its_children() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let handle = {
            let group = TaskGroup::new();
            let h = group.spawn(p.child(60_000));
            yield_now().await; // the child starts and sleeps
            assert_eq!(p.dropped.get(), 0);
            h
            // `group` is dropped here without being waited for.
        };
        assert!(handle.await.expect_err("cancelled").is_cancelled());
        assert_eq!(p.dropped.get(), 1);
        assert!(!p.completed.get());
    });
}

#[test]
fn dropping_the_wait_future_cancels_the_children() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let group = TaskGroup::new();
        let h = group.spawn(p.child(60_000));
        // asyncio: cancelling the task that waits on the group cancels the group's children.
        assert!(
            timeout(Duration::from_millis(10), group.wait())
                .await
                .is_err()
        );
        assert!(h.await.expect_err("cancelled").is_cancelled());
        assert_eq!(p.dropped.get(), 1);
    });
}

#[test]
fn children_may_borrow_nothing_but_share_rc_state() {
    // Children are local tasks: `!Send` state such as `Rc` is fine.
    let counter = Rc::new(Cell::new(0));
    let c = counter.clone();
    block_on(async move {
        let group = TaskGroup::<()>::new();
        for _ in 0..100 {
            let c = c.clone();
            group.spawn(async move {
                yield_now().await;
                c.set(c.get() + 1);
                Ok(())
            });
        }
        group.wait().await.expect("all succeed");
    });
    assert_eq!(counter.get(), 100);
}

#[test]
#[should_panic(expected = "no running event loop")]
fn spawn_outside_a_running_loop_panics() {
    let group = TaskGroup::<()>::new();
    group.spawn(async { Ok(()) });
}

/// Panics when dropped: a child or body whose cleanup fails.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

#[test]
fn a_cancelled_childs_destructor_panic_is_a_failure_of_the_group() {
    block_on(async {
        let group = TaskGroup::<String>::new();
        group.spawn(async {
            let _cleanup = PanicOnDrop("cleanup failed");
            sleep(Duration::from_secs(60)).await;
            Ok(())
        });
        yield_now().await; // the child starts
        group.cancel();
        let failures = group.wait().await.expect_err("the cleanup panicked");
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].panic_message(), Some("cleanup failed"));
    });
}

#[test]
fn the_scope_returns_the_body_value_once_every_child_has_ended() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let start = Instant::now();
        let value = task_group(async |g| {
            g.spawn(p.child(20));
            g.spawn(p.child(10));
            Ok::<_, String>("body done")
        })
        .await;
        assert_eq!(value.expect("the body value"), "body done");
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(p.completed.get());
        assert_eq!(p.dropped.get(), 2);
    });
}

#[test]
fn an_err_from_the_body_cancels_the_children_and_is_returned() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let parse = |s: &str| s.parse::<u32>().map_err(|e| e.to_string());
        let errors = task_group(async |g| {
            let child = g.spawn(p.child(60_000));
            yield_now().await;
            let n = parse("not a number")?; // leaves the scope early
            child.cancel();
            Ok(n)
        })
        .await
        .expect_err("the body failed");
        assert_eq!(
            errors.failures().collect::<Vec<_>>(),
            [&"invalid digit found in string".to_string()]
        );
        // When the scope returned, the child had been cancelled and dropped.
        assert_eq!(p.dropped.get(), 1);
        assert!(!p.completed.get());
    });
}

#[test]
fn a_panic_in_the_body_cancels_the_children_and_is_returned() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let errors = task_group(async |g| {
            g.spawn(p.child(60_000));
            yield_now().await;
            if true {
                panic!("body exploded");
            }
            Ok::<(), String>(())
        })
        .await
        .expect_err("the body panicked");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.errors()[0].panic_message(), Some("body exploded"));
        assert_eq!(p.dropped.get(), 1);
    });
}

#[test]
fn a_failing_child_cancels_the_body_at_its_await() {
    block_on(async {
        let body_reached_the_end = Rc::new(Cell::new(false));
        let end = body_reached_the_end.clone();
        let start = Instant::now();
        let errors = task_group(async |g| {
            g.spawn(async {
                sleep(Duration::from_millis(5)).await;
                Err::<(), _>("child failed".to_string())
            });
            sleep(Duration::from_secs(60)).await;
            end.set(true);
            Ok(())
        })
        .await
        .expect_err("a child failed");
        assert!(start.elapsed() < Duration::from_secs(60));
        assert!(!body_reached_the_end.get());
        assert_eq!(
            errors.to_string(),
            "1 error in the task group: task failed: child failed"
        );
    });
}

#[test]
fn errors_keep_their_order_and_display_them_all() {
    block_on(async {
        let errors = task_group(async |g| {
            // Both fail in the same iteration, before the group's cancellation reaches them.
            g.spawn(async { Err::<(), _>("first".to_string()) });
            g.spawn(async {
                if true {
                    panic!("second");
                }
                Ok(())
            });
            sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await
        .expect_err("two failures");
        assert_eq!(
            errors.to_string(),
            "2 errors in the task group: task failed: first; task panicked: second"
        );
        assert_eq!(errors.panics().count(), 1);
        let kinds: Vec<bool> = errors.into_iter().map(|e| e.is_panic()).collect();
        assert_eq!(kinds, [false, true]);
    });
}

#[test]
fn dropping_the_scope_future_drops_every_child_before_it_returns() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let mut children = Vec::new();
        let scope = task_group(async |g| {
            children.push(g.spawn(p.child(60_000)));
            children.push(g.spawn(p.child(60_000)));
            sleep(Duration::from_secs(60)).await;
            Ok::<_, String>(())
        });
        // The timeout drops the scope future (as cancelling the enclosing task would).
        assert!(timeout(Duration::from_millis(10), scope).await.is_err());
        // Synchronously: both futures were dropped before the drop returned.
        assert_eq!(p.dropped.get(), 2);
        // Their tasks end (cancelled) at their next scheduling point.
        for child in children {
            assert!(child.await.expect_err("cancelled").is_cancelled());
        }
        assert!(!p.completed.get());
    });
}

#[test]
fn join_next_returns_outcomes_as_the_children_finish() {
    block_on(async {
        let seen = join_set(async |set| {
            assert!(set.join_next().await.is_none(), "empty at first");
            for ms in [30u64, 10, 20] {
                set.spawn(async move {
                    sleep(Duration::from_millis(ms)).await;
                    ms
                });
            }
            let cancelled = set.spawn(async {
                sleep(Duration::from_secs(60)).await;
                0
            });
            cancelled.cancel();
            assert_eq!(set.len(), 4);
            let mut seen = Vec::new();
            while let Some(outcome) = set.join_next().await {
                seen.push(outcome.map_err(|e| e.is_cancelled()));
            }
            assert!(set.is_empty());
            Ok::<_, String>(seen)
        })
        .await
        .expect("no failure");
        assert_eq!(seen, [Err(true), Ok(10), Ok(20), Ok(30)]);
    });
}

#[test]
fn join_set_children_may_return_err_as_a_plain_value() {
    block_on(async {
        let out = join_set(async |set| {
            set.spawn(async { "x".parse::<u8>().map_err(|_| "not a number") });
            let first = set.join_next().await;
            Ok::<_, ()>(first)
        })
        .await
        .expect("an Err child is no failure");
        assert!(matches!(out, Some(Ok(Err("not a number")))));
    });
}

#[test]
fn a_panicking_join_set_child_cancels_the_body_and_the_siblings() {
    let probe = Probe::default();
    let p = probe.clone();
    block_on(async move {
        let errors = join_set(async |set| {
            let sibling = p.child(60_000);
            set.spawn(async move { sibling.await.unwrap_or(0) });
            set.spawn(async {
                yield_now().await;
                panic!("join set child exploded")
            });
            // Cancelled inside this call: a panic never comes out of join_next.
            let first: Option<Result<u64, JoinError>> = set.join_next().await;
            unreachable!("the body was cancelled, got {first:?}");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        })
        .await
        .expect_err("a child panicked");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors.errors()[0].panic_message(),
            Some("join set child exploded")
        );
        assert_eq!(p.dropped.get(), 1);
        assert!(!p.completed.get());
    });
}

#[test]
fn join_set_cancel_stops_the_rest_without_failure() {
    block_on(async {
        let outcomes = join_set(async |set| {
            set.spawn(async { 1 });
            for _ in 0..2 {
                set.spawn(async {
                    sleep(Duration::from_secs(60)).await;
                    2
                });
            }
            let first = set.join_next().await;
            set.cancel();
            let mut rest = Vec::new();
            while let Some(outcome) = set.join_next().await {
                rest.push(outcome.map_err(|e| e.is_cancelled()));
            }
            Ok::<_, ()>((first.map(|r| r.ok()), rest))
        })
        .await
        .expect("cancelling is no failure");
        assert_eq!(outcomes, (Some(Some(1)), vec![Err(true), Err(true)]));
    });
}
