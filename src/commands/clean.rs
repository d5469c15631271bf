//! `drapto clean [--all]`: removes work folders nobody needs any more and
//! says how much space that freed; prunes the history (run logs, failed
//! files' reports, tracking entries) to its configured bounds and says what
//! is kept. Folders locked by a running drapto are never touched.

use super::Session;
use crate::error::{Error, Result};
use crate::job::lock;
use crate::report::retention::{self, Retention};
use crate::units::format_bytes;
use std::path::Path;

/// Removes abandoned job folders (input gone or changed, or no `job.json`),
/// or with `all` every job folder that is not in use; returns the exit code.
pub fn run(all: bool, session: &Session) -> Result<i32> {
    let temp = session.loaded.settings.temp_dir();
    let jobs = temp.join("jobs");
    let mut freed = 0u64;
    let mut removed = 0usize;
    let mut kept = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&jobs) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if lock::is_held(&dir.join("lock")) {
                kept.push(format!("{name}: in use by a running drapto"));
                continue;
            }
            let info = std::fs::read(dir.join("job.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::job::JobInfo>(&b).ok());
            let abandoned = info.as_ref().is_none_or(|i| !i.is_current());
            if !all && !abandoned {
                let input = info.map(|i| i.input.display().to_string()).unwrap_or_default();
                kept.push(format!("{name}: resumable work for {input} (use --all to remove it too)"));
                continue;
            }
            let size = dir_size(&dir);
            std::fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
            freed += size;
            removed += 1;
            println!("removed {} ({})", dir.display(), format_bytes(size));
        }
    }
    // Lock files nobody holds.
    if let Ok(entries) = std::fs::read_dir(temp.join("locks")) {
        for e in entries.flatten() {
            if !lock::is_held(&e.path()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for k in &kept {
        println!("kept {k}");
    }
    println!("{removed} work folder(s) removed, {} freed", format_bytes(freed));
    let settings = &session.loaded.settings;
    let r = Retention::of(settings);
    let p = retention::prune(&settings.log_dir(), &temp.join("encode_data"), r, std::time::SystemTime::now());
    let bound = |n: u32, what: &str| if n == 0 { format!("no {what} limit") } else { format!("{n} {what}") };
    println!(
        "history in {}: {} log(s) and report(s) kept ({}), {} removed ({} freed); {} old tracking entries dropped \
         (bounds: {}, {}, {})",
        settings.log_dir().display(),
        p.kept_files,
        format_bytes(p.kept_bytes),
        p.removed_files,
        format_bytes(p.freed_bytes),
        p.dropped_entries,
        bound(r.keep_days, "days"),
        bound(r.keep_runs, "runs"),
        bound(r.tracking_entries, "tracking entries"),
    );
    Ok(0)
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { dir_size(&path) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
                })
                .sum()
        })
        .unwrap_or(0)
}
