//! One file's steps after analysis: the video (standard or chunked), each
//! audio track, the mux into the partial output. Each finished step is
//! recorded in the job's stages.json, so that a rerun resumes after it;
//! each is tried again when another try may cure its failure.

use super::{MAX_ATTEMPTS, Pipeline};
use crate::analysis::Analysis;
use crate::analysis::audio::AudioPlan;
use crate::encode;
use crate::error::Result;
use crate::events::{Event, Stage};
use crate::job::WorkDir;
use crate::job::record::SourceRecord;
use crate::job::state::{self, StagesFile};
use crate::mux::{self, MuxInputs};
use crate::plan::EncodePlan;
use crate::step::size_guard::SizeGuard;
use crate::tools::ffprobe::{self, StreamKind};
use crate::validate;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// stages.json: the whole-file steps of a job that are finished.
struct Stages {
    path: PathBuf,
    file: StagesFile,
}

impl Stages {
    /// The record of `work` for `plan` (another plan's is not used; how
    /// many threads encoded or which decoder read a finished step does not
    /// make another plan).
    /// Why an earlier record is not used, when there is one, is said
    /// through `warn` (a finished video encoded again without a word).
    fn open(work: &WorkDir, plan: &EncodePlan, warn: impl Fn(String)) -> Stages {
        let path = work.stages_file();
        let video = crate::plan::VideoPlan { threads: 0, hwaccel: None, ..plan.video.clone() };
        let key = serde_json::json!({"video": video, "audio": plan.audio, "chunked": plan.chunked,
            "work": state::WORK_FORMAT});
        let fingerprint = crate::hash::fingerprint(&key);
        let file = state::load::<StagesFile>(&path, &fingerprint).unwrap_or_else(|why| {
            if !matches!(why, state::LoadError::Missing) {
                warn(format!("earlier state not used ({why}); its steps are done again"));
            }
            StagesFile::new(&fingerprint)
        });
        Stages { path, file }
    }

    fn done(&self, key: &str) -> bool {
        self.file.done.contains(key)
    }

    fn finish(&mut self, key: &str) -> Result<()> {
        self.file.done.insert(key.to_string());
        self.file.updated_at = state::now();
        state::write_atomic(&self.path, &self.file)
    }
}

/// The step whose finished file `name` (in the work's `working/` folder)
/// is, if it is one.
fn step_of(name: &str) -> Option<&str> {
    match name {
        "video.mkv" => Some("video"),
        "video-hdr10plus.mkv" => Some("hdr10plus"),
        _ => name.strip_suffix(".mka").filter(|n| n.starts_with("audio-")),
    }
}

/// Removes what no rerun can use from a failed job's `working/` folder:
/// the files of steps not recorded as finished (a video stopped part way
/// is encoded again from its start) and the steps' scratch folders. Only
/// recorded steps are reused, and the chunked path's segments live apart;
/// before, a stopped encode's partial video was kept for ever as
/// resumable work.
pub(super) fn remove_unfinished(work: &WorkDir) {
    let stages = work.stages_file();
    let done = std::fs::read(&stages)
        .ok()
        .and_then(|b| serde_json::from_slice::<state::StagesFile>(&b).ok())
        .map(|f| f.done)
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(work.working_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        } else if step_of(&name).is_some_and(|step| !done.contains(step)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// One audio track's step: its plan, its file, its key in stages.json.
struct Track<'a> {
    plan: &'a AudioPlan,
    file: PathBuf,
    key: String,
}

impl Pipeline<'_> {
    /// Makes the output at `partial`: every step of `plan` not done yet,
    /// then the mux; returns the fields of the pictures whose closed
    /// captions it carries (see [`crate::mux::mux`]).
    pub(super) fn make(
        &self,
        analysis: &Analysis,
        plan: &EncodePlan,
        work: &WorkDir,
        partial: &Path,
    ) -> Result<Vec<u8>> {
        let mut stages = Stages::open(work, plan, |why| self.warn(&analysis.input, why));
        let video = work.working("video.mkv");
        let tracks: Vec<Track> = plan
            .audio
            .iter()
            .map(|t| Track {
                plan: t,
                file: work.working(&format!("audio-{}.mka", t.index)),
                key: format!("audio-{}", t.index),
            })
            .collect();
        let input = analysis.input.as_path();
        let video_done = self.reusable(&stages, input, "video", || self.whole_video(analysis, &video));
        let pending: Vec<&Track> = tracks
            .iter()
            .filter(|t| !self.reusable(&stages, input, &t.key, || self.whole_audio(analysis, t)))
            .collect();
        let guard = self.size_guard(analysis, plan);
        let mut beside = false;
        if video_done && plan.chunked.is_some() {
            encode::chunked::replay(&self.ctx(), input, work);
        }
        if !video_done {
            beside = self.video(analysis, plan, work, &video, &pending, &guard)?;
            state::sync_file(&video)?;
            stages.finish("video")?;
        }
        // After the video is recorded (a stop here costs no encode); a
        // video already held is left as it is.
        let held = encode::hold::keep_last_frame(
            self.tools,
            input,
            &video,
            analysis.video_end,
            &work.working("hold"),
            self.cancel,
        )?;
        if let Some(seconds) = held {
            tracing::info!("{}: the last frame is held for {seconds:.3} s, as in the rip", input.display());
            state::sync_file(&video)?;
        }
        for t in pending {
            self.audio(analysis, t, beside)?;
            state::sync_file(&t.file)?;
            stages.finish(&t.key)?;
        }
        let video = self.hdr10plus(analysis, work, &mut stages, video)?;
        // Where the output's video will end (its clock starts at zero, and
        // so do the analysis's lengths).
        let uid = analysis.mux.source.segment_uid();
        let mut record = SourceRecord::new(work.identity().clone(), self.settings, analysis.video_end, uid);
        record.truncated_from = analysis.extent.truncated.then(|| analysis.extent.promise());
        record.title = crate::tools::ffprobe::title(&analysis.probe);
        let record = record.to_tag();
        let audio = tracks.into_iter().map(|t| t.file).collect();
        let inputs = MuxInputs { source: input, video, audio, record, scratch: work.working("mux") };
        let ctx = self.ctx();
        self.stage(input, Stage::Mux, String::new(), |_| {
            mux::mux(&ctx, &self.tools.mkvtoolnix, analysis, &inputs, partial)
        })
    }

    /// The largest output `analysis`'s rip may have, the audio of `plan`
    /// estimated from its bitrates.
    pub(super) fn size_guard(&self, analysis: &Analysis, plan: &EncodePlan) -> SizeGuard {
        let kbps: u32 = plan.audio.iter().map(|a| a.bitrate_kbps).sum();
        SizeGuard {
            source_bytes: analysis.size_bytes,
            ratio: self.settings.processing.max_output_ratio,
            other_bytes: (f64::from(kbps) * 1000.0 / 8.0 * analysis.duration) as u64,
        }
    }

    /// The encoded video with the source's HDR10+ metadata on every frame,
    /// when the source has it (its own stage: the bitstream read once, the
    /// metadata written into the encode's temporal units); else `video`.
    fn hdr10plus(&self, analysis: &Analysis, work: &WorkDir, stages: &mut Stages, video: PathBuf) -> Result<PathBuf> {
        if analysis.hdr.hdr10_plus.is_none() {
            return Ok(video);
        }
        let (input, out) = (analysis.input.as_path(), work.working("video-hdr10plus.mkv"));
        if self.reusable(stages, input, "hdr10plus", || self.ends_with_the_source(analysis, &out)) {
            return Ok(out);
        }
        let tools = self.tools;
        let detail = "the source's SMPTE ST 2094-40 metadata, frame by frame".to_string();
        let carried = self.stage(input, Stage::Hdr10plus, detail, |_| {
            let payloads = encode::hdr10plus::source_payloads(tools, input, self.cancel)?;
            let scratch = work.working("hdr10plus");
            encode::hdr10plus::carry_into(tools, input, &video, &payloads, &out, &scratch, self.cancel)
        })?;
        tracing::info!("{}: HDR10+ carried on {carried} frame(s)", input.display());
        state::sync_file(&out)?;
        stages.finish("hdr10plus")?;
        Ok(out)
    }

    /// Whether step `key` was finished by an earlier run and its `file` is
    /// whole (`whole`), saying so when it is reused.
    fn reusable(&self, stages: &Stages, input: &Path, key: &str, whole: impl FnOnce() -> bool) -> bool {
        let reuse = stages.done(key) && whole();
        if reuse {
            self.events.emit(&Event::Warning {
                input: Some(input.to_path_buf()),
                message: format!("resuming: {key} was finished by an earlier run and is reused"),
            });
        }
        reuse
    }

    /// An encoded video that ends where the source's does, or will once
    /// its last frame is held as the rip's is (see [`encode::hold`]).
    fn whole_video(&self, analysis: &Analysis, file: &Path) -> bool {
        let end = analysis.video_end;
        self.ends_with_the_source(analysis, file)
            || encode::hold::to_hold(self.tools, &analysis.input, file, end, self.cancel).is_some()
    }

    /// A video file that ends where the source's video does.
    fn ends_with_the_source(&self, analysis: &Analysis, file: &Path) -> bool {
        let end = analysis.video_end;
        std::fs::metadata(file).is_ok_and(|m| m.len() >= validate::MIN_OUTPUT_BYTES)
            && ffprobe::video_end_time(&self.tools.ffprobe, file, end - 10.0, self.cancel)
                .is_some_and(|e| (e - end).abs() <= crate::analysis::extent::DURATION_TOLERANCE)
    }

    /// An encoded audio track that reads back and ends where its source
    /// track does (a file a power cut left short is encoded again).
    fn whole_audio(&self, analysis: &Analysis, t: &Track) -> bool {
        let read = ffprobe::probe(&self.tools.ffprobe, &t.file, self.cancel);
        if !read.is_ok_and(|p| p.of_type(StreamKind::Audio).count() == 1) {
            return false;
        }
        let Some(&Some(src)) = analysis.extent.audio_ends.get(t.plan.index) else { return true };
        let end = ffprobe::audio_end(&self.tools.ffprobe, &t.file, 0, (src - 10.0, 0.0), self.cancel);
        end.is_some_and(|e| (e - src).abs() <= crate::analysis::extent::DURATION_TOLERANCE)
    }

    /// The video stage: chunked, or standard with the `pending` audio
    /// tracks beside it on its first attempt. Returns whether they were.
    fn video(
        &self,
        analysis: &Analysis,
        plan: &EncodePlan,
        work: &WorkDir,
        out: &Path,
        pending: &[&Track],
        guard: &SizeGuard,
    ) -> Result<bool> {
        let (ctx, input) = (self.ctx(), analysis.input.as_path());
        if let Some(params) = &plan.chunked {
            let film = encode::chunked::Film { analysis, video: &plan.video, params, cluster: self.cluster, guard };
            match encode::chunked::encode(&ctx, film, work, out) {
                // The chunked path needs every frame: the standard path
                // keeps what decodes, on the source's timeline.
                Err(crate::error::Error::DamagedVideo { problem, .. }) => ctx.events.emit(&Event::Warning {
                    input: Some(input.to_path_buf()),
                    message: format!(
                        "{problem}; the chunked path needs every frame, so the video is encoded on the standard path \
                         (CRF {}), which keeps what decodes",
                        plan.video.crf
                    ),
                }),
                other => {
                    other?;
                    return Ok(false);
                }
            }
        }
        let mut video_plan = plan.video.clone();
        let said =
            |decoding: String| format!("SVT-AV1 preset {} CRF {}{decoding}", plan.video.encoder.preset, plan.video.crf);
        let hw = plan.video.hwaccel.clone();
        let detail = said(hw.as_ref().map(|h| format!(", {h} decoding")).unwrap_or_default());
        let audio: Vec<(&AudioPlan, &Path)> = pending.iter().map(|t| (t.plan, t.file.as_path())).collect();
        self.stage_told(input, Stage::Video, detail, |attempt| {
            // Only the first run takes the audio: when it fails, later runs
            // (retries) encode the video alone, so that an audio fault
            // cannot cost more than one video encode.
            let audio = if attempt == 1 { &audio[..] } else { &[] };
            let beside = encode::video::encode_with_fallback(
                &ctx,
                input,
                out,
                &mut video_plan,
                audio,
                analysis.duration,
                guard,
            )?;
            // Said as it was done: software decoding, after a fallback.
            let told = hw.as_ref().filter(|_| video_plan.hwaccel.is_none());
            let told = told.map(|h| said(format!(", software decoding ({h} failed)")));
            Ok((beside, told))
        })
    }

    /// Audio track `t`'s stage: already encoded `beside` the video (and
    /// whole), or its own encode.
    fn audio(&self, analysis: &Analysis, t: &Track, beside: bool) -> Result<()> {
        let (ctx, input) = (self.ctx(), analysis.input.as_path());
        let stage = Stage::Audio(t.plan.index);
        let detail = format!("Opus {} ch {}k", t.plan.channels, t.plan.bitrate_kbps);
        if beside && self.whole_audio(analysis, t) {
            let detail = format!("{detail}, encoded beside the video");
            self.events.emit(&Event::StageStarted { input: input.to_path_buf(), stage, detail: detail.clone() });
            self.events.emit(&Event::StageComplete { input: input.to_path_buf(), stage, seconds: 0.0, detail });
            return Ok(());
        }
        self.stage(input, stage, detail, |_| {
            encode::audio::encode_track(&ctx, input, &t.file, t.plan, analysis.duration)
        })
    }

    /// Runs one step, trying again (up to [`MAX_ATTEMPTS`] in all) when it
    /// fails in a way another try may cure; the cause is logged each time.
    pub(super) fn stage<T>(
        &self,
        input: &Path,
        stage: Stage,
        detail: String,
        mut f: impl FnMut(u32) -> Result<T>,
    ) -> Result<T> {
        self.stage_told(input, stage, detail, |attempt| f(attempt).map(|v| (v, None)))
    }

    /// [`Self::stage`], where `f` may say how the step was done in the end
    /// (its completion's detail, instead of `detail`).
    fn stage_told<T>(
        &self,
        input: &Path,
        stage: Stage,
        detail: String,
        mut f: impl FnMut(u32) -> Result<(T, Option<String>)>,
    ) -> Result<T> {
        self.cancel.check()?;
        let t = Instant::now();
        self.events.emit(&Event::StageStarted { input: input.to_path_buf(), stage, detail: detail.clone() });
        let mut attempt = 1;
        let temp_dir = self.settings.temp_dir();
        let value = loop {
            // (A full work disk is no failure to try again.)
            match f(attempt).map_err(|e| crate::job::space::explain_full(e, input, &[&temp_dir])) {
                Ok(v) => break v,
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
        };
        let (value, told) = value;
        let seconds = t.elapsed().as_secs_f64();
        let detail = told.unwrap_or(detail);
        self.events.emit(&Event::StageComplete { input: input.to_path_buf(), stage, seconds, detail });
        Ok(value)
    }
}
