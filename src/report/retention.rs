//! A bounded history: run logs (`encode_*.log`) and failed files' reports
//! in the log folder are kept for [`Retention::keep_days`] and at most
//! [`Retention::keep_runs`] runs; each tracking file (`encode_data/*.txt`)
//! keeps its newest [`Retention::tracking_entries`] lines. `encode` prunes
//! at its start, `drapto clean` prunes and says what it did.

use super::file_report::FAILED_REPORT;
use crate::job::tracking::Tracking;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How much history to keep (0 in any field: no bound of that kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_days: u32,
    pub keep_runs: u32,
    pub tracking_entries: u32,
}

impl Retention {
    pub fn of(settings: &crate::config::Settings) -> Retention {
        let p = &settings.processing;
        Retention { keep_days: p.log_keep_days, keep_runs: p.log_keep_runs, tracking_entries: p.tracking_keep_entries }
    }
}

/// What a prune found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Run logs and failure reports kept, and their bytes.
    pub kept_files: usize,
    pub kept_bytes: u64,
    /// Removed, and the bytes that freed.
    pub removed_files: usize,
    pub freed_bytes: u64,
    /// Tracking lines dropped (oldest first), over all tracking files.
    pub dropped_entries: usize,
}

/// Files in `log_dir` that belong to the history: run logs and the reports
/// of failed files, with their modification times and sizes, newest first.
/// A finished file's report (beside its output, or in `paths.report_dir`,
/// which may be the log folder) lasts as long as the output: it was
/// removed with the old run logs.
fn history(log_dir: &Path) -> Vec<(PathBuf, SystemTime, u64)> {
    let mut files: Vec<(PathBuf, SystemTime, u64)> = std::fs::read_dir(log_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (n.starts_with("encode_") && n.ends_with(".log")) || n.ends_with(FAILED_REPORT)
                })
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    m.is_file().then(|| (e.path(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    files
}

/// Prunes the history where `settings` keep it (their log folder and the
/// tracking files in their temp folder) to their bounds, now; `own` is
/// this run's log, if it has one.
pub fn prune_configured(settings: &crate::config::Settings, own: Option<&Path>) -> Pruned {
    let tracking = Tracking::in_temp(&settings.temp_dir());
    prune(&settings.log_dir(), &tracking, Retention::of(settings), SystemTime::now(), own)
}

/// Prunes the history in `log_dir` and the tracking files in
/// `tracking` as `r` says, at `now`. The newest run log is never
/// removed, nor `own` (this run's), which is not counted either: it may
/// yet be removed as a run that only looked, and counted, it rotated a
/// failure's log away all the same.
pub fn prune(log_dir: &Path, tracking: &Tracking, r: Retention, now: SystemTime, own: Option<&Path>) -> Pruned {
    let mut out = Pruned::default();
    let max_age = Duration::from_secs(u64::from(r.keep_days) * 86_400);
    let mut runs = 0u32;
    let history = history(log_dir).into_iter().filter(|(path, ..)| Some(path.as_path()) != own);
    for (i, (path, mtime, size)) in history.enumerate() {
        let is_run = path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".log"));
        runs += u32::from(is_run);
        let too_old = r.keep_days > 0 && now.duration_since(mtime).is_ok_and(|age| age > max_age);
        let too_many = r.keep_runs > 0 && is_run && runs > r.keep_runs;
        if i > 0 && (too_old || too_many) && std::fs::remove_file(&path).is_ok() {
            out.removed_files += 1;
            out.freed_bytes += size;
        } else {
            out.kept_files += 1;
            out.kept_bytes += size;
        }
    }
    if r.tracking_entries > 0 {
        out.dropped_entries += tracking.trim(r.tracking_entries as usize);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, age_days: u64, now: SystemTime) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"0123456789").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - Duration::from_secs(age_days * 86_400)).unwrap();
        p
    }

    #[test]
    fn old_and_surplus_runs_go_the_newest_stays() {
        let t = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let newest = touch(t.path(), "encode_20261201_120000.log", 0, now);
        let mid = touch(t.path(), "encode_20261120_120000.log", 11, now);
        let old = touch(t.path(), "encode_20260101_120000.log", 300, now);
        let failed = touch(t.path(), "film.mkv.1a2b3c4d.failed.report.json", 200, now);
        let other = touch(t.path(), "notes.txt", 900, now);
        let encoded = touch(t.path(), "other.mkv.5e6f7a8b.report.json", 900, now);
        let r = Retention { keep_days: 90, keep_runs: 0, tracking_entries: 0 };
        let p = prune(t.path(), &Tracking::at(t.path()), r, now, None);
        assert_eq!((p.removed_files, p.freed_bytes, p.kept_files), (2, 20, 2));
        assert!(newest.exists() && mid.exists() && !old.exists() && !failed.exists());
        assert!(other.exists(), "not drapto's history");
        assert!(encoded.exists(), "a finished file's report (report_dir = log_dir) lasts as long as its output");
        // By count: one run kept, however young the others.
        let r = Retention { keep_days: 0, keep_runs: 1, tracking_entries: 0 };
        assert_eq!(prune(t.path(), &Tracking::at(t.path()), r, now, None).removed_files, 1);
        assert!(newest.exists() && !mid.exists());
        // Even a very short age keeps this run's log.
        let r = Retention { keep_days: 1, keep_runs: 0, tracking_entries: 0 };
        let stale = touch(t.path(), "encode_29990101_000000.log", 5, now);
        std::fs::remove_file(&newest).unwrap();
        prune(t.path(), &Tracking::at(t.path()), r, now, None);
        assert!(stale.exists(), "the newest is this run's");
    }

    #[test]
    fn tracking_files_keep_their_newest_entries() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("encoded_files.txt");
        std::fs::write(&f, (1..=10).map(|i| format!("in{i}\tout{i}\n")).collect::<String>()).unwrap();
        let r = Retention { keep_days: 0, keep_runs: 0, tracking_entries: 4 };
        let p = prune(t.path(), &Tracking::at(t.path()), r, SystemTime::now(), None);
        assert_eq!(p.dropped_entries, 6);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "in7\tout7\nin8\tout8\nin9\tout9\nin10\tout10\n");
        let r = Retention { keep_days: 0, keep_runs: 0, tracking_entries: 0 };
        assert_eq!(
            prune(t.path(), &Tracking::at(t.path()), r, SystemTime::now(), None).dropped_entries,
            0,
            "0: unbounded"
        );
    }
}
