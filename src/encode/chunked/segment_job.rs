//! One segment's work: probes on samples, the CRF search (or the CRF the
//! slope allocation chose), the encode of the whole segment and its
//! measurement, the further search of a segment measured below its floor.
//! A unit that runs the same on this machine and on a remote worker
//! ([`SegmentJob`] in, [`SegmentResult`] out).

use super::layout::{self, FrameRange, Segment, Timeline};
use super::search::{self, Next, Point, SearchSpace};
use super::vmaf::{self, VmafSpec};
use super::{
    ChunkedParams, FLOOR_MARGIN, Fixed, MAX_CRF, MAX_PROBES, MAX_REFINES, MIN_CRF, RAW_SAMPLES_MAX, Report, SegmentJob,
    TIERS, TOLERANCE, Tier,
};
use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::events::{PredictionSource, SegmentStep};
use crate::plan::EncoderSettings;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
        layout::open_frames(args, self.path, self.tl, self.range, self.filters, self.cycle)
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
            layout::frames_output(&mut a, frames.range.count);
            a.arg("-vf").arg(chain);
        }
    }
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1"]);
    // Samples cut from the source (raw frames) carry no Dolby Vision RPUs,
    // and libsvtav1 refuses frames without one when asked to carry them; a
    // probe measures rate and quality, which the RPUs do not change.
    if job.encoder.dolby_vision && frames.path != job.source.as_path() {
        a.extend(EncoderSettings { dolby_vision: false, ..job.encoder.clone() }.args(crf, threads));
    } else {
        a.extend(job.encoder.args(crf, threads));
    }
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

/// Scores `distorted` against `reference`, every `subsample`th frame but
/// the frames numbered in `left_out`, pooled as the job's `vmaf.pool` says
/// (see [`vmaf::pooled`]).
#[allow(clippy::too_many_arguments)]
fn score(
    ffmpeg: &Path,
    job: &SegmentJob,
    distorted: &Path,
    reference: vmaf::Reference,
    subsample: u32,
    left_out: &[u64],
    threads: u32,
    cancel: &Cancel,
) -> std::result::Result<f64, ProcessFailure> {
    let spec = VmafSpec { threads, ..job.vmaf.clone() };
    let a = vmaf::vmaf_args(distorted, reference, &spec, subsample);
    let mut csv = Vec::new();
    crate::tools::process::run_lines(&mut a.command(ffmpeg), "vmaf", cancel, |line| {
        if let crate::tools::process::Line::Out(l) = line {
            csv.push(l.to_string());
        }
    })?;
    let frames = vmaf::leaving_out(vmaf::frame_scores(&csv), left_out, subsample);
    vmaf::pooled(&frames, &spec.pool).ok_or_else(|| {
        ProcessFailure::Failed(crate::error::ProcessError {
            step: "vmaf".into(),
            program: "ffmpeg".into(),
            status: crate::error::Exit::Problem("libvmaf wrote no frame scores".into()),
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
    let d = layout::output_frame_duration(tl, job.decimation_cycle);
    Ok(Timeline { pts: (0..n).map(|i| i as f64 * d).collect(), bytes: vec![], keyframes: vec![] })
}

/// The search of one tier; `slope` is what other segments of the file
/// measured, if any.
pub(crate) fn tier_space(params: &ChunkedParams, tier: &Tier, slope: Option<f64>) -> SearchSpace {
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
    let score = score(ffmpeg, job, &path, reference, subsample, &[], (steps.threads)(), steps.cancel).ok();
    if let Some(r) = &refs {
        let _ = std::fs::remove_file(r);
    }
    wholes.push(Whole { crf, path, score });
    Ok(wholes.len() - 1)
}

/// The samples a tier's probes encode: a cut file, or `None` when the
/// samples cover the segment (probes encode the segment itself).
type Samples = Option<Cut>;

/// A file of samples cut from the segment, back to back.
struct Cut {
    path: PathBuf,
    /// Its timeline (frame `i` at `i` frame durations).
    tl: Timeline,
    /// The frames that follow a cut: the first of each sample. The encoder
    /// codes such a frame almost as a keyframe, far better than the same
    /// picture inside the film (+5.2 VMAF on average, on real 1080p footage
    /// at preset 10, where the other frames of 8-frame samples were +0.15),
    /// so a probe's score leaves them out.
    starts: Vec<u64>,
}

/// The samples of tier `tier_index` of `job`'s segment, cut now.
fn tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let tier = TIERS[tier_index];
    let fps = 1.0 / layout::output_frame_duration(tl, job.decimation_cycle);
    let ranges = sample_ranges(&job.segment, tier.samples, (tier.sample_seconds * fps).round() as usize);
    cut_tier_samples(ffmpeg, job, tl, tier_index, &ranges, steps)
}

/// The sample `ranges` of the segment, cut as samples of tier `tier_index`.
fn cut_tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    ranges: &[FrameRange],
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let seg = job.segment;
    let frames = ranges.iter().map(|r| r.count).sum();
    if ranges.len() == 1 && ranges[0] == seg.range() {
        return Ok((None, frames));
    }
    let path = job.scratch.join(format!("samples-{}-tier{}", seg.index, tier_index + 1));
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Sampling { tier: tier_index + 1 } });
    let stl = cut_samples(ffmpeg, job, tl, ranges, (steps.threads)(), &path, steps.cancel)?;
    let starts = piece_starts(ranges);
    Ok((Some(Cut { path, tl: stl, starts }), frames))
}

/// Where each of `ranges` starts once they are cut back to back.
fn piece_starts(ranges: &[FrameRange]) -> Vec<u64> {
    ranges.iter().scan(0u64, |at, r| Some(std::mem::replace(at, *at + r.count as u64))).collect()
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
    let (frames, out, starts) = match samples {
        Some(Cut { path, tl: stl, starts }) => (
            Frames { path, tl: stl, range: FrameRange { start: 0, count: stl.frames() }, filters: None, cycle: None },
            job.scratch.join(format!("probe-{}-crf{crf:.2}.mkv", seg.index)),
            starts.as_slice(),
        ),
        None => (
            Frames::source(job, tl, seg.range()),
            job.output.with_extension(format!("crf{crf:.2}.partial.mkv")),
            &[][..],
        ),
    };
    encode_range(ffmpeg, job, frames, crf, (steps.threads)(), &out, None, steps.cancel)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    // Harmonic pooling over all the samples' frames but those after a cut,
    // every `probe_subsample`th scored (odd: every mini-GOP layer is
    // represented).
    let subsample = job.params.probe_subsample.max(1);
    let s = score(ffmpeg, job, &out, frames.reference(), subsample, starts, (steps.threads)(), steps.cancel)?;
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
pub const SURVEY_NEAR: f64 = 2.5;
/// Segment seconds per survey sample (of the first tier's length; at most
/// the first tier's count).
pub const SURVEY_SECONDS_PER_SAMPLE: f64 = 5.0;
/// A first probe this close to the target is the survey's only one once a
/// neighbour has measured the curve's slope (the model then reaches the band's
/// edges from it with that slope). At 3 points, on real 1080p footage at
/// preset 10, four of five segments surveyed by one probe 2.4–2.6 over the
/// target were planned too high on the borrowed slope and measured under
/// the floor: each cost two whole encodes, where a second probe costs a
/// fifth of one.
pub const SURVEY_ONE_PROBE: f64 = 1.5;

/// Frames per piece of a survey sample (see [`survey_ranges`]). Where the
/// samples lie decides what they say: on real 1080p footage one piece of
/// 24 frames per 5 s of segment scored 0.7–0.95 VMAF away from the whole
/// segment on average (worst 3.3) from its place alone, three pieces of 8
/// over the segment 0.36–0.46 (`scripts/bench.sh sampling`); a segment
/// planned from the single piece measured up to 2.4 over its plan, which
/// cost the most where bytes are dearest. Shorter pieces place better still
/// but encode less like the film (each starts on a cut): pieces of 4 came
/// out the same as 8 on the chunked runs (0.84× against 0.87× the
/// single-CRF curve, one run each).
pub const SURVEY_PIECE_FRAMES: usize = 8;

/// How far the survey's second probe is from its first at least (CRF): where
/// the search would go next when that is farther, else this far towards the
/// target. The two probes give the segment's model its slopes, and over one
/// CRF the sample's bytes step unevenly: on a real SD camera segment at
/// preset 6 they fell by 3.8% from CRF 32.75 to 33.75 and by 5.7% a CRF on
/// average from 30.75 to 36.75, so the segment looked a fifth cheaper to
/// improve than its neighbours, was planned at CRF 30 for 94.2 where one
/// CRF of about 33.5 suited every segment, and cost 30% more bytes than
/// each of them.
pub const SURVEY_SPREAD: f64 = 3.0;

/// The survey's samples of `seg` (at `fps` output frames a second): one
/// second of frames per [`SURVEY_SECONDS_PER_SAMPLE`] of segment (at most
/// the first tier's), cut in pieces of [`SURVEY_PIECE_FRAMES`] spread evenly
/// over the segment.
pub fn survey_ranges(seg: &Segment, fps: f64) -> Vec<FrameRange> {
    let seconds = seg.frames() as f64 / fps;
    let count = ((seconds / SURVEY_SECONDS_PER_SAMPLE).round() as usize).clamp(1, TIERS[0].samples);
    let frames = (count as f64 * TIERS[0].sample_seconds * fps).round() as usize;
    let pieces = (frames / SURVEY_PIECE_FRAMES).max(1);
    sample_ranges(seg, pieces, frames / pieces)
}

/// What the slope allocation's survey learned of one segment: what the
/// state records of it (probes and the frames they encoded).
/// A segment's survey: its probes and the frames they encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    pub sample_frames: usize,
    pub probes: Vec<ProbeRecord>,
}

/// One probe of the CRF search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub tier: usize,
    pub crf: f64,
    pub score: f64,
    pub bytes: u64,
    pub seconds: f64,
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
    /// Kept below its floor (the target − [`FLOOR_MARGIN`], or the last
    /// tier's): nothing tried reached it. Reported as a warning.
    #[serde(default)]
    pub below_target: bool,
    /// Predictions the segment's measured VMAF did not bear out (each cost
    /// an encode; see [`run_segment`]).
    #[serde(default)]
    pub mispredictions: u32,
    /// The host that encoded it, on distributed runs (GNU Parallel sshlogin).
    #[serde(default)]
    pub host: Option<String>,
}

/// The slope allocation's survey of one segment: [`SURVEY_PROBES`] probes
/// on the first tier's samples, at the first guess and where the search
/// would go next (at least [`SURVEY_SPREAD`] away),
/// for the segment's own rate–quality model (see [`super::allocate::Model::fit`]);
/// one when a neighbour measured the slope and the first probe is within
/// [`SURVEY_ONE_PROBE`] of the target. Probes encode at the params'
/// `survey_preset` when one is set (see [`crate::plan::survey_preset`]).
pub fn survey_segment(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    cancel: &Cancel,
    threads: &dyn Fn() -> u32,
    report: &dyn Fn(Report),
) -> std::result::Result<Survey, ProcessFailure> {
    let steps = Steps { cancel, threads, report };
    let at_survey_preset;
    let job = match job.params.survey_preset {
        Some(preset) => {
            let encoder = EncoderSettings { preset, ..job.encoder.clone() };
            at_survey_preset = SegmentJob { encoder, ..job.clone() };
            &at_survey_preset
        }
        None => job,
    };
    let space = tier_space(&job.params, &TIERS[0], job.slope);
    // A second of samples per SURVEY_SECONDS_PER_SAMPLE of segment (short
    // segments are surveyed on a fifth of their frames, not most), in pieces.
    let fps = 1.0 / layout::output_frame_duration(tl, job.decimation_cycle);
    let ranges = survey_ranges(&job.segment, fps);
    let (samples, sample_frames) = cut_tier_samples(ffmpeg, job, tl, 0, &ranges, &steps)?;
    let mut wholes = Vec::new();
    let mut probes: Vec<ProbeRecord> = Vec::new();
    let mut crf = space.next(&[], job.first_guess);
    while let Next::Probe(c) = crf {
        probes.push(probe(ffmpeg, job, tl, &samples, 0, c, &mut wholes, &steps)?);
        let points: Vec<Point> = probes.iter().map(|p| Point { crf: p.crf, score: p.score }).collect();
        crf = next_survey_probe(&space, &points, job.first_guess, job.slope.is_some());
    }
    if let Some(cut) = &samples {
        let _ = std::fs::remove_file(&cut.path);
    }
    for w in wholes {
        let _ = std::fs::remove_file(&w.path);
    }
    Ok(Survey { probes, sample_frames })
}

/// Where a survey probes next after `points` (its probes so far, the last
/// one last), or `Done` (see [`survey_segment`]). `slope_known`: a
/// neighbour has measured the curve's slope.
fn next_survey_probe(space: &SearchSpace, points: &[Point], first_guess: f64, slope_known: bool) -> Next {
    let (first, c) = (points[0], points[points.len() - 1].crf);
    let near = |limit: f64| points.iter().any(|p| (p.score - space.target).abs() <= limit);
    let done = points.len() >= SURVEY_PROBES
        || (slope_known && points.len() == 1 && near(SURVEY_ONE_PROBE))
        || (points.len() == 2 && near(SURVEY_NEAR));
    if done {
        return Next::Done(first);
    }
    let next = match space.next(points, first_guess) {
        Next::Probe(n) if points.len() == 1 => Next::Probe(space.straight_cap(first, n)),
        other => other,
    };
    // The second probe SURVEY_SPREAD from the first at least; a third
    // wherever the search goes (a CRF from the last).
    let least = if points.len() == 1 { SURVEY_SPREAD } else { 1.0 };
    let probed = |n: f64| points.iter().any(|p| (p.crf - n).abs() < 1e-9);
    match next {
        Next::Probe(n) if (n - c).abs() >= least && !probed(n) => Next::Probe(n),
        _ => {
            let up = if first.score >= space.target { SURVEY_SPREAD } else { -SURVEY_SPREAD };
            let n = (c + up).clamp(MIN_CRF, MAX_CRF);
            if probed(n) { Next::Done(first) } else { Next::Probe(n) }
        }
    }
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
/// (`refine_below_floor`). When no CRF reaches even the last tier's
/// target, the highest CRF (fewest bytes) whose score is within half a point
/// of the best probed is taken (not the CRF floor: below it, bytes buy
/// nothing), and reported.
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
    // (predicted score, tier, how the score is known, encode)
    let mut chosen: Option<(f64, usize, PredictionSource, usize)> = None;
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
            chosen = Some((point.score, tier_index + 1, source, w));
            break;
        }
        if let Some(cut) = &samples {
            let _ = std::fs::remove_file(&cut.path);
        }
        if chosen.is_some() {
            break;
        }
    }
    let target = job.params.target;
    let (predicted, tier, prediction, w, below_target) = match chosen {
        Some((predicted, tier, prediction, w)) => {
            let floor = target - TIERS[tier - 1].target_reduction - FLOOR_MARGIN;
            let aim = target - TIERS[tier - 1].target_reduction;
            let (w, added) = refine_below_floor(ffmpeg, job, tl, &mut wholes, w, floor, aim, &steps)?;
            mispredictions += added as u32;
            (predicted, tier, prediction, w, wholes[w].score.is_some_and(|s| s < floor))
        }
        None => {
            // Bounded: the highest CRF probed at the last tier whose score
            // is within half a point of the best (lower CRFs buy nothing).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn survey_space() -> SearchSpace {
        SearchSpace {
            min_crf: MIN_CRF,
            max_crf: MAX_CRF,
            step: 0.25,
            target: 93.0,
            tolerance: 1.0,
            max_probes: 6,
            prior_slope: search::DEFAULT_SLOPE,
        }
    }

    fn pt(crf: f64, score: f64) -> Point {
        Point { crf, score }
    }

    #[test]
    fn the_surveys_second_probe_is_a_spread_away_from_the_first() {
        let space = survey_space();
        // Just under the target: the search would step a CRF down; the
        // survey goes SURVEY_SPREAD down, past the target.
        let Next::Probe(n) = next_survey_probe(&space, &[pt(33.75, 92.92)], 33.75, false) else { panic!() };
        assert_eq!(n, 33.75 - SURVEY_SPREAD);
        let Next::Probe(n) = next_survey_probe(&space, &[pt(33.75, 93.4)], 33.75, false) else { panic!() };
        assert_eq!(n, 33.75 + SURVEY_SPREAD);
        // Far over the target: where the search goes, farther than that.
        let Next::Probe(n) = next_survey_probe(&space, &[pt(31.25, 98.56)], 31.25, false) else { panic!() };
        assert!(n >= 31.25 + SURVEY_SPREAD, "{n}");
        // Near the target with a neighbour's slope: one probe.
        assert!(matches!(next_survey_probe(&space, &[pt(33.75, 92.92)], 33.75, true), Next::Done(_)));
    }

    #[test]
    fn the_survey_stops_at_two_near_probes_or_three() {
        let space = survey_space();
        let two = [pt(30.0, 97.0), pt(36.0, 92.0)];
        assert!(matches!(next_survey_probe(&space, &two, 30.0, false), Next::Done(_)));
        // Neither of two within SURVEY_NEAR: a third, wherever the search
        // goes, even a CRF from the last.
        let far = [pt(20.0, 99.0), pt(45.0, 85.0)];
        let Next::Probe(n) = next_survey_probe(&space, &far, 20.0, false) else { panic!() };
        assert!(n > 20.0 && n < 45.0, "{n}");
        let three = [pt(20.0, 99.0), pt(45.0, 85.0), pt(35.0, 94.0)];
        assert!(matches!(next_survey_probe(&space, &three, 20.0, false), Next::Done(_)));
    }

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
    fn survey_samples_are_short_pieces_over_the_whole_segment() {
        let pieces = |start, end| survey_ranges(&Segment { index: 0, start, end }, 24.0);
        // 5 s: one second of frames, in three pieces of 8 from start to end.
        let r = pieces(1000, 1120);
        assert_eq!(r.iter().map(|r| r.count).collect::<Vec<_>>(), vec![8, 8, 8]);
        assert!(r[0].start < 1000 + 40 && r[2].start + 8 > 1120 - 40, "{r:?}");
        assert!(r.windows(2).all(|w| w[0].start + w[0].count <= w[1].start));
        // 20 s: at most the first tier's three seconds.
        let r = pieces(0, 480);
        assert_eq!((r.len(), r.iter().map(|r| r.count).sum::<usize>()), (9, 72));
        // 2 s: still one second; a segment shorter than that is measured whole.
        assert_eq!(pieces(0, 48).iter().map(|r| r.count).sum::<usize>(), 24);
        assert_eq!(pieces(0, 20), vec![FrameRange { start: 0, count: 20 }]);
        assert_eq!(piece_starts(&pieces(1000, 1120)), vec![0, 8, 16]);
    }
}
