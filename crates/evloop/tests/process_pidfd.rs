//! Subprocesses on the default reaping path: pidfds (Linux ≥ 5.4). The cases are shared with
//! `process_sigchld.rs` (see `process_common`).

mod process_common;

/// The kind of reaping this binary expects: pidfd where the kernel has it.
fn kind() -> &'static str {
    let probe = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let has_pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(&probe),
        rustix::process::PidfdFlags::empty(),
    )
    .is_ok();
    let mut probe = probe;
    probe.wait().expect("wait true");
    if has_pidfd && std::env::var_os("EVLOOP_FORCE_SIGCHLD").is_none() {
        "pidfd"
    } else {
        "sigchld"
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() -> Result<(), Box<dyn std::error::Error>> {
            process_common::$name(kind())
        }
    )*};
}

cases!(
    echo_output,
    exit_code,
    stdin_cat_round_trip_1mib,
    stderr_capture,
    kill_sleep,
    fifty_concurrent,
    fifty_concurrent_tasks,
    kill_on_drop_at_close,
    orphan_reaped_after_close,
    orphan_exits_after_close,
    drop_without_wait,
    errors,
    builder,
    pipe_between_children,
    loop_not_blocked,
);

/// A child and its pipes can be moved between threads (as tokio's can); they are still
/// awaited on the loop they were spawned on.
#[test]
fn process_types_are_send() {
    fn is_send<T: Send>() {}
    is_send::<evloop::process::Child>();
    is_send::<evloop::process::ChildStdin>();
    is_send::<evloop::process::ChildStdout>();
    is_send::<evloop::process::ChildStderr>();
    is_send::<evloop::process::Command>();
    is_send::<evloop::signal::Signals>();
}
