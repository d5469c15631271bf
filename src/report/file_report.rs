//! Per-file reports and the library's tracking files, both written by a
//! subscriber of the event stream.
//!
//! * `<output>.report.json` beside the output (or in `paths.report_dir`):
//!   analysis, plan, every stage's time, every chunked segment with its
//!   probes and predicted/measured VMAF, the validation checks, warnings,
//!   sizes, speeds and resource use. Failed files get one in the log folder.
//! * the library's tracking files ([`crate::job::tracking`]): one line per
//!   encoded file.

use crate::events::{Check, Event, EventSink};
use crate::job::tracking::Tracking;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Everything gathered about one file.
#[derive(Debug, Default, Serialize)]
pub struct FileReport {
    pub drapto_version: &'static str,
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub status: String,
    pub error: Option<String>,
    /// When the file failed (RFC 3339, local time with its offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// The program that failed the file: its command line and stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_command: Option<crate::error::FailedCommand>,
    pub summary: Option<crate::summary::FileSummary>,
    pub analysis: Option<serde_json::Value>,
    pub plan: Option<serde_json::Value>,
    pub stages: Vec<StageTime>,
    pub segments: Vec<serde_json::Value>,
    pub probes: Vec<serde_json::Value>,
    pub validation: Vec<Check>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct StageTime {
    pub stage: String,
    pub seconds: f64,
    pub detail: String,
}

/// Collects events per input and writes the report when the file ends.
pub struct ReportWriter {
    report_dir: Option<PathBuf>,
    log_dir: PathBuf,
    tracking: Tracking,
    files: Mutex<HashMap<PathBuf, FileReport>>,
}

impl ReportWriter {
    pub fn new(report_dir: Option<PathBuf>, log_dir: PathBuf, tracking: Tracking) -> ReportWriter {
        ReportWriter { report_dir, log_dir, tracking, files: Mutex::new(HashMap::new()) }
    }

    /// Where `input`'s report is written when it fails: in the log folder,
    /// marked by the whole path (rips of one name in folders of their own,
    /// MakeMKV's title_t00.mkv, keep theirs).
    fn failed_report(&self, input: &Path) -> PathBuf {
        let input_name = input.file_name().unwrap_or_default().to_string_lossy();
        let mark = format!(".{}{FAILED_REPORT}", path_mark(input));
        self.log_dir.join(crate::hash::file_name("", &input_name, &mark))
    }

    fn write(&self, report: &FileReport, path: &Path) {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = crate::job::state::write_atomic(path, report) {
            // Said where the user sees it (this writer is one of the
            // events' sinks: it cannot tell the others).
            let _ = writeln!(std::io::stderr(), "drapto: warning: could not write report {}: {e}", path.display());
            tracing::warn!("could not write report {}: {e}", path.display());
        } else {
            tracing::info!("report written to {}", path.display());
        }
    }

    fn track(&self, s: &crate::summary::FileSummary) {
        // Absolute: a later run finds a moved rip's output by it.
        let output = std::path::absolute(&s.output).unwrap_or_else(|_| s.output.clone());
        self.tracking.record_encode(&s.input, &output, s.encode_seconds, s.input_bytes, s.output_bytes);
    }
}

/// The report being gathered for `input`.
fn get<'a>(files: &'a mut HashMap<PathBuf, FileReport>, input: &Path) -> &'a mut FileReport {
    files.entry(input.to_path_buf()).or_insert_with(|| FileReport {
        drapto_version: env!("CARGO_PKG_VERSION"),
        input: input.to_path_buf(),
        ..FileReport::default()
    })
}

/// What marks a report by the whole `path` of its file: eight hex digits.
fn path_mark(path: &Path) -> String {
    format!("{:08x}", crate::hash::fnv1a(path.as_os_str().as_encoded_bytes()) as u32)
}

/// How the report of a failed file (in the log folder) ends.
pub const FAILED_REPORT: &str = ".failed.report.json";

/// Where the report of `output` goes: beside it, or in `report_dir`
/// marked by the output's whole path (two discs' `title_t00.mkv` in their
/// own folders keep a report each there).
pub fn report_path(report_dir: Option<&Path>, output: &Path) -> PathBuf {
    let output_name = output.file_name().unwrap_or_default().to_string_lossy();
    match report_dir {
        Some(d) => {
            let whole = std::path::absolute(output).unwrap_or_else(|_| output.to_path_buf());
            d.join(crate::hash::file_name("", &output_name, &format!(".{}.report.json", path_mark(&whole))))
        }
        None => output.with_file_name(crate::hash::file_name("", &output_name, ".report.json")),
    }
}

impl EventSink for ReportWriter {
    fn emit(&self, event: &Event) {
        let mut files = self.files.lock().expect("report lock");
        match event {
            Event::FileStarted { input, output, .. } => {
                let r = get(&mut files, input);
                *r = FileReport {
                    drapto_version: env!("CARGO_PKG_VERSION"),
                    input: input.clone(),
                    output: Some(output.clone()),
                    ..FileReport::default()
                };
            }
            Event::AnalysisComplete { input, analysis, plan } => {
                let r = get(&mut files, input);
                r.analysis = serde_json::to_value(analysis).ok();
                r.plan = serde_json::to_value(plan).ok();
            }
            Event::StageComplete { input, stage, seconds, detail } => {
                get(&mut files, input).stages.push(StageTime {
                    stage: stage.label(),
                    seconds: *seconds,
                    detail: detail.clone(),
                });
            }
            Event::SegmentProbe { input, .. } => {
                let v = serde_json::to_value(event).unwrap_or_default();
                get(&mut files, input).probes.push(v);
            }
            Event::SegmentComplete { input, .. } => {
                let v = serde_json::to_value(event).unwrap_or_default();
                get(&mut files, input).segments.push(v);
            }
            Event::ValidationComplete { input, checks, .. } => get(&mut files, input).validation = checks.clone(),
            Event::Warning { input: Some(input), message } => get(&mut files, input).warnings.push(message.clone()),
            Event::FileComplete { summary } => {
                if let Some(mut r) = files.remove(&summary.input) {
                    r.status = "encoded".into();
                    r.summary = Some(summary.clone());
                    self.write(&r, &report_path(self.report_dir.as_deref(), &summary.output));
                }
                // An earlier failure of this rip is over: its report, left,
                // said it failed for three months.
                let _ = std::fs::remove_file(self.failed_report(&summary.input));
                self.track(summary);
            }
            Event::FileFailed { input, error, command, .. } => {
                if let Some(mut r) = files.remove(input) {
                    r.status = "failed".into();
                    r.error = Some(error.clone());
                    r.failed_command = command.clone();
                    r.failed_at = Some(chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
                    self.write(&r, &self.failed_report(input));
                }
            }
            Event::FileSkipped { input, .. } | Event::FileInterrupted { input, .. } => {
                files.remove(input);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::error::FailedCommand;

    #[test]
    fn reports_in_a_report_folder_are_told_apart_by_their_output_s_path() {
        let dir = Path::new("/reports");
        let (a, b) = (Path::new("/out/Disc A/title_t00.mkv"), Path::new("/out/Disc B/title_t00.mkv"));
        assert_ne!(report_path(Some(dir), a), report_path(Some(dir), b));
        assert!(report_path(Some(dir), a).to_string_lossy().starts_with("/reports/title_t00.mkv."));
        assert_eq!(report_path(None, a), Path::new("/out/Disc A/title_t00.mkv.report.json"));
    }

    #[test]
    fn a_failed_file_s_report_holds_the_command_that_failed() {
        let t = tempfile::tempdir().unwrap();
        let w = ReportWriter::new(None, t.path().join("logs"), Tracking::at(&t.path().join("tracking")));
        let input = PathBuf::from("/rips/film.mkv");
        w.emit(&Event::FileStarted { index: 1, total: 1, input: input.clone(), output: t.path().join("film.mkv") });
        let command = FailedCommand {
            step: "video encode".into(),
            command: "ffmpeg -i /rips/film.mkv -c:v libsvtav1 out.mkv".into(),
            status: "exit status 1".into(),
            stderr: vec!["Error while decoding stream #0:0".into()],
        };
        let error = "/rips/film.mkv: video encode failed".to_string();
        w.emit(&Event::FileFailed { input, error, kept: None, command: Some(command.clone()) });
        let reports: Vec<_> = std::fs::read_dir(t.path().join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&reports[0]).unwrap()).unwrap();
        assert_eq!(report["status"], "failed");
        assert_eq!(report["failed_command"]["command"], command.command.as_str());
        assert_eq!(report["failed_command"]["stderr"][0], "Error while decoding stream #0:0");
    }
}
