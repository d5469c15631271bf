//! VMAF with ffmpeg's libvmaf: both sides get the same timestamps, pixel
//! format and scale; the reference gets the same filters (deinterlace,
//! crop) as the encode; the 4K model for UHD.
//!
//! Timestamps are rewritten from the frame number on both sides: the
//! source's and the encode's clocks round differently after a seek (a
//! millisecond is enough), and libvmaf pairs frames by timestamp, so
//! `PTS-STARTPTS` alone can pair each frame with its neighbour.

use super::segments::{FrameRange, Timeline, seek_input};
use crate::analysis::resolution::ResolutionClass;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How scores are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmafSpec {
    pub model: String,
    /// Both sides are scaled to this size first (the model's viewing size).
    pub scale: Option<(u32, u32)>,
    pub pool: String,
    pub threads: u32,
}

impl VmafSpec {
    /// The model and scale for a picture of `width`x`height` (after crop):
    /// UHD uses the 4K model at its own size; smaller pictures are scaled to
    /// 1920 wide, as the 1080p model expects.
    pub fn for_picture(class: ResolutionClass, width: u32, height: u32, pool: &str, threads: u32) -> VmafSpec {
        let (model, scale) = if class == ResolutionClass::Uhd {
            ("vmaf_4k_v0.6.1", None)
        } else if width < 1728 && height < 972 {
            let h = ((f64::from(height) * 1920.0 / f64::from(width)).round() as u32) & !1;
            ("vmaf_v0.6.1", Some((1920, h.max(2))))
        } else {
            ("vmaf_v0.6.1", None)
        };
        VmafSpec { model: model.to_string(), scale, pool: pool.to_string(), threads }
    }
}

/// ffmpeg arguments scoring `distorted` (an encode of the frames of
/// `range`) against the same frames of `source` through `ref_filters`,
/// every `subsample`th frame (libvmaf `n_subsample`).
///
/// With a subsample of 3 or more, only the frames libvmaf reads are passed
/// to it: each scored frame with the one before and after it, which its
/// motion feature compares (libvmaf runs temporal features on every frame
/// it is given, scored or not). libvmaf then scores every 3rd of those:
/// the same frames with the same features, so the same score, without
/// converting and handing over the other frames.
pub fn vmaf_args(
    distorted: &Path,
    source: &Path,
    tl: &Timeline,
    range: FrameRange,
    ref_filters: Option<&str>,
    spec: &VmafSpec,
    subsample: u32,
) -> FfmpegArgs {
    let mut a = FfmpegArgs::default();
    let threads = spec.threads.max(1).to_string();
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "info", "-threads", &threads]).input(distorted);
    a.extend(["-threads", &threads]);
    seek_input(&mut a, source, tl, range.start);
    let count = range.count;
    let scale = spec.scale.map(|(w, h)| format!(",scale={w}:{h}:flags=bicubic")).unwrap_or_default();
    let pre = ref_filters.map(|f| format!("{f},")).unwrap_or_default();
    let (select, n_subsample) = match subsample {
        // Frames k·n − 1, k·n and k·n + 1.
        n if n > 3 => (format!("select=lt(mod(n+1\\,{n})\\,3),"), 3),
        n => (String::new(), n.max(1)),
    };
    let graph = format!(
        "[0:v]{select}setpts=N/(25*TB),format=yuv420p10le{scale}[d];\
         [1:v]trim=end_frame={count},{pre}{select}setpts=N/(25*TB),format=yuv420p10le{scale}[r];\
         [d][r]libvmaf=model=version={}:n_subsample={n_subsample}:pool={}:n_threads={}",
        spec.model, spec.pool, spec.threads
    );
    a.arg("-lavfi").arg(graph).extend(["-f", "null", "-"]);
    a
}

/// "VMAF score: 93.123" in libvmaf's output.
pub fn parse_score(output: &str) -> Option<f64> {
    output.lines().rev().find_map(|l| l.split("VMAF score:").nth(1)?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_and_scales() {
        let sd = VmafSpec::for_picture(ResolutionClass::Sd, 720, 480, "harmonic_mean", 2);
        assert_eq!((sd.model.as_str(), sd.scale), ("vmaf_v0.6.1", Some((1920, 1280))));
        let hd = VmafSpec::for_picture(ResolutionClass::Hd, 1920, 800, "mean", 1);
        assert_eq!((hd.model.as_str(), hd.scale), ("vmaf_v0.6.1", None));
        let uhd = VmafSpec::for_picture(ResolutionClass::Uhd, 3840, 1600, "mean", 1);
        assert_eq!((uhd.model.as_str(), uhd.scale), ("vmaf_4k_v0.6.1", None));
    }

    #[test]
    fn score_line() {
        assert_eq!(parse_score("[Parsed_libvmaf_4 @ 0x7f] VMAF score: 96.775170\n"), Some(96.77517));
        assert_eq!(parse_score("nothing"), None);
    }
}
