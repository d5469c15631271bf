//! Per-file and batch figures: sizes, reduction, times, speeds, resources.
//! Plain data, carried by the events and printed by the reports.

use serde::Serialize;
use std::path::PathBuf;

/// What was used while encoding one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResourceStats {
    /// CPU seconds of drapto and every child it waited for.
    pub cpu_seconds: f64,
    /// `cpu_seconds` over wall time and cores, in percent of the machine.
    pub average_cpu_percent: f64,
    /// Highest sampled resident memory of drapto plus its running children.
    pub peak_memory_bytes: u64,
    pub wall_seconds: f64,
}

/// The result of one encoded file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub input_bytes: u64,
    pub output_bytes: u64,
    /// Percentage saved (positive: the output is smaller).
    pub reduction_percent: f64,
    /// Wall time from start to validated output, over every run that
    /// worked on it.
    pub encode_seconds: f64,
    /// Of which, the runs before this one (a resumed file).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_runs_seconds: f64,
    /// Duration of the content.
    pub content_seconds: f64,
    pub frames: Option<u64>,
    /// Frames per second of wall time.
    pub fps: Option<f64>,
    /// Content seconds per wall second (× realtime).
    pub speed: f64,
    /// RFC 3339 time of completion.
    pub finished_at: String,
    /// CPU and memory used while encoding it.
    pub resources: ResourceStats,
    /// The source was a truncated rip, encoded as it is (`allow_truncated`).
    pub truncated: Option<Truncation>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Where a truncated rip ended, and what it promised (seconds).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Truncation {
    pub ends_at: f64,
    pub promised: f64,
}

impl FileSummary {
    pub fn new(
        input: PathBuf,
        output: PathBuf,
        input_bytes: u64,
        output_bytes: u64,
        encode_seconds: f64,
        content_seconds: f64,
        frames: Option<u64>,
    ) -> FileSummary {
        let secs = encode_seconds.max(1e-3);
        FileSummary {
            input,
            output,
            input_bytes,
            output_bytes,
            reduction_percent: reduction(input_bytes, output_bytes),
            encode_seconds,
            earlier_runs_seconds: 0.0,
            content_seconds,
            frames,
            fps: frames.map(|f| f as f64 / secs),
            speed: content_seconds / secs,
            finished_at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            resources: Default::default(),
            truncated: None,
        }
    }
}

/// How the reason of a rip not encoded until the user acts ends (an
/// unreadable rip, a name drapto cannot record, two rips for one output),
/// where a rip still being written, or another drapto's, only waits.
pub const FIX_THEN_RUN: &str = "run again once that is fixed";

/// The result of a batch.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct BatchSummary {
    pub files: Vec<FileSummary>,
    /// Each skipped rip, and why.
    pub skipped: Vec<(PathBuf, String)>,
    pub failed: Vec<(PathBuf, String)>,
    /// Files never started because the batch stopped early.
    pub not_started: Vec<PathBuf>,
    /// Rips found but not encoded now, and why: still being written, or a
    /// name drapto's records cannot hold.
    #[serde(default)]
    pub not_encoded: Vec<(PathBuf, String)>,
    /// The file a stop request (Ctrl-C, SIGTERM) interrupted: not failed,
    /// its finished work kept for the rerun.
    pub interrupted: Vec<PathBuf>,
    /// The run stopped with it (a watch's last summary, idle or not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    pub total_input_bytes: u64,
    pub total_output_bytes: u64,
    pub reduction_percent: f64,
    pub total_seconds: f64,
}

impl BatchSummary {
    /// Recomputes the totals from the per-file entries.
    pub fn finish(&mut self, total_seconds: f64) {
        self.total_input_bytes = self.files.iter().map(|f| f.input_bytes).sum();
        self.total_output_bytes = self.files.iter().map(|f| f.output_bytes).sum();
        self.reduction_percent = reduction(self.total_input_bytes, self.total_output_bytes);
        self.total_seconds = total_seconds;
    }

    /// Whether it tells of no file at all (a watch stopped while idle,
    /// its last summary already out).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.skipped.is_empty()
            && self.failed.is_empty()
            && self.not_started.is_empty()
            && self.interrupted.is_empty()
            && self.not_encoded.is_empty()
    }

    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.not_started.is_empty()
            && self.interrupted.is_empty()
            && self.not_encoded.is_empty()
    }
}

/// Percentage saved going from `input` to `output` bytes.
pub fn reduction(input: u64, output: u64) -> f64 {
    if input == 0 { 0.0 } else { (1.0 - output as f64 / input as f64) * 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_and_totals() {
        assert!((reduction(15_700, 4_200) - 73.248).abs() < 0.01);
        assert_eq!(reduction(0, 5), 0.0);
        let f = |i, o| FileSummary::new("a".into(), "b".into(), i, o, 10.0, 20.0, Some(480));
        let mut b = BatchSummary { files: vec![f(1000, 250), f(1000, 750)], ..Default::default() };
        b.finish(21.0);
        assert_eq!(b.total_input_bytes, 2000);
        assert_eq!(b.total_output_bytes, 1000);
        assert_eq!(b.reduction_percent, 50.0);
        assert_eq!(b.files[0].fps, Some(48.0));
        assert_eq!(b.files[0].speed, 2.0);
        assert!(b.succeeded());
    }
}
