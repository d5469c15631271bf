//! Command-line interface: the commands and their flags. Setting flags are
//! turned into the top layer of the configuration (see [`crate::config`]).

use crate::config::load::FlagValue;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// drapto turns MKV rips into small, high-quality AV1 + Opus MKVs.
#[derive(Debug, Parser)]
#[command(name = "drapto", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: $XDG_CONFIG_HOME/drapto/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print newline-delimited JSON events on stdout instead of the human view.
    #[arg(long, global = true)]
    pub json: bool,

    /// Only errors and the final summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail (repeat for debug output on stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode an MKV file, or every rip in a folder or library tree.
    Encode(EncodeArgs),
    /// Encode a library's rips, then each new or replaced rip once it is
    /// complete, until stopped.
    Watch(WatchArgs),
    /// Show the queue, the file being encoded with its progress, and the
    /// last results (of every drapto running or run here).
    Status(StatusArgs),
    /// Show what drapto sees in a file or folder and what it would do.
    Analyze(AnalyzeArgs),
    /// Check the external tools and what they can do.
    Doctor(DoctorArgs),
    /// Print the effective configuration and where each value comes from.
    Config(SettingFlags),
    /// Remove work folders left by failed or interrupted runs.
    Clean(CleanArgs),
    /// Encode one segment job of a distributed run (started by GNU Parallel
    /// on each host; not for direct use).
    #[command(hide = true)]
    SegmentWorker(WorkerArgs),
    /// Kill drapto's encoders if drapto is killed outright (started by
    /// drapto itself; not for direct use).
    #[command(hide = true)]
    Guard(GuardArgs),
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The drapto to watch.
    #[arg(long)]
    pub parent: u32,
    /// The file that lists its running process groups.
    #[arg(long)]
    pub groups: PathBuf,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub tools: ToolFlags,
    /// Also check every host of this GNU Parallel sshlogin file (ssh reachable,
    /// drapto and ffmpeg present and capable, versions equal to this machine's).
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The job file (relative to the working directory).
    #[arg(value_name = "JOB", required_unless_present = "info")]
    pub job: Option<PathBuf>,
    /// Print this host's drapto and ffmpeg versions and capabilities as JSON.
    #[arg(long)]
    pub info: bool,
    #[command(flatten)]
    pub tools: ToolFlags,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// An MKV file, or a folder (a library tree, walked recursively) whose
    /// rips (input.file_pattern, min_size, max_size) are encoded in path order.
    #[arg(short, long, value_name = "PATH", allow_hyphen_values = true)]
    pub input: Option<PathBuf>,
    /// Folder for the encoded files (created if missing); a library's
    /// outputs keep their paths below the input folder.
    #[arg(short, long, value_name = "DIR", allow_hyphen_values = true)]
    pub output: Option<PathBuf>,
    /// List what would be encoded, and why each other file is skipped;
    /// encode nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub settings: SettingFlags,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The library folder (walked recursively).
    #[arg(short, long, value_name = "DIR", allow_hyphen_values = true)]
    pub input: Option<PathBuf>,
    /// Folder for the encoded files, the library's layout kept.
    #[arg(short, long, value_name = "DIR", allow_hyphen_values = true)]
    pub output: Option<PathBuf>,
    /// Seconds a rip must stay unchanged (and closed) before it is taken
    /// (watch.settle, 120).
    #[arg(long, value_name = "SECONDS")]
    pub settle: Option<u32>,
    #[command(flatten)]
    pub settings: SettingFlags,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Folder for work folders.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

impl WatchArgs {
    pub fn values(&self) -> Vec<FlagValue> {
        let mut v = self.settings.values();
        if let Some(s) = self.settle {
            v.push(FlagValue::new("watch.settle", "--settle", s));
        }
        v
    }
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also remove resumable work of inputs that still exist.
    #[arg(long)]
    pub all: bool,
    /// Folder for work folders.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// An MKV file or a folder of them.
    #[arg(value_name = "PATH", allow_hyphen_values = true)]
    pub input: PathBuf,
    #[command(flatten)]
    pub settings: SettingFlags,
}

/// Paths of the external programs.
#[derive(Debug, Args, Default)]
pub struct ToolFlags {
    /// ffmpeg to use (else DRAPTO_FFMPEG, config, PATH).
    #[arg(long, value_name = "PATH")]
    pub ffmpeg: Option<PathBuf>,
    /// ffprobe to use (else DRAPTO_FFPROBE, config, PATH).
    #[arg(long, value_name = "PATH")]
    pub ffprobe: Option<PathBuf>,
    /// mediainfo to use (else DRAPTO_MEDIAINFO, config, PATH).
    #[arg(long, value_name = "PATH")]
    pub mediainfo: Option<PathBuf>,
    /// mkvmerge to use (else DRAPTO_MKVMERGE, config, PATH); mkvextract is
    /// looked for beside it.
    #[arg(long, value_name = "PATH")]
    pub mkvmerge: Option<PathBuf>,
}

/// Flags that override settings.
#[derive(Debug, Args, Default)]
pub struct SettingFlags {
    /// SVT-AV1 preset, 0 (slowest) to 13 (fastest).
    #[arg(long)]
    pub preset: Option<i64>,
    /// CRF for every resolution class (the standard path's: the chunked path aims at the VMAF target).
    #[arg(long)]
    pub crf: Option<i64>,
    /// CRF for SD (≤ 1280x720).
    #[arg(long)]
    pub crf_sd: Option<i64>,
    /// CRF for HD (≤ 1920x1080).
    #[arg(long)]
    pub crf_hd: Option<i64>,
    /// CRF for UHD (> 1920x1080).
    #[arg(long)]
    pub crf_uhd: Option<i64>,
    /// VMAF target of the chunked path (70–99).
    #[arg(long)]
    pub vmaf_target: Option<f64>,
    /// Turn on film-grain synthesis.
    #[arg(long)]
    pub film_grain: bool,
    /// Segment length of the chunked path, seconds.
    #[arg(long)]
    pub chunk_size: Option<i64>,
    /// Parallel segment encodes: a number, or `auto` (from cores and free
    /// memory), as in the configuration file.
    #[arg(long, value_name = "N|auto")]
    pub parallel_jobs: Option<String>,
    /// Folder for work folders.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Folder for run logs.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Do not detect or remove black bars.
    #[arg(long)]
    pub no_crop: bool,
    /// Encode what a truncated rip holds instead of failing it.
    #[arg(long)]
    pub allow_truncated: bool,
    /// Largest output as a share of the rip's size (0: no limit); an encode
    /// that would exceed it stops early (processing.max_output_ratio, 1).
    #[arg(long, value_name = "RATIO")]
    pub max_output_ratio: Option<f64>,
    /// ntfy topic URL to notify when a file is finished or fails
    /// (notify.ntfy).
    #[arg(long, value_name = "URL")]
    pub notify_ntfy: Option<String>,
    /// URL that receives a POST of each notification's event as JSON
    /// (notify.webhook).
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Option<String>,
    /// Command run with each notification's event as JSON on its stdin
    /// (notify.command).
    #[arg(long, value_name = "COMMAND")]
    pub notify_command: Option<String>,
    /// Glob a rip's name matches in a folder (input.file_pattern, "*.mkv").
    #[arg(long, value_name = "GLOB")]
    pub file_pattern: Option<String>,
    /// Smaller files are not rips: bytes or "200MB" (input.min_size).
    #[arg(long, value_name = "SIZE")]
    pub min_size: Option<String>,
    /// Larger files are skipped: bytes or "40GiB" (input.max_size).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Copy each rip's sidecar files (subtitles, .nfo, posters) beside its
    /// output (input.copy_sidecars).
    #[arg(long)]
    pub copy_sidecars: bool,
    /// Interlaced and telecined sources: auto (decided per file), ivtc
    /// (inverse telecine), deinterlace (bwdif) or none.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "ivtc", "deinterlace", "none"])]
    pub interlace: Option<String>,
    /// A rip whose output would lose something drapto cannot carry (a
    /// second video track): fail it before encoding (fail, the default) or
    /// warn and encode without it (warn).
    #[arg(long, value_name = "WHAT", value_parser = ["fail", "warn"])]
    pub on_loss: Option<String>,
    /// Use the chunked (VMAF-targeted) path.
    #[arg(long, conflicts_with = "no_chunked")]
    pub chunked: bool,
    /// Use the standard (fixed CRF) path.
    #[arg(long)]
    pub no_chunked: bool,
    /// Never use hardware-accelerated decoding.
    #[arg(long)]
    pub no_hwaccel: bool,
    /// Low CPU priority (nice 10) and idle I/O priority for drapto and every
    /// program it runs, for a server that also serves.
    #[arg(long)]
    pub responsive: bool,
    /// Spread segment encodes over the hosts of this GNU Parallel sshlogin
    /// file (`:` is this machine); implies the chunked path.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// The sources are at the same path on every host: send jobs, not extracts.
    #[arg(long)]
    pub shared_source: bool,
    #[command(flatten)]
    pub tools: ToolFlags,
}

impl SettingFlags {
    /// The flags that were given, as configuration values.
    pub fn values(&self) -> Vec<FlagValue> {
        let mut v = Vec::new();
        let mut int = |key, flag, x: Option<i64>| {
            if let Some(x) = x {
                v.push(FlagValue::new(key, flag, x));
            }
        };
        int("encoding.preset", "--preset", self.preset);
        int("encoding.crf.sd", "--crf", self.crf);
        int("encoding.crf.hd", "--crf", self.crf);
        int("encoding.crf.uhd", "--crf", self.crf);
        int("encoding.crf.sd", "--crf-sd", self.crf_sd);
        int("encoding.crf.hd", "--crf-hd", self.crf_hd);
        int("encoding.crf.uhd", "--crf-uhd", self.crf_uhd);
        int("processing.chunk_size", "--chunk-size", self.chunk_size);
        if let Some(jobs) = &self.parallel_jobs {
            // A number as a number; anything else as text, which the
            // configuration's own check accepts (`auto`) or explains.
            let value: figment::value::Value =
                jobs.parse::<i64>().map_or_else(|_| jobs.as_str().into(), figment::value::Value::from);
            v.push(FlagValue::new("processing.parallel_jobs", "--parallel-jobs", value));
        }
        if let Some(t) = self.vmaf_target {
            v.push(FlagValue::new("encoding.vmaf_target", "--vmaf-target", t));
        }
        if let Some(r) = self.max_output_ratio {
            v.push(FlagValue::new("processing.max_output_ratio", "--max-output-ratio", r));
        }
        let mut flag = |key, name, on: bool, value: bool| {
            if on {
                v.push(FlagValue::new(key, name, value));
            }
        };
        flag("encoding.film_grain", "--film-grain", self.film_grain, true);
        flag("processing.disable_crop", "--no-crop", self.no_crop, true);
        flag("processing.allow_truncated", "--allow-truncated", self.allow_truncated, true);
        flag("input.copy_sidecars", "--copy-sidecars", self.copy_sidecars, true);
        flag("processing.enable_chunked_encoding", "--chunked", self.chunked, true);
        flag("processing.enable_chunked_encoding", "--no-chunked", self.no_chunked, false);
        flag("processing.hardware_decode", "--no-hwaccel", self.no_hwaccel, false);
        flag("processing.responsive", "--responsive", self.responsive, true);
        flag("distributed.shared_source", "--shared-source", self.shared_source, true);
        if let Some(m) = &self.interlace {
            v.push(FlagValue::new("processing.interlace", "--interlace", m.clone()));
        }
        if let Some(m) = &self.on_loss {
            v.push(FlagValue::new("processing.on_loss", "--on-loss", m.clone()));
        }
        for (key, name, text) in [
            ("input.file_pattern", "--file-pattern", &self.file_pattern),
            ("input.min_size", "--min-size", &self.min_size),
            ("input.max_size", "--max-size", &self.max_size),
            ("notify.ntfy", "--notify-ntfy", &self.notify_ntfy),
            ("notify.webhook", "--notify-webhook", &self.notify_webhook),
            ("notify.command", "--notify-command", &self.notify_command),
        ] {
            if let Some(t) = text {
                v.push(FlagValue::new(key, name, t.clone()));
            }
        }
        let mut path = |key, name, p: &Option<PathBuf>| {
            if let Some(p) = p {
                v.push(FlagValue::new(key, name, p.to_string_lossy().into_owned()));
            }
        };
        path("processing.temp_dir", "--temp-dir", &self.temp_dir);
        path("paths.log_dir", "--log-dir", &self.log_dir);
        path("distributed.hosts", "--hosts", &self.hosts);
        self.tools.push_values(&mut v);
        v
    }
}

impl ToolFlags {
    fn push_values(&self, v: &mut Vec<FlagValue>) {
        for (key, name, p) in [
            ("tools.ffmpeg", "--ffmpeg", &self.ffmpeg),
            ("tools.ffprobe", "--ffprobe", &self.ffprobe),
            ("tools.mediainfo", "--mediainfo", &self.mediainfo),
            ("tools.mkvmerge", "--mkvmerge", &self.mkvmerge),
        ] {
            if let Some(p) = p {
                v.push(FlagValue::new(key, name, p.to_string_lossy().into_owned()));
            }
        }
    }

    pub fn values(&self) -> Vec<FlagValue> {
        let mut v = Vec::new();
        self.push_values(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn parallel_jobs_takes_a_number_or_auto_as_the_file_does() {
        let values =
            |arg: &str| match Cli::try_parse_from(["drapto", "config", "--parallel-jobs", arg]).unwrap().command {
                Command::Config(c) => c.values().into_iter().map(|f| f.value).collect::<Vec<_>>(),
                _ => unreachable!(),
            };
        assert_eq!(values("auto"), [figment::value::Value::from("auto")]);
        assert_eq!(values("3"), [figment::value::Value::from(3i64)]);
    }
}
