//! The typed JSON ffprobe prints (`-print_format json`): format, streams
//! (with colour fields, dispositions, tags and side data), chapters and
//! packets, and the readings of its numbers and tags.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

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
