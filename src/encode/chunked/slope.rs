//! The slope allocation's two steps over a file: the survey of every
//! segment (on the file's workers) and the plan built from it (see
//! [`allocate::Plan`]).

use super::allocate::{self, Model, Probe};
use super::guess::Guesses;
use super::segment::{Survey, survey_segment};
use super::segments::{Segment, Timeline};
use super::{
    CEILING_MARGIN, ChunkedParams, MAX_CRF, MIN_CRF, PLAN_FLOOR_MARGIN, Report, SegmentJob, SegmentResult, once_more,
    report_event, thread_share,
};
use crate::encode::Ctx;
use crate::error::{Error, Result};
use crate::events::{Event, Stage};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The share of the video stage the progress gives the survey (it took a
/// third of the stage on real 1080p footage at presets 6 and 10).
pub const SURVEY_SHARE: f64 = 0.33;

/// Surveys every segment of `todo` for the slope allocation (see
/// [`survey_segment`]), on the file's workers, but those `done` already (a
/// resumed job's); `record` keeps each survey as it finishes.
#[allow(clippy::too_many_arguments)]
pub fn survey_all(
    ctx: &Ctx,
    input: &Path,
    todo: &[Segment],
    make_job: &(dyn Fn(Segment) -> SegmentJob + Sync),
    tl: &Timeline,
    params: &ChunkedParams,
    guesses: &Mutex<Guesses>,
    done: BTreeMap<usize, Survey>,
    record: &(dyn Fn(usize, &Survey) -> Result<()> + Sync),
) -> Result<BTreeMap<usize, Survey>> {
    let queue = Mutex::new(todo.iter().filter(|s| !done.contains_key(&s.index)).copied().collect::<VecDeque<_>>());
    let before: usize = todo.iter().filter(|s| done.contains_key(&s.index)).map(|s| s.frames()).sum();
    let surveyed = AtomicUsize::new(before);
    let out = Mutex::new(done);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let active = AtomicUsize::new(0);
    let budget = params.threads_per_worker * params.workers as u32;
    let started = std::time::Instant::now();
    let total: usize = todo.iter().map(|s| s.frames()).sum();
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
                    let r = once_more(ctx, input, seg.index, || {
                        survey_segment(ctx.ffmpeg, &job, tl, ctx.cancel, &threads, &report)
                    });
                    active.fetch_sub(1, Ordering::SeqCst);
                    match r {
                        Ok(s) => {
                            if let Err(e) = record(seg.index, &s) {
                                failure.lock().expect("failure").get_or_insert(e);
                            }
                            out.lock().expect("surveys").insert(seg.index, s);
                            let done = surveyed.fetch_add(seg.frames(), Ordering::SeqCst) + seg.frames();
                            let percent = 100.0 * SURVEY_SHARE * done as f64 / total.max(1) as f64;
                            // The ETA from this run's pace (a resume's earlier
                            // surveys took none of its time).
                            let elapsed = started.elapsed().as_secs_f64();
                            let this_run = percent - 100.0 * SURVEY_SHARE * before as f64 / total.max(1) as f64;
                            ctx.events.emit(&Event::Progress {
                                input: input.to_path_buf(),
                                stage: Stage::Video,
                                percent,
                                frame: 0,
                                fps: 0.0,
                                speed: 0.0,
                                eta_seconds: (this_run > 0.0).then(|| elapsed / this_run * (100.0 - percent)),
                                bitrate_kbps: 0.0,
                                size_bytes: 0,
                                projected_bytes: None,
                            });
                        }
                        // (Error::process makes a cancellation Error::Cancelled.)
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
pub fn slope_plan(
    params: &ChunkedParams,
    segs: &[Segment],
    surveys: &BTreeMap<usize, Survey>,
    results: &BTreeMap<usize, SegmentResult>,
) -> allocate::Plan {
    let probes = |s: &Survey| -> Vec<Probe> {
        s.probes.iter().map(|p| Probe { crf: p.crf, score: p.score, bytes: p.bytes }).collect()
    };
    let own: Vec<(f64, f64)> = surveys
        .iter()
        .filter(|(_, s)| Model::own_slopes(&probes(s)))
        .filter_map(|(i, s)| Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), (0.0, 0.0), params.target))
        .map(|m| m.slopes())
        .collect();
    let pooled = allocate::pooled_slopes(&own);
    let models = surveys
        .iter()
        .filter_map(|(i, s)| {
            Some((*i, Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), pooled, params.target)?))
        })
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
