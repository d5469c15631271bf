//! Encoding: carries out an [`crate::plan::EncodePlan`] with ffmpeg.
//!
//! `video` encodes the picture in one go (standard path), `chunked` in
//! VMAF-targeted segments, `audio` each audio track.
//! [`run_ffmpeg`] is the one place that runs an ffmpeg and turns its progress
//! into [`Event::Progress`].

pub mod audio;
pub mod chunked;
pub mod video;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Stage};
use crate::tools::ffmpeg::{FfmpegArgs, ProgressParser};
use std::path::Path;
use std::time::{Duration, Instant};

/// What every encoder needs besides its plan.
pub struct Ctx<'a> {
    pub ffmpeg: &'a Path,
    pub events: &'a dyn EventSink,
    pub cancel: &'a Cancel,
}

/// Runs one ffmpeg for `stage` of `input`, reporting progress against
/// `duration` seconds of output at most every half second.
pub fn run_ffmpeg(ctx: &Ctx, args: &FfmpegArgs, input: &Path, stage: Stage, duration: f64) -> Result<()> {
    let mut parser = ProgressParser::default();
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut cmd = args.command(ctx.ffmpeg);
    crate::tools::process::run(&mut cmd, &stage.label(), ctx.cancel, |line| {
        let Some(p) = parser.feed(line) else { return };
        if !p.done && last.elapsed() < Duration::from_millis(500) {
            return;
        }
        last = Instant::now();
        let fraction = if duration > 0.0 { (p.out_time / duration).clamp(0.0, 1.0) } else { 0.0 };
        let eta_seconds = (p.speed > 0.0 && duration > 0.0).then(|| ((duration - p.out_time).max(0.0)) / p.speed);
        let projected_bytes = (fraction > 0.02).then(|| (p.total_size as f64 / fraction) as u64);
        ctx.events.emit(&Event::Progress {
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
        });
    })
    .map_err(Error::process(input))?;
    Ok(())
}
