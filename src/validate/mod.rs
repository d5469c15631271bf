//! Validation: is the encoded file what the source promised? Every check is
//! recorded; the file is accepted only if all pass.
//!
//! - [`observe`]: everything validation reads from an output, read once.
//! - this module: its streams, timing and HDR against the analysis.
//! - [`container`]: what the mux carried, against the source's structure.

pub mod container;
pub mod observe;

pub use observe::{Observed, observe};

use crate::analysis::Analysis;
use crate::config::Settings;
use crate::events::Check;
use crate::job::JobInfo;
use crate::job::record::SourceRecord;
use crate::tools::ffprobe::Probe;
use crate::tools::ffprobe::StreamKind;

/// The checks of the picture's size and shape on screen: against this
/// run's plan (its crop), so for the output just made, not one found there.
pub const PICTURE_CHECKS: &[&str] = &["picture size", "aspect ratio"];

/// Files smaller than this cannot hold a real encode.
pub const MIN_OUTPUT_BYTES: u64 = 1024;
pub use crate::analysis::extent::DURATION_TOLERANCE;

/// Largest share by which an inverse-telecined output's frame count may
/// differ from 4/5 of the source's frames.
pub const IVTC_FRAME_TOLERANCE: f64 = 0.01;

/// The checks being gathered for one output.
#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn check(&mut self, name: &str, passed: bool, detail: String) {
        self.0.push(Check { name: name.into(), passed, detail });
    }
}

/// Checks an `output` against the source `analysis`: its size, one 10-bit
/// AV1 video and the planned Opus tracks, its length and the last frame's
/// end, the film's frame rate and frame count after inverse telecine, HDR
/// signalling, and everything carried from the source.
pub fn validate(analysis: &Analysis, output: &Observed) -> Vec<Check> {
    let mut checks = Checks::default();
    checks.check("size", output.size >= MIN_OUTPUT_BYTES, format!("{} bytes", output.size));
    check_streams(&mut checks, analysis, &output.probe);
    check_timing(&mut checks, analysis, output);
    check_hdr(&mut checks, analysis, output);
    checks.0.extend(container::checks(&analysis.mux, &output.structure));
    checks.0
}

/// One AV1 10-bit video stream; the planned Opus tracks and channels.
fn check_streams(checks: &mut Checks, analysis: &Analysis, output: &Probe) {
    let names = |streams: &[&crate::tools::ffprobe::Stream]| {
        streams.iter().map(|v| v.codec_name.as_str()).collect::<Vec<_>>().join(", ")
    };
    let videos: Vec<_> = output.video_streams().collect();
    let av1 = videos.len() == 1 && videos[0].codec_name == "av1";
    checks.check("video", av1, format!("{} video stream(s): {}", videos.len(), names(&videos)));
    if let Some(v) = videos.first() {
        let depth = v.bit_depth();
        let shown = depth.map_or("unknown".into(), |d| format!("{d}-bit"));
        checks.check("bit depth", depth == Some(10), format!("{shown} ({})", v.pix_fmt.as_deref().unwrap_or("?")));
        check_picture(checks, analysis, v);
    }
    let src_audio = analysis.audio.len();
    let out_audio: Vec<_> = output.of_type(StreamKind::Audio).collect();
    let all_opus = out_audio.iter().all(|a| a.codec_name == "opus");
    let detail = format!("{} of {src_audio} track(s), codecs: {}", out_audio.len(), names(&out_audio));
    checks.check("audio", out_audio.len() == src_audio && all_opus, detail);
    let channels_ok = out_audio.iter().zip(&analysis.audio).all(|(o, plan)| o.channels == Some(plan.channels));
    let channels = out_audio.iter().map(|a| a.channels.unwrap_or(0).to_string()).collect::<Vec<_>>();
    checks.check("audio channels", channels_ok, channels.join(", "));
}

/// The picture's size (the rip's, cropped as planned) and its shape on
/// screen: the display aspect ratio the rip's sample aspect gives it (a
/// 16:9 DVD's 720x480 pictures shown 16:9, not squeezed to 3:2), within 1%
/// (Matroska stores it as a display size in whole pixels).
fn check_picture(checks: &mut Checks, analysis: &Analysis, v: &crate::tools::ffprobe::Stream) {
    let (w, h) = analysis.picture_size();
    let (ow, oh) = (v.width.unwrap_or(0), v.height.unwrap_or(0));
    checks.check("picture size", (ow, oh) == (w, h), format!("{ow}x{oh}, {w}x{h} planned"));
    let out_sar = v.sample_aspect_ratio.as_deref().and_then(crate::analysis::ratio).unwrap_or((1, 1));
    let (want, got) = (display_aspect((w, h), analysis.sample_aspect()), display_aspect((ow, oh), out_sar));
    let detail = format!("{got:.4}:1 on screen, the rip's {want:.4}:1");
    checks.check("aspect ratio", (got / want - 1.0).abs() <= 0.01, detail);
}

/// The display aspect ratio of `size` pictures of sample aspect `sar`.
fn display_aspect(size: (u32, u32), sar: (u32, u32)) -> f64 {
    f64::from(size.0) * f64::from(sar.0) / (f64::from(size.1) * f64::from(sar.1)).max(1.0)
}

/// Frames of the output that may present at one time (a source's
/// duplicate timestamp is carried as it is).
const MAX_HELD_FRAMES: usize = 2;

/// The film's real length (not a truncated or bogus claim), the last
/// frame's end, and after inverse telecine the film's rate and frame count.
fn check_timing(checks: &mut Checks, analysis: &Analysis, output: &Observed) {
    let expected = analysis.extent.expected_output();
    match output.probe.duration() {
        Some(d) => checks.check(
            "duration",
            (d - expected).abs() <= DURATION_TOLERANCE,
            format!("{d:.3} s vs source {expected:.3} s"),
        ),
        None => checks.check("duration", false, "output has no duration".into()),
    }
    match output.video_end {
        Some(end) => checks.check(
            "video complete",
            (end - analysis.video_end).abs() <= DURATION_TOLERANCE,
            format!("last frame ends at {end:.3} s, source's at {:.3} s", analysis.video_end),
        ),
        None => checks.check("video complete", false, "no video packets found near the end".into()),
    }
    for (n, plan) in analysis.audio.iter().enumerate() {
        let Some(&Some(src)) = analysis.extent.audio_ends.get(plan.index) else { continue };
        let out = output.audio_ends.get(n).copied().flatten();
        let shown = out.map_or("no packet".into(), |e| format!("{e:.3} s"));
        checks.check(
            "audio complete",
            out.is_some_and(|e| (e - src).abs() <= DURATION_TOLERANCE),
            format!("audio track {} ends at {shown}, the source's at {src:.3} s", plan.index + 1),
        );
    }
    // (Two frames of a time are a source's duplicate timestamp, kept.)
    if let Some((frames, at)) = output.held.filter(|(n, _)| *n > MAX_HELD_FRAMES) {
        checks.check(
            "video timeline",
            false,
            format!(
                "{frames} frames present at {at:.3} s, shown as one: the rip's video timestamps jump (damaged); rip \
                 it again"
            ),
        );
    }
    let interlace = &analysis.interlace;
    if let Some(fps) = interlace.output_fps(analysis.video.frame_rate) {
        let out_fps = output.probe.video_streams().next().and_then(|v| v.frame_rate());
        let shown = out_fps.map_or("unknown".into(), |f| format!("{f:.3}"));
        checks.check(
            "frame rate",
            out_fps.is_some_and(|f| (f / fps - 1.0).abs() < 0.005),
            format!("{shown} fps, {fps:.3} expected ({})", interlace.describe()),
        );
    }
    if let Some(cycle) = interlace.decimation_cycle() {
        let (expected, why) = ivtc_frames(analysis, cycle);
        let close = |n: usize| (n as f64 - expected).abs() <= (expected * IVTC_FRAME_TOLERANCE).max(2.0);
        let shown = output.frames.map_or("uncounted".into(), |n| n.to_string());
        checks.check(
            "frames",
            output.frames.is_some_and(close),
            format!("{shown} frames, {expected:.0} expected ({why})"),
        );
    }
}

/// The frames inverse telecine with a `cycle` makes of the rip, and whence:
/// one in `cycle` fewer than the rip's (counted at the analysis), else
/// (uncounted) the video's time at the output's rate. Its time is from its
/// own first frame: the video's end on the file's clock counted the time
/// it starts after another track (audio from 0.2 s, video from 0.5 s), and
/// a last frame held for seconds, as frames, and a right encode failed.
fn ivtc_frames(analysis: &Analysis, cycle: usize) -> (f64, String) {
    if let Some(n) = analysis.video.frame_count {
        let expected = n as f64 * (cycle - 1) as f64 / cycle as f64;
        return (expected, format!("{n} frames in the rip, less one in {cycle}"));
    }
    let fps = analysis.interlace.output_fps(analysis.video.frame_rate).unwrap_or(0.0);
    let file_start = analysis.probe.format.start_time.unwrap_or(0.0);
    let first = analysis.probe.video_streams().next().and_then(|v| v.start_time).map_or(0.0, |s| s - file_start);
    let length = analysis.video_end - first.max(0.0);
    (length * fps, format!("{length:.3} s at {fps:.3} fps"))
}

/// HDR10+ on the first frame when the source has it; an HDR source's
/// colour description kept.
fn check_hdr(checks: &mut Checks, analysis: &Analysis, output: &Observed) {
    if analysis.hdr.hdr10_plus.is_some() {
        let detail = match output.hdr10_plus {
            Some(true) => "SMPTE ST 2094-40 metadata on the first frame",
            Some(false) => "the first frame has no SMPTE ST 2094-40 metadata",
            None => "not read",
        };
        checks.check("hdr10+", output.hdr10_plus == Some(true), detail.into());
    }
    if !analysis.hdr.kind.is_hdr() {
        return;
    }
    let src = &analysis.hdr.colour;
    let out = output.probe.video_streams().next();
    let same = |a: &Option<String>, b: Option<&Option<String>>| a.is_none() || b.is_some_and(|b| b == a);
    let ok = same(&src.transfer, out.map(|v| &v.color_transfer))
        && same(&src.primaries, out.map(|v| &v.color_primaries))
        && same(&src.matrix, out.map(|v| &v.color_space));
    let detail = format!(
        "transfer {:?}, primaries {:?}, matrix {:?}",
        out.and_then(|v| v.color_transfer.as_deref()),
        out.and_then(|v| v.color_primaries.as_deref()),
        out.and_then(|v| v.color_space.as_deref())
    );
    checks.check("hdr colour", ok, detail);
    check_hdr10_static(checks, analysis, output, out);
}

/// The container's HDR10 mastering display and content light level, where
/// the source has them: what a player or TV reads before the first frame.
/// Read as MKVToolNix reads the video track's Colour element, else from
/// ffprobe's side data, which leaves out a content light with a zero in
/// it (MaxFALL 0, as many UHD discs have) and a mastering display without
/// chromaticities: such a rip's right encode failed on every run.
fn check_hdr10_static(
    checks: &mut Checks,
    analysis: &Analysis,
    output: &Observed,
    out: Option<&crate::tools::ffprobe::Stream>,
) {
    use crate::analysis::hdr::{ContentLight, MasteringDisplay};
    let (container_display, container_light) = crate::analysis::hdr::from_container(&output.structure);
    if let Some(src) = &analysis.hdr.mastering_display {
        let side = || out.and_then(|v| v.side_data("mastering display")).and_then(MasteringDisplay::from_side_data);
        let o = container_display.or_else(side);
        let detail = match &o {
            Some(o) => format!(
                "luminance {}–{} nits, the source's {}–{}",
                o.min_luminance, o.max_luminance, src.min_luminance, src.max_luminance
            ),
            None => "none in the container".into(),
        };
        checks.check("hdr10 mastering display", o.is_some_and(|o| src.close_to(&o)), detail);
    }
    if let Some(src) = &analysis.hdr.content_light {
        let side = || out.and_then(|v| v.side_data("content light")).and_then(ContentLight::from_side_data);
        let o = container_light.or_else(side);
        let detail = match &o {
            Some(o) => {
                format!("MaxCLL {} MaxFALL {}, the source's {} {}", o.max_cll, o.max_fall, src.max_cll, src.max_fall)
            }
            None => "none in the container".into(),
        };
        checks.check("hdr10 content light", o.as_ref() == Some(src), detail);
    }
}

/// The failed checks as one-line reasons.
pub fn failures(checks: &[Check]) -> Vec<String> {
    checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect()
}

/// Whether `output` (probed, `size` bytes, its video ending at `video_end`
/// as read from its last packets) is a finished encode of the rip `source`
/// with `settings` (any, when `None`): its record matches, its video ends where the record
/// says, and the container holds what drapto writes (one AV1 video stream,
/// Opus audio only, a duration). `Err` says why not.
pub fn check_finished(
    output: &Probe,
    size: u64,
    video_end: Option<f64>,
    source: &JobInfo,
    settings: Option<&Settings>,
) -> Result<(), String> {
    let r = SourceRecord::of_output(output).ok_or("it has no record of its source")?;
    if &r.source != source {
        return Err("it was made from another rip, or this one changed".into());
    }
    if settings.is_some_and(|s| r.settings != s.output_fingerprint()) {
        return Err("it was made with other settings".into());
    }
    if !video_end.is_some_and(|e| (e - r.video_end).abs() <= DURATION_TOLERANCE) {
        return Err(format!("its video ends at {video_end:?} s, not at {:.3} s (cut off)", r.video_end));
    }
    let videos: Vec<_> = output.video_streams().collect();
    if size < MIN_OUTPUT_BYTES || videos.len() != 1 || videos[0].codec_name != "av1" {
        return Err("its video is not one AV1 stream".into());
    }
    if output.of_type(StreamKind::Audio).any(|a| a.codec_name != "opus") {
        return Err("not all of its audio is Opus".into());
    }
    if !output.duration().is_some_and(|d| d > 0.0) {
        return Err("it has no duration".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::record::SourceRecord;

    fn source() -> JobInfo {
        JobInfo { input: "/rips/film.mkv".into(), size: 123, mtime_ns: 1_700_000_000_123_456_789 }
    }

    fn output(tag: &str, video: &str, audio: &str) -> Probe {
        let tag = serde_json::to_string(tag).unwrap();
        Probe::from_json(&format!(
            r#"{{"format": {{"duration": "10.0", "tags": {{"DRAPTO_SOURCE": {tag}}}}},
                "streams": [{{"index": 0, "codec_type": "video", "codec_name": "{video}"}},
                            {{"index": 1, "codec_type": "audio", "codec_name": "{audio}"}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_dvds_picture_keeps_its_shape_within_whole_display_pixels() {
        // 16:9 NTSC DVD: 720x480 at 32:27, stored by Matroska as 853x480 shown.
        let want = display_aspect((720, 480), (32, 27));
        assert!((display_aspect((720, 480), (853, 720)) / want - 1.0).abs() <= 0.01);
        // Squeezed to 3:2 (square pixels) or cropped to 704 and shown 4:3.
        assert!((display_aspect((720, 480), (1, 1)) / want - 1.0).abs() > 0.01);
        assert!((display_aspect((704, 480), (10, 11)) / want - 1.0).abs() > 0.01);
        assert!((display_aspect((704, 480), (32, 27)) / display_aspect((704, 480), (40, 33)) - 1.0).abs() > 0.01);
    }

    #[test]
    fn a_matching_record_and_container_is_finished() {
        let s = Settings::default();
        let r = SourceRecord::new(source(), &s, 10.0, None);
        let out = output(&r.to_tag(), "av1", "opus");
        assert_eq!(check_finished(&out, 5000, Some(10.02), &source(), Some(&s)), Ok(()));
        assert_eq!(SourceRecord::of_output(&out), Some(r));
    }

    #[test]
    fn anything_else_is_not() {
        let s = Settings::default();
        let tag = SourceRecord::new(source(), &s, 10.0, None).to_tag();
        let check = |out: &Probe, size, end, src: &JobInfo, s: &Settings| check_finished(out, size, end, src, Some(s));
        assert!(check(&output(&tag, "av1", "aac"), 5000, Some(10.0), &source(), &s).unwrap_err().contains("Opus"));
        assert!(check(&output(&tag, "h264", "opus"), 5000, Some(10.0), &source(), &s).is_err());
        assert!(check(&output(&tag, "av1", "opus"), 100, Some(10.0), &source(), &s).is_err());
        assert!(check(&output(&tag, "av1", "opus"), 5000, Some(3.3), &source(), &s).unwrap_err().contains("cut off"));
        assert!(check(&output(&tag, "av1", "opus"), 5000, None, &source(), &s).is_err());
        let garbage = output("garbage", "av1", "opus");
        assert!(check(&garbage, 5000, Some(10.0), &source(), &s).unwrap_err().contains("no record"));
        let changed = JobInfo { size: 124, ..source() };
        assert!(
            check(&output(&tag, "av1", "opus"), 5000, Some(10.0), &changed, &s).unwrap_err().contains("another rip")
        );
        let mut other = Settings::default();
        other.encoding.preset = 4;
        assert!(
            check(&output(&tag, "av1", "opus"), 5000, Some(10.0), &source(), &other)
                .unwrap_err()
                .contains("other settings")
        );
    }
}
