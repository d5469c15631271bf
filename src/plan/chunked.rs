//! The chunked path's part of a plan: [`ChunkedParams`], from the settings,
//! the picture and this machine (its cores and free memory, which size the
//! parallel encoders).

use super::Allocation;
use crate::analysis::Analysis;
use crate::config::{Auto, Settings, VmafPool};
use crate::error::ToolError;
use crate::tools::{FfmpegCaps, ffmpeg_fix};
use serde::{Deserialize, Serialize};

/// The cores this machine lets drapto run on (2 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Cores drapto may keep busy: `max_cpu` percent of this machine's, at
/// least one.
pub fn cpu_share(settings: &Settings) -> usize {
    (cores() as f64 * settings.resources.max_cpu / 100.0).round().max(1.0) as usize
}

/// Whether the chunked path can run here: `Err` says what is missing.
pub fn chunked_available(caps: &FfmpegCaps) -> Result<(), ToolError> {
    if !caps.libvmaf {
        let problem = match &caps.libvmaf_error {
            Some(e) => format!("has a libvmaf that cannot score as chunked encoding asks ({e})"),
            None => "has no libvmaf, which chunked encoding needs to measure quality".into(),
        };
        return Err(ToolError { tool: "ffmpeg".into(), problem, fix: ffmpeg_fix() });
    }
    if !caps.filters.contains("scdet") {
        let problem = "has no scdet filter, which the chunked path's scene detection needs".into();
        return Err(ToolError { tool: "ffmpeg".into(), problem, fix: ffmpeg_fix() });
    }
    Ok(())
}

/// The `n_subsample` used to measure finished segments: an even setting is
/// raised by one. SVT-AV1 codes hierarchical mini-GOPs of 16 frames, and
/// every 2nd/4th/8th frame lands on the best-coded layers only: measured
/// that way a segment scoring 93.4 on every frame scores 97.4 (n_subsample
/// 8), while every 9th frame gives 92.8 and every 7th 93.5.
pub fn measurement_subsample(setting: u32) -> u32 {
    if setting > 1 && setting.is_multiple_of(2) { setting + 1 } else { setting.max(1) }
}

/// Settings of the chunked path for one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkedParams {
    pub target: f64,
    pub chunk_seconds: f64,
    pub workers: usize,
    pub threads_per_worker: u32,
    /// `n_subsample` for the measurement of finished segments.
    pub subsample: u32,
    /// `n_subsample` for the CRF probes (odd; 1: every frame).
    #[serde(default)]
    pub probe_subsample: u32,
    /// Settle on predicted CRFs without a confirming probe (see
    /// [`crate::encode::chunked::run_segment`]).
    #[serde(default)]
    pub predict: bool,
    pub pool: VmafPool,
    /// CRF step the encoder accepts (0.25 with SVT-AV1 ≥ 4).
    pub crf_step: f64,
    /// Bytes of one decoded frame (after crop), to size the probes' sample files.
    #[serde(default)]
    pub frame_bytes: u64,
    /// How segments' CRFs are chosen.
    #[serde(default)]
    pub allocation: Allocation,
    /// The preset the slope allocation's survey probes at, when not the
    /// encode's (see [`survey_preset`]).
    #[serde(default)]
    pub survey_preset: Option<u8>,
}

/// The preset the slope allocation's survey probes at for an encode at
/// `preset`, when not `preset` itself: the `setting`'s, or on "auto" two
/// faster at presets up to 6. The survey only ranks the segments and gives
/// their slopes; the plan learns how far the encode's preset scores from it
/// as segments are measured (`allocate::deficit_bias`). On real 1080p
/// footage (34 s, target 93, every frame scored) a preset 6 encode surveyed
/// at 8 took 0.77x the CPU (249 s against 325) for 0.907x the single-CRF
/// curve's bytes (0.903x surveyed at 6), no encode repeated; preset 4
/// surveyed at 6 0.93x the CPU for 0.912x (0.944x); surveyed at preset 12,
/// a preset 10 encode saved 9% of its CPU for 0.936x (0.864x), so presets
/// above 6 survey at their own.
pub fn survey_preset(preset: u8, setting: Auto<u8>) -> Option<u8> {
    let p = match setting {
        Auto::Value(p) => p,
        Auto::Auto if preset <= 6 => preset + 2,
        Auto::Auto => preset,
    };
    (p != preset).then_some(p)
}

/// Parallel encoders for this machine: the most, up to `cpu_share` (and
/// 32), whose encoders at `preset`, each on its share of the threads, fit
/// in free memory and `max_memory` together (see [`encoder_memory`]):
/// fewer workers run more threads each, which costs memory too.
pub fn default_workers(width: u32, height: u32, preset: u8, cpu_share: usize, max_memory: u64) -> usize {
    let available = available_memory().unwrap_or(max_memory).min(max_memory);
    let fits = |w: usize| w as u64 * encoder_memory(width, height, preset, (cpu_share / w) as u32) <= available;
    (1..=cpu_share.clamp(1, 32)).rev().find(|&w| fits(w)).unwrap_or(1)
}

/// Memory (bytes) one segment's encoder needs: SVT-AV1 on a `width`x`height`
/// picture at `preset` with `threads` threads (`lp`), and ffmpeg decoding
/// the source for it. From the peak resident size measured here (ffmpeg 9,
/// SVT-AV1 4.2, 10-bit, an H.264 source, past 200 frames, where SVT-AV1's
/// picture buffers are full): on one thread about 0.2 GB plus, per
/// megapixel, 0.45 GB at presets up to 4, 0.39 GB at 5 and 6 and 0.21 GB
/// faster (1.12, 0.99 and 0.57 GB at 1080p; 3.91, 3.38 and 1.86 GB at UHD;
/// 0.30 GB for a DVD's 720x480 at preset 6); each doubling of the threads
/// adds about 45%, up to 8 (1080p preset 6 on 2, 4 and 8 threads: 1.38,
/// 1.93 and 2.35 GB; UHD on 2: 4.54 GB). 15% is added to spare. The rule
/// of thumb of 1.2 GB per megapixel (Av1an's) is an encoder on all its
/// threads: at one thread it is two and a half times what one needs.
pub fn encoder_memory(width: u32, height: u32, preset: u8, threads: u32) -> u64 {
    let per_megapixel = match preset {
        0..=4 => 0.45e9,
        5..=6 => 0.39e9,
        _ => 0.21e9,
    };
    let megapixels = f64::from(width) * f64::from(height) / 1e6;
    let threads = f64::from(threads.clamp(1, 8));
    ((0.2e9 + per_megapixel * megapixels) * (1.0 + 0.45 * threads.log2()) * 1.15) as u64
}

/// Memory the system can give without swapping, in bytes (Linux's
/// MemAvailable; macOS's free and inactive pages).
pub fn available_memory() -> Option<u64> {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Some(sys.available_memory()).filter(|m| *m > 0)
}

/// The chunked path's settings: workers and their threads within the CPU
/// share, the VMAF target and its measurement, the allocation.
pub(super) fn chunked_params(analysis: &Analysis, settings: &Settings, caps: &FfmpegCaps) -> ChunkedParams {
    let e = &settings.encoding;
    let (w, h) = analysis.picture_size();
    let workers = match settings.processing.parallel_jobs {
        Auto::Value(n) => n as usize,
        Auto::Auto => default_workers(w, h, e.preset, cpu_share(settings), settings.resources.max_memory.0),
    };
    let cpu_share = cpu_share(settings);
    let workers = workers.min(cpu_share).max(1);
    let target_allocation = e.chunked_allocation == Allocation::Target || settings.distributed.hosts.is_some();
    let depth = analysis.video.bit_depth.unwrap_or(8);
    ChunkedParams {
        target: e.vmaf_target,
        chunk_seconds: f64::from(settings.processing.chunk_size),
        workers,
        threads_per_worker: (cpu_share / workers).max(1) as u32,
        subsample: measurement_subsample(e.vmaf_subsample),
        probe_subsample: measurement_subsample(e.vmaf_probe_subsample),
        predict: e.vmaf_predict,
        pool: e.vmaf_pool,
        allocation: if target_allocation { Allocation::Target } else { Allocation::Slope },
        survey_preset: survey_preset(e.preset, e.survey_preset),
        crf_step: if caps.svtav1_major().unwrap_or(0) >= 4 { 0.25 } else { 1.0 },
        frame_bytes: u64::from(w) * u64::from(h) * 3 / 2 * if depth > 8 { 2 } else { 1 },
    }
}
