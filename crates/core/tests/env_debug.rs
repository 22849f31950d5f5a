//! `EVLOOP_DEBUG=1` turns debug mode on for new loops. Alone in its test binary because it
//! changes the process environment.
#![allow(clippy::unwrap_used)]

use evloop_core::EventLoop;

#[test]
fn evloop_debug_env_var_turns_debug_mode_on() {
    // SAFETY: this is the only test in this binary, so no other thread reads the environment.
    unsafe { std::env::set_var("EVLOOP_DEBUG", "1") };
    let lp = EventLoop::new().unwrap();
    assert!(lp.get_debug());
    lp.set_debug(false);
    assert!(!lp.get_debug());

    // SAFETY: as above.
    unsafe { std::env::set_var("EVLOOP_DEBUG", "0") };
    assert!(!EventLoop::new().unwrap().get_debug());

    // SAFETY: as above.
    unsafe { std::env::remove_var("EVLOOP_DEBUG") };
    assert!(!EventLoop::new().unwrap().get_debug());
}
