//! What the chunked path tells the user, as events: the plan when it
//! starts, each finished segment, a segment kept below its target, the
//! progress. The only place in the chunked path that words a message.

use super::layout::{Layout, Segment};
use super::records::SegmentResult;
use super::remote::Cluster;
use super::{Allocation, ChunkedParams, FLOOR_MARGIN, MIN_SCENE_SECONDS};
use crate::events::{Event, Stage};
use crate::units::count;
use std::path::Path;

/// The video stage starts: how the film is cut and who encodes it.
pub fn planned(input: &Path, layout: &Layout, params: &ChunkedParams, cluster: Option<&Cluster>) -> Event {
    let segs = count(layout.segments.len(), "segment");
    let how = match params.allocation {
        Allocation::Slope => format!(
            "{segs} (scenes of {}–{} s), CRFs at an equal slope for the film's mean{}",
            MIN_SCENE_SECONDS.min(params.chunk_seconds),
            params.chunk_seconds,
            params.survey_preset.map(|p| format!(" (surveyed at preset {p})")).unwrap_or_default()
        ),
        Allocation::Target => format!("{segs} of ~{}s, each searched to the target", params.chunk_seconds),
    };
    let workers = match cluster.map(|c| &c.hosts) {
        None => format!("{} worker(s) × {} thread(s)", params.workers, params.threads_per_worker),
        Some(h) => format!(
            "{} host(s), {} job slot(s), {} thread(s) each",
            h.len(),
            h.iter().map(|h| h.slots).sum::<usize>(),
            params.threads_per_worker
        ),
    };
    Event::StageStarted {
        input: input.to_path_buf(),
        stage: Stage::Video,
        detail: format!(
            "chunked: {how} ({} found {}, {:.1}s), VMAF target {}, {workers}",
            count(layout.cuts.len(), "scene cut"),
            layout.method.describe(),
            layout.seconds,
            params.target,
        ),
    }
}

/// The video stage is finished: `report`'s segments, in `seconds`.
pub fn finished(input: &Path, report: &super::ChunkedReport, seconds: f64) -> Event {
    let measured: Vec<f64> = report.segments.iter().filter_map(|s| s.measured_vmaf).collect();
    let crfs: Vec<f64> = report.segments.iter().map(|s| s.crf).collect();
    let low = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let high = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    Event::StageComplete {
        input: input.to_path_buf(),
        stage: Stage::Video,
        seconds,
        detail: format!(
            "{}, CRF {:.2}–{:.2}, measured VMAF {:.2}–{:.2}",
            count(report.segments.len(), "segment"),
            low(&crfs),
            high(&crfs),
            low(&measured),
            high(&measured),
        ),
    }
}

/// Segment `res` is finished (of the `layout`'s), the `done`th.
pub fn complete(input: &Path, layout: &Layout, res: &SegmentResult, done: usize) -> Event {
    complete_of(input, &layout.segments[res.index], layout.segments.len(), res, done)
}

/// Segment `seg` (of `total`) is finished with `res`, the `done`th.
pub fn complete_of(input: &Path, seg: &Segment, total: usize, res: &SegmentResult, done: usize) -> Event {
    Event::SegmentComplete {
        input: input.to_path_buf(),
        segment: res.index,
        total,
        done,
        start_frame: seg.start,
        frames: seg.frames(),
        crf: res.crf,
        tier: res.tier,
        predicted_vmaf: res.predicted_vmaf,
        prediction: res.prediction,
        measured_vmaf: res.measured_vmaf,
        bytes: res.bytes,
        seconds: res.seconds,
        probes: res.probes.len(),
        reused: res.reused,
        host: res.host.clone(),
    }
}

/// Segment `res` was kept below its floor: nothing tried reached it.
pub fn below_target(input: &Path, res: &SegmentResult, target: f64) -> Event {
    Event::Warning {
        input: Some(input.to_path_buf()),
        message: format!(
            "segment {}: kept at CRF {} with VMAF {}, below the target {target} by more than {FLOOR_MARGIN} \
             (nothing tried reached it; lower CRFs bought no more)",
            res.index + 1,
            res.crf,
            res.measured_vmaf.map_or("not measured".into(), |m| format!("{m:.2}")),
        ),
    }
}

/// A warning about the film.
pub fn warning(input: &Path, message: String) -> Event {
    Event::Warning { input: Some(input.to_path_buf()), message }
}

/// How far the video stage is: `shown` of it, `frames` of the film
/// encoded at `fps` this run, `bytes` of them written.
pub struct Progress {
    pub shown: f64,
    pub frames: usize,
    pub total_frames: usize,
    pub fps: f64,
    pub frame_duration: f64,
    pub bytes: u64,
}

/// The progress event of `p` (no ETA before anything was encoded).
pub fn progress(input: &Path, p: Progress) -> Event {
    let fraction = p.frames as f64 / p.total_frames.max(1) as f64;
    Event::Progress {
        input: input.to_path_buf(),
        stage: Stage::Video,
        percent: p.shown * 100.0,
        frame: p.frames as u64,
        fps: p.fps,
        speed: p.fps * p.frame_duration,
        eta_seconds: (p.fps > 0.0).then(|| (p.total_frames - p.frames) as f64 / p.fps),
        bitrate_kbps: 0.0,
        size_bytes: p.bytes,
        projected_bytes: (fraction > 0.0).then(|| (p.bytes as f64 / fraction) as u64),
    }
}

/// The survey's progress: `percent` of the stage, `eta` seconds left.
pub fn survey_progress(input: &Path, percent: f64, eta: Option<f64>) -> Event {
    Event::Progress {
        input: input.to_path_buf(),
        stage: Stage::Video,
        percent,
        frame: 0,
        fps: 0.0,
        speed: 0.0,
        eta_seconds: eta,
        bitrate_kbps: 0.0,
        size_bytes: 0,
        projected_bytes: None,
    }
}
