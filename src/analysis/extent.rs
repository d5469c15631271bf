//! The real length of a rip: where its video and audio data end, what the
//! file promised, and what that says.
//!
//! - **Truncated**: the data ends well before what the file's own headers
//!   promise for the video and audio (their per-track duration tags, or the
//!   container's duration when there are none), or ffprobe finds the file
//!   ending in the middle of an element. A failed copy or a full disk leaves
//!   such a file; by default it fails before any encoding.
//! - **An overlong claim**: one stream, typically a subtitle whose last
//!   event never ends (2³² ms), makes the container claim far more than the
//!   video and audio hold, while they agree with each other. Not truncation:
//!   the film ends where its video and audio end, and that stream's
//!   durations are clamped to it when muxing.
//!
//! Every stage that needs "the duration" (sampling for crop and interlace,
//! credits skipping, chunk planning, progress, validation) uses
//! [`Extent::end`].

use crate::cancel::Cancel;
use crate::tools::ffprobe::{Probe, Query, Stream, StreamKind};
use serde::Serialize;
use std::path::Path;

/// Largest difference between two ends (seconds) that still counts as the
/// same: source and output, a track and the film (validation, resume and
/// the held last frame judge by it).
pub const DURATION_TOLERANCE: f64 = 1.0;

/// Data may end this many seconds before a promise without being truncated
/// (muxers round, and the last frames' durations are estimates).
pub const TRUNCATION_SLACK: f64 = 2.0;
/// The same for a file that ends in the middle of an element, which a
/// whole file never does: a rip cut 1.5 s short of its 3 s passed the 2 s
/// slack, was encoded in full and failed validation.
pub const PREMATURE_SLACK: f64 = 0.5;
/// How far a whole file's data may end short of its container's claim,
/// seconds (the claim is its latest block's end, rounded).
const CLAIM_ROUNDING: f64 = 0.1;

/// A stream other than video and audio claims far more than the film when
/// it claims more than this many seconds past the film's end, or this share
/// of the film past it, whichever is more (a subtitle a few seconds past the
/// end is real and kept as it is).
pub const OVERLONG_SECONDS: f64 = 60.0;
pub const OVERLONG_SHARE: f64 = 0.1;

/// A stream that claims to last far beyond the film.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlong {
    /// ffprobe's stream index.
    pub index: usize,
    /// A subtitle, attachment or data stream.
    pub kind: StreamKind,
    /// Its claimed length, seconds.
    pub claimed: f64,
}

/// How long the rip really is, and how that compares with what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extent {
    /// The container's duration, as a length (see [`decide`]).
    pub claimed: f64,
    /// Where the first video stream's last frame ends: seconds from the
    /// file's start (its start time taken off the packets' clock), like
    /// every figure here.
    pub video_end: f64,
    /// Where each audio stream's last packet ends, in stream order (`None`:
    /// no packet found near the end).
    pub audio_ends: Vec<Option<f64>>,
    /// The end of the film: the later of the video's and the audio's ends.
    pub end: f64,
    /// What the video and audio streams promise (their longest duration
    /// tag), when they say.
    pub promised: Option<f64>,
    /// ffprobe reached the end of the file in the middle of an element.
    pub ended_prematurely: bool,
    /// The data ends well before the promise.
    pub truncated: bool,
    /// The file is cut mid-element, and its video stops short (see
    /// [`Extent::ends_at`]).
    pub video_cut: bool,
    /// Streams whose claimed length is far past the film's end, clamped to
    /// it (or left out) by the mux.
    pub overlong: Vec<Overlong>,
    /// Such streams the mux copies as they are (see [`Extent::keep_overlong`]).
    pub kept_overlong: Vec<Overlong>,
    /// The longest of the video's, audio's and subtitles' own claims, when
    /// each of them claims a length.
    pub streams_claim: Option<f64>,
}

impl Extent {
    /// Overlong stream `index` is copied as it is (the mux cannot clamp
    /// it): the output is to last as long as it claims.
    pub fn keep_overlong(&mut self, index: usize) {
        let (kept, still): (Vec<Overlong>, Vec<Overlong>) =
            std::mem::take(&mut self.overlong).into_iter().partition(|o| o.index == index);
        self.overlong = still;
        self.kept_overlong.extend(kept);
    }

    /// Where a truncated rip ends, for messages: its video's end where the
    /// video is what stops short, else the film's.
    pub fn ends_at(&self) -> f64 {
        if self.video_cut { self.video_end } else { self.end }
    }

    /// What the file promised, for messages: the video's and audio's
    /// promise, else the container's duration.
    pub fn promise(&self) -> f64 {
        self.promised.unwrap_or(self.claimed)
    }

    /// How long the output must be: the film's end when the rip is
    /// truncated or a stream's claim is clamped to it, else what the
    /// container says (subtitles may outlast the film a little).
    ///
    /// A container's claim that every stream's own claim falls well short of
    /// is no length of anything (a header written wrong): the streams' is
    /// expected. Such a rip was encoded in full and failed validation, on
    /// every run.
    pub fn expected_output(&self) -> f64 {
        if self.truncated || !self.overlong.is_empty() || !self.kept_overlong.is_empty() {
            return self.kept_overlong.iter().map(|o| o.claimed).fold(self.end, f64::max);
        }
        // (Only where the data bears the tracks' claim out: stale tags on a
        // cut file must not pass for its length.)
        let claimed = match self.streams_claim {
            Some(s) if self.claimed > s.max(self.end) + DURATION_TOLERANCE && self.end >= s - DURATION_TOLERANCE => s,
            _ => self.claimed,
        };
        claimed.max(self.end)
    }
}

/// A stream's own claimed length: its duration tag (`DURATION`, also
/// mkvmerge's `DURATION-eng`), else its duration field.
pub fn claimed_length(s: &Stream) -> Option<f64> {
    s.duration_tag().or(s.duration).filter(|d| d.is_finite() && *d > 0.0)
}

/// Ends of the packets in ffprobe's `stream_index,pts_time,duration_time`
/// lines, per stream index: the latest `pts + duration` of each.
pub fn parse_packet_ends(text: &str) -> Vec<(usize, f64)> {
    let mut ends: Vec<(usize, f64)> = Vec::new();
    for l in text.lines() {
        let mut it = l.split(',').map(str::trim);
        let (Some(Ok(index)), Some(Ok(pts))) = (it.next().map(str::parse::<usize>), it.next().map(str::parse::<f64>))
        else {
            continue;
        };
        let end = pts + it.next().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
        match ends.iter_mut().find(|(i, _)| *i == index) {
            Some((_, e)) => *e = e.max(end),
            None => ends.push((index, end)),
        }
    }
    ends
}

/// What the first video stream and the audio streams promise: their
/// longest own claimed length.
pub fn promised_length(probe: &Probe) -> Option<f64> {
    probe.video_streams().take(1).chain(probe.of_type(StreamKind::Audio)).filter_map(claimed_length).reduce(f64::max)
}

/// Decides from the measured ends (`video_end`; `audio_ends` per audio
/// stream of `probe`, in order; seconds from the file's start) and what the
/// file claims.
///
/// What the file claims is taken as a length: ffmpeg's end times (see
/// [`Probe::written_by_lavf`]) less the file's start time. Read as lengths,
/// a healthy file ffmpeg wrote starting at 10 s was refused as truncated.
pub fn decide(probe: &Probe, video_end: f64, audio_ends: Vec<Option<f64>>, ended_prematurely: bool) -> Extent {
    let shift = if probe.written_by_lavf() { probe.format.start_time.unwrap_or(0.0).max(0.0) } else { 0.0 };
    let length = |claim: f64| claim - shift;
    let claimed = probe.duration().map_or(video_end, length);
    let end = audio_ends.iter().flatten().copied().fold(video_end, f64::max);
    let promised = promised_length(probe).map(length);
    let overlong: Vec<Overlong> = probe
        .streams
        .iter()
        // (Not attachments: ffprobe gives them the container's duration.)
        .filter(|s| matches!(s.codec_type, StreamKind::Subtitle | StreamKind::Data))
        .filter_map(|s| {
            let c = length(claimed_length(s)?);
            let far = OVERLONG_SECONDS.max(end * OVERLONG_SHARE);
            (c > end + far).then_some(Overlong { index: s.index, kind: s.codec_type, claimed: c })
        })
        .collect();
    // The container's claim, unless a stream other than video and audio
    // explains it.
    let explained = overlong.iter().any(|o| o.claimed >= claimed - TRUNCATION_SLACK);
    // A file cut mid-element: the video's end too. A lossless audio track
    // muxed ahead of the video reached the container's claim while the
    // video stopped a second short, and the cut passed. Against the video's
    // own claim; without one (the tags are written last, and are often
    // what was cut), where no track reaches the container's claim either
    // (a video that ends before its audio, in a file cut in its closing
    // tags, has lost nothing: the audio ends where the claim does).
    let video_claim = (probe.streams.iter())
        .find(|s| s.codec_type == StreamKind::Video && !s.is_attached_pic())
        .and_then(claimed_length)
        .map(length);
    let data_short = end < claimed - CLAIM_ROUNDING && !explained;
    let video_cut = ended_prematurely
        && match video_claim {
            Some(c) => video_end < c - PREMATURE_SLACK,
            None => data_short && video_end < claimed - PREMATURE_SLACK,
        };
    let truncated = promised.is_some_and(|p| end < p - TRUNCATION_SLACK)
        || (ended_prematurely && !explained && end < claimed - PREMATURE_SLACK)
        || video_cut;
    let films = probe.streams.iter().filter(|s| {
        matches!(s.codec_type, StreamKind::Video | StreamKind::Audio | StreamKind::Subtitle) && !s.is_attached_pic()
    });
    let claims: Option<Vec<f64>> = films.map(|s| claimed_length(s).map(length)).collect();
    let streams_claim = claims.and_then(|c| c.into_iter().reduce(f64::max));
    let kept_overlong = Vec::new();
    Extent {
        claimed,
        video_end,
        audio_ends,
        end,
        promised,
        ended_prematurely,
        truncated,
        video_cut,
        overlong,
        kept_overlong,
        streams_claim,
    }
}

/// Reads the ends of `input`'s streams from its packets near `from`
/// seconds (a seek past the end lands on the last keyframe), with whether
/// ffprobe found the file ending mid-element.
/// (`Ok`: ffprobe read to the end, premature or not; `Err`: it failed.)
fn read_ends(ffprobe: &Path, input: &Path, from: f64, cancel: &Cancel) -> Result<(Vec<(usize, f64)>, bool), ()> {
    let mut cmd = Query::packets("stream_index,pts_time,duration_time").from_seconds(from).command(ffprobe, input);
    let mut text = String::new();
    let mut premature = false;
    let ran = crate::tools::process::run_lines(&mut cmd, "probe the end", cancel, |line| match line {
        crate::tools::process::Line::Out(l) => {
            text.push_str(l);
            text.push('\n');
        }
        crate::tools::process::Line::Err(l) => {
            premature |= l.contains("File ended prematurely") || l.contains("truncated");
        }
    });
    match ran {
        Err(_) if !premature => Err(()),
        _ => Ok((parse_packet_ends(&text), premature)),
    }
}

/// The length of a file that claims none (no Duration element and no
/// DURATION tags: ffmpeg writing to a pipe, or live): where its video and
/// audio packets end, from a read of its packets from the start, with
/// whether the file ends in the middle of an element (cut short). `None`
/// where none could be read.
pub fn unclaimed_length(ffprobe: &Path, input: &Path, probe: &Probe, cancel: &Cancel) -> Option<(f64, bool)> {
    let (ends, premature) = read_ends(ffprobe, input, 0.0, cancel).ok()?;
    let av = |i: &usize| {
        probe.streams.iter().any(|s| s.index == *i && matches!(s.codec_type, StreamKind::Video | StreamKind::Audio))
    };
    let start = probe.format.start_time.unwrap_or(0.0);
    let length = ends.iter().filter(|(i, _)| av(i)).map(|(_, e)| *e - start).reduce(f64::max).filter(|l| *l > 0.0)?;
    Some((length, premature))
}

/// Measures where `input`'s video and audio end, and decides.
pub fn measure(ffprobe: &Path, input: &Path, probe: &Probe, cancel: &Cancel) -> Extent {
    let video = probe.video_streams().next().map(|s| s.index);
    let audio: Vec<usize> = probe.of_type(StreamKind::Audio).map(|s| s.index).collect();
    // Seek near the end the file claims for its video and audio (a bogus
    // claim far past the data lands on the last keyframe all the same).
    let claim = promised_length(probe).or(probe.duration()).unwrap_or(0.0);
    // Packet times are on the file's clock; lengths count from its start.
    let start = probe.format.start_time.unwrap_or(0.0);
    // (A read that failed finds nothing, and proves nothing: see below.)
    let read =
        |from: f64| read_ends(ffprobe, input, from, cancel).map_or((Vec::new(), false, false), |(e, p)| (e, p, true));
    let (mut ends, mut premature, mut answered) = read(claim - 10.0);
    let found = |ends: &[(usize, f64)], i: usize| ends.iter().find(|(s, _)| *s == i).map(|(_, e)| *e - start);
    // A stream that ends earlier (audio a few seconds short, a truncated
    // file whose claim is far off) needs a read from further back; only the
    // video is worth a read of the whole file (an audio track with no
    // packet near the end is left unknown: an empty one is left out later).
    let missing = |ends: &[(usize, f64)]| video.iter().chain(&audio).any(|i| found(ends, *i).is_none());
    if missing(&ends) {
        let back = ends.iter().map(|(_, e)| *e).fold(claim, f64::min) - 60.0;
        let (e, p, a) = read(back);
        (premature, ends, answered) = (premature | p, e, a);
        if video.is_some_and(|v| found(&ends, v).is_none()) {
            let (e, p, a) = read(0.0);
            (premature, ends, answered) = (premature | p, e, a);
        }
    }
    // No video packet in the whole file: its data ends at its headers
    // (a copy cut off in its first kilobytes), which is truncation. Unless
    // ffprobe failed: then the file's claim stands, as it did before.
    let video_end = match video {
        Some(i) => found(&ends, i).unwrap_or(if answered { 0.0 } else { claim }),
        None => claim,
    };
    let audio_ends: Vec<Option<f64>> = audio.iter().map(|i| found(&ends, *i)).collect();
    let film_end = audio_ends.iter().flatten().copied().fold(video_end, f64::max);
    let probe = with_subtitle_ends(ffprobe, input, probe, film_end, cancel);
    decide(&probe, video_end, audio_ends, premature)
}

/// `probe` with each subtitle stream given the end of its packets, when the
/// container claims far more than the film (`film_end`): a stream that
/// claims no length (no `DURATION` tag: a rip written without statistics)
/// may be one whose last event never ends, and a stream's tag does not say
/// where it ends (mkvmerge's `DURATION` is the span from its first cue to
/// its last end: a track of lines all past the film was taken for 3 s
/// long, beside another that explained the file's claim, copied as it was,
/// and the output failed validation after the whole encode). The subtitle
/// packets are read (the whole file is demuxed) only then.
fn with_subtitle_ends(ffprobe: &Path, input: &Path, probe: &Probe, film_end: f64, cancel: &Cancel) -> Probe {
    let mut probe = probe.clone();
    let claim = probe.duration().unwrap_or(film_end);
    let far = OVERLONG_SECONDS.max(film_end * OVERLONG_SHARE);
    let subtitles: Vec<usize> = probe.of_type(StreamKind::Subtitle).map(|s| s.index).collect();
    if subtitles.is_empty() || claim <= film_end + far {
        return probe;
    }
    let query = Query::packets("stream_index,pts_time,duration_time").stream("s");
    let Ok(text) = query.run(ffprobe, input, "read the subtitles' ends", cancel) else { return probe };
    // Written as the file's own claims are (see `decide`): an end time on
    // the file's clock where ffmpeg wrote the file, else a length.
    let start = if probe.written_by_lavf() { 0.0 } else { probe.format.start_time.unwrap_or(0.0) };
    for (index, end) in parse_packet_ends(&text) {
        if let Some(s) = probe.streams.iter_mut().find(|s| s.index == index && subtitles.contains(&index)) {
            s.duration = Some(end - start);
            s.tags.retain(|k, _| !crate::tools::ffprobe::is_duration_tag(k));
        }
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: &str) -> Probe {
        Probe::from_json(json).unwrap()
    }

    fn film(sub_duration: &str, video_tag: &str, format_duration: &str) -> Probe {
        probe(&format!(
            r#"{{"format": {{"format_name": "matroska,webm", "duration": "{format_duration}"}},
                "streams": [
                  {{"index": 0, "codec_type": "video", "codec_name": "h264", "tags": {{"DURATION": "{video_tag}"}}}},
                  {{"index": 1, "codec_type": "audio", "codec_name": "aac", "tags": {{"DURATION": "00:00:20.023000000"}}}},
                  {{"index": 2, "codec_type": "subtitle", "codec_name": "subrip", "duration": "{sub_duration}"}}
                ]}}"#
        ))
    }

    #[test]
    fn a_clean_file() {
        let p = film("17.0", "00:00:20.000000000", "20.023");
        let e = decide(&p, 20.0, vec![Some(20.02)], false);
        assert!(!e.truncated && e.overlong.is_empty(), "{e:?}");
        assert_eq!((e.end, e.promised), (20.02, Some(20.023)));
    }

    #[test]
    fn an_endless_subtitle_is_an_overlong_claim_not_truncation() {
        let p = film("4294983.295", "00:00:20.000000000", "4294983.295");
        let e = decide(&p, 20.0, vec![Some(20.02)], false);
        assert!(!e.truncated, "{e:?}");
        assert_eq!(e.overlong, vec![Overlong { index: 2, kind: StreamKind::Subtitle, claimed: 4294983.295 }]);
        assert_eq!(e.end, 20.02);
        // Without per-track tags the subtitle still explains the claim.
        let p = probe(
            r#"{"format": {"duration": "4294983.3"}, "streams": [
                {"index": 0, "codec_type": "video"}, {"index": 1, "codec_type": "subtitle", "duration": "4294983.3"}]}"#,
        );
        assert!(!decide(&p, 20.0, vec![], false).truncated);
    }

    #[test]
    fn a_subtitle_a_little_past_the_film_is_kept() {
        let p = film("25.0", "00:00:20.000000000", "25.0");
        let e = decide(&p, 20.0, vec![Some(20.02)], false);
        assert!(!e.truncated && e.overlong.is_empty(), "{e:?}");
        assert_eq!(e.expected_output(), 25.0);
        let e = decide(&film("4294983.295", "00:00:20.000000000", "4294983.295"), 20.0, vec![Some(20.02)], false);
        assert_eq!(e.expected_output(), 20.02);
    }

    #[test]
    fn data_ending_before_the_promise_is_truncation() {
        // Cut at half its size: video and audio promise 20 s, hold 10.
        let p = film("17.0", "00:00:20.000000000", "20.023");
        let e = decide(&p, 10.0, vec![Some(10.01)], true);
        assert!(e.truncated, "{e:?}");
        assert_eq!(e.promise(), 20.023);
        // No tags: the container's duration and a premature end decide.
        let p = probe(r#"{"format": {"duration": "12.0"}, "streams": [{"index": 0, "codec_type": "video"}]}"#);
        assert!(decide(&p, 6.0, vec![], true).truncated);
        assert!(decide(&p, 11.0, vec![], true).truncated, "a second short, ending mid-element");
        assert!(!decide(&p, 11.7, vec![], true).truncated, "within the slack");
        assert!(!decide(&p, 11.0, vec![], false).truncated, "a second short of the container's claim");
        // Cut mid-element with the video a second short of its own claim,
        // a lossless audio track reaching on near the claim.
        let tagged = probe(
            r#"{"format": {"duration": "10.016"}, "streams": [
                {"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:10.000000000"}},
                {"index": 1, "codec_type": "audio", "tags": {"DURATION": "00:00:10.016000000"}},
                {"index": 2, "codec_type": "audio", "tags": {"DURATION": "00:00:10.016000000"}}]}"#,
        );
        // (The tags are written last, and a cut file has often lost them.)
        let untagged = probe(
            r#"{"format": {"duration": "10.016"}, "streams": [
                {"index": 0, "codec_type": "video"}, {"index": 1, "codec_type": "audio"},
                {"index": 2, "codec_type": "audio"}]}"#,
        );
        for p in [&tagged, &untagged] {
            let e = decide(p, 9.045, vec![Some(9.28), Some(9.79)], true);
            assert!(e.truncated && e.ends_at() == 9.045, "{e:?}");
            assert!(!decide(p, 9.6, vec![Some(9.28), Some(9.79)], true).truncated, "within the slack");
            assert!(!decide(p, 9.045, vec![Some(9.28), Some(9.79)], false).truncated, "whole: the video ends early");
        }
        // A whole film whose video ends seconds before its audio, the file
        // cut in its closing tags: nothing is lost.
        let p = probe(
            r#"{"format": {"duration": "6.528"}, "streams": [
                {"index": 0, "codec_type": "video"}, {"index": 1, "codec_type": "audio"}]}"#,
        );
        assert!(!decide(&p, 4.0, vec![Some(6.5)], true).truncated);
        assert!(!decide(&p, 5.0, vec![Some(6.5)], true).truncated, "1.5 s apart");
        // Cut in its clusters: nothing reaches the claim, the video 0.6 s short.
        let p = probe(
            r#"{"format": {"duration": "10.016"}, "streams": [
                {"index": 0, "codec_type": "video"}, {"index": 1, "codec_type": "audio"}]}"#,
        );
        assert!(decide(&p, 9.405, vec![Some(9.536)], true).truncated);
    }

    #[test]
    fn audio_longer_or_shorter_than_the_video_is_legal() {
        let p = film("17.0", "00:00:20.000000000", "23.0");
        let e = decide(&p, 20.0, vec![Some(23.0)], false);
        assert!(!e.truncated);
        assert_eq!(e.end, 23.0);
        let e = decide(&film("17.0", "00:00:20.000000000", "20.0"), 20.0, vec![Some(17.0)], false);
        assert!(!e.truncated && e.end == 20.0, "{e:?}");
    }

    #[test]
    fn ffmpegs_claims_are_end_times_on_the_files_clock() {
        // -output_ts_offset 10: 4 s of film from 10 s; ffmpeg writes 14 s.
        let p = probe(
            r#"{"format": {"duration": "14.004", "start_time": "10.0", "tags": {"ENCODER": "Lavf61.7.100"}},
                "streams": [{"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:14.004000000"}},
                            {"index": 1, "codec_type": "audio", "tags": {"DURATION": "00:00:14.000000000"}}]}"#,
        );
        let e = decide(&p, 4.004, vec![Some(4.0)], false);
        assert!(!e.truncated, "{e:?}");
        assert!((e.expected_output() - 4.004).abs() < 1e-9, "{e:?}");
        // mkvmerge's are lengths: the same figures mean 10 s missing.
        let p = probe(
            r#"{"format": {"duration": "14.004", "start_time": "10.0", "tags": {"ENCODER": "libebml v1.4.4"}},
                "streams": [{"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:14.004000000"}}]}"#,
        );
        assert!(decide(&p, 4.004, vec![], false).truncated);
    }

    #[test]
    fn a_container_claim_no_stream_makes_is_not_expected() {
        // The header says 60 s; every stream says, and holds, 4–5.5 s.
        let p = probe(
            r#"{"format": {"duration": "60.0"}, "streams": [
                {"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:04.504000000"}},
                {"index": 1, "codec_type": "audio", "tags": {"DURATION": "00:00:04.000000000"}},
                {"index": 2, "codec_type": "subtitle", "tags": {"DURATION": "00:00:05.500000000"}}]}"#,
        );
        let e = decide(&p, 4.504, vec![Some(4.0)], false);
        assert!(!e.truncated);
        assert_eq!(e.expected_output(), 5.5);
        // A subtitle that claims nothing may be what the claim is.
        let p = probe(
            r#"{"format": {"duration": "60.0"}, "streams": [
                {"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:04.504000000"}},
                {"index": 2, "codec_type": "subtitle"}]}"#,
        );
        assert_eq!(decide(&p, 4.504, vec![], false).expected_output(), 60.0);
    }

    #[test]
    fn a_file_without_a_duration_element_has_its_tracks_length() {
        let p = probe(
            r#"{"format": {}, "streams": [{"index": 0, "codec_type": "video", "tags": {"DURATION": "00:00:04.504000000"}}]}"#,
        );
        assert_eq!(p.duration(), Some(4.504));
    }

    #[test]
    fn packet_ends_per_stream() {
        let text = "0,19.920000,0.040000\n1,19.990000,0.023000\n0,19.960000,0.040000\n2,15.000000,2.000000\nbad\n";
        let ends = parse_packet_ends(text);
        assert_eq!(ends.len(), 3);
        assert!((ends[0].1 - 20.0).abs() < 1e-9 && (ends[1].1 - 20.013).abs() < 1e-9);
        assert_eq!(ends[2], (2, 17.0));
    }
}
