//! # evloop-bench: evloop against tokio and smol, same workloads, same run
//!
//! `cargo xtask bench [--quick] [--filter NAME]...` (= `cargo run --release -p evloop-bench --`).
//!
//! For every workload and every repetition the runtimes run one after another (evloop,
//! tokio-local, tokio-spawn, smol), so slow drifts of a busy machine hit all of them alike;
//! each cell of the report is the median of the repetitions, and the last column is
//! evloop / best peer (< 1: evloop is faster). Every workload checks its result (task counts,
//! sums, echoed bytes), so a broken runtime cannot look fast.
//!
//! The table goes to stdout and, for an unfiltered run, to `docs/benchmarks.md` with a bar
//! chart of the ratios in `docs/benchmarks.svg`.

mod harness;
mod http;
mod memory;
mod report;
mod rt;
mod serve;
mod sys;
mod tcp;
mod workloads;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;

use report::{Cell, Row};
use rt::Kind;
use workloads::{Sample, Scale, Workload};

/// Command-line options.
struct Options {
    quick: bool,
    filters: Vec<String>,
    reps: usize,
    write: bool,
    runtimes: Vec<Kind>,
    args: Vec<String>,
}

const USAGE: &str = "\
Usage: evloop-bench [--quick] [--filter NAME]... [--runtime NAME]... [--reps N]
                    [--no-write] [--list]

  --quick        counts ÷10, 3 repetitions, 1 s TCP samples (under a minute)
  --filter NAME  only the workloads whose name contains NAME (repeatable);
                 a filtered run does not write docs/
  --runtime NAME only this runtime (repeatable; for profiling one runtime);
                 such a run does not write docs/ either
  --reps N       repetitions per workload and runtime (default 7, 3 with --quick);
                 a full run also does one un-timed warm-up round first
  --no-write     print the table only
  --list         list the workloads";

fn parse_args(args: Vec<String>) -> Result<Options, String> {
    let mut opts = Options {
        quick: false,
        filters: Vec::new(),
        reps: 0,
        write: true,
        runtimes: Vec::new(),
        args: args.clone(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--filter" => opts.filters.push(it.next().ok_or("--filter needs a NAME")?),
            "--reps" => {
                opts.reps = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--reps needs a positive number")?;
            }
            "--no-write" => opts.write = false,
            "--runtime" => {
                let name = it.next().ok_or("--runtime needs a NAME")?;
                let kind = Kind::from_name(&name).ok_or_else(|| {
                    format!("unknown runtime `{name}` (evloop, tokio-local, tokio-spawn, smol)")
                })?;
                opts.runtimes.push(kind);
            }
            "--list" => {
                for w in workloads::all() {
                    println!("{:<14} {}", w.name, w.about);
                }
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            // `cargo bench` passes this to every bench target; accept it harmlessly.
            "--bench" => {}
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if opts.reps == 0 {
        opts.reps = if opts.quick { 3 } else { 7 };
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(memory::SUBCOMMAND) {
        memory::child(&args[1..]);
    }
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("evloop-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let scale = Scale { quick: opts.quick };
    let selected: Vec<Workload> = workloads::all()
        .into_iter()
        .filter(|w| {
            opts.filters.is_empty() || opts.filters.iter().any(|f| w.name.contains(f.as_str()))
        })
        .collect();
    if selected.is_empty() {
        eprintln!(
            "evloop-bench: no workload matches {:?} (see --list)",
            opts.filters
        );
        return ExitCode::from(2);
    }

    let load_before = sys::loadavg();
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for w in &selected {
        rows.extend(run_workload(w, &scale, opts.reps, &opts.runtimes));
    }
    let meta = report::Meta {
        nproc: sys::nproc(),
        cpu: sys::cpu_model(),
        date: sys::utc_now(),
        rustc: env!("EVLOOP_BENCH_RUSTC").to_owned(),
        command: command_line(&opts.args),
        reps: opts.reps,
        quick: opts.quick,
        load: (load_before, sys::loadavg()),
        wall: started.elapsed(),
    };

    let table = report::table(&rows);
    println!("\n{table}");
    let failed = rows
        .iter()
        .any(|r| r.cells.iter().any(|c| matches!(c, Cell::Failed(_))));
    if opts.write && opts.filters.is_empty() && opts.runtimes.is_empty() {
        let docs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs"));
        let md = report::markdown(&rows, &selected, &meta);
        let svg = report::svg(&rows, &meta);
        let written = std::fs::create_dir_all(&docs)
            .and_then(|()| std::fs::write(docs.join("benchmarks.md"), md))
            .and_then(|()| std::fs::write(docs.join("benchmarks.svg"), svg));
        match written {
            Ok(()) => eprintln!("wrote docs/benchmarks.md and docs/benchmarks.svg"),
            Err(e) => {
                eprintln!("evloop-bench: writing docs/: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed {
        eprintln!("evloop-bench: some samples FAILED their sanity check (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn command_line(args: &[String]) -> String {
    let mut cmd = "cargo xtask bench".to_owned();
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    cmd
}

/// All repetitions of one workload, runtimes alternating within each repetition.
fn run_workload(w: &Workload, scale: &Scale, reps: usize, only: &[Kind]) -> Vec<Row> {
    let mut rows: Vec<Row> = w
        .metrics
        .iter()
        .map(|m| Row {
            name: if m.name.is_empty() { w.name } else { m.name },
            unit: m.unit,
            cells: std::array::from_fn(|_| Cell::Samples(Vec::new())),
        })
        .collect();
    let warm = usize::from(w.warm_up && !scale.quick);
    for rep in 0..warm + reps {
        let mut line = if rep < warm {
            format!("{:<14} warm-up", w.name)
        } else {
            format!("{:<14} rep {}/{}", w.name, rep + 1 - warm, reps)
        };
        for kind in Kind::ALL {
            let k = kind.index();
            if !only.is_empty() && !only.contains(&kind) {
                continue;
            }
            if rows.iter().any(|r| !matches!(r.cells[k], Cell::Samples(_))) {
                continue; // not applicable or failed before: do not run again
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| (w.run)(kind, scale)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&*p))));
            match outcome {
                Ok(Sample::Values(values)) => {
                    line.push_str(&format!(
                        "  {} {}",
                        kind.name(),
                        values
                            .iter()
                            .map(|v| report::num(*v))
                            .collect::<Vec<_>>()
                            .join("/")
                    ));
                    if rep >= warm {
                        for (row, v) in rows.iter_mut().zip(values) {
                            if let Cell::Samples(s) = &mut row.cells[k] {
                                s.push(v);
                            }
                        }
                    }
                }
                Ok(Sample::NotApplicable(why)) => {
                    for row in &mut rows {
                        row.cells[k] = Cell::NotApplicable(why);
                    }
                }
                Err(e) => {
                    eprintln!("FAILED {} on {}: {e}", w.name, kind.name());
                    for row in &mut rows {
                        row.cells[k] = Cell::Failed(e.clone());
                    }
                }
            }
        }
        eprintln!("{line}");
    }
    rows
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".to_owned())
}
