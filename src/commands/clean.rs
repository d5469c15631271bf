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
    let swept = sweep(&temp, all)?;
    for r in &swept.removed {
        println!("removed {} ({})", r.0.display(), format_bytes(r.1));
    }
    let freed: u64 = swept.removed.iter().map(|r| r.1).sum();
    let (removed, kept) = (swept.removed.len(), swept.kept);
    for k in &kept {
        println!("kept {k}");
    }
    println!("{removed} work folder(s) removed, {} freed", format_bytes(freed));
    report_history(&session.loaded.settings);
    Ok(0)
}

/// What [`sweep`] did.
pub(super) struct Swept {
    /// The folders removed, and the bytes each freed.
    pub removed: Vec<(std::path::PathBuf, u64)>,
    /// The folders kept: their names and why.
    pub kept: Vec<String>,
}

/// Removes the job folders under `temp` that nobody needs (see
/// [`kept_because`]), and the lock files nobody holds.
pub(super) fn sweep(temp: &Path, all: bool) -> Result<Swept> {
    let mut swept = Swept { removed: Vec::new(), kept: Vec::new() };
    let dirs = std::fs::read_dir(temp.join("jobs")).into_iter().flatten().flatten().map(|e| e.path());
    for dir in dirs.filter(|d| d.is_dir()) {
        if let Some(why) = kept_because(&dir, all) {
            let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            swept.kept.push(format!("{name}: {why}"));
            continue;
        }
        let size = crate::job::space::used_bytes(&dir) + crate::pipeline::output::remove_abandoned_partial(&dir, temp);
        std::fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
        swept.removed.push((dir, size));
    }
    for e in std::fs::read_dir(temp.join("locks")).into_iter().flatten().flatten() {
        if !lock::is_held(&e.path()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(swept)
}

/// Why the job folder `dir` stays: a running drapto holds it, or (without
/// `all`) it is resumable work for an input that is still as it was.
fn kept_because(dir: &Path, all: bool) -> Option<String> {
    if lock::is_held(&dir.join("lock")) {
        return Some("in use by a running drapto".into());
    }
    let info =
        std::fs::read(dir.join("job.json")).ok().and_then(|b| serde_json::from_slice::<crate::job::JobInfo>(&b).ok());
    // A folder a drapto is creating has no `job.json` (nor lock) for a moment.
    let young =
        || std::fs::metadata(dir).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() < 60));
    if info.is_none() && young() {
        return Some("being created".into());
    }
    let abandoned = info.as_ref().is_none_or(|i| !i.is_current());
    if all || abandoned {
        return None;
    }
    let input = info.map(|i| i.input.display().to_string()).unwrap_or_default();
    Some(format!("resumable work for {input} (use --all to remove it too)"))
}

/// Prunes the run logs, failed files' reports and tracking entries to
/// their bounds, and says what is kept.
fn report_history(settings: &crate::config::Settings) {
    let r = Retention::of(settings);
    let p = retention::prune_configured(settings);
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
}
