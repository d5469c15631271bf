//! Reading an output for validation: what ffprobe and MKVToolNix see of it,
//! where its video and each audio track end, its frames' times, and its
//! HDR10+; read once, whether the output was just muxed
//! or was found from an earlier run.

use crate::analysis::Analysis;
use crate::cancel::Cancel;
use crate::error::ProcessFailure;
use crate::matroska::structure::Structure;
use crate::tools::Toolbox;
use crate::tools::ffmpeg::FfmpegArgs;
use crate::tools::ffprobe::{self, Probe, ProbeError};
use crate::tools::mkvtoolnix::IdentifyError;
use crate::tools::process::{Line, run_lines};
use std::path::Path;

/// What was read from an output: everything validation looks at.
pub struct Observed {
    /// ffprobe's view of the container and its streams.
    pub probe: Probe,
    /// Its Matroska structure as MKVToolNix reads it.
    pub structure: Structure,
    /// Its size in bytes.
    pub size: u64,
    /// Where its video ends, seconds, measured from its last packets.
    pub video_end: Option<f64>,
    /// Where each of its audio tracks ends, in order, seconds (`None`: no
    /// packet).
    pub audio_ends: Vec<Option<f64>>,
    /// Its video frames (`None`: they could not be read).
    pub frames: Option<usize>,
    /// The longest run of its video frames that present at one time, and
    /// that time (see [`ffprobe::longest_held`]).
    pub held: Option<(usize, f64)>,
    /// Whether its first frame carries HDR10+, when the source's does.
    pub hdr10_plus: Option<bool>,
}

/// Why an output could not be read.
#[derive(Debug)]
pub enum ObserveError {
    /// A program failed (or was stopped) while reading it.
    Run(ProcessFailure),
    /// It is not a file the programs can read.
    Unreadable(String),
    /// It cannot be looked at (gone, no permission, a share that dropped).
    Io(std::io::Error),
}

impl std::fmt::Display for ObserveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObserveError::Run(e) => e.fmt(f),
            ObserveError::Unreadable(m) => f.write_str(m),
            ObserveError::Io(e) => e.fmt(f),
        }
    }
}

/// Reads the output at `path` of the source `analysis` describes (its
/// probe and structure side by side).
pub fn observe(tools: &Toolbox, analysis: &Analysis, path: &Path, cancel: &Cancel) -> Result<Observed, ObserveError> {
    let size = std::fs::metadata(path).map_err(ObserveError::Io)?.len();
    let (probed, structure) = std::thread::scope(|s| {
        let structure = s.spawn(|| Structure::read(&tools.mkvtoolnix, path, cancel));
        (ffprobe::probe_with_end(&tools.ffprobe, path, cancel), structure.join().expect("structure"))
    });
    let (probe, video_end) = probed.map_err(|e| match e {
        ProbeError::Run(f) => ObserveError::Run(f),
        ProbeError::Parse(m) => ObserveError::Unreadable(m),
    })?;
    let structure = structure.map_err(|e| match e {
        IdentifyError::Run(f) => ObserveError::Run(f),
        IdentifyError::Unreadable(m) => ObserveError::Unreadable(m),
    })?;
    let times = ffprobe::video_packet_times(&tools.ffprobe, path, cancel);
    Ok(Observed {
        audio_ends: audio_ends(tools, analysis, &probe, path, cancel),
        frames: times.as_ref().map(Vec::len),
        held: times.as_deref().and_then(ffprobe::longest_held),
        hdr10_plus: hdr10_plus(tools, analysis, path, cancel),
        probe,
        structure,
        size,
        video_end,
    })
}

/// Where each audio track of `output` (probed as `probe`) ends, read near
/// where its source track ends.
fn audio_ends(tools: &Toolbox, analysis: &Analysis, probe: &Probe, output: &Path, cancel: &Cancel) -> Vec<Option<f64>> {
    let start = probe.format.start_time.unwrap_or(0.0);
    let near = |plan: &crate::analysis::audio::AudioPlan| {
        analysis.extent.audio_ends.get(plan.index).copied().flatten().unwrap_or(analysis.duration) - 10.0
    };
    let ends = analysis.audio.iter().enumerate();
    ends.map(|(n, plan)| ffprobe::audio_end(&tools.ffprobe, output, n, (near(plan), start), cancel)).collect()
}

/// Whether `output`'s first frame carries HDR10+, read when the source's
/// does: one frame decoded by drapto's ffmpeg (an older ffprobe's AV1
/// decoder may not export the metadata).
fn hdr10_plus(tools: &Toolbox, analysis: &Analysis, output: &Path, cancel: &Cancel) -> Option<bool> {
    analysis.hdr.hdr10_plus?;
    let mut a = FfmpegArgs::new();
    // showinfo speaks at the info level.
    a.extend(["-loglevel", "info"]).input(output);
    a.extend(["-map", "0:v:0", "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"]);
    let mut found = false;
    let seen = |line: Line| {
        if let Line::Err(l) = line {
            found |= l.contains("SMPTE2094-40");
        }
    };
    run_lines(&mut a.command(&tools.ffmpeg), "read HDR10+", cancel, seen).ok()?;
    Some(found)
}
