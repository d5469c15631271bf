//! Typed `ffprobe -print_format json` output: format, streams (with colour
//! fields, dispositions, tags and side data) and chapters.

use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Everything ffprobe says about a file.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Probe {
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub streams: Vec<Stream>,
    #[serde(default)]
    pub chapters: Vec<Chapter>,
    /// Packets, when asked for (see [`probe_with_end`]).
    #[serde(default)]
    pub packets: Vec<Packet>,
}

/// One packet's place on its stream's clock.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Packet {
    #[serde(default)]
    pub stream_index: usize,
    #[serde(default, deserialize_with = "num")]
    pub pts_time: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub duration_time: Option<f64>,
}

/// The container.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Format {
    #[serde(default)]
    pub format_name: String,
    #[serde(default, deserialize_with = "num")]
    pub duration: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub start_time: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub size: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub bit_rate: Option<f64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What a stream carries (ffprobe's `codec_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Video,
    Audio,
    Subtitle,
    Attachment,
    Data,
    #[default]
    #[serde(other)]
    Other,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Video => "video",
            StreamKind::Audio => "audio",
            StreamKind::Subtitle => "subtitle",
            StreamKind::Attachment => "attachment",
            StreamKind::Data => "data",
            StreamKind::Other => "other",
        }
    }
}

/// The file's title (its `title` tag), when it has one that says anything.
pub fn title(probe: &Probe) -> Option<String> {
    probe.format.tags.get("title").filter(|t| !t.trim().is_empty()).cloned()
}

/// The frame rates of film, video and TV (as `numerator / denominator`).
const STANDARD_RATES: [(f64, f64); 9] = [
    (24000.0, 1001.0),
    (24.0, 1.0),
    (25.0, 1.0),
    (30000.0, 1001.0),
    (30.0, 1.0),
    (48.0, 1.0),
    (50.0, 1.0),
    (60000.0, 1001.0),
    (60.0, 1.0),
];

/// One stream.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Stream {
    pub index: usize,
    #[serde(default)]
    pub codec_type: StreamKind,
    #[serde(default)]
    pub codec_name: String,
    #[serde(default)]
    pub profile: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pix_fmt: Option<String>,
    pub sample_aspect_ratio: Option<String>,
    pub display_aspect_ratio: Option<String>,
    pub field_order: Option<String>,
    pub r_frame_rate: Option<String>,
    pub avg_frame_rate: Option<String>,
    #[serde(default, deserialize_with = "num")]
    pub start_time: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub duration: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub nb_frames: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub bits_per_raw_sample: Option<f64>,
    pub color_range: Option<String>,
    pub color_space: Option<String>,
    pub color_transfer: Option<String>,
    pub color_primaries: Option<String>,
    pub chroma_location: Option<String>,
    pub channels: Option<u32>,
    pub channel_layout: Option<String>,
    #[serde(default, deserialize_with = "num")]
    pub sample_rate: Option<f64>,
    pub sample_fmt: Option<String>,
    #[serde(default, deserialize_with = "num")]
    pub bit_rate: Option<f64>,
    #[serde(default)]
    pub disposition: BTreeMap<String, i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub side_data_list: Vec<SideData>,
}

/// A side-data record (DOVI configuration, mastering display, light level…).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SideData {
    #[serde(default)]
    pub side_data_type: String,
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl SideData {
    /// A numeric field, whether written as a number or a "num/den" string.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.fields.get(key)? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => parse_ratio(s),
            _ => None,
        }
    }
}

/// A chapter.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Chapter {
    #[serde(default, deserialize_with = "num")]
    pub start_time: Option<f64>,
    #[serde(default, deserialize_with = "num")]
    pub end_time: Option<f64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Probe {
    /// Parses ffprobe's JSON.
    pub fn from_json(text: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Streams of one kind.
    pub fn of_type(&self, kind: StreamKind) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(move |s| s.codec_type == kind)
    }

    /// Video streams, excluding cover art and other attached pictures.
    pub fn video_streams(&self) -> impl Iterator<Item = &Stream> {
        self.of_type(StreamKind::Video).filter(|s| !s.is_attached_pic())
    }

    /// Attachments: `attachment` streams plus attached pictures (cover art).
    pub fn attachments(&self) -> impl Iterator<Item = &Stream> {
        self.streams.iter().filter(|s| s.codec_type == StreamKind::Attachment || s.is_attached_pic())
    }

    /// The file's duration: the container's, else the longest stream's, else
    /// the longest of the streams' own DURATION tags.
    pub fn duration(&self) -> Option<f64> {
        let longest = |d: Option<f64>, e: f64| Some(d.map_or(e, |d| d.max(e)));
        self.format.duration.or_else(|| self.streams.iter().filter_map(|s| s.duration).fold(None, longest)).or_else(
            // No Duration element (optional in Matroska: a file written to a
            // pipe): the tracks' own DURATION tags.
            || self.streams.iter().filter_map(Stream::duration_tag).fold(None, longest),
        )
    }

    /// Whether ffmpeg (libavformat) wrote the file: its Duration and
    /// DURATION tags are then end times on the file's clock, where
    /// mkvmerge's are lengths (the two differ by the file's start time).
    pub fn written_by_lavf(&self) -> bool {
        let encoder = self.format.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case("encoder"));
        encoder.is_some_and(|(_, v)| v.starts_with("Lavf"))
    }
}

impl Stream {
    /// A disposition flag ("default", "forced", "attached_pic"…).
    pub fn has_disposition(&self, flag: &str) -> bool {
        self.disposition.get(flag).copied().unwrap_or(0) != 0
    }

    pub fn is_attached_pic(&self) -> bool {
        self.has_disposition("attached_pic")
    }

    /// A tag, matched case-insensitively ("language", "title").
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Its own claimed length: its duration tag (`DURATION`, also
    /// mkvmerge's `DURATION-eng`).
    pub fn duration_tag(&self) -> Option<f64> {
        let mut tags = self.tags.iter();
        tags.find(|(k, _)| is_duration_tag(k)).and_then(|(_, v)| parse_duration_tag(v))
    }

    /// Its frames: the container's count, else mkvmerge's statistics tag.
    pub fn frame_count(&self) -> Option<u64> {
        let tag = || {
            let mut tags = self.tags.iter();
            tags.find(|(k, _)| k.to_ascii_uppercase().starts_with("NUMBER_OF_FRAMES")).and_then(|(_, n)| n.parse().ok())
        };
        self.nb_frames.map(|n| n as u64).or_else(tag)
    }

    /// Frames per second from `avg_frame_rate`, else `r_frame_rate`; but
    /// `r_frame_rate` when it is a standard rate within 2% of the average:
    /// a Matroska track without a default duration has its average read
    /// from millisecond timestamps (1000/33 = 30.303 for NTSC's 29.97),
    /// which took a telecined DVD for interlaced video, and gave a chunked
    /// output a 24.417 fps header.
    pub fn frame_rate(&self) -> Option<f64> {
        let rate = |r: &Option<String>| r.as_deref().and_then(parse_ratio).filter(|f| f.is_finite() && *f > 0.0);
        let (average, real) = (rate(&self.avg_frame_rate), rate(&self.r_frame_rate));
        let standard = |r: f64| STANDARD_RATES.iter().any(|(n, d)| (r - n / d).abs() < 1e-6);
        match (average, real) {
            (Some(a), Some(r)) if standard(r) && (a / r - 1.0).abs() <= 0.02 => Some(r),
            (Some(a), _) => Some(a),
            (None, r) => r,
        }
    }

    /// The side-data record of a type, matched by a case-insensitive substring.
    pub fn side_data(&self, kind: &str) -> Option<&SideData> {
        let kind = kind.to_ascii_lowercase();
        self.side_data_list.iter().find(|s| s.side_data_type.to_ascii_lowercase().contains(&kind))
    }

    /// Bit depth from the pixel format or `bits_per_raw_sample`.
    pub fn bit_depth(&self) -> Option<u32> {
        if let Some(pf) = &self.pix_fmt {
            for (suffix, bits) in [("p16", 16), ("p14", 14), ("p12", 12), ("p10", 10)] {
                if pf.contains(suffix) {
                    return Some(bits);
                }
            }
            if pf.starts_with("yuv") || pf.starts_with("gray") || pf.starts_with("nv12") {
                return Some(8);
            }
        }
        self.bits_per_raw_sample.map(|b| b as u32)
    }
}

/// "num/den" or a plain number.
pub fn parse_ratio(s: &str) -> Option<f64> {
    match s.split_once(['/', ':']) {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
            (d != 0.0).then_some(n / d)
        }
        None => s.trim().parse().ok(),
    }
}

/// Whether tag `key` is a stream's duration tag (`DURATION`, also
/// mkvmerge's `DURATION-eng`).
pub fn is_duration_tag(key: &str) -> bool {
    key.split('-').next().is_some_and(|base| base.eq_ignore_ascii_case("DURATION"))
}

/// A Matroska duration tag, "HH:MM:SS.nnnnnnnnn", in seconds.
pub fn parse_duration_tag(s: &str) -> Option<f64> {
    let mut parts = s.trim().split(':').rev();
    let secs: f64 = parts.next()?.parse().ok()?;
    let mins: f64 = parts.next().map_or(Some(0.0), |m| m.parse().ok())?;
    let hours: f64 = parts.next().map_or(Some(0.0), |h| h.parse().ok())?;
    parts.next().is_none().then_some(hours * 3600.0 + mins * 60.0 + secs)
}

/// ffprobe writes many numbers as strings ("10.000000", "N/A").
fn num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    })
}

/// Runs ffprobe on `path` and parses the result.
pub fn probe(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<Probe, ProbeError> {
    run_probe(ffprobe, path, &[], cancel)
}

/// Format, streams and chapters of `path` as JSON, with `extra` arguments
/// (packets to show as well), parsed.
fn run_probe(ffprobe: &Path, path: &Path, extra: &[&str], cancel: &Cancel) -> Result<Probe, ProbeError> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-show_chapters"])
        .args(extra)
        .arg(crate::tools::path_arg(path));
    let text = crate::tools::process::output(&mut cmd, "probe", cancel).map_err(ProbeError::Run)?;
    Probe::from_json(&text).map_err(|e| ProbeError::Parse(e.to_string()))
}

/// [`probe`] and, in the same run, where the first video stream's last
/// packet ends (a seek far past the end lands on the last keyframe): what a
/// quick look at a finished output needs, one program start. The end is
/// counted from the file's start, as the analysis counts the rip's (a rip
/// whose tracks all start at 1.5 s keeps that start in its output).
pub fn probe_with_end(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<(Probe, Option<f64>), ProbeError> {
    let packets = ["-show_entries", "packet=stream_index,pts_time,duration_time", "-read_intervals", "99999999%"];
    let probe = run_probe(ffprobe, path, &packets, cancel)?;
    let video = probe.video_streams().next().map(|v| v.index);
    let end = probe
        .packets
        .iter()
        .filter(|p| Some(p.stream_index) == video)
        .filter_map(|p| Some(p.pts_time? + p.duration_time.unwrap_or(0.0)))
        .reduce(f64::max)
        .map(|end| end - probe.format.start_time.unwrap_or(0.0));
    Ok((probe, end))
}

/// Which of ffprobe's per-item sections a [`Query`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Demuxed packets: no decoding, one per video frame.
    Packet,
    /// Decoded frames.
    Frame,
}

/// One read of per-packet or per-frame fields, answered as CSV lines
/// (`-of csv=p=0`; the fields come in ffprobe's own order, which for the
/// fields drapto reads is pts, duration, size, flags). Every packet- or
/// frame-level read drapto makes is one of these.
#[derive(Debug, Clone)]
pub struct Query {
    section: Section,
    fields: String,
    stream: Option<String>,
    interval: Option<String>,
    single_thread: bool,
}

impl Query {
    /// Packet fields, such as `"pts_time,size,flags"`.
    pub fn packets(fields: &str) -> Query {
        Query { section: Section::Packet, fields: fields.into(), stream: None, interval: None, single_thread: false }
    }

    /// Decoded frame fields, such as `"pts_time,repeat_pict"`.
    pub fn frames(fields: &str) -> Query {
        Query { section: Section::Frame, ..Query::packets(fields) }
    }

    /// Only the stream `spec` selects (`"v:0"`, `"a:2"`).
    pub fn stream(mut self, spec: &str) -> Query {
        self.stream = Some(spec.into());
        self
    }

    /// From `seconds` to the end (a seek past the end lands on the last
    /// keyframe).
    pub fn from_seconds(self, seconds: f64) -> Query {
        self.interval(format!("{:.3}%", seconds.max(0.0)))
    }

    /// Only `interval`, in `-read_intervals` syntax (`"%+#1"`: the first item).
    pub fn interval(mut self, interval: String) -> Query {
        self.interval = Some(interval);
        self
    }

    /// Decodes on one thread (several reads run side by side).
    pub fn single_thread(mut self) -> Query {
        self.single_thread = true;
        self
    }

    /// The ffprobe command line for `input`.
    pub fn command(&self, ffprobe: &Path, input: &Path) -> Command {
        let mut cmd = Command::new(ffprobe);
        cmd.args(["-v", "error"]);
        if self.single_thread {
            cmd.args(["-threads", "1"]);
        }
        if let Some(s) = &self.stream {
            cmd.args(["-select_streams", s]);
        }
        if let Some(i) = &self.interval {
            cmd.args(["-read_intervals", i]);
        }
        let section = match self.section {
            Section::Packet => "packet",
            Section::Frame => "frame",
        };
        cmd.args(["-show_entries", &format!("{section}={}", self.fields), "-of", "csv=p=0"]);
        cmd.arg(crate::tools::path_arg(input));
        cmd
    }

    /// Runs the query on `input`: its CSV lines.
    pub fn run(&self, ffprobe: &Path, input: &Path, step: &str, cancel: &Cancel) -> Result<String, ProcessFailure> {
        crate::tools::process::output(&mut self.command(ffprobe, input), step, cancel)
    }
}

/// A video packet's (frame's) presentation time and duration, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTime {
    pub pts: f64,
    pub duration: f64,
}

/// The frames of the first video stream of `path` from `from` seconds to
/// the end (`None`: all; a seek past the end lands on the last keyframe),
/// in presentation order, from its packets (no decoding).
pub fn frame_times(
    ffprobe: &Path,
    path: &Path,
    from: Option<f64>,
    cancel: &Cancel,
) -> Result<Vec<FrameTime>, ProcessFailure> {
    packet_times(ffprobe, path, "v:0", from, cancel)
}

/// The packets of stream `spec` of `path` from `from` seconds (see
/// [`frame_times`]), in presentation order.
fn packet_times(
    ffprobe: &Path,
    path: &Path,
    spec: &str,
    from: Option<f64>,
    cancel: &Cancel,
) -> Result<Vec<FrameTime>, ProcessFailure> {
    let mut query = Query::packets("pts_time,duration_time").stream(spec);
    if let Some(from) = from {
        query = query.from_seconds(from);
    }
    let text = query.run(ffprobe, path, "read packet times", cancel)?;
    let mut frames: Vec<FrameTime> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',').map(str::trim);
            let pts = f.next()?.parse().ok()?;
            Some(FrameTime { pts, duration: f.next().and_then(|d| d.parse().ok()).unwrap_or(0.0) })
        })
        .collect();
    frames.sort_by(|a, b| a.pts.total_cmp(&b.pts));
    Ok(frames)
}

/// The first field of each CSV line that is a number (a frame's line may
/// go on with its side data: "0.143,side_data,").
fn first_numbers(text: &str) -> impl Iterator<Item = f64> + '_ {
    text.lines().filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
}

/// The presentation time of the first video frame of `path` (its first
/// seconds read), on its own clock.
pub fn first_video_time(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Option<f64> {
    let query = Query::packets("pts_time").stream("v:0").interval("%+2".into());
    let text = query.run(ffprobe, path, "read the first frame time", cancel).ok()?;
    first_numbers(&text).reduce(f64::min)
}

/// The latest presentation time (seconds) of any packet of the first video
/// stream at or after `from` seconds: where the video really ends, whatever
/// the container header claims (a truncated file keeps its header duration).
pub fn video_end_time(ffprobe: &Path, path: &Path, from: f64, cancel: &Cancel) -> Option<f64> {
    let frames = frame_times(ffprobe, path, Some(from), cancel).ok()?;
    frames.iter().map(|f| f.pts + f.duration).reduce(f64::max)
}

/// Where audio stream `n` (the `N` of `a:N`) of `path` ends (the latest
/// pts + duration of its packets from `from` seconds, counted from the
/// file's start `start`); read from the file's start when none is there (a
/// track that ends earlier). `None`: no packet at all.
pub fn audio_end(ffprobe: &Path, path: &Path, n: usize, (from, start): (f64, f64), cancel: &Cancel) -> Option<f64> {
    let spec = format!("a:{n}");
    let read = |from| {
        packet_times(ffprobe, path, &spec, from, cancel).ok()?.iter().map(|p| p.pts + p.duration).reduce(f64::max)
    };
    read(Some(from + start)).or_else(|| read(None)).map(|end| end - start)
}

/// Which of a video stream's packets (presentation time and keyframe flag,
/// in file order) a decoder shows, in the same order. All of them, but in a
/// file cut at an open GOP: it starts with pictures presenting before
/// their keyframe (an HEVC CRA's RASL pictures), whose references were cut
/// away with the stream before; the decoder drops them. Only then is the
/// stream's head decoded, to its next keyframe, and what it shows kept. A
/// packet without a time (NaN: a copy cut leaves its leading pictures
/// without one) is not shown.
pub fn shown(
    ffprobe: &Path,
    input: &Path,
    packets: &[(f64, bool)],
    cancel: &Cancel,
) -> Result<impl Iterator<Item = bool>, ProcessFailure> {
    let mut decoded = Vec::new();
    let end = head_end(packets);
    if let Some(end) = end {
        let mut query = Query::frames("pts_time").stream("v:0");
        if end.is_finite() {
            query = query.interval(format!("%{:.3}", end + 1.0));
        }
        let text = query.run(ffprobe, input, "read the first frames", cancel)?;
        decoded = first_numbers(&text).collect();
    }
    let end = end.filter(|_| !decoded.is_empty()).unwrap_or(f64::NEG_INFINITY);
    let packets = packets.to_vec();
    Ok(packets.into_iter().map(move |(pts, _)| pts >= end || decoded.iter().any(|d| (d - pts).abs() < 1e-6)))
}

/// "2.5,K_" (pts_time, flags) → the packet's time (NaN for "N/A": a
/// leading picture a copy cut left without one) and whether it is a
/// keyframe; `None` for a line of anything else.
pub fn packet_line(line: &str) -> Option<(f64, bool)> {
    let mut f = line.trim().split(',').map(str::trim);
    let pts = f.next()?;
    let flags = f.next().filter(|k| !k.is_empty() && k.chars().all(|c| "KDC_".contains(c)))?;
    Some((pts.parse().unwrap_or(f64::NAN), flags.starts_with('K')))
}

/// Where the first frame a decoder shows presents (seconds, the file's
/// clock) in a file that starts on an open GOP (see [`shown`]): later than
/// the leading pictures stored before it, which mkvmerge counts as the
/// track's start. `None` for a file starting on a closed GOP. Only the
/// first seconds are read, and decoded only in that case.
pub fn first_shown(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Option<f64>, ProcessFailure> {
    const HEAD: &str = "%+5";
    let query = Query::packets("pts_time,flags").stream("v:0").interval(HEAD.into());
    let packets: Vec<(f64, bool)> =
        query.run(ffprobe, input, "read the first packets", cancel)?.lines().filter_map(packet_line).collect();
    if head_end(&packets).is_none() {
        return Ok(None);
    }
    let query = Query::frames("pts_time").stream("v:0").interval(HEAD.into());
    let text = query.run(ffprobe, input, "read the first frames", cancel)?;
    Ok(first_numbers(&text).reduce(f64::min))
}

/// How much later than its first packet stream `spec`'s first decoded
/// frame presents, in seconds: the frames a damaged disc left undecodable
/// at its start. `None` where nothing decodes in its first seconds (how
/// much is lost is not known).
pub fn undecoded_head(
    ffprobe: &Path,
    input: &Path,
    spec: &str,
    cancel: &Cancel,
) -> Result<Option<f64>, ProcessFailure> {
    const HEAD: &str = "%+5";
    let query = Query::packets("pts_time").stream(spec).interval(HEAD.into());
    let first_packet = first_numbers(&query.run(ffprobe, input, "read the first packets", cancel)?).reduce(f64::min);
    let query = Query::frames("pts_time").stream(spec).interval(HEAD.into());
    let first_frame = first_numbers(&query.run(ffprobe, input, "read the first frames", cancel)?).reduce(f64::min);
    Ok(first_packet.zip(first_frame).map(|(p, f)| (f - p).max(0.0)))
}

/// Where the head of a stream whose first packets (in file order) a
/// decoder may not show ends: `None` when the file starts on a keyframe
/// that presents first (a closed GOP: every packet is shown); else the
/// presentation time of the next keyframe (infinite: none).
fn head_end(packets: &[(f64, bool)]) -> Option<f64> {
    let &(first, key) = packets.first()?;
    if key && packets.iter().all(|&(p, _)| p >= first) {
        return None;
    }
    let after = packets.iter().filter(|&&(p, k)| k && p > first).map(|&(p, _)| p).reduce(f64::min);
    Some(after.unwrap_or(f64::INFINITY))
}

/// The presentation time of every video packet of `path`, in file order
/// (`NaN` where a packet has none), or `None` if unreadable. A read of every
/// packet.
pub fn video_packet_times(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Option<Vec<f64>> {
    let text = Query::packets("pts_time").stream("v:0").run(ffprobe, path, "read the video's times", cancel).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).map(|l| first_numbers(l).next().unwrap_or(f64::NAN)).collect())
}

/// The longest run of frames that present at one time, and that time:
/// (frames, seconds). An encode of frames whose times jump back has its
/// later frames held at the latest time by ffmpeg's muxer, a film's worth of
/// frames shown as one.
pub fn longest_held(times: &[f64]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    let mut run = 0;
    for (i, t) in times.iter().enumerate() {
        run = if i > 0 && times[i - 1] == *t { run + 1 } else { 1 };
        if best.is_none_or(|(n, _)| run > n) {
            best = Some((run, *t));
        }
    }
    best
}

/// Video packets in a file (one per frame): a failure carries ffprobe's
/// command line and stderr (callers that can go without a count say so
/// with `.ok()`).
pub fn count_frames(ffprobe: &Path, path: &Path, cancel: &Cancel) -> Result<usize, ProcessFailure> {
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "default=nw=1:nk=1"])
        .arg(crate::tools::path_arg(path));
    let command = crate::tools::process::command_line(&cmd);
    let out = crate::tools::process::output(&mut cmd, "count frames", cancel)?;
    let count = out.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).and_then(|n| n.parse().ok());
    let none = format!("no video packets counted in {}", path.display());
    count.ok_or_else(|| {
        ProcessFailure::Failed(crate::error::ProcessError::problem("count frames", "ffprobe", command, none))
    })
}

/// Frames decoded at the start of the video, and at each later time, to
/// look for closed captions.
pub const CAPTION_FRAMES: u32 = 60;

/// Whether the video's pictures carry closed captions (EIA-608/708 as ATSC
/// A/53 side data: DVD line 21, broadcast and TV Blu-ray captions), read
/// from [`CAPTION_FRAMES`] pictures at its start and at each of `times`.
/// Captions are sent with every picture, blank ones as padding, but only
/// where the disc was authored with them: a studio logo before the
/// feature may have none.
///
/// The later reads are a second look, only when the start has none; a
/// seek that fails there (a file cut short, taken as it is) finds none.
pub fn has_captions(ffprobe: &Path, path: &Path, times: &[f64], cancel: &Cancel) -> Result<bool, ProcessFailure> {
    // Whether captions were seen (also by a read that failed further on),
    // and how the read ended.
    let look = |intervals: &[String]| {
        let mut cmd = Command::new(ffprobe);
        cmd.args(["-v", "error", "-select_streams", "v:0", "-read_intervals", &intervals.join(",")])
            .args(["-show_entries", "frame_side_data=side_data_type", "-of", "csv=p=0"])
            .arg(crate::tools::path_arg(path));
        let mut seen = false;
        let ended = crate::tools::process::run(&mut cmd, "look for closed captions", cancel, |l| {
            seen |= l.contains("Closed Captions");
        });
        (seen, ended)
    };
    match look(&[format!("%+#{CAPTION_FRAMES}")]) {
        (true, _) => return Ok(true),
        (false, Err(e)) => return Err(e),
        (false, Ok(_)) => {}
    }
    let later: Vec<String> = times.iter().map(|t| format!("{:.3}%+#{CAPTION_FRAMES}", t.max(0.0))).collect();
    if later.is_empty() {
        return Ok(false);
    }
    match look(&later) {
        (false, Err(e)) if cancel.is_cancelled() => Err(e),
        (seen, _) => Ok(seen),
    }
}

/// Whether audio stream `index` (the `N` of `a:N`) holds any packet. Reads
/// until its first one: instant for a normal track; a whole-file read only
/// for a track that is empty. `None` when ffprobe fails.
pub fn audio_has_packets(ffprobe: &Path, path: &Path, index: usize, cancel: &Cancel) -> Option<bool> {
    let query = Query::packets("stream_index").stream(&format!("a:{index}")).interval("%+#1".into());
    let text = query.run(ffprobe, path, "probe audio packets", cancel).ok()?;
    Some(text.lines().any(|l| !l.trim().is_empty()))
}

/// The channel count and layout of the audio frames decoded for 2 s from
/// each of `times` (seconds), per stream (ffprobe's index): what a track
/// that changes its layout (a DVD's AC-3 opening in 2.0, then 5.1) is
/// later, where the stream's own fields say what its first frames are.
/// Empty when ffprobe fails.
pub fn audio_layouts_at(ffprobe: &Path, path: &Path, times: &[f64], cancel: &Cancel) -> Vec<(usize, u32, String)> {
    let intervals: Vec<String> = times.iter().map(|t| format!("{:.3}%+2", t.max(0.0))).collect();
    let query = Query::frames("stream_index,channels,channel_layout").stream("a").interval(intervals.join(","));
    let Ok(text) = query.run(ffprobe, path, "probe audio layouts", cancel) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            let index = f.next()?.trim().parse().ok()?;
            let channels = f.next()?.trim().parse().ok()?;
            Some((index, channels, f.next().unwrap_or("").trim().to_string()))
        })
        .collect()
}

/// Why probing failed.
#[derive(Debug)]
pub enum ProbeError {
    Run(ProcessFailure),
    Parse(String),
}

/// Side data of the first video frame (where HEVC carries HDR10 SEI).
pub fn first_frame_side_data(ffprobe: &Path, input: &Path, cancel: &Cancel) -> Result<Vec<SideData>, ProcessFailure> {
    #[derive(serde::Deserialize)]
    struct Frames {
        #[serde(default)]
        frames: Vec<Frame>,
    }
    #[derive(serde::Deserialize)]
    struct Frame {
        #[serde(default)]
        side_data_list: Vec<SideData>,
    }
    let mut cmd = Command::new(ffprobe);
    cmd.args(["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames"])
        .args(["-show_entries", "frame=side_data_list", "-print_format", "json"])
        .arg(crate::tools::path_arg(input));
    // (A failed read is said, not taken for a frame without metadata: the
    // output would lose the mastering display and content light.)
    let text = crate::tools::process::output(&mut cmd, "probe first frame", cancel)?;
    let first = serde_json::from_str::<Frames>(&text).ok().and_then(|f| f.frames.into_iter().next());
    Ok(first.map(|f| f.side_data_list).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_run_of_frames_at_one_time_is_found() {
        assert_eq!(longest_held(&[]), None);
        assert_eq!(longest_held(&[0.0, 0.04, 0.08]), Some((1, 0.0)));
        // A source's duplicate timestamp, then a jump held by the muxer.
        let times = [0.0, 0.04, 0.04, 0.08, 25.045, 25.085, 25.125, 25.125, 25.125, 25.125];
        assert_eq!(longest_held(&times), Some((4, 25.125)));
    }

    #[test]
    fn a_rate_read_from_millisecond_timestamps_is_the_standard_one_it_rounds() {
        let rate = |avg: &str, r: &str| {
            let s = Stream { avg_frame_rate: Some(avg.into()), r_frame_rate: Some(r.into()), ..Stream::default() };
            s.frame_rate().unwrap()
        };
        assert!((rate("1000/33", "30000/1001") - 30000.0 / 1001.0).abs() < 1e-9, "no default duration");
        assert!((rate("293/12", "24000/1001") - 24000.0 / 1001.0).abs() < 1e-9);
        assert_eq!(rate("25/1", "50/1"), 25.0, "fields: another rate, not a rounding");
        assert_eq!(rate("12/1", "30000/1001"), 12.0);
        assert_eq!(rate("1000/33", "1000/33"), 1000.0 / 33.0, "no standard rate named");
    }

    #[test]
    fn packet_lines_keep_pictures_without_a_time() {
        assert_eq!(packet_line("2.5,K_"), Some((2.5, true)));
        assert_eq!(packet_line("0.125000,__,"), Some((0.125, false)));
        assert!(packet_line("N/A,__").is_some_and(|(t, k)| t.is_nan() && !k));
        assert_eq!(packet_line("side_data,"), None);
        assert_eq!(packet_line(""), None);
    }

    #[test]
    fn only_a_file_starting_on_an_open_gop_has_a_head_to_decode() {
        // Closed GOP: the first packet is a keyframe presenting first.
        assert_eq!(head_end(&[(0.0, true), (0.125, false), (0.042, false), (2.0, true)]), None);
        // Cut at an HEVC CRA: two RASL pictures present before it.
        let cra = [(0.143, true), (0.101, false), (0.06, false), (0.185, false), (2.143, true), (4.1, true)];
        assert_eq!(head_end(&cra), Some(2.143));
        // Cut before any keyframe, and a file with a single keyframe.
        assert_eq!(head_end(&[(0.5, false), (1.0, true)]), Some(1.0));
        assert_eq!(head_end(&[(0.2, true), (0.1, false)]), Some(f64::INFINITY));
    }

    const SAMPLE: &str = r#"{
      "streams": [
        {"index": 0, "codec_name": "hevc", "codec_type": "video", "width": 3840, "height": 2160,
         "pix_fmt": "yuv420p10le", "color_transfer": "smpte2084", "color_primaries": "bt2020",
         "r_frame_rate": "24000/1001", "avg_frame_rate": "24000/1001", "start_time": "0.000000",
         "disposition": {"default": 1, "forced": 0, "attached_pic": 0},
         "tags": {"language": "eng", "BPS": "1000"},
         "side_data_list": [{"side_data_type": "DOVI configuration record", "dv_profile": 8, "dv_level": 6,
                             "rpu_present_flag": 1, "dv_bl_signal_compatibility_id": 1}]},
        {"index": 1, "codec_name": "truehd", "codec_type": "audio", "channels": 8, "channel_layout": "7.1",
         "sample_rate": "48000", "disposition": {"default": 0, "forced": 1}, "tags": {"LANGUAGE": "fre", "title": "VF"}},
        {"index": 2, "codec_name": "mjpeg", "codec_type": "video", "disposition": {"attached_pic": 1}},
        {"index": 3, "codec_type": "attachment", "codec_name": "ttf", "tags": {"filename": "a.ttf"}}
      ],
      "chapters": [{"id": 1, "start_time": "0.000000", "end_time": "60.5", "tags": {"title": "One"}}],
      "format": {"format_name": "matroska,webm", "duration": "7200.5", "size": "123456", "bit_rate": "N/A"}
    }"#;

    #[test]
    fn duration_tags() {
        assert_eq!(parse_duration_tag("00:00:20.023000000"), Some(20.023));
        assert_eq!(parse_duration_tag("01:11:49.5"), Some(4309.5));
        assert_eq!(parse_duration_tag("1193:02:47.295000000"), Some(4294967.295));
        assert_eq!(parse_duration_tag("nonsense"), None);
        assert_eq!(parse_duration_tag("1:2:3:4"), None);
    }

    #[test]
    fn parses_typed_fields() {
        let p = Probe::from_json(SAMPLE).unwrap();
        assert_eq!(p.format.duration, Some(7200.5));
        assert_eq!(p.format.bit_rate, None);
        assert_eq!(p.video_streams().count(), 1);
        assert_eq!(p.attachments().count(), 2);
        let v = &p.streams[0];
        assert_eq!(v.bit_depth(), Some(10));
        assert!((v.frame_rate().unwrap() - 23.976).abs() < 0.001);
        let dv = v.side_data("dovi").unwrap();
        assert_eq!(dv.number("dv_profile"), Some(8.0));
        let a = &p.streams[1];
        assert_eq!(a.tag("language"), Some("fre"));
        assert!(a.has_disposition("forced") && !a.has_disposition("default"));
        assert_eq!(p.chapters[0].end_time, Some(60.5));
    }

    #[test]
    fn ratios_parse() {
        assert_eq!(parse_ratio("30000/1001").map(|f| (f * 1000.0).round()), Some(29970.0));
        assert_eq!(parse_ratio("0/0"), None);
        assert_eq!(parse_ratio("16:9").map(|f| (f * 100.0).round()), Some(178.0));
        assert_eq!(parse_ratio("25"), Some(25.0));
    }
}
