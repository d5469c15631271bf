//! The last step: the encoded segments appended into one video with
//! mkvmerge (continuous timestamps, seekable), each frame at its source
//! frame's time where the filters keep the source's timing, and the
//! result's frames counted against the film's.

use super::SegmentResult;
use super::layout::Timeline;
use crate::encode::Ctx;
use crate::error::{Error, Result};
use crate::events::Event;
use std::ffi::OsString;
use std::path::Path;

/// Appends `results` (in order) into `output`, which must hold `frames`.
/// With `times` (the film's output timeline, where the filters keep the
/// source's frame times), every frame is given its own: mkvmerge's append
/// starts each segment where the one before ends by its frames' nominal
/// duration, so a variable frame rate drifted at every boundary (24 fps
/// frames 50 and 33 ms apart in turn: 184 ms late after 15 s in 2 s
/// segments).
pub fn append(
    ctx: &Ctx,
    input: &Path,
    results: &[SegmentResult],
    output: &Path,
    frames: usize,
    times: Option<&Timeline>,
) -> Result<()> {
    let mut args: Vec<OsString> = vec!["-o".into(), crate::tools::path_arg(output)];
    if let Some(tl) = times {
        let file = output.with_extension("timestamps.txt");
        std::fs::write(&file, timestamps_v2(tl)).map_err(Error::io("write", &file))?;
        let mut arg = OsString::from("0:");
        arg.push(file.as_os_str());
        args.extend(["--timestamps".into(), arg]);
    }
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            args.push("+".into());
        }
        args.push(crate::tools::path_arg(&r.path));
    }
    let outcome =
        ctx.tools.mkvtoolnix.merge(&args, "concatenate segments", ctx.cancel, |_| {}).map_err(Error::process(input))?;
    for w in outcome.warnings {
        ctx.events.emit(&Event::Warning { input: Some(input.to_path_buf()), message: format!("mkvmerge: {w}") });
    }
    let counted = crate::tools::ffprobe::count_frames(&ctx.tools.ffprobe, output, ctx.cancel).unwrap_or(0);
    if counted != frames {
        return Err(Error::Internal {
            path: input.to_path_buf(),
            problem: format!("assembled video has {counted} frames, the source {frames}"),
        });
    }
    Ok(())
}

/// `tl`'s frame times from its first, as an mkvmerge timestamp file
/// (format v2: milliseconds, one line a frame).
fn timestamps_v2(tl: &Timeline) -> String {
    let t0 = tl.pts.first().copied().unwrap_or(0.0);
    let mut s = String::from("# timestamp format v2\n");
    for t in &tl.pts {
        s.push_str(&format!("{:.6}\n", (t - t0) * 1000.0));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_from_the_first_frame_in_milliseconds() {
        let tl = super::Timeline { pts: vec![0.2, 0.25005, 0.28342], bytes: vec![], keyframes: vec![] };
        assert_eq!(super::timestamps_v2(&tl), "# timestamp format v2\n0.000000\n50.050000\n83.420000\n");
    }
}
