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
    let settings = &session.loaded.settings;
    super::readable_temp(&settings.temp_dir())?;
    let swept = sweep(&settings.temp_dir(), if all { Sweep::All } else { Sweep::Asked })?;
    let freed: u64 = swept.removed.iter().map(|r| r.1).sum();
    let pruned = retention::prune_configured(settings, None);
    if session.json {
        let removed: Vec<_> =
            swept.removed.iter().map(|(path, bytes)| serde_json::json!({"path": path, "bytes": bytes})).collect();
        let line = serde_json::json!({
            "event": "clean_complete",
            "removed": removed,
            "kept": swept.kept,
            "freed_bytes": freed,
            "history": {
                "log_dir": settings.log_dir(),
                "kept_files": pruned.kept_files,
                "kept_bytes": pruned.kept_bytes,
                "removed_files": pruned.removed_files,
                "freed_bytes": pruned.freed_bytes,
                "dropped_tracking_entries": pruned.dropped_entries,
            },
        });
        println!("{line}");
        return Ok(0);
    }
    for r in &swept.removed {
        println!("removed {} ({})", r.0.display(), format_bytes(r.1));
    }
    for k in &swept.kept {
        println!("kept {k}");
    }
    println!("{} work folder(s) removed, {} freed", swept.removed.len(), format_bytes(freed));
    report_history(settings, &pruned);
    Ok(0)
}

/// What [`sweep`] did.
pub(super) struct Swept {
    /// The folders removed, and the bytes each freed.
    pub removed: Vec<(std::path::PathBuf, u64)>,
    /// The folders kept: their names and why.
    pub kept: Vec<String>,
}

/// Which work folders a sweep removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sweep {
    /// Every one not in use (`drapto clean --all`).
    All,
    /// Those of rips replaced, and of rips gone from a folder that is
    /// there (`drapto clean`).
    Asked,
    /// A watch's own, after every rip: as [`Sweep::Asked`], but the work
    /// of a rip gone from its folder only once untouched for a day (a
    /// share that went away for a moment may show its folder empty).
    Automatic,
}

/// How long a watch keeps the work of a rip gone from its folder.
const GONE_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Removes the job folders under `temp` that nobody needs (see
/// [`kept_because`]), and the lock files nobody holds.
pub(super) fn sweep(temp: &Path, how: Sweep) -> Result<Swept> {
    let mut swept = Swept { removed: Vec::new(), kept: Vec::new() };
    let dirs = std::fs::read_dir(temp.join("jobs")).into_iter().flatten().flatten().map(|e| e.path());
    for dir in dirs.filter(|d| d.is_dir()) {
        if let Some(why) = kept_because(&dir, how) {
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

/// Why the job folder `dir` stays: a running drapto holds it, or (but
/// for [`Sweep::All`]) it is resumable work for a rip that is as it was, or
/// that cannot be looked at now (its folder or share out of reach: the work
/// is only removed on evidence that the rip is gone or replaced).
fn kept_because(dir: &Path, how: Sweep) -> Option<String> {
    if lock::is_held(&crate::job::WorkDir::lock_at(dir)) {
        return Some("in use by a running drapto".into());
    }
    let read = std::fs::read(dir.join("job.json")).map_err(|e| e.to_string());
    let info = read.and_then(|b| serde_json::from_slice::<crate::job::JobInfo>(&b).map_err(|e| e.to_string()));
    // A folder a drapto is creating has no `job.json` (nor lock) for a moment.
    let young =
        || std::fs::metadata(dir).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() < 60));
    if info.is_err() && young() {
        return Some("being created".into());
    }
    if how == Sweep::All {
        return None;
    }
    // Work whose rip cannot be told (its job.json damaged or gone) is no
    // evidence that the rip is gone: it stays, said.
    let info = match info {
        Ok(info) => info,
        Err(e) if crate::job::WorkDir::holds_work(dir) => {
            return Some(format!("its job.json cannot be read ({e}); `drapto clean --all` removes it"));
        }
        Err(_) => return None,
    };
    let input = info.input.display();
    match std::fs::metadata(&info.input) {
        Ok(_) if info.is_current() => Some(format!("resumable work for {input} (use --all to remove it too)")),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && folder_is_there(&info.input) => {
            let grace = how == Sweep::Automatic && !untouched_for(dir, GONE_GRACE);
            grace.then(|| format!("work for {input}, gone from its folder: removed once untouched for a day"))
        }
        Err(e) => {
            let away = e.kind() == std::io::ErrorKind::NotFound
                && info.input.parent().is_some_and(|p| std::fs::read_dir(p).is_ok());
            let why = if away {
                "its folder is an empty mount point: a share not mounted".to_string()
            } else {
                e.to_string()
            };
            Some(format!("work for {input}, out of reach now ({why}); `drapto clean --all` removes it"))
        }
    }
}

/// Whether the folder of `path` can be read, and is no empty mount point
/// (a share's mount point is an empty folder while the share is away, and
/// a rip at its top looked gone from a folder that was there: its work
/// was removed).
fn folder_is_there(path: &Path) -> bool {
    let Some(folder) = path.parent() else { return false };
    match std::fs::read_dir(folder) {
        Ok(mut entries) => entries.next().is_some() || !crate::platform::is_mount_point_in_waiting(folder),
        Err(_) => false,
    }
}

/// Whether nothing in `dir` or its `state/` folder changed for `age`.
fn untouched_for(dir: &Path, age: std::time::Duration) -> bool {
    let entries = [dir.to_path_buf(), crate::job::WorkDir::state_dir_at(dir)]
        .into_iter()
        .flat_map(|d| std::fs::read_dir(&d).into_iter().flatten().flatten().map(|e| e.path()).chain([d]));
    let newest = entries.filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).max();
    newest.is_none_or(|t| t.elapsed().is_ok_and(|e| e >= age))
}

/// Says what pruning the run logs, failed files' reports and tracking
/// entries to their bounds kept and removed (`p`).
fn report_history(settings: &crate::config::Settings, p: &retention::Pruned) {
    let r = Retention::of(settings);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A job folder under `temp` for the rip `input` as `info` says it was.
    fn job(temp: &Path, name: &str, info: &crate::job::JobInfo) -> std::path::PathBuf {
        let dir = temp.join(name);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("job.json"), serde_json::to_vec(info).unwrap()).unwrap();
        dir
    }

    #[test]
    fn work_is_removed_only_on_evidence_that_its_rip_is_gone_or_replaced() {
        let d = tempfile::tempdir().unwrap();
        let rip = d.path().join("film.mkv");
        std::fs::write(&rip, b"rip").unwrap();
        let current = crate::job::JobInfo::of(&rip).unwrap();
        let live = job(d.path(), "live", &current);
        let replaced = job(d.path(), "replaced", &crate::job::JobInfo { size: 99, ..current.clone() });
        let gone_info = crate::job::JobInfo { input: d.path().join("deleted.mkv"), ..current.clone() };
        let gone = job(d.path(), "gone", &gone_info);
        // A share that is not mounted: the rip's folder is not there.
        let away_info = crate::job::JobInfo { input: d.path().join("share/film.mkv"), ..current.clone() };
        let away = job(d.path(), "away", &away_info);
        for how in [Sweep::Asked, Sweep::Automatic] {
            assert!(kept_because(&live, how).is_some_and(|w| w.contains("resumable")), "{how:?}");
            assert_eq!(kept_because(&replaced, how), None, "{how:?}");
            assert!(kept_because(&away, how).is_some_and(|w| w.contains("out of reach")), "{how:?}");
        }
        assert_eq!(kept_because(&gone, Sweep::Asked), None);
        // A watch waits a day: the folder may be a share coming back.
        assert!(kept_because(&gone, Sweep::Automatic).is_some_and(|w| w.contains("untouched for a day")));
        assert!(untouched_for(&gone, std::time::Duration::ZERO) && !untouched_for(&gone, GONE_GRACE));
        for dir in [&live, &replaced, &gone, &away] {
            assert_eq!(kept_because(dir, Sweep::All), None);
        }
    }

    #[test]
    fn work_whose_job_json_cannot_be_read_is_kept_unless_it_holds_nothing() {
        let d = tempfile::tempdir().unwrap();
        let rip = d.path().join("film.mkv");
        std::fs::write(&rip, b"rip").unwrap();
        let info = crate::job::JobInfo::of(&rip).unwrap();
        let damaged = job(d.path(), "damaged", &info);
        std::fs::write(damaged.join("job.json"), b"{\"input\": \"/srv/ri").unwrap();
        std::fs::create_dir_all(damaged.join("encoded")).unwrap();
        std::fs::write(damaged.join("encoded/0001.mkv"), b"segment").unwrap();
        let empty = job(d.path(), "empty", &info);
        std::fs::remove_file(empty.join("job.json")).unwrap();
        // (Older than a folder being created.)
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
        for dir in [&damaged, &empty] {
            std::fs::File::open(dir).unwrap().set_modified(old).unwrap();
        }
        for how in [Sweep::Asked, Sweep::Automatic] {
            let why = kept_because(&damaged, how);
            assert!(why.as_deref().is_some_and(|w| w.contains("job.json cannot be read")), "{how:?}: {why:?}");
            assert_eq!(kept_because(&empty, how), None, "nothing to keep");
        }
        assert_eq!(kept_because(&damaged, Sweep::All), None);
    }
}
