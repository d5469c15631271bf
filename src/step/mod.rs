//! Running one step of a rip's work: an ffmpeg run for a stage of the
//! encode or the mux, with cancellation, progress events every half second,
//! the output size guard ([`size_guard`]) and a warning for the decoding
//! errors it reported ([`decode_errors`]). [`run_ffmpeg`] is the one place
//! that turns ffmpeg's progress into [`Event::Progress`].

pub mod decode_errors;
pub mod size_guard;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink, Stage};
use crate::tools::ffmpeg::{FfmpegArgs, Progress, ProgressParser};
use decode_errors::DecodeErrors;
use size_guard::SizeGuard;
use std::path::Path;
use std::time::{Duration, Instant};

/// What every step needs besides its plan: the tools, where events go,
/// and the run's cancellation.
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
    let mut errors = DecodeErrors::default();
    let this = ctx.cancel.child();
    let mut over: Option<(u64, f64)> = None;
    let started = Instant::now();
    let run = crate::tools::process::run_lines(&mut cmd, &stage.label(), &this, |line| {
        let line = match line {
            crate::tools::process::Line::Err(l) => {
                errors.count(l);
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
        // (ffmpeg's first reports, and a short encode's last, say fps=0
        // beside a speed: the frames so far over the time is the truth.)
        let fps = if p.fps > 0.0 { p.fps } else { p.frame as f64 / started.elapsed().as_secs_f64().max(1e-3) };
        ctx.events.emit(&progress_event(input, stage, &Progress { fps, ..p }, duration, fraction));
    });
    match (run, over) {
        (Err(_), Some((bytes, fraction))) if !ctx.cancel.is_cancelled() => {
            return Err(guard.error(input, bytes, fraction));
        }
        (r, _) => r.map_err(Error::process(input))?,
    };
    if let Some(said) = errors.said() {
        ctx.events.emit(&Event::Warning {
            input: Some(input.to_path_buf()),
            message: format!(
                "{}: ffmpeg reported {said}; the encode finished, but look at the output where the source is damaged",
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
