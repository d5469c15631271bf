//! The standard video path: one SVT-AV1 encode of the first video stream.

use crate::analysis::audio::AudioPlan;
use crate::error::Result;
use crate::events::{Event, Stage};
use crate::plan::VideoPlan;
use crate::step::size_guard::SizeGuard;
use crate::step::{Ctx, run_ffmpeg, run_ffmpeg_guarded};
use crate::tools::ffmpeg::FfmpegArgs;
use std::path::Path;

/// The ffmpeg arguments that encode the first video stream of `input` into
/// `output` (a Matroska file holding only that stream), and each audio
/// track of `audio` into its own file beside it: one read of the source,
/// the Opus encoders running beside SVT-AV1 (as one bare ffmpeg command
/// would), instead of a pass over the source per track afterwards.
pub fn standard_args(input: &Path, output: &Path, plan: &VideoPlan, audio: &[(&AudioPlan, &Path)]) -> FfmpegArgs {
    let mut a = FfmpegArgs::new();
    let threads = plan.threads.to_string();
    a.extend(["-threads", &threads, "-filter_threads", &threads]);
    if let Some(hw) = &plan.hwaccel {
        a.arg("-hwaccel").arg(hw);
    }
    if plan.fits_size {
        // A change of frame size must not start the filters again (inverse
        // telecine lost frames at it): the first filter scales it away.
        a.extend(["-reinit_filter", "0"]);
    }
    a.input(input).extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1"]);
    if let Some(vf) = plan.filter_chain() {
        a.arg("-vf").arg(vf);
    }
    a.extend(plan.encoder_args()).extend(["-f", "matroska"]).output(output);
    for (track, out) in audio {
        super::audio::track_output(&mut a, out, track);
    }
    a
}

/// Encodes the video of `input` to `output`, and the tracks of `audio`
/// beside it (see [`standard_args`]).
pub fn encode_standard(
    ctx: &Ctx,
    input: &Path,
    output: &Path,
    plan: &VideoPlan,
    audio: &[(&AudioPlan, &Path)],
    duration: f64,
) -> Result<()> {
    run_ffmpeg(ctx, &standard_args(input, output, plan, audio), input, Stage::Video, duration)
}

/// The standard path's video stage: [`encode_standard`], and when
/// hardware decoding fails, the same encode with software decoding, every
/// encoder setting unchanged (`plan` then keeps software decoding for any
/// retry), without the audio. Returns whether the audio of `audio` was
/// encoded beside the video.
pub fn encode_with_fallback(
    ctx: &Ctx,
    input: &Path,
    output: &Path,
    plan: &mut VideoPlan,
    audio: &[(&AudioPlan, &Path)],
    duration: f64,
    guard: &SizeGuard,
) -> Result<bool> {
    let encode = |plan: &VideoPlan, audio| {
        run_ffmpeg_guarded(ctx, &standard_args(input, output, plan, audio), input, Stage::Video, duration, guard)
    };
    match encode(plan, audio) {
        Err(e) if e.is_retryable() && plan.hwaccel.is_some() => {
            let hw = plan.hwaccel.take().unwrap_or_default();
            ctx.events.emit(&Event::Warning {
                input: Some(input.to_path_buf()),
                message: format!("hardware decoding ({hw}) failed: {e}; falling back to software decoding"),
            });
            encode(plan, &[]).map(|()| false)
        }
        r => r.map(|()| !audio.is_empty()),
    }
}
