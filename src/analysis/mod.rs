//! Analysis: everything drapto learns about an input before deciding how to
//! encode it, gathered into one [`Analysis`].
//!
//! Each submodule answers one question (resolution class, HDR, audio plans…);
//! [`analyze`] runs the probes and puts the answers together. Nothing here
//! decides encoder settings: that is [`crate::plan`].

pub mod audio;
pub mod channels;
pub mod crop;
pub mod dolby_vision;
pub mod extent;
pub mod hdr;
pub mod interlace;
pub mod mux_plan;
mod parallel;
pub mod resolution;

use crate::analysis::mux_plan::{Carry, MuxPlan};
use crate::cancel::Cancel;
use crate::config::{AudioSettings, FieldMode, LossPolicy, Settings};
use crate::error::{Error, Result};
use crate::matroska::structure::Structure;
use crate::tools::ffprobe::StreamKind;
use crate::tools::ffprobe::{self, Probe, ProbeError};
use crate::tools::mkvtoolnix::{IdentifyError, Mkvtoolnix};
use audio::AudioPlan;
use crop::CropDecision;
use dolby_vision::DolbyVision;
use hdr::HdrInfo;
use interlace::InterlaceVerdict;
use resolution::ResolutionClass;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Seconds of an audio track's start that may not decode unsaid and
/// uncorrected: more than an Opus source's pre-skip, less than an AC-3
/// frame.
const UNDECODED_AUDIO_SLACK: f64 = 0.03;

/// What drapto knows about one input.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub input: PathBuf,
    pub size_bytes: u64,
    /// The real length of the film: where its video and audio end (see
    /// [`extent`]), whatever the container claims.
    pub duration: f64,
    /// Where the first video stream's last frame ends, in seconds (measured
    /// from packets near the end; the container duration when unreadable).
    pub video_end: f64,
    /// How the real length compares with what the file claims.
    pub extent: extent::Extent,
    pub video: VideoInfo,
    pub resolution: ResolutionClass,
    pub hdr: HdrInfo,
    pub dolby_vision: Option<DolbyVision>,
    pub interlace: InterlaceVerdict,
    pub crop: CropDecision,
    pub audio: Vec<AudioPlan>,
    /// What the final mux carries, track by track, and what it cannot.
    pub mux: MuxPlan,
    /// Things the user should know (extra video streams, odd audio).
    pub warnings: Vec<String>,
    /// The raw probe, for muxing and validation.
    #[serde(skip)]
    pub probe: Probe,
}

impl Analysis {
    /// Width and height of the picture that is encoded (after the crop).
    pub fn picture_size(&self) -> (u32, u32) {
        self.crop.crop.map_or((self.video.width, self.video.height), |c| (c.width, c.height))
    }

    /// The picture's sample aspect ratio (`32:27` on a 16:9 NTSC DVD);
    /// `(1, 1)` when the stream gives none or one that does not parse.
    pub fn sample_aspect(&self) -> (u32, u32) {
        self.video.sample_aspect_ratio.as_deref().and_then(ratio).unwrap_or((1, 1))
    }
}

/// The spacing of `gaps` where nearly all are alike (95% within 3% of their
/// median, or a millisecond and a half: Matroska's timestamps are whole
/// milliseconds, 33 and 34 ms in turn at 29.97 fps), else `None` (and
/// for fewer than 10).
fn even(gaps: &[f64]) -> Option<f64> {
    let mut sorted = gaps.to_vec();
    sorted.sort_by(f64::total_cmp);
    let gap = *sorted.get(sorted.len() / 2).filter(|_| sorted.len() >= 10)?;
    let alike = sorted.iter().filter(|g| (*g - gap).abs() <= (0.03 * gap).max(0.0015)).count();
    (alike as f64 >= 0.95 * sorted.len() as f64).then_some(gap)
}

/// `n:d` as ffprobe writes a ratio, both positive.
pub(crate) fn ratio(s: &str) -> Option<(u32, u32)> {
    let (n, d) = s.split_once(':')?;
    let r: (u32, u32) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    (r.0 > 0 && r.1 > 0).then_some(r)
}

/// The video stream that is encoded (always the first one).
#[derive(Debug, Clone, Serialize)]
pub struct VideoInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: Option<String>,
    pub bit_depth: Option<u32>,
    pub frame_rate: Option<f64>,
    pub frame_count: Option<u64>,
    pub sample_aspect_ratio: Option<String>,
    pub field_order: Option<String>,
    /// Video streams after the first, which are not encoded.
    pub ignored_streams: usize,
    /// The rate the filters are given first (`fps=`, one frame out per
    /// frame in) when the container claims twice the frames' own (a
    /// field's duration per frame): ffmpeg's filters take the claim, and
    /// inverse telecine stamped its frames at 47.95 fps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restamped_rate: Option<String>,
    /// The pictures change size in the film (a DVD title opening on a
    /// 352-wide cell before its 720-wide feature): `width`×`height` is the
    /// size most of it has, which every picture is scaled to.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub size_changes: bool,
}

/// The programs analysis uses. Without ffmpeg, crop and interlace detection
/// fall back to the stream's own flags; without mediainfo, Dolby Vision is
/// seen through ffprobe alone. MKVToolNix reads what the mux will carry.
#[derive(Debug, Clone, Copy)]
pub struct Probes<'a> {
    pub ffprobe: &'a Path,
    pub ffmpeg: Option<&'a Path>,
    pub mediainfo: Option<&'a Path>,
    pub mkvtoolnix: &'a Mkvtoolnix,
}

impl<'a> Probes<'a> {
    /// Every program of an encode's toolbox.
    pub fn of(tools: &'a crate::tools::Toolbox) -> Probes<'a> {
        Probes {
            ffprobe: &tools.ffprobe,
            ffmpeg: Some(&tools.ffmpeg),
            mediainfo: tools.mediainfo.as_deref(),
            mkvtoolnix: &tools.mkvtoolnix,
        }
    }
}

/// Probes `input` and answers every question about it.
/// The settings an analysis follows, taken from the configuration once.
#[derive(Debug, Clone)]
pub struct AnalysisOptions {
    /// Interlaced and telecined sources: inverse telecine, deinterlace, or
    /// as they are.
    pub interlace: FieldMode,
    /// Keep the black bars.
    pub disable_crop: bool,
    /// Encode a rip that ends before its container says.
    pub allow_truncated: bool,
    /// What to do when the output cannot carry something of the rip.
    pub on_loss: LossPolicy,
    /// The Opus bitrates by channel count.
    pub audio: AudioSettings,
}

impl AnalysisOptions {
    pub fn of(settings: &Settings) -> AnalysisOptions {
        let p = &settings.processing;
        AnalysisOptions {
            interlace: p.interlace,
            disable_crop: p.disable_crop,
            allow_truncated: p.allow_truncated,
            on_loss: p.on_loss,
            audio: settings.audio.clone(),
        }
    }
}

pub fn analyze(input: &Path, probes: Probes, options: &AnalysisOptions, cancel: &Cancel) -> Result<Analysis> {
    let a = Analyzer { input, probes, options, cancel };
    let (size_bytes, mut probe) = a.open()?;
    let mut warnings = Vec::new();
    let restamped_rate = a.check_frame_rate(&mut probe, &mut warnings);
    a.widest_audio_layouts(&mut probe, &mut warnings);
    let (v, width, height) = a.film(&probe, &mut warnings)?;
    let (width, height, turned) = upright(v, width, height, &mut warnings);
    let (width, height, shown_sar) = a.shown_size(width, height, &mut warnings);
    let (mut extent, mediainfo, structure) = a.length_and_structure(&probe, &mut warnings)?;
    // The size ffprobe's sample aspect ratio is of: the container's
    // pictures (their display size is said of them), unless it crops them.
    let described = match (&shown_sar, container_pictures(&structure)) {
        (None, Some(size)) if !turned => size,
        _ => (width, height),
    };
    let first_sar = shown_sar.or_else(|| v.sample_aspect_ratio.clone().filter(|s| s != "0:1"));
    let end = probe.duration().unwrap_or(0.0);
    let (width, height, shown_sar, size_changes) =
        a.main_size((width, height, first_sar), described, end, &mut warnings);
    let mut hdr = a.hdr(v, &structure)?;
    let dolby_vision = dolby_vision::detect(v, mediainfo.as_ref());
    let file_start = probe.format.start_time.unwrap_or(0.0);
    let audio = audio::plan_tracks(probe.of_type(StreamKind::Audio), file_start, &options.audio);
    let src = crop::Source {
        path: input,
        width,
        height,
        duration: extent.end,
        bit_depth: v.bit_depth().unwrap_or(8),
        hdr: hdr.kind.is_hdr(),
        // (An RGB source's pictures are measured as limited-range YUV, the
        // form it is encoded in: its black is 16, not 0.)
        full_range: hdr.colour.range.as_deref() == Some("pc") && !matches!(hdr.colour.matrix.as_deref(), Some("gbr")),
    };
    // Metadata that describes the full frame keeps it whole.
    let full_frame = match (&dolby_vision, &hdr.hdr10_plus) {
        (Some(_), _) => Some("not cropped: Dolby Vision metadata describes the full frame"),
        (_, Some(h)) if h.windows > 1 => Some("not cropped: its HDR10+ processing windows describe the full frame"),
        _ => None,
    };
    let (interlace, crop, audio) = a.picture_and_sound(v, &src, full_frame, audio, &mut warnings)?;
    let interlace = a.film_rate_throughout(interlace, v, &extent, file_start);
    if interlace.leaves_combing() {
        warnings.push(format!("interlace: combed pictures are left as they are: {}", interlace.reason));
    }
    if options.interlace == FieldMode::Ivtc && interlace.treatment != interlace::Treatment::Ivtc {
        // (Said where it is seen: only the JSON's reason told.)
        warnings.push(format!("interlace: {}", interlace.reason));
    }
    if hdr.hdr10_plus.is_some() && interlace.decimation_cycle().is_some() {
        // Found here, not when the encode has lost frames the metadata was for.
        a.losing(
            vec!["its HDR10+ metadata (frame by frame, and inverse telecine drops frames)".into()],
            &mut warnings,
        )?;
        hdr.hdr10_plus = None;
    }
    let frame_count = a.frame_count(v, &interlace, &extent, file_start);
    let mut mux = a.mux_plan(structure, &probe, &mut extent, &audio, &mut warnings)?;
    if crop.crop.is_some() {
        warnings.extend(mux.reposition_subtitles());
    }
    Ok(Analysis {
        input: input.to_path_buf(),
        size_bytes,
        duration: extent.end,
        video_end: extent.video_end,
        resolution: ResolutionClass::of(width, height),
        video: {
            let info = VideoInfo::of(v, width, height, probe.video_streams().count() - 1);
            let turn = |sar: String| match sar.split_once(':') {
                Some((n, d)) if turned => format!("{d}:{n}"),
                _ => sar,
            };
            let sample_aspect_ratio = shown_sar.or(info.sample_aspect_ratio.map(turn));
            VideoInfo { restamped_rate, sample_aspect_ratio, size_changes, frame_count, ..info }
        },
        extent,
        hdr,
        dolby_vision,
        interlace,
        crop,
        audio,
        mux,
        warnings,
        probe,
    })
}

/// Whether `frames` at `rate` fill `length` seconds, within what the
/// frames check allows (1%, or 2 frames): a count that does not is
/// another file's (a tag copied by a cut, even of under a second), or the
/// last picture is held for seconds (then counted anew too).
fn frames_fit(frames: u64, rate: Option<f64>, length: f64) -> bool {
    let n = frames as f64;
    rate.filter(|r| *r > 0.0).is_some_and(|r| (n - length * r).abs() <= (n * 0.01).max(2.0))
}

/// The picture size in a `showinfo` line (`… s:720x440 …`).
fn showinfo_size(line: &str) -> Option<(u32, u32)> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let (w, h) = line.split(" s:").nth(1)?.split_whitespace().next()?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The picture size the container gives the video track (mkvmerge's
/// `pixel_dimensions`), which its display size is said of.
fn container_pictures(structure: &Structure) -> Option<(u32, u32)> {
    let video = structure.id.tracks.iter().find(|t| t.kind == crate::tools::mkvtoolnix::TrackKind::Video)?;
    let dims = video.properties.get("pixel_dimensions")?.as_str()?;
    let (w, h) = dims.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The sample aspect ratio (`n:d`) that shows `size` pictures in the
/// shape `first` pictures of sample aspect `first_sar` (1:1 when none) are
/// shown in.
fn same_shape(first: (u32, u32), first_sar: Option<&str>, size: (u32, u32)) -> Option<String> {
    let (sn, sd) = first_sar.and_then(ratio).unwrap_or((1, 1));
    let num = u64::from(first.0) * u64::from(sn) * u64::from(size.1);
    let den = u64::from(first.1) * u64::from(sd) * u64::from(size.0);
    let g = gcd(num, den).max(1);
    (num > 0 && den > 0).then(|| format!("{}:{}", num / g, den / g))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Whether the stream's display matrix turns its pictures by a quarter
/// (90 or 270 degrees).
fn quarter_turned(v: &ffprobe::Stream) -> bool {
    let rotation = v.side_data_list.iter().find(|s| s.side_data_type == "Display Matrix");
    rotation.and_then(|s| s.number("rotation")).is_some_and(|r| (r.abs().round() as i64) % 180 == 90)
}

/// The sample aspect ratio in a showinfo line (`sar:8/9`), as ffprobe
/// writes one (`8:9`).
fn showinfo_sar(line: &str) -> Option<String> {
    let sar = line.split(" sar:").nth(1)?.split_whitespace().next()?;
    let (n, d) = sar.split_once('/')?;
    Some(format!("{}:{}", n.parse::<u32>().ok()?, d.parse::<u32>().ok()?))
}

/// One analysis under way: the input, the programs, the options.
struct Analyzer<'a> {
    input: &'a Path,
    probes: Probes<'a>,
    options: &'a AnalysisOptions,
    cancel: &'a Cancel,
}

/// What makes `input` no rip at a glance (its size and first bytes), as
/// analysis would say it: for a dry run, which does not analyse (it said
/// `encode` for an empty file or an MP4 named `.mkv`, which the run fails at
/// once). `None`: it may be one.
pub fn not_a_rip(input: &Path) -> Option<String> {
    use std::io::Read;
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if let Some(why) = not_a_file(&meta) {
        return Some(why.into());
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(input).and_then(|mut f| f.read_exact(&mut magic));
    match read {
        Err(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => Some(format!("cannot be read: {e}")),
        _ if magic != [0x1A, 0x45, 0xDF, 0xA3] => Some("is not a Matroska file (it does not begin as one)".into()),
        _ => None,
    }
}

/// What makes a file of `meta` no rip before any read: not a regular file,
/// or empty.
fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    if !meta.is_file() {
        Some("is not a regular file")
    } else if meta.len() == 0 {
        Some("is empty (0 bytes)")
    } else {
        None
    }
}

/// The ffprobe indexes of the subtitle streams that claim to last far past
/// the film (`extent`'s overlong ones) and are clamped to its end when
/// muxing, each said in `warnings`. One of a codec the mux cannot clamp
/// (see [`crate::matroska::rules::CLAMPABLE_SUBTITLES`]) is copied as it
/// is, and the output is to last as long as it claims.
fn clamped_subtitles(
    structure: &Structure,
    probe: &Probe,
    extent: &mut extent::Extent,
    warnings: &mut Vec<String>,
) -> Vec<usize> {
    let subtitles: Vec<usize> = probe.of_type(StreamKind::Subtitle).map(|s| s.index).collect();
    let mkv_subtitles: Vec<_> = structure.id.of_kind(crate::tools::mkvtoolnix::TrackKind::Subtitles).collect();
    let (mut clamped, mut kept) = (Vec::new(), Vec::new());
    let end = extent.end;
    for o in &extent.overlong {
        let n = probe.of_type(o.kind).position(|s| s.index == o.index).map_or(0, |n| n + 1);
        let claims =
            format!("{} track {n} claims to last {:.0} s, but the film ends at {end:.1} s", o.kind.name(), o.claimed);
        if o.kind != StreamKind::Subtitle {
            warnings.push(format!("{claims}: not truncation; the output ends with the film"));
            continue;
        }
        let codec = subtitles.iter().position(|i| *i == o.index).and_then(|k| mkv_subtitles.get(k)?.text("codec_id"));
        match codec {
            Some(c) if crate::matroska::rules::CLAMPABLE_SUBTITLES.contains(&c) => {
                clamped.push(o.index);
                warnings.push(format!(
                    "{claims}: not truncation; its durations are clamped to the film's end, and any line starting after it is left out"
                ));
            }
            codec => {
                warnings.push(format!(
                    "{claims}: drapto cannot clamp {} subtitles, so they are copied as they are, and the output claims that length too",
                    codec.unwrap_or("these")
                ));
                kept.push(o.index);
            }
        }
    }
    for index in kept {
        extent.keep_overlong(index);
    }
    clamped
}

/// ffmpeg turns a picture its display matrix turns a quarter (a phone's
/// portrait video) upright as it decodes: that is the picture encoded.
/// Returns its size upright, and whether it was turned.
fn upright(v: &ffprobe::Stream, width: u32, height: u32, warnings: &mut Vec<String>) -> (u32, u32, bool) {
    if !quarter_turned(v) {
        return (width, height, false);
    }
    warnings.push(format!(
        "the picture is turned a quarter for display (its display matrix): encoded upright, {height}x{width}"
    ));
    (height, width, true)
}

impl Analyzer<'_> {
    fn bad(&self, problem: String) -> Error {
        Error::Input { path: self.input.to_path_buf(), problem }
    }

    /// The input's size and ffprobe's view of it: a readable Matroska file.
    fn open(&self) -> Result<(u64, Probe)> {
        let input = self.input;
        let meta = std::fs::metadata(input).map_err(Error::io("read", input))?;
        if let Some(why) = not_a_file(&meta) {
            return Err(self.bad(why.into()));
        }
        std::fs::File::open(input).map_err(Error::io("open", input))?;
        let probe = ffprobe::probe(self.probes.ffprobe, input, self.cancel).map_err(|e| match e {
            ProbeError::Run(crate::error::ProcessFailure::Failed(p)) => {
                self.bad(format!("not a readable media file ({})", p.cause().unwrap_or("ffprobe could not read it")))
            }
            ProbeError::Run(other) => Error::process(input)(other),
            ProbeError::Parse(msg) => self.bad(format!("ffprobe output could not be read: {msg}")),
        })?;
        let format = &probe.format.format_name;
        if !format.split(',').any(|f| f == "matroska") {
            let seen = if format.is_empty() { "unknown" } else { format.as_str() };
            return Err(self.bad(format!("is not a Matroska file (ffprobe reads it as {seen})")));
        }
        Ok((meta.len(), probe))
    }

    /// The film's video stream (the first that is not cover art) and its
    /// size; the file must have a duration.
    fn film<'p>(&self, probe: &'p Probe, warnings: &mut Vec<String>) -> Result<(&'p ffprobe::Stream, u32, u32)> {
        let videos: Vec<_> = probe.video_streams().collect();
        let Some(v) = videos.first().copied() else {
            return Err(self.bad("has no video stream".into()));
        };
        if videos.len() > 1 {
            let others = videos.len() - 1;
            warnings.push(format!(
                "{} video streams; only the first is encoded, the other {others} are left out",
                videos.len()
            ));
        }
        let (Some(width), Some(height)) = (v.width, v.height) else {
            return Err(self.bad("its video stream has no dimensions (corrupt or unsupported codec)".into()));
        };
        if !probe.duration().is_some_and(|d| d > 0.0) {
            return Err(self.bad("has no duration (truncated or corrupt)".into()));
        }
        Ok((v, width, height))
    }

    /// Audio tracks whose frames carry their own channel configuration
    /// (AC-3, E-AC-3, DTS, MPEG audio, AAC) are read at a tenth, half and
    /// nine tenths of the film: ffprobe describes a track
    /// by its first frames, and a DVD's AC-3 that opens with a few seconds
    /// of 2.0 before the 5.1 feature was planned, and downmixed, as
    /// stereo. The widest layout found is the track's in `probe`, with a
    /// warning.
    fn widest_audio_layouts(&self, probe: &mut Probe, warnings: &mut Vec<String>) {
        let end = probe.duration().unwrap_or(0.0);
        let changeable =
            |s: &ffprobe::Stream| matches!(s.codec_name.as_str(), "ac3" | "eac3" | "dts" | "mp2" | "mp3" | "aac");
        if !probe.of_type(StreamKind::Audio).any(changeable) || end <= 0.0 {
            return;
        }
        let times = later_looks(end);
        let seen = ffprobe::audio_layouts_at(self.probes.ffprobe, self.input, &times, self.cancel);
        let audio_streams = probe.streams.iter_mut().filter(|s| s.codec_type == StreamKind::Audio);
        for (n, s) in audio_streams.enumerate().filter(|(_, s)| changeable(s)) {
            let first = s.channels.unwrap_or(0);
            let widest = seen.iter().filter(|(i, ..)| *i == s.index).max_by_key(|(_, c, _)| *c);
            let Some((_, channels, layout)) = widest.filter(|(_, c, _)| *c > first) else { continue };
            let was = format!("{first}-channel ({})", s.channel_layout.as_deref().unwrap_or("no layout"));
            warnings.push(format!(
                "audio track {} opens as {was} audio but is {channels}-channel ({layout}) later: encoded as {layout}",
                n + 1
            ));
            s.channels = Some(*channels);
            s.channel_layout = (!layout.is_empty()).then(|| layout.clone());
        }
    }

    /// The film's frame rate checked against the spacing of its first
    /// packets: interlaced video muxed with a field's duration per frame
    /// (16.7 ms) claims twice its rate (59.94 for 29.97), and hard-telecined
    /// film went unrecognised (the cadence is only looked for at 29.97) and
    /// came out deinterlaced at 29.97 with a near-duplicate in every five.
    /// Such a claim is halved in `probe`, with a warning; returns the rate
    /// the filters are to be given (see [`VideoInfo::restamped_rate`]).
    ///
    /// Only a claim every frame of the film keeps is halved: the packets
    /// are evenly spaced at twice the claimed duration at its start, in its
    /// middle and near its end. A variable frame rate whose most common
    /// duration (the one mkvmerge claims) was half its opening's was
    /// halved: the standard path dropped every other frame of its faster
    /// part, validated, and the chunked path failed after the whole encode.
    fn check_frame_rate(&self, probe: &mut Probe, warnings: &mut Vec<String>) -> Option<String> {
        let first = self.packet_gaps("%+#120", None);
        let gap = even(&first)?;
        let v = probe.streams.iter().find(|s| s.codec_type == StreamKind::Video && !s.is_attached_pic())?;
        let claimed = v.frame_rate()?;
        let alike = |g: f64| (claimed * g / 2.0 - 1.0).abs() <= 0.03;
        if !alike(gap) {
            return None;
        }
        // The whole video's frames at that spacing span its length, where
        // the container counts them.
        let start = v.start_time.unwrap_or(0.0);
        let length = v.duration.or_else(|| v.duration_tag()).or_else(|| Some(probe.duration()? - start));
        if let (Some(n), Some(length)) = (v.frame_count(), length) {
            if (n as f64 * gap / length - 1.0).abs() > 0.02 {
                return None;
            }
        }
        // And in its middle and near its end (windows with too few frames
        // to tell, a still or the end, say nothing).
        if let Some(length) = length.filter(|l| *l > 4.0) {
            for at in [start + length * 0.5, start + length - 2.0] {
                let gaps = self.packet_gaps(&format!("{at:.3}%{:.3}", at + 2.0), Some(at));
                if gaps.len() >= 10 && !even(&gaps).is_some_and(alike) {
                    return None;
                }
            }
        }
        let v = probe.streams.iter_mut().find(|s| s.codec_type == StreamKind::Video && !s.is_attached_pic())?;
        let halved = |r: Option<&str>| {
            let (n, d) = r?.split_once('/')?;
            Some(format!("{n}/{}", d.parse::<u64>().ok()? * 2))
        };
        let rate = halved(v.avg_frame_rate.as_deref()).unwrap_or_else(|| format!("{:.6}", claimed / 2.0));
        warnings.push(format!(
            "the container claims {claimed:.3} fps, but its frames are {:.1} ms apart (a field's duration given per frame): taken as {:.3} fps",
            gap * 1000.0,
            claimed / 2.0
        ));
        v.r_frame_rate = halved(v.r_frame_rate.as_deref()).or_else(|| Some(rate.clone()));
        v.avg_frame_rate = Some(rate.clone());
        Some(rate)
    }

    /// The gaps between the video's packets in `interval` (ffprobe's
    /// `-read_intervals`, positions on the video's clock), from `from` on
    /// where given (a seek lands on the keyframe before).
    fn packet_gaps(&self, interval: &str, from: Option<f64>) -> Vec<f64> {
        let query = ffprobe::Query::packets("pts_time").stream("v:0").interval(interval.to_string());
        let Ok(text) = query.run(self.probes.ffprobe, self.input, "read packet times", self.cancel) else {
            return Vec::new();
        };
        let from = from.unwrap_or(f64::MIN);
        let mut pts: Vec<f64> = text
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .filter(|t: &f64| *t >= from - 1e-3)
            .collect();
        pts.sort_by(f64::total_cmp);
        pts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 1e-4).collect()
    }

    /// The size of the pictures ffmpeg decodes from a stream of
    /// `width`×`height`: less the container's crop (Matroska PixelCrop,
    /// `mkvmerge --cropping`), which ffmpeg applies and ffprobe does not
    /// report. Bars and crops measured on the uncropped size went wrong
    /// (bars misjudged, a planned crop ffmpeg clamped to nothing).
    ///
    /// With such a crop, also the sample aspect ratio the decoded pictures
    /// carry: the container's display size is the cropped picture's, so
    /// ffprobe's ratio (of the whole picture) is not theirs.
    fn shown_size(&self, width: u32, height: u32, warnings: &mut Vec<String>) -> (u32, u32, Option<String>) {
        match self.picture_at(None) {
            Some(((w, h), sar)) if (w, h) != (width, height) && w <= width && h <= height => {
                warnings.push(format!(
                    "the container crops the picture to {w}x{h} of {width}x{height} (PixelCrop): that is what is encoded"
                ));
                (w, h, sar)
            }
            _ => (width, height, None),
        }
    }

    /// The size most of the film's pictures have, and whether it changes:
    /// ffprobe and the first picture give the opening's size, and a DVD
    /// title opening on a 352-wide cell before its 720-wide feature was
    /// encoded at half its width (and shown at half its width on screen),
    /// and validated. Pictures decoded at a tenth, half and nine tenths of
    /// the film (`end` seconds) vote with the first (`first`: its size and
    /// sample aspect ratio); a tie goes to the larger.
    fn main_size(
        &self,
        first: (u32, u32, Option<String>),
        described: (u32, u32),
        end: f64,
        warnings: &mut Vec<String>,
    ) -> (u32, u32, Option<String>, bool) {
        if end <= 0.0 {
            return (first.0, first.1, first.2, false);
        }
        let looks: Vec<_> = later_looks(end).iter().filter_map(|t| self.picture_at(Some(*t))).collect();
        if looks.iter().all(|((w, h), _)| (*w, *h) == (first.0, first.1)) {
            return (first.0, first.1, first.2, false);
        }
        let mut seen = vec![((first.0, first.1), first.2.clone())];
        seen.extend(looks);
        let votes = |size: (u32, u32)| seen.iter().filter(|(s, _)| *s == size).count();
        let (size, _) = seen
            .iter()
            .max_by_key(|(s, _)| (votes(*s), u64::from(s.0) * u64::from(s.1)))
            .cloned()
            .expect("the first picture votes");
        // Shown in the shape the container gives its pictures (a DVD's
        // cells are all 4:3, or all 16:9): ffmpeg gives every picture the
        // container's ratio, which a remux made for the opening's size (the
        // feature came out twice as wide) and mkvmerge for the feature's.
        let sar = same_shape(described, first.2.as_deref(), size);
        let mut sizes: Vec<String> = Vec::new();
        for ((w, h), _) in &seen {
            let s = format!("{w}x{h}");
            if !sizes.contains(&s) {
                sizes.push(s);
            }
        }
        warnings.push(format!(
            "the picture changes size in the film ({}): every picture is encoded at {}x{}, the size most of it has",
            sizes.join(", "),
            size.0,
            size.1
        ));
        (size.0, size.1, sar, true)
    }

    /// The size and sample aspect ratio of the picture ffmpeg decodes `at`
    /// seconds into the film (the first without).
    fn picture_at(&self, at: Option<f64>) -> Option<((u32, u32), Option<String>)> {
        let ffmpeg = self.probes.ffmpeg?;
        let mut a = crate::tools::ffmpeg::FfmpegArgs::default();
        // (No progress lines: written from another thread, they can land
        // inside the lines read here.)
        a.extend(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
        if let Some(t) = at {
            a.arg("-ss").arg(format!("{t:.3}"));
        }
        a.input(self.input);
        a.extend(["-map", "0:v:0", "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"]);
        let mut shown = None;
        let read =
            crate::tools::process::run_lines(&mut a.command(ffmpeg), "decoded picture size", self.cancel, |line| {
                if let crate::tools::process::Line::Err(l) = line
                    && shown.is_none()
                {
                    shown = showinfo_size(l).map(|size| (size, showinfo_sar(l).filter(|s| s != "0:1")));
                }
            });
        read.ok().and(shown)
    }

    /// The film's real length (a truncated rip fails unless allowed),
    /// mediainfo's view (for Dolby Vision) and what MKVToolNix reads (what
    /// the mux carries), side by side: none needs another.
    fn length_and_structure(
        &self,
        probe: &Probe,
        warnings: &mut Vec<String>,
    ) -> Result<(extent::Extent, Option<crate::tools::mediainfo::MediaInfo>, Structure)> {
        let (input, probes, cancel) = (self.input, self.probes, self.cancel);
        let (extent, mediainfo, structure) = std::thread::scope(|s| {
            let mi =
                s.spawn(|| probes.mediainfo.and_then(|mi| crate::tools::mediainfo::mediainfo(mi, input, cancel).ok()));
            let structure = s.spawn(|| Structure::read(probes.mkvtoolnix, input, cancel));
            let extent = extent::measure(probes.ffprobe, input, probe, cancel);
            (extent, mi.join().expect("mediainfo"), structure.join().expect("mkvtoolnix"))
        });
        cancel.check()?;
        let structure = structure.map_err(|e| match e {
            IdentifyError::Run(f) => Error::process(input)(f),
            IdentifyError::Unreadable(m) => self.bad(m),
        })?;
        if let Some(cut) = &structure.cut_short {
            let (part, size, claimed) = (cut.part.clone(), cut.size, cut.claimed);
            if !self.options.allow_truncated {
                return Err(Error::CutShort { path: input.to_path_buf(), part, size, claimed });
            }
            warnings.push(format!(
                "the rip is cut short: the file ends at byte {size} of at least {claimed}, inside its {part}; encoded with what can be read of them (allow_truncated)"
            ));
        }
        if extent.truncated {
            if !self.options.allow_truncated {
                let (ends_at, promised) = (extent.ends_at(), extent.promise());
                return Err(Error::Truncated { path: input.to_path_buf(), ends_at, promised });
            }
            warnings.push(format!(
                "the rip is truncated: it ends at {:.1} s of {:.1} s; encoding what is there (allow_truncated)",
                extent.ends_at(),
                extent.promise()
            ));
        }
        let unexplained = !extent.truncated && extent.overlong.is_empty();
        if unexplained && extent.expected_output() < extent.claimed - extent::DURATION_TOLERANCE {
            warnings.push(format!(
                "the file claims to last {:.1} s, but its tracks claim and hold {:.1} s: a header written wrong; the output is checked against the tracks",
                extent.claimed,
                extent.expected_output()
            ));
        }
        Ok((extent, mediainfo, structure))
    }

    /// Interlacing, black bars, and which audio tracks hold samples, side
    /// by side (each alone leaves a core idle at its end; the audio checks
    /// are a program start per track). A track without a single sample
    /// cannot be encoded: it is left out, loudly.
    fn picture_and_sound(
        &self,
        v: &ffprobe::Stream,
        src: &crop::Source,
        full_frame: Option<&'static str>,
        mut audio: Vec<AudioPlan>,
        warnings: &mut Vec<String>,
    ) -> Result<(InterlaceVerdict, CropDecision, Vec<AudioPlan>)> {
        let (input, probes, cancel) = (self.input, self.probes, self.cancel);
        let (interlace, crop, empty) = std::thread::scope(|s| {
            let i = s.spawn(|| self.interlace(v, src.duration));
            let tracks = &audio;
            let e = s.spawn(move || {
                tracks
                    .iter()
                    .map(|a| ffprobe::audio_has_packets(probes.ffprobe, input, a.index, cancel) == Some(false))
                    .collect::<Vec<bool>>()
            });
            let c = self.crop(src, full_frame);
            (i.join().expect("interlace detection"), c, e.join().expect("audio packets"))
        });
        cancel.check()?;
        let mut empty = empty.into_iter();
        audio.retain(|a| {
            let empty = empty.next().unwrap_or(false);
            if empty {
                warnings.push(format!("audio track {} has no samples: left out of the output", a.index + 1));
            }
            !empty
        });
        for a in &audio {
            if let Some(w) = &a.warning {
                warnings.push(format!("audio track {}: {w}", a.index + 1));
            }
        }
        Ok((interlace, crop, audio))
    }

    /// Interlacing of video stream `v` (of a file `duration` seconds long);
    /// without ffmpeg, the stream's own field order decides.
    fn interlace(&self, v: &ffprobe::Stream, duration: f64) -> InterlaceVerdict {
        let mode = self.options.interlace;
        match self.probes.ffmpeg {
            Some(ffmpeg) => {
                interlace::detect((ffmpeg, self.probes.ffprobe), self.input, duration, v, mode, self.cancel)
            }
            None => interlace::decide(
                Default::default(),
                Default::default(),
                Default::default(),
                v.field_order.as_deref(),
                v.frame_rate(),
                mode,
            ),
        }
    }

    /// Black bars of `src`, unless cropping is off or `full_frame` says why
    /// the picture is kept whole.
    fn crop(&self, src: &crop::Source, full_frame: Option<&'static str>) -> CropDecision {
        if self.options.disable_crop {
            CropDecision::disabled("crop detection disabled (disable_crop)")
        } else if let Some(why) = full_frame {
            CropDecision::disabled(why)
        } else if let Some(ffmpeg) = self.probes.ffmpeg {
            crop::detect(ffmpeg, src, self.cancel)
        } else {
            CropDecision::disabled("crop detection needs ffmpeg")
        }
    }

    /// The video's HDR: its stream's and first frame's side data, and what
    /// ffprobe does not show (a zero in the content light, a mastering
    /// display of luminance alone) from the container.
    fn hdr(&self, v: &ffprobe::Stream, structure: &Structure) -> Result<hdr::HdrInfo> {
        let frame_side_data = if matches!(v.color_transfer.as_deref(), Some("smpte2084" | "arib-std-b67")) {
            ffprobe::first_frame_side_data(self.probes.ffprobe, self.input, self.cancel)
                .map_err(Error::process(self.input))?
        } else {
            Vec::new()
        };
        let mut hdr = hdr::analyze(v, &frame_side_data);
        let filled = hdr.colour.filled_from(hdr::colour_from_container(structure));
        hdr.colour_from_container = filled != hdr.colour;
        hdr.colour = filled;
        hdr.kind = hdr::kind_of(&hdr.colour);
        if hdr.kind.is_hdr() {
            let (display, light) = hdr::from_container(structure);
            hdr.mastering_display = hdr.mastering_display.or(display);
            hdr.content_light = hdr.content_light.or(light).filter(|c| (c.max_cll, c.max_fall) != (0, 0));
        }
        Ok(hdr)
    }

    /// The rip's video frames, where validation needs them: inverse
    /// telecine's output is one frame in IVTC_CYCLE fewer than the rip's.
    /// Counted (a read of every packet) when the container does not say, or
    /// says a count its video's length belies (a statistics tag an ffmpeg
    /// cut copied: a right encode failed on every run).
    fn frame_count(
        &self,
        v: &ffprobe::Stream,
        interlace: &InterlaceVerdict,
        extent: &extent::Extent,
        file_start: f64,
    ) -> Option<u64> {
        let length = extent.video_end - v.start_time.map_or(0.0, |s| s - file_start);
        let told = v.frame_count().filter(|&n| frames_fit(n, v.frame_rate(), length));
        told.or_else(|| {
            interlace.decimation_cycle()?;
            ffprobe::count_frames(self.probes.ffprobe, self.input, self.cancel).ok().map(|n| n as u64)
        })
    }

    /// Soft telecine to be evened out to film's rate, checked on the whole
    /// stream (its frames counted: a read of every packet, no decoding);
    /// see [`interlace::film_rate_throughout`].
    fn film_rate_throughout(
        &self,
        verdict: InterlaceVerdict,
        v: &ffprobe::Stream,
        extent: &extent::Extent,
        file_start: f64,
    ) -> InterlaceVerdict {
        if verdict.treatment != interlace::Treatment::FilmTimestamps {
            return verdict;
        }
        let Ok(frames) = ffprobe::count_frames(self.probes.ffprobe, self.input, self.cancel) else { return verdict };
        let first = v.start_time.map_or(0.0, |s| s - file_start);
        interlace::film_rate_throughout(verdict, frames, extent.video_end - first)
    }

    /// Records, and says, each encoded audio track whose first frames do not
    /// decode (more than [`UNDECODED_AUDIO_SLACK`] s of them): its Opus
    /// track starts at its first decoded frame, and is moved to start there
    /// (moved to the first block, it came out early by the frames lost: 0.9
    /// s for 42 damaged AAC frames).
    fn undecoded_audio_heads(&self, mux: &mut MuxPlan, audio: &[AudioPlan], warnings: &mut Vec<String>) -> Result<()> {
        let encoded: Vec<(u32, usize)> = (mux.tracks.iter())
            .filter_map(|t| match t.carry {
                Carry::EncodedAudio { plan } => Some((t.source_id, plan)),
                _ => None,
            })
            .collect();
        for (id, plan) in encoded {
            let Some(a) = audio.get(plan) else { continue };
            let head = ffprobe::undecoded_head(self.probes.ffprobe, self.input, &format!("a:{}", a.index), self.cancel)
                .map_err(Error::process(self.input))?;
            // A codec delay (Matroska's CodecDelay: an 8 kHz Vorbis track's
            // 32 ms, AAC's 21) puts a whole track's first packet that much
            // before its first frame: no loss. (Where frames are lost, the
            // move is the whole head: measured, less the delay brought a
            // damaged AAC track 21 ms early.)
            let delay = mux.source_track(id).codec_delay_ns();
            let lost = head.map(|h| (h, h - delay as f64 / 1e9)).filter(|(_, lost)| *lost > UNDECODED_AUDIO_SLACK);
            if let Some((head, lost)) = lost {
                mux.audio_undecoded_ns.insert(id, (head * 1e9).round() as i64);
                warnings.push(format!(
                    "audio track {} ({}): its first {lost:.3} s do not decode (damaged); its Opus track starts at its first good frame, in sync",
                    a.index + 1,
                    a.codec
                ));
            }
        }
        Ok(())
    }

    /// What the mux will carry; a loss fails the file here, before any
    /// encode, unless `on_loss` says to go on without it.
    fn mux_plan(
        &self,
        structure: Structure,
        probe: &Probe,
        extent: &mut extent::Extent,
        audio: &[AudioPlan],
        warnings: &mut Vec<String>,
    ) -> Result<MuxPlan> {
        let clamped = clamped_subtitles(&structure, probe, extent, warnings);
        let mut mux = MuxPlan::new(structure, probe, audio, &clamped).map_err(|m| self.bad(m))?;
        // ffprobe's times of a Matroska file are its block timestamps.
        let first_shown = ffprobe::first_shown(self.probes.ffprobe, self.input, self.cancel)
            .map_err(|f| crate::error::Error::process(self.input)(f))?;
        mux.video_start_ns = first_shown.map(|s| (s * 1e9).round() as i64);
        self.undecoded_audio_heads(&mut mux, audio, warnings)?;
        let times: Vec<f64> = probe.duration().into_iter().flat_map(later_looks).collect();
        if ffprobe::has_captions(self.probes.ffprobe, self.input, &times, self.cancel)
            .map_err(|f| crate::error::Error::process(self.input)(f))?
        {
            // They live in the pictures the encode replaces.
            mux.add_captions();
        }
        let others = mux.source.other_segments();
        if !others.is_empty() {
            // Carried as they are; said, as the output plays in full only
            // beside those files' own (an encode keeps its segment UID).
            warnings.push(format!(
                "it plays with {} other file(s) (ordered chapters or linked segments: segment UID {}): encode them into the same folder, or keep them beside the output",
                others.len(),
                others.join(", ")
            ));
        }
        let losses: Vec<String> = mux.losses().map(|l| l.describe()).collect();
        self.losing(losses, warnings)?;
        Ok(mux)
    }

    /// `losses` cannot be carried: the file fails here, before any encode,
    /// unless `on_loss` says to go on without them.
    fn losing(&self, losses: Vec<String>, warnings: &mut Vec<String>) -> Result<()> {
        if !losses.is_empty() && self.options.on_loss == LossPolicy::Fail {
            return Err(Error::WouldLose { path: self.input.to_path_buf(), losses });
        }
        warnings.extend(losses.into_iter().map(|l| format!("left out of the output: {l}")));
        Ok(())
    }
}

impl VideoInfo {
    fn of(v: &ffprobe::Stream, width: u32, height: u32, ignored_streams: usize) -> VideoInfo {
        VideoInfo {
            codec: v.codec_name.clone(),
            width,
            height,
            pix_fmt: v.pix_fmt.clone(),
            bit_depth: v.bit_depth(),
            frame_rate: v.frame_rate(),
            frame_count: v.frame_count(),
            sample_aspect_ratio: v.sample_aspect_ratio.clone().filter(|s| s != "0:1"),
            field_order: v.field_order.clone(),
            ignored_streams,
            restamped_rate: None,
            size_changes: false,
        }
    }
}

/// Where in a film of `end` seconds analysis looks again at what its first
/// frames may not show (an audio layout, closed captions that start after
/// a logo): a tenth, half and nine tenths of the way.
fn later_looks(end: f64) -> [f64; 3] {
    [0.1, 0.5, 0.9].map(|f| f * end)
}

#[cfg(test)]
mod tests {
    use super::{even, showinfo_sar, showinfo_size};

    #[test]
    fn evenly_spaced_frames_are_told_from_uneven_ones() {
        // Whole milliseconds at 29.97: 33 and 34 in turn are even.
        let ntsc: Vec<f64> = (0..40).map(|i| if i % 3 == 0 { 0.034 } else { 0.033 }).collect();
        assert_eq!(even(&ntsc), Some(0.033));
        // A variable rate: 40 ms and 20 ms.
        let vfr: Vec<f64> = (0..40).map(|i| if i < 25 { 0.040 } else { 0.020 }).collect();
        assert_eq!(even(&vfr), None);
        assert_eq!(even(&[0.04; 9]), None, "too few to tell");
    }

    #[test]
    fn ratios_as_ffprobe_writes_them() {
        use super::ratio;
        assert_eq!(ratio("32:27"), Some((32, 27)));
        assert_eq!(ratio("1:1"), Some((1, 1)));
        assert_eq!((ratio("0:1"), ratio("1:0"), ratio("N/A"), ratio("")), (None, None, None, None));
    }

    #[test]
    fn showinfo_gives_the_decoded_pictures_sample_aspect_ratio() {
        let line = "[Parsed_showinfo_0 @ 0x7f] n:   0 pts:      0 fmt:yuv420p cl:left sar:8/9 s:640x320 i:P iskey:1";
        assert_eq!((showinfo_size(line), showinfo_sar(line).as_deref()), (Some((640, 320)), Some("8:9")));
        assert_eq!(showinfo_sar("n: 0 s:640x320"), None);
    }

    #[test]
    fn a_size_change_keeps_the_openings_shape_on_screen() {
        use super::same_shape;
        // A remux's container ratio was for the 176-wide opening (4:3).
        assert_eq!(same_shape((176, 240), Some("20:11"), (352, 240)).as_deref(), Some("10:11"));
        assert_eq!(same_shape((720, 480), Some("8:9"), (352, 480)).as_deref(), Some("20:11"));
        assert_eq!(same_shape((320, 240), None, (320, 240)).as_deref(), Some("1:1"));
    }
}

#[cfg(test)]
mod frame_count_tests {
    use super::*;

    #[test]
    fn a_frame_count_fits_its_length_as_the_frames_check_does() {
        let ntsc = Some(30000.0 / 1001.0);
        assert!(frames_fit(240, ntsc, 8.008));
        assert!(frames_fit(241, ntsc, 8.008) && frames_fit(238, ntsc, 8.008), "2 frames");
        // A tag an ffmpeg cut of under a second copied: 180 for 5.4 s.
        assert!(!frames_fit(180, ntsc, 5.4));
        assert!(!frames_fit(240, None, 8.008));
    }
}
