//! `current_task()`: ported from CPython's Lib/test/test_asyncio/test_tasks.py (3.11), the
//! `test_current_task*` cases, with CPython's expected values. Where Rust's shape differs the
//! test says so: `current_task(loop)` is `EventLoop::current_task()`, the implicit form is
//! `evloop::current_task()`, and asyncio's `RuntimeError: no running event loop` is
//! `Err(Error::NoRunningLoop)`.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use evloop::{Error, EventLoop, TaskRef};

/// A minimal asyncio `Future` stand-in: set once, awaited by one task.
#[derive(Clone, Default)]
struct Flag(Rc<RefCell<(bool, Option<Waker>)>>);

impl Flag {
    fn set(&self) {
        let waker = {
            let mut s = self.0.borrow_mut();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Future for Flag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.borrow_mut();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// (which task recorded it, the current task it saw)
type Seen = Rc<RefCell<Vec<(u8, Option<evloop::TaskId>)>>>;

fn id_of(t: Option<TaskRef>) -> Option<evloop::TaskId> {
    t.map(|t| t.id())
}

#[test]
fn test_current_task() {
    let lp = EventLoop::new().unwrap();
    assert!(lp.current_task().is_none());
    let inner = lp.clone();
    let task = lp.create_task(async move {
        // asyncio.current_task() is task; current_task(None) is task (the same call here).
        let a = id_of(evloop::current_task().unwrap());
        let b = id_of(inner.current_task());
        (a, b)
    });
    let id = task.id();
    let (a, b) = lp.run_until_complete(task).unwrap().unwrap();
    assert_eq!(a, Some(id));
    assert_eq!(b, Some(id));
    assert!(lp.current_task().is_none());
    lp.close().unwrap();
}

#[test]
fn test_current_task_with_interleaving_tasks() {
    let lp = EventLoop::new().unwrap();
    assert!(lp.current_task().is_none());
    let (fut1, fut2) = (Flag::default(), Flag::default());
    let seen: Seen = Rc::default();
    let task1 = lp.create_task({
        let (fut1, fut2, seen) = (fut1.clone(), fut2.clone(), seen.clone());
        async move {
            seen.borrow_mut()
                .push((1, id_of(evloop::current_task().unwrap())));
            fut1.await;
            seen.borrow_mut()
                .push((1, id_of(evloop::current_task().unwrap())));
            fut2.set();
        }
    });
    let task2 = lp.create_task({
        let (fut1, fut2, seen) = (fut1.clone(), fut2.clone(), seen.clone());
        async move {
            seen.borrow_mut()
                .push((2, id_of(evloop::current_task().unwrap())));
            fut1.set();
            fut2.await;
            seen.borrow_mut()
                .push((2, id_of(evloop::current_task().unwrap())));
        }
    });
    let (id1, id2) = (task1.id(), task2.id());
    // asyncio.wait((task1, task2)): both end.
    lp.run_until_complete(async move {
        task1.await.unwrap();
        task2.await.unwrap();
    })
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 4);
    for &(who, current) in seen.iter() {
        assert_eq!(current, Some(if who == 1 { id1 } else { id2 }));
    }
    assert!(lp.current_task().is_none());
    lp.close().unwrap();
}

#[test]
fn test_current_task_no_running_loop() {
    let lp = EventLoop::new().unwrap();
    assert!(lp.current_task().is_none());
    lp.close().unwrap();
}

#[test]
fn test_current_task_no_running_loop_implicit() {
    assert!(matches!(evloop::current_task(), Err(Error::NoRunningLoop)));
}

#[test]
fn test_current_task_with_implicit_loop() {
    evloop::run(async {
        let task = evloop::spawn(async {
            let lp = evloop::get_running_loop().unwrap();
            (
                id_of(lp.current_task()),
                id_of(evloop::current_task().unwrap()),
            )
        });
        let id = task.id();
        let (a, b) = task.await.unwrap();
        assert_eq!(a, Some(id));
        assert_eq!(b, Some(id));
        // `run()`'s main future runs as a task, as in asyncio: outside the spawned task, the
        // current task is the main one.
        let main = evloop::current_task().unwrap().unwrap();
        assert_ne!(main.id(), id);
        assert!(
            evloop::get_running_loop()
                .unwrap()
                .all_tasks()
                .contains(&main)
        );
    })
    .unwrap();
}

/// Not in CPython: a loop other than the running one has no current task, even when called
/// from inside a task of the running loop.
#[test]
fn another_loop_has_no_current_task_while_this_one_runs_a_task() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let probe = other.clone();
    let task = lp.create_task(async move { probe.current_task().is_none() });
    assert!(lp.run_until_complete(task).unwrap().unwrap());
    lp.close().unwrap();
    other.close().unwrap();
}
