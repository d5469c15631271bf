//! A Matroska file's structure as MKVToolNix reads it: its title, tracks
//! and their properties, attachments (`mkvmerge -J`), chapters and tags
//! (`mkvextract`, XML). The source's structure is what the mux carries; the
//! output's is compared with it ([`crate::validate::container`]).

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::matroska::info::{Cut, InfoExtras};
use crate::matroska::xml::{self, Element};
use crate::tools::mkvtoolnix::{Identification, IdentifyError, Mkvtoolnix, Track};
use std::path::Path;

/// Everything of a file that is not audio or video data.
#[derive(Debug, Clone)]
pub struct Structure {
    pub id: Identification,
    /// The `<Chapters>` element, when the file has chapters.
    pub chapters: Option<Element>,
    /// The `<Tags>` element, when the file has tags.
    pub tags: Option<Element>,
    /// Its segment info beyond what `mkvmerge -J` shows.
    pub info: InfoExtras,
    /// Where the file is cut short so that its tags, chapters or
    /// attachments are cut or gone (a rip stopped as its last bytes were
    /// written): the chapters and tags above are then what mkvextract could
    /// read of them, `None` where it could not.
    pub cut_short: Option<Cut>,
    /// What mkvextract could not read at all of a file cut short
    /// ("chapters", "tags").
    pub unreadable: Vec<&'static str>,
}

/// What a tag is about: its target type and what it targets. Track UIDs
/// are replaced by the track's position in its file, so that a source's and
/// an output's tags can be compared (a track's UID is new in every mux).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// `TargetTypeValue` (50, the default, when absent).
    pub type_value: String,
    pub target_type: Option<String>,
    /// Position of the targeted track in its file, when the tag is a
    /// track's (`None`: a global tag, or one about chapters or attachments).
    pub track: Option<usize>,
    /// The other targets (`ChapterUID`, `EditionUID`, `AttachmentUID`), as
    /// written (the mux keeps those UIDs).
    pub others: Vec<(String, String)>,
}

/// One `<Simple>` tag (with any nested ones) and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagEntry {
    pub target: Target,
    pub simple: Element,
}

impl TagEntry {
    pub fn name(&self) -> &str {
        self.simple.child_text("Name").unwrap_or("")
    }
}

impl Structure {
    /// Reads `path`'s structure (three program runs, side by side).
    pub fn read(mkv: &Mkvtoolnix, path: &Path, cancel: &Cancel) -> Result<Structure, IdentifyError> {
        let (id, chapters, tags) = std::thread::scope(|s| {
            let chapters = s.spawn(|| mkv.chapters_xml(path, cancel));
            let tags = s.spawn(|| mkv.tags_xml(path, cancel));
            let id = mkv.identify(path, cancel);
            (id, chapters.join().expect("chapters"), tags.join().expect("tags"))
        });

        let id = id?;
        // mkvextract crashes on chapters or tags cut off by the file's end:
        // a file cut short says so, not mkvextract's exception.
        let cut_short = crate::matroska::info::cut_short(path).ok().flatten();
        let mut unreadable = Vec::new();
        let mut readable = |r: Result<Option<String>, ProcessFailure>, what: &'static str| match r {
            Err(ProcessFailure::Failed(_)) if cut_short.is_some() => {
                unreadable.push(what);
                Ok(None)
            }
            r => r.map_err(IdentifyError::Run),
        };
        let (chapters, tags) = (readable(chapters, "chapters")?, readable(tags, "tags")?);
        let parse = |text: Option<String>, what: &str| -> Result<Option<Element>, IdentifyError> {
            text.map(|t| xml::parse(&t))
                .transpose()
                .map_err(|e| IdentifyError::Unreadable(format!("its {what} could not be read: {e}")))
        };
        Ok(Structure {
            id,
            chapters: parse(chapters, "chapters")?,
            tags: parse(tags, "tags")?,
            info: InfoExtras::read(path)
                .map_err(|e| IdentifyError::Unreadable(format!("its segment info could not be read: {e}")))?,
            cut_short,
            unreadable,
        })
    }

    /// The file's segment UID (hex, as mkvmerge writes it), if it has one.
    pub fn segment_uid(&self) -> Option<String> {
        self.id.container.properties.get("segment_uid").and_then(|v| v.as_str()).map(str::to_owned)
    }

    /// How far (ns) mkvmerge moves this file's timeline when it reads it:
    /// a track starting before zero (ffmpeg writes such files when told not
    /// to avoid negative timestamps) moves every track, and the chapters
    /// mkvmerge copies, by as much, so that none starts before zero.
    pub fn timeline_shift_ns(&self) -> i64 {
        let earliest = self.id.tracks.iter().filter_map(Track::minimum_timestamp_ns).min().unwrap_or(0);
        (-earliest).max(0)
    }

    /// Whether a chapter names a track (`ChapterTrackNumber`, which holds
    /// the track's UID).
    pub fn chapters_name_tracks(&self) -> bool {
        fn names(e: &Element) -> bool {
            e.name == "ChapterTrackNumber" || e.children.iter().any(names)
        }
        self.chapters.as_ref().is_some_and(names)
    }

    /// The other files this one plays with: the segments its ordered
    /// chapters play from (their `ChapterSegmentUID`s that are not its own)
    /// and the segments it is linked to (previous, next). Hex UIDs.
    pub fn other_segments(&self) -> Vec<String> {
        fn uids(e: &Element, out: &mut Vec<String>) {
            if e.name == "ChapterSegmentUID" {
                out.extend(e.text.as_deref().map(uid_hex));
            }
            e.children.iter().for_each(|c| uids(c, out));
        }
        let mut out = Vec::new();
        if let Some(c) = &self.chapters {
            uids(c, &mut out);
        }
        let own = self.segment_uid().as_deref().map(uid_hex);
        let links = ["previous_segment_uid", "next_segment_uid"].map(|k| self.id.container.properties.get(k));
        out.extend(links.into_iter().flatten().filter_map(|v| v.as_str()).map(uid_hex));
        out.retain(|u| Some(u) != own.as_ref());
        out.sort();
        out.dedup();
        out
    }

    /// Every chapter atom, nested ones included.
    pub fn chapter_count(&self) -> usize {
        fn atoms(e: &Element) -> usize {
            e.children_named("ChapterAtom").map(|a| 1 + atoms(a)).sum()
        }
        self.chapters.iter().flat_map(|c| c.children_named("EditionEntry")).map(atoms).sum()
    }

    /// Chapter editions.
    pub fn edition_count(&self) -> usize {
        self.chapters.iter().flat_map(|c| c.children_named("EditionEntry")).count()
    }

    /// The position of the track with `uid`.
    pub fn track_position(&self, uid: &str) -> Option<usize> {
        let uid: u64 = uid.trim().parse().ok()?;
        self.id.tracks.iter().position(|t| t.uid() == Some(uid))
    }

    /// Every simple tag with its target, in file order.
    pub fn tag_entries(&self) -> Vec<TagEntry> {
        let mut out = Vec::new();
        for tag in self.tags.iter().flat_map(|t| t.children_named("Tag")) {
            let targets = tag.child("Targets");
            let named = |n: &str| targets.and_then(|t| t.child_text(n)).map(str::to_string);
            let uids: Vec<&Element> = targets.map(|t| t.children.iter().collect()).unwrap_or_default();
            let all = 0..self.id.tracks.len();
            let tracks: Vec<Option<usize>> = (uids.iter().filter(|e| e.name == "TrackUID"))
                .flat_map(|e| match e.text.as_deref().map(str::trim) {
                    // TrackUID 0: every track, as the specification has it.
                    Some("0") => all.clone().map(Some).collect(),
                    uid => vec![self.track_position(uid.unwrap_or(""))],
                })
                .collect();
            let others: Vec<(String, String)> = uids
                .iter()
                .filter(|e| e.name.ends_with("UID") && e.name != "TrackUID")
                .map(|e| (e.name.clone(), e.text.clone().unwrap_or_default()))
                .collect();
            // A tag aimed only at tracks the file does not have (their
            // UIDs name none) goes nowhere: mkvmerge drops it, and it is not
            // taken for a global one.
            let mut track_targets: Vec<Option<usize>> =
                if tracks.is_empty() { vec![None] } else { tracks.into_iter().filter(Option::is_some).collect() };
            // A track named twice (by its UID and by 0, every track) has
            // the tag once.
            track_targets.sort();
            track_targets.dedup();
            for track in track_targets {
                let target = Target {
                    type_value: named("TargetTypeValue").unwrap_or_else(|| "50".into()),
                    target_type: named("TargetType"),
                    track,
                    others: others.clone(),
                };
                for simple in tag.children_named("Simple") {
                    out.push(TagEntry { target: target.clone(), simple: simple.clone() });
                }
            }
        }
        out
    }

    /// The file's global `<Tag>`s (those naming no track: about the whole
    /// film, its chapters, editions or attachments) for `mkvmerge
    /// --global-tags`, minus the simple tags `drop` rejects.
    pub fn global_tags(&self, drop: impl Fn(&str) -> bool) -> Vec<Element> {
        let mut tags = Vec::new();
        for tag in self.tags.iter().flat_map(|t| t.children_named("Tag")) {
            if tag.child("Targets").is_some_and(|t| t.children_named("TrackUID").next().is_some()) {
                continue;
            }
            let mut kept = tag.clone();
            kept.children.retain(|c| c.name != "Simple" || !drop(c.child_text("Name").unwrap_or("")));
            if kept.children_named("Simple").next().is_some() {
                tags.push(kept);
            }
        }
        tags
    }

    /// The tags of `track` for `mkvmerge --tags`: its `<Tag>`s (and those of
    /// every track: TrackUID 0, which mkvmerge drops) without the track's
    /// UID, minus the simple tags `drop` rejects. `None` when nothing is
    /// left.
    pub fn track_tags(&self, track: &Track, drop: impl Fn(&str) -> bool) -> Option<Element> {
        let uid = track.uid()?.to_string();
        let mut tags = Vec::new();
        for tag in self.tags.iter().flat_map(|t| t.children_named("Tag")) {
            let Some(targets) = tag.child("Targets") else { continue };
            let names = |u: &Element| matches!(u.text.as_deref().map(str::trim), Some(t) if t == uid || t == "0");
            if !targets.children_named("TrackUID").any(names) {
                continue;
            }
            let kept_targets: Vec<Element> =
                targets.children.iter().filter(|c| c.name != "TrackUID").cloned().collect();
            let simples: Vec<Element> =
                tag.children_named("Simple").filter(|s| !drop(s.child_text("Name").unwrap_or(""))).cloned().collect();
            if simples.is_empty() {
                continue;
            }
            let mut children = vec![Element::node("Targets", kept_targets)];
            children.extend(simples);
            tags.push(Element::node("Tag", children));
        }
        (!tags.is_empty()).then(|| Element::node("Tags", tags))
    }
}

/// `chapters` with the text of every `ChapterTrackNumber` (a track's UID)
/// replaced by `map`'s of it: the output's UID of the track, to write; the
/// track's position, to compare.
pub fn map_chapter_tracks(chapters: &Element, map: &dyn Fn(&str) -> String) -> Element {
    let mut e = chapters.clone();
    if e.name == "ChapterTrackNumber" {
        e.text = e.text.as_deref().map(|t| map(t.trim()));
    }
    e.children = chapters.children.iter().map(|c| map_chapter_tracks(c, map)).collect();
    e
}

/// `chapters` without their references to the tracks `dropped` says are
/// gone (by UID: tracks left out of the output) where the chapter names
/// other tracks too. A chapter that names only such tracks keeps them:
/// without a `ChapterTrack` it would apply to every track.
pub fn drop_chapter_tracks(chapters: &Element, dropped: &dyn Fn(&str) -> bool) -> Element {
    let names_dropped =
        |c: &Element| c.name == "ChapterTrackNumber" && c.text.as_deref().is_some_and(|t| dropped(t.trim()));
    let mut e = chapters.clone();
    if e.name == "ChapterTrack" {
        if !chapters.children.iter().all(names_dropped) {
            e.children.retain(|c| !names_dropped(c));
        }
        return e;
    }
    e.children = chapters.children.iter().map(|c| drop_chapter_tracks(c, dropped)).collect();
    e
}

/// `chapters` with every start and end `ns` later (see
/// [`Structure::timeline_shift_ns`]), written as mkvextract writes them;
/// but those of a chapter that plays another file (an ordered chapter whose
/// `ChapterSegmentUID` is not `own_uid`, this file's segment UID): its
/// times are on that file's timeline, which the mux does not move.
pub fn shift_chapter_times(chapters: &Element, ns: i64, own_uid: Option<&str>) -> Element {
    let elsewhere = chapters.child_text("ChapterSegmentUID").is_some_and(|t| own_uid.map(uid_hex) != Some(uid_hex(t)));
    if ns == 0 || (chapters.name == "ChapterAtom" && elsewhere) {
        return chapters.clone();
    }
    let mut e = chapters.clone();
    if (e.name == "ChapterTimeStart" || e.name == "ChapterTimeEnd")
        && let Some(t) = e.text.as_deref().and_then(chapter_time_ns)
    {
        e.text = Some(format_chapter_time(t + ns));
    }
    e.children = chapters.children.iter().map(|c| shift_chapter_times(c, ns, own_uid)).collect();
    e
}

/// A segment UID in one form (mkvextract writes `aa bb …`, `mkvmerge -J`
/// `aabb…`): hex digits alone, lower case.
fn uid_hex(text: &str) -> String {
    text.split_whitespace().collect::<String>().to_ascii_lowercase()
}

/// A chapter time (`HH:MM:SS.nnnnnnnnn`, or nanoseconds) in nanoseconds.
fn chapter_time_ns(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<i64>() {
        return Some(ns);
    }
    let (hms, frac) = text.split_once('.').unwrap_or((text, "0"));
    let parts: Vec<i64> = hms.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let seconds = parts.iter().fold(0, |acc, p| acc * 60 + p);
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    Some(seconds * 1_000_000_000 + digits.parse::<i64>().ok()?)
}

fn format_chapter_time(ns: i64) -> String {
    let (s, n) = (ns / 1_000_000_000, ns % 1_000_000_000);
    format!("{:02}:{:02}:{:02}.{n:09}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A source with a video, an audio and a subtitle track, a global tag
    /// and tags on the video and subtitle tracks.
    pub(crate) fn structure() -> Structure {
        let id = Identification::from_json(
            r#"{"container": {"recognized": true, "supported": true, "properties": {"title": "Heat (1995)"}},
                "tracks": [{"id": 0, "type": "video", "codec": "AVC", "properties": {"uid": 11, "language": "eng"}},
                           {"id": 1, "type": "audio", "codec": "AC-3", "properties": {"uid": 22, "language_ietf": "es-419"}},
                           {"id": 2, "type": "subtitles", "codec": "PGS", "properties": {"uid": 33}}]}"#,
        )
        .unwrap();
        let tags = xml::parse(
            "<Tags>
               <Tag><Targets><TargetTypeValue>50</TargetTypeValue></Targets>
                 <Simple><Name>TITLE</Name><String>Heat</String></Simple></Tag>
               <Tag><Targets><TrackUID>11</TrackUID></Targets>
                 <Simple><Name>MIXED_BY</Name><String>Someone</String></Simple>
                 <Simple><Name>BPS</Name><String>123</String></Simple></Tag>
               <Tag><Targets><TrackUID>33</TrackUID></Targets>
                 <Simple><Name>COMMENT</Name><String>SDH</String></Simple></Tag>
             </Tags>",
        )
        .unwrap();
        let chapters = xml::parse(
            "<Chapters><EditionEntry><ChapterAtom><ChapterTimeStart>0</ChapterTimeStart>
               <ChapterAtom><ChapterTimeStart>1</ChapterTimeStart></ChapterAtom></ChapterAtom></EditionEntry>
             <EditionEntry><ChapterAtom><ChapterTimeStart>0</ChapterTimeStart></ChapterAtom></EditionEntry></Chapters>",
        )
        .unwrap();
        Structure {
            id,
            chapters: Some(chapters),
            tags: Some(tags),
            info: InfoExtras::default(),
            cut_short: None,
            unreadable: vec![],
        }
    }

    #[test]
    fn chapter_times_move_with_the_timeline() {
        let c = xml::parse(
            "<Chapters><EditionEntry><ChapterAtom><ChapterTimeStart>00:00:59.900000000</ChapterTimeStart>\
             <ChapterTimeEnd>01:02:03.5</ChapterTimeEnd><ChapterUID>7</ChapterUID></ChapterAtom></EditionEntry></Chapters>",
        )
        .unwrap();
        let moved = shift_chapter_times(&c, 300_000_000, None);
        let atom = &moved.children[0].children[0];
        assert_eq!(atom.child_text("ChapterTimeStart"), Some("00:01:00.200000000"));
        assert_eq!(atom.child_text("ChapterTimeEnd"), Some("01:02:03.800000000"));
        assert_eq!(atom.child_text("ChapterUID"), Some("7"));
        assert_eq!(shift_chapter_times(&c, 0, None), c);
        // An ordered chapter playing another file keeps that file's times;
        // one naming this file moves with it.
        let ordered = |uid: &str| {
            xml::parse(&format!(
                "<Chapters><EditionEntry><EditionFlagOrdered>1</EditionFlagOrdered><ChapterAtom>\
                 <ChapterTimeStart>00:00:00.000000000</ChapterTimeStart><ChapterTimeEnd>00:00:05.000000000</ChapterTimeEnd>\
                 <ChapterSegmentUID format=\"hex\">{uid}</ChapterSegmentUID></ChapterAtom></EditionEntry></Chapters>"
            ))
            .unwrap()
        };
        let other = ordered("aabbccddeeff00112233445566778899");
        assert_eq!(shift_chapter_times(&other, 500_000_000, Some("375b5a1fa9cd86167162f6ad2dd69a01")), other);
        let own = shift_chapter_times(
            &ordered("37 5B 5A 1F A9 CD 86 16 71 62 F6 AD 2D D6 9A 01"),
            500_000_000,
            Some("375b5a1fa9cd86167162f6ad2dd69a01"),
        );
        assert_eq!(own.children[0].children[1].child_text("ChapterTimeStart"), Some("00:00:00.500000000"));
    }

    #[test]
    fn the_other_files_a_file_plays_with_are_its_chapters_and_links() {
        let mut s = structure();
        assert!(s.other_segments().is_empty());
        let props = &mut s.id.container.properties;
        props.insert("segment_uid".into(), "00ff".into());
        props.insert("next_segment_uid".into(), "22AA".into());
        s.chapters = Some(
            xml::parse(
                "<Chapters><EditionEntry><ChapterAtom><ChapterSegmentUID format=\"hex\">aa bb</ChapterSegmentUID></ChapterAtom>\
                 <ChapterAtom><ChapterSegmentUID format=\"hex\">00 FF</ChapterSegmentUID></ChapterAtom>\
                 <ChapterAtom><ChapterSegmentUID format=\"hex\">aabb</ChapterSegmentUID></ChapterAtom></EditionEntry></Chapters>",
            )
            .unwrap(),
        );
        assert_eq!(s.other_segments(), ["22aa", "aabb"]);
    }

    #[test]
    fn global_tags_are_those_naming_no_track() {
        let mut s = structure();
        let more = "<Tag><Targets><ChapterUID>7</ChapterUID></Targets><Simple><Name>TITLE</Name><String>Intro</String></Simple></Tag>\
                    <Tag><Simple><Name>ENCODER</Name><String>Lavf</String></Simple></Tag>";
        let more = xml::parse(&format!("<Tags>{more}</Tags>")).unwrap();
        s.tags.as_mut().unwrap().children.extend(more.children);
        let names = |tags: Vec<Element>| -> Vec<String> {
            tags.iter().flat_map(|t| t.children_named("Simple")).map(|e| e.child_text("Name").unwrap().into()).collect()
        };
        assert_eq!(names(s.global_tags(|_| false)), ["TITLE", "TITLE", "ENCODER"]);
        let kept = s.global_tags(|n| n == "ENCODER");
        assert_eq!(names(kept.clone()), ["TITLE", "TITLE"]);
        assert_eq!(kept[1].child("Targets").and_then(|t| t.child_text("ChapterUID")), Some("7"));
    }

    #[test]
    fn tags_are_flattened_with_track_positions() {
        let s = structure();
        let entries = s.tag_entries();
        let summary: Vec<(Option<usize>, &str)> = entries.iter().map(|e| (e.target.track, e.name())).collect();
        assert_eq!(summary, [(None, "TITLE"), (Some(0), "MIXED_BY"), (Some(0), "BPS"), (Some(2), "COMMENT")]);
        assert!(entries.iter().all(|e| e.target.type_value == "50"));
    }

    #[test]
    fn a_tag_aimed_at_a_track_the_file_lacks_goes_nowhere() {
        let mut s = structure();
        s.tags = Some(
            xml::parse(
                "<Tags><Tag><Targets><TrackUID>99</TrackUID></Targets>
                   <Simple><Name>COMMENT</Name><String>a track long gone</String></Simple></Tag>
                 <Tag><Targets><TrackUID>99</TrackUID><TrackUID>33</TrackUID></Targets>
                   <Simple><Name>NOTE</Name><String>x</String></Simple></Tag></Tags>",
            )
            .unwrap(),
        );
        let summary: Vec<(Option<usize>, String)> =
            s.tag_entries().iter().map(|e| (e.target.track, e.name().to_string())).collect();
        assert_eq!(summary, [(Some(2), "NOTE".to_string())], "not taken for a global tag");
    }

    #[test]
    fn a_tracks_tags_lose_its_uid_and_the_dropped_names() {
        let s = structure();
        let tags = s.track_tags(&s.id.tracks[0], |n| n == "BPS").unwrap();
        let tag = tags.child("Tag").unwrap();
        assert!(tag.child("Targets").unwrap().children.is_empty());
        let names: Vec<_> = tag.children_named("Simple").map(|s| s.child_text("Name").unwrap()).collect();
        assert_eq!(names, ["MIXED_BY"]);
        assert!(s.track_tags(&s.id.tracks[1], |_| false).is_none());
        assert!(s.track_tags(&s.id.tracks[0], |_| true).is_none());
    }

    #[test]
    fn chapters_are_counted_with_nesting_and_editions() {
        let s = structure();
        assert_eq!((s.edition_count(), s.chapter_count()), (2, 3));
    }
}
