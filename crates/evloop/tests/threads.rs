//! The facade across threads: loops bound to threads, `LoopHandle`s into a `run()`.

use std::sync::mpsc;
use std::thread;

use evloop::Error;

#[test]
fn a_worker_thread_needs_its_own_loop() {
    let text = thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| {
            evloop::get_event_loop()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .expect("spawn")
        .join()
        .expect("thread");
    assert_eq!(
        text,
        Err("There is no current event loop in thread 'worker-7'.".to_owned())
    );
}

#[test]
fn an_unnamed_thread_is_named_by_its_id() {
    let (id, err) = thread::spawn(|| {
        (
            format!("{:?}", thread::current().id()),
            evloop::get_event_loop().expect_err("no loop"),
        )
    })
    .join()
    .expect("thread");
    assert!(matches!(&err, Error::NoCurrentLoop { thread } if *thread == id));
}

#[test]
fn thread_exit_closes_the_loop_it_set() {
    let handle = thread::Builder::new()
        .name("short-lived".into())
        .spawn(|| {
            let lp = evloop::new_event_loop().expect("loop");
            evloop::set_event_loop(Some(&lp));
            lp.handle()
        })
        .expect("spawn")
        .join()
        .expect("thread");
    assert!(handle.is_closed());
}

#[test]
fn other_threads_reach_a_run_through_its_loop_handle() {
    let (tx, rx) = mpsc::channel();
    let out = evloop::run(async move {
        let handle = evloop::get_running_loop().expect("running").handle();
        // A helper thread (the default executor's) blocks on a task it spawned on this loop;
        // awaiting the helper keeps the loop free to run that task.
        let helper = evloop::to_thread(move || {
            let task = handle.spawn(async { 20 });
            handle
                .call_soon_threadsafe(move || tx.send("callback ran").expect("send"))
                .expect("loop open");
            task.join_blocking().expect("task")
        });
        helper.await.expect("helper") + 1
    })
    .expect("run");
    assert_eq!(out, 21);
    assert_eq!(rx.recv().expect("callback"), "callback ran");
}

#[test]
fn a_loop_handle_outlives_the_run() {
    let handle =
        evloop::run(async { evloop::get_running_loop().expect("running").handle() }).expect("run");
    assert!(handle.is_closed());
    assert!(matches!(
        handle.call_soon_threadsafe(|| {}),
        Err(Error::Closed)
    ));
    let task = thread::spawn(move || handle.spawn(async { 1 }))
        .join()
        .expect("thread");
    assert!(task.join_blocking().is_err_and(|e| e.is_cancelled()));
}
