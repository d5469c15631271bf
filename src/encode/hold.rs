//! A held last frame kept. A rip whose last picture stays on screen for
//! longer than one frame (a still under the end of the credits, a variable
//! frame rate rip's last frame) says so with that frame's duration. The
//! encoders give every frame one frame's duration, so the encode's video
//! ended seconds early: its output failed validation ("video complete"),
//! and a rerun could never reuse it. The encoded video is remuxed with its
//! own timestamps and one more, where the source's last frame ends
//! (mkvmerge's timestamp file, format v2: an extra line is the last frame's
//! end).

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::tools::Toolbox;
use crate::tools::ffprobe::{FrameTime as Frame, frame_times};
use std::ffi::OsString;
use std::path::Path;

/// How long the last frame of `video` must last for the video to end at
/// `end` (seconds, the analysis's clock), given the source's last frame
/// `source` and the encode's frames `frames` (presentation order): `None`
/// when the source's last frame is no longer than about one of the
/// encode's (nothing held), or when holding it would not end the video
/// where the source's ends (frames missing: validation says so).
pub fn held_duration(source: Frame, frames: &[Frame], end: f64, tolerance: f64) -> Option<f64> {
    let last = frames.last()?;
    let typical = last.duration.max(1e-3);
    let held = source.duration > 2.0 * typical && (last.pts + source.duration - end).abs() <= tolerance;
    held.then_some(source.duration)
}

/// How long the last frame of the encoded `video` of `input` (whose video
/// ends at `end`) is to be held, when it is (see [`held_duration`]). Only
/// the ends of both are read (a seek, a few packets).
pub fn to_hold(tools: &Toolbox, input: &Path, video: &Path, end: f64, cancel: &Cancel) -> Option<f64> {
    let tail = |file: &Path| frame_times(&tools.ffprobe, file, Some(end - 10.0), cancel).ok();
    let source = *tail(input)?.last()?;
    held_duration(source, &tail(video)?, end, crate::validate::DURATION_TOLERANCE)
}

/// Makes the encoded `video` of `input` (whose video ends at `end`) hold
/// its last frame as long as the source's does, remuxing it through
/// `scratch`. Returns how long that frame now lasts when it was held.
pub fn keep_last_frame(
    tools: &Toolbox,
    input: &Path,
    video: &Path,
    end: f64,
    scratch: &Path,
    cancel: &Cancel,
) -> Result<Option<f64>> {
    let Some(held) = to_hold(tools, input, video, end, cancel) else { return Ok(None) };
    let encoded = frame_times(&tools.ffprobe, video, None, cancel).map_err(Error::process(video))?;
    std::fs::create_dir_all(scratch).map_err(Error::io("create folder", scratch))?;
    let stamps = scratch.join("timestamps.txt");
    let last = encoded.last().map_or(0.0, |f| f.pts);
    let text: String = std::iter::once("# timestamp format v2\n".to_string())
        .chain(encoded.iter().map(|f| format!("{:.6}\n", f.pts * 1000.0)))
        .chain(std::iter::once(format!("{:.6}\n", (last + held) * 1000.0)))
        .collect();
    std::fs::write(&stamps, text).map_err(Error::io("write", &stamps))?;
    let out = scratch.join("video-held.mkv");
    let mut t = OsString::from("0:");
    t.push(&stamps);
    let args: Vec<OsString> =
        vec!["-o".into(), out.clone().into(), "--timestamps".into(), t, crate::tools::path_arg(video)];
    tools.mkvtoolnix.merge(&args, "hold the last frame", cancel, |_| {}).map_err(Error::process(input))?;
    std::fs::rename(&out, video).map_err(Error::io("replace", video))?;
    Ok(Some(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(fps: f64, n: usize) -> Vec<Frame> {
        (0..n).map(|i| Frame { pts: i as f64 / fps, duration: 1.0 / fps }).collect()
    }

    #[test]
    fn only_a_last_frame_held_longer_than_two_frames_is_kept() {
        let encoded = at(25.0, 50);
        // The source's last frame lasts 5 s: the film ends at 6.96 s.
        let held = Frame { pts: 1.96, duration: 5.0 };
        assert_eq!(held_duration(held, &encoded, 6.96, 1.0), Some(5.0));
        // One frame's duration, or a little more (a rounded timestamp).
        assert_eq!(held_duration(Frame { pts: 1.96, duration: 0.04 }, &encoded, 2.0, 1.0), None);
        assert_eq!(held_duration(Frame { pts: 1.96, duration: 0.05 }, &encoded, 2.01, 1.0), None);
        // Held, but the encode lacks frames: holding would not end it there.
        assert_eq!(held_duration(held, &encoded[..20], 6.96, 1.0), None);
        assert_eq!(held_duration(held, &[], 6.96, 1.0), None);
    }
}
