//! The task model asyncio users expect (issue 10): names at spawn, eager tasks (Python 3.12's
//! `eager_task_factory` / `eager_start`), and task-local context (asyncio copies the
//! `contextvars` context into each task; evloop's typed equivalent is `TaskLocal`).
//!
//! Eager-task cases follow CPython 3.12's Lib/test/test_asyncio/test_eager_task_factory.py
//! (not in the 3.11 test suite installed here): the names say which behaviour they check.
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use evloop::{EventLoop, TaskBuilder, TaskLocal};

#[test]
fn test_task_name_at_spawn() {
    evloop::run(async {
        let t = TaskBuilder::new()
            .name("fetcher")
            .spawn(async { evloop::current_task().unwrap().unwrap().name() });
        assert_eq!(t.name(), "fetcher");
        // The name is set before the task first runs.
        assert_eq!(t.await.unwrap(), "fetcher");
        let plain = evloop::spawn(async {});
        assert_eq!(plain.name(), format!("Task-{}", plain.id()));
        plain.set_name("renamed");
        assert_eq!(plain.name(), "renamed");
    })
    .unwrap();
}

#[test]
fn test_eager_task_factory_set_task_factory() {
    let lp = EventLoop::new().unwrap();
    assert!(!lp.eager_tasks());
    lp.set_eager_tasks(true);
    assert!(lp.eager_tasks());
}

/// A task that completes in its eager first step is done when `create_task` returns, and its
/// code ran before the next line of the spawner.
#[test]
fn test_eager_completion() {
    let lp = EventLoop::new().unwrap();
    lp.set_eager_tasks(true);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let probe = lp.clone();
    lp.run_until_complete(async move {
        let l2 = l.clone();
        let t = probe.create_task(async move {
            l2.borrow_mut().push("child");
            42
        });
        l.borrow_mut().push("parent");
        assert!(t.is_done());
        assert_eq!(t.await.unwrap(), 42);
    })
    .unwrap();
    assert_eq!(*log.borrow(), ["child", "parent"]);
}

/// A task that suspends in its first step goes on like any task; it ran up to the suspension.
#[test]
fn test_eager_blocking() {
    evloop::run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let t = TaskBuilder::new().eager(true).spawn(async move {
            l.borrow_mut().push("start");
            evloop::yield_now().await;
            l.borrow_mut().push("end");
            1
        });
        assert_eq!(*log.borrow(), ["start"]);
        assert!(!t.is_done());
        assert_eq!(t.await.unwrap(), 1);
        assert_eq!(*log.borrow(), ["start", "end"]);
    })
    .unwrap();
}

/// Inside its eager step the task is the current task; after it, the spawner is again.
#[test]
fn test_eager_current_task() {
    evloop::run(async {
        let outer = evloop::spawn(async {
            let me = evloop::current_task().unwrap().unwrap().id();
            let child = TaskBuilder::new()
                .eager(true)
                .spawn(async { evloop::current_task().unwrap().unwrap().id() });
            let child_id = child.id();
            assert_eq!(evloop::current_task().unwrap().unwrap().id(), me);
            assert_eq!(child.await.unwrap(), child_id);
        });
        outer.await.unwrap();
    })
    .unwrap();
}

/// A panic in the eager step fails the task; it does not unwind into the spawner.
#[test]
fn test_eager_exception() {
    let lp = EventLoop::new().unwrap();
    lp.set_exception_handler(Some(|_: &EventLoop, _: &evloop::ExceptionContext| {}));
    let probe = lp.clone();
    let err = lp
        .run_until_complete(async move {
            let t = TaskBuilder::new()
                .eager(true)
                .spawn_on(&probe, async { panic!("eager boom") });
            assert!(t.is_done());
            t.await.unwrap_err()
        })
        .unwrap();
    assert_eq!(err.panic_message(), Some("eager boom"));
}

/// Outside the running loop an eager task is scheduled as usual (asyncio starts it eagerly only
/// while the loop runs).
#[test]
fn test_eager_task_not_running_loop_is_scheduled() {
    let lp = EventLoop::new().unwrap();
    lp.set_eager_tasks(true);
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let t = lp.create_task(async move { r.set(true) });
    assert!(!ran.get());
    lp.run_until_complete(t).unwrap().unwrap();
    assert!(ran.get());
}

/// Per-spawn choice wins over the loop's default.
#[test]
fn test_eager_per_spawn_overrides_loop() {
    let lp = EventLoop::new().unwrap();
    lp.set_eager_tasks(true);
    let probe = lp.clone();
    lp.run_until_complete(async move {
        let lazy = TaskBuilder::new().eager(false).spawn_on(&probe, async {});
        assert!(!lazy.is_done());
        lazy.await.unwrap();
    })
    .unwrap();
}

static REQUEST_ID: TaskLocal<u32> = TaskLocal::new();
static USER: TaskLocal<String> = TaskLocal::new();

/// asyncio: a task runs in a copy of the context current when it was created.
#[test]
fn test_context_inherited_by_child_tasks() {
    evloop::run(REQUEST_ID.scope(7, async {
        let child = evloop::spawn(async {
            let grandchild = evloop::spawn(async { REQUEST_ID.get() });
            (REQUEST_ID.get(), grandchild.await.unwrap())
        });
        assert_eq!(child.await.unwrap(), (Some(7), Some(7)));
    }))
    .unwrap();
}

/// The child keeps a snapshot: a scope the parent enters later does not change it.
#[test]
fn test_context_is_a_snapshot_at_spawn() {
    evloop::run(async {
        let gate = Rc::new(Cell::new(false));
        let g = gate.clone();
        let child = REQUEST_ID.sync_scope(1, || {
            evloop::spawn(async move {
                while !g.get() {
                    evloop::yield_now().await;
                }
                REQUEST_ID.get()
            })
        });
        REQUEST_ID
            .scope(2, async {
                gate.set(true);
                assert_eq!(child.await.unwrap(), Some(1));
            })
            .await;
    })
    .unwrap();
}

/// Nested scopes override and then restore; keys are independent.
#[test]
fn test_context_scopes_override_and_restore() {
    evloop::run(async {
        assert_eq!(REQUEST_ID.get(), None);
        USER.scope("ann".to_string(), async {
            REQUEST_ID
                .scope(1, async {
                    assert_eq!(REQUEST_ID.get(), Some(1));
                    REQUEST_ID
                        .scope(2, async {
                            evloop::yield_now().await;
                            assert_eq!(REQUEST_ID.get(), Some(2));
                            assert_eq!(USER.get().as_deref(), Some("ann"));
                        })
                        .await;
                    assert_eq!(REQUEST_ID.get(), Some(1));
                })
                .await;
            assert_eq!(REQUEST_ID.get(), None);
            USER.with(|u| assert_eq!(u.map(String::as_str), Some("ann")));
        })
        .await;
        assert_eq!(USER.get(), None);
    })
    .unwrap();
}

/// Two tasks in different scopes interleave without seeing each other's values.
#[test]
fn test_context_tasks_are_isolated() {
    evloop::run(async {
        let a = evloop::spawn(REQUEST_ID.scope(1, async {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(REQUEST_ID.get());
                evloop::yield_now().await;
            }
            seen
        }));
        let b = evloop::spawn(REQUEST_ID.scope(2, async {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(REQUEST_ID.get());
                evloop::yield_now().await;
            }
            seen
        }));
        let plain = evloop::spawn(async { REQUEST_ID.get() });
        assert_eq!(a.await.unwrap(), vec![Some(1); 3]);
        assert_eq!(b.await.unwrap(), vec![Some(2); 3]);
        assert_eq!(plain.await.unwrap(), None);
    })
    .unwrap();
}

/// Callbacks run in the context of the code that scheduled them (asyncio's `call_soon` copies
/// the current context), not in whatever runs around them.
#[test]
fn test_context_captured_by_callbacks() {
    evloop::run(REQUEST_ID.scope(5, async {
        let seen = Rc::new(Cell::new(Some(0)));
        let s = seen.clone();
        evloop::get_running_loop()
            .unwrap()
            .call_soon(move || s.set(REQUEST_ID.get()));
        evloop::yield_now().await;
        evloop::yield_now().await;
        assert_eq!(seen.get(), Some(5));
        let later = Rc::new(Cell::new(None));
        let l = later.clone();
        evloop::get_running_loop()
            .unwrap()
            .call_later(std::time::Duration::ZERO, move || l.set(REQUEST_ID.get()));
        while later.get().is_none() {
            evloop::yield_now().await;
        }
        assert_eq!(later.get(), Some(5));
    }))
    .unwrap();
    // Scheduled outside every scope: no value, whatever the loop runs around it.
    let lp = EventLoop::new().unwrap();
    let seen = Rc::new(Cell::new(Some(0)));
    let s = seen.clone();
    lp.call_soon(move || s.set(REQUEST_ID.get()));
    lp.run_until_complete(REQUEST_ID.scope(9, evloop::yield_now()))
        .unwrap();
    assert_eq!(seen.get(), None);
}
