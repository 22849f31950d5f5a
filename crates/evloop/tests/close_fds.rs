//! `evloop::run` closes its loop's fds even while a socket, a `LoopHandle` and a finished task
//! of that loop live on; the kept socket then reports an error instead of waiting. Alone in
//! its binary (one test) because it counts the process's fds.
#![allow(clippy::unwrap_used)]

use std::io;
use std::time::Duration;

use evloop::net::UdpSocket;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

type Kept = (UdpSocket, evloop::LoopHandle, evloop::Task<u32>);

fn one_run() -> Kept {
    evloop::run(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let handle = evloop::get_running_loop().unwrap().handle();
        let task = evloop::spawn(async { 7 });
        evloop::sleep(Duration::ZERO).await;
        io::Result::Ok((socket, handle, task))
    })
    .unwrap()
    .unwrap()
}

#[test]
fn closed_loops_release_their_fds_while_sockets_handles_and_tasks_live_on() {
    let mut kept: Vec<Kept> = vec![one_run()]; // warm-up: lazy statics, thread-locals
    let before = open_fds();
    const N: usize = 100;
    for _ in 0..N {
        kept.push(one_run());
    }
    // Each kept socket holds its own fd, and nothing else of its loop is open.
    assert_eq!(open_fds() - before, N, "closed loops kept fds open");

    let (socket, handle, task) = kept.pop().unwrap();
    assert!(task.is_done());
    assert!(handle.is_closed());
    // The socket outlived its loop: used from the next run it fails instead of hanging.
    let got = evloop::run(async move {
        let mut buf = [0u8; 8];
        socket.recv_from(&mut buf).await
    })
    .unwrap();
    assert!(got.is_err(), "{got:?}");
    drop(kept);
    assert_eq!(open_fds(), before - 1);
}
