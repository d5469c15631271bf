//! Settings: what every knob of drapto is, its default, and how the layers
//! (defaults < TOML file < `DRAPTO_*` environment < command-line flags) are
//! merged, migrated and validated.
//!
//! The types here are plain data. [`load`] builds the effective [`Settings`]
//! together with [`Origins`], which says for every key which layer set it, so
//! that error messages and `drapto config` can name the file, variable or flag.

pub mod load;
mod migrate;
mod validate;
mod values;

pub use load::{ConfigSource, DESIGN_NAMES, Loaded, Origins, load};
pub use migrate::CURRENT_VERSION;
pub use validate::validate;
pub use values::{
    Allocation, Auto, ByteSize, ChunkedMode, FieldMode, LossPolicy, NtfyPriority, VmafPool, file_pattern,
};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every setting of drapto. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Layout version of the configuration file (see `migrate`).
    pub version: u32,
    pub input: InputSettings,
    pub encoding: EncodingSettings,
    pub processing: ProcessingSettings,
    pub resources: ResourceSettings,
    pub audio: AudioSettings,
    pub paths: PathSettings,
    pub tools: ToolSettings,
    pub distributed: DistributedSettings,
    pub notify: NotifySettings,
    pub watch: WatchSettings,
}

/// What counts as a rip in a folder or library tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputSettings {
    /// Glob a rip's file name matches (case-insensitive; with a `/`, its
    /// path below the input folder): `*.mkv`.
    pub file_pattern: String,
    /// Smaller files are not rips (extras, samples): bytes or "200MB".
    pub min_size: Option<ByteSize>,
    /// Larger files are skipped.
    pub max_size: Option<ByteSize>,
    /// Copy a rip's sidecar files (subtitles, .nfo, posters: files beside
    /// it whose name starts with its name, and the folder's poster, fanart
    /// and folder pictures) beside its output.
    pub copy_sidecars: bool,
}

impl Default for InputSettings {
    fn default() -> Self {
        InputSettings { file_pattern: "*.mkv".into(), min_size: None, max_size: None, copy_sidecars: false }
    }
}

/// Video encoder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodingSettings {
    /// SVT-AV1 preset, 0 (slowest) to 13 (fastest).
    pub preset: u8,
    /// CRF per resolution class, used by the standard path.
    pub crf: CrfSettings,
    /// VMAF score the chunked path aims at for each segment.
    pub vmaf_target: f64,
    /// Film-grain synthesis (SVT-AV1 `film-grain`), off by default.
    pub film_grain: bool,
    /// Film-grain synthesis strength (1–50) used when `film_grain` is on.
    pub film_grain_level: u8,
    /// libvmaf `n_subsample` for the measurement of finished segments (an
    /// even value is raised by one, see `plan::measurement_subsample`).
    /// 7, not the design's 8: on real 1080p footage, as it is and re-timed
    /// on twos and threes, every 7th frame scored 5 s segments within 0.5
    /// of every frame 86 times in 89 (mean error 0.19), every 9th 79 times
    /// (0.25), for 29% more frames scored (`scripts/bench.sh sampling`).
    pub vmaf_subsample: u32,
    /// libvmaf `n_subsample` for the CRF probes on the samples (raised to
    /// odd the same way; 1 scores every frame). Every 3rd frame scores
    /// within 0.06 of every frame (measured on 1080p probes at VMAF 84–98)
    /// in less than half the time.
    pub vmaf_probe_subsample: u32,
    /// Settle on a CRF that the score curve (its slope learned from the
    /// file's other segments) puts within the tolerance without probing it
    /// first; the segment's measured VMAF checks it, and a miss is probed
    /// after all. Off: every CRF is confirmed by a probe on the samples.
    pub vmaf_predict: bool,
    /// libvmaf pooling: "harmonic_mean", "mean" or "min".
    pub vmaf_pool: VmafPool,
    /// How the chunked path spends bytes: "slope" (every segment's CRF
    /// chosen together, at an equal rate–quality slope, so that the film's
    /// mean VMAF reaches the target with the fewest bytes, each segment
    /// within target − 1 … target + 2) or "target" (each segment searched to
    /// reach the target on its own: the design's three tiers).
    pub chunked_allocation: Allocation,
    /// The SVT-AV1 preset the slope allocation's survey probes at: "auto"
    /// (two faster than the encode at presets up to 6, the encode's own
    /// above: see `plan::survey_preset`) or a preset 0–13.
    pub survey_preset: Auto<u8>,
}

/// CRF per resolution class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrfSettings {
    pub sd: u8,
    pub hd: u8,
    pub uhd: u8,
}

/// How a job is carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingSettings {
    /// Target length of a segment of the chunked path, in seconds.
    pub chunk_size: u32,
    /// Segment encodes run at once (`"auto"`: from cores and free memory).
    pub parallel_jobs: Auto<u32>,
    /// Where work folders live (`"auto"`: a `drapto` folder in the cache dir).
    pub temp_dir: Auto<PathBuf>,
    /// Turn black-bar detection off.
    pub disable_crop: bool,
    /// Encode what a truncated rip holds instead of failing it.
    pub allow_truncated: bool,
    /// A rip whose output would lose something the mux cannot carry (a
    /// second video track): `"fail"` at analysis, before any encode, or
    /// `"warn"` and encode without it.
    pub on_loss: LossPolicy,
    /// The largest output allowed, as a share of the rip's size (0: no
    /// limit): an encode that would exceed it stops as soon as that is
    /// known, and its rip is left as it is.
    pub max_output_ratio: f64,
    /// Seconds the batch waits, once 3 files in a row failed because of the
    /// setup, before it tries one more (see [`crate::breaker`]).
    pub breaker_reset: u32,
    /// Interlaced and telecined sources: `"auto"` (decided per file),
    /// `"ivtc"`, `"deinterlace"` or `"none"`.
    pub interlace: FieldMode,
    /// `"auto"` (chunked when ffmpeg has libvmaf), `true` or `false`.
    pub enable_chunked_encoding: ChunkedMode,
    /// Use hardware-accelerated decoding when ffmpeg and the machine offer it.
    pub hardware_decode: bool,
    /// Which decoder (`"auto"`: detect; or an ffmpeg hwaccel name such as
    /// "vaapi", "cuda", "videotoolbox", used even if it looks unavailable).
    pub hwaccel: Auto<String>,
    /// Run logs and failed files' reports older than this many days are
    /// removed (0: kept for ever).
    pub log_keep_days: u32,
    /// At most this many run logs are kept, the newest (0: no limit).
    pub log_keep_runs: u32,
    /// Each tracking file (`encode_data/*.txt`) keeps its newest this many
    /// entries (0: no limit).
    pub tracking_keep_entries: u32,
    /// Run drapto and every child at low CPU priority (nice 10) and idle
    /// I/O priority, for a server that also serves.
    pub responsive: bool,
}

/// Resource limits for the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceSettings {
    /// Memory drapto and its children may use, in bytes (or "8GiB").
    pub max_memory: ByteSize,
    /// CPU share, in percent of all cores: the chunked path's workers ×
    /// threads, and the standard path's SVT-AV1 and decoder threads.
    pub max_cpu: f64,
}

/// Opus bitrates (kbit/s) by channel layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioSettings {
    pub bitrate_mono: u32,
    pub bitrate_stereo: u32,
    pub bitrate_5_1: u32,
    pub bitrate_7_1: u32,
}

/// Default folders; the command line's `-i`/`-o` win over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PathSettings {
    pub input_dir: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
    /// Where run logs go (default: `<temp_dir>/logs`).
    pub log_dir: Option<PathBuf>,
    /// Where per-file `*.report.json` go (default: beside the output).
    pub report_dir: Option<PathBuf>,
}

/// Segment encodes spread over several machines with GNU Parallel over SSH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributedSettings {
    /// GNU Parallel sshlogin file (one host a line, `:` is this machine,
    /// `N/host` runs N segments at once there). Unset: this machine only.
    pub hosts: Option<PathBuf>,
    /// The command that runs drapto on the other hosts.
    pub remote_drapto: String,
    /// The sources are at the same path on every host (a shared folder):
    /// send only the job, not a lossless extract of the segment's frames.
    pub shared_source: bool,
    /// ssh command GNU Parallel uses (`--ssh`); empty: its default, `ssh`.
    pub ssh: String,
    /// Attempts of one segment across hosts (GNU Parallel `--retries`).
    pub retries: u32,
    /// Allow hosts whose SVT-AV1 or drapto version differs from this one's.
    pub allow_version_mismatch: bool,
}

impl Default for DistributedSettings {
    fn default() -> Self {
        DistributedSettings {
            hosts: None,
            remote_drapto: "drapto".into(),
            shared_source: false,
            ssh: String::new(),
            retries: 3,
            allow_version_mismatch: false,
        }
    }
}

/// Where word goes when a file is finished or fails and when a batch or
/// the watch queue is done (none of them by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// An ntfy topic URL (`https://ntfy.sh/my-encodes`).
    pub ntfy: Option<String>,
    /// An ntfy access token (sent as a bearer token; never printed).
    pub ntfy_token: Option<String>,
    /// ntfy priority: 1–5, or min, low, default, high, max.
    pub ntfy_priority: NtfyPriority,
    /// ntfy tags (emoji short codes or words).
    pub ntfy_tags: Vec<String>,
    /// A URL that receives a POST of each notification's event as JSON.
    pub webhook: Option<String>,
    /// A command (run by `sh -c`) given each event as JSON on its stdin and
    /// `DRAPTO_EVENT` (its kind) and `DRAPTO_FILE` in its environment.
    pub command: Option<String>,
    /// Seconds one delivery may take.
    pub timeout: u32,
    /// Tries of one delivery (waiting 1, 2, 4… s between).
    pub retries: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            ntfy: None,
            ntfy_token: None,
            ntfy_priority: NtfyPriority::Default,
            ntfy_tags: vec!["movie_camera".into()],
            webhook: None,
            command: None,
            timeout: 10,
            retries: 3,
        }
    }
}

/// `drapto watch`: how a library is watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    /// Seconds a new or changed rip must stay the same size and time (and,
    /// where the system tells, closed by every writer) before it is taken.
    pub settle: u32,
    /// Seconds between two looks at the whole library (change events from
    /// the system wake it sooner; network shares send none).
    pub poll: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings { settle: 120, poll: 60 }
    }
}

/// Explicit paths of the external programs (else they are looked up on PATH).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ToolSettings {
    pub ffmpeg: Option<PathBuf>,
    pub ffprobe: Option<PathBuf>,
    pub mediainfo: Option<PathBuf>,
    /// mkvmerge; mkvextract is looked for beside it, then on PATH.
    pub mkvmerge: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: CURRENT_VERSION,
            input: InputSettings::default(),
            encoding: EncodingSettings::default(),
            processing: ProcessingSettings::default(),
            resources: ResourceSettings::default(),
            audio: AudioSettings::default(),
            paths: PathSettings::default(),
            tools: ToolSettings::default(),
            distributed: DistributedSettings::default(),
            notify: NotifySettings::default(),
            watch: WatchSettings::default(),
        }
    }
}

impl Default for EncodingSettings {
    fn default() -> Self {
        EncodingSettings {
            preset: 6,
            crf: CrfSettings::default(),
            vmaf_target: 93.0,
            film_grain: false,
            film_grain_level: 8,
            vmaf_subsample: 7,
            vmaf_probe_subsample: 3,
            vmaf_predict: true,
            vmaf_pool: VmafPool::HarmonicMean,
            chunked_allocation: Allocation::Slope,
            survey_preset: Auto::Auto,
        }
    }
}

impl Default for CrfSettings {
    fn default() -> Self {
        CrfSettings { sd: 25, hd: 25, uhd: 29 }
    }
}

impl Default for ProcessingSettings {
    fn default() -> Self {
        ProcessingSettings {
            chunk_size: 15,
            parallel_jobs: Auto::Auto,
            temp_dir: Auto::Auto,
            disable_crop: false,
            allow_truncated: false,
            on_loss: LossPolicy::Fail,
            max_output_ratio: 1.0,
            breaker_reset: 300,
            interlace: FieldMode::Auto,
            enable_chunked_encoding: ChunkedMode::Auto,
            hardware_decode: true,
            hwaccel: Auto::Auto,
            log_keep_days: 90,
            log_keep_runs: 100,
            tracking_keep_entries: 10_000,
            responsive: false,
        }
    }
}

impl Default for ResourceSettings {
    fn default() -> Self {
        ResourceSettings { max_memory: ByteSize(8 * 1024 * 1024 * 1024), max_cpu: 95.0 }
    }
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings { bitrate_mono: 64, bitrate_stereo: 128, bitrate_5_1: 256, bitrate_7_1: 384 }
    }
}

impl Settings {
    /// A fingerprint of the settings that shape an output (encoding, audio,
    /// crop, interlace, truncation and the chunked path's segmentation):
    /// an output made with the same fingerprint from the same rip is the
    /// one this run would make.
    pub fn output_fingerprint(&self) -> String {
        let p = &self.processing;
        let key = serde_json::json!({
            "encoding": self.encoding,
            "audio": self.audio,
            "disable_crop": p.disable_crop,
            "interlace": p.interlace,
            "allow_truncated": p.allow_truncated,
            "on_loss": p.on_loss,
            "chunked": p.enable_chunked_encoding,
            "chunk_size": p.chunk_size,
        });
        crate::hash::fingerprint(&key)
    }

    /// The folder that holds job work folders, absolute (its files are
    /// given to programs by path: a relative `@t` is a file of options to
    /// mkvmerge).
    pub fn temp_dir(&self) -> PathBuf {
        let dir = match &self.processing.temp_dir {
            Auto::Value(p) => p.clone(),
            Auto::Auto => load::cache_dir().unwrap_or_else(std::env::temp_dir).join("drapto"),
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// `~` and `~/…` in the path settings mean `home`, as in a shell
    /// (a file or a service's environment does not expand them: a folder
    /// named `~` was made in the working folder).
    pub fn expand_home(&mut self, home: &std::path::Path) {
        let expand = |p: &mut PathBuf| {
            if let Ok(rest) = p.strip_prefix("~") {
                *p = home.join(rest);
            }
        };
        let p = &mut self.paths;
        let t = &mut self.tools;
        let optional = [&mut p.input_dir, &mut p.output_dir, &mut p.log_dir, &mut p.report_dir]
            .into_iter()
            .chain([&mut t.ffmpeg, &mut t.ffprobe, &mut t.mediainfo, &mut t.mkvmerge])
            .chain([&mut self.distributed.hosts]);
        optional.flatten().for_each(expand);
        if let Auto::Value(dir) = &mut self.processing.temp_dir {
            expand(dir);
        }
    }

    /// The folder that holds run logs.
    pub fn log_dir(&self) -> PathBuf {
        self.paths.log_dir.clone().unwrap_or_else(|| self.temp_dir().join("logs"))
    }
}
