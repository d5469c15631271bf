//! The subtitle tracks the mux makes rather than copies: text and bitmap
//! tracks clamped to the film's end (by ffmpeg), tracks moved into the
//! cropped picture ([`ass`], [`pgs`], [`vobsub`]: each extracted with
//! mkvextract, re-cropped, and given back their block times), and the
//! closed captions read out of the video's pictures.

pub mod ass;
pub mod pgs;
pub mod vobsub;

use super::MuxInputs;
use crate::analysis::Analysis;
use crate::error::{Error, Result};
use crate::events::{Event, Stage};
use crate::step::{Ctx, run_ffmpeg};
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::mkvtoolnix::Mkvtoolnix;
use std::path::{Path, PathBuf};

/// Files to write: each path with its bytes.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// The `setts` bitstream filter that shortens every packet lasting past
/// `end` seconds (output clock) to end there.
pub fn clamp_durations(end: f64) -> String {
    let e = format!("{end:.3}/TB");
    format!("setts=duration='if(gt(PTS+DURATION,{e}),max(1,{e}-PTS),DURATION)'")
}

/// The ffmpeg arguments that copy subtitle stream `stream` of `source`
/// into `output` with its durations clamped to `end` (seconds on the
/// source's clock), and without the cues that start after it (they kept
/// the output as long as they made the rip, and it failed validation after
/// the whole encode, on every run). On the source's clock (`-copyts`): on
/// ffmpeg's, the source's less the file's start as this ffmpeg reads it
/// (an AC-3 track's codec delay counts or not by version), it came out a
/// few milliseconds early.
pub fn clamped_subtitle_args(source: &Path, stream: usize, end: f64, output: &Path) -> FfmpegArgs {
    let mut a = FfmpegArgs::new();
    a.arg("-copyts");
    a.input(source);
    a.arg("-map").arg(format!("0:{stream}"));
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1", "-c", "copy", "-bsf:s"]);
    a.arg(clamp_durations(end)).arg("-to").arg(format!("{end:.3}"));
    a.extend(["-f", "matroska"]).output(output);
    a
}

/// ffmpeg's arguments that write the closed captions in the pictures of
/// `source`'s video to `outputs` as SubRip, on the source's clock: those on
/// the pictures' first field (CC1) and on their second (CC3), each decoded
/// from a reading of its own, side by side (an empty file for a field that
/// holds no text).
pub fn captions_args(source: &Path, outputs: [&Path; 2]) -> FfmpegArgs {
    let source = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
    let file = filter_value(&source.to_string_lossy());
    let mut a = FfmpegArgs::new();
    a.extend(["-copyts", "-data_field:s:0", "first", "-data_field:s:1", "second"]);
    a.lavfi_input(format!("movie=filename={file}:streams=dv[out0+subcc];movie=filename={file}:streams=dv[out1+subcc]"));
    for (n, output) in outputs.into_iter().enumerate() {
        a.arg("-map").arg(format!("0:s:{n}")).extend(["-c:s", "srt", "-f", "srt"]).output(output);
    }
    a
}

/// The closed captions of the rip's video, when the plan takes them out:
/// the fields (1, 2) whose SubRip holds a line, each with its file.
pub(super) fn extract_captions(ctx: &Ctx, analysis: &Analysis, inputs: &MuxInputs) -> Result<Vec<(u8, PathBuf)>> {
    if !analysis.mux.has_captions() {
        return Ok(Vec::new());
    }
    let files = [1u8, 2].map(|f| (f, inputs.scratch.join(format!("captions-{f}.srt"))));
    let args = captions_args(inputs.source, [&files[0].1, &files[1].1]);
    run_ffmpeg(ctx, &args, inputs.source, Stage::Mux, analysis.duration)?;
    let mut held = Vec::new();
    for (field, file) in files {
        let text = std::fs::read(&file).map_err(Error::io("read", &file))?;
        if String::from_utf8_lossy(&text).contains("-->") {
            held.push((field, file));
        } else {
            tracing::info!("{}: no closed captions on field {field} of the pictures", inputs.source.display());
        }
    }
    Ok(held)
}

/// `value` as an option value inside a filter graph: escaped for the
/// option (`\`, `'`, `:`), then for the graph (`\`, `'`, `[`, `]`, `,`,
/// `;`).
pub(super) fn filter_value(value: &str) -> String {
    let escape = |s: &str, special: &[char]| {
        s.chars().fold(String::new(), |mut out, c| {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    escape(&escape(value, &['\\', '\'', ':']), &['\\', '\'', '[', ']', ',', ';'])
}

/// Subtitle track `id` of the source drawn for the full frame (PGS, VobSub,
/// ASS/SSA), moved into the cropped picture (see [`pgs`], [`vobsub`],
/// [`ass`]), in files of its own: the `.sup`, the `.idx` (beside its
/// `.sub`) or the script to mux. A track that cannot be moved (malformed,
/// or a picture larger than the cropped picture) is copied as drawn, with
/// a warning: failing it failed the rip after its whole encode, on every
/// run.
///
/// Returns the file with the mkvmerge options it takes: a script's times
/// from the source's blocks (a script holds hundredths of a second: every
/// line of a track whose times were off that grid came out up to 9 ms
/// early, and the output failed validation after the whole encode).
pub(super) fn repositioned(
    ctx: &Ctx,
    mkv: &Mkvtoolnix,
    analysis: &Analysis,
    inputs: &MuxInputs,
    id: u32,
) -> Result<(PathBuf, Vec<String>)> {
    let input = inputs.source;
    let (width, height) = (analysis.video.width, analysis.video.height);
    let crop = analysis.crop.crop.unwrap_or(crate::analysis::crop::Rect::full(width, height));
    let read = |p: &Path| std::fs::read(p).map_err(Error::io("read", p));
    let write = |p: &Path, bytes: &[u8]| std::fs::write(p, bytes).map_err(Error::io("write", p));
    let dir = &inputs.scratch;
    let times = dir.join(format!("subtitles-{id}.times.txt"));
    let extract = |ext: &str| -> Result<PathBuf> {
        let whole = dir.join(format!("subtitles-{id}.{ext}"));
        let script = matches!(ext, "ass" | "ssa").then_some(times.as_path());
        mkv.extract_track(input, id, &whole, script, ctx.cancel).map_err(Error::process(input))?;
        Ok(whole)
    };
    let cropped = |ext: &str| dir.join(format!("subtitles-{id}.cropped.{ext}"));
    // The file extracted, and the moved track's files (the first is muxed,
    // a VobSub's `.sub` beside it) or why it cannot be moved.
    let (whole, moved): (PathBuf, std::result::Result<Files, String>) =
        match analysis.mux.source_track(id).text("codec_id") {
            Some("S_VOBSUB") => {
                let idx = extract("idx")?;
                let text = String::from_utf8_lossy(&read(&idx)?).into_owned();
                let mut pictures = read(&idx.with_extension("sub"))?;
                let moved = vobsub::recrop(&text, &mut pictures, width, height, crop)
                    .map(|text| vec![(cropped("idx"), text.into_bytes()), (cropped("sub"), pictures)]);
                (idx, moved)
            }
            Some(codec @ ("S_TEXT/ASS" | "S_TEXT/SSA")) => {
                let ext = if codec == "S_TEXT/ASS" { "ass" } else { "ssa" };
                let whole = extract(ext)?;
                let script = String::from_utf8(read(&whole)?).map_err(|_| "its script is not UTF-8".to_string());
                let moved = script.and_then(|s| ass::recrop(&s, width, height, crop));
                (whole, moved.map(|m| vec![(cropped(ext), m.into_bytes())]))
            }
            _ => {
                let whole = extract("sup")?;
                let moved = pgs::recrop(&read(&whole)?, width, height, crop);
                (whole, moved.map(|m| vec![(cropped("sup"), m)]))
            }
        };
    let options = match script_times(&times, analysis.mux.source.timeline_shift_ns())? {
        Some(file) => vec!["--timestamps".to_string(), format!("0:{}", file.display())],
        None => Vec::new(),
    };
    let file = match moved {
        Ok(files) => {
            for (path, bytes) in &files {
                write(path, bytes)?;
            }
            files.into_iter().next().map_or(whole, |(path, _)| path)
        }
        Err(problem) => {
            let message = format!(
                "{}: subtitle track {id} is copied as drawn for the uncropped frame (players may show it squashed or \
             outside the picture): it cannot be moved into the cropped picture: {problem}",
                input.display()
            );
            ctx.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message });
            whole
        }
    };
    Ok((file, options))
}

/// The timestamps file for a moved script, from mkvextract's `times` of
/// its blocks, each moved by mkvmerge's timeline shift (`shift_ns`: with
/// `--timestamps` it takes no `--sync`); none where the track has no block
/// (mkvmerge refuses a file without an entry) or was not extracted so.
pub(super) fn script_times(times: &Path, shift_ns: i64) -> Result<Option<PathBuf>> {
    let Ok(text) = std::fs::read_to_string(times) else { return Ok(None) };
    let shift_ms = shift_ns as f64 / 1e6;
    let entries: Vec<String> = (text.lines())
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|ms| format!("{}", ms + shift_ms))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let file = times.with_extension("shifted.txt");
    let doc = format!("# timestamp format v2\n{}\n", entries.join("\n"));
    std::fs::write(&file, doc).map_err(Error::io("write", &file))?;
    Ok(Some(file))
}
