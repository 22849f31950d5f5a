//! The report: the markdown table (stdout and docs/benchmarks.md) and the SVG bar chart of
//! the ratios (docs/benchmarks.svg, hand-written SVG).

use std::fmt::Write as _;
use std::time::Duration;

use crate::rt::Kind;
use crate::workloads::Workload;

/// One runtime's results for one metric.
pub(crate) enum Cell {
    Samples(Vec<f64>),
    NotApplicable(&'static str),
    Failed(String),
}

impl Cell {
    fn median(&self) -> Option<f64> {
        let Cell::Samples(s) = self else { return None };
        if s.is_empty() {
            return None;
        }
        let mut v = s.clone();
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        })
    }

    fn range(&self) -> Option<(f64, f64)> {
        let Cell::Samples(s) = self else { return None };
        let min = s.iter().copied().min_by(f64::total_cmp)?;
        let max = s.iter().copied().max_by(f64::total_cmp)?;
        Some((min, max))
    }

    fn show(&self) -> String {
        match self {
            Cell::Samples(_) => self.median().map_or_else(|| "–".to_owned(), num),
            Cell::NotApplicable(_) => "n/a".to_owned(),
            Cell::Failed(_) => "**FAIL**".to_owned(),
        }
    }
}

/// One line of the table: a metric of a workload, one cell per runtime (in `Kind::ALL` order).
pub(crate) struct Row {
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) cells: [Cell; 4],
}

impl Row {
    /// evloop's median over the best peer's, and that peer.
    fn ratio(&self) -> Option<(f64, Kind)> {
        let ev = self.cells[Kind::Evloop.index()].median()?;
        let (best, kind) = Kind::ALL[1..]
            .iter()
            .filter_map(|&k| self.cells[k.index()].median().map(|m| (m, k)))
            .min_by(|a, b| a.0.total_cmp(&b.0))?;
        (best > 0.0).then(|| (ev / best, kind))
    }

    fn show_ratio(&self) -> String {
        match (&self.cells[Kind::Evloop.index()], self.ratio()) {
            (Cell::Failed(_), _) => "**FAIL**".to_owned(),
            (_, Some((r, k))) => format!("{r:.2} ({})", k.name()),
            (_, None) => "–".to_owned(),
        }
    }
}

/// The run's circumstances.
pub(crate) struct Meta {
    pub(crate) nproc: usize,
    pub(crate) cpu: String,
    pub(crate) date: (String, String),
    pub(crate) rustc: String,
    pub(crate) command: String,
    pub(crate) reps: usize,
    pub(crate) quick: bool,
    pub(crate) load: (String, String),
    pub(crate) wall: Duration,
}

/// A number with about three significant digits.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The markdown table of medians.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| workload | unit |");
    for k in Kind::ALL {
        let _ = write!(out, " {} |", k.name());
    }
    out.push_str(" evloop / best peer |\n|---|---|");
    for _ in Kind::ALL {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for r in rows {
        let _ = write!(out, "| {} | {} |", r.name, r.unit);
        for c in &r.cells {
            let _ = write!(out, " {} |", c.show());
        }
        let _ = writeln!(out, " {} |", r.show_ratio());
    }
    out
}

fn spread_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| workload |");
    for k in Kind::ALL {
        let _ = write!(out, " {} |", k.name());
    }
    out.push_str("\n|---|");
    for _ in Kind::ALL {
        out.push_str("---:|");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(out, "| {} |", r.name);
        for c in &r.cells {
            let s = match (c, c.range()) {
                (Cell::Samples(_), Some((lo, hi))) => format!("{} – {}", num(lo), num(hi)),
                (Cell::NotApplicable(why), _) => format!("n/a: {why}"),
                (Cell::Failed(e), _) => format!("FAIL: {e}"),
                _ => "–".to_owned(),
            };
            let _ = write!(out, " {s} |");
        }
        out.push('\n');
    }
    out
}

/// docs/benchmarks.md.
pub(crate) fn markdown(rows: &[Row], workloads: &[Workload], meta: &Meta) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# evloop benchmarks\n\n\
         Written by `cargo xtask bench` (crates/bench); do not edit by hand — rerun it.\n\n\
         - Machine: {} CPUs, {}\n\
         - Date: {} {} UTC\n\
         - Compiler: {}\n\
         - Command: `{}` (= `cargo run --release -p evloop-bench --{}`)\n\
         - Repetitions: {} per workload and runtime{}, the runtimes alternating within each \
         repetition (evloop, tokio-local, tokio-spawn, smol); every cell is the **median**.\n\
         - Load average (1/5/15 min) at start: {}; at end: {}. Total time {:.0} s.\n",
        meta.nproc,
        meta.cpu,
        meta.date.0,
        meta.date.1,
        meta.rustc,
        meta.command,
        meta.command.trim_start_matches("cargo xtask bench"),
        meta.reps,
        if meta.quick {
            ", `--quick` sizes (counts ÷10)"
        } else {
            " (after one un-timed warm-up round, except memory and TCP)"
        },
        meta.load.0,
        meta.load.1,
        meta.wall.as_secs_f64(),
    );
    md.push_str(&table(rows));
    md.push_str(
        "\nLower is better in every row. The last column is evloop's median over the best \
         peer's (named): **< 1 means evloop is faster** (or smaller), > 1 slower. Ratios are \
         only compared within one run: absolute numbers move with the machine and its load.\n\n\
         ![evloop / best peer, per workload](benchmarks.svg)\n\n",
    );
    md.push_str("## The runtimes\n\n");
    md.push_str(
        "All single-threaded, each on a fresh instance per sample (building it is not timed):\n\n\
         - **evloop**: `evloop_core::EventLoop::run_until_complete`; tasks with \
         `running_loop().create_task` (what `evloop::spawn` does), `evloop_core::sleep`, \
         `evloop_core::yield_now`.\n\
         - **tokio-local**: tokio `current_thread` runtime, `LocalSet::run_until`, \
         `tokio::task::spawn_local`.\n\
         - **tokio-spawn**: tokio `current_thread` runtime, `block_on`, `tokio::spawn`.\n\
         - **smol**: `async_executor::LocalExecutor::run` inside `async_io::block_on` \
         (what `smol::LocalExecutor` + `smol::block_on` are).\n\n\
         Channels are `async-channel` for every runtime, so only the runtime differs; \
         yields and sleeps are each runtime's own.\n\n",
    );
    md.push_str("## The workloads\n\n");
    for w in workloads {
        let _ = writeln!(md, "- **{}**: {}", w.name, w.about);
    }
    md.push_str("\n## Spread (min – max over the repetitions)\n\n");
    md.push_str(&spread_table(rows));
    md.push_str(
        "\n## Reproducing\n\n\
         `cargo xtask bench` (about 2 minutes), `cargo xtask bench --quick` (under a minute), \
         `cargo xtask bench --filter NAME` for one workload (a filtered run prints its table \
         and does not rewrite this file). Profiling evloop alone on one workload with small \
         counts: `valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
         target/release/evloop-bench --filter NAME --runtime evloop --quick --reps 1`, then \
         `callgrind_annotate /tmp/cg.out | head -60`.\n",
    );
    md
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// docs/benchmarks.svg: one horizontal bar per row, log2 scale around 1.
pub(crate) fn svg(rows: &[Row], meta: &Meta) -> String {
    const W: f64 = 940.0;
    const LABEL_X: f64 = 235.0;
    const X0: f64 = 255.0; // left end of the plot
    const X1: f64 = 715.0; // right end
    const VALUE_X: f64 = 730.0; // the numbers, in their own column
    const PEER_X: f64 = 785.0; // "vs peer"
    const TOP: f64 = 64.0;
    const ROW: f64 = 26.0;
    const SPAN: f64 = 3.0; // log2 range each side: 1/8 .. 8
    let mid = (X0 + X1) / 2.0;
    let per_doubling = (X1 - X0) / (2.0 * SPAN);
    let x_of = |r: f64| mid + r.log2().clamp(-SPAN, SPAN) * per_doubling;
    let h = TOP + ROW * rows.len() as f64 + 56.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">evloop / best peer (median of {}; &lt; 1 = evloop faster)</text>"##,
        W / 2.0,
        meta.reps
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="40" fill="#555" text-anchor="middle">{} · {} CPUs · {} · {}</text>"##,
        W / 2.0,
        esc(&meta.date.0),
        meta.nproc,
        esc(&meta.cpu),
        esc(&meta.rustc)
    );
    // Grid.
    let bottom = TOP + ROW * rows.len() as f64;
    for (r, label) in [
        (0.125, "⅛"),
        (0.25, "¼"),
        (0.5, "½"),
        (1.0, "1"),
        (2.0, "2"),
        (4.0, "4"),
        (8.0, "8"),
    ] {
        let x = x_of(r);
        let (stroke, dash) = if r == 1.0 {
            ("#333", "")
        } else {
            ("#ccc", r#" stroke-dasharray="3,3""#)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}"{dash}/>"#,
            TOP - 6.0,
            bottom + 4.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#333">{label}×</text>"##,
            bottom + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#2e7d32">← evloop faster</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#c62828">evloop slower →</text>"##,
        (X0 + mid) / 2.0,
        bottom + 38.0,
        (mid + X1) / 2.0,
        bottom + 38.0
    );
    // Bars.
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let cy = y + ROW / 2.0;
        let _ = writeln!(
            s,
            r##"<text x="{LABEL_X}" y="{:.1}" text-anchor="end">{} <tspan fill="#777">({})</tspan></text>"##,
            cy + 4.0,
            esc(row.name),
            esc(row.unit)
        );
        match row.ratio() {
            Some((r, peer)) => {
                let x = x_of(r);
                let (x_a, x_b) = if x < mid { (x, mid) } else { (mid, x) };
                let color = if r <= 1.0 { "#2e7d32" } else { "#c62828" };
                let _ = writeln!(
                    s,
                    r#"<rect x="{x_a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                    y + 5.0,
                    (x_b - x_a).max(1.0),
                    ROW - 10.0
                );
                let clipped = if r.log2().abs() > SPAN {
                    " (off scale)"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{VALUE_X}" y="{:.1}" fill="{color}" font-weight="bold">{r:.2}×</text><text x="{PEER_X}" y="{:.1}" fill="#777">vs {}{clipped}</text>"##,
                    cy + 4.0,
                    cy + 4.0,
                    peer.name()
                );
            }
            None => {
                let what = match &row.cells[Kind::Evloop.index()] {
                    Cell::Failed(_) => "FAILED",
                    _ => "no comparison",
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{VALUE_X}" y="{:.1}" fill="#777">{what}</text>"##,
                    cy + 4.0
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
