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
use super::layout::{self, Segment, Timeline};
use super::{Report, SegmentJob, SegmentResult};
use crate::cancel::Cancel;
use crate::config::DistributedSettings;
use crate::error::{Error, ProcessError, ProcessFailure, Result, ToolError};
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::ffprobe::count_frames;
use crate::tools::process::{Line, shell_quote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// Layout version of job files; a worker refuses another.
pub const JOB_VERSION: u32 = 2;
/// Sub-folder of the work folder for job files, extracts and results.
const REMOTE_DIR: &str = "remote";

/// One host of the hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Segments encoded there at once.
    pub slots: usize,
    /// GNU Parallel sshlogin (`:` is this machine).
    pub login: String,
}

impl Host {
    pub fn is_local(&self) -> bool {
        self.login == ":"
    }
}

/// Parses a GNU Parallel sshlogin file: one host a line, `N/host` for N job
/// slots (default 1: one SVT-AV1 encoder already uses every core it is
/// given), `#` comments.
pub fn parse_hosts(text: &str) -> std::result::Result<Vec<Host>, String> {
    let mut hosts = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.contains(',') {
            return Err(format!("line {}: one host a line, please (\"{line}\")", n + 1));
        }
        let (slots, login) = match line.split_once('/') {
            Some((k, rest)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()) => {
                let k: usize = k.parse().map_err(|_| format!("line {}: bad job count \"{k}\"", n + 1))?;
                if k == 0 {
                    return Err(format!("line {}: a host needs at least 1 job slot", n + 1));
                }
                (k, rest.trim())
            }
            _ => (1, line),
        };
        if login.is_empty() {
            return Err(format!("line {}: no host after the job count", n + 1));
        }
        hosts.push(Host { slots, login: login.to_string() });
    }
    if hosts.is_empty() {
        return Err("no hosts listed".into());
    }
    Ok(hosts)
}

/// What one host has, as printed by `drapto segment-worker --info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub drapto: String,
    pub ffmpeg: Option<PathBuf>,
    pub ffmpeg_version: Option<String>,
    pub svtav1: Option<String>,
    pub libvmaf: bool,
    /// Why this host cannot encode segments, if it cannot.
    pub problem: Option<String>,
}

impl WorkerInfo {
    /// This machine's, from its discovered tools.
    pub fn of(tools: &crate::tools::Tools) -> WorkerInfo {
        let mut info = WorkerInfo {
            drapto: env!("CARGO_PKG_VERSION").into(),
            ffmpeg: None,
            ffmpeg_version: None,
            svtav1: None,
            libvmaf: false,
            problem: None,
        };
        match &tools.ffmpeg {
            Ok((loc, caps)) => {
                info.ffmpeg = Some(loc.path.clone());
                info.ffmpeg_version = Some(loc.version.clone());
                info.svtav1 = caps.svtav1.clone();
                info.libvmaf = caps.libvmaf;
                if caps.svtav1.is_none() {
                    info.problem = Some("ffmpeg has no libsvtav1".into());
                } else if !caps.libvmaf {
                    info.problem = Some("ffmpeg has no libvmaf".into());
                }
            }
            Err(e) => info.problem = Some(format!("{}: {}", e.tool, e.problem)),
        }
        info
    }

    /// Why results made with `self` would differ from `local`'s, if they would.
    pub fn mismatch(&self, local: &WorkerInfo) -> Option<String> {
        if self.svtav1 != local.svtav1 {
            return Some(format!(
                "SVT-AV1 {} here, {} on this host",
                local.svtav1.as_deref().unwrap_or("?"),
                self.svtav1.as_deref().unwrap_or("?")
            ));
        }
        (self.drapto != local.drapto).then(|| format!("drapto {} here, {} on this host", local.drapto, self.drapto))
    }
}

/// The result of checking one host.
#[derive(Debug, Clone)]
pub struct HostCheck {
    pub host: Host,
    /// What it has, or why it could not be asked.
    pub info: std::result::Result<WorkerInfo, String>,
}

/// What a run does with a checked host.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It takes segments.
    Ready,
    /// It takes segments although its versions differ (allowed by
    /// `distributed.allow_version_mismatch`); why they differ.
    Allowed(String),
    /// It is left out (unreachable or incapable) and the run goes on; why.
    LeftOut(String),
    /// Its versions differ and that is not allowed: no run; why they differ.
    Refused(String),
}

impl HostCheck {
    /// What a run does with this host, given this machine's `local` info.
    pub fn verdict(&self, local: &WorkerInfo, allow_mismatch: bool) -> Verdict {
        match &self.info {
            Err(why) => Verdict::LeftOut(why.clone()),
            Ok(info) => match (&info.problem, info.mismatch(local)) {
                (Some(p), _) => Verdict::LeftOut(p.clone()),
                (None, Some(m)) if allow_mismatch => Verdict::Allowed(m),
                (None, Some(m)) => Verdict::Refused(m),
                (None, None) => Verdict::Ready,
            },
        }
    }
}

/// GNU Parallel, from PATH.
pub fn parallel_path() -> std::result::Result<PathBuf, ToolError> {
    which::which("parallel").map_err(|_| ToolError {
        tool: "parallel".into(),
        problem: "not found on PATH; segment encodes on other hosts go through GNU Parallel".into(),
        fix: "sudo apt-get install parallel openssh-client rsync".into(),
    })
}

/// How GNU Parallel reaches the hosts and starts drapto on them.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub parallel: PathBuf,
    pub hosts: Vec<Host>,
    pub settings: DistributedSettings,
    /// This drapto (run for the `:` host).
    pub local_drapto: PathBuf,
}

impl Cluster {
    /// Reads the hosts file named by `settings`.
    pub fn from_settings(settings: &DistributedSettings) -> Result<Cluster> {
        let file = settings.hosts.clone().ok_or_else(|| Error::Hosts("no hosts file set".into()))?;
        let text = std::fs::read_to_string(&file).map_err(Error::io("read hosts file", &file))?;
        let hosts = parse_hosts(&text).map_err(|e| Error::Hosts(format!("hosts file {}: {e}", file.display())))?;
        let parallel = parallel_path()?;
        let local_drapto = std::env::current_exe().map_err(Error::io("locate", Path::new("drapto")))?;
        Ok(Cluster { parallel, hosts, settings: settings.clone(), local_drapto })
    }

    /// The shell command GNU Parallel runs for a job: this drapto on `:`
    /// (in `root`, where the job's relative paths are), the configured
    /// command elsewhere (in GNU Parallel's per-job folder).
    fn worker_command(&self, root: Option<&Path>, args: &str) -> String {
        let local = shell_quote(&self.local_drapto.to_string_lossy());
        let cd = root.map(|r| format!("cd {} && ", shell_quote(&r.to_string_lossy()))).unwrap_or_default();
        // GNU Parallel runs with HOME in the work folder (see `parallel`);
        // the local worker gets the real one back for its configuration.
        let home = std::env::var_os("HOME")
            .map(|h| format!("HOME={} ", shell_quote(&h.to_string_lossy())))
            .unwrap_or_default();
        format!(
            "if [ \"$PARALLEL_SSHLOGIN\" = : ]; then {cd}{home}exec {local} segment-worker {args}; else {} segment-worker {args}; fi",
            self.settings.remote_drapto
        )
    }

    /// A GNU Parallel command over `hosts_file`, its HOME in `home`: the
    /// per-job folders it makes for local jobs (under `~/.parallel/tmp`) then
    /// go with drapto's work folder instead of piling up in the user's home.
    /// (ssh and rsync read the real home's `.ssh`, whatever HOME says.)
    fn parallel(&self, hosts_file: &Path, home: &Path) -> Command {
        let mut cmd = Command::new(&self.parallel);
        cmd.env("HOME", home);
        cmd.args(["--will-cite", "--sshloginfile"]).arg(hosts_file);
        if !self.settings.ssh.trim().is_empty() {
            cmd.arg("--ssh").arg(&self.settings.ssh);
        }
        cmd
    }

    /// Asks every host for its [`WorkerInfo`] (one ssh round trip each, in
    /// parallel). A host that does not answer gets GNU Parallel's message.
    pub fn check(&self, scratch: &Path, cancel: &Cancel) -> Vec<HostCheck> {
        let file = scratch.join(format!("hosts-check-{}", std::process::id()));
        let _ = std::fs::create_dir_all(scratch);
        let lines: String = self.hosts.iter().map(|h| format!("{}\n", h.login)).collect();
        if let Err(e) = std::fs::write(&file, lines) {
            return self.hosts.iter().map(|h| HostCheck { host: h.clone(), info: Err(e.to_string()) }).collect();
        }
        let mut cmd = self.parallel(&file, scratch);
        cmd.args(["--nonall", "--tag", "--timeout", "60"]).arg(self.worker_command(None, "--info"));
        let mut answers: BTreeMap<String, String> = BTreeMap::new();
        let mut errors = Vec::new();
        let _ = crate::tools::process::run_lines(&mut cmd, "check hosts", cancel, |line| match line {
            Line::Out(l) => {
                if let Some((tag, json)) = l.split_once('\t') {
                    answers.insert(tag.trim().to_string(), json.to_string());
                }
            }
            Line::Err(l) => errors.push(l.to_string()),
        });
        let _ = std::fs::remove_file(&file);
        self.hosts
            .iter()
            .map(|h| {
                let info = match answers.get(&h.login) {
                    Some(json) => serde_json::from_str::<WorkerInfo>(json)
                        .map_err(|e| format!("answered something that is not drapto's: {e} ({json})")),
                    None => {
                        let why = errors.iter().rfind(|e| e.contains(&h.login)).or(errors.last());
                        let why = why.map(|s| s.as_str()).unwrap_or("no answer");
                        Err(format!(
                            "did not answer ({why}); check `ssh {}` works without a password and that `{}` runs there",
                            h.login, self.settings.remote_drapto
                        ))
                    }
                };
                HostCheck { host: h.clone(), info }
            })
            .collect()
    }

    /// Checks the hosts and keeps only those that can take segments. Unreachable
    /// or incapable hosts are dropped with a warning; a version mismatch is
    /// an error unless allowed. Fails when no host is left.
    pub fn keep_usable(
        &mut self,
        local: &WorkerInfo,
        scratch: &Path,
        cancel: &Cancel,
        warn: &mut dyn FnMut(String),
    ) -> Result<()> {
        let mut keep = Vec::new();
        for c in self.check(scratch, cancel) {
            let login = &c.host.login;
            match c.verdict(local, self.settings.allow_version_mismatch) {
                Verdict::Ready => keep.push(c.host),
                Verdict::Allowed(m) => {
                    warn(format!("host {login}: {m} (allowed by distributed.allow_version_mismatch)"));
                    keep.push(c.host);
                }
                Verdict::LeftOut(why) => warn(format!("host {login} left out: {why}")),
                Verdict::Refused(m) => {
                    return Err(Error::Hosts(format!(
                        "host {login}: {m}; different versions give different results. Install the same versions, or set distributed.allow_version_mismatch = true"
                    )));
                }
            }
        }
        cancel.check()?;
        if keep.is_empty() {
            return Err(Error::Hosts("no host of the hosts file can encode segments (see the warnings above)".into()));
        }
        self.hosts = keep;
        Ok(())
    }
}

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
    let status = crate::error::Exit::Problem(problem);
    ProcessFailure::Failed(ProcessError { step, program: "parallel".into(), status, stderr_tail: tail })
}

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
    let hosts_file = dir.join("hosts");
    let text: String = d.hosts.iter().map(|h| format!("{}/{}\n", h.slots, h.login)).collect();
    let _ = std::fs::write(&hosts_file, text);
    let slots: usize = d.hosts.iter().map(|h| h.slots).sum();
    let shared = cluster.settings.shared_source;

    let mut cmd = cluster.parallel(&hosts_file, &dir);
    cmd.current_dir(d.root);
    cmd.args(["--line-buffer", "--workdir", "...", "--cleanup", "--retries"]).arg(cluster.settings.retries.to_string());
    if !shared {
        cmd.args(["--transferfile", &format!("{REMOTE_DIR}/{{}}.src.mkv")]);
    }
    cmd.args(["--transferfile", &format!("{REMOTE_DIR}/{{}}.job.json")]);
    cmd.args(["--return", &format!("{REMOTE_DIR}/{{}}.out.mkv")]);
    cmd.args(["--return", &format!("{REMOTE_DIR}/{{}}.result.json")]);
    cmd.arg(cluster.worker_command(Some(d.root), &format!("{REMOTE_DIR}/{{}}.job.json")));

    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail_all("pipe", e),
    };
    // Segments handed to GNU Parallel and not yet back: id → (segment, final path).
    let pending: Mutex<BTreeMap<String, (Segment, PathBuf)>> = Mutex::new(BTreeMap::new());
    let in_flight = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let mut tail: Vec<String> = Vec::new();

    std::thread::scope(|scope| {
        // Feeder: prepares a job, then hands its id to GNU Parallel, keeping
        // at most one job beyond the free slots prepared.
        let feeder = {
            let (tx, pending, in_flight, d) = (tx.clone(), &pending, &in_flight, &d);
            let dir = &dir;
            scope.spawn(move || {
                let mut writer = writer;
                loop {
                    if d.queue.is_stopped() || d.cancel.is_cancelled() {
                        break;
                    }
                    if in_flight.load(Ordering::SeqCst) > slots {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    let Some(seg) = d.queue.pop(d.cancel) else { break };
                    match prepare(d, dir, seg, shared) {
                        Ok(final_path) => {
                            pending.lock().expect("pending").insert(id(&seg), (seg, final_path));
                            in_flight.fetch_add(1, Ordering::SeqCst);
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
            })
        };
        // Collector: accepts results as they come back.
        let collector = {
            let (tx, pending, in_flight, finished, d) = (tx.clone(), &pending, &in_flight, &finished, &d);
            let dir = &dir;
            scope.spawn(move || {
                loop {
                    let last = finished.load(Ordering::SeqCst);
                    let ids: Vec<String> = pending.lock().expect("pending").keys().cloned().collect();
                    for i in ids {
                        let entry = pending.lock().expect("pending").get(&i).cloned();
                        let Some((seg, final_path)) = entry else { continue };
                        if let Some(r) = collect(d, dir, &i, &seg, &final_path) {
                            pending.lock().expect("pending").remove(&i);
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            let _ = tx.send((seg.index, r));
                        }
                    }
                    if last {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        let mut stderr_lines = Vec::new();
        let result = crate::tools::process::run_lines_fed(
            &mut cmd,
            Stdio::from(reader),
            nix::sys::signal::Signal::SIGINT,
            "segments on hosts",
            d.cancel,
            |line| match line {
                Line::Out(l) => match parse_report(l) {
                    Some(p) => {
                        let _ = ptx.send(p);
                    }
                    None => tracing::info!("host: {l}"),
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
        // GNU Parallel is gone: stop feeding (its input is closed) and make
        // the collector's last pass.
        d.queue.stop();
        let _ = feeder.join();
        finished.store(true, Ordering::SeqCst);
        let _ = collector.join();
        tail = stderr_lines.split_off(stderr_lines.len().saturating_sub(20));
        if let Err(ProcessFailure::Cancelled(sig)) = result {
            for (_, (seg, _)) in std::mem::take(&mut *pending.lock().expect("pending")) {
                let _ = tx.send((seg.index, Err(ProcessFailure::Cancelled(sig))));
            }
        }
    });
    for (_, (seg, _)) in std::mem::take(&mut *pending.lock().expect("pending")) {
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
    let timeline = if shared {
        Timeline { pts: d.timeline.pts[seg.start..seg.end].to_vec(), bytes: vec![], keyframes: vec![] }
    } else {
        let extract = dir.join(format!("{i}.src.mkv"));
        let f = job.filters.as_deref();
        make_extract(d.ffmpeg, &job.source, d.timeline, seg, f, job.decimation_cycle, &extract, d.cancel)?;
        let tl = layout::timeline(d.ffprobe, &extract, d.cancel)
            .map_err(|e| failure(format!("segment {} extract", seg.index + 1), e.to_string(), vec![]))?;
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
    job.segment = Segment { index: seg.index, start: 0, end: seg.frames() };
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
    let frames = count_frames(d.ffprobe, &out, d.cancel);
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
    fn hosts_file_lines() {
        let h = parse_hosts("# my machines\n:\n4/alice@big # the big one\n\nssh -p 2222 bob@pi\n").unwrap();
        assert_eq!(
            h,
            vec![
                Host { slots: 1, login: ":".into() },
                Host { slots: 4, login: "alice@big".into() },
                Host { slots: 1, login: "ssh -p 2222 bob@pi".into() },
            ]
        );
        assert!(h[0].is_local());
        assert!(parse_hosts("# nothing\n").is_err());
        assert!(parse_hosts("0/host\n").unwrap_err().contains("at least 1"));
        assert!(parse_hosts("a,b\n").unwrap_err().contains("line 1"));
        assert!(parse_hosts("3/\n").is_err());
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

    #[test]
    fn version_mismatch() {
        let a = WorkerInfo {
            drapto: "0.1.0".into(),
            ffmpeg: None,
            ffmpeg_version: None,
            svtav1: Some("v4.0.0".into()),
            libvmaf: true,
            problem: None,
        };
        assert_eq!(a.mismatch(&a.clone()), None);
        let b = WorkerInfo { svtav1: Some("v3.1.0".into()), ..a.clone() };
        assert!(b.mismatch(&a).unwrap().contains("SVT-AV1"));
        let c = WorkerInfo { drapto: "0.2.0".into(), ..a.clone() };
        assert!(c.mismatch(&a).unwrap().contains("drapto"));

        let host = Host { slots: 1, login: "h".into() };
        let check = |info| HostCheck { host: host.clone(), info };
        assert_eq!(check(Ok(a.clone())).verdict(&a, false), Verdict::Ready);
        assert!(matches!(check(Ok(b.clone())).verdict(&a, false), Verdict::Refused(m) if m.contains("SVT-AV1")));
        assert!(matches!(check(Ok(b)).verdict(&a, true), Verdict::Allowed(_)));
        let broken = WorkerInfo { problem: Some("ffmpeg has no libvmaf".into()), ..a.clone() };
        assert_eq!(check(Ok(broken)).verdict(&a, false), Verdict::LeftOut("ffmpeg has no libvmaf".into()));
        assert_eq!(check(Err("no answer".into())).verdict(&a, true), Verdict::LeftOut("no answer".into()));
    }
}
