//! The last step: the encoded segments appended into one video with
//! mkvmerge (continuous timestamps, seekable), and the result's frames
//! counted against the film's.

use super::SegmentResult;
use crate::encode::Ctx;
use crate::error::{Error, Result};
use crate::events::Event;
use std::ffi::OsString;
use std::path::Path;

/// Appends `results` (in order) into `output`, which must hold `frames`.
pub fn append(ctx: &Ctx, input: &Path, results: &[SegmentResult], output: &Path, frames: usize) -> Result<()> {
    let mut args: Vec<OsString> = vec!["-o".into(), crate::tools::path_arg(output)];
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
