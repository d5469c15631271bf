//! Validation: is the encoded file what the source promised? Every check is
//! recorded; the file is accepted only if all pass.

use crate::analysis::Analysis;
use crate::events::Check;
use crate::mux::structure::Structure;
use crate::tools::ffprobe::Probe;

/// Files smaller than this cannot hold a real encode.
pub const MIN_OUTPUT_BYTES: u64 = 1024;
/// Largest allowed difference between source and output duration, seconds.
pub const DURATION_TOLERANCE: f64 = 1.0;

/// Largest share by which an inverse-telecined output's frame count may
/// differ from 4/5 of the source's frames.
pub const IVTC_FRAME_TOLERANCE: f64 = 0.01;

/// Checks `output` (probed, `size` bytes, its video ending at `video_end`
/// seconds as measured from its packets, holding `frames` video frames when
/// they were counted, its Matroska `structure` as MKVToolNix reads it)
/// against the source `analysis`. An inverse-telecined output must also
/// have the film's frame rate and frame count.
pub fn validate(
    analysis: &Analysis,
    output: &Probe,
    structure: &Structure,
    size: u64,
    video_end: Option<f64>,
    frames: Option<usize>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check { name: name.into(), passed, detail });
    };
    check("size", size >= MIN_OUTPUT_BYTES, format!("{size} bytes"));

    let videos: Vec<_> = output.video_streams().collect();
    let av1 = videos.len() == 1 && videos[0].codec_name == "av1";
    check(
        "video",
        av1,
        format!(
            "{} video stream(s): {}",
            videos.len(),
            videos.iter().map(|v| v.codec_name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );
    if let Some(v) = videos.first() {
        let depth = v.bit_depth();
        check(
            "bit depth",
            depth == Some(10),
            format!(
                "{} ({})",
                depth.map_or("unknown".into(), |d| format!("{d}-bit")),
                v.pix_fmt.as_deref().unwrap_or("?")
            ),
        );
    }

    let src_audio = analysis.audio.len();
    let out_audio: Vec<_> = output.of_type("audio").collect();
    let all_opus = out_audio.iter().all(|a| a.codec_name == "opus");
    check(
        "audio",
        out_audio.len() == src_audio && all_opus,
        format!(
            "{} of {src_audio} track(s), codecs: {}",
            out_audio.len(),
            out_audio.iter().map(|a| a.codec_name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    );
    let channels_ok = out_audio.iter().zip(&analysis.audio).all(|(o, plan)| o.channels == Some(plan.channels));
    check(
        "audio channels",
        channels_ok,
        out_audio.iter().map(|a| a.channels.unwrap_or(0).to_string()).collect::<Vec<_>>().join(", "),
    );

    // The film's real length, not a truncated or bogus claim.
    let expected = analysis.extent.expected_output();
    match output.duration() {
        Some(d) => {
            check("duration", (d - expected).abs() <= DURATION_TOLERANCE, format!("{d:.3} s vs source {expected:.3} s"))
        }
        None => check("duration", false, "output has no duration".into()),
    }

    match video_end {
        Some(end) => check(
            "video complete",
            (end - analysis.video_end).abs() <= DURATION_TOLERANCE,
            format!("last frame ends at {end:.3} s, source's at {:.3} s", analysis.video_end),
        ),
        None => check("video complete", false, "no video packets found near the end".into()),
    }

    if let Some(fps) = analysis.interlace.output_fps(analysis.video.frame_rate) {
        let out_fps = videos.first().and_then(|v| v.frame_rate());
        check(
            "frame rate",
            out_fps.is_some_and(|f| (f / fps - 1.0).abs() < 0.005),
            format!(
                "{} fps, {fps:.3} expected ({})",
                out_fps.map_or("unknown".into(), |f| format!("{f:.3}")),
                analysis.interlace.describe()
            ),
        );
    }
    if analysis.interlace.decimation_cycle().is_some() {
        let fps = analysis.interlace.output_fps(analysis.video.frame_rate).unwrap_or(0.0);
        let expected = analysis.video_end * fps;
        check(
            "frames",
            frames.is_some_and(|n| (n as f64 - expected).abs() <= (expected * IVTC_FRAME_TOLERANCE).max(2.0)),
            format!(
                "{} frames, {expected:.0} expected ({:.3} s at {fps:.3} fps)",
                frames.map_or("uncounted".into(), |n| n.to_string()),
                analysis.video_end
            ),
        );
    }

    if analysis.hdr.kind.is_hdr() {
        let src = &analysis.hdr.colour;
        let out = videos.first();
        let same = |a: &Option<String>, b: Option<&Option<String>>| a.is_none() || b.is_some_and(|b| b == a);
        let ok = same(&src.transfer, out.map(|v| &v.color_transfer))
            && same(&src.primaries, out.map(|v| &v.color_primaries))
            && same(&src.matrix, out.map(|v| &v.color_space));
        check(
            "hdr colour",
            ok,
            format!(
                "transfer {:?}, primaries {:?}, matrix {:?}",
                out.and_then(|v| v.color_transfer.as_deref()),
                out.and_then(|v| v.color_primaries.as_deref()),
                out.and_then(|v| v.color_space.as_deref())
            ),
        );
    }
    // Everything carried from the source, compared with it.
    checks.extend(crate::mux::compare::checks(&analysis.mux, structure));
    checks
}

/// The failed checks as one-line reasons.
pub fn failures(checks: &[Check]) -> Vec<String> {
    checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect()
}
