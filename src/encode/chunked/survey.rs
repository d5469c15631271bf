//! The slope allocation's survey: every segment still to encode is probed
//! on samples of it, on the file's workers, before any is encoded; the
//! plan is then made from the surveys ([`super::allocate::plan_from_surveys`]).
//! One segment's survey ([`survey_segment`]) is a unit like a segment job:
//! it runs the same on this machine and on a remote worker.

use super::dispatch::{Load, Queue, Slot, once_more, run_local};
use super::jobs::Jobs;
use super::layout::{self, FrameRange, Layout, Segment, Timeline};
use super::probe::{Steps, cut_tier_samples, probe, sample_ranges};
use super::records::{ProbeRecord, Survey};
use super::resume::ResumeState;
use super::search::{Next, Point, SearchSpace};
use super::segment_job::tier_space;
use super::{MAX_CRF, MIN_CRF, Report, SegmentJob, TIERS, updates};
use crate::cancel::Cancel;
use crate::error::{Error, ProcessFailure, Result};
use crate::plan::EncoderSettings;
use crate::step::Ctx;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// The share of the video stage the progress gives the survey (it took a
/// third of the stage on real 1080p footage at presets 6 and 10).
pub const SURVEY_SHARE: f64 = 0.33;

/// Surveys every segment of `todo` (see [`survey_segment`]) but those an
/// earlier run surveyed; each survey is written to the `state` as it
/// finishes.
pub fn survey_all(
    ctx: &Ctx,
    jobs: &Jobs,
    layout: &Layout,
    todo: &[Segment],
    state: &mut ResumeState,
) -> Result<BTreeMap<usize, Survey>> {
    let input = jobs.input();
    let params = jobs.params;
    let mut earlier = state.surveyed();
    earlier.retain(|i, _| todo.iter().any(|s| s.index == *i));
    let queue = Queue::new(todo.iter().filter(|s| !earlier.contains_key(&s.index)).copied());
    let load = Load::new(params.workers, params.threads_per_worker);
    let before: usize = todo.iter().filter(|s| earlier.contains_key(&s.index)).map(|s| s.frames()).sum();
    let total: usize = todo.iter().map(|s| s.frames()).sum::<usize>().max(1);
    let pace = Pace { started: std::time::Instant::now(), before: before as f64 / total as f64 };
    // (A resumed survey shows its share done at once, not 0% until a survey
    // of this run is done.)
    if before > 0 && !queue.is_empty() {
        ctx.events.emit(&updates::survey_progress(input, 100.0 * SURVEY_SHARE * pace.before, None));
    }
    let surveys = Mutex::new((earlier, before));
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let state = Mutex::new(state);
    let work = |seg: Segment, slot: &Slot| {
        let job = jobs.job(seg);
        let report = |r| {
            slot.saw(&r);
            ctx.events.emit(&jobs.report(r));
        };
        let threads = || slot.threads();
        once_more(ctx, input, seg.index, || {
            survey_segment(&ctx.tools.ffmpeg, &job, &layout.source, ctx.cancel, &threads, &report)
        })
    };
    let done = |seg: Segment, r: std::result::Result<Survey, crate::error::ProcessFailure>| {
        let recorded = r
            .map_err(Error::process(input))
            .and_then(|s: Survey| state.lock().expect("state").record_survey(seg.index, &s).map(|()| s));
        match recorded {
            Ok(s) => {
                let mut g = surveys.lock().expect("surveys");
                g.0.insert(seg.index, s);
                g.1 += seg.frames();
                let share = g.1 as f64 / total as f64;
                ctx.events.emit(&updates::survey_progress(input, 100.0 * SURVEY_SHARE * share, pace.eta(share)));
            }
            // (Error::process makes a cancellation Error::Cancelled.)
            Err(e) => {
                failure.lock().expect("failure").get_or_insert(e);
                queue.stop();
            }
        }
        true
    };
    run_local(params.workers, &queue, &load, None, ctx.cancel, &work, &done);
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    ctx.cancel.check()?;
    Ok(surveys.into_inner().expect("surveys").0)
}

/// The survey's pace this run (a resume's earlier surveys took none of its
/// time).
struct Pace {
    started: std::time::Instant,
    /// The share of the frames surveyed before this run.
    before: f64,
}

impl Pace {
    /// Seconds left to the end of the stage, when `share` of the survey is done.
    fn eta(&self, share: f64) -> Option<f64> {
        let percent = 100.0 * SURVEY_SHARE * share;
        let this_run = 100.0 * SURVEY_SHARE * (share - self.before);
        (this_run > 0.0).then(|| self.started.elapsed().as_secs_f64() / this_run * (100.0 - percent))
    }
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

#[cfg(test)]
mod tests {
    use super::super::probe::piece_starts;
    use super::super::search;
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
