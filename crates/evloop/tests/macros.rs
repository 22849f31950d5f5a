//! `#[evloop::test]` and `#[evloop::main]` as a user writes them.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[evloop::test]
async fn a_test_runs_on_a_running_loop() {
    let lp = evloop::get_running_loop().expect("a running loop");
    assert!(lp.is_running());
    let start = Instant::now();
    evloop::sleep(Duration::from_millis(5)).await;
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[evloop::test]
async fn each_test_gets_a_fresh_loop() {
    // Non-Send state is fine: everything runs on this test's thread and loop.
    let counter = Rc::new(Cell::new(0));
    let c = counter.clone();
    evloop::spawn(async move { c.set(c.get() + 1) })
        .await
        .expect("task");
    assert_eq!(counter.get(), 1);
    // The loop is new: nothing else runs on it but the test's own main task.
    let lp = evloop::get_running_loop().expect("loop");
    let me = evloop::current_task()
        .expect("loop")
        .expect("the main task");
    assert_eq!(lp.all_tasks(), vec![me]);
}

#[evloop::test]
async fn a_test_may_return_a_result() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "41".parse()?;
    let m = evloop::to_thread(move || n + 1).await?;
    assert_eq!(m, 42);
    Ok(())
}

#[evloop::test]
#[should_panic(expected = "inside the loop")]
async fn other_attributes_are_kept() {
    evloop::yield_now().await;
    panic!("inside the loop");
}

#[evloop::test]
async fn early_return_and_question_mark_work_as_in_the_async_fn() -> Result<(), String> {
    if evloop::get_running_loop().is_ok() {
        return Ok(());
    }
    Err("unreachable".to_string())
}

#[derive(Debug)]
enum AppError {
    Loop(evloop::Error),
    Bad,
}

impl From<evloop::Error> for AppError {
    fn from(e: evloop::Error) -> AppError {
        AppError::Loop(e)
    }
}

/// `#[evloop::main]` on any function: a `Result` return type gets `evloop::run`'s errors by
/// `From`.
#[evloop::main]
async fn app() -> Result<u32, AppError> {
    let n = evloop::spawn(async { 20 })
        .await
        .map_err(|_| AppError::Bad)?;
    evloop::sleep(Duration::from_millis(1)).await;
    Ok(n + 22)
}

#[evloop::main]
async fn failing_app() -> Result<u32, AppError> {
    Err(AppError::Bad)
}

#[test]
fn main_runs_the_body_on_a_fresh_loop() {
    assert!(evloop::get_running_loop().is_err());
    assert!(matches!(app(), Ok(42)));
    assert!(matches!(failing_app(), Err(AppError::Bad)));
    assert!(evloop::get_running_loop().is_err());
}

#[evloop::test]
async fn main_inside_a_running_loop_converts_the_run_error() {
    // evloop::run refuses to run inside a running loop; the error reaches `main`'s `Err`.
    match app() {
        Err(AppError::Loop(e)) => {
            assert_eq!(
                e.to_string(),
                "run() cannot be called from a running event loop"
            )
        }
        other => panic!("expected the run error, got {other:?}"),
    }
}
