//! Seeing inside a running loop: `tracing` spans per task, the loop's metrics and a task
//! dump.
//!
//! ```sh
//! cargo run -p evloop --example observe                 # INFO events, each in its task's span
//! RUST_LOG=evloop=debug cargo run -p evloop --example observe   # and the loop's own events
//! ```
//!
//! Every task runs inside a `task` span (`task.id`, `task.name`, `task.spawned_at`), so the
//! events its code emits say which task they came from; the run's main task has one too.
//! `EventLoop::metrics()` gives the loop's counters (tokio's `RuntimeMetrics`), and
//! `EventLoop::dump_tasks()` every live task with its state, where it was created and which
//! task it awaits (asyncio users print `all_tasks()` for that).

use std::time::Duration;

use evloop::TaskBuilder;
use tracing_subscriber::EnvFilter;

fn main() -> Result<(), evloop::Error> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    evloop::run(async {
        let lp = evloop::get_running_loop()?;
        // A fetcher that waits on a parser that waits on a timer: a chain of awaited tasks.
        let parser = TaskBuilder::new().name("parser").spawn(async {
            tracing::info!("parsing");
            evloop::sleep(Duration::from_millis(50)).await;
            tracing::info!("parsed");
            42
        });
        let fetcher = TaskBuilder::new().name("fetcher").spawn(async move {
            tracing::info!("waiting for the parser");
            parser.await.map(|n| n + 1)
        });
        for i in 0..3 {
            TaskBuilder::new()
                .name(format!("ticker-{i}"))
                .spawn(async move {
                    evloop::sleep(Duration::from_millis(10 * (i + 1))).await;
                    tracing::info!(i, "tick");
                })
                .detach();
        }
        tracing::info!("main task started its children");

        evloop::sleep(Duration::from_millis(5)).await;
        println!("--- task dump ---\n{}", lp.dump_tasks());

        match fetcher.await.and_then(|parsed| parsed) {
            Ok(answer) => tracing::info!(answer, "fetched"),
            Err(e) => tracing::error!(error = %e, "the fetcher failed"),
        }

        let m = lp.metrics();
        println!("--- metrics ---");
        println!(
            "iterations {}, parks {}, tasks spawned {} / completed {} / alive {}, polls {}",
            m.iterations, m.parks, m.tasks_spawned, m.tasks_completed, m.tasks_alive, m.task_polls
        );
        println!(
            "callbacks run {}, timers pending {}, fds registered {}, I/O events {}",
            m.callbacks_run, m.timers_pending, m.fds_registered, m.io_events
        );
        println!("busy {:?}, parked {:?}", m.busy_time, m.parked_time);
        Ok(())
    })?
}
