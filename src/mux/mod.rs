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
//! - [`subtitles`]: the subtitle tracks the mux makes rather than copies.

pub mod args;
pub mod subtitles;

pub use subtitles::{captions_args, clamp_durations, clamped_subtitle_args};
use subtitles::{extract_captions, repositioned};

use crate::analysis::Analysis;
use crate::analysis::mux_plan::{Carry, MuxPlan, PlannedTrack};
use crate::error::ProcessFailure;
use crate::error::{Error, Result};
use crate::events::{Event, Stage};
use crate::matroska::rules;
use crate::matroska::structure::{drop_chapter_tracks, map_chapter_tracks, shift_chapter_times};
use crate::matroska::xml::Element;
use crate::step::{Ctx, run_ffmpeg};
use crate::tools::mkvtoolnix::{IdentifyError, Mkvtoolnix, Track, TrackKind};
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

/// Muxes everything into `output` as the analysis's mux plan says, with a
/// captions track for each field of the pictures that held captions;
/// returns those fields (see [`MuxPlan::with_captions`]).
pub fn mux(ctx: &Ctx, mkv: &Mkvtoolnix, analysis: &Analysis, inputs: &MuxInputs, output: &Path) -> Result<Vec<u8>> {
    let input = inputs.source;
    let dir = &inputs.scratch;
    std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    let captions = extract_captions(ctx, analysis, inputs)?;
    let fields: Vec<u8> = captions.iter().map(|(f, _)| *f).collect();
    let plan = &analysis.mux.with_captions(&fields);
    let write = |name: &str, doc: &Element| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, doc.to_document()).map_err(Error::io("write", &p))?;
        Ok(p)
    };
    // The source's global tags go with the record (given with the source,
    // an earlier drapto's record came too, and was read instead of this one).
    let globals = plan.source.global_tags(rules::is_old_making_tag);
    let global_tags = write("global-tags.xml", &self::global_tags(&inputs.record, globals))?;
    let mut made = made_files(ctx, mkv, analysis, plan, inputs, captions, &write)?;
    // The copied tracks' tags are given the same way: mkvmerge drops a
    // source tag naming a copied track and one it does not take.
    let mut copied_tags = Vec::new();
    for t in plan.tracks.iter().filter(|t| t.carry == Carry::Copied) {
        if let Some(tags) = track_tags(plan, t, &write)? {
            copied_tags.push((t.source_id, tags));
        }
    }
    let first_tracks = made_first_tracks(mkv, &made, ctx.cancel).map_err(Error::process(input))?;
    let moves = sync_ms(plan, &made, &first_tracks, analysis.probe.format.start_time.unwrap_or(0.0));
    for (m, ms) in made.iter_mut().zip(moves) {
        m.sync_ms = ms;
    }
    let chapters = match chapters_for(plan, &made, &first_tracks) {
        Some(c) => Some(write("chapters.xml", &c)?),
        None => None,
    };
    let segment_info = match segment_info(plan) {
        Some(doc) => Some(write("segment-info.xml", &doc)?),
        None => None,
    };
    let pieces = Pieces {
        source: input,
        global_tags: &global_tags,
        segment_info: segment_info.as_deref(),
        chapters: chapters.as_deref(),
        made,
        copied_tags,
    };
    let args = args::merge_args(plan, &pieces, output);
    let outcome = mkv
        .merge(&args, &Stage::Mux.label(), ctx.cancel, |percent| {
            ctx.events.emit(&Event::percent_done(input, Stage::Mux, percent))
        })
        .map_err(Error::process(input))?;
    for w in outcome.warnings {
        ctx.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: format!("mkvmerge: {w}") });
    }
    let edits = headers_mkvmerge_drops(plan);
    if !edits.is_empty() {
        mkv.edit_tracks(output, &edits, ctx.cancel).map_err(Error::process(input))?;
    }
    Ok(fields)
}

/// The source's segment info for `mkvmerge --segmentinfo`: its segment
/// UID and links to other files (ordered chapters in other files name a
/// segment by its UID: the output replaces the source, so it keeps its
/// identity), and what else its Info holds; none where it holds none of
/// these.
fn segment_info(plan: &MuxPlan) -> Option<Element> {
    let info = &plan.source.info;
    let uid = |k: &str| plan.source.id.container.properties.get(k).and_then(|v| v.as_str());
    let uids = [uid("segment_uid"), uid("previous_segment_uid"), uid("next_segment_uid")];
    (!info.is_empty() || uids.iter().any(Option::is_some)).then(|| info.segment_info_xml(uids))
}

/// The files drapto made for `plan`'s tracks that are not copied (the
/// encoded video and audio, clamped and repositioned subtitles, the
/// `captions` extracted, in their order), each with its source track's tags.
fn made_files(
    ctx: &Ctx,
    mkv: &Mkvtoolnix,
    analysis: &Analysis,
    plan: &MuxPlan,
    inputs: &MuxInputs,
    captions: Vec<(u8, PathBuf)>,
    write: &dyn Fn(&str, &Element) -> Result<PathBuf>,
) -> Result<Vec<Made>> {
    let input = inputs.source;
    let mut captions = captions.into_iter().map(|(_, file)| file);
    let mut made = Vec::new();
    for t in plan.tracks.iter().filter(|t| t.carry != Carry::Copied) {
        let (file, options) = match t.carry {
            Carry::EncodedVideo => (inputs.video.clone(), hdr10_options(&analysis.hdr)),
            Carry::EncodedAudio { plan } => (inputs.audio[plan].clone(), Vec::new()),
            Carry::Clamped { stream } => {
                let out = inputs.scratch.join(format!("subtitles-{}.mks", t.source_id));
                let end = analysis.duration + analysis.probe.format.start_time.unwrap_or(0.0);
                let args = clamped_subtitle_args(input, stream, end, &out);
                run_ffmpeg(ctx, &args, input, Stage::Mux, analysis.duration)?;
                (out, Vec::new())
            }
            Carry::Repositioned => repositioned(ctx, mkv, analysis, inputs, t.source_id)?,
            Carry::Captions => (captions.next().expect("a file for each captions track"), Vec::new()),
            Carry::Copied => unreachable!("filtered out"),
        };
        let captions = (t.carry == Carry::Captions).then(|| t.name.clone().unwrap_or_default());
        let tags = if captions.is_some() { None } else { track_tags(plan, t, write)? };
        made.push(Made { source_id: t.source_id, file, tags, sync_ms: 0, captions, options });
    }
    Ok(made)
}

/// The mkvmerge options that write the HDR10 static metadata SVT-AV1 was
/// given (the analysis's: the pictures', else the rip's container's) into
/// the video's Colour element, so that it says what the pictures do. Left
/// to ffmpeg it followed the pictures' own side data, which may say 0/0
/// where the rip's container says 1000 nits.
fn hdr10_options(hdr: &crate::analysis::hdr::HdrInfo) -> Vec<String> {
    let n = |v: f64| crate::matroska::rules::for_mkvmerge(&v.to_string());
    let xy = |(x, y): (f64, f64)| format!("{},{}", n(x), n(y));
    let mut o = Vec::new();
    if let Some(m) = &hdr.mastering_display {
        // (A display given by its luminance alone has no chromaticities to
        // write: zeros would state a gamut of nothing.)
        if [m.red, m.green, m.blue, m.white_point].iter().any(|&(x, y)| x != 0.0 || y != 0.0) {
            let rgb = format!("0:{},{},{}", xy(m.red), xy(m.green), xy(m.blue));
            o.extend(["--chromaticity-coordinates".into(), rgb]);
            o.extend(["--white-colour-coordinates".into(), format!("0:{}", xy(m.white_point))]);
        }
        o.extend(["--max-luminance".into(), format!("0:{}", n(m.max_luminance))]);
        o.extend(["--min-luminance".into(), format!("0:{}", n(m.min_luminance))]);
    }
    if let Some(c) = &hdr.content_light {
        o.extend(["--max-content-light".into(), format!("0:{}", c.max_cll)]);
        o.extend(["--max-frame-light".into(), format!("0:{}", c.max_fall)]);
    }
    o
}

/// What the output's tracks lack of their source tracks' headers after
/// mkvmerge, as mkvpropedit edits (`("track:N", "property=value")`, N the
/// output position from 1): a made track's name with spaces at its ends
/// (mkvmerge's `--track-name` trims them); a subtitle track's default
/// duration (mkvmerge drops it, even copying; its `--default-duration`
/// would retime the lines); a made subtitle track's codec name (ffmpeg's
/// clamped file and the extracted bitmaps have none).
fn headers_mkvmerge_drops(plan: &MuxPlan) -> Vec<(String, String)> {
    let mut edits = Vec::new();
    for (i, t) in plan.tracks.iter().enumerate().filter(|(_, t)| t.carry != Carry::Captions) {
        let source = plan.source_track(t.source_id);
        let made = t.carry != Carry::Copied;
        let subtitles = source.kind == TrackKind::Subtitles;
        let mut set =
            |property: &str, value: String| edits.push((format!("track:{}", i + 1), format!("{property}={value}")));
        if let Some(name) = source.text("track_name").filter(|n| made && n.trim() != *n) {
            set("name", name.to_string());
        }
        if let Some(ns) = source.properties.get("default_duration").and_then(|d| d.as_u64()).filter(|_| subtitles) {
            set("default-duration", ns.to_string());
        }
        if let Some(codec_name) = source.text("codec_name").filter(|_| made && subtitles) {
            set("codec-name", codec_name.to_string());
        }
    }
    edits
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

/// The first (only) track of each made file, as mkvmerge reads it (none
/// where it cannot: such a file fails the mux itself).
fn made_first_tracks(
    mkv: &Mkvtoolnix,
    made: &[Made],
    cancel: &crate::cancel::Cancel,
) -> std::result::Result<Vec<Option<Track>>, ProcessFailure> {
    let mut tracks = Vec::new();
    for m in made {
        tracks.push(match mkv.identify(&m.file, cancel) {
            Ok(id) => id.tracks.into_iter().next(),
            Err(IdentifyError::Run(e)) => return Err(e),
            Err(IdentifyError::Unreadable(_)) => None,
        });
    }
    Ok(tracks)
}

/// The source's chapters (none without) with each chapter's track
/// references (`ChapterTrackNumber`, a track UID) pointing at the same
/// track in the output: mkvmerge keeps the UIDs of the tracks it copies
/// from the source and from the files drapto made (`made`, whose tracks
/// are `made_tracks`), so a re-encoded track's UID is its made file's.
fn chapters_for(plan: &MuxPlan, made: &[Made], made_tracks: &[Option<Track>]) -> Option<Element> {
    let chapters = &shift_chapter_times(
        plan.source.chapters.as_ref()?,
        plan.source.timeline_shift_ns(),
        plan.source.segment_uid().as_deref(),
    );
    if !plan.source.chapters_name_tracks() {
        return Some(chapters.clone());
    }
    let chapters = &drop_chapter_tracks(chapters, &|uid| plan.leaves_out_uid(uid));
    let mut uids = BTreeMap::new();
    for (m, track) in made.iter().zip(made_tracks).filter(|(m, _)| m.captions.is_none()) {
        if let (Some(old), Some(new)) = (plan.source_track(m.source_id).uid(), track.as_ref().and_then(|t| t.uid())) {
            uids.insert(old.to_string(), new.to_string());
        }
    }
    Some(map_chapter_tracks(chapters, &|uid| uids.get(uid).cloned().unwrap_or_else(|| uid.to_string())))
}

/// How far (ms) each made track (`made`, whose tracks are `made_tracks`)
/// moves to start where its source track does, on the source's timeline as
/// mkvmerge reads it (moved later when a track starts before zero, see
/// [`crate::matroska::structure::Structure::timeline_shift_ns`]).
///
/// Each is measured on its own where mkvmerge tells both starts: ffmpeg
/// writes a track it encodes from the source on a clock starting at the
/// file's first timestamp (an audio track 200 ms before the video starts at
/// 0, the video at 200), while the chunked path's video starts at zero
/// whatever the source's did (one move for all, measured on the video, put
/// such audio 200 ms late). mkvmerge tells no start for a track with no
/// block in the first seconds it reads (a subtitle track whose first line
/// comes after the opening): such a track is on ffmpeg's clock, the
/// source's less the file's first timestamp (`file_start`, seconds, as
/// ffprobe reads it). It took the move measured on another track: a moved
/// subtitle track's (none), the chunked video's (from zero), the audio's
/// (with its encode's millisecond of rounding), and came out early or late
/// by the rip's start. Extracted captions and subtitles moved into the
/// cropped picture keep the source's times (a rip whose tracks all start at
/// 80 ms had its moved subtitles made 80 ms late, and failed validation
/// after the whole encode). Never before zero: mkvmerge drops what a move
/// puts there.
fn sync_ms(plan: &MuxPlan, made: &[Made], made_tracks: &[Option<Track>], file_start: f64) -> Vec<i64> {
    let shift = plan.source.timeline_shift_ns();
    let ms = |ns: i64| (ns as f64 / 1e6).round() as i64;
    // (`made` is in the plan's order of the tracks not copied.)
    let carries = plan.tracks.iter().filter(|t| t.carry != Carry::Copied).map(|t| t.carry);
    let measured: Vec<Option<i64>> = made
        .iter()
        .zip(made_tracks)
        .zip(carries)
        .map(|((m, t), carry)| {
            if m.options.iter().any(|o| o == "--timestamps") {
                // (Its timestamps file holds the shift.)
                return Some(0);
            }
            if matches!(carry, Carry::Captions | Carry::Repositioned | Carry::Clamped { .. }) {
                // Written on the source's clock (captions by their
                // pictures' times, moved subtitles by mkvextract, clamped
                // ones by ffmpeg with `-copyts`): only mkvmerge's shift.
                return Some(shift);
            }
            let source = plan.source_start_ns(m.source_id)?;
            Some(source + shift - t.as_ref()?.minimum_timestamp_ns()?)
        })
        .collect();
    let on_ffmpeg_clock = shift + (file_start * 1e9).round() as i64;
    made_tracks
        .iter()
        .zip(&measured)
        .map(|(track, ns)| {
            let first = track.as_ref().and_then(Track::minimum_timestamp_ns).unwrap_or(0);
            ms(ns.unwrap_or(on_ffmpeg_clock)).max(-ms(first))
        })
        .collect()
}

/// The output's global tags: the one holding its record of its source,
/// then the source's `globals`.
fn global_tags(record: &str, globals: Vec<Element>) -> Element {
    let record = Element::node(
        "Tag",
        vec![
            Element::node("Targets", vec![Element::leaf("TargetTypeValue", "50")]),
            Element::node(
                "Simple",
                vec![Element::leaf("Name", crate::matroska::rules::SOURCE_RECORD_TAG), Element::leaf("String", record)],
            ),
        ],
    );
    Element::node("Tags", std::iter::once(record).chain(globals).collect())
}
