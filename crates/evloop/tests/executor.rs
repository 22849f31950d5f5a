//! The default executor: `to_thread`, `run_in_executor`, bounds, idle retirement.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use evloop::executor::ThreadPool;
use evloop::{EventLoop, RunInExecutor, Task, sleep, to_thread, yield_now};

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

fn running_loop() -> EventLoop {
    evloop::get_running_loop().expect("running loop")
}

#[test]
fn to_thread_runs_on_another_thread_and_returns_the_result() {
    block_on(async {
        let here = thread::current().id();
        let (value, there) = to_thread(|| (6 * 7, thread::current().id()))
            .await
            .expect("job");
        assert_eq!(value, 42);
        assert_ne!(here, there);
    });
}

#[test]
fn a_panic_comes_back_as_join_error_panicked() {
    block_on(async {
        let err = to_thread(|| -> u8 { panic!("job failed") })
            .await
            .expect_err("the job panicked");
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), Some("job failed"));
        // The pool survives its job's panic.
        assert_eq!(to_thread(|| 1).await.expect("job"), 1);
    });
}

#[test]
#[should_panic(expected = "no running event loop")]
fn to_thread_outside_a_running_loop_panics() {
    drop(to_thread(|| 1));
}

#[test]
fn run_in_executor_works_from_outside_the_loop() {
    let lp = EventLoop::new().expect("loop");
    let task = lp.run_in_executor(|| "from a thread".to_string());
    assert_eq!(
        lp.run_until_complete(task).expect("run").expect("job"),
        "from a thread"
    );
    lp.close().expect("close");
}

#[test]
fn the_default_bound_is_asyncios() {
    let lp = EventLoop::new().expect("loop");
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    let pool = lp.default_executor();
    assert_eq!(pool.max_threads(), (cpus + 4).min(32));
    assert_eq!(pool.num_threads(), 0, "threads are created on demand");
    lp.close().expect("close");
}

/// Counts jobs running at once and keeps the high-water mark.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    high: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.high.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn thousand_jobs(bound: Option<usize>) {
    let c = Arc::new(Concurrency::default());
    let c2 = c.clone();
    let max = block_on(async move {
        let lp = running_loop();
        if let Some(n) = bound {
            lp.set_default_executor(ThreadPool::builder().max_threads(n).build());
        }
        let pool = lp.default_executor();
        let tasks: Vec<Task<u64>> = (0..1000u64)
            .map(|i| {
                let c = c2.clone();
                to_thread(move || {
                    c.enter();
                    // A little blocking work, so that jobs overlap.
                    let mut x = i;
                    for _ in 0..10_000 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                    thread::yield_now();
                    c.leave();
                    let _ = x;
                    i * i
                })
            })
            .collect();
        assert!(pool.num_threads() <= pool.max_threads());
        for (i, t) in (0u64..).zip(tasks) {
            assert_eq!(t.await.expect("job"), i * i);
        }
        assert!(pool.num_threads() <= pool.max_threads());
        pool.max_threads()
    });
    let high = c.high.load(Ordering::SeqCst);
    assert!(
        high >= 1 && high <= max,
        "{high} jobs ran at once, bound {max}"
    );
    assert_eq!(c.running.load(Ordering::SeqCst), 0);
}

#[test]
fn a_thousand_jobs_complete_within_a_small_bound() {
    thousand_jobs(Some(4));
}

#[test]
fn a_thousand_jobs_complete_within_the_default_bound() {
    thousand_jobs(None);
}

#[test]
fn the_pool_grows_to_its_bound_and_no_further() {
    block_on(async {
        let lp = running_loop();
        let pool = ThreadPool::builder().max_threads(3).build();
        lp.set_default_executor(pool.clone());
        // Three jobs that can only finish together force three threads; a fourth waits.
        let barrier = Arc::new(Barrier::new(3));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let b = barrier.clone();
                to_thread(move || {
                    b.wait();
                })
            })
            .collect();
        let fourth = to_thread(|| 4);
        assert_eq!(pool.num_threads(), 3);
        for t in tasks {
            t.await.expect("job");
        }
        assert_eq!(fourth.await.expect("job"), 4);
        assert_eq!(pool.num_threads(), 3);
    });
}

#[test]
fn idle_threads_retire() {
    block_on(async {
        let lp = running_loop();
        let pool = ThreadPool::builder()
            .max_threads(4)
            .idle_timeout(Duration::from_millis(50))
            .thread_name("retiring")
            .build();
        lp.set_default_executor(pool.clone());
        let barrier = Arc::new(Barrier::new(4));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let b = barrier.clone();
                to_thread(move || {
                    b.wait();
                    thread::current().name().map(str::to_owned)
                })
            })
            .collect();
        for t in tasks {
            let name = t.await.expect("job").expect("named thread");
            assert!(name.starts_with("retiring-"), "{name}");
        }
        assert_eq!(pool.num_threads(), 4);
        // Watch the pool on the loop's clock until every idle thread has exited.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.num_threads() > 0 {
            assert!(Instant::now() < deadline, "threads did not retire");
            sleep(Duration::from_millis(10)).await;
        }
        // A retired pool starts threads again on demand.
        assert_eq!(to_thread(|| 5).await.expect("job"), 5);
        assert!(pool.num_threads() <= 1);
    });
}

#[test]
fn a_job_cancelled_before_it_started_never_runs() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    block_on(async move {
        let lp = running_loop();
        lp.set_default_executor(ThreadPool::builder().max_threads(1).build());
        let (release, gate) = mpsc::channel::<()>();
        let first = to_thread(move || gate.recv().is_ok());
        let second = to_thread(move || r.store(true, Ordering::SeqCst));
        second.cancel();
        yield_now().await; // the cancellation drops the task's future
        assert!(second.is_cancelled());
        let third = to_thread(|| 3); // queued behind `second`, on the only thread
        release.send(()).expect("release");
        assert!(first.await.expect("job"));
        assert_eq!(third.await.expect("job"), 3);
    });
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn a_replaced_executor_stops_taking_jobs() {
    block_on(async {
        let lp = running_loop();
        let old = lp.default_executor();
        assert_eq!(to_thread(|| 1).await.expect("job"), 1);
        lp.set_default_executor(ThreadPool::new());
        assert!(old.is_shutdown());
        assert!(!lp.default_executor().is_shutdown());
        assert_eq!(to_thread(|| 2).await.expect("job"), 2);
    });
}

#[test]
fn closing_the_loop_shuts_its_pool_down() {
    let lp = EventLoop::new().expect("loop");
    let pool = lp.default_executor();
    lp.run_until_complete(lp.run_in_executor(|| ()))
        .expect("run")
        .expect("job");
    assert_eq!(pool.num_threads(), 1);
    lp.close().expect("close");
    assert!(pool.is_shutdown());
    // The idle thread sees the shutdown and exits (without anyone waiting for it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.num_threads() > 0 {
        assert!(Instant::now() < deadline, "the thread did not exit");
        thread::yield_now();
    }
    // A job for a closed loop is cancelled at once.
    assert!(lp.run_in_executor(|| ()).is_cancelled());
}

#[test]
fn run_waits_for_the_executor_jobs_and_joins_the_pool() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let pool = evloop::run(async move {
        for _ in 0..4 {
            let f = f.clone();
            // Detached: nobody awaits these; run() still lets them finish.
            drop(to_thread(move || {
                thread::sleep(Duration::from_millis(20)); // blocking work
                f.fetch_add(1, Ordering::SeqCst);
            }));
        }
        evloop::get_running_loop()
            .expect("running")
            .default_executor()
    })
    .expect("run");
    assert_eq!(finished.load(Ordering::SeqCst), 4);
    assert!(pool.is_shutdown());
    assert_eq!(pool.num_threads(), 0, "run() joined the pool's threads");
}

#[test]
fn a_detached_panicking_job_reaches_the_exception_handler() {
    use std::cell::RefCell;
    use std::rc::Rc;
    type Reports = Vec<(String, Option<String>)>;
    let seen: Rc<RefCell<Reports>> = Rc::default();
    let s = seen.clone();
    block_on(async move {
        let lp = running_loop();
        let s2 = s.clone();
        lp.set_exception_handler(Some(
            move |_: &EventLoop, ctx: &evloop::ExceptionContext| {
                s2.borrow_mut().push((
                    ctx.message().to_string(),
                    ctx.panic_message().map(str::to_owned),
                ));
            },
        ));
        drop(to_thread(|| panic!("nobody listens")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.borrow().is_empty() {
            assert!(Instant::now() < deadline, "no report");
            sleep(Duration::from_millis(5)).await;
        }
    });
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "Future exception was never retrieved");
    assert_eq!(seen[0].1.as_deref(), Some("nobody listens"));
}
