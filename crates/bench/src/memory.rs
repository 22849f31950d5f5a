//! Memory per pending task, measured in a fresh child process per sample.
//!
//! The parent re-executes its own binary as `evloop-bench __memory KIND N`; the child builds the
//! runtime, reads its RSS, spawns N detached tasks that each sleep for an hour, yields
//! until every task has been polled once, reads its RSS again, prints
//! `(after - before) / N` and exits at once (no teardown of a million tasks).

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rt::{Evloop, Kind, Runtime, Smol, TokioLocal, TokioSpawn};
use crate::sys::rss_bytes;
use crate::workloads::{Sample, Scale, on_kind};

/// The hidden subcommand the parent runs.
pub(crate) const SUBCOMMAND: &str = "__memory";

/// Parent side: one child per sample.
pub(crate) fn run(kind: Kind, scale: &Scale) -> Result<Sample, String> {
    let n = scale.pick(1_000_000, 100_000);
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .args([SUBCOMMAND, kind.name(), &n.to_string()])
        .output()
        .map_err(|e| format!("spawning the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // The child prints "<tasks polled> <bytes per task>".
    let mut fields = stdout.split_whitespace();
    let polled: u64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad child output {stdout:?}"))?;
    let per_task: f64 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad child output {stdout:?}"))?;
    if polled != n as u64 {
        return Err(format!("tasks polled: got {polled}, expected {n}"));
    }
    Ok(Sample::Values(vec![per_task]))
}

/// Child side: never returns.
pub(crate) fn child(args: &[String]) -> ! {
    let kind = args.first().and_then(|k| Kind::from_name(k));
    let n = args.get(1).and_then(|n| n.parse::<u64>().ok());
    let (Some(kind), Some(n)) = (kind, n) else {
        eprintln!("usage: evloop-bench {SUBCOMMAND} <runtime> <tasks>");
        std::process::exit(2);
    };
    let (polled, per_task) = on_kind!(kind, measure(n));
    println!("{polled} {per_task:.1}");
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

fn measure<R: Runtime>(n: u64) -> (u64, f64) {
    let rt = R::new();
    let out = rt.block_on(async move {
        let started = Arc::new(AtomicU64::new(0));
        // Let the runtime settle (first poll, lazily created structures) before measuring.
        R::yield_now().await;
        let before = rss_bytes();
        for _ in 0..n {
            let s = started.clone();
            R::detach(R::spawn(async move {
                s.fetch_add(1, Ordering::Relaxed);
                // Sleeping (the definition): task + timer, never firing during the
                // measurement.
                R::sleep(std::time::Duration::from_secs(3600)).await;
            }));
        }
        while started.load(Ordering::Relaxed) < n {
            R::yield_now().await;
        }
        let after = rss_bytes();
        let polled = started.load(Ordering::Relaxed);
        (polled, after.saturating_sub(before) as f64 / n as f64)
    });
    // Leak the runtime and its million tasks: the process exits right after.
    std::mem::forget(rt);
    out
}
