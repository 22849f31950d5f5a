//! Records the version of the compiler that builds the benchmark (for the report).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
    println!("cargo:rustc-env=EVLOOP_BENCH_RUSTC={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
