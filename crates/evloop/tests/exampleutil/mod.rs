//! Builds one of this crate's examples with the cargo that runs the tests, for the tests that
//! run an example as a real child process (`ctrl_c.rs`, `hyper_ctrl_c.rs`,
//! `signal_server.rs`). Not a test target itself.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Builds the example `name` (`cargo build -p evloop --example NAME`, with `features` and, when
/// these tests are optimised, `--release`) and returns the path of its executable, read from
/// cargo's `--message-format=json` output.
pub fn build_example(name: &str, features: &[&str]) -> Result<PathBuf, String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "evloop"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.args(["--example", name, "--message-format=json"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --example {name}: {}", out.status));
    }
    let suffix = format!("/examples/{name}");
    let key = "\"executable\":\"";
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| {
            let start = l.find(key)? + key.len();
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .find(|p| p.ends_with(&suffix))
        .map(PathBuf::from)
        .ok_or_else(|| "cargo did not report the example's executable".to_owned())
}
