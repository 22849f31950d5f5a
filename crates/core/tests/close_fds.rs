//! A closed loop holds no fds, whatever of it outlives the close: a `LoopHandle`, a finished
//! `Task`, a `TaskRef`. Alone in its binary (one test) because it counts the process's fds.
#![allow(clippy::unwrap_used)]

use evloop_core::{Error, EventLoop, JoinError};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_closed_loop_releases_its_fds_while_its_handles_and_tasks_live_on() {
    let mut kept = Vec::new();
    let mut one_loop = || {
        let lp = EventLoop::new().unwrap();
        let task = lp.create_task(async { 7 });
        let task_ref = task.as_ref();
        let handle = lp.handle();
        assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
        lp.close().unwrap();
        assert!(task.is_done());
        drop(lp);
        kept.push((handle, task, task_ref));
    };
    one_loop(); // warm-up: lazy statics, thread-locals
    let before = open_fds();
    for _ in 0..200 {
        one_loop();
    }
    assert_eq!(open_fds(), before, "closed loops kept fds open");

    // What outlived its loop still works as far as it can, and says the loop is closed.
    let (handle, task, _task_ref) = kept.pop().unwrap();
    assert!(handle.is_closed());
    assert!(matches!(
        handle.call_soon_threadsafe(|| {}),
        Err(Error::Closed)
    ));
    let late = handle.spawn(async { 1 });
    assert!(matches!(late.join_blocking(), Err(JoinError::Cancelled)));
    handle.stop();
    assert_eq!(task.join_blocking().unwrap(), 7);
    assert_eq!(open_fds(), before);
}
