//! What an ffmpeg can do, asked once at start: its encoders (SVT-AV1 and
//! its version, Opus), its filters (libvmaf as drapto calls it, and the
//! others analysis and encoding use) and its hardware decoders.

use super::process;
use super::{ANSWER_WITHIN, last_line};
use crate::cancel::Cancel;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// What this ffmpeg can do.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FfmpegCaps {
    /// SVT-AV1 library version ("v4.2.0"), when libsvtav1 is there.
    pub svtav1: Option<String>,
    pub libopus: bool,
    pub libvmaf: bool,
    /// libsvtav1 has the `dolbyvision` option (can carry Dolby Vision RPUs).
    pub svtav1_dolbyvision: bool,
    /// Hardware decoders ffmpeg was built with ("cuda", "vaapi"…).
    pub hwaccels: Vec<String>,
    /// Filters drapto uses that are present.
    pub filters: BTreeSet<String>,
    /// Why libsvtav1, listed, cannot encode here (its error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svtav1_error: Option<String>,
    /// Why libvmaf, listed, cannot score as drapto asks (an older libvmaf).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libvmaf_error: Option<String>,
}

impl FfmpegCaps {
    /// SVT-AV1's major version, if known.
    pub fn svtav1_major(&self) -> Option<u32> {
        self.svtav1.as_ref()?.trim_start_matches('v').split('.').next()?.parse().ok()
    }
}

/// Filters drapto may use.
const FILTERS: &[&str] = &[
    "libvmaf",
    "cropdetect",
    "idet",
    "bwdif",
    "fieldmatch",
    "decimate",
    "crop",
    "zscale",
    "scale",
    "aformat",
    "setparams",
    "signalstats",
    "scdet",
];

/// One frame scored by libvmaf with the options drapto measures with.
const LIBVMAF_PROBE: [&str; 13] = [
    "-hide_banner",
    "-nostdin",
    "-f",
    "lavfi",
    "-i",
    "color=s=64x64:d=0.04",
    "-lavfi",
    "[0:v]split[a][b];[a][b]libvmaf=model=version=vmaf_v0.6.1:n_subsample=1:n_threads=1:log_fmt=csv:log_path=/dev/null",
    "-frames:v",
    "1",
    "-f",
    "null",
    "-",
];

/// The first line of `text` that says what went wrong (ffmpeg's first
/// error is the cause; its last is "Error initializing complex filters").
fn first_error(text: &str) -> &str {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines().find(|l| l.contains("not found") || l.contains("Error") || l.contains("error")).unwrap_or(last_line(text))
}

/// What ffmpeg answers to `args` (stdout and stderr), and whether it exited
/// 0; `Err` when it does not answer in time.
fn capture(ffmpeg: &Path, args: &[&str], cancel: &Cancel) -> Result<(bool, String), String> {
    process::answer_within(Command::new(ffmpeg).args(args), "ask ffmpeg", ANSWER_WITHIN, cancel)
        .map_err(|why| format!("{why} (ffmpeg {})", args.join(" ")))
}

/// Asks ffmpeg what it has. Each question is a quick listing except the SVT-AV1
/// version, which only the library itself prints (one tiny encode): an
/// ffmpeg that lists libsvtav1 but cannot encode with it has none. `Err`:
/// the question it did not answer.
pub(super) fn ffmpeg_caps(ffmpeg: &Path, cancel: &Cancel) -> Result<FfmpegCaps, String> {
    // The SVT-AV1 questions start at once (they are answered by an ffmpeg
    // that has it); the listings run beside them.
    std::thread::scope(|s| {
        let svt = s.spawn(|| {
            let (_, help) = capture(ffmpeg, &["-hide_banner", "-h", "encoder=libsvtav1"], cancel)?;
            let probe = capture(
                ffmpeg,
                &[
                    "-hide_banner",
                    "-nostdin",
                    "-loglevel",
                    "info",
                    "-f",
                    "lavfi",
                    "-i",
                    "color=s=64x64:d=0.04",
                    "-frames:v",
                    "1",
                    "-c:v",
                    "libsvtav1",
                    "-f",
                    "null",
                    "-",
                ],
                cancel,
            )?;
            Ok::<_, String>((help.contains("-dolbyvision"), probe))
        });
        let mut listed = ffmpeg_listings(ffmpeg, cancel);
        // libvmaf as drapto calls it (libvmaf 2's options: an ffmpeg 4's
        // libvmaf 1 has the filter, and refuses them on every measurement).
        if let Some(caps) = listed.as_mut().ok().filter(|c| c.libvmaf) {
            let (scores, said) = capture(ffmpeg, &LIBVMAF_PROBE, cancel)?;
            if !scores {
                caps.libvmaf = false;
                caps.libvmaf_error = Some(first_error(&said).to_string());
            }
        }
        let (dolbyvision, (encodes, probe)) = svt.join().expect("SVT-AV1 probe")?;
        let mut caps = listed?;
        if caps.svtav1.is_some() && encodes {
            caps.svtav1_dolbyvision = dolbyvision;
            caps.svtav1 = Some(svtav1_version(&probe).unwrap_or_else(|| "unknown".into()));
        } else if caps.svtav1.is_some() {
            caps.svtav1_error = Some(last_line(&probe).to_string());
            caps.svtav1 = None;
        }
        Ok(caps)
    })
}

/// What ffmpeg lists: encoders, filters, hardware decoders (`svtav1` is
/// `Some("unknown")` when libsvtav1 is listed).
fn ffmpeg_listings(ffmpeg: &Path, cancel: &Cancel) -> Result<FfmpegCaps, String> {
    // Three program starts, side by side.
    let (encoders, filters_text, hwaccels_text) = std::thread::scope(|s| {
        let encoders = s.spawn(|| capture(ffmpeg, &["-hide_banner", "-encoders"], cancel));
        let filters = s.spawn(|| capture(ffmpeg, &["-hide_banner", "-filters"], cancel));
        let hwaccels = capture(ffmpeg, &["-hide_banner", "-hwaccels"], cancel);
        (encoders.join().expect("encoders"), filters.join().expect("filters"), hwaccels)
    });
    let ((_, encoders), (_, filters_text), (_, hwaccels_text)) = (encoders?, filters_text?, hwaccels_text?);
    let has_encoder = |name: &str| encoders.lines().any(|l| l.split_whitespace().nth(1) == Some(name));
    let filters: BTreeSet<String> = filters_text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|f| FILTERS.contains(f))
        .map(str::to_string)
        .collect();
    let hwaccels: Vec<String> = hwaccels_text
        .lines()
        .skip_while(|l| !l.starts_with("Hardware acceleration methods"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut caps = FfmpegCaps {
        svtav1: None,
        libopus: has_encoder("libopus"),
        libvmaf: filters.contains("libvmaf"),
        svtav1_dolbyvision: false,
        hwaccels,
        filters,
        svtav1_error: None,
        libvmaf_error: None,
    };
    if has_encoder("libsvtav1") {
        caps.svtav1 = Some("unknown".into());
    }
    Ok(caps)
}

/// `Svt[info]: SVT [version]:\tSVT-AV1 Encoder Lib v4.2.0-151-g5ed9ffbcb` → `v4.2.0`.
fn svtav1_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("SVT [version]"))?;
    let v = line.split_whitespace().find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))?;
    Some(v.split('-').next().unwrap_or(v).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svt_version_is_read_from_the_banner() {
        let t = "Svt[info]: -------------------------------------------\n\
                 Svt[info]: SVT [version]:\tSVT-AV1 Encoder Lib v4.2.0-151-g5ed9ffbcb\n";
        assert_eq!(svtav1_version(t).as_deref(), Some("v4.2.0"));
        assert_eq!(svtav1_version("Svt[info]: SVT [version]:\tSVT-AV1 Encoder Lib v1.4.1").as_deref(), Some("v1.4.1"));
        assert_eq!(svtav1_version("nothing"), None);
        let caps = FfmpegCaps { svtav1: Some("v4.2.0".into()), ..Default::default() };
        assert_eq!(caps.svtav1_major(), Some(4));
    }
}
