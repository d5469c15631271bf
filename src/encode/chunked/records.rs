//! The plain records of the chunked path: what a segment's encode, its
//! probes and its survey came to. The state files keep them; survey,
//! resume, allocation and jobs read them (a leaf: it depends on none of
//! them).

use crate::events::PredictionSource;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One probe of the CRF search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub tier: usize,
    pub crf: f64,
    pub score: f64,
    pub bytes: u64,
    pub seconds: f64,
}

/// What the slope allocation's survey learned of one segment (what the
/// state records of it): its probes and the frames they encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    pub sample_frames: usize,
    pub probes: Vec<ProbeRecord>,
}

/// The result of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentResult {
    /// Its position in the film (the state file's key, when read from it).
    #[serde(default)]
    pub index: usize,
    /// Where it is kept (the state's encoded folder, when read from it).
    #[serde(default)]
    pub path: PathBuf,
    pub frames: usize,
    pub crf: f64,
    pub tier: usize,
    pub predicted_vmaf: f64,
    /// Whether `predicted_vmaf` was measured by a probe or predicted.
    #[serde(default)]
    pub prediction: PredictionSource,
    pub measured_vmaf: Option<f64>,
    pub bytes: u64,
    pub seconds: f64,
    pub probes: Vec<ProbeRecord>,
    /// Taken from an earlier run.
    #[serde(skip)]
    pub reused: bool,
    /// Kept below its floor (the target − [`super::FLOOR_MARGIN`], or the last
    /// tier's): nothing tried reached it. Reported as a warning.
    #[serde(default)]
    pub below_target: bool,
    /// Predictions the segment's measured VMAF did not bear out (each cost
    /// an encode; see [`super::segment_job::run_segment`]).
    #[serde(default)]
    pub mispredictions: u32,
    /// The host that encoded it, on distributed runs (GNU Parallel sshlogin).
    #[serde(default)]
    pub host: Option<String>,
}
