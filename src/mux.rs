//! Muxing: the encoded video, each encoded audio track, and everything else
//! the source carries (subtitles, attachments, chapters, global and per-track
//! tags, dispositions) into one Matroska file.

use crate::analysis::Analysis;
use crate::encode::{Ctx, run_ffmpeg};
use crate::error::Result;
use crate::events::Stage;
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::ffprobe::Stream;
use std::path::{Path, PathBuf};

/// The pieces to put together.
pub struct MuxInputs<'a> {
    pub source: &'a Path,
    pub video: PathBuf,
    /// One file per planned audio track (`analysis.audio`), in that order.
    pub audio: Vec<PathBuf>,
    /// The output's record of its source ([`crate::job::record`]).
    pub record: String,
}

/// Tags that describe the source's encoding and are wrong after re-encoding
/// (mkvmerge's statistics tags, the old encoder).
fn is_stale_tag(name: &str) -> bool {
    let base = name.split('-').next().unwrap_or(name).to_ascii_uppercase();
    matches!(base.as_str(), "BPS" | "DURATION" | "NUMBER_OF_FRAMES" | "NUMBER_OF_BYTES" | "ENCODER" | "ENCODER_OPTIONS")
        || base.starts_with("_STATISTICS_")
}

/// The `setts` bitstream filter that shortens every packet lasting past
/// `end` seconds (output clock) to end there.
pub fn clamp_durations(end: f64) -> String {
    let e = format!("{end:.3}/TB");
    format!("setts=duration='if(gt(PTS+DURATION,{e}),max(1,{e}-PTS),DURATION)'")
}

/// Dispositions carried from a source stream, as ffmpeg's `-disposition` value.
fn disposition(stream: &Stream) -> String {
    const FLAGS: &[&str] =
        &["default", "forced", "dub", "original", "comment", "hearing_impaired", "visual_impaired", "descriptions"];
    let set: Vec<&str> = FLAGS.iter().copied().filter(|f| stream.has_disposition(f)).collect();
    if set.is_empty() { "0".into() } else { set.join("+") }
}

/// The ffmpeg arguments of the mux.
pub fn mux_args(analysis: &Analysis, inputs: &MuxInputs, output: &Path) -> FfmpegArgs {
    let probe = &analysis.probe;
    let mut a = FfmpegArgs::new();
    a.input(&inputs.video);
    for audio in &inputs.audio {
        a.input(audio);
    }
    // The source comes last; its timestamps are shifted so it starts at zero,
    // like the encoded pieces (which ffmpeg wrote relative to the file start).
    let source_start = probe.format.start_time.unwrap_or(0.0);
    if source_start.abs() > 1e-6 {
        a.arg("-itsoffset").arg(format!("{:.6}", -source_start));
    }
    a.input(inputs.source);
    let src = inputs.audio.len() + 1;

    a.extend(["-map", "0:v:0"]);
    for i in 0..inputs.audio.len() {
        a.arg("-map").arg(format!("{}:a:0", i + 1));
    }
    let others: Vec<&Stream> =
        probe.streams.iter().filter(|s| s.codec_type == "subtitle" || s.codec_type == "attachment").collect();
    for s in &others {
        a.arg("-map").arg(format!("{src}:{}", s.index));
    }
    // Keep every timestamp as written: audio delays survive.
    a.extend(["-c", "copy", "-copyts"]);
    a.arg("-map_metadata").arg(src.to_string());
    a.arg("-map_chapters").arg(src.to_string());
    a.arg("-metadata").arg(format!("{}={}", crate::job::record::TAG, inputs.record));

    let video_src = probe.video_streams().next();
    let audio_src: Vec<&Stream> = probe.of_type("audio").collect();
    let tag_stream = |a: &mut FfmpegArgs, out_spec: &str, stream: &Stream| {
        a.arg(format!("-map_metadata:s:{out_spec}")).arg(format!("{src}:s:{}", stream.index));
        for name in stream.tags.keys().filter(|k| is_stale_tag(k)) {
            a.arg(format!("-metadata:s:{out_spec}")).arg(format!("{name}="));
        }
        a.arg(format!("-disposition:{out_spec}")).arg(disposition(stream));
    };
    if let Some(v) = video_src {
        tag_stream(&mut a, "v:0", v);
    }
    // Each encoded track takes the tags and flags of the source track it
    // came from (a track left out shifts the ones after it).
    for (i, plan) in analysis.audio.iter().enumerate().take(inputs.audio.len()) {
        if let Some(s) = audio_src.get(plan.index) {
            tag_stream(&mut a, &format!("a:{i}"), s);
        }
    }
    // Naming one stream's metadata source turns ffmpeg's automatic copying
    // off for all of them: name every subtitle's and attachment's too
    // (attachments need their filename and mimetype tags).
    for (i, s) in probe.of_type("subtitle").enumerate() {
        a.arg(format!("-map_metadata:s:s:{i}")).arg(format!("{src}:s:{}", s.index));
        a.arg(format!("-disposition:s:{i}")).arg(disposition(s));
        // A track that claims to last far past the film (an endless last
        // event) ends with the film.
        if analysis.extent.overlong.iter().any(|o| o.index == s.index) {
            a.arg(format!("-bsf:s:{i}")).arg(clamp_durations(analysis.duration));
        }
    }
    for (i, s) in probe.of_type("attachment").enumerate() {
        a.arg(format!("-map_metadata:s:t:{i}")).arg(format!("{src}:s:{}", s.index));
    }
    a.extend(["-default_mode", "passthrough", "-f", "matroska"]).output(output);
    a
}

/// Muxes everything into `output`.
pub fn mux(ctx: &Ctx, analysis: &Analysis, inputs: &MuxInputs, output: &Path) -> Result<()> {
    run_ffmpeg(ctx, &mux_args(analysis, inputs, output), inputs.source, Stage::Mux, analysis.duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tags_are_recognised() {
        for t in ["BPS", "BPS-eng", "DURATION-eng", "NUMBER_OF_FRAMES", "_STATISTICS_TAGS-eng", "ENCODER"] {
            assert!(is_stale_tag(t), "{t}");
        }
        for t in ["language", "title", "HANDLER_NAME"] {
            assert!(!is_stale_tag(t), "{t}");
        }
    }
}
