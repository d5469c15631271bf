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
pub mod segment;
pub mod segments;
pub mod slope;
pub mod vmaf;

use segment::tier_space;
pub use segment::{Survey, run_segment, sample_ranges, survey_segment};

use super::Ctx;
use crate::analysis::Analysis;
use crate::error::{Error, ProcessFailure, Result};
use crate::events::{Event, PredictionSource, SegmentStep, Stage};
use crate::job::WorkDir;
use crate::job::state::{self, EncodingFile, ProbeRecord, ProgressFile, SegmentEntry, SegmentStatus, SegmentsFile};
pub use crate::plan::{Allocation, ChunkedParams};
use crate::plan::{EncoderSettings, VideoPlan, available_memory, encoder_memory};
use guess::Guesses;
use search::Point;
use segments::Segment;
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

/// Threads for a step that starts now, out of `budget`: the worker's own
/// `per_worker` while segments wait in the queue; once none waits, the
/// budget split among the `active` segments, not counting the
/// `others_finishing` ones in their last step (measuring, short): the
/// threads those free soon go to the work that remains, so no core sits idle
/// through the last, longest steps.
pub(crate) fn thread_share(budget: u32, per_worker: u32, queued: bool, active: usize, others_finishing: usize) -> u32 {
    if queued {
        return per_worker;
    }
    let sharing = active.saturating_sub(others_finishing).max(1);
    (budget / sharing as u32).max(1)
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
    let scratch = work.root().join("working");
    std::fs::create_dir_all(&scratch).map_err(Error::io("create folder", &scratch))?;
    let scene_method = segments::scene_method(&src_tl);
    let cuts = segments::scene_cuts(
        ctx.ffmpeg,
        input,
        &src_tl,
        params.workers * params.threads_per_worker as usize,
        scene_method,
        &scratch,
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
            "chunked: {} ({} found {}, {:.1}s), VMAF target {}, {workers_detail}",
            match params.allocation {
                Allocation::Slope => format!(
                    "{} (scenes of {MIN_SCENE_SECONDS}–{} s), CRFs at an equal slope for the film's mean",
                    crate::units::count(segs.len(), "segment"),
                    params.chunk_seconds
                ),
                Allocation::Target => format!(
                    "{} of ~{}s, each searched to the target",
                    crate::units::count(segs.len(), "segment"),
                    params.chunk_seconds
                ),
            },
            crate::units::count(cuts.len(), "scene cut"),
            scene_method.describe(),
            t0.elapsed().as_secs_f64(),
            params.target,
        ),
    });

    let state_dir = work.root().join("state");
    let encoded_dir = work.root().join("encoded");
    for d in [&state_dir, &encoded_dir] {
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
        let ok = st.status == SegmentStatus::Completed
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
    // Surveys of segments not finished are kept (the slope allocation's).
    let surveyed: BTreeMap<usize, Survey> = enc
        .segments
        .iter()
        .filter_map(|(k, st)| {
            let i: usize = k.parse().ok()?;
            let s = st.survey.clone().filter(|_| !results.contains_key(&i) && i < segs.len())?;
            Some((i, s))
        })
        .collect();
    enc.segments.retain(|k, _| k.parse().is_ok_and(|i: usize| results.contains_key(&i)));
    for (i, s) in &surveyed {
        enc.segments.entry(i.to_string()).or_default().survey = Some(s.clone());
    }
    if !results.is_empty() || !surveyed.is_empty() {
        ctx.events.emit(&Event::Warning {
            input: Some(input.to_path_buf()),
            message: format!(
                "resuming: {} of {} segments already encoded and verified{}",
                results.len(),
                segs.len(),
                if surveyed.is_empty() { String::new() } else { format!(", {} surveyed", surveyed.len()) }
            ),
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
    let vmaf_spec = VmafSpec::for_picture(
        analysis.resolution,
        analysis.picture_size(),
        analysis.video.bit_depth,
        &params.pool,
        params.threads_per_worker,
    );
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
            encoder: video.encoder.clone(),
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
        // Each survey is written to the state as it finishes.
        let enc_lock = Mutex::new(enc);
        let record = |index: usize, s: &Survey| -> Result<()> {
            let mut e = enc_lock.lock().expect("state");
            e.segments.entry(index.to_string()).or_default().survey = Some(s.clone());
            e.updated_at = state::now();
            state::write_atomic(&enc_file, &*e)
        };
        let r = slope::survey_all(ctx, input, &todo, &base_job, &src_tl, params, &guesses, surveyed, &record);
        enc = enc_lock.into_inner().expect("state");
        r?
    } else {
        BTreeMap::new()
    };
    let allocation = (!surveys.is_empty()).then(|| Mutex::new(slope::slope_plan(params, &segs, &surveys, &results)));
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
                            let mut r = once_more(ctx, input, seg.index, || {
                                run_segment(ctx.ffmpeg, &job, src_tl, ctx.cancel, &threads, &report)
                            });
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
                    entry.status = SegmentStatus::Completed;
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
                    entry.status = SegmentStatus::Pending;
                    failure.get_or_insert(Error::Cancelled { signal: sig });
                }
                Err(e) => {
                    entry.status = SegmentStatus::Failed;
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
            // After a survey, the encodes are the rest of the stage.
            let shown = if surveys.is_empty() {
                fraction
            } else {
                slope::SURVEY_SHARE + (1.0 - slope::SURVEY_SHARE) * fraction
            };
            state::write_atomic(
                &prog_file,
                &ProgressFile {
                    version: state::STATE_VERSION,
                    status: "encoding".into(),
                    created_at: created.clone(),
                    updated_at: state::now(),
                    total_progress: shown * 100.0,
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
                percent: shown * 100.0,
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
pub(crate) fn report_event(ctx: &Ctx, input: &Path, params: &ChunkedParams, guesses: &Mutex<Guesses>, r: Report) {
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

/// Runs `step` of segment `index`, and once more (saying so) when it fails
/// for any reason but cancellation: one transient failure does not fail
/// the film, and the other segments are unaffected either way.
pub(crate) fn once_more<T>(
    ctx: &Ctx,
    input: &Path,
    index: usize,
    mut step: impl FnMut() -> std::result::Result<T, ProcessFailure>,
) -> std::result::Result<T, ProcessFailure> {
    match step() {
        Err(e) if !matches!(e, ProcessFailure::Cancelled(_)) => {
            ctx.events.emit(&Event::Warning {
                input: Some(input.to_path_buf()),
                message: format!("segment {} failed ({e}); trying it once more", index + 1),
            });
            step()
        }
        r => r,
    }
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
    format!("{:016x}", crate::hash::fnv1a(key.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(crate::plan::default_workers(3840, 2160, 1 << 30), 1);
        assert!(crate::plan::default_workers(1280, 720, 64 << 30) >= 1);
    }
}
