//! One segment's search and encode: the CRF search on the tiers' samples
//! (or the CRF the slope allocation chose), the encode of the whole segment
//! and its measurement, the further search of a segment measured below its
//! floor. A unit that runs the same on this machine and on a remote worker
//! ([`SegmentJob`] in, [`SegmentResult`] out).

use super::probe::{Steps, Whole, encode_whole, probe, tier_samples};
use super::records::{ProbeRecord, SegmentResult};
use super::search::{self, Next, Point, SearchSpace};
use super::timeline::Timeline;
use super::{
    ChunkedParams, FLOOR_MARGIN, Fixed, MAX_CRF, MAX_PROBES, MAX_REFINES, MIN_CRF, Report, SegmentJob, TIERS,
    TOLERANCE, Tier,
};
use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::events::PredictionSource;
use std::path::Path;
use std::time::Instant;

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
        if wholes[current].score >= floor {
            break;
        }
        let points: Vec<Point> = wholes.iter().map(|x| Point { crf: x.crf, score: x.score }).collect();
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
    let passing =
        wholes.iter().enumerate().filter(|(_, x)| x.score >= floor).max_by(|a, b| a.1.crf.total_cmp(&b.1.crf));
    let best = wholes.iter().enumerate().max_by(|a, b| a.1.score.total_cmp(&b.1.score));
    Ok((passing.or(best).map_or(w, |(i, _)| i), added))
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
    let below = wholes[w].score < fixed.floor;
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
        measured_vmaf: Some(wholes[w].score),
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
    let mut search = TierSearch {
        ffmpeg,
        job,
        tl,
        steps: &steps,
        wholes: Vec::new(),
        probes: Vec::new(),
        guess: job.first_guess,
        may_predict: job.params.predict,
        mispredictions: 0,
    };
    let mut chosen = None;
    for tier_index in 0..TIERS.len() {
        chosen = search.tier(tier_index)?;
        if chosen.is_some() {
            break;
        }
    }
    let Settled { chosen: c, below_target } = match chosen {
        Some(c) => search.hold_to_floor(c)?,
        None => search.best_bounded()?,
    };
    let TierSearch { wholes, probes, mispredictions, .. } = search;
    let (predicted, tier, prediction) = (c.predicted, c.tier, c.source);
    keep(job, wholes, c.whole, started, Kept { predicted, tier, prediction, probes, below_target, mispredictions })
}

/// The encode a tier's search settled on: its predicted score, its tier
/// (from 1), how the score is known, and where it is in the wholes.
#[derive(Clone, Copy)]
struct Chosen {
    predicted: f64,
    tier: usize,
    source: PredictionSource,
    whole: usize,
}

/// The encode kept: a [`Chosen`] held to its floor, and whether it stayed
/// below it.
struct Settled {
    chosen: Chosen,
    below_target: bool,
}

/// [`run_segment`]'s search through the tiers: what it has made and
/// learned so far.
struct TierSearch<'a> {
    ffmpeg: &'a Path,
    job: &'a SegmentJob,
    tl: &'a Timeline,
    steps: &'a Steps<'a>,
    wholes: Vec<Whole>,
    probes: Vec<ProbeRecord>,
    /// Where the next tier's search starts.
    guess: f64,
    /// Whether a probe the model's prediction makes needless may be skipped.
    may_predict: bool,
    mispredictions: u32,
}

impl TierSearch<'_> {
    /// Searches tier `tier_index` on its samples: the encode it settles
    /// on, or `None` when no CRF reaches the tier's target.
    fn tier(&mut self, tier_index: usize) -> std::result::Result<Option<Chosen>, ProcessFailure> {
        let (ffmpeg, job, tl, steps) = (self.ffmpeg, self.job, self.tl, self.steps);
        let space = tier_space(&job.params, &TIERS[tier_index], job.slope);
        let (samples, _) = tier_samples(ffmpeg, job, tl, tier_index, steps)?;
        let mut points: Vec<Point> = Vec::new();
        let chosen = loop {
            let (point, source) = match space.next(&points, self.guess) {
                Next::Probe(crf) => {
                    match space.prediction(&points, crf).filter(|_| self.may_predict && samples.is_some()) {
                        Some(p) => (p, PredictionSource::Model),
                        None => {
                            let p = probe(ffmpeg, job, tl, &samples, tier_index, crf, &mut self.wholes, steps)?;
                            points.push(Point { crf, score: p.score });
                            self.probes.push(p);
                            continue;
                        }
                    }
                }
                Next::Done(p) => (p, PredictionSource::Probe),
                Next::Unreachable(best) => {
                    if let Some(b) = best {
                        self.guess = b.crf;
                    }
                    break None;
                }
            };
            let w = encode_whole(ffmpeg, job, tl, &mut self.wholes, point.crf, steps)?;
            if source == PredictionSource::Model && !space.verified(self.wholes[w].score) {
                // Not borne out: probe that CRF after all and search on.
                self.may_predict = false;
                self.mispredictions += 1;
                continue;
            }
            break Some(Chosen { predicted: point.score, tier: tier_index + 1, source, whole: w });
        };
        if let Some(cut) = &samples {
            let _ = std::fs::remove_file(&cut.path);
        }
        Ok(chosen)
    }

    /// The chosen encode, searched further on wholes when it measured
    /// below its tier's floor ([`refine_below_floor`]).
    fn hold_to_floor(&mut self, c: Chosen) -> std::result::Result<Settled, ProcessFailure> {
        let aim = self.job.params.target - TIERS[c.tier - 1].target_reduction;
        let floor = aim - FLOOR_MARGIN;
        let (job, tl) = (self.job, self.tl);
        let (w, added) = refine_below_floor(self.ffmpeg, job, tl, &mut self.wholes, c.whole, floor, aim, self.steps)?;
        self.mispredictions += added as u32;
        let below = self.wholes[w].score < floor;
        Ok(Settled { chosen: Chosen { whole: w, ..c }, below_target: below })
    }

    /// No CRF reached even the last tier's target: the highest CRF probed
    /// at the last tier whose score is within half a point of the best
    /// (lower CRFs buy nothing), encoded whole.
    fn best_bounded(&mut self) -> std::result::Result<Settled, ProcessFailure> {
        let last: Vec<&ProbeRecord> = self.probes.iter().filter(|p| p.tier == TIERS.len()).collect();
        let best = last.iter().map(|p| p.score).fold(f64::MIN, f64::max);
        let crf = last.iter().filter(|p| p.score >= best - 0.5).map(|p| p.crf).fold(f64::MIN, f64::max);
        let (crf, best) = if crf > f64::MIN { (crf, best) } else { (MIN_CRF, 0.0) };
        let w = encode_whole(self.ffmpeg, self.job, self.tl, &mut self.wholes, crf, self.steps)?;
        let chosen = Chosen { predicted: best, tier: TIERS.len(), source: PredictionSource::Probe, whole: w };
        Ok(Settled { chosen, below_target: true })
    }
}
