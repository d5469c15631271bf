//! The chunked path: the video is cut into frame-exact segments, each
//! segment's CRF is searched so that it just reaches the VMAF target (three
//! tiers: 3 samples of 1 s; 6 of 2 s; 6 of 2 s at target − 2), segments are
//! encoded in parallel, measured, and appended with mkvmerge.
//!
//! Every segment encode is a self-contained unit ([`SegmentJob`]): source,
//! frame range, filters, encoder settings and search settings in; encoded
//! file and its record out. State is written after each segment, and a rerun
//! reuses every finished segment that still verifies.
//!
//! The stages, in order, each a file:
//! - [`layout`]: the film's frames, scene cuts ([`scenes`]) and segments;
//! - [`resume`]: the state files, and what an earlier run finished;
//! - `jobs`: each segment's job, with its first guess ([`guess`]);
//! - [`survey`]: the slope allocation's probes of every segment, then
//!   [`allocate`]: the CRFs chosen together;
//! - [`segment_job`]: one segment's search ([`search`]), encode and
//!   measurement, made of [`probe`]'s steps (samples, probes, whole encodes
//!   scored by [`vmaf`]);
//! - [`dispatch`]: the queue and the local workers; [`remote`]: other
//!   hosts through GNU Parallel;
//! - `assemble`: the segments appended into one video;
//! - `updates`: what the user is told.

pub mod allocate;
pub mod assemble;
pub mod dispatch;
pub mod guess;
pub mod hosts;
mod jobs;
pub mod layout;
pub mod probe;
pub mod records;
pub mod remote;
pub mod resume;
pub mod scenes;
pub mod search;
pub mod segment_job;
pub mod survey;
pub mod timeline;
mod updates;
pub mod vmaf;

pub use probe::sample_ranges;
pub use records::{ProbeRecord, SegmentResult, Survey};
pub use segment_job::run_segment;
pub use survey::survey_segment;

use crate::analysis::Analysis;
use crate::error::{Error, ProcessFailure, Result};
use crate::events::SegmentStep;
use crate::job::WorkDir;
pub use crate::plan::{Allocation, ChunkedParams};
use crate::plan::{EncoderSettings, VideoPlan, encoder_memory};
use crate::step::Ctx;
use crate::step::size_guard::SizeGuard;
use dispatch::{Load, Queue, Slot, once_more, run_local};
use jobs::Jobs;
use layout::{Layout, Segment};
use resume::ResumeState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
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

/// Sample files up to this size are written raw (nothing to encode or
/// decode); bigger ones (UHD, long tiers) losslessly compressed with FFV1.
const RAW_SAMPLES_MAX: u64 = 1 << 30;

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
    /// [`layout::open_frames`]).
    #[serde(default)]
    pub decimation_cycle: Option<usize>,
    pub encoder: EncoderSettings,
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
/// Highest score the slope allocation plans a segment at, above the target:
/// half a point under the band's ceiling (target + 2), as the plan's floor
/// is half a point over the band's floor. Planned at the ceiling itself,
/// cheap segments measured 95.6–95.7 for a target of 93 on real footage
/// (planned 95.07–95.10; the CRF is snapped towards quality): out of band.
pub const CEILING_MARGIN: f64 = 1.5;
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
    /// The decoding errors ffmpeg reported in the segment's source while
    /// encoding it (a damaged rip).
    DecodeErrors { segment: usize, errors: usize },
}

/// Everything the chunked path produced.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkedReport {
    pub segments: Vec<SegmentResult>,
    pub frames: usize,
    pub params: ChunkedParams,
}

/// What the chunked path encodes, and how.
#[derive(Clone, Copy)]
pub struct Film<'a> {
    pub analysis: &'a Analysis,
    pub video: &'a VideoPlan,
    pub params: &'a ChunkedParams,
    /// The hosts that share the encodes (none: this machine's workers).
    pub cluster: Option<&'a remote::Cluster>,
    /// The largest output allowed.
    pub guard: &'a SizeGuard,
}

/// Encodes the video of `analysis` into `output` the chunked way: the film
/// is cut, an earlier run's finished segments are kept, the segments still
/// to do are surveyed (slope allocation) and encoded, then appended.
pub fn encode(ctx: &Ctx, film: Film, work: &WorkDir, output: &Path) -> Result<ChunkedReport> {
    let result = encode_segments(ctx, film, work, output);
    if result.is_err() {
        remove_unfinished(&work.working_dir(), &["samples-", "probe-", "refs-"], "");
        remove_unfinished(&work.encoded_dir(), &[], ".partial.mkv");
    }
    result
}

/// Removes from `folder` the files whose names start with one of
/// `prefixes` or end with `suffix` (when not empty): the survey's sample
/// cuts and probe encodes, the measurement's reference frames, the
/// searches' encodes of whole segments, which a run redoes and never
/// resumes. A segment removes its own once done; a run that fails (a disk
/// that filled up, above all) left its running segments' there, half
/// written, taking the space the next file needs.
fn remove_unfinished(folder: &Path, prefixes: &[&str], suffix: &str) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p)) || (!suffix.is_empty() && name.ends_with(suffix)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Tells of the segments of `input`'s video, assembled by an earlier run
/// and reused whole (a stop during audio, mux or validation): its report,
/// log and notification count them as a run that encoded them would.
pub fn replay(ctx: &Ctx, input: &Path, work: &WorkDir) {
    let Some(done) = resume::finished_segments(work) else { return };
    for (i, (seg, res)) in done.iter().enumerate() {
        ctx.events.emit(&updates::complete_of(input, seg, done.len(), res, i + 1));
    }
}

/// The hosts that can encode `video`'s segments: none (this machine's
/// workers) when its Dolby Vision RPUs would not reach them. They travel
/// with the source, never in a segment's extract (FFV1 frames), and libsvtav1
/// refuses frames without them: every segment failed on every host.
fn hosts_for<'a>(
    ctx: &Ctx,
    input: &Path,
    video: &VideoPlan,
    cluster: Option<&'a remote::Cluster>,
) -> Option<&'a remote::Cluster> {
    let c = cluster?;
    let extracts = !c.settings.shared_source || video.decimation_cycle.is_some();
    if video.encoder.dolby_vision && extracts {
        let why = if c.settings.shared_source { "after inverse telecine" } else { "without a shared source" };
        let message = format!(
            "Dolby Vision's per-frame metadata cannot travel to other hosts {why} (segments go as extracts that \
             drop it): every segment is encoded on this machine"
        );
        ctx.events.emit(&updates::warning(input, message));
        return None;
    }
    Some(c)
}

fn encode_segments(ctx: &Ctx, film: Film, work: &WorkDir, output: &Path) -> Result<ChunkedReport> {
    let Film { analysis, video, params, cluster, guard } = film;
    let (input, started) = (analysis.input.as_path(), Instant::now());
    let cluster = hosts_for(ctx, input, video, cluster);
    let scratch = work.working_dir();
    let cuts_file = work.scene_cuts_file();
    std::fs::create_dir_all(work.state_dir()).map_err(Error::io("create folder", work.root()))?;
    let layout = Layout::build(ctx, input, video.decimation_cycle, params, (&scratch, &cuts_file))?;
    ctx.events.emit(&updates::planned(input, &layout, params, cluster));
    // A segment that cannot be counted is not verified, unless a stop
    // prevented the count: then the state is left as it was.
    let verify = |path: &Path, frames| {
        let counted = crate::tools::ffprobe::count_frames(&ctx.tools.ffprobe, path, ctx.cancel).ok();
        ctx.cancel.check().map(|()| counted == Some(frames))
    };
    let warn = |message| ctx.events.emit(&updates::warning(input, message));
    let fingerprint = fingerprint(video, params, &layout.segments);
    let mut state = ResumeState::open(work, &fingerprint, &layout, &verify, &warn)?;
    // An earlier run's segments are the film's too: its report, the
    // notification's VMAF and the log count them (marked reused).
    for (done, res) in state.results.values().enumerate() {
        ctx.events.emit(&updates::complete(input, &layout, res, done + 1));
    }
    let jobs = Jobs::new(analysis, video, params, &layout, &state.results, &scratch, state.encoded_dir());
    // In order: each segment's search starts from its neighbours' (finished
    // or still probing), usually the most alike content. (Longest first
    // gained little with segments of about equal length, and scattered the
    // neighbours.)
    let todo: Vec<Segment> =
        layout.segments.iter().filter(|s| !state.results.contains_key(&s.index)).copied().collect();
    // The slope allocation: every segment to encode is surveyed first, then
    // each one's CRF is decided as its encode starts (see allocate::Plan).
    let surveys = match (params.allocation, cluster) {
        (Allocation::Slope, None) => survey::survey_all(ctx, &jobs, &layout, &todo, &mut state)?,
        _ => BTreeMap::new(),
    };
    let allocation = (!surveys.is_empty())
        .then(|| Mutex::new(allocate::plan_from_surveys(params, &layout.segments, &surveys, &state.results)));
    let encodes = Encodes { ctx, cluster, guard, root: work.root(), jobs: &jobs, layout: &layout, surveys, allocation };
    encodes.run(todo, &mut state)?;
    let results = state.into_results(layout.segments.len(), input)?;
    // The source's frame times, unless the filters re-time the film to a
    // constant rate (inverse telecine, evened-out soft telecine).
    let (times, nominal) = match analysis.interlace.output_fps(analysis.video.frame_rate) {
        Some(fps) => (assemble::Times::Rate(fps), None),
        None => (assemble::Times::Source(&layout.output), analysis.video.frame_rate),
    };
    assemble::append(ctx, input, &results, output, layout.total_frames(), times, nominal)?;
    let report = ChunkedReport { segments: results, frames: layout.total_frames(), params: params.clone() };
    ctx.events.emit(&updates::finished(input, &report, started.elapsed().as_secs_f64()));
    Ok(report)
}

/// The encodes of one film's segments: the workers (this machine's, or the
/// hosts') that run them, and the coordinator that records each.
struct Encodes<'a> {
    ctx: &'a Ctx<'a>,
    /// The hosts that share the encodes (none: this machine's workers).
    cluster: Option<&'a remote::Cluster>,
    guard: &'a SizeGuard,
    /// The job's work folder.
    root: &'a Path,
    jobs: &'a Jobs<'a>,
    layout: &'a Layout,
    /// The survey of each segment (the slope allocation's).
    surveys: BTreeMap<usize, Survey>,
    allocation: Option<Mutex<allocate::Plan>>,
}

type Outcome = (usize, std::result::Result<SegmentResult, ProcessFailure>);

impl Encodes<'_> {
    /// Encodes `todo`, recording each segment in `state` as it finishes.
    fn run(&self, todo: Vec<Segment>, state: &mut ResumeState) -> Result<()> {
        let queue = Queue::new(todo);
        let (tx, rx) = mpsc::channel::<Outcome>();
        let (ptx, prx) = mpsc::channel::<Report>();
        std::thread::scope(|scope| {
            let queue = &queue;
            match self.cluster {
                Some(cluster) => {
                    let make_job = |seg| self.jobs.allocated(seg, self.allocation.as_ref());
                    scope.spawn(move || {
                        let d = remote::Dispatch {
                            ffmpeg: &self.ctx.tools.ffmpeg,
                            ffprobe: &self.ctx.tools.ffprobe,
                            cancel: self.ctx.cancel,
                            root: self.root,
                            timeline: &self.layout.source,
                            hosts: cluster.hosts.clone(),
                            queue,
                            make_job: &make_job,
                        };
                        remote::run(cluster, d, tx, ptx)
                    });
                }
                None => {
                    scope.spawn(move || self.run_local(queue, tx, ptx));
                }
            }
            self.coordinate(queue, rx, prx, state)
        })
    }

    /// This machine's workers.
    fn run_local(&self, queue: &Queue, tx: mpsc::Sender<Outcome>, ptx: mpsc::Sender<Report>) {
        let params = self.jobs.params;
        let load = Load::new(params.workers, params.threads_per_worker);
        let (w, h) = self.jobs.picture_size();
        let work = |seg: Segment, slot: &Slot| self.encode_one(seg, slot, &ptx);
        let done = |seg: Segment, r| tx.send((seg.index, r)).is_ok();
        let need = encoder_memory(w, h, self.jobs.preset(), params.threads_per_worker);
        run_local(params.workers, queue, &load, Some(need), self.ctx.cancel, &work, &done);
    }

    /// Encodes segment `seg` in `slot`, its reports to `ptx`.
    fn encode_one(
        &self,
        seg: Segment,
        slot: &Slot,
        ptx: &mpsc::Sender<Report>,
    ) -> std::result::Result<SegmentResult, ProcessFailure> {
        let (ctx, job) = (self.ctx, self.jobs.allocated(seg, self.allocation.as_ref()));
        let report = |r: Report| {
            slot.saw(&r);
            let _ = ptx.send(r);
        };
        let threads = || slot.threads();
        let mut r = once_more(ctx, self.jobs.input(), seg.index, || {
            run_segment(&ctx.tools.ffmpeg, &job, &self.layout.source, ctx.cancel, &threads, &report)
        });
        // Known before this worker makes its next job (the coordinator
        // records it again).
        if let Ok(res) = &mut r {
            self.jobs.guesses.lock().expect("guesses").finished(res);
            if let Some(s) = self.surveys.get(&seg.index) {
                res.probes.splice(0..0, s.probes.iter().cloned());
            }
        }
        if let Some(a) = &self.allocation {
            let mut a = a.lock().expect("allocation");
            match &r {
                Ok(res) => a.finished(seg.index, res.crf, res.measured_vmaf),
                Err(_) => a.abandoned(seg.index),
            }
        }
        r
    }

    /// Records each outcome (the state first: it is the truth), tells the
    /// user, stops the queue at the first failure.
    fn coordinate(
        &self,
        queue: &Queue,
        rx: mpsc::Receiver<Outcome>,
        prx: mpsc::Receiver<Report>,
        state: &mut ResumeState,
    ) -> Result<()> {
        let (ctx, input) = (self.ctx, self.jobs.input());
        let pace = (Instant::now(), state.results.values().map(|r| r.frames).sum::<usize>());
        // A resumed film shows the share its kept segments are at once (no
        // ETA yet), not 0% until a segment of this run is done (minutes).
        if pace.1 > 0 {
            self.progress(state, queue, pace)?;
        }
        let mut failure: Option<Error> = None;
        // Reports go out before the result they precede (a worker sends
        // its reports first, so they are all queued when its result is).
        let drain = || prx.try_iter().for_each(|r| ctx.events.emit(&self.jobs.report(r)));
        loop {
            drain();
            let (index, r) = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(x) => x,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            drain();
            let r = r.map_err(Error::process(input));
            state.record(index, resume::ended(&r))?;
            match r {
                Ok(res) => {
                    if res.below_target {
                        ctx.events.emit(&updates::below_target(input, &res, self.jobs.params.target));
                    }
                    ctx.events.emit(&updates::complete(input, self.layout, &res, state.results.len()));
                    self.jobs.guesses.lock().expect("guesses").finished(&res);
                }
                Err(e) => {
                    queue.stop();
                    failure.get_or_insert(e);
                }
            }
            self.progress(state, queue, pace)?;
            if failure.is_none() {
                failure = self.check_size(state).err();
                if failure.is_some() {
                    queue.stop();
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Err when the finished segments project an output over the guard's
    /// limit.
    fn check_size(&self, state: &ResumeState) -> Result<()> {
        let frames: usize = state.results.values().map(|r| r.frames).sum();
        let bytes: u64 = state.results.values().map(|r| r.bytes).sum();
        let fraction = frames as f64 / self.layout.total_frames().max(1) as f64;
        let projected = (bytes as f64 / fraction.max(1e-9)) as u64;
        if self.guard.over(projected, fraction) {
            return Err(self.guard.error(self.jobs.input(), projected, fraction));
        }
        Ok(())
    }

    /// Writes and shows how far the stage is; `pace`: when this run's
    /// encodes started, and the frames finished before.
    fn progress(&self, state: &ResumeState, queue: &Queue, pace: (Instant, usize)) -> Result<()> {
        let frames: usize = state.results.values().map(|r| r.frames).sum();
        let total_frames = self.layout.total_frames();
        let fraction = frames as f64 / total_frames as f64;
        // After a survey, the encodes are the rest of the stage.
        let shown = if self.surveys.is_empty() {
            fraction
        } else {
            survey::SURVEY_SHARE + (1.0 - survey::SURVEY_SHARE) * fraction
        };
        state.write_progress(shown, queue.front(), self.layout.segments.len())?;
        let fps = (frames - pace.1) as f64 / pace.0.elapsed().as_secs_f64().max(1e-3);
        let bytes = state.results.values().map(|r| r.bytes).sum();
        let frame_duration = self.layout.output.frame_duration();
        let p = updates::Progress { shown, frames, total_frames, fps, frame_duration, bytes };
        self.ctx.events.emit(&updates::progress(self.jobs.input(), p));
        Ok(())
    }
}

/// Hash of everything that decides the encoded segments.
fn fingerprint(video: &VideoPlan, params: &ChunkedParams, segs: &[Segment]) -> String {
    // Threads change how fast, not what: a resume with another max_cpu
    // keeps the finished segments (this path sets its own `lp` anyway).
    // Nor does the hardware decoder, which only the standard path uses (a
    // GPU's device node that appears after a reboot discarded them all).
    let video = VideoPlan { threads: 0, hwaccel: None, ..video.clone() };
    let key = serde_json::json!({
        "video": video,
        "target": params.target,
        "subsample": params.subsample,
        "pool": params.pool,
        "step": params.crf_step,
        "tiers": TIERS,
        "work": crate::job::state::WORK_FORMAT,
        "segments": segs,
        "survey_preset": params.survey_preset,
    });
    crate::hash::fingerprint(&key)
}
