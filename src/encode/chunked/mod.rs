//! The chunked path: the video is cut into frame-exact segments, each
//! segment's CRF is searched so that it just reaches the VMAF target (three
//! tiers: 3 samples of 1 s; 6 of 2 s; 6 of 2 s at target − 2), segments are
//! encoded in parallel, measured, and appended with mkvmerge.
//!
//! Every segment encode is a self-contained unit ([`SegmentJob`]): source,
//! frame range, filters, encoder arguments and search settings in; encoded
//! file and its record out. State is written after each segment, and a rerun
//! reuses every finished segment that still verifies.

pub mod allocate;
pub mod guess;
pub mod remote;
pub mod search;
pub mod segments;
pub mod vmaf;

use super::Ctx;
use crate::analysis::Analysis;
use crate::cancel::Cancel;
use crate::error::{Error, ProcessFailure, Result};
use crate::events::{Event, PredictionSource, SegmentStep, Stage};
use crate::job::WorkDir;
use crate::job::state::{self, EncodingFile, ProbeRecord, ProgressFile, SegmentEntry, SegmentsFile};
use crate::plan::VideoPlan;
use crate::tools::ffmpeg::FfmpegArgs;
use guess::Guesses;
use search::{Next, Point, SearchSpace};
use segments::{FrameRange, Segment, Timeline};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;
use vmaf::VmafSpec;

/// Shortest segment of the slope allocation, seconds: a shorter scene joins
/// the next (every segment costs a survey probe and an encoder start).
pub const MIN_SCENE_SECONDS: f64 = 4.0;

/// Lowest and highest CRF the search may choose.
pub const MIN_CRF: f64 = 10.0;
pub const MAX_CRF: f64 = 55.0;
/// Scores up to this far above the target count as on target.
pub const TOLERANCE: f64 = 1.0;
/// Probes per tier at most.
pub const MAX_PROBES: usize = 6;

/// One tier of the search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tier {
    pub samples: usize,
    pub sample_seconds: f64,
    /// Subtracted from the target.
    pub target_reduction: f64,
}

/// The design's three tiers, tried in order.
pub const TIERS: [Tier; 3] = [
    Tier { samples: 3, sample_seconds: 1.0, target_reduction: 0.0 },
    Tier { samples: 6, sample_seconds: 2.0, target_reduction: 0.0 },
    Tier { samples: 6, sample_seconds: 2.0, target_reduction: 2.0 },
];

/// Settings of the chunked path for one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkedParams {
    pub target: f64,
    pub chunk_seconds: f64,
    pub workers: usize,
    pub threads_per_worker: u32,
    /// `n_subsample` for the measurement of finished segments.
    pub subsample: u32,
    /// `n_subsample` for the CRF probes (odd; 1: every frame).
    #[serde(default)]
    pub probe_subsample: u32,
    /// Settle on predicted CRFs without a confirming probe (see
    /// [`run_segment`]).
    #[serde(default)]
    pub predict: bool,
    pub pool: String,
    /// CRF step the encoder accepts (0.25 with SVT-AV1 ≥ 4).
    pub crf_step: f64,
    /// Bytes of one decoded frame (after crop), to size the probes' sample files.
    #[serde(default)]
    pub frame_bytes: u64,
    /// How segments' CRFs are chosen.
    #[serde(default)]
    pub allocation: Allocation,
}

/// How the chunked path chooses segments' CRFs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// Together, at an equal rate–quality slope (see [`allocate`]): the
    /// film's mean reaches the target, each segment within the band.
    Slope,
    /// Each segment on its own to the target (the design's three tiers).
    #[default]
    Target,
}

/// Sample files up to this size are written raw (nothing to encode or
/// decode); bigger ones (UHD, long tiers) losslessly compressed with FFV1.
const RAW_SAMPLES_MAX: u64 = 1 << 30;

/// The result of one segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentResult {
    pub index: usize,
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
    pub reused: bool,
    /// Kept below its floor (the target − [`FLOOR_MARGIN`], or the last
    /// tier's): nothing tried reached it. Reported as a warning.
    pub below_target: bool,
    /// Predictions the segment's measured VMAF did not bear out (each cost
    /// an encode; see [`run_segment`]).
    #[serde(default)]
    pub mispredictions: u32,
    /// The host that encoded it, on distributed runs (GNU Parallel sshlogin).
    #[serde(default)]
    pub host: Option<String>,
}

/// Everything one segment encode needs: a self-contained unit of work
/// (serialized as is for a worker on another host, see [`remote`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentJob {
    pub source: PathBuf,
    pub segment: Segment,
    pub output: PathBuf,
    pub scratch: PathBuf,
    pub filters: Option<String>,
    /// The filters drop one of every this many source frames (inverse
    /// telecine): the segment's frames are output frames (see
    /// [`segments::open_frames`]).
    #[serde(default)]
    pub decimation_cycle: Option<usize>,
    pub encoder_args: Vec<String>,
    pub svt_params: String,
    pub params: ChunkedParams,
    pub vmaf: VmafSpec,
    pub first_guess: f64,
    /// Slope of the score curve measured by the nearest segment that
    /// measured one (see [`guess::Guesses::slope`]).
    #[serde(default)]
    pub slope: Option<f64>,
    /// The CRF chosen for it already (the slope allocation): encode and
    /// measure, no search unless the measurement falls below the floor.
    #[serde(default)]
    pub fixed: Option<Fixed>,
}

/// A CRF chosen before the segment's encode, with the score it should
/// reach and the floor its measurement is held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fixed {
    pub crf: f64,
    /// The score the allocation planned for the segment.
    pub planned: f64,
    /// The lowest measured score accepted without a further search step.
    pub floor: f64,
}

/// Lowest measured score a segment is accepted at without a further
/// search step, below the target: the floor of the band.
pub const FLOOR_MARGIN: f64 = 1.0;
/// Highest score the slope allocation plans a segment at, above the target.
pub const CEILING_MARGIN: f64 = 2.0;
/// Lowest score it plans one at, below the target: half a point above the
/// floor, so that the measurement's spread around the plan seldom falls
/// below the floor (each fall costs an encode).
pub const PLAN_FLOOR_MARGIN: f64 = 0.5;
/// Whole-segment encodes a segment measured below its floor may add.
pub const MAX_REFINES: usize = 2;

/// What a segment job reports while it runs (sent between hosts as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// The segment started a step.
    Step { segment: usize, step: SegmentStep },
    /// A probe's result.
    Probe { segment: usize, tier: usize, crf: f64, score: f64 },
}

/// `-crf` and `-svtav1-params` for a (possibly fractional) CRF and a thread count.
fn crf_args(encoder_args: &[String], svt_params: &str, crf: f64, threads: u32) -> Vec<String> {
    let mut out = Vec::with_capacity(encoder_args.len());
    let mut it = encoder_args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-crf" => {
                it.next();
                out.push("-crf".into());
                out.push(format!("{}", crf.floor() as u32));
            }
            "-svtav1-params" => {
                it.next();
                out.push("-svtav1-params".into());
                let mut p = format!("{svt_params}:lp={threads}");
                if crf.fract() != 0.0 {
                    p.push_str(&format!(":crf={crf:.2}"));
                }
                out.push(p);
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

/// Frames a probe or the final encode reads: output frames `range` of
/// `path` (whose frame timeline is `tl`) through `filters`, which drop one
/// of every `cycle` source frames when set.
#[derive(Clone, Copy)]
struct Frames<'a> {
    path: &'a Path,
    tl: &'a Timeline,
    range: FrameRange,
    filters: Option<&'a str>,
    cycle: Option<usize>,
}

impl<'a> Frames<'a> {
    /// Frames of the job's source.
    fn source(job: &'a SegmentJob, tl: &'a Timeline, range: FrameRange) -> Frames<'a> {
        Frames { path: &job.source, tl, range, filters: job.filters.as_deref(), cycle: job.decimation_cycle }
    }

    /// Opens these frames as input of `args`; the chain that yields them.
    fn open(&self, args: &mut FfmpegArgs) -> String {
        segments::open_frames(args, self.path, self.tl, self.range, self.filters, self.cycle)
    }

    /// These frames as the reference of a score.
    fn reference(self) -> vmaf::Reference<'a> {
        vmaf::Reference::Source {
            path: self.path,
            tl: self.tl,
            range: self.range,
            filters: self.filters,
            cycle: self.cycle,
        }
    }
}

/// Encodes `frames` at `crf` to `out`. With `refs`, the same decode also
/// writes the frames that scoring every `refs.1`th frame reads (see
/// [`vmaf::selection`]) raw to `refs.0`, so that the measurement need not
/// decode the source again.
#[allow(clippy::too_many_arguments)]
fn encode_range(
    ffmpeg: &Path,
    job: &SegmentJob,
    frames: Frames,
    crf: f64,
    threads: u32,
    out: &Path,
    refs: Option<(&Path, u32)>,
    cancel: &Cancel,
) -> std::result::Result<(), ProcessFailure> {
    let mut a = FfmpegArgs::new();
    // The decoder gets the encoder's share of threads: its own would cost
    // more CPU for the same frames.
    a.arg("-threads").arg(threads.to_string());
    let chain = frames.open(&mut a);
    let refs = refs.and_then(|(path, n)| Some((path, vmaf::selection(n)?)));
    match &refs {
        Some((_, select)) => {
            a.arg("-filter_complex").arg(format!("[0:v:0]{chain},split=2[enc][ref];[ref]{select}[sel]"));
            a.extend(["-map", "[enc]"]);
        }
        None => {
            segments::frames_output(&mut a, frames.range.count);
            a.arg("-vf").arg(chain);
        }
    }
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1"]);
    a.extend(crf_args(&job.encoder_args, &job.svt_params, crf, threads));
    a.extend(["-f", "matroska"]).output(out);
    if let Some((refs_path, _)) = refs {
        a.extend(["-map", "[sel]", "-fps_mode", "passthrough", "-c:v", "rawvideo", "-f", "nut"]).output(refs_path);
    }
    crate::tools::process::run(
        &mut a.command(ffmpeg),
        &format!("segment {} encode", job.segment.index + 1),
        cancel,
        |_| {},
    )
    .map(|_| ())
}

/// Scores `distorted` against `reference`, every `subsample`th frame.
fn score(
    ffmpeg: &Path,
    job: &SegmentJob,
    distorted: &Path,
    reference: vmaf::Reference,
    subsample: u32,
    threads: u32,
    cancel: &Cancel,
) -> std::result::Result<f64, ProcessFailure> {
    let spec = VmafSpec { threads, ..job.vmaf.clone() };
    let a = vmaf::vmaf_args(distorted, reference, &spec, subsample);
    let mut found = None;
    crate::tools::process::run_lines(&mut a.command(ffmpeg), "vmaf", cancel, |line| {
        if let crate::tools::process::Line::Err(l) = line {
            if let Some(s) = vmaf::parse_score(l) {
                found = Some(s);
            }
        }
    })?;
    found.ok_or_else(|| {
        ProcessFailure::Failed(crate::error::ProcessError {
            step: "vmaf".into(),
            program: "ffmpeg".into(),
            status: "no VMAF score printed".into(),
            stderr_tail: vec![],
        })
    })
}

/// Cuts the sample `ranges` of the source, through the job's filters, into
/// one lossless file at `out` (raw video in NUT, or FFV1 when that would be
/// big), so that every probe of a tier encodes and scores one short file: no
/// seeking and decoding of the source per probe, one encoder start instead
/// of one per sample. Returns the file's timeline (frame `i` at `i` frame
/// durations).
fn cut_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    ranges: &[FrameRange],
    threads: u32,
    out: &Path,
    cancel: &Cancel,
) -> std::result::Result<Timeline, ProcessFailure> {
    let mut a = FfmpegArgs::new();
    let mut graph = String::new();
    for (i, r) in ranges.iter().enumerate() {
        let chain = Frames::source(job, tl, *r).open(&mut a);
        graph.push_str(&format!("[{i}:v:0]{chain},setpts=PTS-STARTPTS[s{i}];"));
    }
    for i in 0..ranges.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    graph.push_str(&format!("concat=n={}:v=1:a=0[v]", ranges.len()));
    a.arg("-filter_complex").arg(graph).extend(["-map", "[v]", "-an", "-sn", "-dn"]);
    let n: usize = ranges.iter().map(|r| r.count).sum();
    a.extend(["-fps_mode", "passthrough"]);
    if job.params.frame_bytes > 0 && job.params.frame_bytes * n as u64 <= RAW_SAMPLES_MAX {
        a.extend(["-c:v", "rawvideo", "-f", "nut"]);
    } else {
        a.extend(["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-threads", &threads.to_string()]);
        a.extend(["-f", "matroska"]);
    }
    a.output(out);
    crate::tools::process::run(
        &mut a.command(ffmpeg),
        &format!("segment {} samples", job.segment.index + 1),
        cancel,
        |_| {},
    )?;
    let d = segments::output_frame_duration(tl, job.decimation_cycle);
    Ok(Timeline { pts: (0..n).map(|i| i as f64 * d).collect(), bytes: vec![] })
}

/// The search of one tier; `slope` is what other segments of the file
/// measured, if any.
fn tier_space(params: &ChunkedParams, tier: &Tier, slope: Option<f64>) -> SearchSpace {
    SearchSpace {
        min_crf: MIN_CRF,
        max_crf: MAX_CRF,
        step: params.crf_step,
        target: params.target - tier.target_reduction,
        tolerance: TOLERANCE,
        max_probes: MAX_PROBES,
        prior_slope: slope.unwrap_or(search::DEFAULT_SLOPE),
    }
}

/// Frame ranges of `n` samples of `frames_each` frames spread over the segment.
pub fn sample_ranges(seg: &Segment, n: usize, frames_each: usize) -> Vec<FrameRange> {
    let len = seg.frames();
    if n == 0 || frames_each == 0 || frames_each * n >= len {
        return vec![seg.range()];
    }
    (0..n)
        .map(|k| {
            let free = len - frames_each;
            let offset = (free as f64 * (k as f64 + 0.5) / n as f64).round() as usize;
            FrameRange { start: seg.start + offset.min(free), count: frames_each }
        })
        .collect()
}

/// An encode of the whole segment at one CRF, kept until the search
/// settles: the chosen one becomes the segment, the others are removed.
struct Whole {
    crf: f64,
    path: PathBuf,
    /// Its VMAF: the measurement's (subsampled), or the probe's when the
    /// probe was this encode; `None` when scoring failed.
    score: Option<f64>,
}

/// Where the whole-segment encode at `crf` is in `wholes`: made and
/// measured now unless it is there already.
fn encode_whole(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    wholes: &mut Vec<Whole>,
    crf: f64,
    steps: &Steps,
) -> std::result::Result<usize, ProcessFailure> {
    if let Some(i) = wholes.iter().position(|w| (w.crf - crf).abs() < 1e-9) {
        return Ok(i);
    }
    let seg = job.segment;
    let path = job.output.with_extension(format!("crf{crf:.2}.partial.mkv"));
    let frames = Frames::source(job, tl, seg.range());
    // The frames the measurement reads, written raw by the encode's own
    // decode of the source, when they are few enough.
    let subsample = job.params.subsample;
    let refs = vmaf::selected_frames(seg.frames(), subsample)
        .filter(|n| job.params.frame_bytes > 0 && job.params.frame_bytes * n <= RAW_SAMPLES_MAX)
        .map(|_| job.scratch.join(format!("refs-{}-crf{crf:.2}.nut", seg.index)));
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Encoding { crf } });
    encode_range(
        ffmpeg,
        job,
        frames,
        crf,
        (steps.threads)(),
        &path,
        refs.as_deref().map(|r| (r, subsample)),
        steps.cancel,
    )?;
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Measuring });
    let reference = match &refs {
        Some(r) => vmaf::Reference::Selected(r),
        None => frames.reference(),
    };
    let score = score(ffmpeg, job, &path, reference, subsample, (steps.threads)(), steps.cancel).ok();
    if let Some(r) = &refs {
        let _ = std::fs::remove_file(r);
    }
    wholes.push(Whole { crf, path, score });
    Ok(wholes.len() - 1)
}

/// The samples a tier's probes encode: a cut file with its timeline, or
/// `None` when the samples cover the segment (probes encode the segment
/// itself).
type Samples = Option<(PathBuf, Timeline)>;

/// The samples of tier `tier_index` of `job`'s segment, cut now.
fn tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let tier = TIERS[tier_index];
    cut_tier_samples(ffmpeg, job, tl, tier_index, tier.samples, tier.sample_seconds, steps)
}

/// `count` samples of `seconds` each, spread over the segment, cut as
/// samples of tier `tier_index`.
fn cut_tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    count: usize,
    seconds: f64,
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let seg = job.segment;
    let fps = 1.0 / segments::output_frame_duration(tl, job.decimation_cycle);
    let ranges = sample_ranges(&seg, count, (seconds * fps).round() as usize);
    let frames = ranges.iter().map(|r| r.count).sum();
    if ranges.len() == 1 && ranges[0] == seg.range() {
        return Ok((None, frames));
    }
    let path = job.scratch.join(format!("samples-{}-tier{}", seg.index, tier_index + 1));
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Sampling { tier: tier_index + 1 } });
    let stl = cut_samples(ffmpeg, job, tl, &ranges, (steps.threads)(), &path, steps.cancel)?;
    Ok((Some((path, stl)), frames))
}

/// One probe at `crf` on `samples`: its record, and the encode when it is
/// of the whole segment (kept in `wholes`, scored as a probe).
#[allow(clippy::too_many_arguments)]
fn probe(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    samples: &Samples,
    tier_index: usize,
    crf: f64,
    wholes: &mut Vec<Whole>,
    steps: &Steps,
) -> std::result::Result<ProbeRecord, ProcessFailure> {
    let seg = job.segment;
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Probing { tier: tier_index + 1, crf } });
    let t = Instant::now();
    let (frames, out) = match samples {
        Some((path, stl)) => (
            Frames { path, tl: stl, range: FrameRange { start: 0, count: stl.frames() }, filters: None, cycle: None },
            job.scratch.join(format!("probe-{}-crf{crf:.2}.mkv", seg.index)),
        ),
        None => (Frames::source(job, tl, seg.range()), job.output.with_extension(format!("crf{crf:.2}.partial.mkv"))),
    };
    encode_range(ffmpeg, job, frames, crf, (steps.threads)(), &out, None, steps.cancel)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    // Harmonic pooling over all the samples' frames, every
    // `probe_subsample`th scored (odd: every mini-GOP layer is represented).
    let s = score(
        ffmpeg,
        job,
        &out,
        frames.reference(),
        job.params.probe_subsample.max(1),
        (steps.threads)(),
        steps.cancel,
    )?;
    if samples.is_none() {
        wholes.retain(|w| (w.crf - crf).abs() > 1e-9);
        wholes.push(Whole { crf, path: out, score: Some(s) });
    } else {
        let _ = std::fs::remove_file(&out);
    }
    (steps.report)(Report::Probe { segment: seg.index, tier: tier_index + 1, crf, score: s });
    Ok(ProbeRecord { tier: tier_index + 1, crf, score: s, bytes, seconds: t.elapsed().as_secs_f64() })
}

/// A segment measured below `floor` is searched further on whole-segment
/// encodes (their measurements are what the samples only estimate), aiming
/// at `aim`, at most [`MAX_REFINES`] encodes and [`search::MAX_LEAP`] CRF
/// below where it started. Returns the encode to keep (the highest CRF
/// measured at or above the floor, else the best-scoring one) and the
/// encodes it added.
#[allow(clippy::too_many_arguments)]
fn refine_below_floor(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    wholes: &mut Vec<Whole>,
    w: usize,
    floor: f64,
    aim: f64,
    steps: &Steps,
) -> std::result::Result<(usize, usize), ProcessFailure> {
    let start = wholes[w].crf;
    let space = SearchSpace {
        min_crf: (start - search::MAX_LEAP).max(MIN_CRF),
        max_crf: MAX_CRF,
        step: job.params.crf_step,
        target: aim,
        tolerance: TOLERANCE,
        max_probes: MAX_REFINES + 1,
        prior_slope: job.slope.unwrap_or(search::DEFAULT_SLOPE),
    };
    let mut current = w;
    let mut added = 0;
    while added < MAX_REFINES {
        match wholes[current].score {
            Some(s) if s < floor => {}
            _ => break,
        }
        let points: Vec<Point> =
            wholes.iter().filter_map(|x| x.score.map(|score| Point { crf: x.crf, score })).collect();
        let next = match space.next(&points, start) {
            Next::Probe(c) if !wholes.iter().any(|x| (x.crf - c).abs() < 1e-9) => c,
            _ => break,
        };
        current = encode_whole(ffmpeg, job, tl, wholes, next, steps)?;
        added += 1;
    }
    if added == 0 {
        return Ok((w, 0));
    }
    let passing = wholes
        .iter()
        .enumerate()
        .filter(|(_, x)| x.score.is_some_and(|s| s >= floor))
        .max_by(|a, b| a.1.crf.total_cmp(&b.1.crf));
    let best = wholes
        .iter()
        .enumerate()
        .filter(|(_, x)| x.score.is_some())
        .max_by(|a, b| a.1.score.unwrap_or(0.0).total_cmp(&b.1.score.unwrap_or(0.0)));
    Ok((passing.or(best).map_or(w, |(i, _)| i), added))
}

/// What a segment job is given to run its steps: cancellation, its thread
/// count at each step, and where its reports go.
struct Steps<'a> {
    cancel: &'a Cancel,
    threads: &'a dyn Fn() -> u32,
    report: &'a dyn Fn(Report),
}

/// The probes a survey makes per segment at most (see [`survey_segment`]):
/// two, a third when neither lands within [`SURVEY_NEAR`] of the target.
pub const SURVEY_PROBES: usize = 3;
const SURVEY_NEAR: f64 = 2.5;
/// Segment seconds per survey sample (of the first tier's length; at most
/// the first tier's count).
const SURVEY_SECONDS_PER_SAMPLE: f64 = 5.0;
/// A first probe this close to the target is the survey's only one once a
/// neighbour has measured the curve's slope (the model then reaches the band's
/// edges from it with that slope).
const SURVEY_ONE_PROBE: f64 = 3.0;

/// How far the survey's second probe is from its first when the first is
/// on target already (CRF).
const SURVEY_SPREAD: f64 = 3.0;

/// What the slope allocation's survey learned of one segment.
#[derive(Debug, Clone)]
pub struct Survey {
    pub probes: Vec<ProbeRecord>,
    /// Frames the probes encoded.
    pub sample_frames: usize,
}

/// The slope allocation's survey of one segment: [`SURVEY_PROBES`] probes
/// on the first tier's samples, at the first guess and where the search
/// would go next (or [`SURVEY_SPREAD`] away when the first is on target),
/// for the segment's own rate–quality model (see [`allocate::Model::fit`]);
/// one when a neighbour measured the slope and the first probe is within
/// [`SURVEY_ONE_PROBE`] of the target.
pub fn survey_segment(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    cancel: &Cancel,
    threads: &dyn Fn() -> u32,
    report: &dyn Fn(Report),
) -> std::result::Result<Survey, ProcessFailure> {
    let steps = Steps { cancel, threads, report };
    let space = tier_space(&job.params, &TIERS[0], job.slope);
    // The first tier's samples, one per SURVEY_SECONDS_PER_SAMPLE of segment
    // (short segments are surveyed on a fifth of their frames, not most).
    let fps = 1.0 / segments::output_frame_duration(tl, job.decimation_cycle);
    let count =
        ((job.segment.frames() as f64 / fps / SURVEY_SECONDS_PER_SAMPLE).round() as usize).clamp(1, TIERS[0].samples);
    let (samples, sample_frames) = cut_tier_samples(ffmpeg, job, tl, 0, count, TIERS[0].sample_seconds, &steps)?;
    let mut wholes = Vec::new();
    let mut probes: Vec<ProbeRecord> = Vec::new();
    let mut crf = space.next(&[], job.first_guess);
    while probes.len() < SURVEY_PROBES {
        let Next::Probe(c) = crf else { break };
        probes.push(probe(ffmpeg, job, tl, &samples, 0, c, &mut wholes, &steps)?);
        if job.slope.is_some() && probes.len() == 1 && (probes[0].score - space.target).abs() <= SURVEY_ONE_PROBE {
            break;
        }
        let points: Vec<Point> = probes.iter().map(|p| Point { crf: p.crf, score: p.score }).collect();
        if probes.len() == 2 && probes.iter().any(|p| (p.score - space.target).abs() <= SURVEY_NEAR) {
            break;
        }
        crf = match space.next(&points, job.first_guess) {
            Next::Probe(n) if (n - c).abs() >= 1.0 && !probes.iter().any(|p| (p.crf - n).abs() < 1e-9) => {
                Next::Probe(n)
            }
            _ => {
                let up = if points[0].score >= space.target { SURVEY_SPREAD } else { -SURVEY_SPREAD };
                let n = (c + up).clamp(MIN_CRF, MAX_CRF);
                if probes.iter().any(|p| (p.crf - n).abs() < 1e-9) { Next::Done(points[0]) } else { Next::Probe(n) }
            }
        };
    }
    if let Some((path, _)) = &samples {
        let _ = std::fs::remove_file(path);
    }
    for w in wholes {
        let _ = std::fs::remove_file(&w.path);
    }
    Ok(Survey { probes, sample_frames })
}

/// Encodes the segment at its allocated CRF and measures it; below the
/// floor, searches further on wholes ([`refine_below_floor`]).
fn encode_fixed(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    fixed: Fixed,
    steps: &Steps,
    started: Instant,
) -> std::result::Result<SegmentResult, ProcessFailure> {
    let mut wholes = Vec::new();
    let w = encode_whole(ffmpeg, job, tl, &mut wholes, fixed.crf, steps)?;
    let aim = fixed.planned.max(fixed.floor + 0.5);
    let (w, added) = refine_below_floor(ffmpeg, job, tl, &mut wholes, w, fixed.floor, aim, steps)?;
    let below = wholes[w].score.is_some_and(|s| s < fixed.floor);
    keep(
        job,
        wholes,
        w,
        started,
        Kept {
            predicted: fixed.planned,
            tier: 1,
            prediction: PredictionSource::Model,
            probes: vec![],
            below_target: below,
            mispredictions: u32::from(added > 0),
        },
    )
}

/// How the kept encode of a segment was arrived at.
struct Kept {
    predicted: f64,
    tier: usize,
    prediction: PredictionSource,
    probes: Vec<ProbeRecord>,
    below_target: bool,
    mispredictions: u32,
}

/// Makes encode `w` the segment (renamed to the job's output), removes the
/// other encodes, and gives the segment's result.
fn keep(
    job: &SegmentJob,
    wholes: Vec<Whole>,
    w: usize,
    started: Instant,
    kept: Kept,
) -> std::result::Result<SegmentResult, ProcessFailure> {
    std::fs::rename(&wholes[w].path, &job.output)
        .map_err(|e| ProcessFailure::Spawn { program: "rename".into(), source: e })?;
    for (i, other) in wholes.iter().enumerate() {
        if i != w {
            let _ = std::fs::remove_file(&other.path);
        }
    }
    let bytes = std::fs::metadata(&job.output).map(|m| m.len()).unwrap_or(0);
    Ok(SegmentResult {
        index: job.segment.index,
        path: job.output.clone(),
        frames: job.segment.frames(),
        crf: wholes[w].crf,
        tier: kept.tier,
        predicted_vmaf: kept.predicted,
        prediction: kept.prediction,
        measured_vmaf: wholes[w].score,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        probes: kept.probes,
        reused: false,
        below_target: kept.below_target,
        mispredictions: kept.mispredictions,
        host: None,
    })
}

/// Searches the CRF of one segment and encodes it (or, with `job.fixed`,
/// encodes it at the CRF the slope allocation chose). `threads` says, at
/// each step, how many threads its encoder and VMAF may use (more once no
/// other segment waits for a worker).
///
/// Per tier: probes on the tier's samples until the search settles. When
/// the probe the search asks for next would only confirm the model's
/// prediction (the score curve's slope, learned from the other segments,
/// puts it within the tolerance, at most [`search::MAX_LEAP`] from a
/// measured point), that probe is skipped: the segment is encoded at the
/// predicted CRF and its own measured VMAF is the check. A prediction that
/// the result does not bear out ([`SearchSpace::verified`]) is probed after
/// all, predictions end for the segment, and the search goes on as usual
/// (the encode is kept if it settles on the same CRF). A segment settled by
/// its probes is held to its measurement too: below the target by more
/// than [`FLOOR_MARGIN`], it is searched further on wholes
/// ([`refine_below_floor`]). When no CRF reaches even the last tier's
/// target, the lowest CRF within half a point of the best score probed is
/// taken (not the CRF floor: below it, bytes buy nothing), and reported.
pub fn run_segment(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    cancel: &Cancel,
    threads: &dyn Fn() -> u32,
    report: &dyn Fn(Report),
) -> std::result::Result<SegmentResult, ProcessFailure> {
    let started = Instant::now();
    let steps = Steps { cancel, threads, report };
    if let Some(fixed) = job.fixed {
        return encode_fixed(ffmpeg, job, tl, fixed, &steps, started);
    }
    let mut probes: Vec<ProbeRecord> = Vec::new();
    let mut guess = job.first_guess;
    let mut wholes: Vec<Whole> = Vec::new();
    let mut may_predict = job.params.predict;
    let mut mispredictions = 0;
    // (CRF, predicted score, tier, how the score is known, encode)
    let mut chosen: Option<(f64, f64, usize, PredictionSource, usize)> = None;
    for (tier_index, tier) in TIERS.iter().enumerate() {
        let space = tier_space(&job.params, tier, job.slope);
        let (samples, _) = tier_samples(ffmpeg, job, tl, tier_index, &steps)?;
        let mut points: Vec<Point> = Vec::new();
        loop {
            let (point, source) = match space.next(&points, guess) {
                Next::Probe(crf) => match space.prediction(&points, crf).filter(|_| may_predict && samples.is_some()) {
                    Some(p) => (p, PredictionSource::Model),
                    None => {
                        let p = probe(ffmpeg, job, tl, &samples, tier_index, crf, &mut wholes, &steps)?;
                        points.push(Point { crf, score: p.score });
                        probes.push(p);
                        continue;
                    }
                },
                Next::Done(p) => (p, PredictionSource::Probe),
                Next::Unreachable(best) => {
                    if let Some(b) = best {
                        guess = b.crf;
                    }
                    break;
                }
            };
            let w = encode_whole(ffmpeg, job, tl, &mut wholes, point.crf, &steps)?;
            if source == PredictionSource::Model && !wholes[w].score.is_some_and(|m| space.verified(m)) {
                // Not borne out: probe that CRF after all and search on.
                may_predict = false;
                mispredictions += 1;
                continue;
            }
            chosen = Some((point.crf, point.score, tier_index + 1, source, w));
            break;
        }
        if let Some((path, _)) = &samples {
            let _ = std::fs::remove_file(path);
        }
        if chosen.is_some() {
            break;
        }
    }
    let target = job.params.target;
    let (predicted, tier, prediction, w, below_target) = match chosen {
        Some((_, predicted, tier, prediction, w)) => {
            let floor = target - TIERS[tier - 1].target_reduction - FLOOR_MARGIN;
            let aim = target - TIERS[tier - 1].target_reduction;
            let (w, added) = refine_below_floor(ffmpeg, job, tl, &mut wholes, w, floor, aim, &steps)?;
            mispredictions += added as u32;
            (predicted, tier, prediction, w, wholes[w].score.is_some_and(|s| s < floor))
        }
        None => {
            // Bounded: the lowest CRF probed at the last tier whose score is
            // within half a point of the best (bytes below it buy nothing).
            let last: Vec<&ProbeRecord> = probes.iter().filter(|p| p.tier == TIERS.len()).collect();
            let best = last.iter().map(|p| p.score).fold(f64::MIN, f64::max);
            let crf = last.iter().filter(|p| p.score >= best - 0.5).map(|p| p.crf).fold(f64::MIN, f64::max);
            let (crf, best) = if crf > f64::MIN { (crf, best) } else { (MIN_CRF, 0.0) };
            let w = encode_whole(ffmpeg, job, tl, &mut wholes, crf, &steps)?;
            (best, TIERS.len(), PredictionSource::Probe, w, true)
        }
    };
    keep(job, wholes, w, started, Kept { predicted, tier, prediction, probes, below_target, mispredictions })
}

/// Threads for a step that starts now, out of `budget`: the worker's own
/// `per_worker` while segments wait in the queue; once none waits, the
/// budget split among the `active` segments, not counting the
/// `others_finishing` ones in their last step (measuring, short): the
/// threads those free soon go to the work that remains, so no core sits idle
/// through the last, longest steps.
fn thread_share(budget: u32, per_worker: u32, queued: bool, active: usize, others_finishing: usize) -> u32 {
    if queued {
        return per_worker;
    }
    let sharing = active.saturating_sub(others_finishing).max(1);
    (budget / sharing as u32).max(1)
}

/// Parallel encoders for this machine: bounded by cores, by free memory (one
/// SVT-AV1 encoder needs about 1.2 GB per megapixel of frame) and by
/// `max_memory`.
pub fn default_workers(width: u32, height: u32, max_memory: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_worker = encoder_memory(width, height);
    let available = available_memory().unwrap_or(max_memory).min(max_memory);
    let by_memory = (available / per_worker).max(1) as usize;
    cores.min(by_memory).clamp(1, 32)
}

/// Memory one SVT-AV1 encoder of a `width`x`height` picture needs (about
/// 1.2 GB per megapixel, at least 500 MB).
pub fn encoder_memory(width: u32, height: u32) -> u64 {
    (f64::from(width) * f64::from(height) / 1e6 * 1.2e9).max(5e8) as u64
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Everything the chunked path produced.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkedReport {
    pub segments: Vec<SegmentResult>,
    pub frames: usize,
    pub params: ChunkedParams,
}

/// The programs besides ffmpeg that the chunked path runs, and the hosts
/// that share the segment encodes (none: this machine's workers).
#[derive(Debug, Clone, Copy)]
pub struct Helpers<'a> {
    pub ffprobe: &'a Path,
    pub mkvmerge: &'a Path,
    pub cluster: Option<&'a remote::Cluster>,
}

/// Encodes the video of `analysis` into `output` the chunked way.
pub fn encode(
    ctx: &Ctx,
    helpers: Helpers,
    analysis: &Analysis,
    video: &VideoPlan,
    params: &ChunkedParams,
    work: &WorkDir,
    output: &Path,
) -> Result<ChunkedReport> {
    let Helpers { ffprobe, mkvmerge, cluster } = helpers;
    let input = analysis.input.as_path();
    let t0 = Instant::now();
    // The source's frames (for seeking and scene detection) and the frames
    // the filters give out of them (what is planned, encoded and counted).
    let src_tl = segments::timeline(ffprobe, input, ctx.cancel)?;
    let cuts = segments::scene_cuts(
        ctx.ffmpeg,
        input,
        &src_tl,
        params.workers * params.threads_per_worker as usize,
        ctx.cancel,
    );
    ctx.cancel.check()?;
    let tl = segments::output_timeline(&src_tl, video.decimation_cycle);
    // Slope allocation: one scene a segment (a curve of its own), up to the
    // chunk length; else segments of the chunk length starting at cuts.
    let segs = match params.allocation {
        Allocation::Slope => segments::plan_scene_segments(&tl, &cuts, MIN_SCENE_SECONDS, params.chunk_seconds),
        Allocation::Target => segments::plan_segments(&tl, &cuts, params.chunk_seconds),
    };
    let total_frames = tl.frames();
    let fingerprint = fingerprint(video, params, &segs);
    let workers_detail = match cluster.map(|c| &c.hosts) {
        None => format!("{} worker(s) × {} thread(s)", params.workers, params.threads_per_worker),
        Some(h) => format!(
            "{} host(s), {} job slot(s), {} thread(s) each",
            h.len(),
            h.iter().map(|h| h.slots).sum::<usize>(),
            params.threads_per_worker
        ),
    };
    ctx.events.emit(&Event::StageStarted {
        input: input.to_path_buf(),
        stage: Stage::Video,
        detail: format!(
            "chunked: {} of ~{}s ({} found, {:.1}s), VMAF target {}, {workers_detail}",
            crate::report::count(segs.len(), "segment"),
            params.chunk_seconds,
            crate::report::count(cuts.len(), "scene cut"),
            t0.elapsed().as_secs_f64(),
            params.target,
        ),
    });

    let state_dir = work.root().join("state");
    let encoded_dir = work.root().join("encoded");
    let scratch = work.root().join("working");
    for d in [&state_dir, &encoded_dir, &scratch] {
        std::fs::create_dir_all(d).map_err(Error::io("create folder", d))?;
    }
    let seg_file = state_dir.join("segments.json");
    let enc_file = state_dir.join("encoding.json");
    let prog_file = state_dir.join("progress.json");
    let created = state::now();
    let seg_path = |s: &Segment| encoded_dir.join(format!("{:04}.mkv", s.index + 1));

    // Resume: reuse every completed segment that still verifies.
    let mut enc: EncodingFile = match state::load::<EncodingFile>(&enc_file, &fingerprint) {
        Ok(e) => e,
        Err(why) => {
            if !matches!(why, state::LoadError::Missing) {
                ctx.events.emit(&Event::Warning {
                    input: Some(input.to_path_buf()),
                    message: format!("earlier state not used ({why:?}); starting the video afresh"),
                });
            }
            EncodingFile {
                version: state::STATE_VERSION,
                fingerprint: fingerprint.clone(),
                created_at: created.clone(),
                updated_at: created.clone(),
                total_attempts: 0,
                failed_segments: 0,
                max_attempts: TIERS.len() as u32,
                segments: BTreeMap::new(),
            }
        }
    };
    let mut results: BTreeMap<usize, SegmentResult> = BTreeMap::new();
    for s in &segs {
        let Some(st) = enc.segments.get(&s.index.to_string()) else { continue };
        let path = seg_path(s);
        let ok = st.status == "completed"
            && std::fs::metadata(&path).is_ok_and(|m| m.len() >= 1024)
            && crate::tools::ffprobe::count_frames(ffprobe, &path) == Some(s.frames());
        if ok {
            results.insert(
                s.index,
                SegmentResult {
                    index: s.index,
                    path,
                    frames: s.frames(),
                    crf: st.crf.unwrap_or(0.0),
                    tier: st.tier.unwrap_or(1),
                    predicted_vmaf: st.predicted_vmaf.unwrap_or(0.0),
                    prediction: st.prediction,
                    measured_vmaf: st.measured_vmaf,
                    bytes: st.bytes.unwrap_or(0),
                    seconds: st.seconds.unwrap_or(0.0),
                    probes: st.probes.clone(),
                    reused: true,
                    below_target: false,
                    mispredictions: 0,
                    host: st.host.clone(),
                },
            );
        }
    }
    enc.segments.retain(|k, _| k.parse().is_ok_and(|i: usize| results.contains_key(&i)));
    if !results.is_empty() {
        ctx.events.emit(&Event::Warning {
            input: Some(input.to_path_buf()),
            message: format!("resuming: {} of {} segments already encoded and verified", results.len(), segs.len()),
        });
    }
    let seg_state = SegmentsFile {
        version: state::STATE_VERSION,
        fingerprint: fingerprint.clone(),
        created_at: created.clone(),
        updated_at: state::now(),
        segments: segs
            .iter()
            .map(|s| SegmentEntry {
                index: s.index,
                path: format!("encoded/{:04}.mkv", s.index + 1),
                start_frame: s.start,
                end_frame: s.end,
                start_time: tl.pts[s.start],
                duration: s.frames() as f64 * tl.frame_duration(),
            })
            .collect(),
    };
    state::write_atomic(&seg_file, &seg_state)?;

    // First guesses: from the neighbours' results and searches, else a prior.
    let guesses = {
        let prior = search::prior_crf(f64::from(video.crf), params.target);
        let mut g = Guesses::new(prior, segments::starts_at_cut(&tl, &cuts, &segs));
        for r in results.values() {
            g.finished(r);
        }
        Mutex::new(g)
    };
    // In order: each segment's search starts from its neighbours' (finished
    // or still probing), usually the most alike content. (Longest first
    // gained little with segments of about equal length, and scattered the
    // neighbours.)
    let todo: Vec<Segment> = segs.iter().filter(|s| !results.contains_key(&s.index)).copied().collect();
    let queue: Mutex<VecDeque<Segment>> = Mutex::new(todo.iter().copied().collect());
    let budget = params.threads_per_worker * params.workers as u32;
    let vmaf_spec = {
        let (w, h) = analysis.picture_size();
        VmafSpec::for_picture(analysis.resolution, w, h, &params.pool, params.threads_per_worker)
    };
    let (tx, rx) = mpsc::channel::<(usize, std::result::Result<SegmentResult, ProcessFailure>)>();
    let (ptx, prx) = mpsc::channel::<Report>();
    let stop = AtomicBool::new(false);
    let active = AtomicUsize::new(0);
    // Workers whose segment is in its last step (measuring).
    let finishing = AtomicUsize::new(0);
    let per_worker = {
        let (w, h) = analysis.picture_size();
        encoder_memory(w, h)
    };
    // A segment's job, with the first guess of what is known at its start.
    let base_job = |seg: Segment| -> SegmentJob {
        let (first_guess, slope, predict) = {
            let mut g = guesses.lock().expect("guesses");
            let slope = g.slope(seg.index);
            g.started(seg.index, slope);
            (g.first_guess(seg.index), slope, params.predict && g.predictions_trusted())
        };
        SegmentJob {
            source: analysis.input.clone(),
            segment: seg,
            output: seg_path(&seg),
            scratch: scratch.clone(),
            filters: video.filter_chain(),
            decimation_cycle: video.decimation_cycle,
            encoder_args: video.encoder_args(),
            svt_params: video.svt_params.clone(),
            params: ChunkedParams { predict, ..params.clone() },
            vmaf: vmaf_spec.clone(),
            first_guess,
            slope,
            fixed: None,
        }
    };
    // The slope allocation: every segment to encode is surveyed first, then
    // each one's CRF is decided as its encode starts (see allocate::Plan).
    let surveys: BTreeMap<usize, Survey> = if params.allocation == Allocation::Slope && cluster.is_none() {
        survey_all(ctx, input, &todo, &base_job, &src_tl, params, &guesses)?
    } else {
        BTreeMap::new()
    };
    let allocation = (!surveys.is_empty()).then(|| Mutex::new(slope_plan(params, &segs, &surveys, &results)));
    let make_job = |seg: Segment| -> SegmentJob {
        let mut job = base_job(seg);
        job.fixed = allocation.as_ref().and_then(|a| a.lock().expect("allocation").start(seg.index)).map(|p| Fixed {
            crf: p.crf,
            planned: p.score,
            floor: params.target - FLOOR_MARGIN,
        });
        job
    };

    let outcome = std::thread::scope(|scope| -> Result<()> {
        match cluster {
            Some(cluster) => {
                let d = remote::Dispatch {
                    ffmpeg: ctx.ffmpeg,
                    ffprobe,
                    cancel: ctx.cancel,
                    root: work.root(),
                    timeline: &src_tl,
                    hosts: cluster.hosts.clone(),
                    queue: &queue,
                    stop: &stop,
                    make_job: &make_job,
                };
                let (tx, ptx) = (tx.clone(), ptx.clone());
                scope.spawn(move || remote::run(cluster, d, tx, ptx));
            }
            None => {
                for _ in 0..params.workers {
                    let (tx, ptx) = (tx.clone(), ptx.clone());
                    let (queue, stop, active, finishing, make_job, src_tl, guesses, surveys, allocation) =
                        (&queue, &stop, &active, &finishing, &make_job, &src_tl, &guesses, &surveys, &allocation);
                    scope.spawn(move || {
                        loop {
                            if stop.load(Ordering::SeqCst) || ctx.cancel.is_cancelled() {
                                break;
                            }
                            // Memory gate: while another encoder is running and free
                            // memory is below what one more needs, wait.
                            if active.load(Ordering::SeqCst) > 0 && available_memory().is_some_and(|m| m < per_worker) {
                                std::thread::sleep(std::time::Duration::from_secs(1));
                                continue;
                            }
                            let Some(seg) = queue.lock().expect("queue").pop_front() else { break };
                            active.fetch_add(1, Ordering::SeqCst);
                            let job = make_job(seg);
                            let ptx2 = ptx.clone();
                            let measuring = std::cell::Cell::new(false);
                            let threads = || {
                                let others = finishing.load(Ordering::SeqCst) - usize::from(measuring.get());
                                thread_share(
                                    budget,
                                    params.threads_per_worker,
                                    !queue.lock().expect("queue").is_empty(),
                                    active.load(Ordering::SeqCst),
                                    others,
                                )
                            };
                            let report = |rep: Report| {
                                // Measuring is usually the last step; a
                                // prediction it does not bear out sends the
                                // segment back to probing.
                                if let Report::Step { step, .. } = rep {
                                    let now = matches!(step, SegmentStep::Measuring);
                                    if now != measuring.get() {
                                        measuring.set(now);
                                        if now {
                                            finishing.fetch_add(1, Ordering::SeqCst);
                                        } else {
                                            finishing.fetch_sub(1, Ordering::SeqCst);
                                        }
                                    }
                                }
                                let _ = ptx2.send(rep);
                            };
                            let mut r = run_segment(ctx.ffmpeg, &job, src_tl, ctx.cancel, &threads, &report);
                            if let Err(e) = &r
                                && retryable(e)
                            {
                                retrying(ctx, input, seg.index, e);
                                r = run_segment(ctx.ffmpeg, &job, src_tl, ctx.cancel, &threads, &report);
                            }
                            // Known before this worker makes its next job
                            // (the coordinator records it again).
                            if let Ok(res) = &mut r {
                                guesses.lock().expect("guesses").finished(res);
                                if let Some(s) = surveys.get(&seg.index) {
                                    res.probes.splice(0..0, s.probes.iter().cloned());
                                }
                            }
                            if let Some(a) = allocation.as_ref() {
                                let mut a = a.lock().expect("allocation");
                                match &r {
                                    Ok(res) => a.finished(seg.index, res.crf, res.measured_vmaf),
                                    Err(_) => a.abandoned(seg.index),
                                }
                            }
                            if measuring.get() {
                                finishing.fetch_sub(1, Ordering::SeqCst);
                            }
                            active.fetch_sub(1, Ordering::SeqCst);
                            if tx.send((seg.index, r)).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        }
        drop(tx);
        drop(ptx);
        // The coordinator: records results, writes state, reports progress.
        let started = Instant::now();
        let done_before: usize = results.values().map(|r| r.frames).sum();
        let mut failure: Option<Error> = None;
        // Reports go out before the result they precede (a worker sends its
        // reports first, so they are all queued when its result is).
        let drain = || {
            while let Ok(r) = prx.try_recv() {
                report_event(ctx, input, params, &guesses, r);
            }
        };
        loop {
            drain();
            let (index, r) = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(x) => x,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            drain();
            let mut completed = None;
            let entry = enc.segments.entry(index.to_string()).or_default();
            entry.attempts += 1;
            entry.last_attempt = Some(state::now());
            enc.total_attempts += 1;
            match r {
                Ok(res) => {
                    entry.status = "completed".into();
                    entry.error = None;
                    entry.crf = Some(res.crf);
                    entry.tier = Some(res.tier);
                    entry.predicted_vmaf = Some(res.predicted_vmaf);
                    entry.prediction = res.prediction;
                    entry.measured_vmaf = res.measured_vmaf;
                    entry.bytes = Some(res.bytes);
                    entry.frames = Some(res.frames);
                    entry.seconds = Some(res.seconds);
                    entry.probes = res.probes.clone();
                    entry.host = res.host.clone();
                    if res.below_target {
                        ctx.events.emit(&Event::Warning {
                            input: Some(input.to_path_buf()),
                            message: format!(
                                "segment {}: kept at CRF {} with VMAF {}, below the target {} by more than {FLOOR_MARGIN} \
                                 (nothing tried reached it; lower CRFs bought no more)",
                                index + 1,
                                res.crf,
                                res.measured_vmaf.map_or("not measured".into(), |m| format!("{m:.2}")),
                                params.target,
                            ),
                        });
                    }
                    completed = Some(Event::SegmentComplete {
                        input: input.to_path_buf(),
                        segment: index,
                        total: segs.len(),
                        start_frame: segs[index].start,
                        frames: segs[index].frames(),
                        crf: res.crf,
                        tier: res.tier,
                        predicted_vmaf: res.predicted_vmaf,
                        prediction: res.prediction,
                        measured_vmaf: res.measured_vmaf,
                        bytes: res.bytes,
                        seconds: res.seconds,
                        probes: res.probes.len(),
                        reused: false,
                        host: res.host.clone(),
                    });
                    guesses.lock().expect("guesses").finished(&res);
                    results.insert(index, res);
                }
                Err(ProcessFailure::Cancelled(sig)) => {
                    entry.status = "pending".into();
                    failure.get_or_insert(Error::Cancelled { signal: sig });
                }
                Err(e) => {
                    entry.status = "failed".into();
                    let err = Error::process(input)(e);
                    entry.error = Some(err.to_string());
                    enc.failed_segments += 1;
                    stop.store(true, Ordering::SeqCst);
                    failure.get_or_insert(err);
                }
            }
            enc.updated_at = state::now();
            // The state is the truth: written before anyone is told.
            state::write_atomic(&enc_file, &enc)?;
            if let Some(e) = completed {
                ctx.events.emit(&e);
            }
            let frames_done: usize = results.values().map(|r| r.frames).sum();
            let fraction = frames_done as f64 / total_frames as f64;
            state::write_atomic(
                &prog_file,
                &ProgressFile {
                    version: state::STATE_VERSION,
                    status: "encoding".into(),
                    created_at: created.clone(),
                    updated_at: state::now(),
                    total_progress: fraction * 100.0,
                    segments_completed: results.len(),
                    segments_failed: enc.failed_segments as usize,
                    current_segment: queue.lock().expect("queue").front().map(|s| s.index),
                    total_segments: segs.len(),
                },
            )?;
            let elapsed = started.elapsed().as_secs_f64();
            let fps = (frames_done - done_before) as f64 / elapsed.max(1e-3);
            let remaining = total_frames - frames_done;
            ctx.events.emit(&Event::Progress {
                input: input.to_path_buf(),
                stage: Stage::Video,
                percent: fraction * 100.0,
                frame: frames_done as u64,
                fps,
                speed: fps * tl.frame_duration(),
                eta_seconds: (fps > 0.0).then(|| remaining as f64 / fps),
                bitrate_kbps: 0.0,
                size_bytes: results.values().map(|r| r.bytes).sum(),
                projected_bytes: (fraction > 0.0)
                    .then(|| (results.values().map(|r| r.bytes).sum::<u64>() as f64 / fraction) as u64),
            });
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    outcome?;
    ctx.cancel.check()?;
    if results.len() != segs.len() {
        return Err(Error::Input {
            path: input.to_path_buf(),
            problem: format!("only {} of {} segments were encoded", results.len(), segs.len()),
        });
    }

    // Append the segments with mkvmerge (continuous timestamps, seekable).
    let mut cmd = Command::new(mkvmerge);
    cmd.arg("--quiet").arg("-o").arg(output);
    for (i, r) in results.values().enumerate() {
        if i > 0 {
            cmd.arg("+");
        }
        cmd.arg(&r.path);
    }
    crate::tools::process::run(&mut cmd, "concatenate segments", ctx.cancel, |_| {}).map_err(Error::process(input))?;
    let frames = crate::tools::ffprobe::count_frames(ffprobe, output).unwrap_or(0);
    if frames != total_frames {
        return Err(Error::Input {
            path: input.to_path_buf(),
            problem: format!("assembled video has {frames} frames, the source {total_frames}"),
        });
    }
    Ok(ChunkedReport { segments: results.into_values().collect(), frames: total_frames, params: params.clone() })
}

/// Tells the user about `r` (and the guesses about a probe).
fn report_event(ctx: &Ctx, input: &Path, params: &ChunkedParams, guesses: &Mutex<Guesses>, r: Report) {
    ctx.events.emit(&match r {
        Report::Probe { segment, tier, crf, score } => {
            let mut g = guesses.lock().expect("guesses");
            let space = tier_space(params, &TIERS[tier.clamp(1, TIERS.len()) - 1], g.given_slope(segment));
            g.probe(segment, tier, &space, Point { crf, score });
            Event::SegmentProbe { input: input.to_path_buf(), segment, tier, crf, score }
        }
        Report::Step { segment, step } => Event::SegmentStep { input: input.to_path_buf(), segment, step },
    });
}

/// Whether a segment that failed so is tried once more: every failure but
/// cancellation (the other segments are unaffected either way).
fn retryable(e: &ProcessFailure) -> bool {
    !matches!(e, ProcessFailure::Cancelled(_))
}

/// Says that segment `index` failed with `e` and is tried again.
fn retrying(ctx: &Ctx, input: &Path, index: usize, e: &ProcessFailure) {
    ctx.events.emit(&Event::Warning {
        input: Some(input.to_path_buf()),
        message: format!("segment {} failed ({e}); trying it once more", index + 1),
    });
}

/// Surveys every segment of `todo` for the slope allocation (see
/// [`survey_segment`]), on the file's workers.
fn survey_all(
    ctx: &Ctx,
    input: &Path,
    todo: &[Segment],
    make_job: &(dyn Fn(Segment) -> SegmentJob + Sync),
    tl: &Timeline,
    params: &ChunkedParams,
    guesses: &Mutex<Guesses>,
) -> Result<BTreeMap<usize, Survey>> {
    let queue = Mutex::new(todo.iter().copied().collect::<VecDeque<_>>());
    let out = Mutex::new(BTreeMap::new());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let active = AtomicUsize::new(0);
    let budget = params.threads_per_worker * params.workers as u32;
    std::thread::scope(|scope| {
        for _ in 0..params.workers {
            scope.spawn(|| {
                loop {
                    if failure.lock().expect("failure").is_some() || ctx.cancel.is_cancelled() {
                        break;
                    }
                    let Some(seg) = queue.lock().expect("queue").pop_front() else { break };
                    active.fetch_add(1, Ordering::SeqCst);
                    let job = make_job(seg);
                    let threads = || {
                        let queued = !queue.lock().expect("queue").is_empty();
                        thread_share(budget, params.threads_per_worker, queued, active.load(Ordering::SeqCst), 0)
                    };
                    let report = |r: Report| report_event(ctx, input, params, guesses, r);
                    let mut r = survey_segment(ctx.ffmpeg, &job, tl, ctx.cancel, &threads, &report);
                    if let Err(e) = &r
                        && retryable(e)
                    {
                        retrying(ctx, input, seg.index, e);
                        r = survey_segment(ctx.ffmpeg, &job, tl, ctx.cancel, &threads, &report);
                    }
                    active.fetch_sub(1, Ordering::SeqCst);
                    match r {
                        Ok(s) => {
                            out.lock().expect("surveys").insert(seg.index, s);
                        }
                        Err(ProcessFailure::Cancelled(signal)) => {
                            failure.lock().expect("failure").get_or_insert(Error::Cancelled { signal });
                        }
                        Err(e) => {
                            failure.lock().expect("failure").get_or_insert(Error::process(input)(e));
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    ctx.cancel.check()?;
    Ok(out.into_inner().expect("surveys"))
}

/// The slope allocation of the segments `surveys` surveyed, after what
/// earlier runs settled (`results`).
fn slope_plan(
    params: &ChunkedParams,
    segs: &[Segment],
    surveys: &BTreeMap<usize, Survey>,
    results: &BTreeMap<usize, SegmentResult>,
) -> allocate::Plan {
    use allocate::{Model, Probe};
    let probes = |s: &Survey| -> Vec<Probe> {
        s.probes.iter().map(|p| Probe { crf: p.crf, score: p.score, bytes: p.bytes }).collect()
    };
    let own: Vec<(f64, f64)> = surveys
        .iter()
        .filter(|(_, s)| Model::own_slopes(&probes(s)))
        .filter_map(|(i, s)| Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), (0.0, 0.0)))
        .map(|m| m.slopes())
        .collect();
    let pooled = allocate::pooled_slopes(&own);
    let models = surveys
        .iter()
        .filter_map(|(i, s)| Some((*i, Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), pooled)?)))
        .collect();
    let mut reused = allocate::Settled::default();
    for r in results.values() {
        reused.frames += r.frames;
        reused.score_frames += r.frames as f64 * r.measured_vmaf.unwrap_or(r.predicted_vmaf);
    }
    let goal = allocate::Goal {
        target: params.target,
        floor: params.target - PLAN_FLOOR_MARGIN,
        ceiling: params.target + CEILING_MARGIN,
        min_crf: MIN_CRF,
        max_crf: MAX_CRF,
        step: params.crf_step,
    };
    allocate::Plan::new(goal, models, reused)
}

/// Hash of everything that decides the encoded segments.
fn fingerprint(video: &VideoPlan, params: &ChunkedParams, segs: &[Segment]) -> String {
    // Threads change how fast, not what: a resume with another max_cpu
    // keeps the finished segments (this path sets its own `lp` anyway).
    let video = VideoPlan { threads: 0, ..video.clone() };
    let key = serde_json::json!({
        "video": video,
        "target": params.target,
        "subsample": params.subsample,
        "pool": params.pool,
        "step": params.crf_step,
        "tiers": TIERS,
        "drapto": env!("CARGO_PKG_VERSION"),
        "segments": segs,
    });
    format!("{:016x}", crate::job::fnv1a(key.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spread_and_bounded() {
        let seg = Segment { index: 0, start: 100, end: 475 };
        let r = sample_ranges(&seg, 3, 25);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|r| r.count == 25 && r.start >= 100 && r.start + r.count <= 475));
        assert!(r.windows(2).all(|w| w[0].start + w[0].count <= w[1].start));
        // A segment shorter than the samples is measured whole.
        assert_eq!(
            sample_ranges(&Segment { index: 0, start: 0, end: 40 }, 6, 50),
            vec![FrameRange { start: 0, count: 40 }]
        );
    }

    #[test]
    fn crf_arguments_for_fractional_values() {
        let args: Vec<String> =
            ["-c:v", "libsvtav1", "-crf", "25", "-svtav1-params", "tune=0"].map(String::from).to_vec();
        let out = crf_args(&args, "tune=0", 27.25, 1);
        assert_eq!(out, ["-c:v", "libsvtav1", "-crf", "27", "-svtav1-params", "tune=0:lp=1:crf=27.25"]);
        let out = crf_args(&args, "tune=0", 30.0, 2);
        assert_eq!(out[3], "30");
        assert_eq!(out[5], "tune=0:lp=2");
    }

    #[test]
    fn idle_and_finishing_workers_lend_their_threads() {
        // Segments still queued: each worker keeps its own share.
        assert_eq!(thread_share(4, 2, true, 2, 1), 2);
        // Nothing queued: the running segments split the budget...
        assert_eq!(thread_share(4, 2, false, 2, 0), 2);
        assert_eq!(thread_share(4, 2, false, 1, 0), 4);
        // ...and one that is only measuring leaves its share to the others.
        assert_eq!(thread_share(4, 2, false, 2, 1), 4);
        assert_eq!(thread_share(6, 2, false, 3, 1), 3);
        assert_eq!(thread_share(2, 1, false, 1, 5), 2);
        assert_eq!(thread_share(1, 1, false, 3, 0), 1);
    }

    #[test]
    fn workers_respect_memory() {
        assert_eq!(default_workers(3840, 2160, 1 << 30), 1);
        assert!(default_workers(1280, 720, 64 << 30) >= 1);
    }
}
