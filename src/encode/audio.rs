//! Audio: each track to Opus with the design's settings.

use crate::analysis::audio::{AudioPlan, STANDARD_LAYOUTS};
use crate::error::Result;
use crate::events::Stage;
use crate::step::{Ctx, run_ffmpeg};
use crate::tools::ffmpeg::FfmpegArgs;
use std::path::Path;

/// The ffmpeg arguments that encode audio track `plan.index` of `input`.
pub fn track_args(input: &Path, output: &Path, plan: &AudioPlan) -> FfmpegArgs {
    let mut a = FfmpegArgs::new();
    a.input(input);
    track_output(&mut a, output, plan);
    a
}

/// Appends to `a` (whose first input is the source) the output that
/// encodes audio track `plan.index` into `output`: on its own, or as one
/// more output of the video's encode (see [`super::video::standard_args`]).
pub fn track_output(a: &mut FfmpegArgs, output: &Path, plan: &AudioPlan) {
    a.arg("-map")
        .arg(format!("0:a:{}", plan.index))
        .extend(["-vn", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"])
        .extend(["-c:a", "libopus", "-b:a"])
        .arg(format!("{}k", plan.bitrate_kbps));
    // `-ac N` picks ffmpeg's default layout for N channels, which for 3, 4, 5
    // and 7 is not the one libopus takes: there the aformat layout decides.
    // Elsewhere the plan's own map puts each channel in its speaker.
    if plan.layouts == STANDARD_LAYOUTS {
        a.arg("-ac").arg(plan.channels.to_string());
    }
    let map = plan.remap.as_ref().map(|p| format!("{p},")).unwrap_or_default();
    a.arg("-af")
        .arg(format!("{map}aformat=channel_layouts={}", plan.layouts))
        .extend(["-application", "audio", "-frame_duration", "20", "-vbr", "on", "-compression_level", "10"])
        .extend(["-f", "matroska"])
        .output(output);
}

/// Encodes one audio track of `input` to `output`.
pub fn encode_track(ctx: &Ctx, input: &Path, output: &Path, plan: &AudioPlan, duration: f64) -> Result<()> {
    run_ffmpeg(ctx, &track_args(input, output, plan), input, Stage::Audio(plan.index), duration)
}
