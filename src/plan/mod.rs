//! Planning: analysis + settings + ffmpeg's capabilities → [`EncodePlan`],
//! the complete list of decisions for one file. Encoders only carry it out.
//! The chunked path's settings and the sizing of its workers are in
//! `chunked`.

use crate::analysis::Analysis;
use crate::analysis::audio::AudioPlan;
use crate::analysis::hdr::Colour;
use crate::analysis::resolution::ResolutionClass;
use crate::config::Settings;
use crate::config::{Auto, ChunkedMode};
use crate::error::ToolError;
use crate::tools::FfmpegCaps;
use serde::{Deserialize, Serialize};

mod chunked;

pub use crate::config::Allocation;
pub use chunked::{
    ChunkedParams, available_memory, chunked_available, cores, cpu_share, default_workers, encoder_memory,
    measurement_subsample, survey_preset,
};

/// SVT-AV1's settings, the same for every encode of one video (the
/// standard path's one, each segment's, each probe's): only the CRF and
/// the thread count differ between them, and [`EncoderSettings::args`]
/// takes those two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSettings {
    pub preset: u8,
    pub pix_fmt: String,
    /// `-svtav1-params` value, without `lp` and `crf`.
    pub svt_params: String,
    /// Colour tags written on the output (`-color_primaries` …).
    pub colour_args: Vec<(String, String)>,
    /// Carry the Dolby Vision RPUs (libsvtav1 `-dolbyvision 1`).
    pub dolby_vision: bool,
}

impl EncoderSettings {
    /// A `setparams` filter that labels frames with the colour tags the
    /// output is written with, for frames that lost theirs (survey samples
    /// cut to raw video). Without it ffmpeg converts untagged frames to the
    /// tags asked of the encoder: a BT.709 source's samples were encoded
    /// with shifted colours and read up to 5 VMAF away from their segment.
    /// `None` when the output is written without colour tags.
    pub fn colour_labels(&self) -> Option<String> {
        let option = |arg: &str| match arg {
            "color_range" => Some("range"),
            "colorspace" => Some("colorspace"),
            "color_primaries" => Some("color_primaries"),
            "color_trc" => Some("color_trc"),
            "chroma_sample_location" => Some("chroma_location"),
            _ => None,
        };
        let set: Vec<String> =
            self.colour_args.iter().filter_map(|(k, v)| Some(format!("{}={v}", option(k)?))).collect();
        (!set.is_empty()).then(|| format!("setparams={}", set.join(":")))
    }

    /// The encoder arguments (after `-map` and filters) at `crf` (a
    /// fractional CRF goes to SVT-AV1 itself, which takes quarter steps)
    /// with `threads` threads (SVT-AV1 `lp`).
    pub fn args(&self, crf: f64, threads: u32) -> Vec<String> {
        let mut svt = format!("{}:lp={threads}", self.svt_params);
        if crf.fract() != 0.0 {
            svt.push_str(&format!(":crf={crf:.2}"));
        }
        let mut a: Vec<String> = [
            // Every frame with its own timestamp (variable frame rate
            // sources too), at Matroska's millisecond precision.
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1/1000",
            "-c:v",
            "libsvtav1",
        ]
        .map(String::from)
        .to_vec();
        a.extend(["-preset".into(), self.preset.to_string(), "-crf".into(), (crf.floor() as u32).to_string()]);
        a.extend(["-pix_fmt".into(), self.pix_fmt.clone(), "-svtav1-params".into(), svt]);
        for (k, v) in &self.colour_args {
            a.push(format!("-{k}"));
            a.push(v.clone());
        }
        if self.dolby_vision {
            a.extend(["-dolbyvision".into(), "1".into()]);
        }
        a
    }
}

/// How the video stream is encoded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoPlan {
    #[serde(flatten)]
    pub encoder: EncoderSettings,
    pub crf: u8,
    /// Video filters, in order (empty: the picture is untouched).
    pub filters: Vec<String>,
    /// The filters drop one of every this many frames (inverse telecine).
    pub decimation_cycle: Option<usize>,
    /// Hardware decoder for the standard path (`-hwaccel`); software
    /// decoding is the fallback when it fails.
    pub hwaccel: Option<String>,
    /// Threads of the encoder (SVT-AV1 `lp`), decoder and filters of one
    /// encode of the whole video: `max_cpu`'s share of the cores.
    pub threads: u32,
    /// The filters begin with [`fit_filter`]: every picture is brought to
    /// the film's size (its pictures change size, or the chunked path).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fits_size: bool,
}

/// Which encoding path a file takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodePath {
    /// One SVT-AV1 encode at the class CRF.
    Standard,
    /// One encode of a Dolby Vision source (the chunked path takes one too
    /// when it is turned on or available).
    DolbyVision,
    /// VMAF-targeted segments encoded in parallel.
    Chunked,
}

impl EncodePath {
    pub fn describe(self) -> &'static str {
        match self {
            EncodePath::Standard => "standard (one encode at the class CRF)",
            EncodePath::DolbyVision => "Dolby Vision (one encode at the class CRF, the RPU of every frame kept)",
            EncodePath::Chunked => {
                "chunked (segments encoded in parallel, each at the CRF that reaches the VMAF target)"
            }
        }
    }
}

/// Every decision for one file.
#[derive(Debug, Clone, Serialize)]
pub struct EncodePlan {
    pub path: EncodePath,
    /// Settings of the chunked path, when it is taken.
    pub chunked: Option<ChunkedParams>,
    pub video: VideoPlan,
    pub audio: Vec<AudioPlan>,
    /// What the user should know about these decisions.
    pub warnings: Vec<String>,
}

impl VideoPlan {
    /// The encoder arguments of the one encode of the whole video.
    pub fn encoder_args(&self) -> Vec<String> {
        self.encoder.args(f64::from(self.crf), self.threads)
    }

    /// The `-vf` chain, if any filter applies.
    pub fn filter_chain(&self) -> Option<String> {
        (!self.filters.is_empty()).then(|| self.filters.join(","))
    }
}

/// The hardware decoder to try: the configured one, else the first that
/// both ffmpeg and this machine have (VideoToolbox on macOS; CUDA with an
/// NVIDIA device; VAAPI with a render node).
pub fn choose_hwaccel(settings: &Settings, caps: &FfmpegCaps) -> Option<String> {
    if !settings.processing.hardware_decode {
        return None;
    }
    if let Auto::Value(name) = &settings.processing.hwaccel {
        return Some(name.clone());
    }
    let has = |n: &str| caps.hwaccels.iter().any(|h| h == n);
    let exists = |p: &str| std::path::Path::new(p).exists();
    if cfg!(target_os = "macos") && has("videotoolbox") {
        Some("videotoolbox".into())
    } else if has("cuda") && exists("/dev/nvidia0") {
        Some("cuda".into())
    } else if has("vaapi") && exists("/dev/dri/renderD128") {
        Some("vaapi".into())
    } else {
        None
    }
}

/// How the run decodes its rips, in words for its log: the hardware
/// decoder [`choose_hwaccel`] picks, or why none.
pub fn decoding_said(settings: &Settings, caps: &FfmpegCaps) -> String {
    match choose_hwaccel(settings, caps) {
        Some(hw) => format!("{hw} (hardware; software for Dolby Vision rips, and should it fail)"),
        None if !settings.processing.hardware_decode => "software (hardware decoding is turned off)".into(),
        None => {
            let looked = if cfg!(target_os = "macos") {
                "this ffmpeg has no videotoolbox"
            } else {
                "no cuda with /dev/nvidia0, no vaapi with /dev/dri/renderD128"
            };
            format!("software (hardware acceleration not available: {looked})")
        }
    }
}

/// Whether the Dolby Vision layer of `dv` is kept (libsvtav1's
/// `dolbyvision` option: every frame's RPU into the AV1 stream, profile
/// 10), and what the user must know when it is not.
pub fn keep_dolby_vision(dv: &crate::analysis::dolby_vision::DolbyVision, encoder_can: bool) -> (bool, Option<String>) {
    let carry = dv.rpu_present || dv.detected_by.iter().any(|d| d == "mediainfo");
    // A dual-layer source (profile 7, UHD Blu-ray): its RPU describes base
    // plus enhancement layer; carried onto the base layer alone it would
    // claim what the output does not have.
    let dual = dv.el_present || dv.profile == Some(7);
    if carry && !dual && encoder_can {
        return (true, None);
    }
    let why = if dual {
        "it is dual-layer: the enhancement layer is not encoded, and its RPU, which needs that layer, is dropped \
         with it rather than claim a profile the output does not have (the field converts such an RPU to profile \
         8.1 with dovi_tool first)"
    } else if encoder_can {
        "the source carries no RPU"
    } else {
        "this ffmpeg's libsvtav1 has no dolbyvision option (use ffmpeg 7.1 or newer)"
    };
    let name = dv.profile_name();
    let warning = if dv.base_layer_compatible() {
        format!(
            "Dolby Vision profile {name} cannot be kept ({why}): the output keeps the HDR10 base layer and its metadata only"
        )
    } else {
        format!(
            "Dolby Vision profile {name} has no compatible base layer and cannot be kept ({why}): colours of the output WILL be wrong"
        )
    };
    (false, Some(warning))
}

/// Decides everything for `analysis` under `settings`. `chunked` says
/// whether the chunked path can run (see [`chunked_available`]); asking for
/// it when it cannot is an error.
pub fn plan(
    analysis: &Analysis,
    settings: &Settings,
    caps: &FfmpegCaps,
    chunked: &Result<(), ToolError>,
) -> Result<EncodePlan, ToolError> {
    let mut warnings = Vec::new();
    let e = &settings.encoding;
    let crf = match analysis.resolution {
        ResolutionClass::Sd => e.crf.sd,
        ResolutionClass::Hd => e.crf.hd,
        ResolutionClass::Uhd => e.crf.uhd,
    };
    let restamp = analysis.video.restamped_rate.as_ref().map(|r| format!("fps={r}:eof_action=pass"));
    let colour = output_colour(&analysis.hdr.colour, analysis.picture_size().1);
    let (path, dolby_vision) = match &analysis.dolby_vision {
        None => (EncodePath::Standard, false),
        Some(dv) => {
            let (carry, warning) = keep_dolby_vision(dv, caps.svtav1_dolbyvision);
            warnings.extend(warning);
            (EncodePath::DolbyVision, carry)
        }
    };
    let path = choose_path(path, settings, chunked)?;
    // Every picture at the film's size first, where a size change is
    // found, and always on the chunked path (a change its segments'
    // `trim` would count from anew); before the filters that keep state
    // across frames (inverse telecine lost frames at a change after them).
    let fits_size = analysis.video.size_changes || path == EncodePath::Chunked;
    let fit = fits_size.then(|| fit_filter(analysis));
    let encoder = EncoderSettings {
        preset: e.preset,
        pix_fmt: "yuv420p10le".into(),
        svt_params: svt_params(analysis, settings),
        colour_args: colour_args(&colour.0),
        dolby_vision,
    };
    // Colour the container alone states, given to the frames: ffmpeg writes
    // the frames' own (unknown), whatever the encoder is asked.
    let labels = analysis.hdr.colour_from_container.then(|| encoder.colour_labels()).flatten();
    let filters = restamp
        .into_iter()
        .chain(fit)
        .chain(colour.1)
        .chain(analysis.interlace.filter())
        .chain(analysis.crop.crop.as_ref().map(|c| c.filter()))
        .chain(labels);
    Ok(EncodePlan {
        path,
        chunked: (path == EncodePath::Chunked).then(|| chunked::chunked_params(analysis, settings, caps)),
        video: VideoPlan {
            encoder,
            crf,
            filters: filters.collect(),
            decimation_cycle: analysis.interlace.decimation_cycle(),
            hwaccel: if analysis.dolby_vision.is_some() { None } else { choose_hwaccel(settings, caps) },
            threads: cpu_share(settings) as u32,
            fits_size,
        },
        audio: analysis.audio.clone(),
        warnings,
    })
}

/// SVT-AV1's parameters: tune, film grain, and an HDR source's mastering
/// display and light levels.
fn svt_params(analysis: &Analysis, settings: &Settings) -> String {
    let e = &settings.encoding;
    let grain = if e.film_grain { e.film_grain_level } else { 0 };
    let mut params = format!("tune=0:film-grain={grain}:film-grain-denoise=0");
    let hdr = &analysis.hdr;
    if hdr.kind.is_hdr() {
        if let Some(md) = &hdr.mastering_display {
            params.push_str(&format!(":mastering-display={}", md.svt_param()));
        }
        if let Some(cl) = &hdr.content_light {
            params.push_str(&format!(":content-light={},{}", cl.max_cll, cl.max_fall));
        }
    }
    params
}

/// The filter that brings every picture to the film's size and sample
/// aspect ratio (a no-op on pictures of that size), in the source's own
/// pixel format: the conversion to the encoder's comes last (here a 4:2:2
/// interlaced source's chroma was brought to 4:2:0 before its fields were
/// told apart, and blended across them).
pub fn fit_filter(analysis: &Analysis) -> String {
    let (w, h, (num, den)) = (analysis.video.width, analysis.video.height, analysis.sample_aspect());
    let format = analysis.video.pix_fmt.as_deref().map(|f| format!(",format={f}")).unwrap_or_default();
    format!("scale={w}:{h}:flags=lanczos{format},{}", setsar(num, den))
}

/// ffmpeg's `setsar` that keeps `num`:`den` exactly: by default it brings
/// a ratio to terms of 100 at most, and the 427:360 of an NTSC 16:9 DVD
/// that mkvmerge wrote came out 51:43 on the chunked path alone.
fn setsar(num: u32, den: u32) -> String {
    format!("setsar=sar={num}/{den}:max={}", num.max(den).max(100))
}

/// The output's colour description for a source of colour `c` whose
/// pictures are `height` lines, and the filter that converts to it when it
/// is not the source's: an RGB source (ffprobe's matrix `gbr`, an FFV1 or
/// x264rgb capture) becomes 4:2:0 YUV in BT.709 (BT.601 below 720 lines),
/// limited range, said and done explicitly (its matrix passed through made
/// every RGB rip fail: "Unable to parse colorspace gbr").
fn output_colour(c: &Colour, height: u32) -> (Colour, Option<String>) {
    if !matches!(c.matrix.as_deref(), Some("gbr" | "rgb")) {
        return (c.clone(), None);
    }
    let matrix = if height >= 720 { "bt709" } else { "smpte170m" };
    let convert = format!("scale=out_color_matrix={}:out_range=tv", if height >= 720 { "bt709" } else { "bt601" });
    (Colour { matrix: Some(matrix.into()), range: Some("tv".into()), ..c.clone() }, Some(convert))
}

/// ffmpeg's colour description options for the output's colour.
fn colour_args(c: &Colour) -> Vec<(String, String)> {
    [
        ("color_primaries", &c.primaries),
        ("color_trc", &c.transfer),
        ("colorspace", &c.matrix),
        ("color_range", &c.range),
        ("chroma_sample_location", &c.chroma_location),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
    .collect()
}

/// The chunked path when it is on (an error when it cannot run), or on
/// `auto` when it can run; else `path`. Hosts to share the work mean the
/// chunked path, unless it is turned off.
fn choose_path(
    path: EncodePath,
    settings: &Settings,
    chunked: &Result<(), ToolError>,
) -> Result<EncodePath, ToolError> {
    let mode = match settings.processing.enable_chunked_encoding {
        ChunkedMode::Auto if settings.distributed.hosts.is_some() => ChunkedMode::On,
        m => m,
    };
    Ok(match mode {
        ChunkedMode::Off => path,
        ChunkedMode::On => {
            chunked.clone()?;
            EncodePath::Chunked
        }
        ChunkedMode::Auto if chunked.is_ok() => EncodePath::Chunked,
        ChunkedMode::Auto => path,
    })
}

#[cfg(test)]
mod tests {
    use super::{EncoderSettings, measurement_subsample, setsar, survey_preset};
    use crate::config::Auto;

    #[test]
    fn a_dual_layer_dolby_vision_source_keeps_its_base_layer_and_says_so() {
        use crate::analysis::dolby_vision::DolbyVision;
        let p8 = DolbyVision {
            profile: Some(8),
            level: Some(6),
            compatibility_id: Some(1),
            rpu_present: true,
            el_present: false,
            detected_by: vec!["ffprobe".into()],
            mediainfo_format: None,
        };
        assert_eq!(super::keep_dolby_vision(&p8, true), (true, None));
        let (keep, why) = super::keep_dolby_vision(&p8, false);
        assert!(!keep && why.unwrap().contains("no dolbyvision option"));
        let p7 = DolbyVision { profile: Some(7), compatibility_id: Some(6), el_present: true, ..p8 };
        let (keep, why) = super::keep_dolby_vision(&p7, true);
        let why = why.unwrap();
        assert!(!keep, "never an output that claims a profile it does not have");
        assert!(why.contains("profile 7.6") && why.contains("dual-layer") && why.contains("HDR10 base layer"), "{why}");
    }

    #[test]
    fn the_sample_aspect_is_set_as_it_is() {
        assert_eq!(setsar(427, 360), "setsar=sar=427/360:max=427");
        assert_eq!(setsar(8, 9), "setsar=sar=8/9:max=100");
    }

    #[test]
    fn workers_respect_memory() {
        assert_eq!(super::default_workers(3840, 2160, 6, 16, 1 << 30), 1);
        assert!(super::default_workers(1280, 720, 6, 2, 64 << 30) >= 1);
    }

    #[test]
    fn an_encoders_memory_follows_what_was_measured() {
        let gb = |w, h, preset, threads| super::encoder_memory(w, h, preset, threads) as f64 / 1e9;
        // Measured 0.99, 1.93 and 3.38 GB; 0.57 at preset 10; 0.30 on a DVD.
        for (model, measured) in [
            (gb(1920, 1080, 6, 1), 0.99),
            (gb(1920, 1080, 6, 4), 1.93),
            (gb(3840, 2160, 6, 1), 3.38),
            (gb(1920, 1080, 10, 1), 0.57),
            (gb(720, 480, 6, 1), 0.30),
        ] {
            assert!(model >= measured && model <= measured * 1.4, "{model:.2} GB for {measured}");
        }
        assert_eq!(gb(1920, 1080, 6, 8), gb(1920, 1080, 6, 32), "no more past 8 threads");
    }

    #[test]
    fn the_crf_and_threads_are_the_only_arguments_that_change() {
        let e = EncoderSettings {
            preset: 6,
            pix_fmt: "yuv420p10le".into(),
            svt_params: "tune=0".into(),
            colour_args: vec![("color_primaries".into(), "bt2020".into())],
            dolby_vision: true,
        };
        let line = |crf, threads| e.args(crf, threads).join(" ");
        assert_eq!(
            line(25.0, 4),
            "-fps_mode passthrough -enc_time_base:v 1/1000 -c:v libsvtav1 -preset 6 -crf 25 -pix_fmt yuv420p10le \
             -svtav1-params tune=0:lp=4 -color_primaries bt2020 -dolbyvision 1"
        );
        // A quarter step goes to SVT-AV1 itself (ffmpeg's -crf is whole).
        assert!(line(27.25, 1).contains("-crf 27 -pix_fmt yuv420p10le -svtav1-params tune=0:lp=1:crf=27.25"));
    }

    #[test]
    fn colour_labels_name_every_tag_the_output_is_written_with() {
        let tags = |pairs: &[(&str, &str)]| EncoderSettings {
            preset: 6,
            pix_fmt: "yuv420p10le".into(),
            svt_params: String::new(),
            colour_args: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            dolby_vision: false,
        };
        let hdr = tags(&[
            ("color_primaries", "bt2020"),
            ("color_trc", "smpte2084"),
            ("colorspace", "bt2020nc"),
            ("color_range", "tv"),
            ("chroma_sample_location", "topleft"),
        ]);
        assert_eq!(
            hdr.colour_labels().as_deref(),
            Some(
                "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv:chroma_location=topleft"
            )
        );
        assert_eq!(tags(&[]).colour_labels(), None);
    }

    #[test]
    fn the_survey_probes_two_presets_faster_up_to_preset_6() {
        assert_eq!(survey_preset(6, Auto::Auto), Some(8));
        assert_eq!(survey_preset(4, Auto::Auto), Some(6));
        assert_eq!(survey_preset(7, Auto::Auto), None);
        assert_eq!(survey_preset(10, Auto::Auto), None);
        assert_eq!(survey_preset(10, Auto::Value(12)), Some(12));
        assert_eq!(survey_preset(6, Auto::Value(6)), None);
    }

    #[test]
    fn measurement_never_samples_in_step_with_the_mini_gop() {
        assert_eq!(measurement_subsample(8), 9);
        assert_eq!(measurement_subsample(2), 3);
        assert_eq!(measurement_subsample(7), 7);
        assert_eq!(measurement_subsample(1), 1);
        assert_eq!(measurement_subsample(0), 1);
        for s in 1..=64 {
            let m = measurement_subsample(s);
            assert!(m % 2 == 1 && m >= s, "{s} → {m}");
        }
    }
}
