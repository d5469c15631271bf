//! Black-bar detection: where to sample, which threshold, how to read
//! ffmpeg's `cropdetect`, and how to turn many samples into one decision.
//!
//! The decision is the *least aggressive* crop that every usable sample
//! allows (the union of their picture areas), so a film that changes aspect
//! ratio (IMAX sequences) is never cut; samples that are too dark to show the
//! picture's edges are set aside and do not vote.

use crate::cancel::Cancel;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::Serialize;
use std::path::Path;

/// SDR black threshold on the 8-bit scale (the design's 24).
pub const SDR_THRESHOLD: u32 = 24;
/// HDR threshold when the black level cannot be measured (8-bit scale).
pub const HDR_DEFAULT_THRESHOLD: u32 = 128;
/// Keyframes decoded at each sample point.
pub const FRAMES_PER_SAMPLE: u32 = 5;
/// Seconds of source a sample may read from its point (so that no sample
/// reaches into the credits, however long the GOPs).
pub const SAMPLE_SPAN: f64 = 12.0;
/// A bar must remove at least this share of a dimension (and 8 pixels)
/// before it is cropped: smaller "bars" are edge noise or overscan.
pub const MIN_BAR_FRACTION: f64 = 0.01;

/// A picture rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
}

impl Rect {
    pub fn full(width: u32, height: u32) -> Rect {
        Rect { width, height, x: 0, y: 0 }
    }

    /// ffmpeg's `crop` filter argument.
    pub fn filter(&self) -> String {
        format!("crop={}:{}:{}:{}", self.width, self.height, self.x, self.y)
    }

    fn right(&self) -> u32 {
        self.x + self.width
    }

    fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// The smallest rectangle holding both.
    fn union(&self, o: &Rect) -> Rect {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        Rect { x, y, width: self.right().max(o.right()) - x, height: self.bottom().max(o.bottom()) - y }
    }
}

/// What crop detection decided and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CropDecision {
    /// The crop to apply; `None` keeps the full picture.
    pub crop: Option<Rect>,
    /// One line saying why.
    pub reason: String,
    /// Threshold used, on the 8-bit scale.
    pub threshold: u32,
    /// Measured black level (8-bit scale), HDR only.
    pub black_level: Option<f64>,
    /// Sample times in seconds.
    pub sample_times: Vec<f64>,
    /// Distinct crops seen, with how many samples gave each.
    pub votes: Vec<(Rect, usize)>,
    /// Samples too dark to show the picture's edges.
    pub dark_samples: usize,
}

impl CropDecision {
    /// No detection was run.
    pub fn disabled(reason: &str) -> CropDecision {
        CropDecision {
            crop: None,
            reason: reason.into(),
            threshold: 0,
            black_level: None,
            sample_times: vec![],
            votes: vec![],
            dark_samples: 0,
        }
    }
}

/// Seconds left out at the end for credits: 3 min for films over an hour,
/// 1 min over 20 min, 30 s over 5 min, none for shorter content.
pub fn credits_skip(duration: f64) -> f64 {
    if duration > 3600.0 {
        180.0
    } else if duration > 1200.0 {
        60.0
    } else if duration > 300.0 {
        30.0
    } else {
        0.0
    }
}

/// Seconds left out at the start (studio logos, black lead-in): 5% of the
/// content, at most two minutes.
pub fn opening_skip(duration: f64) -> f64 {
    (duration * 0.05).min(120.0)
}

/// Evenly spread sample times between the opening and the credits, leaving
/// room before the credits for a sample's [`SAMPLE_SPAN`].
pub fn sample_times(duration: f64) -> Vec<f64> {
    let start = opening_skip(duration);
    let credits = credits_skip(duration);
    let room = if credits > 0.0 { SAMPLE_SPAN } else { SAMPLE_SPAN.min(duration * 0.1) };
    let end = (duration - credits - room).max(start);
    let span = end - start;
    let count = ((span / 30.0).round() as usize).clamp(8, 30);
    if span <= 0.0 {
        return vec![start];
    }
    (0..count).map(|i| start + span * (i as f64 + 0.5) / count as f64).collect()
}

/// The black threshold on the 8-bit scale: 24 for SDR; for HDR 1.5× the
/// measured black level within 16..=256, or 128 when it could not be measured.
pub fn threshold(hdr: bool, black_level: Option<f64>) -> u32 {
    if !hdr {
        return SDR_THRESHOLD;
    }
    match black_level {
        Some(b) => ((b * 1.5).round() as u32).clamp(16, 256),
        None => HDR_DEFAULT_THRESHOLD,
    }
}

/// The threshold in the source's own sample scale (cropdetect's `limit`).
pub fn native_limit(threshold_8bit: u32, bit_depth: u32) -> u32 {
    let scaled = threshold_8bit << bit_depth.saturating_sub(8);
    scaled.min((1 << bit_depth) - 1)
}

/// The final `crop=w:h:x:y` of a cropdetect run (its union over the run's
/// frames, since cropdetect keeps the widest bounds it has seen).
pub fn parse_cropdetect(stderr: &str) -> Option<(i64, i64, i64, i64)> {
    let line = stderr.lines().rev().find(|l| l.contains("crop="))?;
    let spec = line.rsplit("crop=").next()?;
    let mut it = spec.trim().split(':').map(|v| v.trim().parse::<i64>().ok());
    Some((it.next()??, it.next()??, it.next()??, it.next()??))
}

/// Black-level readings (`lavfi.signalstats.YLOW=…`, each frame's 10th
/// percentile of luma: the level of its darkest tenth, bars included, and
/// unlike the minimum not thrown by a single stray pixel) in a run's output.
pub fn parse_ylow(output: &str) -> Vec<f64> {
    output
        .lines()
        .filter_map(|l| l.split("lavfi.signalstats.YLOW=").nth(1))
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// Turns one sample's cropdetect result into a usable rectangle, or `None`
/// when the sample was too dark to show the picture's edges.
pub fn usable(raw: Option<(i64, i64, i64, i64)>, width: u32, height: u32) -> Option<Rect> {
    let (w, h, x, y) = raw?;
    if w <= 0 || h <= 0 || x < 0 || y < 0 || x + w > i64::from(width) || y + h > i64::from(height) {
        return None;
    }
    // Less than a fifth of either dimension: a near-black frame, not a film.
    if (w as f64) < f64::from(width) * 0.2 || (h as f64) < f64::from(height) * 0.2 {
        return None;
    }
    Some(Rect { width: w as u32, height: h as u32, x: x as u32, y: y as u32 })
}

/// Decides from the samples (`None` = too dark).
pub fn decide(samples: &[Option<Rect>], width: u32, height: u32) -> (Option<Rect>, String, Vec<(Rect, usize)>, usize) {
    let mut votes: Vec<(Rect, usize)> = Vec::new();
    for r in samples.iter().flatten() {
        match votes.iter_mut().find(|(v, _)| v == r) {
            Some((_, n)) => *n += 1,
            None => votes.push((*r, 1)),
        }
    }
    votes.sort_by_key(|v| std::cmp::Reverse(v.1));
    let dark = samples.iter().filter(|s| s.is_none()).count();
    let Some(union) = samples.iter().flatten().copied().reduce(|a, b| a.union(&b)) else {
        return (None, "no sample showed the picture's edges (all too dark)".into(), votes, dark);
    };
    // Keep an axis whole unless its bars are real.
    let min_bar = |dim: u32| (f64::from(dim) * MIN_BAR_FRACTION).max(8.0);
    let mut r = union;
    if f64::from(height - r.height) < min_bar(height) {
        r.y = 0;
        r.height = height;
    }
    if f64::from(width - r.width) < min_bar(width) {
        r.x = 0;
        r.width = width;
    }
    // Even sizes and offsets, inside the picture, never cutting into it:
    // round the offset down and the far edge up.
    let even_down = |v: u32| v & !1;
    let even_up = |v: u32| (v + 1) & !1;
    let (x, y) = (even_down(r.x), even_down(r.y));
    let right = even_up(r.x + r.width).min(even_down(width));
    let bottom = even_up(r.y + r.height).min(even_down(height));
    let r = Rect { x, y, width: right.saturating_sub(x), height: bottom.saturating_sub(y) };
    let usable = samples.len() - dark;
    if r.width < 2 || r.height < 2 {
        return (None, "picture too small to crop".into(), votes, dark);
    }
    if r.width >= even_down(width) && r.height >= even_down(height) {
        let why = if votes.len() > 1 {
            format!(
                "samples disagree ({} different crops over {usable} samples); the least aggressive keeps the full picture",
                votes.len()
            )
        } else {
            format!("no black bars ({usable} samples)")
        };
        return (None, why, votes, dark);
    }
    let why = if votes.len() == 1 {
        format!("all {usable} usable samples agree on {}x{}", r.width, r.height)
    } else {
        format!(
            "least aggressive of {} different crops over {usable} samples, so no scene is cut: {}x{}",
            votes.len(),
            r.width,
            r.height
        )
    };
    (Some(r), why, votes, dark)
}

/// Runs `vf` over frames from `at` seconds and returns everything ffmpeg
/// printed, or `None` if it failed. With `keyframes_only`, only the
/// keyframes within [`SAMPLE_SPAN`] are decoded (cheap: no decoding up to
/// the point); otherwise [`FRAMES_PER_SAMPLE`] × 2 frames from exactly `at`.
fn sample_run(ffmpeg: &Path, input: &Path, at: f64, vf: &str, keyframes_only: bool, cancel: &Cancel) -> Option<String> {
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-loglevel", "info", "-ss"]).arg(format!("{at:.3}"));
    let frames = if keyframes_only {
        a.extend(["-skip_frame", "nokey", "-t"]).arg(format!("{SAMPLE_SPAN}"));
        FRAMES_PER_SAMPLE
    } else {
        FRAMES_PER_SAMPLE * 2
    };
    a.input(input)
        .extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf, "-frames:v"])
        .arg(frames.to_string())
        .extend(["-f", "null", "-"]);
    let mut text = String::new();
    crate::tools::process::run_lines(&mut a.command(ffmpeg), "crop sample", cancel, |line| {
        let (crate::tools::process::Line::Out(l) | crate::tools::process::Line::Err(l)) = line;
        text.push_str(l);
        text.push('\n');
    })
    .ok()?;
    Some(text)
}

/// [`sample_run`] on keyframes, then on every frame when the keyframes gave
/// `parse` nothing (GOPs longer than the span).
fn sample<T>(
    ffmpeg: &Path,
    input: &Path,
    at: f64,
    vf: &str,
    cancel: &Cancel,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    sample_run(ffmpeg, input, at, vf, true, cancel)
        .and_then(|o| parse(&o))
        .or_else(|| sample_run(ffmpeg, input, at, vf, false, cancel).and_then(|o| parse(&o)))
}

/// Runs `f` over `items` on as many threads as there are cores.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(items.len().max(1));
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("crop worker")).collect()
    })
}

/// What crop detection needs to know about the source.
pub struct Source<'a> {
    pub path: &'a Path,
    pub width: u32,
    pub height: u32,
    pub duration: f64,
    pub bit_depth: u32,
    pub hdr: bool,
    /// Full-range ("pc") samples; else limited range.
    pub full_range: bool,
}

/// Samples the source and decides.
pub fn detect(ffmpeg: &Path, src: &Source, cancel: &Cancel) -> CropDecision {
    let times = sample_times(src.duration);
    let black_level = if src.hdr {
        let readings: Vec<f64> = parallel(&times[..times.len().min(6)], |t| {
            let vf = "signalstats,metadata=print:key=lavfi.signalstats.YLOW";
            sample(ffmpeg, src.path, *t, vf, cancel, |o| Some(parse_ylow(o)).filter(|v| !v.is_empty()))
                .unwrap_or_default()
        })
        .into_iter()
        .flatten()
        .collect();
        let scale = f64::from(1u32 << src.bit_depth.saturating_sub(8));
        // Nothing is darker than legal black: limited range starts at 16.
        let floor = if src.full_range { 0.0 } else { 16.0 };
        readings.into_iter().reduce(f64::min).map(|b| (b / scale).max(floor))
    } else {
        None
    };
    let threshold = threshold(src.hdr, black_level);
    let limit = native_limit(threshold, src.bit_depth);
    // skip=0: a keyframes-only sample may hold a single frame, and
    // cropdetect ignores the first two by default.
    let vf = format!("cropdetect=limit={limit}:round=2:reset=0:skip=0");
    let samples: Vec<Option<Rect>> = parallel(&times, |t| {
        usable(sample(ffmpeg, src.path, *t, &vf, cancel, parse_cropdetect), src.width, src.height)
    });
    let (crop, reason, votes, dark_samples) = decide(&samples, src.width, src.height);
    CropDecision { crop, reason, threshold, black_level, sample_times: times, votes, dark_samples }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(width: u32, height: u32, x: u32, y: u32) -> Option<Rect> {
        Some(Rect { width, height, x, y })
    }

    #[test]
    fn credits_and_opening_skips() {
        assert_eq!(credits_skip(7200.0), 180.0);
        assert_eq!(credits_skip(3600.0), 60.0);
        assert_eq!(credits_skip(1500.0), 60.0);
        assert_eq!(credits_skip(600.0), 30.0);
        assert_eq!(credits_skip(300.0), 0.0);
        assert_eq!(opening_skip(7200.0), 120.0);
        assert_eq!(opening_skip(100.0), 5.0);
    }

    #[test]
    fn samples_avoid_opening_and_credits() {
        let t = sample_times(7200.0);
        assert_eq!(t.len(), 30);
        assert!(t[0] > 120.0);
        assert!(*t.last().unwrap() < 7200.0 - 180.0);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let short = sample_times(10.0);
        assert_eq!(short.len(), 8);
        assert!(short.iter().all(|&x| (0.5..10.0).contains(&x)));
    }

    #[test]
    fn thresholds() {
        assert_eq!(threshold(false, Some(64.0)), 24);
        assert_eq!(threshold(true, None), 128);
        assert_eq!(threshold(true, Some(16.0)), 24);
        assert_eq!(threshold(true, Some(4.0)), 16);
        assert_eq!(threshold(true, Some(200.0)), 256);
        assert_eq!(native_limit(24, 8), 24);
        assert_eq!(native_limit(24, 10), 96);
        assert_eq!(native_limit(256, 8), 255);
    }

    #[test]
    fn parses_cropdetect_and_signalstats() {
        let log = "[Parsed_cropdetect_0 @ 0x1] x1:0 x2:1919 y1:138 y2:941 w:1920 h:800 x:0 y:140 pts:1 t:0.04 limit:0.094 crop=1920:800:0:140\n\
                   [Parsed_cropdetect_0 @ 0x1] x1:0 x2:1919 y1:136 y2:943 w:1920 h:808 x:0 y:136 pts:2 t:0.08 limit:0.094 crop=1920:808:0:136\n";
        assert_eq!(parse_cropdetect(log), Some((1920, 808, 0, 136)));
        assert_eq!(parse_cropdetect("crop=-1904:-1072:1912:1080"), Some((-1904, -1072, 1912, 1080)));
        assert_eq!(parse_cropdetect("nothing"), None);
        assert_eq!(
            parse_ylow("frame:0 pts:0\nlavfi.signalstats.YLOW=64\nlavfi.signalstats.YLOW=70\n"),
            vec![64.0, 70.0]
        );
    }

    #[test]
    fn dark_samples_are_not_usable() {
        assert_eq!(usable(Some((-1904, -1072, 1912, 1080)), 1920, 1080), None);
        assert_eq!(usable(Some((16, 16, 952, 532)), 1920, 1080), None);
        assert_eq!(usable(None, 1920, 1080), None);
        assert_eq!(usable(Some((1920, 800, 0, 140)), 1920, 1080), r(1920, 800, 0, 140));
    }

    #[test]
    fn one_clear_letterbox() {
        let s = vec![r(1920, 800, 0, 140); 10];
        let (crop, why, votes, dark) = decide(&s, 1920, 1080);
        assert_eq!(crop, r(1920, 800, 0, 140));
        assert_eq!((votes.len(), dark), (1, 0));
        assert!(why.contains("agree"));
    }

    #[test]
    fn imax_sections_take_the_least_aggressive_crop() {
        let mut s = vec![r(1920, 800, 0, 140); 8];
        s.push(r(1920, 1080, 0, 0));
        assert_eq!(decide(&s, 1920, 1080).0, None);
        let mut s = vec![r(1920, 800, 0, 140); 8];
        s.push(r(1920, 960, 0, 60)); // 1.90:1 IMAX digital
        assert_eq!(decide(&s, 1920, 1080).0, r(1920, 960, 0, 60));
    }

    #[test]
    fn dark_or_noisy_samples_do_not_make_a_bogus_crop() {
        // Dark scenes report tight boxes around a few bright pixels; they
        // widen nothing beyond the union and do not shrink it.
        let mut s = vec![r(1920, 800, 0, 140); 6];
        s.push(r(1200, 400, 360, 340));
        s.push(None);
        s.push(None);
        let (crop, _, _, dark) = decide(&s, 1920, 1080);
        assert_eq!(crop, r(1920, 800, 0, 140));
        assert_eq!(dark, 2);
        assert_eq!(decide(&[None, None], 1920, 1080).0, None);
    }

    #[test]
    fn tiny_bars_are_ignored_and_odd_values_made_even() {
        assert_eq!(decide(&[r(1916, 1076, 2, 2)], 1920, 1080).0, None);
        // Odd offsets and sizes: round outward to even, stay inside.
        assert_eq!(decide(&[r(1440, 1079, 241, 1)], 1920, 1080).0, r(1442, 1080, 240, 0));
        assert_eq!(decide(&[r(701, 360, 9, 60)], 718, 480).0, r(702, 360, 8, 60));
    }

    #[test]
    fn pillarbox() {
        assert_eq!(decide(&[r(1440, 1080, 240, 0); 5], 1920, 1080).0, r(1440, 1080, 240, 0));
    }
}
