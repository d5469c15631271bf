//! The mkvmerge command line of the final mux: the source first (its
//! title, attachments and the tracks copied as they are), then
//! one file per track drapto made (the encoded video, each encoded audio
//! track, each clamped subtitle), each given its source track's identity
//! and tags, all in the source's track order.

use crate::analysis::mux_plan::{Carry, MuxPlan};
use crate::matroska::rules;
use crate::tools::mkvtoolnix::TrackKind;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A track drapto made, in a file of its own.
#[derive(Debug, Clone)]
pub struct Made {
    /// The source track it replaces.
    pub source_id: u32,
    pub file: PathBuf,
    /// Its tags, from the source track, for `--tags`.
    pub tags: Option<PathBuf>,
    /// How far (ms) it moves to start where its source track does.
    pub sync_ms: i64,
    /// The closed captions taken out of the source's video (its
    /// `source_id`), with their track's name: named and flagged as
    /// captions, not as their source track.
    pub captions: Option<String>,
    /// More mkvmerge options for it (the video's HDR10 static metadata).
    pub options: Vec<String>,
}

/// The files of one mux.
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    pub source: &'a Path,
    /// The output's global tags: its record of its source, and the
    /// source's own global tags (see [`crate::mux`]).
    pub global_tags: &'a Path,
    /// The source's segment info as XML for `--segmentinfo` (its UIDs and
    /// what else its Info holds, see [`crate::matroska::info`]).
    pub segment_info: Option<&'a Path>,
    /// The source's chapters as XML (read through XML, mkvmerge keeps
    /// their UIDs, which tags may name).
    pub chapters: Option<&'a Path>,
    /// In the plan's order.
    pub made: Vec<Made>,
    /// The tags of the tracks copied from the source (source track ID,
    /// `--tags` file), given like the made tracks' (the source's own track
    /// tags are not read).
    pub copied_tags: Vec<(u32, PathBuf)>,
}

/// mkvmerge's arguments (after `--gui-mode`) that write `output`.
pub fn merge_args(plan: &MuxPlan, pieces: &Pieces, output: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-o".into(), crate::tools::path_arg(output)];
    a.extend(["--global-tags".into(), pieces.global_tags.into()]);
    if let Some(info) = pieces.segment_info {
        a.extend(["--segmentinfo".into(), info.into()]);
    }
    if let Some(c) = pieces.chapters {
        a.extend(["--chapters".into(), c.into()]);
    }
    a.extend(source_args(plan, pieces));
    for made in &pieces.made {
        a.extend(made_track_args(plan, made));
    }
    a.extend(["--track-order".into(), track_order(plan).into()]);
    a
}

/// The source as an input: everything but its video and audio, its tags
/// (given on their own, see [`Pieces`]) and the
/// subtitles drapto remakes; the copied tracks with their compression and
/// their tags as given (a source tag naming a copied track and one that is
/// not copied would be dropped by mkvmerge).
fn source_args(plan: &MuxPlan, pieces: &Pieces) -> Vec<OsString> {
    let mut a: Vec<OsString> =
        ["--no-video", "--no-audio", "--no-chapters", "--no-track-tags", "--no-global-tags"].map(OsString::from).into();
    for t in plan.tracks.iter().filter(|t| t.carry == Carry::Copied) {
        a.extend(compression_args(plan, t.source_id, t.source_id));
    }
    for (id, tags) in &pieces.copied_tags {
        a.extend(tags_args(*id, tags));
    }
    let copied_subs: Vec<String> = plan
        .tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Subtitles && t.carry == Carry::Copied)
        .map(|t| t.source_id.to_string())
        .collect();
    if plan.source.id.of_kind(TrackKind::Subtitles).count() != copied_subs.len() {
        if copied_subs.is_empty() {
            a.push("--no-subtitles".into());
        } else {
            a.extend(["--subtitle-tracks".into(), copied_subs.join(",").into()]);
        }
    }
    a.push(crate::tools::path_arg(pieces.source));
    a
}

/// The `--compression` option that keeps source track `source_id`'s
/// content compression for track `tid` of the next file (none when the
/// source's is left to mkvmerge, see [`rules::compression`]).
fn compression_args(plan: &MuxPlan, source_id: u32, tid: u32) -> Vec<OsString> {
    match rules::compression(&plan.source_track(source_id).properties) {
        Some(method) => vec!["--compression".into(), format!("{tid}:{method}").into()],
        None => vec![],
    }
}

/// `--tags TID:FILE`: the tags in `file` for track `tid` of the next file.
fn tags_args(tid: u32, file: &Path) -> [OsString; 2] {
    let mut t = OsString::from(format!("{tid}:"));
    t.push(file);
    ["--tags".into(), t]
}

/// mkvmerge's `--track-order`: the plan's order, copied tracks from the
/// source (file 0), each made track from its own file (1, 2, … in order).
fn track_order(plan: &MuxPlan) -> String {
    let mut next_file = 0;
    let order: Vec<String> = plan
        .tracks
        .iter()
        .map(|t| {
            if t.carry == Carry::Copied {
                format!("0:{}", t.source_id)
            } else {
                next_file += 1;
                format!("{next_file}:0")
            }
        })
        .collect();
    order.join(",")
}

/// The options and file of one track drapto made: nothing but the track
/// itself from its file, with its source track's identity and tags.
fn made_track_args(plan: &MuxPlan, made: &Made) -> Vec<OsString> {
    let source = plan.source_track(made.source_id);
    let mut a: Vec<String> =
        ["--no-global-tags", "--no-chapters", "--no-attachments", "--no-track-tags"].map(String::from).to_vec();
    if let Some(lang) = rules::language(&source.properties) {
        a.extend(["--language".into(), format!("0:{lang}")]);
    }
    if let Some(name) = &made.captions {
        let name = format!("0:{name}");
        a.extend(
            ["--track-name", &name, "--hearing-impaired-flag", "0:1", "--default-track-flag", "0:0"].map(String::from),
        );
    } else {
        for (property, option) in rules::IDENTITY {
            match source.properties.get(*property) {
                Some(serde_json::Value::String(s)) => a.extend([option.to_string(), format!("0:{s}")]),
                Some(serde_json::Value::Bool(b)) => a.extend([option.to_string(), format!("0:{}", u8::from(*b))]),
                _ => {}
            }
        }
    }
    a.extend(made.options.iter().cloned());
    if made.sync_ms != 0 {
        a.extend(["--sync".into(), format!("0:{}", made.sync_ms)]);
    }
    let mut out: Vec<OsString> = a.into_iter().map(OsString::from).collect();
    if source.kind == TrackKind::Subtitles {
        out.extend(compression_args(plan, made.source_id, 0));
    }
    if let Some(tags) = &made.tags {
        out.extend(tags_args(0, tags));
    }
    out.push(crate::tools::path_arg(&made.file));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(clamped: &[usize]) -> MuxPlan {
        crate::analysis::mux_plan::tests::plan_of_structure(6, clamped)
    }

    fn text(a: &[OsString]) -> String {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_source_gives_what_is_copied_and_the_made_tracks_their_identity() {
        let plan = plan(&[]);
        let made = vec![
            Made {
                source_id: 0,
                file: "/w/video.mkv".into(),
                tags: Some("/w/tags-0.xml".into()),
                sync_ms: 0,
                captions: None,
                options: vec!["--max-content-light".into(), "0:1000".into()],
            },
            Made {
                source_id: 1,
                file: "/w/audio-0.mka".into(),
                tags: None,
                sync_ms: 0,
                captions: None,
                options: vec![],
            },
        ];
        let pieces = Pieces {
            source: Path::new("/r/film.mkv"),
            global_tags: Path::new("/w/global-tags.xml"),
            segment_info: None,
            chapters: Some(Path::new("/w/chapters.xml")),
            made,
            copied_tags: vec![(2, "/w/tags-2.xml".into())],
        };
        let a = text(&merge_args(&plan, &pieces, Path::new("/o/.film.mkv.drapto-partial")));
        assert!(
            a.starts_with("-o /o/.film.mkv.drapto-partial --global-tags /w/global-tags.xml --chapters /w/chapters.xml"),
            "{a}"
        );
        // The copied subtitles keep their compression (none) and their tags.
        assert!(
            a.contains(
                "--no-video --no-audio --no-chapters --no-track-tags --no-global-tags --compression 2:none --tags 2:/w/tags-2.xml /r/film.mkv"
            ),
            "{a}"
        );
        assert!(!a.contains("--subtitle-tracks"), "every subtitle is copied: {a}");
        assert!(a.contains("--language 0:eng --max-content-light 0:1000 --tags 0:/w/tags-0.xml /w/video.mkv"), "{a}");
        assert!(a.contains("--language 0:es-419 /w/audio-0.mka"), "{a}");
        assert!(a.ends_with("--track-order 1:0,2:0,0:2"), "{a}");
        assert!(!a.contains("--sync"));
    }

    #[test]
    fn a_clamped_subtitle_comes_from_its_own_file_in_its_place() {
        let plan = plan(&[2]);
        let made = vec![
            Made {
                source_id: 0,
                file: "/w/video.mkv".into(),
                tags: None,
                sync_ms: 1500,
                captions: None,
                options: vec![],
            },
            Made {
                source_id: 1,
                file: "/w/audio-0.mka".into(),
                tags: None,
                sync_ms: 0,
                captions: None,
                options: vec![],
            },
            Made {
                source_id: 2,
                file: "/w/sub-2.mks".into(),
                tags: None,
                sync_ms: 1500,
                captions: None,
                options: vec![],
            },
        ];
        let pieces = Pieces {
            source: Path::new("/r/film.mkv"),
            global_tags: Path::new("/w/g.xml"),
            segment_info: None,
            chapters: None,
            made,
            copied_tags: vec![],
        };
        let a = text(&merge_args(&plan, &pieces, Path::new("/o/x")));
        assert!(a.contains("--no-subtitles /r/film.mkv"), "{a}");
        assert!(a.contains("--sync 0:1500 --compression 0:none /w/sub-2.mks"), "{a}");
        assert!(a.contains("--language 0:es-419 /w/audio-0.mka"), "each made track moves by its own: {a}");
        assert!(a.ends_with("--track-order 1:0,2:0,3:0"), "{a}");
    }
}
