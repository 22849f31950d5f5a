//! `gather`: concurrency, input order, polling only what was woken.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use evloop::{JoinError, gather, sleep, yield_now};

/// Runs `f` as `evloop::run` does: a fresh loop, closed afterwards.
fn block_on<F: Future>(f: F) -> F::Output {
    evloop::run(f).expect("evloop::run")
}

#[test]
fn outputs_come_in_input_order_whatever_the_completion_order() {
    let finished = Rc::new(RefCell::new(Vec::new()));
    let f = finished.clone();
    let out = block_on(async move {
        let start = Instant::now();
        let out = gather([30u64, 10, 20, 0].into_iter().map(|ms| {
            let f = f.clone();
            async move {
                sleep(Duration::from_millis(ms)).await;
                f.borrow_mut().push(ms);
                ms * 2
            }
        }))
        .await;
        // They ran concurrently: the whole took about the longest one.
        assert!(start.elapsed() >= Duration::from_millis(30));
        out
    });
    assert_eq!(out, vec![60, 20, 40, 0]);
    // Completion order was by delay, so the futures really ran concurrently.
    assert_eq!(*finished.borrow(), vec![0, 10, 20, 30]);
}

#[test]
fn gather_of_nothing_is_empty() {
    let out: Vec<u8> = block_on(gather(Vec::<std::future::Ready<u8>>::new()));
    assert!(out.is_empty());
}

#[test]
fn futures_may_borrow_locals() {
    let names = ["a".to_string(), "bb".to_string(), "ccc".to_string()];
    let lens = block_on(gather(names.iter().map(|n| async move {
        yield_now().await;
        n.len()
    })));
    assert_eq!(lens, vec![1, 2, 3]);
}

#[test]
fn only_woken_futures_are_polled() {
    // One future yields 200 times; the other waits for a 20 ms timer. The waiting one must be
    // polled about twice, not once per wake-up of its sibling.
    let sleeper_polls = Rc::new(Cell::new(0u32));
    let polls = sleeper_polls.clone();
    block_on(async move {
        let sleeper = async {
            let mut s = std::pin::pin!(sleep(Duration::from_millis(20)));
            poll_fn(|cx| {
                polls.set(polls.get() + 1);
                s.as_mut().poll(cx)
            })
            .await;
            0u32
        };
        let busy = async {
            for _ in 0..200 {
                yield_now().await;
            }
            1u32
        };
        let out = gather([
            Box::pin(sleeper) as std::pin::Pin<Box<dyn Future<Output = u32>>>,
            Box::pin(busy),
        ])
        .await;
        assert_eq!(out, vec![0, 1]);
    });
    assert!(
        sleeper_polls.get() <= 3,
        "the sleeping future was polled {} times",
        sleeper_polls.get()
    );
}

#[test]
fn a_future_that_always_wakes_itself_does_not_starve_the_loop() {
    // gather polls each woken future once per poll of its own; a timer elsewhere still fires.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    block_on(async move {
        let lp = evloop::get_running_loop().expect("running");
        lp.call_later(Duration::from_millis(5), move || f.set(true));
        let spinner = poll_fn(|cx| {
            if fired.get() {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        gather([spinner]).await;
    });
}

#[test]
fn gathering_tasks_reports_each_outcome() {
    let out = block_on(async {
        let tasks = vec![
            evloop::spawn(async { 1 }),
            evloop::spawn(async { panic!("task two failed") }),
            evloop::spawn(async {
                sleep(Duration::from_millis(5)).await;
                3
            }),
        ];
        gather(tasks).await
    });
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].as_ref().ok(), Some(&1));
    assert!(
        matches!(&out[1], Err(e @ JoinError::Panicked(_)) if e.panic_message() == Some("task two failed"))
    );
    assert_eq!(out[2].as_ref().ok(), Some(&3));
}

#[test]
#[should_panic(expected = "child panicked")]
fn a_panicking_future_propagates() {
    block_on(gather([
        Box::pin(async { panic!("child panicked") as () })
            as std::pin::Pin<Box<dyn Future<Output = ()>>>,
        Box::pin(sleep(Duration::from_secs(60))),
    ]));
}
