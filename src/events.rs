//! The event stream: every observable step of a run, as typed data.
//!
//! The pipeline only emits [`Event`]s into an [`EventSink`]; it knows nothing
//! of terminals, JSON or log files. Those are subscribers in [`crate::report`].

use crate::analysis::Analysis;
use crate::plan::EncodePlan;
use crate::summary::{BatchSummary, FileSummary};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

/// A step of the work on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "track")]
pub enum Stage {
    Analysis,
    Video,
    /// Audio track (0-based index among the audio streams).
    Audio(usize),
    /// The source's HDR10+ metadata written into the encoded video.
    Hdr10plus,
    Mux,
    Validation,
}

impl Stage {
    pub fn label(self) -> String {
        match self {
            Stage::Analysis => "analysis".into(),
            Stage::Video => "video".into(),
            Stage::Audio(i) => format!("audio {}", i + 1),
            Stage::Hdr10plus => "hdr10+".into(),
            Stage::Mux => "mux".into(),
            Stage::Validation => "validation".into(),
        }
    }
}

/// One result of output validation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// Everything that happens in a run. Field names are part of the `--json`
/// interface (documented in the README): add fields, never rename them.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    BatchStarted {
        files: Vec<PathBuf>,
        output_dir: PathBuf,
    },
    /// `drapto watch`: the library's queue changed (rips waiting their
    /// turn; rips seen but not yet complete).
    Queue {
        waiting: Vec<PathBuf>,
        settling: Vec<PathBuf>,
    },
    FileStarted {
        index: usize,
        total: usize,
        input: PathBuf,
        output: PathBuf,
    },
    AnalysisComplete {
        input: PathBuf,
        analysis: Box<Analysis>,
        plan: Box<EncodePlan>,
    },
    StageStarted {
        input: PathBuf,
        stage: Stage,
        detail: String,
    },
    Progress {
        input: PathBuf,
        stage: Stage,
        percent: f64,
        frame: u64,
        fps: f64,
        speed: f64,
        eta_seconds: Option<f64>,
        bitrate_kbps: f64,
        size_bytes: u64,
        projected_bytes: Option<u64>,
    },
    StageComplete {
        input: PathBuf,
        stage: Stage,
        seconds: f64,
        detail: String,
    },
    /// What a segment of the chunked path is doing now (one event per step).
    SegmentStep {
        input: PathBuf,
        segment: usize,
        step: SegmentStep,
    },
    /// One CRF probe of the chunked search.
    SegmentProbe {
        input: PathBuf,
        segment: usize,
        tier: usize,
        crf: f64,
        score: f64,
    },
    /// A segment of the chunked path is encoded (predicted: the search's
    /// score on samples; measured: the finished segment's score).
    SegmentComplete {
        input: PathBuf,
        segment: usize,
        total: usize,
        /// Segments finished so far, an earlier run's included.
        #[serde(default)]
        done: usize,
        /// First source frame of the segment and its frame count.
        start_frame: usize,
        frames: usize,
        crf: f64,
        tier: usize,
        predicted_vmaf: f64,
        /// How `predicted_vmaf` is known.
        prediction: PredictionSource,
        measured_vmaf: Option<f64>,
        bytes: u64,
        seconds: f64,
        probes: usize,
        reused: bool,
        /// The host that encoded it (GNU Parallel sshlogin; `:` is this
        /// machine), on distributed runs only.
        host: Option<String>,
    },
    ValidationComplete {
        input: PathBuf,
        passed: bool,
        checks: Vec<Check>,
    },
    FileComplete {
        summary: FileSummary,
    },
    FileSkipped {
        input: PathBuf,
        output: PathBuf,
        reason: String,
        /// Another drapto has it now: not done, not encoded now.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        busy: bool,
    },
    FileFailed {
        input: PathBuf,
        error: String,
        kept: Option<PathBuf>,
        /// The program whose failure failed the file, with its command line
        /// and the last of what it wrote to stderr.
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<crate::error::FailedCommand>,
    },
    /// Stopped by a stop request (Ctrl-C, SIGTERM): neither done nor
    /// failed; its finished work is kept for the next run.
    FileInterrupted {
        input: PathBuf,
        reason: String,
    },
    Warning {
        input: Option<PathBuf>,
        message: String,
    },
    BatchComplete {
        summary: BatchSummary,
    },
}

/// Something that listens to events. Must be shareable across worker threads.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// Sends every event to each of several sinks, in order.
pub struct Fanout(pub Vec<Box<dyn EventSink>>);

impl Event {
    /// Progress of `stage` of `input` by its percent alone (a step that
    /// counts no frames and projects no size: the mux).
    pub fn percent_done(input: &std::path::Path, stage: Stage, percent: f64) -> Event {
        Event::Progress {
            input: input.to_path_buf(),
            stage,
            percent,
            frame: 0,
            fps: 0.0,
            speed: 0.0,
            eta_seconds: None,
            bitrate_kbps: 0.0,
            size_bytes: 0,
            projected_bytes: None,
        }
    }
}

impl EventSink for Fanout {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// Keeps every event (tests, reports).
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: &Event) {
        self.0.lock().expect("recorder lock").push(event.clone());
    }
}

/// A step of one segment's work on the chunked path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SegmentStep {
    /// Cutting the samples of a tier.
    Sampling { tier: usize },
    /// Encoding and scoring the samples at `crf`.
    Probing { tier: usize, crf: f64 },
    /// The final encode of the whole segment at `crf`.
    Encoding { crf: f64 },
    /// Scoring the finished segment.
    Measuring,
}

/// How a chunked segment's predicted VMAF is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionSource {
    /// A probe on the samples measured it at the chosen CRF.
    #[default]
    Probe,
    /// The score curve predicted it from a probe nearby; the segment's
    /// measured VMAF bore it out.
    Model,
}

impl PredictionSource {
    /// Said after the predicted score in reports ("" for a probe's).
    pub fn suffix(self) -> &'static str {
        match self {
            PredictionSource::Probe => "",
            PredictionSource::Model => " (from the slope)",
        }
    }
}

impl SegmentStep {
    /// A few words for a person.
    pub fn describe(&self) -> String {
        match self {
            SegmentStep::Sampling { tier } => format!("tier {tier}: cutting samples"),
            SegmentStep::Probing { tier, crf } => format!("tier {tier}: probing CRF {crf:.2}"),
            SegmentStep::Encoding { crf } => format!("encoding at CRF {crf:.2}"),
            SegmentStep::Measuring => "measuring VMAF".into(),
        }
    }
}
