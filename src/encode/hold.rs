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

/// How long the last frame of an encode must last for its video to end
/// where the source's does, given the source's last frame `source` and the
/// encode's frames `frames` (presentation order), `offset` seconds earlier
/// on their clock than on the source's (the chunked path's video starts at
/// zero, whenever the source's does): `None` when the source's last frame
/// is no longer than about one of the encode's (nothing held), or when the
/// encode's last frame is not the source's (frames missing: validation
/// says so).
pub fn held_duration(source: Frame, frames: &[Frame], offset: f64, tolerance: f64) -> Option<f64> {
    let last = frames.last()?;
    let typical = last.duration.max(1e-3);
    let held = source.duration > 2.0 * typical && (last.pts + offset - source.pts).abs() <= tolerance;
    held.then_some(source.duration)
}

/// How long the last frame of the encoded `video` of `input` (whose video
/// ends near `end`) is to be held, when it is (see [`held_duration`]). Only
/// the first and last seconds of both are read.
pub fn to_hold(tools: &Toolbox, input: &Path, video: &Path, end: f64, cancel: &Cancel) -> Option<f64> {
    let tail = |file: &Path| frame_times(&tools.ffprobe, file, Some(end - 10.0), cancel).ok();
    let first = |file: &Path| crate::tools::ffprobe::first_video_time(&tools.ffprobe, file, cancel);
    let source = *tail(input)?.last()?;
    let offset = first(input)? - first(video)?;
    held_duration(source, &tail(video)?, offset, crate::analysis::extent::DURATION_TOLERANCE)
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
    let mkv = &tools.mkvtoolnix;
    mkv.remux_timed(video, &args, &out, "hold the last frame", cancel).map_err(Error::process(input))?;
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
        // The source's last frame lasts 5 s.
        let held = Frame { pts: 1.96, duration: 5.0 };
        assert_eq!(held_duration(held, &encoded, 0.0, 1.0), Some(5.0));
        // One frame's duration, or a little more (a rounded timestamp).
        assert_eq!(held_duration(Frame { pts: 1.96, duration: 0.04 }, &encoded, 0.0, 1.0), None);
        assert_eq!(held_duration(Frame { pts: 1.96, duration: 0.05 }, &encoded, 0.0, 1.0), None);
        // Held, but the encode lacks frames: its last is not the source's.
        assert_eq!(held_duration(held, &encoded[..20], 0.0, 1.0), None);
        assert_eq!(held_duration(held, &[], 0.0, 1.0), None);
        // The source's video starts 1.5 s into its clock, the encode's at 0.
        let late = Frame { pts: 3.46, duration: 5.0 };
        assert_eq!(held_duration(late, &encoded, 1.5, 1.0), Some(5.0));
        assert_eq!(held_duration(late, &encoded, 0.0, 1.0), None);
    }
}
