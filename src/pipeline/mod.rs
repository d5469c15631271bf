//! The pipeline for one file — probe → analyse → plan → encode → mux →
//! validate → report — and the batch loop around it.
//!
//! Safety rules live here: the input is only ever read; every intermediate is
//! written in the job's work folder; the output is muxed under a hidden
//! temporary name in the output folder and renamed to its final name only
//! after validation passed.

pub mod output;
mod steps;

use crate::analysis::{self, Analysis};
use crate::breaker::{Breaker, THRESHOLD, Verdict};
use crate::cancel::Cancel;
use crate::config::Settings;
use crate::discover::Found;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Stage};
use crate::job::JobInfo;
use crate::job::{WorkDir, lock, space};
use crate::plan::{self, EncodePlan};
use crate::report::resources::Sampler;
use crate::step::Ctx;
use crate::step::size_guard::SizeGuard;
use crate::summary::{BatchSummary, FileSummary};
use crate::tools::Toolbox;
use output::{OutputSlots, same_file};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Attempts of one step (an ffmpeg run) before the file fails.
pub const MAX_ATTEMPTS: u32 = 3;

/// Everything the pipeline needs, borrowed from the command that runs it.
pub struct Pipeline<'a> {
    pub settings: &'a Settings,
    pub tools: &'a Toolbox,
    /// Hosts that share segment encodes (`--hosts`), checked at start.
    pub cluster: Option<&'a crate::encode::chunked::remote::Cluster>,
    pub events: &'a dyn EventSink,
    pub cancel: &'a Cancel,
}

/// A rip taken on for its encode (see [`Pipeline::take_on`]).
struct Taken {
    identity: JobInfo,
    analysis: Analysis,
    plan: EncodePlan,
    work: WorkDir,
    /// The job's lock and its output's, held until the rip is done with.
    locks: [lock::Lock; 2],
    at_output: output::AtOutput,
}

/// How one file ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    Encoded(FileSummary),
    /// A valid output already exists.
    Skipped(String),
    /// Another drapto is encoding it now.
    Busy(String),
}

/// How a file of the batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Encoded,
    Skipped,
    /// Another drapto is encoding it (skipped for now, not done).
    Busy,
    /// Stopped by a stop request (see [`BatchSummary::interrupted`]).
    Interrupted,
    /// `error` as the user reads it; `setup`: for a reason that points at
    /// the setup, not at the file (see [`Error::is_environmental`]);
    /// `blocked`: the output's name is taken (see [`Error::is_blocked`]).
    Failed {
        error: String,
        setup: bool,
        blocked: bool,
    },
}

impl Pipeline<'_> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { tools: self.tools, events: self.events, cancel: self.cancel }
    }

    /// Encodes every input in order; a failed file does not stop the others
    /// unless the setup keeps failing (see [`crate::breaker`]) or the run is
    /// cancelled.
    /// `not_encoded`: rips found that cannot be encoded now, and why (see
    /// [`BatchSummary::not_encoded`]).
    pub fn run_batch(&self, jobs: &[Found], output_dir: &Path, not_encoded: Vec<(PathBuf, String)>) -> BatchSummary {
        let started = Instant::now();
        let files = jobs.iter().map(|j| j.input.clone()).collect();
        self.events.emit(&Event::BatchStarted { files, output_dir: output_dir.to_path_buf() });
        let mut summary = BatchSummary { not_encoded, ..BatchSummary::default() };
        let mut breaker = Breaker::new(Duration::from_secs(self.settings.processing.breaker_reset.into()));
        for (i, job) in jobs.iter().enumerate() {
            if !self.breaker_allows(&mut breaker, jobs.len() - i) {
                summary.not_started.extend(jobs[i..].iter().map(|j| j.input.clone()));
                break;
            }
            self.run_one(job, i + 1, jobs.len(), &mut breaker, &mut summary);
        }
        summary.finish(started.elapsed().as_secs_f64());
        self.events.emit(&Event::BatchComplete { summary: summary.clone() });
        summary
    }

    /// Waits while the circuit breaker is open; false when the run was
    /// cancelled or the breaker stopped it (saying so, with the `left`
    /// files not started).
    pub fn breaker_allows(&self, breaker: &mut Breaker, left: usize) -> bool {
        let verdict = loop {
            match breaker.next(Instant::now()) {
                Verdict::Wait(d) if !self.cancel.is_cancelled() => {
                    std::thread::sleep(d.min(Duration::from_millis(500)))
                }
                v => break v,
            }
        };
        if verdict == Verdict::Stop {
            self.events.emit(&Event::Warning {
                input: None,
                message: format!(
                    "the trial file failed too; stopping the batch ({left} file(s) not started). \
                     Check the errors above: the setup, not the files, is at fault."
                ),
            });
        }
        !self.cancel.is_cancelled() && verdict != Verdict::Stop
    }

    /// Encodes `job` (file `index` of `total`), tells the user how it ended,
    /// records that in `summary` and `breaker`, and returns it.
    pub fn run_one(
        &self,
        job: &Found,
        index: usize,
        total: usize,
        breaker: &mut Breaker,
        summary: &mut BatchSummary,
    ) -> Ended {
        let input = &job.input;
        match self.encode_file(job, index, total) {
            Ok(Outcome::Encoded(s)) => {
                breaker.success();
                self.events.emit(&Event::FileComplete { summary: s.clone() });
                summary.files.push(s);
                Ended::Encoded
            }
            // A skip tries no tool: it says nothing about the setup.
            Ok(Outcome::Skipped(reason)) => {
                self.skipped(job, reason, summary);
                Ended::Skipped
            }
            // Not encoded now, nothing made: not a success for a script
            // that removes the rip after drapto (exit 1).
            Ok(Outcome::Busy(reason)) => {
                self.events.emit(&Event::FileSkipped {
                    input: input.clone(),
                    output: job.output.clone(),
                    reason: reason.clone(),
                    busy: true,
                });
                summary.not_encoded.push((input.clone(), format!("{reason}; run again once it is finished")));
                Ended::Busy
            }
            // Stopped by request: not the file's failure, nor the setup's.
            Err(e @ Error::Cancelled { .. }) => {
                let reason = format!("{e}: its finished work is kept; run the same command again to resume");
                self.events.emit(&Event::FileInterrupted { input: input.clone(), reason });
                summary.interrupted.push(input.clone());
                Ended::Interrupted
            }
            Err(e) => self.failed(input, e, (index, total), breaker, summary),
        }
    }

    /// Tells how `input` (file `index` of `total`) failed with `e`, and
    /// records it in `summary` and `breaker` (a failure that points at the
    /// setup counts towards it; the file's own fault shows the setup works).
    fn failed(
        &self,
        input: &Path,
        e: Error,
        (index, total): (usize, usize),
        breaker: &mut Breaker,
        summary: &mut BatchSummary,
    ) -> Ended {
        let setup = e.is_environmental(input);
        if setup {
            breaker.failure(Instant::now());
            if breaker.is_open() && index < total {
                self.events.emit(&Event::Warning {
                    input: None,
                    message: format!(
                        "{THRESHOLD} files in a row failed for reasons that point at the setup \
                         (tools, disk), not at the files; waiting {} s, then trying one more",
                        self.settings.processing.breaker_reset
                    ),
                });
            }
        } else {
            breaker.success();
        }
        let kept = match &e {
            Error::Validation { kept, .. } => kept.clone(),
            Error::OutputAppeared { kept, .. } => Some(kept.clone()),
            _ => None,
        };
        let error = naming(input, &e);
        let command = e.failed_command();
        self.events.emit(&Event::FileFailed { input: input.to_path_buf(), error: error.clone(), kept, command });
        summary.failed.push((input.to_path_buf(), error.clone()));
        Ended::Failed { error, setup, blocked: e.is_blocked() }
    }

    /// Encodes one rip into its output: its steps, in order.
    pub fn encode_file(&self, job: &Found, index: usize, total: usize) -> Result<Outcome> {
        let (input, started) = (job.input.as_path(), Instant::now());
        let _awake = crate::platform::KeepAwake::new();
        let sampler = Sampler::start(self.cancel);
        let slots = OutputSlots::new(&job.output, &self.settings.temp_dir());
        let output = slots.output.clone();
        self.events.emit(&Event::FileStarted { index, total, input: input.to_path_buf(), output: output.clone() });
        // (Before its output folder is made: no empty folder for it.)
        if let Some(why) = self.drapto_encode_in_library(job) {
            return Ok(Outcome::Skipped(why));
        }
        if let Some(outcome) = still_there(job, &output)? {
            return Ok(outcome);
        }
        let output_dir = job.output.parent().unwrap_or(Path::new("."));
        let Taken { identity, mut analysis, plan, work, locks: _locks, at_output } = match self.take_on(job, &slots)? {
            Ok(taken) => taken,
            Err(outcome) => return Ok(outcome),
        };
        make_room(&analysis, &work, &slots, output_dir, &self.settings.temp_dir())?;
        let earlier = work.earlier_seconds();
        let guard = self.size_guard(&analysis, &plan);
        // A rip deleted or replaced while it was encoded explains a failure
        // (a segment's decode finding no file, frames missing): that is the
        // error, not the setup, and the work done belongs to the old rip.
        // A failure after a stop was asked for is the stop's doing (a count
        // or a measurement it cut short): an interruption, resumed by the
        // next run, not a failure a watch would not try again.
        let explained = |e: Error| match (e, self.cancel.signal()) {
            (e @ Error::Cancelled { .. }, _) => e,
            (_, Some(signal)) => Error::Cancelled { signal },
            (e, None) => unchanged(input, &identity)
                .err()
                .unwrap_or_else(|| space::explain_full(e, input, &[work.root(), output_dir])),
        };
        let result = recording_time(&work, earlier, started, || self.make(&analysis, &plan, &work, &slots.partial))
            .map(|fields| {
                self.say_captions(input, &analysis.mux, &fields);
                analysis.mux = analysis.mux.with_captions(&fields);
            })
            .map_err(explained)
            .and_then(|()| unchanged(input, &identity))
            .and_then(|()| within(&guard, input, &slots.partial))
            .and_then(|()| self.accept(&analysis, &slots, at_output));
        let output_frames = match result {
            Ok(frames) => frames,
            Err(e) => {
                self.after_failure(input, &e, &identity, &work, &slots.partial);
                work.record_seconds(earlier + started.elapsed().as_secs_f64());
                return Err(e);
            }
        };
        work.remove()?;
        self.copy_sidecars(job, true);
        // The frames encoded, for the run's speed: the rip's count, else the
        // output's (mkvmerge writes it; a rip ffmpeg or HandBrake wrote has none).
        let frames = analysis.video.frame_count.or(output_frames);
        let times = Times { started, earlier };
        Ok(Outcome::Encoded(file_summary(&analysis, &output, times, sampler, frames)?))
    }

    /// Says where the captions the mux found in the pictures (`fields`)
    /// differ from the one track the `plan` made at analysis: none (data of
    /// padding alone), or CC3 as well.
    fn say_captions(&self, input: &Path, plan: &crate::analysis::mux_plan::MuxPlan, fields: &[u8]) {
        if !plan.has_captions() || fields == [1] {
            return;
        }
        let name = |f: u8| crate::analysis::mux_plan::MuxPlan::captions_name(f);
        let said = match fields {
            [] => "the closed-caption data in its pictures holds no text (padding alone): no captions track".into(),
            [2] => format!("its closed captions are on the second field alone (CC3): carried as {:?}", name(2)),
            _ => format!("closed captions on both fields (CC1 and CC3): carried as {:?} and {:?}", name(1), name(2)),
        };
        self.warn(input, said);
    }

    /// The work folder of a rip whose output is finished, when one is left
    /// (a run killed between the rename into place and the clean-up leaves
    /// one as large as the output, which would be kept as resumable) and
    /// no drapto works in it.
    fn remove_finished_work(&self, identity: &JobInfo) {
        let work = WorkDir::for_identity(&self.settings.temp_dir(), identity.clone());
        if !work.root().exists() {
            return;
        }
        if let Ok(Ok(_lock)) = lock::acquire(&work.lock_path(), "removing finished work") {
            if let Err(e) = work.remove() {
                self.warn(&identity.input, format!("the finished rip's work was not removed: {e}"));
            }
        }
    }

    /// `job` skipped for `reason`, said and counted.
    fn skipped(&self, job: &Found, reason: String, summary: &mut BatchSummary) {
        let input = job.input.clone();
        self.events.emit(&Event::FileSkipped {
            input: input.clone(),
            output: job.output.clone(),
            reason: reason.clone(),
            busy: false,
        });
        summary.skipped.push((input, reason));
    }

    /// What the failed `input` (`e`) leaves: never its half-made output at
    /// `partial`; its work, for the rerun to resume, unless a replaced rip
    /// made it useless; and where that work is, said.
    fn after_failure(&self, input: &Path, e: &Error, identity: &JobInfo, work: &WorkDir, partial: &Path) {
        let _ = std::fs::remove_file(partial);
        steps::remove_unfinished(work);
        if replaced(input, identity) {
            if let Err(r) = work.remove() {
                self.warn(input, format!("the replaced rip's work was not removed: {r}"));
            }
        } else {
            // Work a rerun of the same command would fail on again is kept
            // too (other settings may reuse it), but said to be as large.
            let kept = work.root().display();
            let what = if matches!(e, Error::Validation { .. } | Error::OutputTooLarge { .. }) {
                format!("its work is kept in {kept} for a rerun with other settings; `drapto clean --all` removes it")
            } else if matches!(e, Error::OutputAppeared { .. }) {
                format!(
                    "its finished work is kept in {kept}: move the file under the output's name away and run again to put the encode in place, or `drapto clean --all` removes it"
                )
            } else {
                format!("finished work is kept in {kept}; run the same command again to resume")
            };
            self.warn(input, what);
        }
    }

    /// Takes the rip of `job` on, up to its encode: its identity; its
    /// output skipped when finished (from its record, before any analysis,
    /// or once validated against the analysis); the locks (a rip another
    /// drapto has is busy, before any analysis); the analysis and plan;
    /// what its output may replace. `Err` says how it ended instead.
    fn take_on(&self, job: &Found, slots: &OutputSlots) -> Result<std::result::Result<Taken, Outcome>> {
        // The rip as it is before anything reads it: it must be the same
        // when its output is accepted.
        let (input, out) = (job.input.as_path(), &slots.output);
        let identity = JobInfo::of(input)?;
        self.adopt_moved_output(input, out, &job.root, &identity);
        // A finished file is known from cheap facts, before any analysis:
        // the output's record of its rip and settings, and its container;
        // so is a file drapto did not make under its name.
        if let Some(why) = self.finished_before(input, out, &identity)? {
            self.remove_finished_work(&identity);
            output::remove_stale_locks(slots);
            self.copy_sidecars(job, false);
            return Ok(Err(Outcome::Skipped(why)));
        }
        // Locked before the analysis: a rip another drapto encodes is
        // skipped at once (a watch beside it analysed it every settle time).
        let work = WorkDir::for_identity(&self.settings.temp_dir(), identity.clone());
        std::fs::create_dir_all(work.root()).map_err(Error::io("create folder", work.root()))?;
        let locks = match self.lock(&work, slots)? {
            Ok(locks) => locks,
            Err(why) => return Ok(Err(Outcome::Busy(why))),
        };
        let prepared = self.analyze_and_plan(input).and_then(|p| work.create().map(|()| p));
        let (analysis, plan) = prepared.inspect_err(|_| work.remove_if_unused())?;
        let judged = self.valid_output(input, &analysis, out, &identity);
        if let Some(why) = judged.inspect_err(|_| work.remove_if_unused())? {
            // Nothing was made for it: its work folder goes (it was kept,
            // empty, for ever).
            work.remove()?;
            self.copy_sidecars(job, false);
            return Ok(Err(Outcome::Skipped(why)));
        }
        // What the output may replace: the file judged just now, or nothing.
        let at_output = output::AtOutput::now(out);
        Ok(Ok(Taken { identity, analysis, plan, work, locks, at_output }))
    }

    /// Why `job` is not encoded now when another drapto holds its job's
    /// lock or its output's (a look, for `--dry-run`: nothing is taken).
    pub fn busy_now(&self, job: &Found) -> Option<String> {
        let identity = JobInfo::of(&job.input).ok()?;
        let work = WorkDir::for_identity(&self.settings.temp_dir(), identity);
        let slots = OutputSlots::new(&job.output, &self.settings.temp_dir());
        if lock::is_held(&work.lock_path()) {
            return Some("another drapto is encoding it".into());
        }
        [&slots.lock, &slots.local_lock]
            .iter()
            .any(|l| lock::is_held(l))
            .then(|| format!("another drapto is writing {}", job.output.display()))
    }

    /// The job's lock, then the output's: `Err` says who holds one. Taken
    /// before the look at an existing output, so that a second drapto
    /// either skips or sees the first one's finished file.
    fn lock(&self, work: &WorkDir, slots: &OutputSlots) -> Result<std::result::Result<[lock::Lock; 2], String>> {
        let input = &work.identity().input;
        let job = match lock::acquire(&work.lock_path(), &format!("encoding {}", input.display()))? {
            Ok(l) => l,
            Err(holder) => return Ok(Err(format!("another drapto is encoding it ({})", holder_of(&holder)))),
        };
        let out = slots.output.display();
        let what = format!("writing {out}");
        let output = match lock::Lock::try_acquire(&slots.lock, &what) {
            Ok(l) => Ok(l.removed_on_release()),
            Err(lock::LockError::Held(holder)) => Err(holder),
            Err(lock::LockError::Io(e)) => return Err(output::name_refused(input, e)),
            Err(lock::LockError::Unsupported(errno)) => {
                self.warn(
                    input,
                    format!(
                        "the output folder refuses file locks ({errno}): only drapto runs sharing this \
                         temporary folder know that this one writes {out}"
                    ),
                );
                lock::acquire(&slots.local_lock, &what)?
            }
        };
        if output.is_err() {
            // (The job's folder is this run's: its lock is held here.)
            work.remove_if_unused();
        }
        let holder = |h: String| format!("another drapto is writing its output ({})", holder_of(&h));
        Ok(output.map(|l| [job, l]).map_err(holder))
    }

    /// Copies the rip's sidecar files beside its output, when asked to:
    /// after an encode, and when the output is there already (a copy that
    /// failed before, a library that `--copy-sidecars` is new to). Files
    /// already there are left as they are, said once: after the encode.
    fn copy_sidecars(&self, job: &Found, encoded: bool) {
        for (failed, kept) in crate::sidecars::copy_sidecars(&job.sidecars, &job.input, &job.output) {
            if encoded || !kept {
                self.warn(&job.input, format!("sidecar file not copied: {failed}"));
            }
        }
    }

    fn warn(&self, input: &Path, message: String) {
        self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message });
    }

    /// The analysis of `input` and the plan made from it, told to the user.
    fn analyze_and_plan(&self, input: &Path) -> Result<(Analysis, EncodePlan)> {
        let analysis = self.analyze(input)?;
        let chunked = plan::chunked_available(&self.tools.caps);
        let plan = plan::plan(&analysis, self.settings, &self.tools.caps, &chunked)?;
        self.events.emit(&Event::AnalysisComplete {
            input: input.to_path_buf(),
            analysis: Box::new(analysis.clone()),
            plan: Box::new(plan.clone()),
        });
        for w in analysis.warnings.iter().chain(&plan.warnings) {
            self.warn(input, w.clone());
        }
        Ok((analysis, plan))
    }

    fn analyze(&self, input: &Path) -> Result<Analysis> {
        let t = Instant::now();
        self.events.emit(&Event::StageStarted {
            input: input.to_path_buf(),
            stage: Stage::Analysis,
            detail: String::new(),
        });
        let probes = analysis::Probes::of(self.tools);
        let a = analysis::analyze(input, probes, &analysis::AnalysisOptions::of(self.settings), self.cancel)?;
        self.events.emit(&Event::StageComplete {
            input: input.to_path_buf(),
            stage: Stage::Analysis,
            seconds: t.elapsed().as_secs_f64(),
            detail: String::new(),
        });
        Ok(a)
    }
}

/// `e` as the user reads it: naming the rip it is about, also when it is
/// about a work file, a folder or a signal (with a hundred rips, "…/job.json:
/// cannot write" or "interrupted by SIGINT" alone names none).
fn naming(input: &Path, e: &Error) -> String {
    let message = e.to_string();
    // An error about the rip starts with its path (one about a work file
    // in a folder named after the rip merely contains it).
    if message.starts_with(&input.display().to_string()) { message } else { format!("{}: {message}", input.display()) }
}

/// Ok when the finished output at `partial` is within `guard`'s limit.
fn within(guard: &SizeGuard, input: &Path, partial: &Path) -> Result<()> {
    let size = std::fs::metadata(partial).map_err(Error::io("read", partial))?.len();
    match guard.limit() {
        Some(limit) if size > limit => Err(guard.finished_error(input, size)),
        _ => Ok(()),
    }
}

/// Who holds a lock, from its note ("pid 1 on host since … (writing X)"):
/// without what it does, which the message says itself.
fn holder_of(note: &str) -> &str {
    note.rsplit_once(" (").map_or(note, |(who, _)| who)
}

/// Ok when `input` still leads to the file `identity` describes: the
/// output must be made from the file that was analysed, start to finish.
/// Looked up from the path the tools read: a link re-pointed to a new
/// version of the rip is a change. (Not by inode: on some network shares a
/// file's inode number changes while it stays the same file.)
fn unchanged(input: &Path, identity: &JobInfo) -> Result<()> {
    let problem = match JobInfo::of(input) {
        Ok(now) if &now == identity => return Ok(()),
        Ok(_) => "changed while it was being encoded; the encode was discarded",
        // A network share that went away may come back: the work is kept.
        Err(_) => "disappeared while it was being encoded; the encode was stopped",
    };
    Err(Error::Input { path: input.to_path_buf(), problem: problem.into() })
}

/// Whether `input` leads to a file other than the one `identity` describes.
fn replaced(input: &Path, identity: &JobInfo) -> bool {
    JobInfo::of(input).is_ok_and(|now| &now != identity)
}

/// When this run took a file on, and the seconds earlier runs spent on it
/// (a resumed file's time is all of its runs').
struct Times {
    started: Instant,
    earlier: f64,
}

/// The summary of a file encoded to `output` from `analysis`'s rip, begun
/// over `times`, with the resources `sampler` saw, `frames` encoded.
fn file_summary(
    analysis: &Analysis,
    output: &Path,
    times: Times,
    sampler: Sampler,
    frames: Option<u64>,
) -> Result<FileSummary> {
    let mut summary = FileSummary::new(
        analysis.input.clone(),
        output.to_path_buf(),
        analysis.size_bytes,
        std::fs::metadata(output).map_err(Error::io("read", output))?.len(),
        times.earlier + times.started.elapsed().as_secs_f64(),
        analysis.duration,
        frames,
    );
    summary.earlier_runs_seconds = times.earlier;
    summary.resources = sampler.finish();
    summary.truncated = analysis.extent.truncated.then(|| crate::summary::Truncation {
        ends_at: analysis.extent.ends_at(),
        promised: analysis.extent.promise(),
    });
    Ok(summary)
}

/// Whether rip `job` is still there to encode into `output`: `Some` when
/// it was deleted or moved from its folder since the batch was found (a
/// user thinning the queue: no failure; a folder gone with it, a share
/// unmounted, is one). Its output's folder is made.
fn still_there(job: &Found, output: &Path) -> Result<Option<Outcome>> {
    let input = job.input.as_path();
    if std::fs::symlink_metadata(input).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        && input.parent().is_some_and(Path::is_dir)
    {
        return Ok(Some(Outcome::Skipped("deleted or moved since the batch began".into())));
    }
    output::name_fits(input, output)?;
    let output_dir = job.output.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(output_dir)
        .map_err(|e| output::name_refused(input, Error::io("create output folder", output_dir)(e)))?;
    if same_file(input, output) {
        return Err(Error::OutputIsInput { path: input.to_path_buf() });
    }
    Ok(None)
}

/// Clears the way for the encode of `analysis`'s rip in `work`: a killed
/// run's hidden output (an earlier run's into another folder, which nothing
/// would name after this, and this output's own: its lock is ours now)
/// removed, where the output is muxed written down (for `drapto clean`,
/// should this run be killed before the rename), and the room checked: the
/// design's 1.5x the source for work files (less what a resumed job has
/// written already), and room for an encode (at most about half the
/// source) beside the output; both on one disk, both.
fn make_room(analysis: &Analysis, work: &WorkDir, slots: &OutputSlots, output_dir: &Path, temp: &Path) -> Result<()> {
    output::remove_abandoned_partial(work.root(), temp);
    let _ = std::fs::remove_file(&slots.partial);
    output::name_output(work.root(), &slots.output)?;
    let size = analysis.size_bytes;
    let work_needs = (size + size / 2).saturating_sub(space::used_bytes(work.root()));
    space::require_all(&[(work.root(), work_needs), (output_dir, size / 2)]).inspect_err(|_| work.remove_if_unused())
}

/// How often the time spent on a file is recorded while it is encoded.
const TIME_RECORDED_EVERY: Duration = Duration::from_secs(30);

/// Runs `make`, recording meanwhile the time spent on the file so far (the
/// `earlier` runs' and this one's since `started`) in `work` every
/// [`TIME_RECORDED_EVERY`]: a run killed outright (SIGKILL, a power cut)
/// reaches no failure path, and the resumed file's time and speed left its
/// time out.
fn recording_time<T>(work: &WorkDir, earlier: f64, started: Instant, make: impl FnOnce() -> T) -> T {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TIME_RECORDED_EVERY) {
                work.record_seconds(earlier + started.elapsed().as_secs_f64());
            }
        });
        let made = make();
        drop(stop);
        made
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_rip() {
        let input = Path::new("/lib/Heat (1995).mkv");
        let io = Error::Io {
            action: "write",
            path: "/tmp/jobs/heat-1/job.json.tmp".into(),
            source: std::io::Error::other("No space left on device"),
        };
        assert_eq!(
            naming(input, &io),
            "/lib/Heat (1995).mkv: /tmp/jobs/heat-1/job.json.tmp: cannot write: No space left on device"
        );
        let own = Error::Input { path: input.into(), problem: "is empty (0 bytes)".into() };
        assert_eq!(naming(input, &own), own.to_string(), "named once");
        assert!(naming(input, &Error::Cancelled { signal: 2 }).starts_with("/lib/Heat (1995).mkv: interrupted"));
    }
}
