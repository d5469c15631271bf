//! The standard video path: one SVT-AV1 encode of the first video stream.

use super::{Ctx, run_ffmpeg};
use crate::error::Result;
use crate::events::Stage;
use crate::plan::VideoPlan;
use crate::tools::ffmpeg::FfmpegArgs;
use std::path::Path;

/// The ffmpeg arguments that encode the first video stream of `input` into
/// `output` (a Matroska file holding only that stream).
pub fn standard_args(input: &Path, output: &Path, plan: &VideoPlan) -> FfmpegArgs {
    let mut a = FfmpegArgs::new();
    let threads = plan.threads.to_string();
    a.extend(["-threads", &threads, "-filter_threads", &threads]);
    if let Some(hw) = &plan.hwaccel {
        a.arg("-hwaccel").arg(hw);
    }
    a.input(input).extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]);
    if let Some(vf) = plan.filter_chain() {
        a.arg("-vf").arg(vf);
    }
    a.extend(plan.encoder_args()).extend(["-f", "matroska"]).output(output);
    a
}

/// Encodes the video of `input` to `output`.
pub fn encode_standard(ctx: &Ctx, input: &Path, output: &Path, plan: &VideoPlan, duration: f64) -> Result<()> {
    run_ffmpeg(ctx, &standard_args(input, output, plan), input, Stage::Video, duration)
}
