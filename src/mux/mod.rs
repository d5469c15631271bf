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
use crate::analysis::mux_plan::{Carry, MuxPlan, PlannedTrack};
use crate::encode::{Ctx, run_ffmpeg};
use crate::error::ProcessFailure;
use crate::error::{Error, Result};
use crate::events::{Event, Stage};
use crate::matroska::rules;
use crate::matroska::structure::map_chapter_tracks;
use crate::matroska::xml::Element;
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::mkvtoolnix::{IdentifyError, Mkvtoolnix};
use args::{Made, Pieces};
use std::collections::BTreeMap;
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
        made.push(Made { source_id: t.source_id, file, tags: track_tags(plan, t, &write)? });
    }
    // The copied tracks' tags are given the same way: mkvmerge drops a
    // source tag naming a copied track and one it does not take.
    let mut copied_tags = Vec::new();
    for t in plan.tracks.iter().filter(|t| t.carry == Carry::Copied) {
        if let Some(tags) = track_tags(plan, t, &write)? {
            copied_tags.push((t.source_id, tags));
        }
    }
    let chapters = match chapters_for(mkv, plan, &made, ctx.cancel).map_err(Error::process(input))? {
        Some(c) => Some(write("chapters.xml", &c)?),
        None => None,
    };
    let start_ms = made_tracks_offset(mkv, plan, &inputs.video, ctx.cancel).map_err(Error::process(input))?;
    let pieces = Pieces { source: input, record: &record, chapters: chapters.as_deref(), made, copied_tags, start_ms };
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

/// Planned track `t`'s tags from its source track, written for `--tags`
/// (none when it has none): without statistics, and without the old
/// encoder's tags on a re-encoded track.
fn track_tags(
    plan: &MuxPlan,
    t: &PlannedTrack,
    write: &dyn Fn(&str, &Element) -> Result<PathBuf>,
) -> Result<Option<PathBuf>> {
    let encoded = t.carry.is_encoded();
    let drop = |name: &str| rules::is_statistics_tag(name) || (encoded && rules::is_encoding_tag(name));
    match plan.source.track_tags(plan.source_track(t.source_id), drop) {
        Some(doc) => Ok(Some(write(&format!("tags-{}.xml", t.source_id), &doc)?)),
        None => Ok(None),
    }
}

/// The source's chapters (none without) with each chapter's track
/// references (`ChapterTrackNumber`, a track UID) pointing at the same
/// track in the output: mkvmerge keeps the UIDs of the tracks it copies
/// from the source and from the files drapto made (`made`, read here), so
/// a re-encoded track's UID is its made file's.
fn chapters_for(
    mkv: &Mkvtoolnix,
    plan: &MuxPlan,
    made: &[Made],
    cancel: &crate::cancel::Cancel,
) -> std::result::Result<Option<Element>, ProcessFailure> {
    let Some(chapters) = &plan.source.chapters else { return Ok(None) };
    if !plan.source.chapters_name_tracks() {
        return Ok(Some(chapters.clone()));
    }
    let mut uids = BTreeMap::new();
    for m in made {
        // (A made file mkvmerge cannot read fails the mux itself.)
        let id = match mkv.identify(&m.file, cancel) {
            Ok(id) => id,
            Err(IdentifyError::Run(e)) => return Err(e),
            Err(IdentifyError::Unreadable(_)) => continue,
        };
        if let (Some(old), Some(new)) = (plan.source_track(m.source_id).uid(), id.tracks.first().and_then(|t| t.uid()))
        {
            uids.insert(old.to_string(), new.to_string());
        }
    }
    Ok(Some(map_chapter_tracks(chapters, &|uid| uids.get(uid).cloned().unwrap_or_else(|| uid.to_string()))))
}

/// How far (ms) the tracks drapto made must move to stay in step with the
/// copied ones: ffmpeg wrote them on a clock starting at zero, the source's
/// may start later (a film whose every track starts at 1.4 s). Measured on
/// the video, the source's first video track against its encode; never
/// negative (mkvmerge drops what a negative move puts before zero, the
/// encode's first keyframe with it).
fn made_tracks_offset(
    mkv: &Mkvtoolnix,
    plan: &MuxPlan,
    video: &Path,
    cancel: &crate::cancel::Cancel,
) -> std::result::Result<i64, ProcessFailure> {
    let first_ns = |t: &crate::tools::mkvtoolnix::Track| {
        t.properties.get("minimum_timestamp").and_then(|v| v.as_i64()).unwrap_or(0)
    };
    let Some(src) = plan.tracks.iter().find(|t| t.carry == Carry::EncodedVideo) else { return Ok(0) };
    let src_ns = first_ns(plan.source_track(src.source_id));
    let made_ns = match mkv.identify(video, cancel) {
        Ok(id) => id.tracks.first().map_or(0, first_ns),
        Err(IdentifyError::Run(e)) => return Err(e),
        Err(IdentifyError::Unreadable(_)) => 0,
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
