//! Per-file reports and the library's tracking files, both written by a
//! subscriber of the event stream.
//!
//! * `<output>.report.json` beside the output (or in `paths.report_dir`):
//!   analysis, plan, every stage's time, every chunked segment with its
//!   probes and predicted/measured VMAF, the validation checks, warnings,
//!   sizes, speeds and resource use. Failed files get one in the log folder.
//! * `<temp_dir>/encode_data/{encoded_files,encoding_times,input_sizes,output_sizes}.txt`:
//!   one tab-separated line per encoded file, kept across runs (the design's
//!   tracking data), so a library's totals can be computed at any time.

use crate::events::{Check, Event, EventSink};
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
    tracking_dir: PathBuf,
    files: Mutex<HashMap<PathBuf, FileReport>>,
}

impl ReportWriter {
    pub fn new(report_dir: Option<PathBuf>, log_dir: PathBuf, tracking_dir: PathBuf) -> ReportWriter {
        ReportWriter { report_dir, log_dir, tracking_dir, files: Mutex::new(HashMap::new()) }
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
        append_tracking(
            &self.tracking_dir,
            &s.input,
            &[
                ("encoded_files.txt", output.display().to_string()),
                ("encoding_times.txt", format!("{:.3}", s.encode_seconds)),
                ("input_sizes.txt", s.input_bytes.to_string()),
                ("output_sizes.txt", s.output_bytes.to_string()),
            ],
        );
    }
}

/// Appends `input`'s line (`input<TAB>value`) to each tracking file of
/// `dir` named in `values` (best effort: the tracking is a record, not
/// the work). A tab, a line break or a backslash in either field is
/// written escaped (`\t`, `\n`, `\r`, `\\`; see [`tracking_line`]):
/// a rip named with a line break split into lines that spoiled the
/// library's totals, and its encode was never found again.
pub fn append_tracking(dir: &Path, input: &Path, values: &[(&str, String)]) {
    let _ = std::fs::create_dir_all(dir);
    let rip = escaped(&input.display().to_string());
    for (file, value) in values {
        // One write a line: two runs finishing at once do not mix theirs.
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(file)) {
            let _ = f.write_all(format!("{rip}\t{}\n", escaped(value)).as_bytes());
        }
    }
}

/// `field` with what would break a tracking line escaped.
fn escaped(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// `field` as it was before [`escaped`] (a line of an older drapto, which
/// escaped nothing, reads as it was unless it holds a backslash).
fn unescaped(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(n @ ('\\' | 't' | 'n' | 'r'))) => {
                chars.next();
                out.push(match n {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\\',
                });
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// A tracking line's rip and value (see [`append_tracking`]).
pub fn tracking_line(line: &str) -> Option<(String, String)> {
    let (rip, value) = line.split_once('\t')?;
    Some((unescaped(rip), unescaped(value)))
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

    #[test]
    fn tracking_lines_hold_any_name_on_one_line() {
        let t = tempfile::tempdir().unwrap();
        let rip = Path::new("/lib/line1\nline2\tx\\y.mkv");
        append_tracking(t.path(), rip, &[("encoded_files.txt", "/out/a\tb.mkv".into())]);
        append_tracking(t.path(), Path::new("/lib/plain.mkv"), &[("encoded_files.txt", "/out/plain.mkv".into())]);
        let text = std::fs::read_to_string(t.path().join("encoded_files.txt")).unwrap();
        assert_eq!(text.lines().count(), 2, "{text:?}");
        let lines: Vec<_> = text.lines().filter_map(tracking_line).collect();
        assert_eq!(lines[0], (rip.display().to_string(), "/out/a\tb.mkv".to_string()));
        assert_eq!(lines[1], ("/lib/plain.mkv".to_string(), "/out/plain.mkv".to_string()));
    }
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
        let w = ReportWriter::new(None, t.path().join("logs"), t.path().join("tracking"));
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
