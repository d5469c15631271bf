//! The last step: the encoded segments appended into one video with
//! mkvmerge (continuous timestamps, seekable), each frame at its own time
//! (its source frame's, or its place at the rate the filters give), and
//! the result's frames counted against the film's.

use super::SegmentResult;
use super::timeline::Timeline;
use crate::cancel::Cancel;
use crate::error::{Error, ProcessFailure, Result};
use crate::events::Event;
use crate::step::Ctx;
use crate::tools::mkvtoolnix::Mkvtoolnix;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// When the frames of the result are shown.
#[derive(Debug, Clone, Copy)]
pub enum Times<'a> {
    /// At their source frames' times (the filters keep the source's timing).
    Source(&'a Timeline),
    /// At a constant rate (inverse telecine, evened-out soft telecine).
    Rate(f64),
}

/// Segment files one mkvmerge run appends at most. mkvmerge opens every
/// input at once, and a process may open 1,024 files on most Linux systems
/// and 256 on macOS: at either limit mkvmerge refused the 253rd or 1,021st
/// of a film's segments ("could not be opened for reading"), which a
/// two-hour film of 5 s segments (about 1,440) passes. More segments are
/// appended in groups of this many first.
pub const APPEND_AT_ONCE: usize = 100;

/// Appends `results` (in order) into `output`, which must hold `frames`,
/// each frame at its time of `times`, its nominal rate `nominal_fps` when
/// given (mkvmerge takes one from the timestamp file's milliseconds: a
/// 23.976 film said 23.810 fps to players matching their refresh rate). mkvmerge's append alone starts each
/// segment where the one before ends by its frames' nominal duration: a
/// variable frame rate drifted at every boundary (24 fps frames 50 and 33
/// ms apart in turn: 184 ms late after 15 s in 2 s segments), and a
/// constant 23.976 fps went up to 1.4 ms off at each boundary in a random
/// walk (in milliseconds the nominal duration is rounded).
pub fn append(
    ctx: &Ctx,
    input: &Path,
    results: &[SegmentResult],
    output: &Path,
    frames: usize,
    times: Times,
    nominal_fps: Option<f64>,
) -> Result<()> {
    let file = output.with_extension("timestamps.txt");
    std::fs::write(&file, timestamps_v2(times, frames)).map_err(Error::io("write", &file))?;
    let parts: Vec<PathBuf> = results.iter().map(|r| r.path.clone()).collect();
    let warnings = join(&ctx.tools.mkvtoolnix, &parts, &file, output, APPEND_AT_ONCE, ctx.cancel)
        .map_err(Error::process(input))?;
    for w in warnings {
        ctx.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: format!("mkvmerge: {w}") });
    }
    if let Some(fps) = nominal_fps.filter(|f| *f > 0.0) {
        // Whole nanoseconds down, as mkvmerge writes a rate (33366666 at
        // 29.97: rounded, the two paths' outputs differed by one).
        let set = format!("default-duration={}", (1e9 / fps + 1e-3).floor() as u64);
        ctx.tools
            .mkvtoolnix
            .edit_tracks(output, &[("track:v1".into(), set)], ctx.cancel)
            .map_err(Error::process(input))?;
    }
    let counted =
        crate::tools::ffprobe::count_frames(&ctx.tools.ffprobe, output, ctx.cancel).map_err(Error::process(input))?;
    if counted != frames {
        return Err(Error::Internal {
            path: input.to_path_buf(),
            problem: format!("assembled video has {counted} frames, the source {frames}"),
        });
    }
    Ok(())
}

/// Appends `parts` (in order) into `output` with mkvmerge, the frames of
/// their first track timed by the timestamp file `times` (a line for every
/// frame of all the parts). More than `at_once` parts are appended in
/// groups of `at_once` first, into files beside `output` that are removed
/// once it is made (or has failed). Returns mkvmerge's warnings.
pub fn join(
    mkv: &Mkvtoolnix,
    parts: &[PathBuf],
    times: &Path,
    output: &Path,
    at_once: usize,
    cancel: &Cancel,
) -> std::result::Result<Vec<String>, ProcessFailure> {
    let at_once = at_once.max(2);
    let mut made = Vec::new();
    let mut warnings = Vec::new();
    let mut run = || {
        let mut level = parts.to_vec();
        while level.len() > at_once {
            let mut groups = Vec::new();
            for group in level.chunks(at_once) {
                let file = output.with_extension(format!("group{}.mkv", made.len() + 1));
                made.push(file.clone());
                warnings.extend(concatenate(mkv, group, None, &file, cancel)?);
                groups.push(file);
            }
            level = groups;
        }
        warnings.extend(concatenate(mkv, &level, Some(times), output, cancel)?);
        Ok(())
    };
    let outcome = run();
    for f in &made {
        let _ = std::fs::remove_file(f);
    }
    outcome.map(|()| warnings)
}

/// One mkvmerge run appending `parts` into `output`, timed by `times` when
/// given (else each part follows the one before by its frames' durations).
fn concatenate(
    mkv: &Mkvtoolnix,
    parts: &[PathBuf],
    times: Option<&Path>,
    output: &Path,
    cancel: &Cancel,
) -> std::result::Result<Vec<String>, ProcessFailure> {
    let mut args: Vec<OsString> = vec!["-o".into(), crate::tools::path_arg(output)];
    if let Some(t) = times {
        let mut arg = OsString::from("0:");
        arg.push(t.as_os_str());
        args.extend(["--timestamps".into(), arg]);
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            args.push("+".into());
        }
        args.push(crate::tools::path_arg(p));
    }
    mkv.merge(&args, "concatenate segments", cancel, |_| {}).map(|o| o.warnings)
}

/// The first `frames` times of `times` from the first, as an mkvmerge
/// timestamp file (format v2: milliseconds, one line a frame).
fn timestamps_v2(times: Times, frames: usize) -> String {
    let ms: Vec<f64> = match times {
        Times::Source(tl) => {
            let t0 = tl.pts.first().copied().unwrap_or(0.0);
            tl.pts.iter().take(frames).map(|t| (t - t0) * 1000.0).collect()
        }
        Times::Rate(fps) => (0..frames).map(|i| i as f64 * 1000.0 / fps).collect(),
    };
    let mut s = String::from("# timestamp format v2\n");
    for t in ms {
        s.push_str(&format!("{t:.6}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{Times, timestamps_v2};

    #[test]
    fn timestamps_from_the_first_frame_in_milliseconds() {
        let tl = super::Timeline::new(vec![0.2, 0.25005, 0.28342], vec![], vec![]);
        assert_eq!(timestamps_v2(Times::Source(&tl), 3), "# timestamp format v2\n0.000000\n50.050000\n83.420000\n");
    }

    #[test]
    fn a_constant_rate_places_each_frame_by_its_number() {
        let s = timestamps_v2(Times::Rate(24000.0 / 1001.0), 172_800);
        assert!(s.starts_with("# timestamp format v2\n0.000000\n41.708333\n83.416667\n"), "{s:.60}");
        // Two hours on: frame 172,799 is at 172,799 × 1001/24 ms, not drifted.
        assert!(s.ends_with("\n7207158.291667\n"), "{}", &s[s.len() - 40..]);
    }
}
