//! Subprocesses on the fallback reaping path: SIGCHLD (forced here with the hidden switch
//! `evloop::process::force_sigchld_reaper`, as on kernels without pidfds). The cases are
//! shared with `process_pidfd.rs` (see `process_common`).

mod process_common;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() -> Result<(), Box<dyn std::error::Error>> {
            // Every test of this binary sets it: they cannot disturb each other.
            evloop::process::force_sigchld_reaper(true);
            process_common::$name("sigchld")
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
