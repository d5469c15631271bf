//! The mux plan: made during analysis, before anything is encoded. Every
//! track of the source gets its fate (copied as it is, replaced by its
//! encode, copied with its durations clamped to the film, or left out, and
//! why), beside the title, attachments, chapters and tags that are carried.

use crate::analysis::audio::AudioPlan;
use crate::matroska::structure::Structure;
use crate::tools::ffprobe::Probe;
use crate::tools::ffprobe::StreamKind;
use crate::tools::mkvtoolnix::{Attachment, Identification, Track, TrackKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// How an output track is made from its source track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum Carry {
    /// Copied from the source as it is.
    Copied,
    /// Replaced by the AV1 encode.
    EncodedVideo,
    /// Replaced by the Opus encode of `analysis.audio[plan]`.
    EncodedAudio { plan: usize },
    /// Copied, with durations that run past the film's end clamped to it
    /// (a last subtitle that never ends); `stream` is its ffprobe index.
    Clamped { stream: usize },
    /// Copied, moved into the cropped picture (PGS, VobSub and ASS/SSA:
    /// see [`crate::mux::subtitles::pgs`], [`crate::mux::subtitles::vobsub`], [`crate::mux::subtitles::ass`]).
    Repositioned,
    /// Closed captions (EIA-608/708) carried in the pictures of the video
    /// track `source_id` (DVD line 21, ATSC A/53), which the AV1 encode
    /// cannot keep: extracted into a text subtitle track of their own.
    Captions,
}

impl Carry {
    /// Whether the track's data is new (its codec properties change).
    pub fn is_encoded(self) -> bool {
        matches!(self, Carry::EncodedVideo | Carry::EncodedAudio { .. })
    }

    fn describe(self) -> &'static str {
        match self {
            Carry::Copied => "copied",
            Carry::EncodedVideo => "encoded to AV1",
            Carry::EncodedAudio { .. } => "encoded to Opus",
            Carry::Clamped { .. } => "copied, clamped to the film's end",
            Carry::Repositioned => "copied, moved into the cropped picture",
            Carry::Captions => "extracted from the video into text subtitles (CC1; CC3 too where it holds text)",
        }
    }
}

/// One track of the output, in output order.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTrack {
    /// mkvmerge's ID of the source track.
    pub source_id: u32,
    #[serde(rename = "type")]
    pub kind: TrackKind,
    pub codec: String,
    pub carry: Carry,
    pub language: Option<String>,
    pub name: Option<String>,
    /// The flags set on it ("default", "forced", "commentary"…).
    pub flags: Vec<String>,
}

/// Whether an ASS/SSA track's script holds files of its own (its
/// `[Fonts]` or `[Graphics]` section, in its codec private data).
fn embeds_files(t: &Track) -> bool {
    let Some(hex) = t.text("codec_private_data") else { return false };
    let bytes: Vec<u8> =
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    text.contains("[fonts]") || text.contains("[graphics]")
}

/// The codecs of subtitles drawn at places on the video's frame: pictures
/// (Blu-ray PGS, DVD VobSub) and ASS/SSA scripts.
const DRAWN_SUBTITLES: [&str; 4] = ["S_HDMV/PGS", "S_VOBSUB", "S_TEXT/ASS", "S_TEXT/SSA"];

/// Something of the source that the output will not have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    pub what: String,
    pub why: String,
    /// Whether the user loses anything by it (an empty track: nothing).
    pub loss: bool,
}

impl LeftOut {
    pub fn describe(&self) -> String {
        format!("{}: {}", self.what, self.why)
    }
}

/// An attachment as the plan shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedAttachment {
    pub file_name: String,
    pub content_type: Option<String>,
    pub description: Option<String>,
    pub size: u64,
}

/// What the final mux will carry.
#[derive(Debug, Clone, Serialize)]
pub struct MuxPlan {
    pub title: Option<String>,
    pub tracks: Vec<PlannedTrack>,
    pub attachments: Vec<PlannedAttachment>,
    pub chapter_editions: usize,
    pub chapters: usize,
    pub global_tags: usize,
    pub track_tags: usize,
    pub left_out: Vec<LeftOut>,
    /// Where the source's first shown video frame presents (ns, mkvmerge's
    /// clock), when the rip starts on an open GOP: its video track's
    /// earliest block is a leading picture no decoder shows, and the
    /// encode starts at the frame after (see [`ffprobe::first_shown`]).
    ///
    /// [`ffprobe::first_shown`]: crate::tools::ffprobe::first_shown
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_start_ns: Option<i64>,
    /// How much later than its earliest block each encoded audio track's
    /// first decoded frame presents (ns, by source track ID), where its
    /// first frames do not decode (a damaged disc): the Opus track starts
    /// there (see [`ffprobe::undecoded_head`]).
    ///
    /// [`ffprobe::undecoded_head`]: crate::tools::ffprobe::undecoded_head
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audio_undecoded_ns: BTreeMap<u32, i64>,
    /// The source's structure, which the mux carries and validation
    /// compares the output with.
    #[serde(skip)]
    pub source: Structure,
}

/// The flags of a track that are set, by short name.
fn set_flags(t: &Track) -> Vec<String> {
    crate::matroska::rules::IDENTITY
        .iter()
        .filter(|(p, _)| *p != "track_name" && *p != "enabled_track" && t.flag(p) == Some(true))
        .map(|(p, _)| p.trim_start_matches("flag_").trim_end_matches("_track").replace('_', "-"))
        .collect()
}

fn label(t: &Track, kind_no: usize) -> String {
    format!("{} track {} ({})", t.kind.name(), kind_no + 1, t.codec)
}

/// `Err` when ffprobe (`probe`, with `ff_subs` subtitle streams) and
/// mkvmerge (`id`) count different tracks of a kind. Audio tracks without
/// a frame are the exception (see [`audio_streams`]).
fn same_tracks(id: &Identification, probe: &Probe, ff_subs: usize, audio: &[AudioPlan]) -> Result<(), String> {
    for (kind, ff) in [
        (TrackKind::Video, probe.video_streams().count()),
        (TrackKind::Audio, probe.of_type(StreamKind::Audio).count()),
        (TrackKind::Subtitles, ff_subs),
    ] {
        let mkv = id.of_kind(kind).count();
        let hidden_empty = kind == TrackKind::Audio && mkv == audio.len() && mkv < ff;
        if mkv != ff && !hidden_empty {
            return Err(format!(
                "ffprobe and mkvmerge see different tracks ({ff} against {mkv} {} tracks); \
                 drapto cannot tell which is which, so it cannot carry them",
                kind.name()
            ));
        }
    }
    Ok(())
}

/// The ffprobe audio index of each audio track mkvmerge lists, in order.
/// mkvmerge leaves out a track whose codec is described by its first frame
/// (AC-3, DTS, TrueHD) when it has none: then it lists just the tracks
/// with samples, `audio` (such an empty track is left out with a warning).
fn audio_streams(id: &Identification, probe: &Probe, audio: &[AudioPlan]) -> Vec<usize> {
    if id.of_kind(TrackKind::Audio).count() == probe.of_type(StreamKind::Audio).count() {
        (0..probe.of_type(StreamKind::Audio).count()).collect()
    } else {
        audio.iter().map(|a| a.index).collect()
    }
}

/// How track `t` (the `kind_no`th of its kind, ffprobe's `stream`th of
/// it) is carried, or why it is left out. `clamped_stream`: its ffprobe
/// index, when it is a subtitle track whose durations are clamped to the
/// film.
fn carry_of(
    t: &Track,
    kind_no: usize,
    stream: usize,
    audio: &[AudioPlan],
    clamped_stream: Option<usize>,
) -> Result<Carry, LeftOut> {
    let gone = |why: &str, loss| LeftOut { what: label(t, kind_no), why: why.into(), loss };
    match t.kind {
        TrackKind::Video if kind_no == 0 => Ok(Carry::EncodedVideo),
        TrackKind::Video => Err(gone("drapto encodes only the first video track", true)),
        TrackKind::Audio => match audio.iter().position(|a| a.index == stream) {
            Some(plan) => Ok(Carry::EncodedAudio { plan }),
            None => Err(gone("it has no samples", false)),
        },
        _ => Ok(clamped_stream.map_or(Carry::Copied, |stream| Carry::Clamped { stream })),
    }
}

impl PlannedTrack {
    /// Source track `t`, carried as `carry`.
    fn of(t: &Track, carry: Carry) -> PlannedTrack {
        PlannedTrack {
            source_id: t.id,
            kind: t.kind,
            codec: t.codec.clone(),
            carry,
            language: crate::matroska::rules::language(&t.properties).map(str::to_string),
            name: t.text("track_name").map(str::to_string),
            flags: set_flags(t),
        }
    }
}

impl PlannedAttachment {
    fn of(a: &Attachment) -> PlannedAttachment {
        PlannedAttachment {
            file_name: a.file_name.clone(),
            content_type: a.content_type.clone(),
            description: a.description.clone(),
            size: a.size,
        }
    }
}

impl MuxPlan {
    /// Plans the mux of `source` (its ffprobe view `probe`) whose audio is
    /// encoded as `audio` plans, with the subtitle streams at ffprobe
    /// indexes `clamped` ending with the film. `Err` when ffprobe and
    /// mkvmerge disagree about the tracks (then nothing can be mapped).
    pub fn new(source: Structure, probe: &Probe, audio: &[AudioPlan], clamped: &[usize]) -> Result<MuxPlan, String> {
        let id = &source.id;
        let ff_subs: Vec<usize> = probe.of_type(StreamKind::Subtitle).map(|s| s.index).collect();
        same_tracks(id, probe, ff_subs.len(), audio)?;
        let audio_streams = audio_streams(id, probe, audio);
        let mut tracks = Vec::new();
        let mut left_out = Vec::new();
        let mut seen = std::collections::BTreeMap::<&str, usize>::new();
        for t in &id.tracks {
            let n = seen.entry(t.kind.name()).or_default();
            let kind_no = *n;
            *n += 1;
            let clamped_stream =
                (t.kind == TrackKind::Subtitles).then(|| ff_subs[kind_no]).filter(|s| clamped.contains(s));
            let stream = if t.kind == TrackKind::Audio { audio_streams[kind_no] } else { kind_no };
            match carry_of(t, kind_no, stream, audio, clamped_stream) {
                Ok(carry) => tracks.push(PlannedTrack::of(t, carry)),
                Err(gone) => left_out.push(gone),
            }
        }
        // An audio track without a frame that mkvmerge does not list (see
        // [`audio_streams`]) is left out as well: said here too, for a
        // reader of the plan (it was a warning only).
        if id.of_kind(TrackKind::Audio).count() < probe.of_type(StreamKind::Audio).count() {
            for (n, s) in
                probe.of_type(StreamKind::Audio).enumerate().filter(|(n, _)| !audio.iter().any(|a| a.index == *n))
            {
                let what = format!("audio track {} ({})", n + 1, s.codec_name);
                left_out.push(LeftOut { what, why: "it has no samples".into(), loss: false });
            }
        }
        // A left-out track's tags go with it.
        let entries = source.tag_entries();
        Ok(MuxPlan {
            title: id.title().map(str::to_string),
            attachments: id.attachments.iter().map(PlannedAttachment::of).collect(),
            chapter_editions: source.edition_count(),
            chapters: source.chapter_count(),
            // (Those carried: not the old muxer's, nor an old record.)
            global_tags: entries
                .iter()
                .filter(|e| e.target.track.is_none() && !crate::matroska::rules::is_old_making_tag(e.name()))
                .count(),
            // (Those carried: not statistics, nor the old encoder's of a
            // re-encoded track, nor a left-out track's.)
            track_tags: entries
                .iter()
                .filter(|e| {
                    let Some(pos) = e.target.track else { return false };
                    let planned = id.tracks.get(pos).and_then(|t| tracks.iter().find(|p| p.source_id == t.id));
                    let encoded = planned.is_some_and(|p| p.carry.is_encoded());
                    planned.is_some()
                        && !crate::matroska::rules::is_statistics_tag(e.name())
                        && !(encoded && crate::matroska::rules::is_encoding_tag(e.name()))
                })
                .count(),
            tracks,
            left_out,
            video_start_ns: None,
            audio_undecoded_ns: BTreeMap::new(),
            source,
        })
    }

    /// Output tracks of one kind.
    pub fn count(&self, kind: TrackKind) -> usize {
        self.tracks.iter().filter(|t| t.kind == kind).count()
    }

    /// The things left out that the user loses.
    pub fn losses(&self) -> impl Iterator<Item = &LeftOut> {
        self.left_out.iter().filter(|l| l.loss)
    }

    /// The planned output track made from source track `source_id`.
    pub fn track_of(&self, source_id: u32) -> Option<&PlannedTrack> {
        self.tracks.iter().find(|t| t.source_id == source_id)
    }

    /// Whether the source track with `uid` is left out of the output.
    pub fn leaves_out_uid(&self, uid: &str) -> bool {
        let source_id = |position: usize| self.source.id.tracks[position].id;
        self.source.track_position(uid).is_some_and(|p| !self.tracks.iter().any(|t| t.source_id == source_id(p)))
    }

    /// The source's mkvmerge track with `id`.
    pub fn source_track(&self, id: u32) -> &Track {
        self.source.id.tracks.iter().find(|t| t.id == id).expect("a planned track comes from the source")
    }

    /// Where source track `id` starts (ns, mkvmerge's clock): its earliest
    /// block, but for the encoded video of a rip starting on an open GOP,
    /// its first shown frame (see [`MuxPlan::video_start_ns`]), and for an
    /// encoded audio track whose first frames do not decode, its first
    /// decoded one (see [`MuxPlan::audio_undecoded_ns`]).
    pub fn source_start_ns(&self, id: u32) -> Option<i64> {
        let encoded_video = self.tracks.iter().any(|t| t.source_id == id && t.carry == Carry::EncodedVideo);
        let undecoded = self.audio_undecoded_ns.get(&id).copied().unwrap_or(0);
        let earliest = || self.source_track(id).minimum_timestamp_ns().map(|ns| ns + undecoded);
        self.video_start_ns.filter(|_| encoded_video).or_else(earliest)
    }

    /// Name of the track of closed captions taken out of the video.
    pub const CAPTIONS_NAME: &'static str = "Closed Captions";

    /// The name of the track of the captions on `field` of the pictures
    /// (1: CC1, the main service; 2: CC3, often a second language).
    pub fn captions_name(field: u8) -> String {
        match field {
            1 => Self::CAPTIONS_NAME.into(),
            _ => format!("{} (CC3)", Self::CAPTIONS_NAME),
        }
    }

    /// Adds, after the source's tracks, a text track for the closed
    /// captions in the pictures of the video: in the video's language,
    /// flagged for the hearing impaired. Which of the pictures' two fields
    /// hold captions is known once they are extracted (see
    /// [`MuxPlan::with_captions`]).
    pub fn add_captions(&mut self) {
        self.add_caption_field(1);
    }

    fn add_caption_field(&mut self, field: u8) {
        let Some(video) = self.tracks.iter().find(|t| t.carry == Carry::EncodedVideo) else { return };
        let captions = PlannedTrack {
            source_id: video.source_id,
            kind: TrackKind::Subtitles,
            codec: "SubRip/SRT (closed captions)".into(),
            carry: Carry::Captions,
            language: video.language.clone(),
            name: Some(Self::captions_name(field)),
            flags: vec!["hearing-impaired".into()],
        };
        self.tracks.push(captions);
    }

    /// Whether the plan takes the closed captions out of the video.
    pub fn has_captions(&self) -> bool {
        self.tracks.iter().any(|t| t.carry == Carry::Captions)
    }

    /// The fields whose captions an earlier encode of this plan's rip
    /// carries, by `output`'s tracks after the source's (their count; one
    /// alone by its name): to judge that output by the plan its mux followed
    /// (a rip with CC3 was found invalid and encoded again). A track the
    /// user renamed since counts all the same. An output with none is
    /// expected to have CC1 (one made before captions were carried lacks
    /// them; one of a rip with padding alone is encoded again once, for
    /// other settings).
    pub fn caption_fields_in(&self, output: &crate::matroska::structure::Structure) -> Vec<u8> {
        let source_tracks = self.tracks.iter().filter(|t| t.carry != Carry::Captions).count();
        let after: Vec<&Track> = output.id.tracks.iter().skip(source_tracks).collect();
        match after[..] {
            [] => vec![1],
            [t] if t.text("track_name") == Some(Self::captions_name(2).as_str()) => vec![2],
            [_] => vec![1],
            _ => vec![1, 2],
        }
    }

    /// The plan once the captions were extracted: a track for each field
    /// of `fields` that held text, none for a field that held only padding
    /// (many DVDs carry it: an empty track flagged for the hearing impaired
    /// was added), and a second one for CC3 (it was lost without a word).
    pub fn with_captions(&self, fields: &[u8]) -> MuxPlan {
        let mut plan = self.clone();
        if !plan.has_captions() {
            return plan;
        }
        plan.tracks.retain(|t| t.carry != Carry::Captions);
        for f in fields {
            plan.add_caption_field(*f);
        }
        plan
    }

    /// The crop makes the positions of copied subtitles drawn for the full
    /// frame wrong: PGS, VobSub and ASS/SSA tracks are moved into the
    /// cropped picture; returns a warning for each one that cannot be (its
    /// endless last event clamped), copied as it is.
    pub fn reposition_subtitles(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, t) in self.tracks.iter_mut().enumerate() {
            let source = self.source.id.tracks.iter().find(|s| s.id == t.source_id);
            let codec_id = source.and_then(|s| s.text("codec_id"));
            if !codec_id.is_some_and(|c| DRAWN_SUBTITLES.contains(&c)) {
                continue;
            }
            // A script with fonts or pictures in it (ffmpeg keeps them in
            // its header): mkvmerge drops them from a script it reads.
            if source.is_some_and(embeds_files) && t.carry == Carry::Copied {
                warnings.push(format!(
                    "output track {} (ASS with fonts or pictures in its script) is copied as drawn for the uncropped frame: players may show it smaller or off the cropped picture",
                    i + 1
                ));
                continue;
            }
            match t.carry {
                Carry::Copied => t.carry = Carry::Repositioned,
                Carry::Clamped { .. } => warnings.push(format!(
                    "output track {} (subtitles drawn for the frame) is copied as drawn for the uncropped frame: players may show it squashed or outside the cropped picture",
                    i + 1
                )),
                _ => {}
            }
        }
        warnings
    }

    /// One line per output track, for `drapto analyze`.
    pub fn describe_tracks(&self) -> Vec<String> {
        self.tracks
            .iter()
            .map(|t| {
                let mut s = format!("{} {} → {}", t.kind.name(), t.codec, t.carry.describe());
                if let Some(l) = &t.language {
                    s.push_str(&format!(" [{l}]"));
                }
                if let Some(n) = &t.name {
                    s.push_str(&format!(" \"{n}\""));
                }
                if !t.flags.is_empty() {
                    s.push_str(&format!(" {}", t.flags.join(", ")));
                }
                s
            })
            .collect()
    }

    /// Attachments, chapters and tags in one line.
    pub fn describe_rest(&self) -> String {
        let names: Vec<String> = self
            .attachments
            .iter()
            .map(|a| format!("{} ({})", a.file_name, a.content_type.as_deref().unwrap_or("?")))
            .collect();
        format!(
            "{}{}; {} chapter edition(s), {} chapter(s); {} global tag(s), {} track tag(s)",
            crate::units::count(self.attachments.len(), "attachment"),
            if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) },
            self.chapter_editions,
            self.chapters,
            self.global_tags,
            self.track_tags
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::matroska::structure::tests::structure;

    fn probe(videos: usize, audios: usize, subs: usize) -> Probe {
        let mut streams = Vec::new();
        for (kind, n) in [("video", videos), ("audio", audios), ("subtitle", subs)] {
            for _ in 0..n {
                streams.push(format!(r#"{{"index": {}, "codec_type": "{kind}", "codec_name": "x"}}"#, streams.len()));
            }
        }
        Probe::from_json(&format!(r#"{{"format": {{}}, "streams": [{}]}}"#, streams.join(","))).unwrap()
    }

    /// The plan of [`structure`]'s three tracks (the audio in
    /// `audio_channels`), with the subtitle streams at `clamped` clamped.
    pub(crate) fn plan_of_structure(audio_channels: u32, clamped: &[usize]) -> MuxPlan {
        let probe = Probe::from_json(&format!(
            r#"{{"format": {{}}, "streams": [{{"index": 0, "codec_type": "video", "codec_name": "h264"}},
                {{"index": 1, "codec_type": "audio", "codec_name": "ac3", "channels": {audio_channels}}},
                {{"index": 2, "codec_type": "subtitle", "codec_name": "pgs"}}]}}"#
        ))
        .unwrap();
        let audio = crate::analysis::audio::plan_tracks(probe.of_type(StreamKind::Audio), 0.0, &Default::default());
        MuxPlan::new(structure(), &probe, &audio, clamped).unwrap()
    }

    fn audio_plan(index: usize) -> AudioPlan {
        let s = crate::config::AudioSettings::default();
        let p = probe(0, index + 1, 0);
        let mut plans = crate::analysis::audio::plan_tracks(p.of_type(StreamKind::Audio), 0.0, &s);
        plans.pop().unwrap()
    }

    #[test]
    fn a_script_with_fonts_of_its_own_is_known_by_its_header() {
        let track = |private: &str| -> Track {
            let hex: String = private.bytes().map(|b| format!("{b:02x}")).collect();
            serde_json::from_str(&format!(
                r#"{{"id": 2, "type": "subtitles", "codec": "SubStationAlpha", "properties": {{"codec_private_data": "{hex}"}}}}"#
            ))
            .unwrap()
        };
        assert!(!embeds_files(&track("[Script Info]\nPlayResY: 480\n[V4+ Styles]\n")));
        assert!(embeds_files(&track("[Script Info]\n[Fonts]\nfontname: a_0.ttf\n!!!!\n")));
        assert!(embeds_files(&track("[Script Info]\n[Graphics]\nfilename: logo.png\n")));
    }

    #[test]
    fn every_track_gets_its_fate() {
        let plan = MuxPlan::new(structure(), &probe(1, 1, 1), &[audio_plan(0)], &[]).unwrap();
        let carries: Vec<Carry> = plan.tracks.iter().map(|t| t.carry).collect();
        assert_eq!(carries, [Carry::EncodedVideo, Carry::EncodedAudio { plan: 0 }, Carry::Copied]);
        assert_eq!(plan.tracks[1].language.as_deref(), Some("es-419"));
        assert!(plan.left_out.is_empty());
        assert_eq!((plan.global_tags, plan.track_tags, plan.chapters), (1, 2, 3));
        assert_eq!(plan.title.as_deref(), Some("Heat (1995)"));
    }

    #[test]
    fn clamped_subtitles_and_empty_audio_are_planned() {
        let plan = MuxPlan::new(structure(), &probe(1, 1, 1), &[], &[2]).unwrap();
        assert_eq!(
            plan.tracks.iter().map(|t| t.carry).collect::<Vec<_>>(),
            [Carry::EncodedVideo, Carry::Clamped { stream: 2 }]
        );
        assert_eq!(plan.left_out.len(), 1);
        assert!(!plan.left_out[0].loss, "an empty track holds nothing to lose");
        assert_eq!(plan.losses().count(), 0);
    }

    #[test]
    fn tracks_ffprobe_does_not_see_stop_the_plan() {
        let e = MuxPlan::new(structure(), &probe(1, 2, 1), &[], &[]).unwrap_err();
        assert!(e.contains("1 audio"), "{e}");
    }
}
