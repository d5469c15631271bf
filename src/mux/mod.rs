//! The final mux, by mkvmerge: the encoded video and audio, and everything
//! else of the source exactly as the rip had it (title, track languages
//! with their IETF tags, names and flags, subtitles, attachments, every
//! chapter edition, global and per-track tags, audio delays).
//!
//! The plan it carries out is made during analysis
//! ([`crate::analysis::mux_plan`]); what a Matroska file holds and what
//! differs on purpose is [`crate::matroska`].
//!
//! - [`args`]: the mkvmerge command line of a plan.
//! - [`compare`]: validation, the output's structure against the source's.

pub mod args;
pub mod compare;

use crate::analysis::Analysis;
use crate::analysis::mux_plan::Carry;
use crate::encode::{Ctx, run_ffmpeg};
use crate::error::{Error, Result};
use crate::events::{Event, Stage};
use crate::matroska::rules;
use crate::matroska::xml::Element;
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::mkvtoolnix::Mkvtoolnix;
use args::{Made, Pieces};
use std::path::{Path, PathBuf};

/// The pieces to put together.
pub struct MuxInputs<'a> {
    pub source: &'a Path,
    pub video: PathBuf,
    /// One file per planned audio track (`analysis.audio`), in that order.
    pub audio: Vec<PathBuf>,
    /// The output's record of its source ([`crate::job::record`]).
    pub record: String,
    /// A folder for the mux's own small files (tags, chapters, clamped
    /// subtitles).
    pub scratch: PathBuf,
}

/// The `setts` bitstream filter that shortens every packet lasting past
/// `end` seconds (output clock) to end there.
pub fn clamp_durations(end: f64) -> String {
    let e = format!("{end:.3}/TB");
    format!("setts=duration='if(gt(PTS+DURATION,{e}),max(1,{e}-PTS),DURATION)'")
}

/// The ffmpeg arguments that copy subtitle stream `stream` of `source`
/// into `output` with its durations clamped to `end`.
pub fn clamped_subtitle_args(source: &Path, stream: usize, end: f64, output: &Path) -> FfmpegArgs {
    let mut a = FfmpegArgs::new();
    a.input(source);
    a.arg("-map").arg(format!("0:{stream}"));
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1", "-c", "copy", "-bsf:s"]);
    a.arg(clamp_durations(end)).extend(["-f", "matroska"]).output(output);
    a
}

/// Muxes everything into `output` as the analysis's mux plan says.
pub fn mux(ctx: &Ctx, mkv: &Mkvtoolnix, analysis: &Analysis, inputs: &MuxInputs, output: &Path) -> Result<()> {
    let plan = &analysis.mux;
    let input = inputs.source;
    let dir = &inputs.scratch;
    std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    let write = |name: &str, doc: &Element| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, doc.to_document()).map_err(Error::io("write", &p))?;
        Ok(p)
    };
    let record = write("record.xml", &record_tags(&inputs.record))?;
    let chapters = plan.source.chapters.as_ref().map(|c| write("chapters.xml", c)).transpose()?;
    let mut made = Vec::new();
    for t in plan.tracks.iter().filter(|t| t.carry != Carry::Copied) {
        let file = match t.carry {
            Carry::EncodedVideo => inputs.video.clone(),
            Carry::EncodedAudio { plan } => inputs.audio[plan].clone(),
            Carry::Clamped { stream } => {
                let out = dir.join(format!("subtitles-{}.mks", t.source_id));
                let args = clamped_subtitle_args(input, stream, analysis.duration, &out);
                run_ffmpeg(ctx, &args, input, Stage::Mux, analysis.duration)?;
                out
            }
            Carry::Copied => unreachable!("filtered out"),
        };
        let encoded = t.carry.is_encoded();
        let source_track = plan.source_track(t.source_id);
        let drop = |name: &str| rules::is_statistics_tag(name) || (encoded && rules::is_encoding_tag(name));
        let tags = match plan.source.track_tags(source_track, drop) {
            Some(doc) => Some(write(&format!("tags-{}.xml", t.source_id), &doc)?),
            None => None,
        };
        made.push(Made { source_id: t.source_id, file, tags });
    }
    let start_ms = made_tracks_offset(mkv, plan, &inputs.video, ctx.cancel).map_err(Error::process(input))?;
    let pieces = Pieces { source: input, record: &record, chapters: chapters.as_deref(), made, start_ms };
    let args = args::merge_args(plan, &pieces, output);
    let outcome = mkv
        .merge(&args, &Stage::Mux.label(), ctx.cancel, |percent| {
            ctx.events.emit(&Event::Progress {
                input: input.to_path_buf(),
                stage: Stage::Mux,
                percent,
                frame: 0,
                fps: 0.0,
                speed: 0.0,
                eta_seconds: None,
                bitrate_kbps: 0.0,
                size_bytes: 0,
                projected_bytes: None,
            })
        })
        .map_err(Error::process(input))?;
    for w in outcome.warnings {
        ctx.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: format!("mkvmerge: {w}") });
    }
    Ok(())
}

/// How far (ms) the tracks drapto made must move to stay in step with the
/// copied ones: ffmpeg wrote them on a clock starting at zero, the source's
/// may start later (a film whose every track starts at 1.4 s). Measured on
/// the video, the source's first video track against its encode; never
/// negative (mkvmerge drops what a negative move puts before zero, the
/// encode's first keyframe with it).
fn made_tracks_offset(
    mkv: &Mkvtoolnix,
    plan: &crate::analysis::mux_plan::MuxPlan,
    video: &Path,
    cancel: &crate::cancel::Cancel,
) -> std::result::Result<i64, crate::error::ProcessFailure> {
    let first_ns = |t: &crate::tools::mkvtoolnix::Track| {
        t.properties.get("minimum_timestamp").and_then(|v| v.as_i64()).unwrap_or(0)
    };
    let Some(src) = plan.tracks.iter().find(|t| t.carry == Carry::EncodedVideo) else { return Ok(0) };
    let src_ns = first_ns(plan.source_track(src.source_id));
    let made_ns = match mkv.identify(video, cancel) {
        Ok(id) => id.tracks.first().map_or(0, first_ns),
        Err(crate::tools::mkvtoolnix::IdentifyError::Run(e)) => return Err(e),
        Err(crate::tools::mkvtoolnix::IdentifyError::Unreadable(_)) => 0,
    };
    Ok(((src_ns - made_ns) as f64 / 1e6).round().max(0.0) as i64)
}

/// The global tag holding the output's record of its source.
fn record_tags(record: &str) -> Element {
    Element::node(
        "Tags",
        vec![Element::node(
            "Tag",
            vec![
                Element::node("Targets", vec![Element::leaf("TargetTypeValue", "50")]),
                Element::node(
                    "Simple",
                    vec![Element::leaf("Name", crate::job::record::TAG), Element::leaf("String", record)],
                ),
            ],
        )],
    )
}
