//! Black-bar detection: where to sample, which threshold, how to read
//! ffmpeg's `cropdetect`, and how to turn many samples into one decision.
//!
//! The decision is the *least aggressive* crop that every usable sample
//! allows (the union of their picture areas), so a film that changes aspect
//! ratio (IMAX sequences) is never cut; samples that are too dark to show the
//! picture's edges are set aside and do not vote.
//!
//! cropdetect only says "darker than the threshold", and dark picture (a
//! candle-lit room, a vignette, a night sky) passes that test as easily as a
//! black bar. So every candidate bar is then proven to be a bar: its strip
//! must be flat and at the black level in the sampled frames (ffmpeg
//! `signalstats` on the strip), and a bar without a twin on the opposite
//! side (letterbox and pillarbox bars are symmetric) must be flat black in
//! every single frame. A side that fails keeps its picture.

use super::parallel::parallel;
use crate::cancel::Cancel;
use crate::tools::ffmpeg::FfmpegArgs;
use serde::Serialize;
use std::path::Path;

/// SDR black threshold on the 8-bit scale (the design's 24).
pub const SDR_THRESHOLD: u32 = 24;
/// HDR threshold when the black level cannot be measured (8-bit scale).
pub const HDR_DEFAULT_THRESHOLD: u32 = 128;
/// Keyframes decoded at each sample point.
pub const FRAMES_PER_SAMPLE: u32 = 3;
/// Seconds of source a sample may read from its point (so that no sample
/// reaches into the credits, however long the GOPs).
pub const SAMPLE_SPAN: f64 = 12.0;
/// A bar must remove at least this share of a dimension (and 8 pixels)
/// before it is cropped: smaller "bars" are edge noise or overscan.
pub const MIN_BAR_FRACTION: f64 = 0.01;
/// Most sample points (long films); the fewest is [`MIN_SAMPLES`].
pub const MAX_SAMPLES: usize = 48;
/// Fewest sample points, however short the file: enough that one dark scene
/// cannot decide.
pub const MIN_SAMPLES: usize = 16;
/// A frame's strip is flat when its 90th and 10th luma percentiles are at
/// most this far apart (8-bit scale). Bars measure 0–2 after compression;
/// dark picture measures tens (28 on a candle-lit room).
pub const FLAT_SPREAD: f64 = 4.0;
/// Share of a strip's frames that must be flat (and darker than the
/// threshold) for it to be a bar.
pub const FLAT_SHARE: f64 = 0.9;
/// A bar without a matching bar on the opposite side must be flat black in
/// every frame: spread at most this, and at most [`STRICT_LEVEL`] above the
/// black level (8-bit scale).
pub const STRICT_SPREAD: f64 = 2.0;
pub const STRICT_LEVEL: f64 = 4.0;
/// Bands a candidate bar is measured in, besides its edge band (see [`bands`]).
pub const BANDS: u32 = 16;
/// Edge band (see [`edge_band`]): the most picture a proven bar can take
/// with it. Compression rings through the 8×8 block the edge is in: a
/// 176×144 camera clip's bar edge at row 22 rang from row 16 (luma 13–20).
pub const EDGE_MAX: u32 = 8;

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
    /// Each candidate bar, with the evidence that it is (or is not) a bar.
    pub bars: Vec<BarEvidence>,
}

/// One edge of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Top,
    Bottom,
    Left,
    Right,
}

impl Side {
    pub const ALL: [Side; 4] = [Side::Top, Side::Bottom, Side::Left, Side::Right];

    pub fn name(self) -> &'static str {
        match self {
            Side::Top => "top",
            Side::Bottom => "bottom",
            Side::Left => "left",
            Side::Right => "right",
        }
    }

    fn opposite(self) -> Side {
        match self {
            Side::Top => Side::Bottom,
            Side::Bottom => Side::Top,
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }

    /// The bar this side of `r` removes from a `width`×`height` picture
    /// (whose odd last row or column is never encoded, bar or not).
    pub fn bar(self, r: &Rect, width: u32, height: u32) -> u32 {
        match self {
            Side::Top => r.y,
            Side::Bottom => (height & !1).saturating_sub(r.bottom()),
            Side::Left => r.x,
            Side::Right => (width & !1).saturating_sub(r.right()),
        }
    }

    /// The rectangle of a `width`×`height` picture between `from` and `to`
    /// pixels in from this side's edge.
    pub fn band(self, (from, to): (u32, u32), width: u32, height: u32) -> Rect {
        let t = to - from;
        match self {
            Side::Top => Rect { width, height: t, x: 0, y: from },
            Side::Bottom => Rect { width, height: t, x: 0, y: (height & !1) - to },
            Side::Left => Rect { width: t, height, x: from, y: 0 },
            Side::Right => Rect { width: t, height, x: (width & !1) - to, y: 0 },
        }
    }
}

/// The bands a candidate bar of `bar` pixels (even) is measured in, from
/// the frame's edge inwards, as (from, to) pixels from the edge. The last
/// band, next to the picture, is the edge band ([`edge_band`]): compression
/// and scaling blur the picture's edge into it, so it is not asked to be
/// flat. The others are at most [`BANDS`] bands, each at least 2 pixels:
/// fine enough that picture taken for bar shows in a band of its own
/// instead of hiding in a strip's percentiles.
pub fn bands(bar: u32) -> Vec<(u32, u32)> {
    let edge = edge_band(bar);
    let inner = bar - edge;
    let step = (inner.div_ceil(BANDS) + 1) & !1;
    let mut out = vec![(inner, bar)];
    let mut to = inner;
    while to > 0 {
        let from = to.saturating_sub(step.max(2));
        out.push((from, to));
        to = from;
    }
    out.reverse();
    out
}

/// Pixels next to the picture a bar of `bar` pixels may owe to blur and
/// ringing: [`EDGE_MAX`], or half of a thinner bar (at least 2), even.
pub fn edge_band(bar: u32) -> u32 {
    (bar / 2).clamp(2, EDGE_MAX).min(bar) & !1
}

/// Luma of one frame's strip, on the 8-bit scale: `signalstats`' YLOW and
/// YHIGH (10th and 90th percentiles, so a stray pixel does not count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StripStats {
    pub low: f64,
    pub high: f64,
}

/// Whether a candidate bar is one, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BarEvidence {
    pub side: Side,
    /// Thickness cropdetect proposed, in pixels.
    pub pixels: u32,
    /// Thickness cropped: what of it is proven (0: refused).
    pub cropped: u32,
    /// Sampled frames measured, and how many of them showed a flat strip
    /// darker than the threshold (in the bar's worst band).
    pub frames: usize,
    pub flat_frames: usize,
    /// Usable samples measured, and in how many most frames were flat (in
    /// the bar's worst band).
    pub samples: usize,
    pub flat_samples: usize,
    /// Widest 10th–90th percentile spread and brightest 90th percentile
    /// seen in the strip (8-bit scale).
    pub max_spread: f64,
    pub max_level: f64,
    /// Whether the bar is cropped.
    pub accepted: bool,
    pub reason: String,
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
            bars: vec![],
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
/// room before the credits for a sample's [`SAMPLE_SPAN`]: one every 20 s,
/// [`MIN_SAMPLES`] to [`MAX_SAMPLES`] of them. The same duration always
/// gives the same times.
pub fn sample_times(duration: f64) -> Vec<f64> {
    let start = opening_skip(duration);
    let credits = credits_skip(duration);
    let room = if credits > 0.0 { SAMPLE_SPAN } else { SAMPLE_SPAN.min(duration * 0.1) };
    let end = (duration - credits - room).max(start);
    let span = end - start;
    let count = ((span / 20.0).round() as usize).clamp(MIN_SAMPLES, MAX_SAMPLES);
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

/// Whether bars of `a` and `b` pixels on opposite sides are a pair, as
/// letterbox and pillarbox bars are: within 8 pixels or a quarter of the
/// larger of each other.
fn symmetric(a: u32, b: u32) -> bool {
    a > 0 && b > 0 && a.abs_diff(b) <= 8.max(a.max(b) / 4)
}

/// The fewest pixels an axis's bars must remove, together, to be cropped.
fn min_bar(dim: u32) -> f64 {
    (f64::from(dim) * MIN_BAR_FRACTION).max(8.0)
}

/// Whether one frame of a band is flat and darker than `threshold`.
fn flat(f: &StripStats, threshold: f64) -> bool {
    f.high - f.low <= FLAT_SPREAD && f.high <= threshold
}

/// One band of a side's candidate bar (see [`bands`]) with its luma per
/// usable sample, per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub from: u32,
    pub to: u32,
    pub samples: Vec<Vec<StripStats>>,
}

/// Proves or refuses each bar of `candidate` (a crop of a `width`×`height`
/// picture) from the luma of its bands (`stats[side]`, see [`bands`]).
/// `threshold` and `black` (the black level) are on the 8-bit scale.
///
/// A band is bar-like when at least [`FLAT_SHARE`] of its frames, and most
/// frames of every sample, are flat ([`FLAT_SPREAD`]) and darker than the
/// threshold; strict when flat black in every frame ([`STRICT_SPREAD`],
/// [`STRICT_LEVEL`]). A side is proven from its edge up to its first band
/// that fails; all of it when only the edge band is left. Its bar is
/// cropped as far as the opposite side's proven bar matches it (see
/// [`symmetric`]; a pair is cropped as the thinner), or, alone, as far as it
/// is strict. An axis whose bars together are under [`min_bar`] is kept.
/// Returns the crop (`None`: the full picture) and the evidence per side.
pub fn judge_bars(
    candidate: Rect,
    width: u32,
    height: u32,
    stats: &[(Side, Vec<Band>)],
    threshold: f64,
    black: f64,
) -> (Option<Rect>, Vec<BarEvidence>) {
    let measured: Vec<Measured> = Side::ALL
        .iter()
        .filter_map(|&side| {
            let pixels = side.bar(&candidate, width, height);
            let bands: &[Band] = stats.iter().find(|(s, _)| *s == side).map_or(&[], |(_, v)| v);
            (pixels > 0).then(|| Measured::of(side, pixels, bands, threshold, black))
        })
        .collect();
    let twin = |m: &Measured| measured.iter().find(|o| o.side == m.side.opposite());
    let mut cropped: Vec<u32> = measured.iter().map(|m| m.cropped(twin(m))).collect();
    for (a, b, dim) in [(Side::Top, Side::Bottom, height), (Side::Left, Side::Right, width)] {
        let on_axis = |s: Side| measured.iter().position(|m| m.side == s);
        let total: u32 = [a, b].into_iter().filter_map(on_axis).map(|i| cropped[i]).sum();
        if f64::from(total) < min_bar(dim) {
            [a, b].into_iter().filter_map(on_axis).for_each(|i| cropped[i] = 0);
        }
    }
    let bar = |s: Side| measured.iter().zip(&cropped).find(|(m, _)| m.side == s).map_or(0, |(_, c)| *c);
    let (top, bottom, left, right) = (bar(Side::Top), bar(Side::Bottom), bar(Side::Left), bar(Side::Right));
    let (w, h) = (width & !1, height & !1);
    let r = Rect { width: w - left - right, height: h - top - bottom, x: left, y: top };
    let evidence = measured.iter().zip(&cropped).map(|(m, c)| m.evidence(twin(m), *c)).collect();
    let full = r.width >= w && r.height >= h;
    (if full { None } else { Some(r) }, evidence)
}

/// One side's candidate bar as [`judge_bars`] measured it.
struct Measured {
    side: Side,
    pixels: u32,
    /// Its bands but the edge band.
    inner: Vec<Band>,
    /// Pixels from the edge proven bar-like (flat and dark) and strict
    /// (flat black in every frame).
    like: u32,
    strict: u32,
    threshold: f64,
}

impl Measured {
    /// The bar of `pixels` on `side`, from its bands' luma.
    fn of(side: Side, pixels: u32, bands: &[Band], threshold: f64, black: f64) -> Measured {
        let flat_in = |v: &Vec<StripStats>| v.iter().filter(|f| flat(f, threshold)).count();
        let like = |b: &Band| {
            let frames: usize = b.samples.iter().map(Vec::len).sum();
            let flat_frames: usize = b.samples.iter().map(flat_in).sum();
            frames > 0
                && flat_frames as f64 >= FLAT_SHARE * frames as f64
                && b.samples.iter().all(|v| v.is_empty() || flat_in(v) * 2 > v.len())
        };
        let strict = |b: &Band| {
            let mut all = b.samples.iter().flatten().peekable();
            all.peek().is_some() && all.all(|f| f.high - f.low <= STRICT_SPREAD && f.high <= black + STRICT_LEVEL)
        };
        // The edge band (the last) is left out: blur, not picture.
        let inner = bands[..bands.len().saturating_sub(1)].to_vec();
        let proven = |ok: &dyn Fn(&Band) -> bool| match inner.iter().find(|b| !ok(b)) {
            _ if inner.is_empty() => 0,
            Some(b) => b.from,
            None => pixels,
        };
        let (like, strict) = (proven(&like), proven(&strict));
        Measured { side, pixels, inner, like, strict, threshold }
    }

    /// What was measured in the bands that decided: those cropped, or for a
    /// refused bar those up to the first that is no bar.
    fn figures(&self, cropped: u32) -> BarEvidence {
        let deciding: Vec<&Band> = if cropped > 0 {
            self.inner.iter().filter(|b| b.to <= cropped).collect()
        } else {
            let last = self.inner.iter().position(|b| b.from >= self.like).unwrap_or(self.inner.len());
            self.inner.iter().take(last + 1).collect()
        };
        let flat_in = |v: &Vec<StripStats>| v.iter().filter(|f| flat(f, self.threshold)).count();
        let all = || deciding.iter().flat_map(|b| b.samples.iter().flatten());
        let mostly_flat = |b: &&Band| b.samples.iter().filter(|v| !v.is_empty() && flat_in(v) * 2 > v.len()).count();
        BarEvidence {
            side: self.side,
            pixels: self.pixels,
            cropped,
            frames: deciding.first().map_or(0, |b| b.samples.iter().map(Vec::len).sum()),
            flat_frames: deciding.iter().map(|b| b.samples.iter().map(flat_in).sum()).min().unwrap_or(0),
            samples: deciding.first().map_or(0, |b| b.samples.len()),
            flat_samples: deciding.iter().map(mostly_flat).min().unwrap_or(0),
            max_spread: all().map(|f| f.high - f.low).fold(0.0, f64::max),
            max_level: all().map(|f| f.high).fold(0.0, f64::max),
            accepted: cropped > 0,
            reason: String::new(),
        }
    }

    /// Pixels of this bar matched by the opposite side's proven bar (`twin`).
    fn paired(&self, twin: Option<&Measured>) -> u32 {
        twin.filter(|t| symmetric(self.like, t.like)).map_or(0, |t| self.like.min(t.like))
    }

    /// Pixels cropped on this side, given the opposite side's bar: of a
    /// pair, as much as the thinner (neither's edge band is measured, and
    /// the thicker one's may be dark picture); alone, as far as it is strict.
    fn cropped(&self, twin: Option<&Measured>) -> u32 {
        match self.paired(twin) {
            0 => self.strict,
            paired => paired,
        }
    }

    /// The evidence for this side, `cropped` pixels of it cropped.
    fn evidence(&self, twin: Option<&Measured>, cropped: u32) -> BarEvidence {
        let opp = self.side.opposite().name();
        let e = self.figures(cropped);
        let figures = format!(
            "{} of {} frames flat and dark in {} of {} samples; spread up to {:.0}, level up to {:.0}",
            e.flat_frames, e.frames, e.flat_samples, e.samples, e.max_spread, e.max_level
        );
        let twin_px = twin.map_or(0, |o| o.like);
        let paired = self.paired(twin);
        let reason = if self.like == 0 && self.strict == 0 {
            format!("refused: textured or bright, picture rather than a bar ({figures})")
        } else if cropped == 0 && self.cropped(twin) > 0 {
            let n = self.cropped(twin);
            format!("refused: {n} px proven, too thin to crop ({figures})")
        } else if cropped == 0 {
            let what = format!("no matching {opp} bar ({opp} {twin_px} px) and not flat black in every frame");
            format!("refused: {what} ({figures})")
        } else {
            let how = if paired > 0 {
                format!("bar: matches the {opp} bar of {twin_px} px")
            } else {
                format!("bar without a matching {opp} bar, accepted: flat black in every frame")
            };
            let proven = self.like.max(self.strict);
            let rest = if cropped < proven {
                format!("; cropped as its twin's {cropped} px (the {} px more are not proven)", proven - cropped)
            } else if cropped < self.pixels {
                format!("; picture from {cropped} px in (the {} px more are not flat)", self.pixels - cropped)
            } else {
                String::new()
            };
            format!("{how}{rest} ({figures})")
        };
        BarEvidence { reason, ..e }
    }
}

/// Runs frames from `at` seconds through the filters `graph` adds (one or
/// more outputs, each told how many frames to take) and returns everything
/// ffmpeg printed, or `None` if it failed. With `keyframes_only`, only the
/// keyframes within [`SAMPLE_SPAN`] are decoded (cheap: no decoding up to
/// the point); otherwise [`FRAMES_PER_SAMPLE`] × 2 frames from exactly `at`.
fn sample_run(
    ffmpeg: &Path,
    input: &Path,
    at: f64,
    graph: &dyn Fn(&mut FfmpegArgs, u32),
    keyframes_only: bool,
    cancel: &Cancel,
) -> Option<String> {
    let mut a = FfmpegArgs::default();
    a.extend(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-ss"]).arg(format!("{at:.3}"));
    let frames = if keyframes_only {
        a.extend(["-skip_frame", "nokey", "-t"]).arg(format!("{SAMPLE_SPAN}"));
        FRAMES_PER_SAMPLE
    } else {
        FRAMES_PER_SAMPLE * 2
    };
    a.input(input);
    graph(&mut a, frames);
    let mut text = String::new();
    crate::tools::process::run_lines(&mut a.command(ffmpeg), "crop sample", cancel, |line| {
        let (crate::tools::process::Line::Out(l) | crate::tools::process::Line::Err(l)) = line;
        text.push_str(l);
        text.push('\n');
    })
    .ok()?;
    Some(text)
}

/// Keyframes stand for the picture at a sample point only when the first
/// comes this soon after it (seconds); with longer GOPs every point before
/// the same keyframe would see that one frame.
pub const MAX_KEYFRAME_WAIT: f64 = 2.0;

/// Seconds from the seek point to the first frame a sample run reported
/// (cropdetect's `t:`, metadata's `pts_time:`).
pub fn first_frame_time(output: &str) -> Option<f64> {
    output.lines().find_map(|l| {
        let v = l.split(" pts_time:").nth(1).or_else(|| l.split(" t:").nth(1))?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// [`sample_run`] on keyframes, then on every frame when the keyframes gave
/// `parse` nothing, or only from too far after the point (long GOPs).
fn sample<T>(
    ffmpeg: &Path,
    input: &Path,
    at: f64,
    graph: &dyn Fn(&mut FfmpegArgs, u32),
    cancel: &Cancel,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    sample_run(ffmpeg, input, at, graph, true, cancel)
        .filter(|o| first_frame_time(o).is_some_and(|t| t <= MAX_KEYFRAME_WAIT))
        .and_then(|o| parse(&o))
        .or_else(|| sample_run(ffmpeg, input, at, graph, false, cancel).and_then(|o| parse(&o)))
}

/// A graph of one `-vf` chain on the first video stream.
fn chain(vf: &str) -> impl Fn(&mut FfmpegArgs, u32) + '_ {
    move |a: &mut FfmpegArgs, frames: u32| {
        a.extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf, "-frames:v"])
            .arg(frames.to_string())
            .extend(["-f", "null", "-"]);
    }
}

/// A graph that measures each of `strips` with `signalstats`, each through
/// its own `metadata` instance named by its label (`metadata@top3` …) so
/// that the lines say which strip they are about.
fn strips_graph(strips: &[(String, Rect)]) -> impl Fn(&mut FfmpegArgs, u32) + '_ {
    move |a: &mut FfmpegArgs, frames: u32| {
        let mut g = format!("[0:v:0]split={}", strips.len());
        for i in 0..strips.len() {
            g.push_str(&format!("[in{i}]"));
        }
        for (i, (label, r)) in strips.iter().enumerate() {
            g.push_str(&format!(";[in{i}]{},signalstats,metadata@{label}=print[out{i}]", r.filter()));
        }
        a.arg("-filter_complex").arg(g);
        for i in 0..strips.len() {
            a.extend(["-map", &format!("[out{i}]"), "-frames:v", &frames.to_string(), "-f", "null", "-"]);
        }
    }
}

/// Each labelled strip's per-frame luma in the output of a
/// [`strips_graph`] run, scaled to 8 bits by dividing by `scale`.
pub fn parse_strips(output: &str, scale: f64) -> Vec<(String, Vec<StripStats>)> {
    let mut out: Vec<(String, Vec<StripStats>)> = Vec::new();
    let mut low: Vec<(&str, f64)> = Vec::new();
    for line in output.lines() {
        let Some(label) = line.strip_prefix("[metadata@").and_then(|l| l.split(' ').next()) else {
            continue;
        };
        let value = |key: &str| line.split(key).nth(1).and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(v) = value("lavfi.signalstats.YLOW=") {
            low.retain(|(l, _)| *l != label);
            low.push((label, v / scale));
        } else if let Some(v) = value("lavfi.signalstats.YHIGH=") {
            if let Some(pos) = low.iter().position(|(l, _)| *l == label) {
                let (_, l) = low.remove(pos);
                let stats = StripStats { low: l, high: v / scale };
                match out.iter_mut().find(|(l, _)| l == label) {
                    Some((_, v)) => v.push(stats),
                    None => out.push((label.to_string(), vec![stats])),
                }
            }
        }
    }
    out
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
    let scale = f64::from(1u32 << src.bit_depth.saturating_sub(8));
    // Nothing is darker than legal black: limited range starts at 16.
    let floor = if src.full_range { 0.0 } else { 16.0 };
    let black_level =
        if src.hdr { hdr_black_level(ffmpeg, src, &times, cancel).map(|b| (b / scale).max(floor)) } else { None };
    let threshold = threshold(src.hdr, black_level);
    let limit = native_limit(threshold, src.bit_depth);
    // skip=0: a keyframes-only sample may hold a single frame, and
    // cropdetect ignores the first two by default.
    let vf = format!("cropdetect=limit={limit}:round=2:reset=0:skip=0");
    let samples: Vec<Option<Rect>> = parallel(&times, |t| {
        usable(sample(ffmpeg, src.path, *t, &chain(&vf), cancel, parse_cropdetect), src.width, src.height)
    });
    let (candidate, reason, votes, dark_samples) = decide(&samples, src.width, src.height);
    let mut decision = CropDecision {
        crop: candidate,
        reason,
        threshold,
        black_level,
        sample_times: times,
        votes,
        dark_samples,
        bars: vec![],
    };
    let Some(candidate) = candidate else {
        return decision;
    };
    // The bars are proven on the frames of the samples that voted.
    let voting: Vec<f64> =
        decision.sample_times.iter().zip(&samples).filter(|(_, r)| r.is_some()).map(|(t, _)| *t).collect();
    let stats = strip_stats(ffmpeg, src, candidate, &voting, scale, cancel);
    let black = black_level.unwrap_or(floor);
    let (crop, bars) = judge_bars(candidate, src.width, src.height, &stats, f64::from(threshold), black);
    let refused: Vec<&str> = bars.iter().filter(|b| !b.accepted).map(|b| b.side.name()).collect();
    if let Some(r) = crop.filter(|r| refused.is_empty() && *r != candidate) {
        let what = format!("{}x{}: bars cropped as far as they are proven", r.width, r.height);
        decision.reason = format!("{what} (cropdetect: {})", decision.reason);
    }
    if !refused.is_empty() {
        decision.reason = match crop {
            None => format!("candidate bars refused ({}): dark picture, not black bars", refused.join(", ")),
            Some(r) => format!(
                "{}x{}: the {} candidate bar(s) refused as picture, the others cropped as far as proven (cropdetect: {})",
                r.width,
                r.height,
                refused.join(", "),
                decision.reason
            ),
        };
    }
    decision.crop = crop;
    decision.bars = bars;
    decision
}

/// The lowest luma of an HDR source over its first samples at `times`, on
/// the source's own scale (HDR black is not at 16).
fn hdr_black_level(ffmpeg: &Path, src: &Source, times: &[f64], cancel: &Cancel) -> Option<f64> {
    let vf = "signalstats,metadata=print:key=lavfi.signalstats.YLOW";
    let readings = parallel(&times[..times.len().min(6)], |t| {
        sample(ffmpeg, src.path, *t, &chain(vf), cancel, |o| Some(parse_ylow(o)).filter(|v| !v.is_empty()))
            .unwrap_or_default()
    });
    readings.into_iter().flatten().reduce(f64::min)
}

/// The luma of each band (see [`bands`]) of each candidate bar in every
/// frame of the samples at `voting`, per side, per band, per sample, on
/// the 8-bit scale (`scale`: the source's steps per 8-bit step).
fn strip_stats(
    ffmpeg: &Path,
    src: &Source,
    candidate: Rect,
    voting: &[f64],
    scale: f64,
    cancel: &Cancel,
) -> Vec<(Side, Vec<Band>)> {
    let sides: Vec<(Side, Vec<(u32, u32)>)> = Side::ALL
        .iter()
        .map(|&s| (s, s.bar(&candidate, src.width, src.height)))
        .filter(|(_, bar)| *bar > 0)
        .map(|(s, bar)| (s, bands(bar)))
        .collect();
    let label = |s: Side, i: usize| format!("{}{i}", s.name());
    let strips: Vec<(String, Rect)> = sides
        .iter()
        .flat_map(|(s, bs)| bs.iter().enumerate().map(|(i, b)| (label(*s, i), s.band(*b, src.width, src.height))))
        .collect();
    let graph = strips_graph(&strips);
    let measured: Vec<Vec<(String, Vec<StripStats>)>> = parallel(voting, |t| {
        sample(ffmpeg, src.path, *t, &graph, cancel, |o| Some(parse_strips(o, scale)).filter(|v| !v.is_empty()))
            .unwrap_or_default()
    });
    let per_sample = |l: &str| -> Vec<Vec<StripStats>> {
        measured.iter().map(|m| m.iter().find(|(s, _)| s == l).map(|(_, v)| v.clone()).unwrap_or_default()).collect()
    };
    sides
        .iter()
        .map(|(s, bs)| {
            let bands = bs
                .iter()
                .enumerate()
                .map(|(i, &(from, to))| Band { from, to, samples: per_sample(&label(*s, i)) })
                .collect();
            (*s, bands)
        })
        .collect()
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
        assert_eq!(t.len(), MAX_SAMPLES);
        assert!(t[0] > 120.0);
        assert!(*t.last().unwrap() < 7200.0 - 180.0);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let short = sample_times(10.0);
        assert_eq!(short.len(), MIN_SAMPLES);
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

    fn frames(n: usize, low: f64, high: f64) -> Vec<StripStats> {
        vec![StripStats { low, high }; n]
    }

    /// Each side's bands of the bar `cand` leaves in a `w`×`h` picture, every
    /// band measured as `frames` in each of `samples` samples.
    fn stats(
        cand: Rect,
        w: u32,
        h: u32,
        entries: &[(Side, Vec<StripStats>)],
        samples: usize,
    ) -> Vec<(Side, Vec<Band>)> {
        let band = |(from, to), f: &Vec<StripStats>| Band { from, to, samples: vec![f.clone(); samples] };
        entries.iter().map(|(s, f)| (*s, bands(s.bar(&cand, w, h)).into_iter().map(|b| band(b, f)).collect())).collect()
    }

    #[test]
    fn of_a_pair_of_bars_both_are_cropped_as_the_thinner() {
        // cropdetect took 6 columns of dark picture for black on the right.
        let cand = Rect { width: 534, height: 480, x: 90, y: 0 };
        let st = stats(cand, 720, 480, &[(Side::Left, frames(5, 16.0, 17.0)), (Side::Right, frames(5, 16.0, 17.0))], 8);
        let (crop, ev) = judge_bars(cand, 720, 480, &st, 24.0, 16.0);
        assert_eq!(crop, Some(Rect { width: 540, height: 480, x: 90, y: 0 }));
        assert!(ev[1].reason.contains("cropped as its twin's 90 px"), "{}", ev[1].reason);
    }

    #[test]
    fn flat_symmetric_bars_are_cropped() {
        let cand = Rect { width: 1920, height: 800, x: 0, y: 140 };
        let st =
            stats(cand, 1920, 1080, &[(Side::Top, frames(5, 16.0, 17.0)), (Side::Bottom, frames(5, 16.0, 18.0))], 8);
        let (crop, ev) = judge_bars(cand, 1920, 1080, &st, 24.0, 16.0);
        assert_eq!(crop, Some(cand));
        assert_eq!(ev.len(), 2);
        assert!(ev.iter().all(|e| e.accepted && e.frames == 40 && e.flat_frames == 40), "{ev:?}");
        assert!(ev[0].reason.contains("matches the bottom bar of 140 px"), "{}", ev[0].reason);
    }

    #[test]
    fn dark_textured_strips_are_picture() {
        // The candle-lit room: dark (under the threshold on average) but
        // textured; one side only.
        let cand = Rect { width: 584, height: 528, x: 0, y: 0 };
        let st = stats(cand, 720, 528, &[(Side::Right, frames(10, 21.0, 50.0))], 8);
        let (crop, ev) = judge_bars(cand, 720, 528, &st, 24.0, 16.0);
        assert_eq!(crop, None);
        assert!(!ev[0].accepted && ev[0].reason.starts_with("refused: textured"), "{:?}", ev[0]);
        assert_eq!((ev[0].pixels, ev[0].max_spread, ev[0].max_level), (136, 29.0, 50.0));
        // Flat but brighter than the threshold (a grey wall) is picture too.
        let st = stats(cand, 720, 528, &[(Side::Right, frames(10, 40.0, 41.0))], 8);
        assert_eq!(judge_bars(cand, 720, 528, &st, 24.0, 16.0).0, None);
    }

    #[test]
    fn a_bar_without_a_twin_needs_flat_black_in_every_frame() {
        let cand = Rect { width: 1920, height: 1000, x: 0, y: 80 };
        // Flat and dark, but a little above black in some frames: refused.
        let mut top = frames(9, 16.0, 17.0);
        top.push(StripStats { low: 18.0, high: 22.0 });
        let (crop, ev) = judge_bars(cand, 1920, 1080, &stats(cand, 1920, 1080, &[(Side::Top, top)], 6), 24.0, 16.0);
        assert_eq!(crop, None);
        assert!(ev[0].reason.contains("no matching bottom bar"), "{}", ev[0].reason);
        // Flat black everywhere: accepted alone.
        let (crop, ev) = judge_bars(
            cand,
            1920,
            1080,
            &stats(cand, 1920, 1080, &[(Side::Top, frames(10, 16.0, 17.0))], 6),
            24.0,
            16.0,
        );
        assert_eq!(crop, Some(cand));
        assert!(ev[0].reason.contains("accepted: flat black in every frame"), "{}", ev[0].reason);
        // Very unequal bars are no pair either.
        let cand = Rect { width: 1920, height: 880, x: 0, y: 40 };
        let top = frames(10, 16.0, 17.0);
        let mut bottom = frames(10, 16.0, 17.0);
        bottom[0].high = 21.0;
        let st = stats(cand, 1920, 1080, &[(Side::Top, top), (Side::Bottom, bottom)], 4);
        let (crop, ev) = judge_bars(cand, 1920, 1080, &st, 24.0, 16.0);
        assert!(ev.iter().all(|e| !e.reason.contains("matches")), "{ev:?}");
        // The top bar alone is flat black throughout: kept; the bottom is not.
        assert_eq!(crop, Some(Rect { width: 1920, height: 1040, x: 0, y: 40 }));
    }

    #[test]
    fn one_bar_refused_keeps_its_side_only() {
        // Pillarbox bars both proven, a top candidate that is dark sky.
        let cand = Rect { width: 1440, height: 1000, x: 240, y: 80 };
        let st = stats(
            cand,
            1920,
            1080,
            &[
                (Side::Top, frames(10, 17.0, 30.0)),
                (Side::Left, frames(10, 16.0, 17.0)),
                (Side::Right, frames(10, 16.0, 16.0)),
            ],
            5,
        );
        let (crop, ev) = judge_bars(cand, 1920, 1080, &st, 24.0, 16.0);
        assert_eq!(crop, Some(Rect { width: 1440, height: 1080, x: 240, y: 0 }));
        assert_eq!(ev.iter().filter(|e| e.accepted).count(), 2);
        // No measurement at all proves nothing.
        assert_eq!(judge_bars(cand, 1920, 1080, &[], 24.0, 16.0).0, None);
    }

    #[test]
    fn hdr_bars_at_a_raised_black_level() {
        let cand = Rect { width: 3840, height: 1600, x: 0, y: 280 };
        let st =
            stats(cand, 3840, 2160, &[(Side::Top, frames(5, 64.0, 65.0)), (Side::Bottom, frames(5, 64.0, 66.0))], 6);
        assert_eq!(judge_bars(cand, 3840, 2160, &st, 96.0, 64.0).0, Some(cand));
    }

    #[test]
    fn bars_are_measured_in_bands_up_to_an_edge_band() {
        // 140 px: an edge band of 8 next to the picture, bands of 10 before
        // it (the outermost what is left).
        let b = bands(140);
        assert_eq!((b.len(), b[0], b[1], b[14]), (15, (0, 2), (2, 12), (132, 140)));
        assert!(b.windows(2).all(|w| w[0].1 == w[1].0 && (w[0].1 - w[0].0) % 2 == 0));
        assert_eq!(bands(10), vec![(0, 2), (2, 4), (4, 6), (6, 10)]);
        assert_eq!((edge_band(4), edge_band(10), edge_band(22), edge_band(400)), (2, 4, 8, 8));
        assert_eq!(Side::Top.band((4, 12), 1920, 1080), Rect { width: 1920, height: 8, x: 0, y: 4 });
        assert_eq!(Side::Bottom.band((0, 8), 1920, 1080), Rect { width: 1920, height: 8, x: 0, y: 1072 });
        assert_eq!(Side::Right.band((2, 10), 721, 480), Rect { width: 8, height: 480, x: 710, y: 0 });
        let r = Rect { width: 1440, height: 800, x: 240, y: 140 };
        let bars: Vec<u32> = Side::ALL.iter().map(|s| s.bar(&r, 1920, 1080)).collect();
        assert_eq!(bars, vec![140, 140, 240, 240]);
        assert!(symmetric(138, 142) && symmetric(100, 120) && !symmetric(0, 60) && !symmetric(40, 80));
        // An odd last row is no bar.
        assert_eq!(Side::Bottom.bar(&Rect { width: 718, height: 480, x: 0, y: 0 }, 718, 481), 0);
    }

    /// The bands of a `bar` px bar on `side`: flat black up to `picture`
    /// px, dark textured picture after it.
    fn bar_then_picture(side: Side, bar: u32, picture: u32) -> (Side, Vec<Band>) {
        let black = frames(4, 16.0, 16.0);
        let dark = frames(4, 17.0, 40.0);
        let band = |(from, to): (u32, u32)| {
            let f = if to <= picture { &black } else { &dark };
            Band { from, to, samples: vec![f.clone(); 6] }
        };
        (side, bands(bar).into_iter().map(band).collect())
    }

    #[test]
    fn a_bar_is_cropped_only_as_far_as_it_is_flat_black() {
        // A lone 60 px bottom bar that cropdetect took to 78 px: 18 rows of
        // dark picture (a vignette) used to go with it.
        let cand = Rect { width: 720, height: 510, x: 0, y: 0 };
        let (crop, ev) = judge_bars(cand, 720, 588, &[bar_then_picture(Side::Bottom, 78, 60)], 24.0, 16.0);
        let kept = crop.unwrap();
        assert!((526..=530).contains(&kept.height) && kept.y == 0, "{kept:?}");
        assert!(ev[0].accepted && ev[0].reason.contains("picture from 5"), "{}", ev[0].reason);
        // Blur in the edge band alone does not stop a bar.
        let cand = Rect { width: 720, height: 528, x: 0, y: 0 };
        let (crop, _) = judge_bars(cand, 720, 588, &[bar_then_picture(Side::Bottom, 60, 56)], 24.0, 16.0);
        assert_eq!(crop, Some(cand));
    }

    #[test]
    fn a_candidate_that_runs_into_dark_picture_keeps_its_proven_bar() {
        // A dark letterboxed film: 60 px bars, the top candidate runs 92 px
        // into a night sky. The top used to be refused whole (its 60 px bar
        // kept); now both bars go, less at most a band.
        let cand = Rect { width: 1280, height: 628, x: 0, y: 152 };
        let st = [bar_then_picture(Side::Top, 152, 60), bar_then_picture(Side::Bottom, 60, 60)];
        let (crop, ev) = judge_bars(cand, 1280, 840, &st, 24.0, 16.0);
        let r = crop.unwrap();
        let bottom = 840 - r.y - r.height;
        assert!((50..=60).contains(&r.y) && (50..=60).contains(&bottom), "{r:?}");
        assert!(ev.iter().all(|e| e.accepted), "{ev:?}");
        // Textured from the very edge: refused whole, with the evidence.
        let st = [bar_then_picture(Side::Top, 152, 0), bar_then_picture(Side::Bottom, 60, 60)];
        let (crop, ev) = judge_bars(cand, 1280, 840, &st, 24.0, 16.0);
        assert_eq!(crop, Some(Rect { width: 1280, height: 780, x: 0, y: 0 }));
        assert!(!ev[0].accepted && ev[0].reason.starts_with("refused: textured") && ev[0].max_spread > 4.0);
    }

    #[test]
    fn parses_strip_statistics_and_frame_times() {
        let log = "[metadata@top0 @ 0x1] frame:0    pts:0       pts_time:0.5\n\
                   [metadata@top0 @ 0x1] lavfi.signalstats.YLOW=64\n\
                   [metadata@right12 @ 0x2] lavfi.signalstats.YLOW=80\n\
                   [metadata@top0 @ 0x1] lavfi.signalstats.YHIGH=68\n\
                   [metadata@right12 @ 0x2] lavfi.signalstats.YHIGH=200\n\
                   [metadata@top0 @ 0x1] lavfi.signalstats.YLOW=64\n\
                   [metadata@top0 @ 0x1] lavfi.signalstats.YHIGH=64\n";
        let p = parse_strips(log, 4.0);
        assert_eq!(p.len(), 2);
        let top = vec![StripStats { low: 16.0, high: 17.0 }, StripStats { low: 16.0, high: 16.0 }];
        assert_eq!(p[0], ("top0".to_string(), top));
        assert_eq!(p[1], ("right12".to_string(), vec![StripStats { low: 20.0, high: 50.0 }]));
        assert_eq!(first_frame_time(log), Some(0.5));
        let crop = "[Parsed_cropdetect_0 @ 0x1] x1:0 x2:1919 y1:138 y2:941 w:1920 h:800 x:0 y:140 pts:1 t:3.129 limit:0.094 crop=1920:800:0:140";
        assert_eq!(first_frame_time(crop), Some(3.129));
        assert_eq!(first_frame_time("nothing"), None);
    }
}
