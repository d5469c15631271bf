//! The external programs drapto drives: where they are, what they can do,
//! and typed wrappers around their invocations.
//!
//! [`Tools::discover`] finds ffmpeg, ffprobe, mediainfo and MKVToolNix (an
//! explicit path from a flag, the environment or the config file, handed in
//! as [`ToolPaths`] with the setting that said it; else PATH) and checks once
//! what ffmpeg can do. [`Tools::require_encode`] turns a missing must-have into a
//! [`ToolError`] that says how to get it.

mod caps;
pub mod ffmpeg;
pub mod ffprobe;
pub mod mediainfo;
pub mod mkvtoolnix;
pub mod process;

pub use caps::FfmpegCaps;
use caps::ffmpeg_caps;

use crate::cancel::Cancel;
use crate::error::ToolError;
use serde::Serialize;
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
pub(super) const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The last line of `text` that says something (a tool's error).
pub(super) fn last_line(text: &str) -> &str {
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
