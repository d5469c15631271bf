//! The external programs drapto drives: where they are, what they can do,
//! and typed wrappers around their invocations.
//!
//! [`Tools::discover`] finds ffmpeg, ffprobe, mediainfo and MKVToolNix (an
//! explicit path from a flag, the environment or the config file, handed in
//! as [`ToolPaths`] with the setting that said it; else PATH) and checks once
//! what ffmpeg can do. [`Tools::require_encode`] turns a missing must-have into a
//! [`ToolError`] that says how to get it.

pub mod ffmpeg;
pub mod ffprobe;
pub mod mediainfo;
pub mod mkvtoolnix;
pub mod process;

use crate::cancel::Cancel;
use crate::error::ToolError;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to get a full-featured ffmpeg here; shared by several messages.
pub fn ffmpeg_fix() -> String {
    use crate::platform::{Package, install};
    if cfg!(target_os = "macos") {
        "brew install ffmpeg-full (Homebrew's plain ffmpeg lacks libvmaf and the GPL filters such as cropdetect) \
         and point DRAPTO_FFMPEG or --ffmpeg at it: DRAPTO_FFMPEG=\"$(brew --prefix)/opt/ffmpeg-full/bin/ffmpeg\""
            .to_string()
    } else {
        format!(
            "use the static build in the imageio-ffmpeg wheel, with libvmaf and a current SVT-AV1 \
             (scripts/setup.sh fetches it; by hand: python3 -m pip download --no-deps imageio-ffmpeg==VERSION \
             (the one scripts/setup.sh pins), python3 -m zipfile -e imageio_ffmpeg-*.whl wheel, \
             chmod +x wheel/imageio_ffmpeg/binaries/ffmpeg-*) and point DRAPTO_FFMPEG or --ffmpeg at it; \
             Debian's own ffmpeg ({}) has no libvmaf, so no chunked path",
            install(Package::Ffmpeg)
        )
    }
}

pub use process::path_arg;

/// A program found on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub path: PathBuf,
    /// "flag --ffmpeg", "environment variable DRAPTO_FFMPEG", "PATH"…
    pub found_via: String,
    /// First line of its version output.
    pub version: String,
}

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

/// The programs an encode runs, found and checked once at its start; every
/// later step takes them from here.
#[derive(Debug, Clone)]
pub struct Toolbox {
    pub ffmpeg: PathBuf,
    pub caps: FfmpegCaps,
    pub ffprobe: PathBuf,
    /// A second opinion on Dolby Vision, when installed.
    pub mediainfo: Option<PathBuf>,
    pub mkvtoolnix: mkvtoolnix::Mkvtoolnix,
}

/// The discovered tool set. A tool that is missing holds the error to show.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: Result<(Located, FfmpegCaps), ToolError>,
    pub ffprobe: Result<Located, ToolError>,
    pub mediainfo: Result<Located, ToolError>,
    /// Muxes every output, and appends the chunked path's segments.
    pub mkvmerge: Result<Located, ToolError>,
    /// Reads chapters and tags as XML (the mux plan, validation).
    pub mkvextract: Result<Located, ToolError>,
    /// Sets what mkvmerge cannot (a track name with edge spaces).
    pub mkvpropedit: Result<Located, ToolError>,
}

/// How to get MKVToolNix here.
pub fn mkvtoolnix_fix() -> String {
    format!(
        "{} (drapto muxes every output with mkvmerge, reads chapters and tags with mkvextract and sets track names with mkvpropedit)",
        crate::platform::install(crate::platform::Package::Mkvtoolnix)
    )
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

/// The filters every encode's analysis and video may need, and what each
/// does: without one a film would come out with its black bars, or combed.
const REQUIRED_FILTERS: &[(&str, &str)] = &[
    ("cropdetect", "black-bar detection"),
    ("crop", "cropping"),
    ("idet", "interlace detection"),
    ("bwdif", "deinterlacing"),
    ("fieldmatch", "inverse telecine"),
    ("decimate", "inverse telecine"),
    ("setparams", "colour labels"),
    ("scale", "pixel formats"),
    ("aformat", "audio channel layouts"),
    ("signalstats", "an HDR film's black level"),
];

/// Where the settings say a tool is, and which setting says so.
#[derive(Debug, Clone, Default)]
pub struct ToolSetting {
    /// The path or name set, if any (else the tool is looked for on PATH).
    pub path: Option<PathBuf>,
    /// Where the setting came from, as a person would name it
    /// ("DRAPTO_FFMPEG", "tools.ffmpeg in /etc/drapto.toml", "--ffmpeg").
    pub origin: String,
}

/// The settings for every tool drapto looks for, built once from the
/// configuration by the command that runs.
#[derive(Debug, Clone, Default)]
pub struct ToolPaths {
    pub ffmpeg: ToolSetting,
    pub ffprobe: ToolSetting,
    pub mediainfo: ToolSetting,
    /// mkvmerge; mkvextract and mkvpropedit are looked for beside it, then
    /// on PATH.
    pub mkvmerge: ToolSetting,
}

impl Tools {
    /// Finds every tool and probes ffmpeg's capabilities, the questions
    /// side by side (each is a program start; one by one they took a second
    /// of every run).
    pub fn discover(paths: &ToolPaths, cancel: &Cancel) -> Tools {
        std::thread::scope(|s| {
            let ffmpeg = s.spawn(|| {
                let loc = locate("ffmpeg", &paths.ffmpeg, &ffmpeg_fix(), cancel)?;
                let caps = ffmpeg_caps(&loc.path, cancel).map_err(|why| ToolError {
                    tool: format!("ffmpeg ({})", loc.path.display()),
                    problem: why,
                    fix: "check that this ffmpeg runs (a share that hangs, a program that waits); or use another"
                        .into(),
                })?;
                Ok((loc, caps))
            });
            let others = Self::discover_others(paths, cancel);
            let (ffprobe, mediainfo, [mkvmerge, mkvextract, mkvpropedit]) = others;
            Tools {
                ffmpeg: ffmpeg.join().expect("ffmpeg discovery"),
                ffprobe,
                mediainfo,
                mkvmerge,
                mkvextract,
                mkvpropedit,
            }
        })
    }

    /// ffprobe, mediainfo, and MKVToolNix's mkvmerge, mkvextract and
    /// mkvpropedit.
    #[allow(clippy::type_complexity)]
    fn discover_others(
        paths: &ToolPaths,
        cancel: &Cancel,
    ) -> (Result<Located, ToolError>, Result<Located, ToolError>, [Result<Located, ToolError>; 3]) {
        // Each is a program start (its version): side by side.
        std::thread::scope(|s| {
            let ffprobe = s.spawn(|| {
                locate(
                    "ffprobe",
                    &paths.ffprobe,
                    &format!(
                        "{}, which includes ffprobe, or set DRAPTO_FFPROBE",
                        crate::platform::install(crate::platform::Package::Ffmpeg)
                    ),
                    cancel,
                )
            });
            let mediainfo = s.spawn(|| {
                locate(
                    "mediainfo",
                    &paths.mediainfo,
                    &format!(
                        "{} (without it Dolby Vision is detected from ffprobe side data only)",
                        crate::platform::install(crate::platform::Package::Mediainfo)
                    ),
                    cancel,
                )
            });
            let mkvmerge =
                locate("mkvmerge", &paths.mkvmerge, &mkvtoolnix_fix(), cancel).and_then(|m| new_enough(m, cancel));
            let mkvextract = companion("mkvextract", &mkvmerge, &paths.mkvmerge, cancel);
            let mkvpropedit = companion("mkvpropedit", &mkvmerge, &paths.mkvmerge, cancel);
            (
                ffprobe.join().expect("ffprobe"),
                mediainfo.join().expect("mediainfo"),
                [mkvmerge, mkvextract, mkvpropedit],
            )
        })
    }

    /// The tools an encode cannot do without: ffmpeg with libsvtav1 and
    /// libopus, and ffprobe. Returns their paths.
    pub fn require_encode(&self) -> Result<(&Path, &FfmpegCaps, &Path), ToolError> {
        let (ffmpeg, caps) = self.ffmpeg.as_ref().map_err(Clone::clone)?;
        if caps.svtav1.is_none() {
            let problem = match &caps.svtav1_error {
                Some(e) => format!("lists libsvtav1 (SVT-AV1) but cannot encode with it: {e}"),
                None => "has no libsvtav1 (SVT-AV1) encoder".into(),
            };
            return Err(ToolError { tool: format!("ffmpeg ({})", ffmpeg.path.display()), problem, fix: ffmpeg_fix() });
        }
        if !caps.libopus {
            return Err(ToolError {
                tool: format!("ffmpeg ({})", ffmpeg.path.display()),
                problem: "has no libopus encoder".into(),
                fix: ffmpeg_fix(),
            });
        }
        let missing: Vec<String> = (REQUIRED_FILTERS.iter())
            .filter(|(f, _)| !caps.filters.contains(*f))
            .map(|(f, what)| format!("{f} ({what})"))
            .collect();
        if !missing.is_empty() {
            return Err(ToolError {
                tool: format!("ffmpeg ({})", ffmpeg.path.display()),
                problem: format!("has no {} filter", missing.join(", ")),
                fix: ffmpeg_fix(),
            });
        }
        let ffprobe = self.ffprobe.as_ref().map_err(Clone::clone)?;
        Ok((&ffmpeg.path, caps, &ffprobe.path))
    }

    /// Everything an encode needs, or what is missing.
    pub fn toolbox(&self) -> Result<Toolbox, ToolError> {
        let (ffmpeg, caps, ffprobe) = self.require_encode()?;
        Ok(Toolbox {
            ffmpeg: ffmpeg.to_path_buf(),
            caps: caps.clone(),
            ffprobe: ffprobe.to_path_buf(),
            mediainfo: self.mediainfo_path().map(Path::to_path_buf),
            mkvtoolnix: self.require_mkvtoolnix()?,
        })
    }

    /// Whether everything an encode needs is here.
    pub fn ready(&self) -> Result<(), ToolError> {
        self.require_encode()?;
        self.require_mkvtoolnix().map(|_| ())
    }

    /// ffprobe alone (for `analyze`).
    pub fn require_ffprobe(&self) -> Result<&Path, ToolError> {
        self.ffprobe.as_ref().map(|l| l.path.as_path()).map_err(Clone::clone)
    }

    /// mkvmerge, when present.
    pub fn mkvmerge_path(&self) -> Option<&Path> {
        self.mkvmerge.as_ref().ok().map(|l| l.path.as_path())
    }

    /// MKVToolNix (mkvmerge, mkvextract and mkvpropedit), which every mux
    /// needs.
    pub fn require_mkvtoolnix(&self) -> Result<mkvtoolnix::Mkvtoolnix, ToolError> {
        let path = |t: &Result<Located, ToolError>| t.as_ref().map(|l| l.path.clone()).map_err(Clone::clone);
        Ok(mkvtoolnix::Mkvtoolnix {
            mkvmerge: path(&self.mkvmerge)?,
            mkvextract: path(&self.mkvextract)?,
            mkvpropedit: path(&self.mkvpropedit)?,
        })
    }

    /// mediainfo, when present.
    pub fn mediainfo_path(&self) -> Option<&Path> {
        self.mediainfo.as_ref().ok().map(|l| l.path.as_path())
    }
}

/// `mkvmerge` when it knows the track flags drapto carries (its
/// `--hearing-impaired-flag` and kin, MKVToolNix 57 and later): an older
/// one failed every mux, after the whole encode.
fn new_enough(mkvmerge: Located, cancel: &Cancel) -> Result<Located, ToolError> {
    let asked =
        process::answer_within(Command::new(&mkvmerge.path).arg("--help"), "mkvmerge --help", ANSWER_WITHIN, cancel);
    let help = asked.map_err(|why| ToolError {
        tool: "mkvmerge".into(),
        problem: format!("{} {why} (--help)", mkvmerge.path.display()),
        fix: mkvtoolnix_fix(),
    })?;
    if help.1.contains("--hearing-impaired-flag") {
        return Ok(mkvmerge);
    }
    Err(ToolError {
        tool: "mkvmerge".into(),
        problem: format!(
            "{} ({}) is too old: it lacks --hearing-impaired-flag and the other track flags drapto carries",
            mkvmerge.path.display(),
            mkvmerge.version
        ),
        fix: format!("install MKVToolNix 57 or later: {}", mkvtoolnix_fix()),
    })
}

/// An MKVToolNix program that comes with mkvmerge: beside it first, then
/// on PATH.
fn companion(
    name: &str,
    mkvmerge: &Result<Located, ToolError>,
    mkvmerge_set: &ToolSetting,
    cancel: &Cancel,
) -> Result<Located, ToolError> {
    let beside = mkvmerge.as_ref().ok().and_then(|m| m.path.parent()).map(|d| d.join(name));
    match beside.filter(|p| p.is_file()) {
        Some(p) => {
            let set = ToolSetting { path: Some(p), origin: mkvmerge_set.origin.clone() };
            locate(name, &set, &mkvtoolnix_fix(), cancel).map(|l| Located { found_via: "beside mkvmerge".into(), ..l })
        }
        None => locate(name, &ToolSetting::default(), &mkvtoolnix_fix(), cancel),
    }
}

fn locate(name: &str, set: &ToolSetting, fix: &str, cancel: &Cancel) -> Result<Located, ToolError> {
    let (path, found_via) = match set.path.as_deref() {
        Some(p) => {
            let origin = set.origin.clone();
            let resolved = if p.components().count() == 1 { which::which(p).ok() } else { Some(p.to_path_buf()) };
            match resolved.filter(|r| r.is_file()) {
                Some(r) => (r, origin),
                None => {
                    // The setting is wrong, not the system: say so first.
                    let on_path = which::which(name).ok().map(|w| format!(" ({name} is on PATH at {})", w.display()));
                    let fix = match on_path {
                        Some(there) => format!("correct or unset {origin}{there}"),
                        None => format!("correct {origin}, or {fix}"),
                    };
                    return Err(ToolError {
                        tool: name.into(),
                        problem: format!("{} (set by {origin}) does not exist or is not a file", p.display()),
                        fix,
                    });
                }
            }
        }
        None => match which::which(name) {
            Ok(p) => (p, "PATH".to_string()),
            Err(_) => {
                return Err(ToolError { tool: name.into(), problem: "not found on PATH".into(), fix: fix.into() });
            }
        },
    };
    let flag = match name {
        "mediainfo" => "--Version",
        "mkvmerge" | "mkvextract" | "mkvpropedit" | "mkvinfo" => "--version",
        _ => "-version",
    };
    // A tool that cannot run (a library gone after an upgrade) or does not
    // answer (a hung share) is no tool: said now, not as each rip failing.
    let cannot = |why: String| {
        // A file that is there but may not be run needs its mode, not another tool.
        let fix = match why.contains("Permission denied") {
            true => format!("make it executable (chmod +x {}), or {fix}", path.display()),
            false => fix.to_string(),
        };
        ToolError { tool: name.into(), problem: format!("{} {why}", path.display()), fix }
    };
    let asked = process::answer_within(Command::new(&path).arg(flag), "version", ANSWER_WITHIN, cancel);
    let version = match asked.map_err(&cannot)? {
        (true, text) => version_line(&text),
        // Older MediaInfo command lines exit 255 after printing it.
        (false, text) if name == "mediainfo" && text.contains("MediaInfoLib") => version_line(&text),
        (false, text) => return Err(cannot(format!("fails when asked its version ({flag}): {}", last_line(&text)))),
    };
    Ok(Located { path, found_via, version })
}

/// How long a tool may take to answer a question (its version, what it
/// has; one tiny encode).
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The last line of `text` that says something (a tool's error).
fn last_line(text: &str) -> &str {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("no message")
}

/// The line of a tool's version output that gives its version: the first
/// with a digit ("MediaInfo Command line," comes before "MediaInfoLib -
/// v23.04").
fn version_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.clone().next();
    lines.find(|l| l.chars().any(|c| c.is_ascii_digit())).or(first).unwrap_or("unknown version").to_string()
}

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
fn ffmpeg_caps(ffmpeg: &Path, cancel: &Cancel) -> Result<FfmpegCaps, String> {
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
    fn a_tools_version_is_the_first_line_with_a_number() {
        assert_eq!(version_line("MediaInfo Command line, \nMediaInfoLib - v23.04\n"), "MediaInfoLib - v23.04");
        assert_eq!(
            version_line("\nmkvextract v74.0.0 ('You Oughta Know') 64-bit\n"),
            "mkvextract v74.0.0 ('You Oughta Know') 64-bit"
        );
        assert_eq!(version_line("no number"), "no number");
        assert_eq!(version_line(""), "unknown version");
    }

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

    /// The requirement check names the missing encoder and the fix (an
    /// ffmpeg without libsvtav1 is also tested for real in tests/hostile.rs;
    /// no real build without libopus is at hand, so this one is checked here).
    #[test]
    fn an_encode_needs_svt_av1_libopus_and_ffprobe() {
        let loc = |p: &str| Located { path: p.into(), found_via: "PATH".into(), version: "x".into() };
        let tools = |caps: FfmpegCaps| Tools {
            ffmpeg: Ok((loc("/opt/ff/ffmpeg"), caps)),
            ffprobe: Ok(loc("/usr/bin/ffprobe")),
            mediainfo: Ok(loc("/usr/bin/mediainfo")),
            mkvmerge: Ok(loc("/usr/bin/mkvmerge")),
            mkvextract: Ok(loc("/usr/bin/mkvextract")),
            mkvpropedit: Ok(loc("/usr/bin/mkvpropedit")),
        };
        let filters = REQUIRED_FILTERS.iter().map(|(f, _)| f.to_string()).collect();
        let full = FfmpegCaps { svtav1: Some("v4.2.0".into()), libopus: true, filters, ..Default::default() };
        assert!(tools(full.clone()).require_encode().is_ok());
        // Homebrew's own ffmpeg is built without the GPL filters.
        let mut lgpl = full.clone();
        lgpl.filters.retain(|f| f != "cropdetect");
        let e = tools(lgpl).require_encode().unwrap_err();
        assert!(e.problem.contains("cropdetect (black-bar detection)"), "{}", e.problem);
        let e = tools(FfmpegCaps { libopus: false, ..full.clone() }).require_encode().unwrap_err();
        assert!(e.tool.contains("/opt/ff/ffmpeg") && e.problem.contains("libopus") && e.fix.contains("imageio-ffmpeg"));
        let e = tools(FfmpegCaps { svtav1: None, ..full.clone() }).require_encode().unwrap_err();
        assert!(e.problem.contains("libsvtav1"));
        let mut no_probe = tools(full);
        no_probe.ffprobe = Err(ToolError { tool: "ffprobe".into(), problem: "not found".into(), fix: "apt".into() });
        assert_eq!(no_probe.require_encode().unwrap_err().tool, "ffprobe");
    }
}
