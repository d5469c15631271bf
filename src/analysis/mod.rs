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
mod gate;
pub mod hdr;
pub mod interlace;
pub mod mux_plan;
mod parallel;
mod picture;
pub mod resolution;
mod timing;

use gate::not_a_file;
pub use gate::not_a_rip;
use picture::{container_pictures, later_looks, upright};

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

/// Probes `input` and answers every question about it.
pub fn analyze(input: &Path, probes: Probes, options: &AnalysisOptions, cancel: &Cancel) -> Result<Analysis> {
    let a = Analyzer { input, probes, options, cancel };
    let (size_bytes, mut probe) = a.open()?;
    let mut warnings = Vec::new();
    a.length_from_packets(&mut probe, &mut warnings)?;
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
    let src = crop_source(input, v, (width, height), extent.end, &hdr);
    let full_frame = full_frame(dolby_vision.as_ref(), &hdr);
    let (interlace, crop, audio) = a.picture_and_sound(v, &src, full_frame, audio, &mut warnings)?;
    let interlace = a.film_rate_throughout(interlace, v, &extent, file_start);
    a.field_checks(&interlace, &mut hdr, &mut warnings)?;
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
        video: VideoInfo {
            restamped_rate,
            size_changes,
            frame_count,
            ..VideoInfo::shown(v, (width, height), probe.video_streams().count() - 1, turned, shown_sar)
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

/// What crop detection is to look at: the film's pictures of `size`, as
/// long as `duration`, of its bit depth and range.
fn crop_source<'a>(
    input: &'a Path,
    v: &ffprobe::Stream,
    size: (u32, u32),
    duration: f64,
    hdr: &HdrInfo,
) -> crop::Source<'a> {
    crop::Source {
        path: input,
        width: size.0,
        height: size.1,
        duration,
        bit_depth: v.bit_depth().unwrap_or(8),
        hdr: hdr.kind.is_hdr(),
        // (An RGB source's pictures are measured as limited-range YUV, the
        // form it is encoded in: its black is 16, not 0.)
        full_range: hdr.colour.range.as_deref() == Some("pc") && !matches!(hdr.colour.matrix.as_deref(), Some("gbr")),
    }
}

/// Why the picture is not cropped, where metadata describes the full
/// frame (Dolby Vision, HDR10+ processing windows).
fn full_frame(dolby_vision: Option<&DolbyVision>, hdr: &HdrInfo) -> Option<&'static str> {
    match (dolby_vision, &hdr.hdr10_plus) {
        (Some(_), _) => Some("not cropped: Dolby Vision metadata describes the full frame"),
        (_, Some(h)) if h.windows > 1 => Some("not cropped: its HDR10+ processing windows describe the full frame"),
        _ => None,
    }
}

/// One analysis under way: the input, the programs, the options.
struct Analyzer<'a> {
    input: &'a Path,
    probes: Probes<'a>,
    options: &'a AnalysisOptions,
    cancel: &'a Cancel,
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

    /// What the fields' verdict leaves to say: combing left in the
    /// pictures, inverse telecine asked for and not done; and HDR10+
    /// metadata that inverse telecine would misplace (a loss, said before
    /// the encode, not after it has lost the frames the metadata was for).
    fn field_checks(&self, interlace: &InterlaceVerdict, hdr: &mut HdrInfo, warnings: &mut Vec<String>) -> Result<()> {
        if interlace.leaves_combing() {
            warnings.push(format!("interlace: combed pictures are left as they are: {}", interlace.reason));
        }
        if self.options.interlace == FieldMode::Ivtc && interlace.treatment != interlace::Treatment::Ivtc {
            // (Said where it is seen: only the JSON's reason told.)
            warnings.push(format!("interlace: {}", interlace.reason));
        }
        if hdr.hdr10_plus.is_some() && interlace.decimation_cycle().is_some() {
            let loss = "its HDR10+ metadata (frame by frame, and inverse telecine drops frames)";
            self.losing(vec![loss.into()], warnings)?;
            hdr.hdr10_plus = None;
        }
        Ok(())
    }

    /// A file that claims no length (ffmpeg writing to a pipe, or live)
    /// is given where its packets end, and says so: it was refused as
    /// "truncated or corrupt" though whole. One that ends in the middle of
    /// an element is cut short, and refused unless `allow_truncated`.
    fn length_from_packets(&self, probe: &mut Probe, warnings: &mut Vec<String>) -> Result<()> {
        if probe.duration().is_some_and(|d| d > 0.0) {
            return Ok(());
        }
        let Some((length, cut)) = extent::unclaimed_length(self.probes.ffprobe, self.input, probe, self.cancel) else {
            return Ok(());
        };
        let said = format!(
            "the file claims no length (no Duration: written to a pipe or live), and its packets end at {length:.1} s"
        );
        if cut && !self.options.allow_truncated {
            return Err(self.bad(format!(
                "{said} in the middle of an element: it is cut short (truncated); rip it again, or pass --allow-truncated to encode what is there"
            )));
        }
        probe.format.duration = Some(length);
        warnings.push(match cut {
            true => format!("{said} in the middle of an element: cut short, encoding what is there (allow_truncated)"),
            false => format!("{said}, its length"),
        });
        Ok(())
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
        // (The picture and sound first: a file cut in half is truncated,
        // whatever else it lost.)
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
        if let Some(cut) = &structure.cut_short {
            let (place, size, claimed) = (cut.place.clone(), cut.size, cut.claimed);
            if !self.options.allow_truncated {
                return Err(Error::CutShort { path: input.to_path_buf(), place, size, claimed });
            }
            let unread = match structure.unreadable.as_slice() {
                [] => String::new(),
                parts => format!("; its {} cannot be read at all and are left out", parts.join(" and ")),
            };
            let attachment =
                if place.contains("attachments") { "; an attachment cut is carried as far as it goes" } else { "" };
            warnings.push(format!(
                "the rip is cut short: the file ends at byte {size} of at least {claimed}, {place}; encoded with what is left (allow_truncated){unread}{attachment}"
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
    /// [`VideoInfo::of`] with its sample aspect ratio as shown: `shown_sar`
    /// where the pictures' shape was worked out, else the stream's, turned
    /// with the picture where a display matrix turns it a quarter.
    fn shown(
        v: &ffprobe::Stream,
        (width, height): (u32, u32),
        ignored_streams: usize,
        turned: bool,
        shown_sar: Option<String>,
    ) -> VideoInfo {
        let info = VideoInfo::of(v, width, height, ignored_streams);
        let turn = |sar: String| match sar.split_once(':') {
            Some((n, d)) if turned => format!("{d}:{n}"),
            _ => sar,
        };
        let sample_aspect_ratio = shown_sar.or(info.sample_aspect_ratio.clone().map(turn));
        VideoInfo { sample_aspect_ratio, ..info }
    }

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

#[cfg(test)]
mod tests {
    use super::ratio;

    #[test]
    fn ratios_as_ffprobe_writes_them() {
        assert_eq!(ratio("32:27"), Some((32, 27)));
        assert_eq!(ratio("1:1"), Some((1, 1)));
        assert_eq!((ratio("0:1"), ratio("1:0"), ratio("N/A"), ratio("")), (None, None, None, None));
    }
}
