//! Segment encodes on several machines through GNU Parallel over SSH.
//!
//! The coordinating drapto keeps everything but the segment encodes:
//! analysis, segmentation, state, audio, assembly and validation. Each
//! segment becomes a job file (a [`RemoteJob`]: the [`SegmentJob`] with
//! relative paths and the timestamps of its frames). Unless the sources are
//! on a shared path, the segment's frames go with it as a lossless FFV1
//! extract (cut and filtered here, so frame-exactness and the filters are
//! decided in one place). GNU Parallel sends both to a host
//! (`--transferfile`), runs `drapto segment-worker` there, and brings back
//! the encoded segment and its result (`--return`), retrying a failed job on
//! another host (`--retries`). Probe records reach the coordinator as JSON
//! lines on the worker's stdout.
//!
//! Jobs are fed to GNU Parallel one by one on its stdin, a few ahead of the
//! free job slots, so extracts never pile up on disk. A result is accepted
//! once its file is back, has the size the worker recorded and the
//! segment's frame count; it then joins the local state like any segment.

use super::dispatch::Queue;
pub use super::hosts::{Cluster, Host, HostCheck, Verdict, WorkerInfo, parallel_path, parse_hosts};
use super::layout::{self, Segment, Timeline};
use super::{Report, SegmentJob, SegmentResult};
use crate::cancel::Cancel;
use crate::error::{DAMAGED_SOURCE, ProcessError, ProcessFailure};
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::ffprobe::count_frames;
use crate::tools::process::Line;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// Layout version of job files; a worker refuses another.
pub const JOB_VERSION: u32 = 2;
/// Sub-folder of the work folder for job files, extracts and results.
pub(super) const REMOTE_DIR: &str = "remote";

/// A segment job as a host receives it: paths relative to the job's folder
/// (or, with a shared source, the source's absolute path) and the
/// timestamps of the frames in the file the worker opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteJob {
    pub version: u32,
    pub job: SegmentJob,
    pub timeline: Timeline,
    /// Where the worker writes its [`SegmentResult`] (after the segment).
    pub result: PathBuf,
}

/// What the dispatcher needs from the chunked path.
pub struct Dispatch<'a> {
    pub ffmpeg: &'a Path,
    pub ffprobe: &'a Path,
    pub cancel: &'a Cancel,
    /// The job's work folder.
    pub root: &'a Path,
    /// The source's full timeline.
    pub timeline: &'a Timeline,
    pub hosts: Vec<Host>,
    /// Segments still to encode (shared with the coordinator, which stops
    /// it when a segment failed).
    pub queue: &'a Queue,
    /// The local job of a segment (first guess included).
    pub make_job: &'a (dyn Fn(Segment) -> SegmentJob + Sync),
}

type Outcome = (usize, std::result::Result<SegmentResult, ProcessFailure>);

fn id(seg: &Segment) -> String {
    format!("{:04}", seg.index + 1)
}

fn failure(step: String, problem: String, tail: Vec<String>) -> ProcessFailure {
    failed_command(step, String::new(), problem, tail)
}

/// A job of GNU Parallel's (`command`, as it ran on a host) that failed.
fn failed_command(step: String, command: String, problem: String, tail: Vec<String>) -> ProcessFailure {
    let status = crate::error::Exit::Problem(problem);
    ProcessFailure::Failed(ProcessError { step, program: "parallel".into(), command, status, stderr_tail: tail })
}

/// Segments handed to GNU Parallel and not yet back.
#[derive(Default)]
struct InFlight {
    /// id → (segment, final path).
    pending: Mutex<BTreeMap<String, (Segment, PathBuf)>>,
    count: AtomicUsize,
    /// The ids in the order they were handed over: GNU Parallel's job
    /// sequence numbers (1, 2…) in its job log.
    order: Mutex<Vec<String>>,
    /// GNU Parallel is gone: the collector makes its last pass.
    finished: AtomicBool,
    /// Segments whose worker found the source's video damaged (see
    /// [`damaged_line`]): segment index → what it said.
    damaged: Mutex<BTreeMap<usize, String>>,
}

/// The file where GNU Parallel logs each job once it is done with it
/// (after its last try).
const JOBLOG: &str = "joblog";

/// Encodes the queued segments on the cluster's hosts; each result (or
/// failure) goes to `tx`, each probe to `ptx`, as the local workers do.
pub fn run(cluster: &Cluster, d: Dispatch, tx: mpsc::Sender<Outcome>, ptx: mpsc::Sender<Report>) {
    // Every queued segment fails when the dispatch cannot even start.
    let fail_all = |program: &str, e: std::io::Error| {
        for s in d.queue.drain() {
            let source = std::io::Error::new(e.kind(), e.to_string());
            let _ = tx.send((s.index, Err(ProcessFailure::Spawn { program: program.into(), source })));
        }
    };
    let dir = d.root.join(REMOTE_DIR);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail_all("mkdir", e);
    }
    let mut cmd = parallel_command(cluster, &d, &dir);
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail_all("pipe", e),
    };
    let flight = InFlight::default();
    let tail = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| feed(cluster, &d, &dir, &flight, writer, &tx));
        let collector = scope.spawn(|| collect_all(&d, &dir, &flight, &tx));
        let (result, tail) = run_parallel(&mut cmd, reader, &d, &flight, &ptx);
        // GNU Parallel is gone: stop feeding (its input is closed) and make
        // the collector's last pass.
        d.queue.stop();
        let _ = feeder.join();
        flight.finished.store(true, Ordering::SeqCst);
        let _ = collector.join();
        if let Err(ProcessFailure::Cancelled(sig)) = result {
            for (_, (seg, _)) in std::mem::take(&mut *flight.pending.lock().expect("pending")) {
                let _ = tx.send((seg.index, Err(ProcessFailure::Cancelled(sig))));
            }
        }
        tail
    });
    for (_, (seg, _)) in std::mem::take(&mut *flight.pending.lock().expect("pending")) {
        let _ = tx.send((
            seg.index,
            Err(failure(
                format!("segment {} on the hosts", seg.index + 1),
                format!("failed on every host tried ({} attempts at most)", cluster.settings.retries),
                tail.clone(),
            )),
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// GNU Parallel for the segments of `d`: job ids on its stdin, each job's
/// files sent to and brought back from a host.
fn parallel_command(cluster: &Cluster, d: &Dispatch, dir: &Path) -> std::process::Command {
    let hosts_file = dir.join("hosts");
    let text: String = d.hosts.iter().map(|h| format!("{}/{}\n", h.slots, h.login)).collect();
    let _ = std::fs::write(&hosts_file, text);
    let mut cmd = cluster.parallel(&hosts_file, dir);
    cmd.current_dir(d.root);
    cmd.args(["--line-buffer", "--workdir", "...", "--cleanup", "--retries"]).arg(cluster.settings.retries.to_string());
    cmd.arg("--joblog").arg(dir.join(JOBLOG));
    if !cluster.settings.shared_source {
        cmd.args(["--transferfile", &format!("{REMOTE_DIR}/{{}}.src.mkv")]);
    }
    cmd.args(["--transferfile", &format!("{REMOTE_DIR}/{{}}.job.json")]);
    cmd.args(["--return", &format!("{REMOTE_DIR}/{{}}.out.mkv")]);
    cmd.args(["--return", &format!("{REMOTE_DIR}/{{}}.result.json")]);
    cluster.add_worker(&mut cmd, Some(d.root), &format!("{REMOTE_DIR}/{{}}.job.json"));
    cmd
}

/// Prepares each queued segment's job, then hands its id to GNU Parallel,
/// keeping at most one job beyond the free slots prepared.
fn feed(
    cluster: &Cluster,
    d: &Dispatch,
    dir: &Path,
    flight: &InFlight,
    mut writer: std::io::PipeWriter,
    tx: &mpsc::Sender<Outcome>,
) {
    let slots: usize = d.hosts.iter().map(|h| h.slots).sum();
    loop {
        if d.queue.is_stopped() || d.cancel.is_cancelled() {
            break;
        }
        if flight.count.load(Ordering::SeqCst) > slots {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let Some(seg) = d.queue.pop(d.cancel) else { break };
        match prepare(d, dir, seg, cluster.settings.shared_source) {
            Ok(final_path) => {
                flight.pending.lock().expect("pending").insert(id(&seg), (seg, final_path));
                flight.count.fetch_add(1, Ordering::SeqCst);
                flight.order.lock().expect("order").push(id(&seg));
                if writeln!(writer, "{}", id(&seg)).and_then(|_| writer.flush()).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send((seg.index, Err(e)));
            }
        }
    }
    // Dropping the writer ends GNU Parallel's input.
}

/// Accepts results as they come back, and fails the jobs GNU Parallel
/// gave up on (their slots free again: the feeder waits for them), until
/// GNU Parallel is gone.
fn collect_all(d: &Dispatch, dir: &Path, flight: &InFlight, tx: &mpsc::Sender<Outcome>) {
    loop {
        let last = flight.finished.load(Ordering::SeqCst);
        let ids: Vec<String> = flight.pending.lock().expect("pending").keys().cloned().collect();
        let given_up = std::fs::read_to_string(dir.join(JOBLOG)).map(|t| given_up(&t)).unwrap_or_default();
        for i in ids {
            let entry = flight.pending.lock().expect("pending").get(&i).cloned();
            let Some((seg, final_path)) = entry else { continue };
            let gave_up = || {
                // (A segment tried again has the same id: its last job.)
                let order = flight.order.lock().expect("order");
                let seq = order.iter().rposition(|o| *o == i)? + 1;
                given_up.iter().find(|g| g.seq == seq).map(|g| g.failure(&seg))
            };
            // A damaged source fails the same on every host: the film goes
            // to the standard path without waiting for the retries.
            let damaged = || flight.damaged.lock().expect("damaged").get(&seg.index).map(|p| Err(damaged(&seg, p)));
            if let Some(r) = collect(d, dir, &i, &seg, &final_path).or_else(damaged).or_else(|| gave_up().map(Err)) {
                flight.pending.lock().expect("pending").remove(&i);
                flight.count.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send((seg.index, r));
            }
        }
        if last {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A job GNU Parallel's job log shows ended in failure after its last try.
#[derive(Debug, PartialEq)]
struct GivenUp {
    seq: usize,
    host: String,
    exit: String,
    signal: String,
    /// The job's command line, as GNU Parallel ran it.
    command: String,
}

impl GivenUp {
    fn failure(&self, seg: &Segment) -> ProcessFailure {
        let how = if self.signal != "0" { format!("signal {}", self.signal) } else { format!("exit {}", self.exit) };
        failed_command(
            format!("segment {} on the hosts", seg.index + 1),
            self.command.clone(),
            format!("failed on every host tried (the last, {}: {how}); the hosts' log has why", self.host),
            vec![],
        )
    }
}

/// The failed jobs of a GNU Parallel job log (`Seq Host Starttime
/// JobRuntime Send Receive Exitval Signal Command`, tab-separated).
fn given_up(joblog: &str) -> Vec<GivenUp> {
    (joblog.lines().skip(1))
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let g = GivenUp {
                seq: c.first()?.trim().parse().ok()?,
                host: c.get(1)?.to_string(),
                exit: c.get(6)?.trim().to_string(),
                signal: c.get(7)?.trim().to_string(),
                command: c.get(8..).map(|rest| rest.join("\t")).unwrap_or_default(),
            };
            (g.exit != "0" || g.signal != "0").then_some(g)
        })
        .collect()
}

/// Runs GNU Parallel with job ids from `reader`; the workers' reports go
/// to `ptx`. Returns how it ended and the last lines it complained.
fn run_parallel(
    cmd: &mut std::process::Command,
    reader: std::io::PipeReader,
    d: &Dispatch,
    flight: &InFlight,
    ptx: &mpsc::Sender<Report>,
) -> (std::result::Result<Vec<String>, ProcessFailure>, Vec<String>) {
    let mut stderr_lines = Vec::new();
    let result = crate::tools::process::run_lines_fed(
        cmd,
        Stdio::from(reader),
        nix::sys::signal::Signal::SIGINT,
        "segments on hosts",
        d.cancel,
        |line| match line {
            Line::Out(l) => match (parse_report(l), parse_damaged(l)) {
                (Some(p), _) => {
                    let _ = ptx.send(p);
                }
                (None, Some((segment, problem))) => {
                    flight.damaged.lock().expect("damaged").insert(segment, problem);
                }
                (None, None) => tracing::info!("host: {l}"),
            },
            Line::Err(l) => {
                tracing::warn!("parallel: {l}");
                stderr_lines.push(l.to_string());
            }
        },
    );
    if let Err(e) = &result {
        tracing::warn!("GNU Parallel ended: {e:?}");
    }
    let tail = stderr_lines.split_off(stderr_lines.len().saturating_sub(20));
    (result, tail)
}

/// Writes the job file of `seg` (and its extract unless the source is
/// shared). Returns where the accepted segment will be kept.
fn prepare(d: &Dispatch, dir: &Path, seg: Segment, shared: bool) -> std::result::Result<PathBuf, ProcessFailure> {
    let mut job = (d.make_job)(seg);
    let final_path = job.output.clone();
    let i = id(&seg);
    let rel = |name: &str| Path::new(REMOTE_DIR).join(format!("{i}.{name}"));
    // Decimated frames cannot be cut by a host from its own source range:
    // they travel as an extract.
    let shared = shared && job.decimation_cycle.is_none();
    // The host opens a shared source at the segment's first frame by the
    // time halfway from the frame before, and reads up to the time halfway
    // to the frame after (see `layout::open_frames`): the job's timeline
    // holds both. Without them it read the file from its start (every
    // segment the first one's frames), or, where frames do not decode, on
    // into the next segment.
    let lead = seg.start.min(1);
    let after = (seg.end + 1).min(d.timeline.frames());
    let timeline = if shared {
        Timeline::new(d.timeline.pts[seg.start - lead..after].to_vec(), vec![], vec![])
    } else {
        let extract = dir.join(format!("{i}.src.mkv"));
        let f = job.filters.as_deref();
        make_extract(d.ffmpeg, &job.source, d.timeline, seg, f, job.decimation_cycle, &extract, d.cancel)
            .map_err(|e| super::probe::as_damaged(e, seg.range()))?;
        let tl = layout::timeline(d.ffprobe, &extract, d.cancel)
            .map_err(|e| failure(format!("segment {} extract", seg.index + 1), e.to_string(), vec![]))?;
        // Frames of the source that do not decode (a damaged rip) are
        // missing from the extract.
        if tl.frames() < seg.frames() {
            let problem = format!("the extract for the hosts holds {} of its {} frames", tl.frames(), seg.frames());
            return Err(damaged(&seg, &problem));
        }
        if tl.frames() != seg.frames() {
            return Err(failure(
                format!("segment {} extract", seg.index + 1),
                format!("extract holds {} frames, the segment {}", tl.frames(), seg.frames()),
                vec![],
            ));
        }
        job.source = rel("src.mkv");
        // The extract's frames are already filtered.
        job.filters = None;
        job.decimation_cycle = None;
        tl
    };
    // (Of a shared source, the segment is the timeline's frames but the
    // ones before and after it.)
    let start = if shared { lead } else { 0 };
    job.segment = Segment { index: seg.index, start, end: start + seg.frames() };
    job.output = rel("out.mkv");
    job.scratch = rel("scratch");
    let remote = RemoteJob { version: JOB_VERSION, job, timeline, result: rel("result.json") };
    crate::job::state::write_atomic(&dir.join(format!("{i}.job.json")), &remote)
        .map_err(|e| failure(format!("segment {} job file", seg.index + 1), e.to_string(), vec![]))?;
    Ok(final_path)
}

/// The output frames of `seg` of `source` (whose timeline is `tl`),
/// through `filters` (dropping one of every `cycle` frames when set),
/// losslessly (FFV1), with their timestamps, into `out`: what a worker on
/// another host encodes and scores against.
#[allow(clippy::too_many_arguments)]
pub fn make_extract(
    ffmpeg: &Path,
    source: &Path,
    tl: &Timeline,
    seg: Segment,
    filters: Option<&str>,
    cycle: Option<usize>,
    out: &Path,
    cancel: &Cancel,
) -> std::result::Result<(), ProcessFailure> {
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]);
    let chain = layout::open_frames(&mut a, source, tl, seg.range(), filters, cycle);
    layout::frames_output(&mut a, seg.frames());
    a.arg("-vf").arg(chain);
    a.extend(["-fps_mode", "passthrough", "-enc_time_base:v", "1/1000"]);
    a.extend(["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-threads", "2"]);
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska"]).output(out);
    crate::tools::process::run(&mut a.command(ffmpeg), &format!("segment {} extract", seg.index + 1), cancel, |_| {})
        .map(|_| ())
}

/// The result of job `i` if it is back: `None` while it is not (or not
/// whole yet).
fn collect(
    d: &Dispatch,
    dir: &Path,
    i: &str,
    seg: &Segment,
    final_path: &Path,
) -> Option<std::result::Result<SegmentResult, ProcessFailure>> {
    let result_file = dir.join(format!("{i}.result.json"));
    let out = dir.join(format!("{i}.out.mkv"));
    let text = std::fs::read_to_string(&result_file).ok()?;
    let mut res: SegmentResult = serde_json::from_str(&text).ok()?;
    if std::fs::metadata(&out).map(|m| m.len()).ok()? != res.bytes {
        return None;
    }
    let frames = count_frames(d.ffprobe, &out, d.cancel).ok();
    for name in ["job.json", "src.mkv", "result.json"] {
        let _ = std::fs::remove_file(dir.join(format!("{i}.{name}")));
    }
    if frames != Some(seg.frames()) {
        let _ = std::fs::remove_file(&out);
        return Some(Err(failure(
            format!("segment {} from a host", seg.index + 1),
            format!("came back with {frames:?} frames, expected {}", seg.frames()),
            vec![],
        )));
    }
    if let Err(e) = std::fs::rename(&out, final_path) {
        return Some(Err(ProcessFailure::Spawn { program: "rename".into(), source: e }));
    }
    res.index = seg.index;
    res.path = final_path.to_path_buf();
    res.frames = seg.frames();
    Some(Ok(res))
}

/// The failure of segment `seg` whose source video does not decode in
/// full (a damaged rip), as `problem` (a host's or the extract's) says.
fn damaged(seg: &Segment, problem: &str) -> ProcessFailure {
    let (first, last) = (seg.start, seg.end.max(seg.start + 1) - 1);
    // (A host's frame numbers count from the segment's start.)
    let told = problem.strip_prefix(DAMAGED_SOURCE).map_or(problem, |d| d.trim_start_matches(": "));
    let detail = format!("segment {} (frames {first}–{last}): {told}", seg.index + 1);
    ProcessFailure::Failed(ProcessError::damaged_source(String::new(), &detail))
}

/// The line a worker prints when segment `segment`'s source video does not
/// decode in full (read by [`parse_damaged`]): the coordinator sends the
/// film to the standard path, as it does for a damaged segment of its own.
pub fn damaged_line(segment: usize, problem: &str) -> String {
    serde_json::json!({ "drapto_damaged": { "segment": segment, "problem": problem } }).to_string()
}

/// The segment and problem of a worker's [`damaged_line`].
fn parse_damaged(line: &str) -> Option<(usize, String)> {
    #[derive(Deserialize)]
    struct Damaged {
        segment: usize,
        problem: String,
    }
    #[derive(Deserialize)]
    struct Line {
        drapto_damaged: Damaged,
    }
    serde_json::from_str::<Line>(line).ok().map(|l| (l.drapto_damaged.segment, l.drapto_damaged.problem))
}

/// A worker's report line: `{"drapto_report":{"kind":"probe",…}}`.
fn parse_report(line: &str) -> Option<Report> {
    #[derive(Deserialize)]
    struct Line {
        drapto_report: Report,
    }
    serde_json::from_str::<Line>(line).ok().map(|l| l.drapto_report)
}

/// The line a worker prints for a report (read by [`parse_report`]).
pub fn report_line(r: &Report) -> String {
    serde_json::json!({ "drapto_report": r }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_log_says_which_jobs_failed_after_their_last_try() {
        let log = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
                   2\t:\t1796569839.617\t     0.002\t0\t5\t0\t0\tworker 0002\n\
                   1\tremote\t1796569839.624\t     0.001\t0\t0\t3\t0\tworker 0001\n\
                   3\tremote\t1796569839.7\t     0.1\t0\t0\t255\t9\tworker 0003\n\
                   4\tremote";
        let g = given_up(log);
        assert_eq!(g.iter().map(|g| g.seq).collect::<Vec<_>>(), [1, 3]);
        let seg = Segment { index: 0, start: 0, end: 10 };
        let e = g[1].failure(&seg).to_string();
        assert!(e.contains("segment 1") && e.contains("remote: signal 9"), "{e}");
    }

    #[test]
    fn damaged_lines_round_trip() {
        let line = damaged_line(3, "ffmpeg gave up decoding frames 10–20");
        assert_eq!(parse_damaged(&line), Some((3, "ffmpeg gave up decoding frames 10–20".into())));
        let step = Report::Step { segment: 3, step: crate::events::SegmentStep::Measuring };
        assert_eq!(parse_damaged(&report_line(&step)), None);
    }

    #[test]
    fn report_lines_round_trip() {
        let r = Report::Probe { segment: 3, tier: 2, crf: 31.25, score: 93.4 };
        match parse_report(&report_line(&r)) {
            Some(Report::Probe { segment: 3, tier: 2, crf, score }) => {
                assert_eq!(crf, 31.25);
                assert_eq!(score, 93.4);
            }
            _ => panic!("not parsed"),
        }
        assert!(parse_report("frame= 10").is_none());
        assert!(parse_report("{\"other\":1}").is_none());
        let step = Report::Step { segment: 1, step: crate::events::SegmentStep::Probing { tier: 1, crf: 30.0 } };
        assert_eq!(parse_report(&report_line(&step)), Some(step));
    }
}
