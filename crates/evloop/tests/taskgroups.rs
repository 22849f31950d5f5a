//! CPython's `Lib/test/test_asyncio/test_taskgroups.py` (3.11), ported to the
//! [`evloop::task_group`] scope: each test is named after the CPython test and keeps its
//! expected values; a comment marks where Rust's shape forces another form.
//!
//! How asyncio maps: `async with TaskGroup() as g: body` is `task_group(async |g| body)`; an
//! exception a child raises is an `Err(Exc::..)` it returns (or, for `BaseException`s and
//! exceptions raised in `finally`/`except CancelledError` blocks, a panic — in Rust a cancelled
//! coroutine's cleanup is a destructor, which can only panic); the `ExceptionGroup` is the
//! `TaskGroupErrors` and `get_error_types` is [`error_types`]; `except CancelledError:` in a
//! coroutine is an [`OnCancel`] guard; `r.cancel()` on the task running the group drops the
//! scope future, so failures that happen during that drop cannot be returned and go to the
//! loop's exception handler instead (tests 08, 11, 12, 18 check them there).
//!
//! Ported: 26. Left out: 10, each for a reason that has no Rust meaning:
//! - test_taskgroup_15, test_taskgroup_16: the cancelled body *awaits* in its
//!   `except CancelledError` block; a Rust future is cancelled by dropping it, and a destructor
//!   cannot await.
//! - test_taskgroup_20: `KeyboardInterrupt` specifics (it escapes the group unwrapped).
//! - test_taskgroup_20a: `BaseException` vs `Exception`; Rust has one kind of panic, and the
//!   case is then test_taskgroup_19 again.
//! - _test_taskgroup_21: disabled upstream (`KeyboardInterrupt` crashes asyncio's loop).
//! - test_taskgroup_task_context: `contextvars`, which evloop has no counterpart of.
//! - test_taskgroup_already_entered, test_taskgroup_double_enter: opening a group and entering
//!   it are one call (`task_group`), so a group cannot be entered twice.
//! - test_taskgroup_not_entered: likewise, a group that was not entered does not exist.
//! - test_taskgroup_without_parent_task: the scope needs no parent task (the body is polled
//!   inside the scope future, which may be `run()`'s main future).
#![allow(clippy::unwrap_used)]

mod tgutil;

use std::cell::{Cell, RefCell};
use std::panic::panic_any;
use std::rc::Rc;

use evloop::{SpawnError, TaskGroupError, TaskGroupErrors, sleep, task_group, yield_now};
use tgutil::*;

#[test]
fn test_taskgroup_01() {
    block_on(async {
        let (t1, t2) = task_group(async |g| {
            let t1 = g.spawn(async {
                sleep(secs(0.1)).await;
                Ok::<_, Exc>(42)
            });
            let t2 = g.spawn(async {
                sleep(secs(0.2)).await;
                Ok(11)
            });
            Ok((t1, t2))
        })
        .await
        .unwrap();
        assert!(t1.is_done() && t2.is_done());
        assert_eq!(t1.await.unwrap(), 42);
        assert_eq!(t2.await.unwrap(), 11);
    });
}

#[test]
fn test_taskgroup_02() {
    block_on(async {
        let (t1, t2) = task_group(async |g| {
            let t1 = g.spawn(async {
                sleep(secs(0.1)).await;
                Ok::<_, Exc>(42)
            });
            sleep(secs(0.15)).await;
            let t2 = g.spawn(async {
                sleep(secs(0.2)).await;
                Ok(11)
            });
            Ok((t1, t2))
        })
        .await
        .unwrap();
        assert!(t1.is_done() && t2.is_done());
        assert_eq!(t1.await.unwrap(), 42);
        assert_eq!(t2.await.unwrap(), 11);
    });
}

#[test]
fn test_taskgroup_03() {
    block_on(async {
        let (t1, t2) = task_group(async |g| {
            let t1 = g.spawn(async {
                sleep(secs(1.0)).await;
                Ok::<_, Exc>(42)
            });
            sleep(secs(0.15)).await;
            // cancel t1 explicitly, i.e. everything should continue working as expected.
            t1.cancel();
            let t2 = g.spawn(async {
                sleep(secs(0.2)).await;
                Ok(11)
            });
            Ok((t1, t2))
        })
        .await
        .unwrap();
        assert!(t1.is_cancelled());
        assert_eq!(t2.await.unwrap(), 11);
    });
}

#[test]
fn test_taskgroup_04() {
    block_on(async {
        let num = Rc::new(Cell::new(0));
        let t2_cancel = Rc::new(Cell::new(false));
        let t2 = Rc::new(RefCell::new(None));
        let (n, c, t) = (num.clone(), t2_cancel.clone(), t2.clone());
        let runner = evloop::spawn(async move {
            task_group(async |g| {
                g.spawn(async {
                    sleep(secs(0.1)).await;
                    Err::<(), _>(Exc::ZeroDivision)
                });
                let (n, c) = (n.clone(), c.clone());
                let task = g.spawn(async move {
                    let cancelled = OnCancel::new(|| c.set(true));
                    sleep(secs(1.0)).await;
                    cancelled.done();
                    n.set(n.get() + 1);
                    Ok(())
                });
                *t.borrow_mut() = Some(task.as_ref());
                Ok(())
            })
            .await?;
            n.set(n.get() + 10);
            Ok::<_, TaskGroupErrors<Exc>>(())
        });
        let errors = runner.await.unwrap().unwrap_err();
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
        assert_eq!(num.get(), 0);
        assert!(t2_cancel.get());
        assert!(t2.borrow().as_ref().unwrap().is_cancelled());
    });
}

#[test]
fn test_cancel_children_on_child_error() {
    // When a child task raises an error, the rest of the children are cancelled and the
    // errors are gathered into an EG.
    block_on(async {
        let num = Rc::new(Cell::new(0));
        let t2_cancel = Rc::new(Cell::new(false));
        let runner_cancel = Rc::new(Cell::new(false));
        let (n, c, rc) = (num.clone(), t2_cancel.clone(), runner_cancel.clone());
        let runner = evloop::spawn(async move {
            task_group(async |g| {
                for _ in 0..3 {
                    g.spawn(async {
                        sleep(secs(0.1)).await;
                        Err::<(), _>(Exc::ZeroDivision)
                    });
                }
                let (n2, c) = (n.clone(), c.clone());
                g.spawn(async move {
                    let cancelled = OnCancel::new(|| c.set(true));
                    sleep(secs(5.0)).await;
                    cancelled.done();
                    n2.set(n2.get() + 1);
                    Ok(())
                });
                let cancelled = OnCancel::new(|| rc.set(true));
                sleep(secs(10.0)).await;
                cancelled.done();
                Ok(())
            })
            .await?;
            n.set(n.get() + 10);
            Ok::<_, TaskGroupErrors<Exc>>(())
        });
        let errors = runner.await.unwrap().unwrap_err();
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
        assert_eq!(num.get(), 0);
        assert!(t2_cancel.get());
        assert!(runner_cancel.get());
    });
}

/// `runner` of test_cancellation and test_taskgroup_07: five children that count their
/// cancellation in `num`; `started` counts the children (and the body) that got going.
async fn five_cancellable_children(
    num: Rc<Cell<u32>>,
    started: Rc<Cell<u32>>,
    body_counts: bool,
) -> Result<(), TaskGroupErrors<Exc>> {
    task_group(async |g| {
        for _ in 0..5 {
            let (num, started) = (num.clone(), started.clone());
            g.spawn(async move {
                let cancelled = OnCancel::new(|| num.set(num.get() + 1));
                started.set(started.get() + 1);
                sleep(secs(5.0)).await;
                cancelled.done();
                Ok(())
            });
        }
        if body_counts {
            let cancelled = OnCancel::new(|| num.set(num.get() + 10));
            sleep(secs(10.0)).await;
            cancelled.done();
        }
        Ok(())
    })
    .await
}

#[test]
fn test_cancellation() {
    block_on(async {
        let num = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(0));
        let r = evloop::spawn(five_cancellable_children(
            num.clone(),
            started.clone(),
            false,
        ));
        until(&started, 5).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        // The children's futures were dropped before the scope's drop returned.
        assert_eq!(num.get(), 5);
    });
}

#[test]
fn test_taskgroup_07() {
    block_on(async {
        let num = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(0));
        let r = evloop::spawn(five_cancellable_children(
            num.clone(),
            started.clone(),
            true,
        ));
        until(&started, 5).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(num.get(), 15);
    });
}

/// Five children whose `finally: 1 / 0` runs when they are cancelled; `started` counts them.
fn spawn_five_raising_on_cancel(g: &evloop::TaskScope<Exc>, started: &Rc<Cell<u32>>) {
    for _ in 0..5 {
        let started = started.clone();
        g.spawn(async move {
            let _finally = RaiseOnDrop::new(ZeroDivisionError);
            started.set(started.get() + 1);
            sleep(secs(10.0)).await;
            Ok::<(), Exc>(())
        });
    }
}

/// What the handler saw, as (message, panic type), after a cancelled scope's children raised.
fn five_cleanup_panics() -> Vec<(String, &'static str)> {
    let one = (
        "a task group child panicked while it was being cancelled, after its group ended"
            .to_string(),
        "ZeroDivisionError",
    );
    vec![one; 5]
}

#[test]
fn test_taskgroup_08() {
    // CPython: `r.cancel()` makes the group raise ExceptionGroup({ZeroDivisionError}) out of
    // `r`. In Rust cancelling `r` drops the scope future: the children's five
    // ZeroDivisionErrors, raised while they are dropped, go to the exception handler, and `r`
    // reads cancelled.
    block_on(async {
        let seen = collect_exceptions();
        let started = Rc::new(Cell::new(0));
        let s = started.clone();
        let r = evloop::spawn(async move {
            task_group(async |g| {
                spawn_five_raising_on_cancel(g, &s);
                sleep(secs(10.0)).await;
                Ok(())
            })
            .await
        });
        until(&started, 5).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(*seen.borrow(), five_cleanup_panics());
    });
}

#[test]
fn test_taskgroup_09() {
    block_on(async {
        let mut t1 = None;
        let mut t2 = None;
        let errors = task_group(async |g| {
            t1 = Some(g.spawn(async {
                sleep(secs(1.0)).await;
                Ok(42)
            }));
            t2 = Some(g.spawn(async {
                sleep(secs(2.0)).await;
                Ok(11)
            }));
            sleep(secs(0.1)).await;
            Err::<(), _>(Exc::ZeroDivision)
        })
        .await
        .unwrap_err();
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
        assert!(t1.unwrap().is_cancelled());
        assert!(t2.unwrap().is_cancelled());
    });
}

#[test]
fn test_taskgroup_10() {
    block_on(async {
        let mut t1 = None;
        let mut t2 = None;
        let errors = task_group(async |g| {
            t1 = Some(g.spawn(async {
                sleep(secs(1.0)).await;
                Ok(42)
            }));
            t2 = Some(g.spawn(async {
                sleep(secs(2.0)).await;
                Ok(11)
            }));
            Err::<(), _>(Exc::ZeroDivision)
        })
        .await
        .unwrap_err();
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
        assert!(t1.unwrap().is_cancelled());
        assert!(t2.unwrap().is_cancelled());
    });
}

#[test]
fn test_taskgroup_11() {
    // CPython: ExceptionGroup({ExceptionGroup({ZeroDivisionError})}) out of the cancelled `r`.
    // In Rust the cancellation drops both scopes: the inner children's ZeroDivisionErrors go
    // to the exception handler, and `r` reads cancelled.
    block_on(async {
        let seen = collect_exceptions();
        let started = Rc::new(Cell::new(0));
        let s = started.clone();
        let r = evloop::spawn(async move {
            task_group(async |_g1| {
                task_group(async |g2| {
                    spawn_five_raising_on_cancel(g2, &s);
                    sleep(secs(10.0)).await;
                    Ok(())
                })
                .await
                .map_err(Exc::Group)
            })
            .await
        });
        until(&started, 5).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(*seen.borrow(), five_cleanup_panics());
    });
}

#[test]
fn test_taskgroup_12() {
    // As test_taskgroup_11 (same Rust form), with a sleeping child in the outer group.
    block_on(async {
        let seen = collect_exceptions();
        let started = Rc::new(Cell::new(0));
        let s = started.clone();
        let outer_child = Rc::new(RefCell::new(None));
        let oc = outer_child.clone();
        let r = evloop::spawn(async move {
            task_group(async |g1| {
                let sleeper = g1.spawn(async {
                    sleep(secs(10.0)).await;
                    Ok(())
                });
                *oc.borrow_mut() = Some(sleeper.as_ref());
                task_group(async |g2| {
                    spawn_five_raising_on_cancel(g2, &s);
                    sleep(secs(10.0)).await;
                    Ok(())
                })
                .await
                .map_err(Exc::Group)
            })
            .await
        });
        until(&started, 5).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(*seen.borrow(), five_cleanup_panics());
        let sleeper = outer_child.borrow_mut().take().unwrap();
        assert!(sleeper.await.unwrap_err().is_cancelled());
    });
}

async fn crash_after(t: f64) -> Result<(), Exc> {
    sleep(secs(t)).await;
    Err(Exc::Value((t * 1000.0) as u64))
}

#[test]
fn test_taskgroup_13() {
    block_on(async {
        let r = evloop::spawn(task_group(async |g1| {
            g1.spawn(crash_after(0.1));
            task_group(async |g2| {
                g2.spawn(crash_after(10.0));
                Ok(())
            })
            .await
            .map_err(Exc::Group)
        }));
        let errors = r.await.unwrap().unwrap_err();
        assert_eq!(error_types(&errors), set(&["ValueError"]));
        // ValueError(0.1), from g1's child.
        assert!(matches!(
            errors.errors(),
            [TaskGroupError::Failed(Exc::Value(100))]
        ));
    });
}

#[test]
fn test_taskgroup_14() {
    block_on(async {
        let r = evloop::spawn(task_group(async |g1| {
            g1.spawn(crash_after(10.0));
            task_group(async |g2| {
                g2.spawn(crash_after(0.1));
                Ok(())
            })
            .await
            .map_err(Exc::Group)
        }));
        let errors = r.await.unwrap().unwrap_err();
        assert_eq!(error_types(&errors), set(&["ExceptionGroup"]));
        let [TaskGroupError::Failed(Exc::Group(inner))] = errors.errors() else {
            panic!("one ExceptionGroup expected: {errors:?}");
        };
        assert_eq!(error_types(inner), set(&["ValueError"]));
    });
}

#[test]
fn test_taskgroup_17() {
    block_on(async {
        let num = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(0));
        let (n, s) = (num.clone(), started.clone());
        let r = evloop::spawn(async move {
            task_group(async |_g| {
                let cancelled = OnCancel::new(|| n.set(n.get() + 10));
                s.set(1);
                sleep(secs(10.0)).await;
                cancelled.done();
                Ok::<_, Exc>(())
            })
            .await
        });
        until(&started, 1).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(num.get(), 10);
    });
}

#[test]
fn test_taskgroup_18() {
    // CPython: the body raises MyExc from `except CancelledError`, and `r` raises
    // ExceptionGroup({MyExc}). In Rust the cancelled body is dropped with its scope: its MyExc
    // (a panic in its destructor) goes to the exception handler, and `r` reads cancelled.
    block_on(async {
        let seen = collect_exceptions();
        let num = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(0));
        let (n, s) = (num.clone(), started.clone());
        let r = evloop::spawn(async move {
            task_group(async |_g| {
                let cancelled = OnCancel::new(|| {
                    n.set(n.get() + 10);
                    // This isn't a good idea, but we have to support this weird case.
                    panic_any(MyExc);
                });
                s.set(1);
                sleep(secs(10.0)).await;
                cancelled.done();
                Ok::<_, Exc>(())
            })
            .await
        });
        until(&started, 1).await;
        assert!(!r.is_done());
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
        assert_eq!(
            *seen.borrow(),
            [(
                "the body of a task group panicked while it was being cancelled".to_string(),
                "MyExc"
            )]
        );
        assert_eq!(num.get(), 10);
    });
}

async fn crash_soon() -> Result<(), Exc> {
    sleep(secs(0.1)).await;
    Err(Exc::ZeroDivision)
}

/// `nested()`: `try: await sleep(10) finally: raise <payload>`.
async fn nested<P: std::any::Any + Send + 'static>(payload: P) {
    let _finally = RaiseOnDrop::new(payload);
    sleep(secs(10.0)).await;
}

#[test]
fn test_taskgroup_19() {
    block_on(async {
        let r = evloop::spawn(task_group(async |g| {
            g.spawn(crash_soon());
            nested(MyExc).await;
            Ok(())
        }));
        let errors = r.await.unwrap().unwrap_err();
        assert_eq!(error_types(&errors), set(&["MyExc", "ZeroDivisionError"]));
    });
}

#[test]
fn test_taskgroup_21a() {
    block_on(async {
        let errors = task_group(async |g| {
            g.spawn(async {
                sleep(secs(0.1)).await;
                panic_any(MyBaseExc);
                #[allow(unreachable_code)]
                Ok::<(), Exc>(())
            });
            nested(TypeError).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(error_types(&errors), set(&["MyBaseExc", "TypeError"]));
    });
}

#[test]
fn test_taskgroup_22() {
    block_on(async {
        let started = Rc::new(Cell::new(0));
        let s = started.clone();
        let r = evloop::spawn(async move {
            task_group(async |g| {
                g.spawn(async {
                    sleep(secs(1.0)).await;
                    Ok::<_, Exc>(42)
                });
                g.spawn(async {
                    sleep(secs(2.0)).await;
                    Ok(11)
                });
                s.set(1);
                Ok(())
            })
            .await
        });
        // CPython waits 0.05 s; here: until the body has run.
        until(&started, 1).await;
        r.cancel();
        assert!(r.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn test_taskgroup_23() {
    block_on(async {
        task_group(async |g| {
            for count in 0..10 {
                sleep(secs(0.1)).await;
                g.spawn(async {
                    sleep(secs(0.3)).await;
                    Ok::<_, Exc>(())
                });
                if count == 5 {
                    assert!(g.len() < 5, "{} children alive", g.len());
                }
            }
            sleep(secs(1.35)).await;
            assert_eq!(g.len(), 0);
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn test_taskgroup_24() {
    block_on(async {
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        task_group(async |g| {
            let spawner = g.spawner();
            g.spawn(async move {
                // root(g)
                sleep(secs(0.1)).await;
                for delay in [0.1, 0.2] {
                    let d = d.clone();
                    spawner
                        .spawn(async move {
                            sleep(secs(delay)).await;
                            d.set(d.get() + 1);
                            Ok::<_, Exc>(())
                        })
                        .unwrap();
                }
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap();
        // The group waited for the grandchildren the root spawned.
        assert_eq!(done.get(), 2);
    });
}

async fn hydra(g: evloop::TaskSpawner<Exc>, nhydras: Rc<Cell<u32>>) -> Result<(), Exc> {
    nhydras.set(nhydras.get() + 1);
    sleep(secs(0.01)).await;
    for _ in 0..2 {
        match g.spawn(hydra(g.clone(), nhydras.clone())) {
            // Rust refuses at once when hercules has just failed in this same iteration;
            // asyncio would accept and cancel the new hydra at the next one.
            Ok(_) | Err(SpawnError::ShuttingDown) => {}
            Err(e) => panic!("{e}"),
        }
    }
    Ok(())
}

#[test]
fn test_taskgroup_25() {
    block_on(async {
        let nhydras = Rc::new(Cell::new(0));
        let n = nhydras.clone();
        let errors = task_group(async |g| {
            g.spawn(hydra(g.spawner(), n.clone()));
            g.spawn(async move {
                // hercules()
                while n.get() < 10 {
                    sleep(secs(0.015)).await;
                }
                Err::<(), _>(Exc::ZeroDivision)
            });
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
        assert!(nhydras.get() >= 10);
    });
}

#[test]
fn test_taskgroup_task_name() {
    // asyncio names the task in `create_task(coro, name=..)`; here the handle renames it.
    block_on(async {
        task_group(async |g| {
            let t = g.spawn(async {
                yield_now().await;
                Ok::<_, Exc>(())
            });
            t.set_name("yolo");
            assert_eq!(t.name(), "yolo");
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn test_taskgroup_no_create_task_after_failure() {
    block_on(async {
        let refused = Rc::new(Cell::new(None));
        let r = refused.clone();
        let errors = task_group(async |g| {
            g.spawn(async {
                sleep(secs(0.001)).await;
                Err::<(), _>(Exc::ZeroDivision)
            });
            let spawner = g.spawner();
            g.spawn(async move {
                // coro2(g): in its cancellation, create_task raises RuntimeError.
                let cancelled = OnCancel::new(move || {
                    let attempt = spawner.spawn(async {
                        sleep(secs(0.001)).await;
                        Err::<(), _>(Exc::ZeroDivision)
                    });
                    r.set(attempt.err());
                });
                sleep(secs(1.0)).await;
                cancelled.done();
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(refused.get(), Some(SpawnError::ShuttingDown));
        assert_eq!(error_types(&errors), set(&["ZeroDivisionError"]));
    });
}

#[test]
fn test_taskgroup_context_manager_exit_raises() {
    // The `database()` context manager whose exit raises is a guard in the body that panics
    // when the body is cancelled (dropped). CPython also checks `task.cancelling() == 0`,
    // which has no counterpart here.
    block_on(async {
        let r = evloop::spawn(task_group(async |tg| {
            let _database = RaiseOnDrop::new(CustomException);
            tg.spawn(async { Err::<(), _>(Exc::Custom) });
            sleep(secs(1.0)).await;
            Ok(())
        }));
        let errors = r.await.unwrap().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(error_types(&errors), set(&["CustomException"]));
    });
}

#[test]
fn test_taskgroup_finished() {
    block_on(async {
        let mut kept = None;
        task_group(async |tg| {
            kept = Some(tg.spawner());
            Ok::<_, Exc>(())
        })
        .await
        .unwrap();
        let spawner = kept.unwrap();
        assert!(spawner.is_finished());
        let err = spawner.spawn(async { Ok(()) }).unwrap_err();
        assert_eq!(err, SpawnError::Finished);
        assert!(err.to_string().contains("is finished"));
    });
}
