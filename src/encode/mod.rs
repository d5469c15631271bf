//! Encoding: carries out an [`crate::plan::EncodePlan`] with ffmpeg.
//!
//! `video` encodes the picture in one go (standard path), `chunked` in
//! VMAF-targeted segments, `audio` each audio track; `hold` and
//! `hdr10plus` put back what the encoders drop (a held last frame's
//! duration, HDR10+ metadata).
//! [`run_ffmpeg`] is the one place that runs an ffmpeg and turns its progress
//! into [`Event::Progress`].

pub mod audio;
pub mod chunked;
pub mod guard;
pub mod hdr10plus;
pub mod hold;
pub mod video;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Stage};
use crate::tools::ffmpeg::{FfmpegArgs, Progress, ProgressParser};
use guard::SizeGuard;
use std::path::Path;
use std::time::{Duration, Instant};

/// What every encoder needs besides its plan.
pub struct Ctx<'a> {
    pub tools: &'a crate::tools::Toolbox,
    pub events: &'a dyn EventSink,
    pub cancel: &'a Cancel,
}

/// Runs one ffmpeg for `stage` of `input`, reporting progress against
/// `duration` seconds of output at most every half second.
pub fn run_ffmpeg(ctx: &Ctx, args: &FfmpegArgs, input: &Path, stage: Stage, duration: f64) -> Result<()> {
    run_ffmpeg_guarded(ctx, args, input, stage, duration, &SizeGuard::off())
}

/// [`run_ffmpeg`], stopped early when its projected output is surely over
/// `guard`'s limit.
pub fn run_ffmpeg_guarded(
    ctx: &Ctx,
    args: &FfmpegArgs,
    input: &Path,
    stage: Stage,
    duration: f64,
    guard: &SizeGuard,
) -> Result<()> {
    let mut parser = ProgressParser::default();
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut cmd = args.command(&ctx.tools.ffmpeg);
    let mut errors = 0usize;
    let this = ctx.cancel.child();
    let mut over: Option<(u64, f64)> = None;
    let run = crate::tools::process::run_lines(&mut cmd, &stage.label(), &this, |line| {
        let line = match line {
            crate::tools::process::Line::Err(l) => {
                if is_decode_error(l) {
                    errors += 1;
                }
                return;
            }
            crate::tools::process::Line::Out(l) => l,
        };
        let Some(p) = parser.feed(line) else { return };
        if !p.done && last.elapsed() < Duration::from_millis(500) {
            return;
        }
        last = Instant::now();
        let fraction = if duration > 0.0 { (p.out_time / duration).clamp(0.0, 1.0) } else { 0.0 };
        if fraction > 0.0 && over.is_none() && guard.over((p.total_size as f64 / fraction) as u64, fraction) {
            over = Some(((p.total_size as f64 / fraction) as u64, fraction));
            this.cancel(nix::libc::SIGTERM);
        }
        ctx.events.emit(&progress_event(input, stage, &p, duration, fraction));
    });
    match (run, over) {
        (Err(_), Some((bytes, fraction))) if !ctx.cancel.is_cancelled() => {
            return Err(guard.error(input, bytes, fraction));
        }
        (r, _) => r.map_err(Error::process(input))?,
    };
    if errors > 0 {
        ctx.events.emit(&Event::Warning {
            input: Some(input.to_path_buf()),
            message: format!(
                "{}: ffmpeg reported {errors} decoding error(s) in the source; the encode finished, \
                 but look at the output where the source is damaged",
                stage.label()
            ),
        });
    }
    Ok(())
}

/// The progress event of ffmpeg's report `p`, `fraction` of the way
/// through `duration` seconds of output.
fn progress_event(input: &Path, stage: Stage, p: &Progress, duration: f64, fraction: f64) -> Event {
    let eta_seconds = (p.speed > 0.0 && duration > 0.0).then(|| ((duration - p.out_time).max(0.0)) / p.speed);
    let projected_bytes = (fraction > 0.02).then(|| (p.total_size as f64 / fraction) as u64);
    Event::Progress {
        input: input.to_path_buf(),
        stage,
        percent: if p.done { 100.0 } else { fraction * 100.0 },
        frame: p.frame,
        fps: p.fps,
        speed: p.speed,
        eta_seconds,
        bitrate_kbps: p.bitrate_kbps,
        size_bytes: p.total_size,
        projected_bytes,
    }
}

/// A decoder complaint about damaged data (ffmpeg at `-loglevel error`).
fn is_decode_error(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("error while decoding")
        || l.contains("invalid data")
        || l.contains("corrupt")
        || l.contains("concealing")
        || l.contains("decode_slice")
        || (l.contains("[h264") || l.contains("[hevc") || l.contains("[mpeg2video")) && l.contains("error")
}
