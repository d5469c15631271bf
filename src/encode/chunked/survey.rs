//! The slope allocation's survey: every segment still to encode is probed
//! on samples of it, on the file's workers, before any is encoded; the
//! plan is then made from the surveys ([`super::allocate::plan_from_surveys`]).

use super::dispatch::{Load, Queue, Slot, once_more, run_local};
use super::jobs::Jobs;
use super::layout::{Layout, Segment};
use super::resume::ResumeState;
use super::segment_job::{Survey, survey_segment};
use super::updates;
use crate::encode::Ctx;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
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
