//! The pipeline for one file — probe → analyse → plan → encode → mux →
//! validate → report — and the batch loop around it.
//!
//! Safety rules live here: the input is only ever read; every intermediate is
//! written in the job's work folder; the output is muxed under a hidden
//! temporary name in the output folder and renamed to its final name only
//! after validation passed.

use crate::analysis::audio::AudioPlan;
use crate::analysis::{self, Analysis};
use crate::breaker::{Breaker, THRESHOLD, Verdict};
use crate::cancel::Cancel;
use crate::config::Settings;
use crate::encode::{self, Ctx};
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Stage};
use crate::job::JobInfo;
use crate::job::record::SourceRecord;
use crate::job::{WorkDir, lock, space};
use crate::matroska::structure::Structure;
use crate::mux::{self, MuxInputs};
use crate::plan::{self, EncodePlan};
use crate::summary::{BatchSummary, FileSummary};
use crate::tools::FfmpegCaps;
use crate::tools::ffprobe;
use crate::tools::ffprobe::StreamKind;
use crate::tools::mkvtoolnix::{IdentifyError, Mkvtoolnix};
use crate::validate;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Attempts of one step (an ffmpeg run) before the file fails.
pub const MAX_ATTEMPTS: u32 = 3;

/// Everything the pipeline needs, borrowed from the command that runs it.
pub struct Pipeline<'a> {
    pub settings: &'a Settings,
    pub ffmpeg: &'a Path,
    pub caps: &'a FfmpegCaps,
    pub ffprobe: &'a Path,
    pub mediainfo: Option<&'a Path>,
    pub mkvtoolnix: &'a Mkvtoolnix,
    /// Hosts that share segment encodes (`--hosts`), checked at start.
    pub cluster: Option<&'a crate::encode::chunked::remote::Cluster>,
    pub events: &'a dyn EventSink,
    pub cancel: &'a Cancel,
}

/// How one file ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    Encoded(FileSummary),
    /// A valid output already exists.
    Skipped(String),
}

/// Where a file's output goes: same file name, in `output_dir`.
pub fn output_path(input: &Path, output_dir: &Path) -> PathBuf {
    output_dir.join(input.file_name().unwrap_or_default())
}

/// The hidden name the output is muxed under before validation.
pub fn partial_path(output: &Path) -> PathBuf {
    sibling(output, ".", ".drapto-partial")
}

/// Where an output that failed validation is kept for inspection.
pub fn failed_path(output: &Path) -> PathBuf {
    sibling(output, "", ".failed")
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{prefix}{name}{suffix}"))
}

/// True when `a` and `b` are the same file on disk (paths or hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl Pipeline<'_> {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { ffmpeg: self.ffmpeg, events: self.events, cancel: self.cancel }
    }

    /// Encodes every input in order; a failed file does not stop the others
    /// unless the setup keeps failing (see [`crate::breaker`]) or the run is
    /// cancelled.
    pub fn run_batch(&self, inputs: &[PathBuf], output_dir: &Path) -> BatchSummary {
        let started = Instant::now();
        self.events.emit(&Event::BatchStarted { files: inputs.to_vec(), output_dir: output_dir.to_path_buf() });
        let mut summary = BatchSummary::default();
        let mut breaker = Breaker::new(Duration::from_secs(self.settings.processing.breaker_reset.into()));
        for (i, input) in inputs.iter().enumerate() {
            let verdict = loop {
                match breaker.next(Instant::now()) {
                    Verdict::Wait(d) if !self.cancel.is_cancelled() => {
                        std::thread::sleep(d.min(Duration::from_millis(500)));
                    }
                    v => break v,
                }
            };
            if self.cancel.is_cancelled() || verdict == Verdict::Stop {
                summary.not_started.extend(inputs[i..].iter().cloned());
                if verdict == Verdict::Stop {
                    self.events.emit(&Event::Warning {
                        input: None,
                        message: format!(
                            "the trial file failed too; stopping the batch ({} file(s) not started). \
                             Check the errors above: the setup, not the files, is at fault.",
                            inputs.len() - i
                        ),
                    });
                }
                break;
            }
            match self.encode_file(input, output_dir, i + 1, inputs.len()) {
                Ok(Outcome::Encoded(s)) => {
                    breaker.success();
                    self.events.emit(&Event::FileComplete { summary: s.clone() });
                    summary.files.push(s);
                }
                Ok(Outcome::Skipped(reason)) => {
                    // A skip tries no tool: it says nothing about the setup.
                    self.events.emit(&Event::FileSkipped {
                        input: input.clone(),
                        output: output_path(input, output_dir),
                        reason,
                    });
                    summary.skipped.push(input.clone());
                }
                Err(e) => {
                    let cancelled = matches!(e, Error::Cancelled { .. });
                    if !cancelled && e.is_environmental(input) {
                        breaker.failure(Instant::now());
                        if breaker.is_open() && i + 1 < inputs.len() {
                            self.events.emit(&Event::Warning {
                                input: None,
                                message: format!(
                                    "{THRESHOLD} files in a row failed for reasons that point at the setup \
                                     (tools, disk), not at the files; waiting {} s, then trying one more",
                                    self.settings.processing.breaker_reset
                                ),
                            });
                        }
                    } else if !cancelled {
                        // The file's own fault: the setup works.
                        breaker.success();
                    }
                    let kept = match &e {
                        Error::Validation { kept, .. } => kept.clone(),
                        _ => None,
                    };
                    self.events.emit(&Event::FileFailed { input: input.clone(), error: e.to_string(), kept });
                    summary.failed.push((input.clone(), e.to_string()));
                }
            }
        }
        summary.finish(started.elapsed().as_secs_f64());
        self.events.emit(&Event::BatchComplete { summary: summary.clone() });
        summary
    }

    /// Encodes one file into `output_dir`.
    pub fn encode_file(&self, input: &Path, output_dir: &Path, index: usize, total: usize) -> Result<Outcome> {
        let started = Instant::now();
        let sampler = crate::report::resources::Sampler::start(self.cancel);
        let output = output_path(input, output_dir);
        self.events.emit(&Event::FileStarted { index, total, input: input.to_path_buf(), output: output.clone() });
        if same_file(input, &output) {
            return Err(Error::OutputIsInput { path: input.to_path_buf() });
        }
        // A finished file is known from cheap facts, before any analysis:
        // the output's record of its rip and settings, and its container.
        if output.exists() && self.recorded_finished(&output, &JobInfo::of(input)?).is_ok() {
            return Ok(Outcome::Skipped(format!(
                "already encoded from this rip with these settings: {}",
                output.display()
            )));
        }

        let analysis = self.analyze(input)?;
        let chunked = plan::chunked_available(self.caps);
        let plan = plan::plan(&analysis, self.settings, self.caps, &chunked)?;
        self.events.emit(&Event::AnalysisComplete {
            input: input.to_path_buf(),
            analysis: Box::new(analysis.clone()),
            plan: Box::new(plan.clone()),
        });
        for w in analysis.warnings.iter().chain(&plan.warnings) {
            self.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: w.clone() });
        }

        // Locks first, then the look at the output: a second drapto either
        // waits out nothing (skips) or sees the first one's finished file.
        let work = WorkDir::for_input(&self.settings.temp_dir(), input)?;
        work.create()?;
        let _job_lock = match lock::acquire(&work.root().join("lock"), &format!("encoding {}", input.display()))? {
            Ok(l) => l,
            Err(holder) => return Ok(Outcome::Skipped(format!("another drapto is encoding it ({holder})"))),
        };
        let out_key = std::fs::canonicalize(output_dir)
            .unwrap_or_else(|_| output_dir.to_path_buf())
            .join(output.file_name().unwrap_or_default());
        let out_lock = self
            .settings
            .temp_dir()
            .join("locks")
            .join(format!("{:016x}.lock", crate::hash::fnv1a(out_key.to_string_lossy().as_bytes())));
        let _out_lock = match lock::acquire(&out_lock, &format!("writing {}", output.display()))? {
            Ok(l) => l,
            Err(holder) => {
                return Ok(Outcome::Skipped(format!("another drapto is writing {} ({holder})", output.display())));
            }
        };

        if output.exists() {
            match self.check_output(&analysis, &output) {
                Ok(()) => {
                    return Ok(Outcome::Skipped(format!("valid output already exists: {}", output.display())));
                }
                Err(reason) => self.events.emit(&Event::Warning {
                    input: Some(input.to_path_buf()),
                    message: format!("existing output {} is not valid ({reason}); encoding again", output.display()),
                }),
            }
        }

        // The design's space rule: 1.5x the source for work files; the
        // output needs room for an encode (at most about half the source).
        space::require(work.root(), analysis.size_bytes + analysis.size_bytes / 2)?;
        space::require(output_dir, analysis.size_bytes / 2)?;
        let identity = crate::job::JobInfo::of(input)?;
        let partial = partial_path(&output);
        let result = self.encode_into(&analysis, &plan, &work, &partial);
        // The input must be the file we analysed, start to finish.
        let result = result.and_then(|()| {
            if identity.is_current() {
                Ok(())
            } else {
                Err(Error::Input {
                    path: input.to_path_buf(),
                    problem: "disappeared or changed while it was being encoded; the encode was discarded".into(),
                })
            }
        });
        let result = result.and_then(|()| self.accept(&analysis, &partial, &output));
        if result.is_err() && partial.exists() {
            let _ = std::fs::remove_file(&partial);
        }
        if let Err(e) = &result {
            if !matches!(e, Error::Validation { .. }) {
                self.events.emit(&Event::Warning {
                    input: Some(input.to_path_buf()),
                    message: format!(
                        "finished work is kept in {}; run the same command again to resume",
                        work.root().display()
                    ),
                });
            }
        }
        result?;
        work.remove(self.settings.processing.keep_logs)?;

        let output_bytes = std::fs::metadata(&output).map_err(Error::io("read", &output))?.len();
        let mut summary = FileSummary::new(
            input.to_path_buf(),
            output,
            analysis.size_bytes,
            output_bytes,
            started.elapsed().as_secs_f64(),
            analysis.duration,
            analysis.video.frame_count,
        );
        summary.resources = sampler.finish();
        summary.truncated = analysis
            .extent
            .truncated
            .then(|| crate::summary::Truncation { ends_at: analysis.extent.end, promised: analysis.extent.promise() });
        Ok(Outcome::Encoded(summary))
    }

    fn analyze(&self, input: &Path) -> Result<Analysis> {
        let t = Instant::now();
        self.events.emit(&Event::StageStarted {
            input: input.to_path_buf(),
            stage: Stage::Analysis,
            detail: String::new(),
        });
        let probes = analysis::Probes {
            ffprobe: self.ffprobe,
            ffmpeg: Some(self.ffmpeg),
            mediainfo: self.mediainfo,
            mkvtoolnix: self.mkvtoolnix,
        };
        let a = analysis::analyze(input, probes, self.settings, self.cancel)?;
        self.events.emit(&Event::StageComplete {
            input: input.to_path_buf(),
            stage: Stage::Analysis,
            seconds: t.elapsed().as_secs_f64(),
            detail: String::new(),
        });
        Ok(a)
    }

    /// Video, audio and mux into `partial`.
    fn encode_into(&self, analysis: &Analysis, plan: &EncodePlan, work: &WorkDir, partial: &Path) -> Result<()> {
        let input = analysis.input.as_path();
        let ctx = self.ctx();
        let video = work.working("video.mkv");
        let stages_path = work.root().join("state").join("stages.json");
        let fingerprint = format!(
            "{:016x}",
            crate::hash::fnv1a(
                serde_json::json!({"video": plan.video, "audio": plan.audio, "chunked": plan.chunked, "drapto": env!("CARGO_PKG_VERSION")})
                    .to_string()
                    .as_bytes()
            )
        );
        let stages = std::cell::RefCell::new(
            crate::job::state::load::<crate::job::state::StagesFile>(&stages_path, &fingerprint)
                .unwrap_or_else(|_| crate::job::state::StagesFile::new(&fingerprint)),
        );
        let finished = |key: &str| -> Result<()> {
            let mut s = stages.borrow_mut();
            s.done.insert(key.to_string());
            s.updated_at = crate::job::state::now();
            crate::job::state::write_atomic(&stages_path, &*s)
        };
        let reusable = |key: &str, file: &Path, ok: &dyn Fn(&Path) -> bool| -> bool {
            let reuse = stages.borrow().done.contains(key) && ok(file);
            if reuse {
                self.events.emit(&Event::Warning {
                    input: Some(input.to_path_buf()),
                    message: format!("resuming: {key} was finished by an earlier run and is reused"),
                });
            }
            reuse
        };
        let video_ok = |f: &Path| {
            std::fs::metadata(f).is_ok_and(|m| m.len() >= validate::MIN_OUTPUT_BYTES)
                && ffprobe::video_end_time(self.ffprobe, f, analysis.video_end - 10.0, self.cancel)
                    .is_some_and(|end| (end - analysis.video_end).abs() <= validate::DURATION_TOLERANCE)
        };
        let audio_ok = |f: &Path| {
            ffprobe::probe(self.ffprobe, f, self.cancel).is_ok_and(|p| p.of_type(StreamKind::Audio).count() == 1)
        };
        // Each audio track: its file, its key in the stage record, and
        // whether an earlier run finished it.
        let tracks: Vec<(&AudioPlan, PathBuf, String)> = plan
            .audio
            .iter()
            .map(|t| (t, work.working(&format!("audio-{}.mka", t.index)), format!("audio-{}", t.index)))
            .collect();
        let video_done = reusable("video", &video, &video_ok);
        let pending: Vec<(&AudioPlan, &Path)> = tracks
            .iter()
            .filter(|(_, out, key)| !reusable(key, out, &audio_ok))
            .map(|(t, out, _)| (*t, out.as_path()))
            .collect();
        // Tracks the standard path's video encode also encoded (its first
        // attempt takes them; a retry leaves them to their own stages).
        let beside_video = std::cell::Cell::new(false);
        if video_done {
            // Nothing to do: the encoded video is there and whole.
        } else {
            match &plan.chunked {
                Some(params) => {
                    let t = Instant::now();
                    let helpers = encode::chunked::Helpers {
                        ffprobe: self.ffprobe,
                        mkvtoolnix: self.mkvtoolnix,
                        cluster: self.cluster,
                    };
                    let report = encode::chunked::encode(&ctx, helpers, analysis, &plan.video, params, work, &video)?;
                    let measured: Vec<f64> = report.segments.iter().filter_map(|s| s.measured_vmaf).collect();
                    let crfs: Vec<f64> = report.segments.iter().map(|s| s.crf).collect();
                    self.events.emit(&Event::StageComplete {
                        input: input.to_path_buf(),
                        stage: Stage::Video,
                        seconds: t.elapsed().as_secs_f64(),
                        detail: format!(
                            "{}, CRF {:.2}–{:.2}, measured VMAF {:.2}–{:.2}",
                            crate::units::count(report.segments.len(), "segment"),
                            crfs.iter().copied().fold(f64::INFINITY, f64::min),
                            crfs.iter().copied().fold(0.0, f64::max),
                            measured.iter().copied().fold(f64::INFINITY, f64::min),
                            measured.iter().copied().fold(0.0, f64::max),
                        ),
                    });
                }
                None => {
                    let mut video_plan = plan.video.clone();
                    let detail = format!(
                        "SVT-AV1 preset {} CRF {}{}",
                        plan.video.encoder.preset,
                        plan.video.crf,
                        plan.video.hwaccel.as_ref().map(|h| format!(", {h} decoding")).unwrap_or_default()
                    );
                    self.stage(input, Stage::Video, detail, |attempt| {
                        // Only the first run takes the audio: when it fails,
                        // later runs (software decoding, retries) encode the
                        // video alone, so that an audio fault cannot cost
                        // more than one video encode.
                        let audio: &[(&AudioPlan, &Path)] = if attempt == 1 { &pending } else { &[] };
                        beside_video.set(!audio.is_empty());
                        let encode = |p: &crate::plan::VideoPlan| {
                            beside_video.set(false);
                            encode::video::encode_standard(&ctx, input, &video, p, &[], analysis.duration)
                        };
                        let r =
                            encode::video::encode_standard(&ctx, input, &video, &video_plan, audio, analysis.duration);
                        match (&r, video_plan.hwaccel.take()) {
                            // Hardware decoding failed: the same encode with
                            // software decoding, every encoder setting unchanged.
                            (Err(e), Some(hw)) if e.is_retryable() => {
                                self.events.emit(&Event::Warning {
                                    input: Some(input.to_path_buf()),
                                    message: format!(
                                        "hardware decoding ({hw}) failed: {e}; falling back to software decoding"
                                    ),
                                });
                                encode(&video_plan)
                            }
                            (_, hw) => {
                                video_plan.hwaccel = hw;
                                r
                            }
                        }
                    })?
                }
            }
            finished("video")?;
        }
        let mut audio_files = Vec::new();
        for (track, out, key) in &tracks {
            let detail = format!("Opus {} ch {}k", track.channels, track.bitrate_kbps);
            if !pending.iter().any(|(t, _)| t.index == track.index) {
                // Finished by an earlier run.
            } else if beside_video.get() && audio_ok(out) {
                let stage = Stage::Audio(track.index);
                let detail = format!("{detail}, encoded beside the video");
                self.events.emit(&Event::StageStarted { input: input.to_path_buf(), stage, detail: detail.clone() });
                self.events.emit(&Event::StageComplete { input: input.to_path_buf(), stage, seconds: 0.0, detail });
                finished(key)?;
            } else {
                self.stage(input, Stage::Audio(track.index), detail, |_| {
                    encode::audio::encode_track(&ctx, input, out, track, analysis.duration)
                })?;
                finished(key)?;
            }
            audio_files.push(out.clone());
        }
        // Where the output's video will end (its clock starts at zero, and
        // so do the analysis's lengths).
        let record = SourceRecord::new(work.identity().clone(), self.settings, analysis.video_end).to_tag();
        let inputs = MuxInputs { source: input, video, audio: audio_files, record, scratch: work.working("mux") };
        self.stage(input, Stage::Mux, String::new(), |_| mux::mux(&ctx, self.mkvtoolnix, analysis, &inputs, partial))
    }

    /// Runs one step, trying again (up to [`MAX_ATTEMPTS`] in all) when it
    /// fails in a way another try may cure; the cause is logged each time.
    fn stage(&self, input: &Path, stage: Stage, detail: String, mut f: impl FnMut(u32) -> Result<()>) -> Result<()> {
        self.cancel.check()?;
        let t = Instant::now();
        self.events.emit(&Event::StageStarted { input: input.to_path_buf(), stage, detail: detail.clone() });
        let mut attempt = 1;
        loop {
            match f(attempt) {
                Ok(()) => break,
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    self.events.emit(&Event::Warning {
                        input: Some(input.to_path_buf()),
                        message: format!(
                            "{} failed (attempt {attempt}/{MAX_ATTEMPTS}): {e}; trying again",
                            stage.label()
                        ),
                    });
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        self.events.emit(&Event::StageComplete {
            input: input.to_path_buf(),
            stage,
            seconds: t.elapsed().as_secs_f64(),
            detail,
        });
        Ok(())
    }

    /// Validates `partial`; renames it to `output` when it passes, else to the
    /// `.failed` name.
    fn accept(&self, analysis: &Analysis, partial: &Path, output: &Path) -> Result<()> {
        let input = analysis.input.as_path();
        let size = std::fs::metadata(partial).map_err(Error::io("read", partial))?.len();
        let unreadable = |m: String| Error::Validation {
            path: input.to_path_buf(),
            failures: vec![format!("output unreadable: {m}")],
            kept: None,
        };
        let (probed, structure) = std::thread::scope(|s| {
            let structure = s.spawn(|| Structure::read(self.mkvtoolnix, partial, self.cancel));
            (ffprobe::probe_with_end(self.ffprobe, partial, self.cancel), structure.join().expect("structure"))
        });
        let (probe, end) = probed.map_err(|e| match e {
            ffprobe::ProbeError::Run(f) => Error::process(input)(f),
            ffprobe::ProbeError::Parse(m) => unreadable(m),
        })?;
        let structure = structure.map_err(|e| match e {
            IdentifyError::Run(f) => Error::process(input)(f),
            IdentifyError::Unreadable(m) => unreadable(m),
        })?;
        let frames = self.counted_frames(analysis, partial);
        let checks = validate::validate(analysis, &probe, &structure, size, end, frames);
        let failures = validate::failures(&checks);
        self.events.emit(&Event::ValidationComplete {
            input: input.to_path_buf(),
            passed: failures.is_empty(),
            checks,
        });
        if failures.is_empty() {
            std::fs::rename(partial, output).map_err(Error::io("rename into place", output))?;
            Ok(())
        } else {
            let kept = failed_path(output);
            std::fs::rename(partial, &kept).map_err(Error::io("rename", &kept))?;
            Err(Error::Validation { path: input.to_path_buf(), failures, kept: Some(kept) })
        }
    }

    /// The video frames of `output`, counted when validation needs them
    /// (inverse telecine changes the count; a read of every packet).
    fn counted_frames(&self, analysis: &Analysis, output: &Path) -> Option<usize> {
        analysis.interlace.decimation_cycle().and_then(|_| ffprobe::count_frames(self.ffprobe, output, self.cancel))
    }

    /// Ok when `output` records being made from `source` with these
    /// settings, and is whole (see [`validate::check_finished`]).
    fn recorded_finished(&self, output: &Path, source: &JobInfo) -> std::result::Result<(), String> {
        let (size, probe, end) = self.look_at(output)?;
        validate::check_finished(&probe, size, end, source, self.settings)
    }

    /// An existing output's size, header and video end (one ffprobe).
    fn look_at(&self, output: &Path) -> std::result::Result<(u64, ffprobe::Probe, Option<f64>), String> {
        let size = std::fs::metadata(output).map_err(|e| e.to_string())?.len();
        let (probe, end) =
            ffprobe::probe_with_end(self.ffprobe, output, self.cancel).map_err(|_| "unreadable".to_string())?;
        Ok((size, probe, end))
    }

    /// Ok when an existing output passes validation against the source.
    fn check_output(&self, analysis: &Analysis, output: &Path) -> std::result::Result<(), String> {
        let (size, probe, end) = self.look_at(output)?;
        let structure = Structure::read(self.mkvtoolnix, output, self.cancel).map_err(|e| e.to_string())?;
        let frames = self.counted_frames(analysis, output);
        let failures = validate::failures(&validate::validate(analysis, &probe, &structure, size, end, frames));
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_never_end_in_mkv() {
        let out = Path::new("/o/My Film.mkv");
        assert_eq!(partial_path(out), Path::new("/o/.My Film.mkv.drapto-partial"));
        assert_eq!(failed_path(out), Path::new("/o/My Film.mkv.failed"));
        assert_eq!(output_path(Path::new("/in/My Film.mkv"), Path::new("/o")), out);
    }
}
