//! The run's status, for `drapto status` (no daemon protocol: a file): each
//! encode or watch run keeps `<temp_dir>/status/<pid>.json` up to date with
//! the file it is encoding (stage, progress, ETA) and its last results.

use crate::events::{Event, EventSink};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Results kept per run.
const LAST: usize = 20;
/// Status files kept (the newest).
const RUNS_KEPT: usize = 20;
/// Progress is written at most this often.
const EVERY: Duration = Duration::from_secs(2);

/// One run's status file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub pid: u32,
    pub started_at: String,
    pub updated_at: String,
    /// False once the run ended.
    pub running: bool,
    /// When its process started (seconds since the epoch, as the system
    /// tells): a pid of a run killed long ago, reused by another process,
    /// is no run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_started: Option<u64>,
    pub current: Option<Current>,
    /// The batch's rips not started yet: how many, and the first
    /// [`WAITING_NAMED`] of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<PathBuf>,
    pub last: Vec<Result>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Rips still waiting that a status file names.
const WAITING_NAMED: usize = 3;

/// The file being encoded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Current {
    pub input: PathBuf,
    pub output: PathBuf,
    pub started_at: String,
    /// The rip's place in the batch (from 1), of `total`.
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub total: usize,
    pub stage: String,
    pub percent: f64,
    pub eta_seconds: Option<f64>,
    /// When `percent` and `eta_seconds` were last told (a chunked film
    /// tells them as its segments finish, minutes apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_at: Option<String>,
}

impl Current {
    /// The time left now: the ETA told, less the time since.
    pub fn eta_now(&self, now: chrono::DateTime<chrono::Utc>) -> Option<f64> {
        let at = self.progress_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let since = at.map_or(0.0, |at| (now - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0);
        self.eta_seconds.map(|e| (e - since.max(0.0)).max(0.0))
    }
}

/// How a file ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Result {
    pub input: PathBuf,
    /// "encoded", "failed", "skipped", "interrupted", or "unfinished" (a
    /// run that ended without saying so: killed, crashed, a power cut).
    pub outcome: String,
    pub detail: String,
    pub at: String,
}

/// The folder of the status files.
pub fn folder(temp_dir: &Path) -> PathBuf {
    temp_dir.join("status")
}

/// Keeps this run's status file.
pub struct StatusWriter {
    path: PathBuf,
    /// The status, when it was last written, and the percent written then.
    state: Mutex<(RunStatus, Instant, f64)>,
    /// The batch's rips, in order (from `BatchStarted`).
    batch: Mutex<Vec<PathBuf>>,
}

impl StatusWriter {
    pub fn new(temp_dir: &Path) -> StatusWriter {
        let dir = folder(temp_dir);
        let _ = std::fs::create_dir_all(&dir);
        prune(&dir);
        let now = crate::job::state::now();
        let status = RunStatus {
            pid: std::process::id(),
            started_at: now.clone(),
            updated_at: now,
            running: true,
            process_started: process_started(std::process::id()),
            ..Default::default()
        };
        let w = StatusWriter {
            path: dir.join(format!("{}.json", std::process::id())),
            state: Mutex::new((status, Instant::now(), 0.0)),
            batch: Mutex::new(Vec::new()),
        };
        w.write(&mut w.state.lock().expect("status"));
        w
    }

    fn write(&self, s: &mut (RunStatus, Instant, f64)) {
        s.0.updated_at = crate::job::state::now();
        s.1 = Instant::now();
        s.2 = s.0.current.as_ref().map_or(0.0, |c| c.percent);
        let _ = crate::job::state::write_atomic(&self.path, &s.0);
    }
}

impl Drop for StatusWriter {
    fn drop(&mut self) {
        let mut s = self.state.lock().expect("status");
        s.0.running = false;
        s.0.current = None;
        let s = &mut *s;
        s.0.updated_at = crate::job::state::now();
        let _ = crate::job::state::write_atomic(&self.path, &s.0);
    }
}

impl EventSink for StatusWriter {
    fn emit(&self, event: &Event) {
        let mut s = self.state.lock().expect("status");
        let now = crate::job::state::now();
        let mut done = |input: &Path, outcome: &str, detail: String| {
            s.0.current = None;
            s.0.last.push(Result { input: input.to_path_buf(), outcome: outcome.into(), detail, at: now.clone() });
            let excess = s.0.last.len().saturating_sub(LAST);
            s.0.last.drain(..excess);
        };
        match event {
            Event::BatchStarted { files, .. } => {
                *self.batch.lock().expect("batch") = files.clone();
                s.0.waiting = files.len();
                s.0.next = files.iter().take(WAITING_NAMED).cloned().collect();
            }
            Event::FileStarted { index, total, input, output } => {
                let c = Current {
                    input: input.clone(),
                    output: output.clone(),
                    started_at: now.clone(),
                    index: *index,
                    total: *total,
                    ..Default::default()
                };
                s.0.current = Some(c);
                let batch = self.batch.lock().expect("batch");
                let after = batch.get((*index).min(batch.len())..).unwrap_or_default();
                s.0.waiting = after.len();
                s.0.next = after.iter().take(WAITING_NAMED).cloned().collect();
            }
            Event::StageStarted { stage, .. } => {
                if let Some(c) = s.0.current.as_mut() {
                    c.stage = stage.label();
                    c.percent = 0.0;
                    c.eta_seconds = None;
                }
            }
            Event::Progress { percent, eta_seconds, .. } => {
                if let Some(c) = s.0.current.as_mut() {
                    c.percent = *percent;
                    c.eta_seconds = *eta_seconds;
                    c.progress_at = Some(crate::job::state::now());
                }
                // At most one write in `EVERY`, unless a point has passed
                // (a chunked film tells its progress minutes apart: the
                // update held back stayed unwritten till the next).
                if s.1.elapsed() < EVERY && (*percent - s.2).abs() < 1.0 {
                    return;
                }
            }
            Event::FileComplete { summary } => done(
                &summary.input,
                "encoded",
                format!("{} (reduction {:.1}%)", summary.output.display(), summary.reduction_percent),
            ),
            Event::FileFailed { input, error, .. } => done(input, "failed", error.clone()),
            // (A rip another drapto has is news of that one's run, not this.)
            Event::FileSkipped { busy: true, .. } => s.0.current = None,
            Event::FileSkipped { input, reason, .. } => done(input, "skipped", reason.clone()),
            Event::FileInterrupted { input, reason } => done(input, "interrupted", reason.clone()),
            _ => return,
        }
        self.write(&mut s);
    }
}

/// Removes all but the newest [`RUNS_KEPT`] status files of ended runs.
fn prune(dir: &Path) {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(RUNS_KEPT);
    for (_, p) in files.into_iter().take(excess) {
        if read(&p).is_some_and(|s| !is_running(&s)) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A status file.
pub fn read(path: &Path) -> Option<RunStatus> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Whether the run of `s` is still running (its process is alive, and
/// started when the run's did; a file that does not say when, from an
/// older drapto, by the run's own start: its process cannot have started
/// after it).
pub fn is_running(s: &RunStatus) -> bool {
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid as i32), None).is_ok();
    let run_began = || chrono::DateTime::parse_from_rfc3339(&s.started_at).ok().map(|t| t.timestamp());
    let same = || match (s.process_started, process_started(s.pid)) {
        (Some(then), Some(now)) => now.abs_diff(then) <= 2,
        (None, Some(now)) => run_began().is_none_or(|began| i64::try_from(now).is_ok_and(|now| now <= began + 2)),
        (_, None) => true,
    };
    s.running && alive && same()
}

/// When process `pid` started (seconds since the epoch).
fn process_started(pid: u32) -> Option<u64> {
    let mut sys = sysinfo::System::new();
    let p = sysinfo::Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[p]),
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    sys.process(p).map(|p| p.start_time())
}

/// The results of runs that ended without saying so (killed, crashed, a
/// power cut) while encoding a rip: its file still says it runs, and where
/// it was. A rip a later result speaks of (`later`) is news of that one.
pub fn unfinished(runs: &[RunStatus], later: &[&Result]) -> Vec<Result> {
    runs.iter()
        .filter(|r| r.running && !is_running(r))
        .filter_map(|r| {
            let c = r.current.as_ref()?;
            let told = later.iter().any(|l| l.input == c.input && l.at > r.updated_at);
            (!told).then(|| Result {
                input: c.input.clone(),
                outcome: "unfinished".into(),
                detail: format!(
                    "drapto (pid {}) ended without finishing, at {} {:.0}%: run it again to resume",
                    r.pid, c.stage, c.percent
                ),
                at: r.updated_at.clone(),
            })
        })
        .collect()
}

/// Every status file under `temp_dir`, newest first.
pub fn all(temp_dir: &Path) -> Vec<RunStatus> {
    let mut runs: Vec<RunStatus> =
        std::fs::read_dir(folder(temp_dir)).into_iter().flatten().flatten().filter_map(|e| read(&e.path())).collect();
    runs.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eta_counts_down_between_progress_updates() {
        let told = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let c = Current {
            eta_seconds: Some(100.0),
            progress_at: Some("2026-12-06T12:00:00Z".into()),
            ..Current::default()
        };
        assert_eq!(c.eta_now(told + chrono::Duration::seconds(30)), Some(70.0));
        assert_eq!(c.eta_now(told + chrono::Duration::seconds(300)), Some(0.0));
        assert_eq!(Current { progress_at: None, ..c }.eta_now(told), Some(100.0));
    }
    use crate::events::Stage;

    #[test]
    fn a_pid_another_process_took_is_no_run() {
        let t = tempfile::tempdir().unwrap();
        let _w = StatusWriter::new(t.path());
        let mine = all(t.path()).remove(0);
        assert!(mine.process_started.is_some() && is_running(&mine));
        // The same pid, started at another time: a killed run's, reused.
        let reused = RunStatus { process_started: mine.process_started.map(|t| t - 600), ..mine.clone() };
        assert!(!is_running(&reused));
        // A file of an older drapto, which did not say when its process
        // started: a run that began before this process did is not it.
        let old = RunStatus { process_started: None, started_at: "2025-01-01T00:00:00Z".into(), ..mine.clone() };
        assert!(!is_running(&old));
        let now = chrono::Utc::now().to_rfc3339();
        assert!(is_running(&RunStatus { process_started: None, started_at: now, ..mine }));
    }

    #[test]
    fn progress_of_a_point_or_more_is_written_at_once() {
        let t = tempfile::tempdir().unwrap();
        let w = StatusWriter::new(t.path());
        let input = PathBuf::from("/lib/a.mkv");
        w.emit(&Event::FileStarted { index: 1, total: 1, input: input.clone(), output: "/o/a.mkv".into() });
        let progress = |percent| Event::percent_done(&input, Stage::Video, percent);
        w.emit(&progress(5.0));
        w.emit(&progress(5.2));
        assert_eq!(all(t.path())[0].current.as_ref().unwrap().percent, 5.0, "held back: under a point");
        w.emit(&progress(11.0));
        assert_eq!(all(t.path())[0].current.as_ref().unwrap().percent, 11.0);
    }

    #[test]
    fn a_batch_says_what_waits() {
        let t = tempfile::tempdir().unwrap();
        let w = StatusWriter::new(t.path());
        let files: Vec<PathBuf> =
            ["a", "b", "c", "d", "e"].iter().map(|n| PathBuf::from(format!("/lib/{n}.mkv"))).collect();
        w.emit(&Event::BatchStarted { files: files.clone(), output_dir: "/o".into() });
        w.emit(&Event::FileStarted { index: 2, total: 5, input: files[1].clone(), output: "/o/b.mkv".into() });
        let run = all(t.path()).remove(0);
        assert_eq!((run.current.as_ref().unwrap().index, run.current.as_ref().unwrap().total), (2, 5));
        assert_eq!(run.waiting, 3);
        assert_eq!(run.next, files[2..5].to_vec());
    }

    #[test]
    fn a_run_that_died_while_encoding_is_told_unfinished() {
        let t = tempfile::tempdir().unwrap();
        let w = StatusWriter::new(t.path());
        let input = PathBuf::from("/lib/a.mkv");
        w.emit(&Event::FileStarted { index: 1, total: 1, input: input.clone(), output: "/o/a.mkv".into() });
        w.emit(&Event::StageStarted { input: input.clone(), stage: Stage::Video, detail: String::new() });
        let mine = all(t.path()).remove(0);
        // Its process gone (another's pid, started at another time).
        let dead = RunStatus { process_started: mine.process_started.map(|t| t - 600), ..mine.clone() };
        let said = unfinished(std::slice::from_ref(&dead), &[]);
        assert_eq!(said.len(), 1);
        assert_eq!((said[0].input.as_path(), said[0].outcome.as_str()), (input.as_path(), "unfinished"));
        assert!(said[0].detail.contains("video 0%"), "{}", said[0].detail);
        // A later result of the same rip is the news.
        let later = Result { input, outcome: "encoded".into(), detail: String::new(), at: "9999".into() };
        assert!(unfinished(&[dead], &[&later]).is_empty());
        assert!(unfinished(&[mine], &[]).is_empty(), "a live run is not unfinished");
    }

    #[test]
    fn the_file_being_encoded_and_the_results_are_kept() {
        let t = tempfile::tempdir().unwrap();
        let w = StatusWriter::new(t.path());
        let input = PathBuf::from("/lib/a.mkv");
        w.emit(&Event::FileStarted { index: 1, total: 2, input: input.clone(), output: "/o/a.mkv".into() });
        w.emit(&Event::StageStarted { input: input.clone(), stage: Stage::Video, detail: String::new() });
        let runs = all(t.path());
        assert_eq!(runs.len(), 1);
        assert!(is_running(&runs[0]));
        assert_eq!(runs[0].current.as_ref().unwrap().stage, "video");
        w.emit(&Event::FileFailed { input: input.clone(), error: "bad".into(), kept: None, command: None });
        drop(w);
        let runs = all(t.path());
        assert!(!is_running(&runs[0]) && runs[0].current.is_none());
        assert_eq!(runs[0].last[0].outcome, "failed");
    }
}
