//! CPython's `test_env_var_debug` (in test_base_events.py and in test_tasks.py's
//! GatherTestsBase, the same check): asyncio's debug mode follows PYTHONASYNCIODEBUG, evloop's
//! follows EVLOOP_DEBUG. CPython runs `python -c` with the variable set or not; this runs the
//! calling test again, in a child process of the same test binary. (-E and -X dev are
//! Python's options.) Not a test target itself.
#![allow(dead_code, unreachable_pub)]

use evloop::EventLoop;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The whole case, for a `#[test] fn test_env_var_debug` to call: in the child (`child_env`
/// set) it prints the new loop's `get_debug()`; in the parent it runs that test (`--exact
/// test_env_var_debug`) as a child with EVLOOP_DEBUG unset, empty and `1`, and checks the
/// answers. `child_env` is the binary's own variable that marks the child.
pub fn test_env_var_debug(child_env: &str) -> TestResult {
    if std::env::var_os(child_env).is_some() {
        // In the child process: the parent reads this line.
        println!("get_debug={}", EventLoop::new()?.get_debug());
        return Ok(());
    }
    let debug_in_child = |value: Option<&str>| -> Result<String, Box<dyn std::error::Error>> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args([
            "--exact",
            "test_env_var_debug",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(child_env, "1");
        match value {
            Some(v) => cmd.env("EVLOOP_DEBUG", v),
            None => cmd.env_remove("EVLOOP_DEBUG"),
        };
        let out = cmd.output()?;
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout)?;
        // The harness prints "test test_env_var_debug ... " on the same line.
        let at = stdout
            .find("get_debug=")
            .ok_or(format!("no answer: {stdout:?}"))?;
        let answer = stdout[at..].split_whitespace().next().unwrap_or_default();
        Ok(answer.to_string())
    };
    assert_eq!(debug_in_child(None)?, "get_debug=false");
    assert_eq!(debug_in_child(Some(""))?, "get_debug=false");
    assert_eq!(debug_in_child(Some("1"))?, "get_debug=true");
    Ok(())
}
