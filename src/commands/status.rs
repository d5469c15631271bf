//! `drapto status [--json]`: what every drapto here is doing or did, read
//! from the temporary folder: the watch queues, the file being encoded
//! with its stage, progress and ETA, and the last results.

use super::Session;
use crate::error::Result;
use crate::report::status::{self, RunStatus};
use crate::units::format_duration;
use crate::watch::{QueueFile, State};

/// Prints the status; returns the exit code.
pub fn run(session: &Session) -> Result<i32> {
    let temp = session.loaded.settings.temp_dir();
    super::readable_temp(&temp)?;
    let runs = status::all(&temp);
    let queues = queues(&temp);
    let mut last: Vec<&status::Result> = runs.iter().flat_map(|r| &r.last).collect();
    // A run killed outright (SIGKILL, a crash, a power cut) said nothing of
    // the rip it was encoding: its status file still says where it was.
    let unfinished = status::unfinished(&runs, &last);
    last.extend(&unfinished);
    last.sort_by(|a, b| b.at.cmp(&a.at));
    last.truncate(10);
    if session.json {
        let running: Vec<&RunStatus> = runs.iter().filter(|r| status::is_running(r)).collect();
        let json = serde_json::json!({ "running": running, "queues": queues, "last": last });
        println!("{json}");
        return Ok(0);
    }
    let running: Vec<&RunStatus> = runs.iter().filter(|r| status::is_running(r)).collect();
    let idle = running.is_empty();
    if idle {
        // (A drapto with another temporary folder, another user's or a
        // service's DRAPTO_TEMP_DIR, is not seen from here.)
        println!("No drapto is running with temporary folder {}.", temp.display());
    }
    running.into_iter().for_each(print_run);
    for q in &queues {
        print_queue(q, idle);
    }
    if !last.is_empty() {
        println!("Last results:");
        for r in last {
            let input = crate::report::for_people(&r.input.display().to_string());
            let detail = r.detail.strip_prefix(&format!("{}: ", r.input.display())).unwrap_or(&r.detail);
            println!("  {} {:<11} {input}: {}", r.at, r.outcome, crate::report::for_people(detail));
        }
    }
    Ok(0)
}

/// A running drapto: the rip it encodes (stage, percent, ETA) or idle, and
/// the rips it has waiting.
fn print_run(r: &RunStatus) {
    let people = |p: &std::path::Path| crate::report::for_people(&p.display().to_string());
    match &r.current {
        Some(c) => println!(
            "drapto (pid {}): encoding {}{}\n  {} {:.0}%{}\n  → {}",
            r.pid,
            people(&c.input),
            if c.total > 1 { format!(" (rip {} of {})", c.index, c.total) } else { String::new() },
            c.stage,
            c.percent,
            c.eta_now(chrono::Utc::now())
                .map(|e| format!(", this stage's ETA {}", format_duration(e)))
                .unwrap_or_default(),
            people(&c.output)
        ),
        None => println!("drapto (pid {}): idle, since {}", r.pid, r.updated_at),
    }
    if r.waiting > 0 {
        let named: Vec<String> = r.next.iter().map(|p| people(p)).collect();
        let more = r.waiting.saturating_sub(named.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        println!("  {} waiting: {}{more}", r.waiting, named.join(", "));
    }
}

/// A watch queue: its rips waiting, settling and failed (`idle`: no drapto
/// runs, so no watch takes them).
fn print_queue(q: &QueueFile, idle: bool) {
    let of = |want: &dyn Fn(&State) -> bool| -> Vec<String> {
        q.files
            .iter()
            .filter(|(_, e)| want(&e.state))
            .map(|(p, _)| crate::report::for_people(&p.display().to_string()))
            .collect()
    };
    let waiting = of(&|s| *s == State::Waiting);
    let settling = of(&|s| *s == State::Settling);
    let failed = of(&|s| matches!(s, State::Failed { .. }));
    // (A queue's rips wait for its watch: none runs, none moves.)
    let stopped = if idle { " (its watch is not running: `drapto watch` takes it up again)" } else { "" };
    println!("Queue of {} → {}{stopped}:", q.library.display(), q.output.display());
    println!(
        "  {} waiting, {} settling, {} failed (retried once changed)",
        waiting.len(),
        settling.len(),
        failed.len()
    );
    for (label, list) in [("waiting", &waiting), ("settling", &settling), ("failed", &failed)] {
        for p in list.iter() {
            println!("    {label:<8} {p}");
        }
    }
}

/// Every watch queue under `temp`.
fn queues(temp: &std::path::Path) -> Vec<QueueFile> {
    std::fs::read_dir(crate::watch::folder(temp))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}
