//! Validation of what the mux carried: the output's structure compared with
//! the source's, through the plan, area by area (title, tracks,
//! attachments, chapters, tags). Every difference is named; the ones drapto
//! makes on purpose are in [`crate::matroska::rules`] and nowhere else.

use crate::analysis::mux_plan::{Carry, MuxPlan, PlannedTrack};
use crate::events::Check;
use crate::matroska::rules;
use crate::matroska::structure::{Structure, TagEntry, drop_chapter_tracks, map_chapter_tracks, shift_chapter_times};
use crate::matroska::xml::Element;
use crate::tools::mkvtoolnix::{Track, TrackKind};
use serde_json::Value;

/// The checks whose differences are what a header editor (mkvpropedit,
/// MKVToolNix's header editor) changes in place: the title, the tracks'
/// names, languages and flags, chapters, tags. An output that differs from
/// its rip only in these was edited after drapto made it, most likely.
pub const EDITABLE: &[&str] = &["container", "track headers", "chapters", "tags"];

/// One check per area, each listing its differences.
pub fn checks(plan: &MuxPlan, output: &Structure) -> Vec<Check> {
    let (tracks, headers) = tracks(plan, output);
    let areas: [(&str, Vec<String>, String); 6] = [
        ("container", container(plan, output), format!("title {:?}", plan.title.as_deref().unwrap_or(""))),
        ("tracks", tracks, format!("{} track(s) as planned", plan.tracks.len())),
        ("track headers", headers, "names, languages and flags identical".into()),
        ("attachments", attachments(plan, output), format!("{} identical", plan.attachments.len())),
        (
            "chapters",
            chapters(plan, output),
            format!("{} edition(s), {} chapter(s) identical", plan.chapter_editions, plan.chapters),
        ),
        (
            "tags",
            tags(plan, output),
            format!("{} global, {} track tag(s) identical", plan.global_tags, plan.track_tags),
        ),
    ];
    areas
        .into_iter()
        .map(|(name, diffs, same)| Check {
            name: name.into(),
            passed: diffs.is_empty(),
            detail: if diffs.is_empty() { same } else { diffs.join("; ") },
        })
        .collect()
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    }
}

fn container(plan: &MuxPlan, output: &Structure) -> Vec<String> {
    let (src, out) = (&plan.source.id.container.properties, &output.id.container.properties);
    let mut d: Vec<String> = rules::CONTAINER_CARRIED
        .iter()
        .copied()
        .filter(|k| src.get(*k) != out.get(*k))
        // A source without a segment UID (a WebM, ffmpeg's bit-exact
        // output) has no identity to keep, and mkvmerge writes every file
        // one of its own: every such rip failed validation after its whole
        // encode, on every run.
        .filter(|k| !(*k == "segment_uid" && src.get(*k).is_none()))
        .map(|k| format!("{k} {} became {}", show(src.get(k)), show(out.get(k))))
        .collect();
    d.extend(plan.source.info.differences(&output.info));
    d
}

/// The differences of the output's tracks from the plan: in what they are
/// (kinds, codecs' headers, timing), and in their headers (names,
/// languages, flags: [`rules::is_editable`]).
fn tracks(plan: &MuxPlan, output: &Structure) -> (Vec<String>, Vec<String>) {
    let out = &output.id.tracks;
    if out.len() != plan.tracks.len() {
        let kinds = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
        let count = vec![format!(
            "{} track(s) ({}) where {} were planned ({})",
            out.len(),
            kinds(&mut out.iter().map(|t| t.kind.name())),
            plan.tracks.len(),
            kinds(&mut plan.tracks.iter().map(|t| t.kind.name()))
        )];
        return (count, vec![]);
    }
    let shift = plan.source.timeline_shift_ns();
    let (mut d, mut headers) = (Vec::new(), Vec::new());
    for (n, (planned, o)) in plan.tracks.iter().zip(out).enumerate() {
        if planned.carry == Carry::Captions {
            // Not subtitles: wrong; so named and flagged or not: a header.
            let list = if o.kind == TrackKind::Subtitles { &mut headers } else { &mut d };
            list.extend(captions(o, planned).map(|p| format!("track {} (closed captions): {p}", n + 1)));
            continue;
        }
        let s = plan.source_track(planned.source_id);
        let name = format!("track {} ({})", n + 1, s.kind.name());
        if s.kind != o.kind {
            d.push(format!("{name} became a {} track", o.kind.name()));
            continue;
        }
        for (property, difference) in track_properties(s, o, planned.carry, shift) {
            let list = if rules::is_editable(property) { &mut headers } else { &mut d };
            list.push(format!("{name}: {difference}"));
        }
    }
    d.extend(audio_delays(plan, output));
    (d, headers)
}

/// What is wrong with output track `o` as the closed captions taken out of
/// the video (`planned`): a text subtitle track, so named and flagged.
fn captions(o: &Track, planned: &PlannedTrack) -> Option<String> {
    let name = o.text("track_name");
    let fine = o.kind == TrackKind::Subtitles
        && name == planned.name.as_deref()
        && o.flag("flag_hearing_impaired") == Some(true);
    let named = name.map_or("without a name".to_string(), |n| format!("named \"{n}\""));
    (!fine).then(|| format!("a {} track {named}, not the captions' subtitles", o.kind.name()))
}

/// The differences between a source track and its output track, whose
/// timeline mkvmerge moved `shift_ns` later (see
/// [`crate::matroska::structure::Structure::timeline_shift_ns`]), each with
/// the property it is in.
fn track_properties<'a>(s: &'a Track, o: &'a Track, carry: Carry, shift_ns: i64) -> Vec<(&'a str, String)> {
    let keys: std::collections::BTreeSet<&String> = s.properties.keys().chain(o.properties.keys()).collect();
    let mut d = Vec::new();
    for key in keys {
        let k = key.as_str();
        let compared = if carry.is_encoded() {
            rules::LANGUAGE.contains(&k) || rules::IDENTITY.iter().any(|(p, _)| *p == k)
        } else if carry == Carry::Repositioned && k.starts_with("codec_private") {
            // A VobSub's canvas size, given the cropped picture's.
            false
        } else if carry == Carry::Repositioned && k == "default_duration" && !s.properties.contains_key(k) {
            // A script timed from the source's blocks: mkvmerge gives such
            // a track a default duration, and leaves it out of the blocks
            // that last as long (each lasts as its script line says, in
            // hundredths of a second).
            false
        } else {
            !rules::is_new_in_every_mux(k) && k != "minimum_timestamp"
        };
        // mkvmerge writes the IETF form of a legacy language, and the
        // legacy form of a language the source gave only in IETF form.
        let ietf_only = s.properties.get("language_ietf").is_some_and(|l| o.properties.get("language_ietf") == Some(l));
        let added = (k == "language_ietf" && !s.properties.contains_key(k)) || (k == "language" && ietf_only);
        if compared && !added && s.properties.get(k) != o.properties.get(k) {
            d.push((k, format!("{k} {} became {}", show(s.properties.get(k)), show(o.properties.get(k)))));
        }
    }
    let expected = s.minimum_timestamp_ns().map(|ns| ns + shift_ns);
    // Within a millisecond: mkvmerge writes the output at a 1 ms timestamp
    // scale, and a rip at another scale has starts between (500.41 ms).
    let moved = match (expected, o.minimum_timestamp_ns()) {
        (Some(a), Some(b)) => (a - b).abs() > 1_000_000,
        (a, b) => a != b,
    };
    if !carry.is_encoded() && moved {
        let ns = |v: Option<i64>| v.map_or("none".into(), |n| n.to_string());
        d.push((
            "minimum_timestamp",
            format!("starts at {} ns instead of {} ns", ns(o.minimum_timestamp_ns()), ns(expected)),
        ));
    }
    d
}

/// Each re-encoded audio track starts where its source did, relative to
/// the video (its delay), within [`rules::AUDIO_DELAY_TOLERANCE`].
fn audio_delays(plan: &MuxPlan, output: &Structure) -> Vec<String> {
    let start = |t: &Track| t.minimum_timestamp_ns().map(|ns| ns as f64 / 1e9);
    let pairs: Vec<(&crate::analysis::mux_plan::PlannedTrack, &Track)> =
        plan.tracks.iter().zip(&output.id.tracks).collect();
    let (src_video, out_video) = pairs
        .iter()
        .find(|(p, _)| p.carry == Carry::EncodedVideo)
        .map(|(p, o)| {
            let source = plan.source_start_ns(p.source_id).map(|ns| ns as f64 / 1e9);
            (source.unwrap_or(0.0), start(o).unwrap_or(0.0))
        })
        .unwrap_or((0.0, 0.0));
    let mut d = Vec::new();
    for (n, (p, o)) in pairs.iter().enumerate() {
        if !matches!(p.carry, Carry::EncodedAudio { .. }) {
            continue;
        }
        let source = plan.source_start_ns(p.source_id).map(|ns| ns as f64 / 1e9);
        let (Some(s), Some(o)) = (source, start(o)) else { continue };
        let (was, is) = (s - src_video, o - out_video);
        if (was - is).abs() > rules::AUDIO_DELAY_TOLERANCE {
            d.push(format!("track {} (audio): its delay {was:.3} s became {is:.3} s", n + 1));
        }
    }
    d
}

fn attachments(plan: &MuxPlan, output: &Structure) -> Vec<String> {
    let key = |a: &crate::tools::mkvtoolnix::Attachment| {
        format!(
            "{:?} ({}, {} bytes{}{})",
            a.file_name,
            a.content_type.as_deref().unwrap_or("no type"),
            a.size,
            a.description.as_deref().map(|d| format!(", {d:?}")).unwrap_or_default(),
            a.properties.get("uid").map(|u| format!(", UID {u}")).unwrap_or_default()
        )
    };
    let src: Vec<String> = plan.source.id.attachments.iter().map(key).collect();
    let out: Vec<String> = output.id.attachments.iter().map(key).collect();
    multiset_diff(&src, &out, "attachment")
}

/// What `a` has that `b` lacks ("lost …") and the other way ("added …").
fn multiset_diff(src: &[String], out: &[String], what: &str) -> Vec<String> {
    let mut rest: Vec<&String> = out.iter().collect();
    let mut d = Vec::new();
    for s in src {
        match rest.iter().position(|o| *o == s) {
            Some(i) => {
                rest.remove(i);
            }
            None => d.push(format!("lost {what} {s}")),
        }
    }
    d.extend(rest.into_iter().map(|o| format!("added {what} {o}")));
    d
}

/// The position in the source of the output's track at `pos` (the plan
/// orders the output's tracks).
fn source_position(plan: &MuxPlan, pos: usize) -> Option<usize> {
    let planned = plan.tracks.get(pos)?;
    plan.source.id.tracks.iter().position(|t| t.id == planned.source_id)
}

/// The chapters compared, their track references (track UIDs, new for a
/// re-encoded track) as the tracks' positions in the source.
fn chapters(plan: &MuxPlan, output: &Structure) -> Vec<String> {
    let source = &plan.source;
    match (&source.chapters, &output.chapters) {
        (None, None) => vec![],
        (Some(_), None) => vec!["the chapters were lost".into()],
        (None, Some(_)) => vec!["chapters appeared that the source does not have".into()],
        (Some(s), Some(o)) => {
            let track = |pos: Option<usize>, uid: &str| match pos {
                Some(p) => format!("track {}", p + 1),
                None => format!("UID {uid}, no track"),
            };
            let s = shift_chapter_times(s, source.timeline_shift_ns(), source.segment_uid().as_deref());
            let s = drop_chapter_tracks(&s, &|uid| plan.leaves_out_uid(uid));
            let s = map_chapter_tracks(&s, &|uid| track(source.track_position(uid), uid));
            let in_source = |pos| source_position(plan, pos);
            // A left-out track a chapter still names (it names no other)
            // is the source's track.
            let position = |uid: &str| {
                let left_out = || plan.leaves_out_uid(uid).then(|| source.track_position(uid)).flatten();
                output.track_position(uid).and_then(in_source).or_else(left_out)
            };
            let o = map_chapter_tracks(o, &|uid| track(position(uid), uid));
            let mut d = Vec::new();
            diff_elements(&s, &o, &s.name, &mut d);
            d
        }
    }
}

/// Names every difference between `s` (source) and `o` (output), `s`
/// being at `here` (`Chapters/EditionEntry[2]/ChapterAtom[1]`), ignoring
/// elements mkvmerge adds where the source has none.
fn diff_elements(s: &Element, o: &Element, here: &str, d: &mut Vec<String>) {
    if s.text != o.text {
        d.push(format!("{here}: {:?} became {:?}", s.text.as_deref().unwrap_or(""), o.text.as_deref().unwrap_or("")));
    }
    if s.attributes != o.attributes {
        d.push(format!("{here}: attributes {:?} became {:?}", s.attributes, o.attributes));
    }
    let default = |c: &Element| {
        rules::DEFAULTS_WRITTEN_BY_MKVMERGE.iter().any(|(n, v)| c.name == *n && c.text.as_deref() == Some(*v))
    };
    let added = |c: &&Element| {
        (rules::ADDED_BY_MKVMERGE.contains(&c.name.as_str()) || default(c)) && s.child(&c.name).is_none()
    };
    let o_children: Vec<&Element> = o.children.iter().filter(|c| !added(c)).collect();
    let names = |v: &mut dyn Iterator<Item = &Element>| v.map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ");
    if s.children.len() != o_children.len() {
        d.push(format!(
            "{here}: held {} became {}",
            names(&mut s.children.iter()),
            names(&mut o_children.iter().copied())
        ));
        return;
    }
    // Elements of one name are compared in their order; elements of
    // different names may stand in any order (mkvpropedit and mkvmerge put
    // a nested tag and its language in different orders).
    let mut names: Vec<&str> = s.children.iter().map(|c| c.name.as_str()).collect();
    names.dedup();
    let mut done = std::collections::BTreeSet::new();
    for name in names.into_iter().filter(|n| done.insert(*n)) {
        let of = |v: &mut dyn Iterator<Item = &Element>| v.filter(|c| c.name == name).cloned().collect::<Vec<_>>();
        let (sv, ov) = (of(&mut s.children.iter()), of(&mut o_children.iter().copied()));
        if sv.len() != ov.len() {
            d.push(format!("{here}: {} {name} became {}", sv.len(), ov.len()));
            continue;
        }
        for (n, (sc, oc)) in sv.iter().zip(&ov).enumerate() {
            let sub =
                if sc.children.is_empty() { format!("{here}/{name}") } else { format!("{here}/{name}[{}]", n + 1) };
            diff_elements(sc, oc, &sub, d);
        }
    }
}

fn tags(plan: &MuxPlan, output: &Structure) -> Vec<String> {
    let source_tracks = &plan.source.id.tracks;
    let planned = |src_pos: usize| plan.track_of(source_tracks[src_pos].id);
    let compared = |e: &TagEntry, src_pos: Option<usize>| {
        let name = e.name();
        let encoded = src_pos.and_then(planned).is_some_and(|p| p.carry.is_encoded());
        let global = src_pos.is_none();
        let not_carried = rules::is_statistics_tag(name)
            || name == crate::matroska::rules::SOURCE_RECORD_TAG
            || (global && rules::is_old_making_tag(name))
            || (encoded && rules::is_encoding_tag(name));
        !not_carried && src_pos.is_none_or(|p| planned(p).is_some())
    };
    // Each side's tags keyed by what they say, without what mkvmerge adds.
    let src: Vec<(String, Element)> = plan
        .source
        .tag_entries()
        .into_iter()
        .filter(|e| compared(e, e.target.track))
        .map(|e| (format!("{} {}", tag_target(&e, e.target.track), render_simple(&strip_added(&e.simple))), e.simple))
        .collect();
    let mut d = Vec::new();
    let records = output.tag_entries().iter().filter(|e| e.name() == crate::matroska::rules::SOURCE_RECORD_TAG).count();
    if records != 1 {
        d.push(format!("the output holds {records} records of its source, not one"));
    }
    let mut out: Vec<(String, Element)> = Vec::new();
    for e in output.tag_entries() {
        let src_pos = match e.target.track.map(|pos| source_position(plan, pos)) {
            Some(None) => {
                d.push(format!("a tag on a track the plan does not have: {}", render_simple(&e.simple)));
                continue;
            }
            Some(p) => p,
            None => None,
        };
        if compared(&e, src_pos) {
            out.push((format!("{} {}", tag_target(&e, src_pos), render_simple(&strip_added(&e.simple))), e.simple));
        }
    }
    d.extend(tag_differences(src, out));
    d
}

/// Where tag `e` applies, in words: the track at `src_pos` of the source,
/// global, or its other targets; and its level.
fn tag_target(e: &TagEntry, src_pos: Option<usize>) -> String {
    let on = match src_pos {
        Some(p) => format!("track {}", p + 1),
        None if e.target.others.is_empty() => "global".into(),
        None => e.target.others.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
    };
    format!(
        "{on} (level {}{})",
        e.target.type_value,
        e.target.target_type.as_deref().map(|t| format!(" {t}")).unwrap_or_default()
    )
}

/// The differences between the source's tags and the output's, each keyed
/// by what it says: lost, added, or changed inside.
fn tag_differences(src: Vec<(String, Element)>, mut out: Vec<(String, Element)>) -> Vec<String> {
    let mut d = Vec::new();
    for (key, simple) in src {
        match out.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let (_, o) = out.remove(i);
                let mut inner = Vec::new();
                diff_elements(&simple, &o, "Simple", &mut inner);
                d.extend(inner.into_iter().map(|x| format!("tag {key}: {x}")));
            }
            None => d.push(format!("lost tag {key}")),
        }
    }
    d.extend(out.into_iter().map(|(k, _)| format!("added tag {k}")));
    d
}

/// `e` without the elements mkvmerge may add, at any depth.
fn strip_added(e: &Element) -> Element {
    Element {
        name: e.name.clone(),
        attributes: e.attributes.clone(),
        text: e.text.clone(),
        children: e
            .children
            .iter()
            .filter(|c| !rules::ADDED_BY_MKVMERGE.contains(&c.name.as_str()))
            .map(strip_added)
            .collect(),
    }
}

fn render_simple(e: &Element) -> String {
    let mut parts = Vec::new();
    for c in &e.children {
        match (&c.text, c.name.as_str()) {
            (Some(t), "Name") => parts.insert(0, t.clone()),
            (Some(t), "String") => parts.push(format!("= {t:?}")),
            (Some(t), n) => parts.push(format!("{n} {t}")),
            (None, _) => parts.push(format!("[{}]", render_simple(c))),
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matroska::structure::tests::structure;
    use crate::matroska::xml;

    fn plan() -> MuxPlan {
        crate::analysis::mux_plan::tests::plan_of_structure(2, &[])
    }

    /// The output a faithful mux makes of [`structure`]: new UIDs, new
    /// codecs, fresh statistics, the record tag, IETF forms added.
    fn faithful() -> Structure {
        let mut s = structure();
        s.id = crate::tools::mkvtoolnix::Identification::from_json(
            r#"{"container": {"recognized": true, "supported": true,
                 "properties": {"title": "Heat (1995)", "writing_application": "mkvmerge"}},
                "tracks": [{"id": 0, "type": "video", "codec": "AV1",
                            "properties": {"uid": 91, "language": "eng", "language_ietf": "en", "codec_id": "V_AV1"}},
                           {"id": 1, "type": "audio", "codec": "Opus", "properties": {"uid": 92, "language_ietf": "es-419"}},
                           {"id": 2, "type": "subtitles", "codec": "PGS", "properties": {"uid": 93}}]}"#,
        )
        .unwrap();
        s.tags = Some(
            xml::parse(
                "<Tags>
                   <Tag><Targets /><Simple><Name>DRAPTO_SOURCE</Name><String>{}</String></Simple></Tag>
                   <Tag><Targets><TargetTypeValue>50</TargetTypeValue></Targets>
                     <Simple><Name>TITLE</Name><String>Heat</String><TagLanguageIETF>und</TagLanguageIETF></Simple></Tag>
                   <Tag><Targets><TrackUID>91</TrackUID></Targets>
                     <Simple><Name>MIXED_BY</Name><String>Someone</String></Simple>
                     <Simple><Name>BPS</Name><String>999</String></Simple></Tag>
                   <Tag><Targets><TrackUID>93</TrackUID></Targets>
                     <Simple><Name>COMMENT</Name><String>SDH</String></Simple></Tag>
                 </Tags>",
            )
            .unwrap(),
        );
        s
    }

    fn failures(output: &Structure) -> Vec<String> {
        checks(&plan(), output).into_iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect()
    }

    #[test]
    fn a_faithful_mux_passes() {
        assert_eq!(failures(&faithful()), Vec::<String>::new());
    }

    #[test]
    fn the_old_files_making_is_not_carried_and_the_output_holds_one_record() {
        let mut plan = plan();
        // The source: an earlier drapto output (its record), muxed by
        // ffmpeg (its ENCODER), which the mux leaves out.
        let old = "<Tag><Targets /><Simple><Name>DRAPTO_SOURCE</Name><String>{\"input\": \"/old\"}</String></Simple>\
                   <Simple><Name>ENCODER</Name><String>Lavf61.7.100</String></Simple></Tag>";
        plan.source.tags.as_mut().unwrap().children.push(xml::parse(old).unwrap());
        let failed = |o: &Structure| -> Vec<String> {
            checks(&plan, o).into_iter().filter(|c| !c.passed).map(|c| c.detail).collect()
        };
        assert_eq!(failed(&faithful()), Vec::<String>::new());
        // Both records carried: the old one was read for the new.
        let mut twice = faithful();
        twice.tags.as_mut().unwrap().children.push(xml::parse(old).unwrap());
        let f = failed(&twice);
        assert!(f.len() == 1 && f[0].contains("the output holds 2 records of its source, not one"), "{f:?}");
        let mut none = faithful();
        none.tags.as_mut().unwrap().children.remove(0);
        assert!(failed(&none)[0].contains("0 records"));
    }

    #[test]
    fn every_change_to_what_was_curated_is_named() {
        let mut o = faithful();
        o.id.tracks[1].properties.insert("language_ietf".into(), "es".into());
        o.id.tracks[2].properties.insert("forced_track".into(), true.into());
        o.id.container.properties.insert("title".into(), "Heat".into());
        let f = failures(&o);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].contains("title \"Heat (1995)\" became \"Heat\""), "{f:?}");
        assert!(f[1].contains("track 2 (audio): language_ietf \"es-419\" became \"es\""), "{f:?}");
        assert!(f[1].contains("track 3 (subtitles): forced_track (none) became true"), "{f:?}");
    }

    #[test]
    fn lost_tags_chapters_and_tracks_are_named() {
        let mut o = faithful();
        o.tags.as_mut().unwrap().children.pop();
        let ch = o.chapters.as_mut().unwrap();
        ch.children.pop();
        let f = failures(&o);
        assert!(
            f.iter().any(|x| x.starts_with("chapters: Chapters: held EditionEntry, EditionEntry became EditionEntry")),
            "{f:?}"
        );
        assert!(f.iter().any(|x| x.contains("lost tag track 3 (level 50) COMMENT = \"SDH\"")), "{f:?}");
        o.id.tracks.pop();
        assert!(failures(&o).iter().any(|x| x.contains("2 track(s) (video, audio) where 3 were planned")));
    }

    #[test]
    fn a_chapters_track_reference_must_follow_its_track() {
        let naming = |uid: &str| {
            let atom = format!(
                "<ChapterTimeStart>0</ChapterTimeStart><ChapterTrack><ChapterTrackNumber>{uid}</ChapterTrackNumber></ChapterTrack>"
            );
            xml::parse(&format!("<Chapters><EditionEntry><ChapterAtom>{atom}</ChapterAtom></EditionEntry></Chapters>"))
                .unwrap()
        };
        let mut plan = plan();
        plan.source.chapters = Some(naming("22"));
        let failed = |o: &Structure| -> Vec<String> {
            checks(&plan, o).into_iter().filter(|c| !c.passed).map(|c| c.detail).collect()
        };
        // The re-encoded audio track's new UID: the same track.
        let mut o = faithful();
        o.chapters = Some(naming("92"));
        assert_eq!(failed(&o), Vec::<String>::new());
        // The source's UID, which no output track has.
        o.chapters = Some(naming("22"));
        let f = failed(&o);
        assert!(f.iter().any(|x| x.contains("\"track 2\" became \"UID 22, no track\"")), "{f:?}");
    }

    #[test]
    fn a_changed_nested_chapter_name_is_found_where_it_is() {
        let mut o = faithful();
        let nested = &mut o.chapters.as_mut().unwrap().children[0].children[0].children[1];
        nested.children[0].text = Some("2".into());
        let f = failures(&o);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].contains(
                "Chapters/EditionEntry[1]/ChapterAtom[1]/ChapterAtom[1]/ChapterTimeStart: \"1\" became \"2\""
            ),
            "{f:?}"
        );
    }

    #[test]
    fn defaults_and_derived_forms_mkvmerge_writes_are_not_differences() {
        use crate::matroska::xml::Element;
        // A chapter name without its language (the default, `eng`, left out).
        let s = Element::node("ChapterDisplay", vec![Element::leaf("ChapterString", "Chapter 1")]);
        let mut o = s.clone();
        o.children.push(Element::leaf("ChapterLanguage", "eng"));
        o.children.push(Element::leaf("ChapLanguageIETF", "en"));
        let mut d = Vec::new();
        diff_elements(&s, &o, "ChapterDisplay", &mut d);
        assert!(d.is_empty(), "{d:?}");
        let mut other = s.clone();
        other.children.push(Element::leaf("ChapterLanguage", "fre"));
        diff_elements(&s, &other, "ChapterDisplay", &mut d);
        assert_eq!(d.len(), 1, "another language is a difference");
        // A chapter its writer gave no UID (mandatory): mkvmerge gives it one.
        let atom = |uid: Option<&str>| {
            let mut c = vec![Element::leaf("ChapterTimeStart", "00:00:00.000000000")];
            c.extend(uid.map(|u| Element::leaf("ChapterUID", u)));
            Element::node("ChapterAtom", c)
        };
        let mut d = Vec::new();
        diff_elements(&atom(None), &atom(Some("123")), "ChapterAtom", &mut d);
        assert!(d.is_empty(), "{d:?}");
        diff_elements(&atom(Some("7")), &atom(Some("123")), "ChapterAtom", &mut d);
        assert_eq!(d.len(), 1, "another UID is a difference: {d:?}");
        // A track whose language is given in IETF form only: mkvmerge
        // writes the legacy form of it.
        let track = |json: &str| -> Track { serde_json::from_str(json).unwrap() };
        let s = track(r#"{"id": 1, "type": "audio", "properties": {"language": "eng", "language_ietf": "fr-CA"}}"#);
        let o = track(r#"{"id": 1, "type": "audio", "properties": {"language": "fre", "language_ietf": "fr-CA"}}"#);
        assert!(track_properties(&s, &o, Carry::Copied, 0).is_empty());
        let o = track(r#"{"id": 1, "type": "audio", "properties": {"language": "fre", "language_ietf": "fr"}}"#);
        assert!(!track_properties(&s, &o, Carry::Copied, 0).is_empty());
    }

    #[test]
    fn elements_of_different_names_may_come_in_another_order() {
        use crate::matroska::xml::Element;
        let nested = Element::node("Simple", vec![Element::leaf("Name", "CHARACTER"), Element::leaf("String", "B")]);
        let lang = Element::leaf("TagLanguageIETF", "en");
        let s = Element::node("Simple", vec![Element::leaf("Name", "ACTOR"), nested.clone(), lang.clone()]);
        let o = Element::node("Simple", vec![Element::leaf("Name", "ACTOR"), lang, nested]);
        let mut d = Vec::new();
        diff_elements(&s, &o, "Simple", &mut d);
        assert!(d.is_empty(), "{d:?}");
        // Two of one name keep their order.
        let two = |a: &str, b: &str| Element::node("T", vec![Element::leaf("S", a), Element::leaf("S", b)]);
        diff_elements(&two("x", "y"), &two("y", "x"), "T", &mut d);
        assert_eq!(d.len(), 2, "{d:?}");
    }

    #[test]
    fn a_copied_track_may_start_within_a_millisecond_of_its_source() {
        let track = |ts: i64| -> Track {
            serde_json::from_str(&format!(
                r#"{{"id": 2, "type": "subtitles", "properties": {{"minimum_timestamp": {ts}}}}}"#
            ))
            .unwrap()
        };
        // A rip at a 10 µs timestamp scale; the output at mkvmerge's 1 ms.
        assert!(track_properties(&track(500_410_000), &track(500_000_000), Carry::Copied, 0).is_empty());
        assert!(!track_properties(&track(500_410_000), &track(520_000_000), Carry::Copied, 0).is_empty());
    }
}
