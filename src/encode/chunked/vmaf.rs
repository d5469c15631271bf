//! VMAF with ffmpeg's libvmaf: both sides get the same timestamps, pixel
//! format and scale; the reference gets the same filters (deinterlace,
//! crop) as the encode; the 4K model for UHD.
//!
//! Timestamps are rewritten from the frame number on both sides: the
//! source's and the encode's clocks round differently after a seek (a
//! millisecond is enough), and libvmaf pairs frames by timestamp, so
//! `PTS-STARTPTS` alone can pair each frame with its neighbour.

use super::layout::{FrameRange, Timeline, open_frames};
use crate::analysis::resolution::ResolutionClass;
use crate::config::VmafPool;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How scores are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmafSpec {
    pub model: String,
    /// Both sides are scaled to this size first (the model's viewing size).
    pub scale: Option<(u32, u32)>,
    /// How drapto pools the scored frames (see [`pooled`]).
    pub pool: VmafPool,
    pub threads: u32,
    /// The pixel format both sides are scored in (see
    /// [`VmafSpec::for_picture`]).
    #[serde(default = "ten_bit")]
    pub pix_fmt: String,
}

fn ten_bit() -> String {
    TEN_BIT.to_string()
}

const TEN_BIT: &str = "yuv420p10le";

impl VmafSpec {
    /// The model and scale for a picture of `width`x`height` (after crop)
    /// with sample aspect `sar`: UHD uses the 4K model at its own size;
    /// pictures smaller than 1080p are scaled, as shown, to fit a 1920x1080
    /// display (the viewing the 1080p model was trained for): a 16:9 DVD
    /// (720x480, SAR 32:27) to 1920x1080, a 4:3 one (SAR 8:9) or a 768x576
    /// square-pixel picture to 1440x1080, a 2.39:1 720p crop to 1920x804.
    /// Scaling every picture to 1920 wide instead scored a 4:3 picture at
    /// 1920x1440, larger than the display and 1.78× the pixels.
    ///
    /// An 8-bit source that is not scaled is scored in 8 bits: the reference
    /// has no more precision, and rounding the 10-bit encode to it moved the
    /// score by 0.01 on real 1080p footage at CRF 24–44, for 22% less CPU.
    /// Anything scaled (its rounding moved scores by 0.05–0.09) or deeper
    /// is scored in 10 bits.
    pub fn for_picture(
        class: ResolutionClass,
        (width, height): (u32, u32),
        sar: (u32, u32),
        bit_depth: Option<u32>,
        pool: VmafPool,
        threads: u32,
    ) -> VmafSpec {
        let shown = f64::from(width) * f64::from(sar.0) / f64::from(sar.1.max(1));
        let (model, scale) = if class == ResolutionClass::Uhd {
            ("vmaf_4k_v0.6.1", None)
        } else if shown < 1728.0 && height < 972 {
            ("vmaf_v0.6.1", Some(fit_display(shown, f64::from(height))))
        } else {
            ("vmaf_v0.6.1", None)
        };
        let pix_fmt = if scale.is_none() && bit_depth == Some(8) { "yuv420p" } else { TEN_BIT };
        VmafSpec { model: model.to_string(), scale, pool, threads, pix_fmt: pix_fmt.to_string() }
    }
}

/// The largest even size of the aspect of a `shown_width`x`height`
/// picture that fits 1920x1080.
fn fit_display(shown_width: f64, height: f64) -> (u32, u32) {
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    if shown_width * 1080.0 >= height * 1920.0 {
        (1920, even(1920.0 * height / shown_width))
    } else {
        (even(1080.0 * shown_width / height), 1080)
    }
}

/// The frames an encode is scored against.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    /// Output frames `range` of `source` (whose frame timeline is `tl`),
    /// through `filters` (the encode's deinterlace or inverse telecine, and
    /// crop), which drop one of every `cycle` frames when set (see
    /// [`open_frames`]).
    Source { path: &'a Path, tl: &'a Timeline, range: FrameRange, filters: Option<&'a str>, cycle: Option<usize> },
    /// A file of just the frames that scoring every `subsample`th one reads
    /// (see [`selection`]), filtered already: written beside the encode by
    /// the same decode of the source.
    Selected(&'a Path),
}

/// With a `subsample` of more than 3, the filter that keeps only the frames
/// libvmaf reads when it scores every `subsample`th frame: each scored
/// frame with the one before and after it, which its motion feature
/// compares (libvmaf runs temporal features on every frame it is given,
/// scored or not). libvmaf then scores every 3rd of those: the same frames
/// with the same features, so the same score, without decoding into,
/// converting and handing over the others.
pub fn selection(subsample: u32) -> Option<String> {
    (subsample > 3).then(|| format!("select=lt(mod(n+1\\,{subsample})\\,3)"))
}

/// Whether [`selection`]'s expression keeps frame `n` (the same test, in Rust).
fn kept(n: u64, subsample: u32) -> bool {
    (n + 1) % u64::from(subsample) < 3
}

/// How many of `frames` frames [`selection`] keeps (none without one).
pub fn selected_frames(frames: usize, subsample: u32) -> Option<u64> {
    selection(subsample).map(|_| (0..frames as u64).filter(|&n| kept(n, subsample)).count() as u64)
}

/// The number libvmaf gives frame `n` when scoring every `subsample`th
/// frame: `n` itself, or its place among the frames [`selection`] keeps
/// (`None` when it drops it).
pub fn given_number(n: u64, subsample: u32) -> Option<u64> {
    match selection(subsample) {
        None => Some(n),
        Some(_) if kept(n, subsample) => selected_frames(n as usize, subsample),
        Some(_) => None,
    }
}

/// libvmaf's `n_subsample` for frames that went through [`selection`].
fn n_subsample(subsample: u32) -> u32 {
    if subsample > 3 { 3 } else { subsample.max(1) }
}

/// Both sides reach libvmaf labelled alike (after their own conversions,
/// done with their real labels), so that ffmpeg converts neither to match
/// the other: a reference read from raw frames is labelled nothing, an
/// encode carries the source's colour tags (range tv, matrix bt709), and
/// ffmpeg's conversion between the two took a real segment's score from 94
/// to 67 and drove every segment of a tagged source (nearly every real rip)
/// to the CRF floor.
const SAME_LABELS: &str = "setparams=range=unknown:colorspace=unknown";

/// ffmpeg arguments scoring `distorted` (an encode of the reference's
/// frames) against `reference`, every `subsample`th frame (libvmaf
/// `n_subsample`, applied through [`selection`]), each scored frame's
/// score written to stdout as CSV for [`pooled`].
pub fn vmaf_args(distorted: &Path, reference: Reference, spec: &VmafSpec, subsample: u32) -> FfmpegArgs {
    let mut a = FfmpegArgs::default();
    let threads = spec.threads.max(1).to_string();
    // Verbose: ffmpeg's closing count of the frames it decoded, per input
    // (see [`decoded`]).
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "verbose", "-threads", &threads]).input(distorted);
    a.extend(["-threads", &threads]);
    let scale = spec.scale.map(|(w, h)| format!(",scale={w}:{h}:flags=bicubic")).unwrap_or_default();
    let fmt = &spec.pix_fmt;
    let select = selection(subsample).map(|s| format!("{s},")).unwrap_or_default();
    let reference = match reference {
        Reference::Source { path, tl, range, filters, cycle } => {
            format!("{},{select}", open_frames(&mut a, path, tl, range, filters, cycle))
        }
        Reference::Selected(path) => {
            a.input(path);
            String::new()
        }
    };
    let graph = format!(
        "[0:v]{select}setpts=N/(25*TB),format={fmt}{scale},{SAME_LABELS}[d];\
         [1:v]{reference}setpts=N/(25*TB),format={fmt}{scale},{SAME_LABELS}[r];\
         [d][r]libvmaf=model=version={}:n_subsample={}:n_threads={}:log_fmt=csv:log_path=/dev/stdout",
        spec.model,
        n_subsample(subsample),
        spec.threads
    );
    a.arg("-lavfi").arg(graph).extend(["-f", "null", "-"]);
    a
}

/// From ffmpeg's verbose closing lines (`[in#0/…] Input stream #0:0
/// (video): 375 packets read (…); 352 frames decoded; 3 decode errors`),
/// the first input's video packets read, frames decoded and decode
/// errors: an encode whose packets do not all decode (libvmaf would pair
/// the rest of the reference with its last picture: VMAF 1.2 for a broken
/// encode, taken as a hard segment).
pub fn decoded<S: AsRef<str>>(lines: &[S]) -> Option<(u64, u64, u64)> {
    let line = lines.iter().map(AsRef::as_ref).find(|l| l.contains("Input stream #0:0 (video):"))?;
    let number_before = |what: &str| -> Option<u64> {
        let head = &line[..line.find(what)?];
        head.trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some((number_before(" packets read")?, number_before(" frames decoded")?, number_before(" decode errors")?))
}

/// The scored frames' VMAF from libvmaf's CSV log (`Frame,…,vmaf,` rows):
/// (the frame's number among those libvmaf was given, its score).
pub fn frame_scores<S: AsRef<str>>(lines: &[S]) -> Vec<(u64, f64)> {
    let mut rows = lines.iter().map(|l| l.as_ref().trim());
    let Some(column) = rows.by_ref().find_map(|h| h.split(',').position(|c| c == "vmaf")) else {
        return Vec::new();
    };
    rows.filter_map(|r| {
        let cells: Vec<&str> = r.split(',').collect();
        Some((cells.first()?.parse().ok()?, cells.get(column)?.parse().ok()?))
    })
    .collect()
}

/// `frames` (as [`frame_scores`] reads them, scored every `subsample`th)
/// but the frames numbered `left_out` in the scored file, unless nothing
/// would be left.
pub fn leaving_out(frames: Vec<(u64, f64)>, left_out: &[u64], subsample: u32) -> Vec<(u64, f64)> {
    let given: Vec<u64> = left_out.iter().filter_map(|n| given_number(*n, subsample)).collect();
    let kept: Vec<(u64, f64)> = frames.iter().copied().filter(|f| !given.contains(&f.0)).collect();
    if kept.is_empty() { frames } else { kept }
}

/// The frames' scores pooled as `pool` says, leaving out the first frame when there are
/// others: it has no frame before it, so libvmaf takes its motion as none
/// and scores it lower than the same frame in the whole film (84.1 against
/// 86.5 for the frames beside it on a test picture). Scored every time, it
/// read segments 0.23 low on average on real footage (`scripts/bench.sh
/// quality`), and the allocation aimed that much too high.
pub fn pooled(frames: &[(u64, f64)], pool: VmafPool) -> Option<f64> {
    let scores: Vec<f64> = match frames {
        [] => return None,
        [(0, _), rest @ ..] if !rest.is_empty() => rest.iter().map(|f| f.1).collect(),
        all => all.iter().map(|f| f.1).collect(),
    };
    let n = scores.len() as f64;
    Some(match pool {
        VmafPool::Mean => scores.iter().sum::<f64>() / n,
        VmafPool::Min => scores.iter().copied().fold(f64::INFINITY, f64::min),
        VmafPool::HarmonicMean => n / scores.iter().map(|s| 1.0 / (s + 1.0)).sum::<f64>() - 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_frames_are_read_from_the_closing_lines() {
        let lines = [
            "[in#1/nut @ 0x1]   Input stream #1:0 (video): 16 packets read (2 bytes); 16 frames decoded; 0 decode errors; ",
            "[in#0/matroska,webm @ 0x2]   Input stream #0:0 (video): 375 packets read (1170326 bytes); 352 frames decoded; 3 decode errors; ",
        ];
        assert_eq!(decoded(&lines), Some((375, 352, 3)));
        assert_eq!(decoded(&["nothing"]), None);
    }

    #[test]
    fn models_and_scales() {
        let spec = |class, size, depth| {
            let s = VmafSpec::for_picture(class, size, (1, 1), depth, VmafPool::Mean, 1);
            (s.model, s.scale, s.pix_fmt)
        };
        let s = |x: &str| x.to_string();
        // 8-bit SD is scaled, so scored in 10 bits; 8-bit HD at its own size
        // in 8; 10-bit or unknown depth in 10.
        let sd = spec(ResolutionClass::Sd, (768, 576), Some(8));
        assert_eq!(sd, (s("vmaf_v0.6.1"), Some((1440, 1080)), s("yuv420p10le")));
        let hd = spec(ResolutionClass::Hd, (1920, 800), Some(8));
        assert_eq!(hd, (s("vmaf_v0.6.1"), None, s("yuv420p")));
        assert_eq!(spec(ResolutionClass::Hd, (1920, 800), None).2, "yuv420p10le");
        let uhd = spec(ResolutionClass::Uhd, (3840, 1600), Some(10));
        assert_eq!(uhd, (s("vmaf_4k_v0.6.1"), None, s("yuv420p10le")));
    }

    #[test]
    fn small_pictures_fit_a_1080p_display_as_shown() {
        let scale = |size, sar| VmafSpec::for_picture(ResolutionClass::Sd, size, sar, Some(8), VmafPool::Mean, 1).scale;
        // DVDs: 16:9 and 4:3 NTSC, 16:9 PAL, a 16:9 DVD cropped to 2.39:1.
        assert_eq!(scale((720, 480), (32, 27)), Some((1920, 1080)));
        assert_eq!(scale((720, 480), (8, 9)), Some((1440, 1080)));
        assert_eq!(scale((720, 576), (64, 45)), Some((1920, 1080)));
        assert_eq!(scale((720, 360), (32, 27)), Some((1920, 810)));
        // Square pixels: 720p and its scope crop; 4:3 SD.
        assert_eq!(scale((1280, 720), (1, 1)), Some((1920, 1080)));
        assert_eq!(scale((1280, 536), (1, 1)), Some((1920, 804)));
        assert_eq!(scale((640, 480), (1, 1)), Some((1440, 1080)));
        // 1440x1080 anamorphic HD is shown 1920 wide: not scaled.
        assert_eq!(scale((1440, 1080), (4, 3)), None);
    }

    #[test]
    fn selection_keeps_each_scored_frame_and_its_neighbours() {
        assert_eq!(selection(1), None);
        assert_eq!(selection(3), None, "every frame is a neighbour of a scored one");
        assert_eq!(selection(9).as_deref(), Some("select=lt(mod(n+1\\,9)\\,3)"));
        assert_eq!((n_subsample(1), n_subsample(3), n_subsample(9)), (1, 3, 3));
        // Which frames the expression keeps, and which of those libvmaf scores.
        let selected: Vec<u64> = (0..40).filter(|&n| kept(n, 9)).collect();
        assert_eq!(&selected[..8], &[0, 1, 8, 9, 10, 17, 18, 19]);
        let scored: Vec<u64> = selected.iter().step_by(3).copied().collect();
        assert_eq!(scored, vec![0, 9, 18, 27, 36]);
        assert_eq!(selected.len() as u64, selected_frames(40, 9).unwrap());
        assert_eq!((given_number(17, 9), given_number(18, 9), given_number(5, 9)), (Some(5), Some(6), None));
        assert_eq!(given_number(17, 3), Some(17));
        // Frames 0 and 8 of a file of two 8-frame samples follow cuts.
        let every_3rd: Vec<(u64, f64)> = (0..16).step_by(3).map(|n| (n, n as f64)).collect();
        let kept: Vec<u64> = leaving_out(every_3rd.clone(), &[0, 8], 3).iter().map(|f| f.0).collect();
        assert_eq!(kept, vec![3, 6, 9, 12, 15]);
        // Through a selection (every 9th): frame 9 is given as 3, and left out.
        let given: Vec<(u64, f64)> = (0..9).step_by(3).map(|n| (n, 90.0)).collect();
        assert_eq!(leaving_out(given, &[9], 9).iter().map(|f| f.0).collect::<Vec<_>>(), vec![0, 6]);
        assert_eq!(leaving_out(vec![(0, 90.0)], &[0], 3), vec![(0, 90.0)], "never nothing");
        assert_eq!(selected_frames(40, 3), None);
    }

    #[test]
    fn frames_pooled_without_the_first() {
        let csv = [
            "Frame,integer_adm2,integer_motion2,vmaf,",
            "0,0.96,0.000000,84.0,",
            "3,0.96,2.31,90.0,",
            "6,0.96,2.5,99.0,",
        ];
        let frames = frame_scores(&csv);
        assert_eq!(frames, vec![(0, 84.0), (3, 90.0), (6, 99.0)]);
        let harmonic = pooled(&frames, VmafPool::HarmonicMean).unwrap();
        assert!((harmonic - (2.0 / (1.0 / 91.0 + 1.0 / 100.0) - 1.0)).abs() < 1e-9);
        assert_eq!(pooled(&frames, VmafPool::Mean), Some(94.5));
        assert_eq!(pooled(&frames, VmafPool::Min), Some(90.0));
        assert_eq!(pooled(&frames[..1], VmafPool::Mean), Some(84.0), "a lone frame counts");
        assert_eq!(pooled(&[], VmafPool::Mean), None);
        assert!(frame_scores(&["VMAF score: 93"]).is_empty());
    }
}
