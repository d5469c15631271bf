//! The log file subscriber: every event as a line through `tracing`, which
//! the binary routes to `logs/encode_<timestamp>.log` in the design's format
//! (`[2024-01-18T14:15:00Z] INFO: message`), a new file each day
//! ([`DailyFile`]).

use crate::events::{Check, Event, EventSink};
use crate::report::{format_bytes, format_duration};
use chrono::{DateTime, Local, NaiveDate};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The run log's file, `encode_<local time>.log` in its folder: a run that
/// goes past midnight (a watch left in charge for weeks) goes on in a new
/// file each day, so that the history's bounds (days, runs) keep its log
/// to their size. A chunked film logs about 8 MB of commands; a library's
/// backlog in one file grew without bound.
pub struct DailyFile {
    dir: PathBuf,
    day: NaiveDate,
    file: std::fs::File,
    /// Where `file` is, and when that was last looked at (a log folder
    /// deleted mid-run took the rest of the log with it, unsaid).
    path: PathBuf,
    looked: std::time::Instant,
    /// Lines not written since the last that was (a full disk), and why:
    /// said on stderr at the first, in the log once it can be written.
    lost: Option<(usize, String)>,
    /// Every file this run logged to, and whether the run did anything its
    /// log must keep (see [`DailyFile::finish`]).
    files: Vec<PathBuf>,
    kept: bool,
}

/// The time at the head of a log line, as the design writes it
/// (`2024-01-18T14:15:00Z`): now, in UTC.
pub fn line_time() -> impl std::fmt::Display {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
}

/// The run log, shared by the log layer's writers, the events that mark
/// it worth keeping ([`LogEvents`]), the summary that names it, and the
/// binary, which finishes it.
pub type SharedLog = std::sync::Arc<std::sync::Mutex<DailyFile>>;

/// `log`, locked (a writer that panicked left it as usable as before).
pub fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, DailyFile> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often the log file's presence is looked at.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl DailyFile {
    /// Opens this run's first log file in `dir` (created if missing); the
    /// path it could not open in the error.
    pub fn open(dir: &Path) -> Result<DailyFile, (PathBuf, std::io::Error)> {
        DailyFile::open_at(dir, Local::now())
    }

    fn open_at(dir: &Path, now: DateTime<Local>) -> Result<DailyFile, (PathBuf, std::io::Error)> {
        let stamp = now.format("%Y%m%d_%H%M%S");
        let path = dir.join(format!("encode_{stamp}.log"));
        let new = |p: &Path| std::fs::OpenOptions::new().create_new(true).append(true).open(p);
        std::fs::create_dir_all(dir).map_err(|e| (path.clone(), e))?;
        // Another run that started in the same second has that name.
        let (path, opened) = match new(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let own = dir.join(format!("encode_{stamp}_{}.log", std::process::id()));
                let opened = std::fs::OpenOptions::new().create(true).append(true).open(&own);
                (own, opened)
            }
            opened => (path, opened),
        };
        let file = opened.map_err(|e| (path.clone(), e))?;
        let looked = std::time::Instant::now();
        let files = vec![path.clone()];
        Ok(DailyFile {
            dir: dir.to_path_buf(),
            day: now.date_naive(),
            file,
            path,
            looked,
            lost: None,
            files,
            kept: false,
        })
    }

    /// The file the log goes to now.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks the log worth keeping: the run analysed a rip (work began),
    /// failed one, stopped one, or failed itself (see [`DailyFile::finish`]).
    pub fn keep(&mut self) {
        self.kept = true;
    }

    /// At the end of the run: removes its log files unless [`DailyFile::keep`]
    /// was called. A run that only looked (every rip already encoded, a
    /// watch with nothing new) leaves no log: each counted towards
    /// `log_keep_runs`, and a run every 15 minutes rotated a failure's log
    /// away within a day.
    pub fn finish(&mut self) {
        if !self.kept {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    /// Appends `buf` whole, or nothing of it: a disk that fills mid-line
    /// left half a line, and the next glued to it.
    fn append_whole(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        self.file.write_all(buf).inspect_err(|_| {
            let _ = self.file.set_len(len);
        })
    }

    /// Writes `buf`, and first the count of the lines lost before it; a
    /// line that cannot be written is counted, and the first said on
    /// stderr, since the log cannot say it.
    fn write_line(&mut self, buf: &[u8]) {
        let result = match self.lost.clone() {
            Some((n, why)) => {
                let marker = format!("[{}] WARN: {n} log line(s) before this one were lost: {why}\n", line_time());
                self.append_whole(marker.as_bytes()).inspect(|()| self.lost = None)
            }
            None => Ok(()),
        };
        if let Err(e) = result.and_then(|()| self.append_whole(buf)) {
            if self.lost.is_none() {
                let _ = writeln!(
                    std::io::stderr(),
                    "drapto: warning: the run log {} cannot be written ({e}): its lines are lost until it can",
                    self.path.display()
                );
            }
            let n = self.lost.as_ref().map_or(0, |l| l.0);
            self.lost = Some((n + 1, e.to_string()));
        }
    }

    /// Whether the log file is gone from its folder (looked at every
    /// [`LOOK_EVERY`] at most).
    fn gone(&mut self) -> bool {
        if self.looked.elapsed() < LOOK_EVERY {
            return false;
        }
        self.looked = std::time::Instant::now();
        !self.path.exists()
    }

    /// Writes `buf` as of `now`: into a new file when the day changed
    /// (into this one when the new one cannot be opened).
    /// A log file deleted (or its folder) is started again, said on stderr.
    fn write_at(&mut self, buf: &[u8], now: DateTime<Local>) -> std::io::Result<usize> {
        let gone = self.gone();
        if (now.date_naive() != self.day || gone)
            && let Ok(next) = DailyFile::open_at(&self.dir, now)
        {
            if gone {
                let (old, new) = (self.path.display(), next.path.display());
                // (stderr may be gone: a failed eprintln! ended the thread
                // that logged, a watch's main loop among them.)
                let _ = writeln!(
                    std::io::stderr(),
                    "drapto: warning: the run log {old} was removed; the log goes on in {new}"
                );
            }
            let (mut files, kept, lost) = (std::mem::take(&mut self.files), self.kept, self.lost.take());
            files.extend(next.files.iter().cloned());
            *self = DailyFile { files, kept, lost, ..next };
        }
        // One event, one line: a name's line break or escape sequence is
        // escaped (a rip's name forged a line of its own).
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if body.iter().any(|b| b.is_ascii_control() || *b == 0x7f) {
            let line = format!("{}\n", super::for_people(&String::from_utf8_lossy(body)));
            self.write_line(line.as_bytes());
        } else {
            self.write_line(buf);
        }
        Ok(buf.len())
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_at(buf, Local::now())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes events to the log, and marks the run's log worth keeping by
/// them (see [`DailyFile::keep`]).
pub struct LogEvents {
    pub run_log: Option<SharedLog>,
}

impl EventSink for LogEvents {
    fn emit(&self, event: &Event) {
        // (Not a rip still being written, or another drapto's: a run every
        // few minutes meets those, and would rotate a failure's log away.)
        let worth =
            matches!(event, Event::AnalysisComplete { .. } | Event::FileFailed { .. } | Event::FileInterrupted { .. });
        if let (true, Some(log)) = (worth, &self.run_log) {
            lock(log).keep();
        }
        match event {
            Event::BatchStarted { files, output_dir } => {
                tracing::info!("Batch of {} file(s) to {}", files.len(), output_dir.display())
            }
            Event::FileStarted { index, total, input, output } => {
                tracing::info!("Looking at {} ({index}/{total}) -> {}", input.display(), output.display())
            }
            Event::AnalysisComplete { input, analysis, plan } => log_analysis(input, analysis, plan),
            Event::StageStarted { input, stage, detail } => {
                tracing::info!("{}: starting {} {detail}", input.display(), stage.label())
            }
            Event::Progress { .. } => {}
            Event::StageComplete { input, stage, seconds, detail } => {
                tracing::info!(
                    "{}: {} complete in {} {detail}",
                    input.display(),
                    stage.label(),
                    format_duration(*seconds)
                )
            }
            Event::SegmentStep { input, segment, step } => {
                tracing::debug!("{}: segment {}: {}", input.display(), segment + 1, step.describe())
            }
            Event::SegmentProbe { input, segment, tier, crf, score } => {
                tracing::debug!(
                    "{}: segment {} tier {tier}: CRF {crf} scored VMAF {score:.2}",
                    input.display(),
                    segment + 1
                )
            }
            Event::SegmentComplete { .. } => log_segment(event),
            Event::ValidationComplete { input, passed, checks } => log_validation(input, *passed, checks),
            Event::FileComplete { summary } => log_file_complete(summary),
            Event::FileSkipped { input, reason, .. } => {
                tracing::info!("Skipped {}: {reason}", input.display())
            }
            // The error names its rip.
            Event::FileFailed { error, command, .. } => {
                tracing::error!("Failed: {error}");
                if let Some(c) = command.as_ref().filter(|c| !c.command.is_empty()) {
                    tracing::error!("  the {} that failed: {}", c.step, c.command);
                }
            }
            Event::FileInterrupted { input, reason } => tracing::warn!("Interrupted {}: {reason}", input.display()),
            Event::Warning { input, message } => match input {
                Some(i) => tracing::warn!("{}: {message}", i.display()),
                None => tracing::warn!("{message}"),
            },
            Event::Queue { waiting, settling } => {
                tracing::info!("Queue: {} waiting, {} settling", waiting.len(), settling.len())
            }
            Event::BatchComplete { summary } => log_batch_complete(summary),
        }
    }
}

/// The analysis and plan of a rip, on one line.
fn log_analysis(input: &std::path::Path, analysis: &crate::analysis::Analysis, plan: &crate::plan::EncodePlan) {
    tracing::info!(
        "Input analysis complete for {}: {} {}x{} {}, {} audio; mux: {}; plan: {}",
        input.display(),
        analysis.resolution.name(),
        analysis.video.width,
        analysis.video.height,
        analysis.hdr.kind.name(),
        analysis.audio.len(),
        analysis.mux.describe_rest(),
        serde_json::to_string(plan).unwrap_or_default()
    )
}

/// A finished encode, on one line.
fn log_file_complete(s: &crate::summary::FileSummary) {
    tracing::info!(
        "Encode complete: {} -> {}: {} -> {} ({:.2}% reduction) in {}{}",
        s.input.display(),
        s.output.display(),
        format_bytes(s.input_bytes),
        format_bytes(s.output_bytes),
        s.reduction_percent,
        format_duration(s.encode_seconds),
        super::earlier_runs(s)
    )
}

/// What a batch did, on one line.
fn log_batch_complete(summary: &crate::summary::BatchSummary) {
    tracing::info!(
        "Batch complete: {} encoded, {} skipped, {} failed, {} interrupted, {} not started, {} not encoded now",
        summary.files.len(),
        summary.skipped.len(),
        summary.failed.len(),
        summary.interrupted.len(),
        summary.not_started.len(),
        summary.not_encoded.len()
    )
}

/// A finished segment, on one line.
fn log_segment(event: &Event) {
    let Event::SegmentComplete {
        input,
        segment,
        total,
        crf,
        tier,
        predicted_vmaf,
        prediction,
        measured_vmaf,
        bytes,
        seconds,
        probes,
        host,
        reused,
        ..
    } = event
    else {
        return;
    };
    // A segment an earlier run encoded, found whole: said as such (its time
    // is that run's).
    let done = if *reused { "reused from an earlier run" } else { "done" };
    tracing::info!(
        "{}: segment {}/{total} {done}: CRF {crf} (tier {tier}, {probes} probes), VMAF predicted {predicted_vmaf:.2}{} measured {}, {} in {}{}",
        input.display(),
        segment + 1,
        prediction.suffix(),
        measured_vmaf.map_or("n/a".into(), |m| format!("{m:.2}")),
        format_bytes(*bytes),
        format_duration(*seconds),
        host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()
    );
}

/// Each check of the output's validation, then its verdict.
fn log_validation(input: &Path, passed: bool, checks: &[Check]) {
    for c in checks {
        tracing::info!(
            "{}: check {}: {} ({})",
            input.display(),
            c.name,
            if c.passed { "ok" } else { "FAILED" },
            c.detail
        );
    }
    tracing::info!("{}: validation {}", input.display(), if passed { "passed" } else { "failed" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn two_runs_started_in_one_second_keep_logs_of_their_own() {
        let d = tempfile::tempdir().unwrap();
        let at = Local.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let (mut a, mut b) = (DailyFile::open_at(d.path(), at).unwrap(), DailyFile::open_at(d.path(), at).unwrap());
        a.write_at(b"a\n", at).unwrap();
        b.write_at(b"b\n", at).unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_run_past_midnight_goes_on_in_a_new_file() {
        let d = tempfile::tempdir().unwrap();
        let at = |day, h| Local.with_ymd_and_hms(2026, 12, day, h, 0, 0).unwrap();
        let mut log = DailyFile::open_at(d.path(), at(6, 23)).unwrap();
        log.write_at(b"one\n", at(6, 23)).unwrap();
        log.write_at(b"two\n", at(6, 23)).unwrap();
        log.write_at(b"three\n", at(7, 1)).unwrap();
        log.flush().unwrap();
        let mut files: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["encode_20261206_230000.log", "encode_20261207_010000.log"]);
        let text: Vec<String> = files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        assert_eq!(text, ["one\ntwo\n", "three\n"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn lines_a_full_disk_refuses_are_counted_and_said_when_it_takes_them_again() {
        let d = tempfile::tempdir().unwrap();
        let at = Local.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let mut log = DailyFile::open_at(d.path(), at).unwrap();
        log.write_at(b"one\n", at).unwrap();
        let real =
            std::mem::replace(&mut log.file, std::fs::OpenOptions::new().append(true).open("/dev/full").unwrap());
        // (tracing is told every line went: it has no use for the error.)
        assert_eq!(log.write_at(b"two\n", at).unwrap(), 4);
        log.write_at(b"three\n", at).unwrap();
        log.file = real;
        log.write_at(b"four\n", at).unwrap();
        let text = std::fs::read_to_string(&log.path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!((lines[0], lines[2]), ("one", "four"));
        assert!(
            lines[1].ends_with("WARN: 2 log line(s) before this one were lost: No space left on device (os error 28)")
        );
    }

    #[test]
    fn a_line_stays_one_line() {
        let d = tempfile::tempdir().unwrap();
        let at = Local.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let mut log = DailyFile::open_at(d.path(), at).unwrap();
        log.write_at(b"[t] INFO: Looking at new\nline \x1b[31m.mkv\n", at).unwrap();
        assert_eq!(std::fs::read_to_string(&log.path).unwrap(), "[t] INFO: Looking at new\\nline \\e[31m.mkv\n");
    }

    #[test]
    fn a_run_that_only_looked_leaves_no_log() {
        let d = tempfile::tempdir().unwrap();
        let at = Local.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let mut idle = DailyFile::open_at(d.path(), at).unwrap();
        idle.write_at(b"[t] INFO: Skipped a.mkv: already encoded\n", at).unwrap();
        idle.finish();
        assert!(!idle.path.exists());
        let log: SharedLog = std::sync::Arc::new(std::sync::Mutex::new(DailyFile::open_at(d.path(), at).unwrap()));
        let events = LogEvents { run_log: Some(log.clone()) };
        events.emit(&Event::FileInterrupted { input: "a.mkv".into(), reason: "stopped".into() });
        lock(&log).finish();
        assert!(lock(&log).path.exists());
    }

    #[test]
    fn a_log_folder_removed_mid_run_is_made_again() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("logs");
        let at = Local.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let mut log = DailyFile::open_at(&dir, at).unwrap();
        log.write_at(b"before\n", at).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        log.looked -= LOOK_EVERY;
        log.write_at(b"after\n", at).unwrap();
        log.flush().unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "after\n");
    }
}
