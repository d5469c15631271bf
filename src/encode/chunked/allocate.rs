//! Equal-slope allocation: the CRF of every segment chosen together, so
//! that the film's frame-weighted mean VMAF reaches the target with the
//! fewest bytes, every segment inside a quality band. Pure logic, no ffmpeg.
//!
//! Each segment gets a local model from its probes on samples (see
//! [`Model::fit`]): its VMAF deficit `100 − V` and its bytes are both close
//! to exponential in CRF near the target. Minimising `Σ bytes − λ Σ frames·V`
//! gives every segment the CRF where one more byte buys the same quality
//! (the equal-slope rule of per-shot encoders); `λ` is then searched so that
//! the mean reaches the target. A segment whose quality is cheap gets more
//! (up to the band's ceiling), one whose quality is dear gives some back (to
//! the band's floor). With every model equal this is one CRF for all; with
//! the band closed it is the per-segment target.

use super::layout::Segment;
use super::records::{SegmentResult, Survey};
use super::{CEILING_MARGIN, ChunkedParams, MAX_CRF, MIN_CRF, PLAN_FLOOR_MARGIN, search};
use std::collections::BTreeMap;

/// One segment's local rate–quality model: `V(c) = 100 − e^(a + b·c)` and
/// `bytes(c) = e^(g − d·c)` (the whole segment's bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Output frames of the segment (its weight in the mean).
    pub frames: usize,
    pub a: f64,
    pub b: f64,
    pub g: f64,
    pub d: f64,
    /// The lowest CRF the model is trusted at: [`search::MAX_LEAP`] below
    /// its lowest probe (below it, bytes are spent on a guess).
    pub min_crf: f64,
}

/// A probe as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub crf: f64,
    pub score: f64,
    pub bytes: u64,
}

/// Bounds a fitted slope is held within: deficit per CRF (as the search's,
/// see [`search::DEFAULT_SLOPE`]) and log-bytes per CRF (SVT-AV1 halves its
/// bytes about every 6–9 CRF).
const B_RANGE: (f64, f64) = (0.015, 0.6);
const D_RANGE: (f64, f64) = (0.03, 0.25);
/// Log-bytes per CRF assumed with one probe and nothing pooled.
pub const DEFAULT_D: f64 = 0.1;

impl Model {
    pub fn vmaf(&self, crf: f64) -> f64 {
        100.0 - (self.a + self.b * crf).exp()
    }

    pub fn bytes(&self, crf: f64) -> f64 {
        (self.g - self.d * crf).exp()
    }

    /// The CRF at which the model gives `score`.
    pub fn crf_for(&self, score: f64) -> f64 {
        ((100.0 - score).max(0.01).ln() - self.a) / self.b
    }

    /// The model through `probes` (scored on samples of `sample_frames`
    /// frames, of a segment of `frames`), exact near the score `around` (the
    /// target): `ln bytes` is a least-squares line against CRF; the deficit
    /// line too, unless two probes next to each other in CRF bracket
    /// `around` (see [`bracket_tangent`]). With one probe (or probes at one
    /// CRF) the slopes are `slopes` (pooled from the file's other segments).
    /// `None` without probes.
    pub fn fit(
        probes: &[Probe],
        sample_frames: usize,
        frames: usize,
        slopes: (f64, f64),
        around: f64,
    ) -> Option<Model> {
        if probes.is_empty() || sample_frames == 0 {
            return None;
        }
        let scale = (frames as f64 / sample_frames as f64).ln();
        let xs: Vec<f64> = probes.iter().map(|p| p.crf).collect();
        let dv: Vec<f64> = probes.iter().map(|p| (100.0 - p.score).max(0.01).ln()).collect();
        let lb: Vec<f64> = probes.iter().map(|p| (p.bytes.max(1) as f64).ln() + scale).collect();
        let (b, d) = match (line_slope(&xs, &dv), line_slope(&xs, &lb)) {
            (Some(b), Some(d)) => (b.clamp(B_RANGE.0, B_RANGE.1), (-d).clamp(D_RANGE.0, D_RANGE.1)),
            _ => slopes,
        };
        let n = probes.len() as f64;
        let mx = xs.iter().sum::<f64>() / n;
        let (a, b) = match bracket_tangent(probes, around) {
            Some((c, b)) => {
                let b = b.clamp(B_RANGE.0, B_RANGE.1);
                ((100.0 - around).max(0.01).ln() - b * c, b)
            }
            None => (dv.iter().sum::<f64>() / n - b * mx, b),
        };
        let g = lb.iter().sum::<f64>() / n + d * mx;
        let min_crf = xs.iter().copied().fold(f64::INFINITY, f64::min) - search::MAX_LEAP;
        Some(Model { frames, a, b, g, d, min_crf })
    }

    /// Slopes of this model, for pooling.
    pub fn slopes(&self) -> (f64, f64) {
        (self.b, self.d)
    }

    /// Whether `probes` measure slopes of their own (two CRFs apart).
    pub fn own_slopes(probes: &[Probe]) -> bool {
        spread(&probes.iter().map(|p| p.crf).collect::<Vec<_>>()).is_some()
    }

    /// The same model with its deficit scaled by `e^bias(c)` (learned from
    /// measured segments: short samples score differently from wholes, more
    /// so at high CRFs, where a sample's keyframe weighs more).
    pub fn corrected(&self, bias: &Bias) -> Model {
        // a + b·c + level + per_crf·(c − centre), with the slope bounded.
        let b = (self.b + bias.per_crf).clamp(B_RANGE.0, B_RANGE.1);
        Model {
            a: self.a + bias.level - bias.per_crf * bias.centre + (self.b + bias.per_crf - b) * bias.centre,
            b,
            ..*self
        }
    }
}

/// Where the score crosses `around` and the deficit line's slope there,
/// from the two probes next to each other in CRF that bracket it: the score
/// interpolated linearly in CRF between them, the line's slope that of
/// `ln(100 − V)` at the crossing (`V′ / (100 − V)`). Over the wide brackets
/// a survey takes, the score falls about linearly in CRF while its log
/// deficit bends: on real 1080p footage a segment probed at CRF 23, 46 and
/// 55 (99.3, 87.8, 83.5) needed CRF 35 for 94; the deficit line through
/// all three put 92.6 at CRF 42, this puts 93 at 35.7. `None` when no two
/// such probes bracket it.
fn bracket_tangent(probes: &[Probe], around: f64) -> Option<(f64, f64)> {
    let mut sorted: Vec<&Probe> = probes.iter().collect();
    sorted.sort_by(|p, q| p.crf.total_cmp(&q.crf));
    sorted.windows(2).find_map(|w| {
        let (lo, hi) = (w[0], w[1]);
        let fall = lo.score - hi.score;
        let bracketed = lo.score >= around && hi.score < around && hi.crf - lo.crf > 1e-9;
        bracketed.then(|| {
            let per_crf = fall / (hi.crf - lo.crf);
            (lo.crf + (lo.score - around) / per_crf, per_crf / (100.0 - around).max(0.01))
        })
    })
}

/// Slope of the least-squares line through `(xs, ys)`; `None` when the xs
/// do not spread.
fn line_slope(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let (mx, sxx) = spread(xs)?;
    let my = ys.iter().sum::<f64>() / xs.len() as f64;
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    Some(sxy / sxx)
}

/// The mean of `xs` and the sum of their squared distances from it, when
/// there are two or more that spread (a sum of 0.25 or more: two CRFs half
/// a step apart); `None` otherwise.
fn spread(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.len() < 2 {
        return None;
    }
    let mx = xs.iter().sum::<f64>() / xs.len() as f64;
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    (sxx >= 0.25).then_some((mx, sxx))
}

/// Pooled slopes: the median of the models' (`DEFAULT_SLOPE`/`DEFAULT_D`
/// when there are none).
pub fn pooled_slopes(slopes: &[(f64, f64)]) -> (f64, f64) {
    if slopes.is_empty() {
        return (search::DEFAULT_SLOPE, DEFAULT_D);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(slopes.iter().map(|s| s.0).collect()), median(slopes.iter().map(|s| s.1).collect()))
}

/// The goal and bounds of an allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// Frame-weighted mean VMAF to reach.
    pub target: f64,
    /// No segment is planned below this or above `ceiling`.
    pub floor: f64,
    pub ceiling: f64,
    pub min_crf: f64,
    pub max_crf: f64,
    /// CRF step the encoder takes.
    pub step: f64,
}

/// What is settled already: `frames` frames whose scores sum (frame-weighted)
/// to `score_frames` (finished segments at their measured VMAF, running
/// ones at their planned).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Settled {
    pub frames: usize,
    pub score_frames: f64,
}

/// The CRF of each of `models` (in order) that reaches `goal.target` over
/// them and `settled` with the fewest bytes under the models.
pub fn allocate(models: &[Model], settled: Settled, goal: &Goal) -> Vec<f64> {
    if models.is_empty() {
        return vec![];
    }
    // Each model's CRF range inside the band and the encoder's bounds.
    let ranges: Vec<(f64, f64)> = models
        .iter()
        .map(|m| {
            let min = goal.min_crf.max(m.min_crf).min(goal.max_crf);
            let lo = m.crf_for(goal.ceiling).clamp(min, goal.max_crf);
            let hi = m.crf_for(goal.floor).clamp(min, goal.max_crf);
            (lo, hi.max(lo))
        })
        .collect();
    // The minimiser of bytes(c) − λ·frames·V(c): convex, so the stationary
    // point clamped to the range.
    let crf_at = |m: &Model, r: (f64, f64), ln_lambda: f64| -> f64 {
        let w = m.frames.max(1) as f64;
        let c = ((m.d / (w * m.b)).ln() - ln_lambda + m.g - m.a) / (m.b + m.d);
        c.clamp(r.0, r.1)
    };
    let total: usize = settled.frames + models.iter().map(|m| m.frames).sum::<usize>();
    let need = goal.target * total as f64 - settled.score_frames;
    let score_at = |ln_lambda: f64| -> f64 {
        models.iter().zip(&ranges).map(|(m, r)| m.frames as f64 * m.vmaf(crf_at(m, *r, ln_lambda))).sum()
    };
    // Larger λ: quality dearer to give up, lower CRFs, higher score.
    let (mut lo, mut hi) = (-80.0_f64, 80.0_f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if score_at(mid) >= need {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    models
        .iter()
        .zip(&ranges)
        .map(|(m, r)| {
            let c = crf_at(m, *r, hi);
            // Snapped down (towards quality): rounding never costs the mean.
            ((c / goal.step + 1e-9).floor() * goal.step)
                .clamp(goal.min_crf.max(m.min_crf).min(goal.max_crf), goal.max_crf)
        })
        .collect()
}

/// The bias of samples against wholes: `ln((100 − measured) / (100 −
/// model))` as a line in CRF, `level + per_crf·(c − centre)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bias {
    pub level: f64,
    pub per_crf: f64,
    pub centre: f64,
}

/// Largest bias slope, log-deficit per CRF.
const MAX_BIAS_SLOPE: f64 = 0.05;

impl Bias {
    /// The log-deficit ratio at CRF `c`.
    pub fn at(&self, c: f64) -> f64 {
        self.level + self.per_crf * (c - self.centre)
    }
}

/// The bias learned from finished segments (frames, CRF, model score,
/// measured score): a frame-weighted least-squares line, its level shrunk
/// towards 0 while few segments have measured (`n / (n + 1)`), its slope
/// only from three segments spread over 4 CRF or more (and shrunk more).
pub fn deficit_bias(finished: &[(usize, f64, f64, f64)]) -> Bias {
    let w: f64 = finished.iter().map(|f| f.0 as f64).sum();
    if w <= 0.0 {
        return Bias::default();
    }
    let ratio = |f: &(usize, f64, f64, f64)| ((100.0 - f.3).max(0.01) / (100.0 - f.2).max(0.01)).ln();
    let mx = finished.iter().map(|f| f.0 as f64 * f.1).sum::<f64>() / w;
    let my = finished.iter().map(|f| f.0 as f64 * ratio(f)).sum::<f64>() / w;
    let sxx = finished.iter().map(|f| f.0 as f64 * (f.1 - mx).powi(2)).sum::<f64>() / w;
    let sxy = finished.iter().map(|f| f.0 as f64 * (f.1 - mx) * (ratio(f) - my)).sum::<f64>() / w;
    let n = finished.len() as f64;
    let per_crf = if finished.len() >= 3 && sxx >= 4.0 {
        (sxy / sxx * (n - 2.0) / (n + 1.0)).clamp(-MAX_BIAS_SLOPE, MAX_BIAS_SLOPE)
    } else {
        0.0
    };
    Bias { level: my * n / (n + 1.0), per_crf, centre: mx }
}

/// The allocation of one file while its segments are encoded: every
/// segment's CRF is decided when its encode starts, from the models of the
/// segments not yet started, what the finished ones measured (and how far
/// their measurements were from their models: [`deficit_bias`]) and what
/// the running ones were planned at. The last segments make up for the
/// first ones' misses, inside the band.
#[derive(Debug, Clone)]
pub struct Plan {
    goal: Goal,
    models: BTreeMap<usize, Model>,
    /// Started, not finished: frames, planned CRF, model score there.
    running: BTreeMap<usize, (usize, f64, f64)>,
    /// Finished: frames, kept CRF, model score there, measured score.
    finished: BTreeMap<usize, (usize, f64, f64, f64)>,
    /// Segments settled without a model's measurement to learn from:
    /// earlier runs' (a resume) and finished ones that were not measured.
    reused: Settled,
}

/// A segment's planned CRF and the score the model gives it there
/// (corrected by the bias measured so far).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    pub crf: f64,
    pub score: f64,
}

impl Plan {
    /// `models` of the segments to encode, `reused` what earlier runs settled.
    pub fn new(goal: Goal, models: BTreeMap<usize, Model>, reused: Settled) -> Plan {
        Plan { goal, models, running: BTreeMap::new(), finished: BTreeMap::new(), reused }
    }

    fn bias(&self) -> Bias {
        deficit_bias(&self.finished.values().copied().collect::<Vec<_>>())
    }

    /// Segment `index` starts: its CRF, or `None` without a model.
    pub fn start(&mut self, index: usize) -> Option<Planned> {
        self.models.get(&index)?;
        let bias = self.bias();
        let corrected = |crf: f64, score: f64| 100.0 - (100.0 - score).max(0.01) * bias.at(crf).exp();
        let mut settled = self.reused;
        for &(frames, _, _, measured) in self.finished.values() {
            settled.frames += frames;
            settled.score_frames += frames as f64 * measured;
        }
        for &(frames, crf, score) in self.running.values() {
            settled.frames += frames;
            settled.score_frames += frames as f64 * corrected(crf, score);
        }
        let waiting: Vec<(usize, Model)> = self
            .models
            .iter()
            .filter(|(i, _)| !self.running.contains_key(i) && !self.finished.contains_key(i))
            .map(|(i, m)| (*i, m.corrected(&bias)))
            .collect();
        let models: Vec<Model> = waiting.iter().map(|w| w.1).collect();
        let crfs = allocate(&models, settled, &self.goal);
        let k = waiting.iter().position(|w| w.0 == index)?;
        let m = self.models[&index];
        self.running.insert(index, (m.frames, crfs[k], m.vmaf(crfs[k])));
        Some(Planned { crf: crfs[k], score: models[k].vmaf(crfs[k]) })
    }

    /// Segment `index` finished at `crf`, measured `measured` (`None`: not
    /// measured, counted at its planned score and not learned from).
    pub fn finished(&mut self, index: usize, crf: f64, measured: Option<f64>) {
        let Some(m) = self.models.get(&index).copied() else { return };
        let bias = self.bias();
        let planned =
            self.running.remove(&index).map_or(m.vmaf(crf), |r| 100.0 - (100.0 - r.2).max(0.01) * bias.at(r.1).exp());
        match measured {
            Some(v) => {
                self.finished.insert(index, (m.frames, crf, m.vmaf(crf), v));
            }
            None => {
                self.reused.frames += m.frames;
                self.reused.score_frames += m.frames as f64 * planned;
            }
        }
    }

    /// Segment `index` stopped without a result (cancelled, failed).
    pub fn abandoned(&mut self, index: usize) {
        self.running.remove(&index);
    }
}

/// The slope allocation of the segments `surveys` surveyed, after what
/// earlier runs settled (`results`).
pub fn plan_from_surveys(
    params: &ChunkedParams,
    segs: &[Segment],
    surveys: &BTreeMap<usize, Survey>,
    results: &BTreeMap<usize, SegmentResult>,
) -> Plan {
    let probes = |s: &Survey| -> Vec<Probe> {
        s.probes.iter().map(|p| Probe { crf: p.crf, score: p.score, bytes: p.bytes }).collect()
    };
    let own: Vec<(f64, f64)> = surveys
        .iter()
        .filter(|(_, s)| Model::own_slopes(&probes(s)))
        .filter_map(|(i, s)| Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), (0.0, 0.0), params.target))
        .map(|m| m.slopes())
        .collect();
    let pooled = pooled_slopes(&own);
    let models = surveys
        .iter()
        .filter_map(|(i, s)| {
            Some((*i, Model::fit(&probes(s), s.sample_frames, segs[*i].frames(), pooled, params.target)?))
        })
        .collect();
    let mut reused = Settled::default();
    for r in results.values() {
        reused.frames += r.frames;
        reused.score_frames += r.frames as f64 * r.measured_vmaf.unwrap_or(r.predicted_vmaf);
    }
    let goal = Goal {
        target: params.target,
        floor: params.target - PLAN_FLOOR_MARGIN,
        ceiling: params.target + CEILING_MARGIN,
        min_crf: MIN_CRF,
        max_crf: MAX_CRF,
        step: params.crf_step,
    };
    Plan::new(goal, models, reused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(target: f64) -> Goal {
        Goal { target, floor: target - 1.0, ceiling: target + 2.0, min_crf: 10.0, max_crf: 55.0, step: 0.25 }
    }

    fn model(frames: usize, a: f64, b: f64, g: f64, d: f64) -> Model {
        Model { frames, a, b, g, d, min_crf: 0.0 }
    }

    fn mean(models: &[Model], crfs: &[f64]) -> f64 {
        let w: f64 = models.iter().map(|m| m.frames as f64).sum();
        models.iter().zip(crfs).map(|(m, c)| m.frames as f64 * m.vmaf(*c)).sum::<f64>() / w
    }

    #[test]
    fn a_fit_recovers_the_model_it_was_sampled_from() {
        let m = model(360, -0.5, 0.08, 16.0, 0.1);
        let probes: Vec<Probe> = [26.0, 30.0, 34.0]
            .iter()
            .map(|&c| Probe { crf: c, score: m.vmaf(c), bytes: (m.bytes(c) / 5.0) as u64 })
            .collect();
        let f = Model::fit(&probes, 72, 360, (0.2, 0.2), 80.0).unwrap();
        assert!((f.b - 0.08).abs() < 1e-6 && (f.d - 0.1).abs() < 1e-4, "{f:?}");
        assert!((f.vmaf(31.0) - m.vmaf(31.0)).abs() < 1e-6);
        assert!((f.bytes(31.0) / m.bytes(31.0) - 1.0).abs() < 1e-3);
        // One probe: the pooled slopes, through the probe.
        let one = Model::fit(&probes[1..2], 72, 360, (0.07, 0.12), 80.0).unwrap();
        assert_eq!(one.slopes(), (0.07, 0.12));
        assert!((one.vmaf(30.0) - m.vmaf(30.0)).abs() < 1e-6);
        assert!(Model::fit(&[], 72, 360, (0.07, 0.12), 80.0).is_none());
        assert!(Model::own_slopes(&probes) && !Model::own_slopes(&probes[..1]));
        assert_eq!(f.min_crf, 26.0 - search::MAX_LEAP);
    }

    #[test]
    fn a_bracketed_target_is_placed_by_the_probes_around_it() {
        let probe = |crf: f64, score: f64| Probe { crf, score, bytes: (2e6 * (-0.1 * crf).exp()) as u64 };
        // A real segment's survey (1080p, preset 10): the deficit line
        // through all three put 92.6 at CRF 42; its encode at 41.75
        // measured below 92, and it needed CRF 35 for 94.
        let probes = [probe(23.0, 99.34), probe(55.0, 83.45), probe(46.0, 87.84)];
        let m = Model::fit(&probes, 24, 124, (0.08, 0.1), 93.0).unwrap();
        let linear = 23.0 + (99.34 - 93.0) / ((99.34 - 87.84) / 23.0);
        assert!((m.crf_for(93.0) - linear).abs() < 1e-6, "{}", m.crf_for(93.0));
        assert!((35.0..37.0).contains(&m.crf_for(93.0)));
        // Its slope there is the bracket's: half a point per CRF.
        assert!((m.vmaf(linear - 1.0) - 93.5).abs() < 0.05, "{}", m.vmaf(linear - 1.0));
        // Without a bracket (all above), the least-squares line as before.
        let above = [probe(20.0, 98.0), probe(24.0, 96.5)];
        let m = Model::fit(&above, 24, 124, (0.08, 0.1), 93.0).unwrap();
        assert!((m.vmaf(20.0) - 98.0).abs() < 1e-6 && (m.vmaf(24.0) - 96.5).abs() < 1e-6);
        // Close probes of a smooth curve: the same as the line through them.
        let curve = model(360, -0.5, 0.08, 16.0, 0.1);
        let near: Vec<Probe> = [29.0, 31.0].iter().map(|&c| probe(c, curve.vmaf(c))).collect();
        let m = Model::fit(&near, 72, 360, (0.2, 0.2), 93.0).unwrap();
        assert!((m.crf_for(93.0) - curve.crf_for(93.0)).abs() < 0.05);
    }

    #[test]
    fn equal_models_get_one_crf_that_reaches_the_target() {
        let m = model(240, -0.5, 0.08, 16.0, 0.1);
        let models = [m, m, m];
        let crfs = allocate(&models, Settled::default(), &goal(93.0));
        assert!(crfs.windows(2).all(|w| w[0] == w[1]), "{crfs:?}");
        assert!(mean(&models, &crfs) >= 93.0 - 1e-9);
        // The highest CRF on the step grid that still reaches it.
        assert!(m.vmaf(crfs[0] + 0.25) < 93.0);
    }

    #[test]
    fn cheap_quality_is_bought_and_dear_quality_given_back_within_the_band() {
        // An easy segment (few bytes) and a hard one (many bytes), with the
        // same quality curve: quality is cheaper in the easy one.
        let easy = model(240, -0.5, 0.08, 13.0, 0.1);
        let hard = model(240, -0.5, 0.08, 16.0, 0.1);
        let models = [easy, hard];
        let g = goal(93.0);
        let crfs = allocate(&models, Settled::default(), &g);
        assert!(crfs[0] < crfs[1], "{crfs:?}");
        assert!(mean(&models, &crfs) >= 93.0 - 1e-9);
        let bytes = |c: &[f64]| models.iter().zip(c).map(|(m, c)| m.bytes(*c)).sum::<f64>();
        let same = models.iter().map(|m| m.crf_for(93.0)).collect::<Vec<_>>();
        assert!(bytes(&crfs) < 0.97 * bytes(&same), "{} vs {}", bytes(&crfs), bytes(&same));
        for (m, c) in models.iter().zip(&crfs) {
            let v = m.vmaf(*c);
            assert!(v >= g.floor - 0.05 && v <= g.ceiling + 0.05, "{v}");
        }
        // A closed band is the per-segment target.
        let closed = Goal { floor: 93.0, ceiling: 93.0, ..g };
        let c = allocate(&models, Settled::default(), &closed);
        for (m, c) in models.iter().zip(&c) {
            assert!((m.vmaf(*c) - 93.0).abs() < 0.1);
        }
    }

    #[test]
    fn settled_segments_below_the_target_are_made_up_by_the_rest() {
        let m = model(240, -0.5, 0.08, 16.0, 0.1);
        let free = allocate(&[m, m], Settled::default(), &goal(93.0));
        let behind = allocate(&[m, m], Settled { frames: 240, score_frames: 240.0 * 92.0 }, &goal(93.0));
        assert!(behind[0] < free[0]);
        assert!((240.0 * 92.0 + 240.0 * (m.vmaf(behind[0]) + m.vmaf(behind[1]))) / 720.0 >= 93.0 - 1e-6);
        // Too far behind to make up inside the band: the band's ceiling.
        let hopeless = allocate(&[m], Settled { frames: 2400, score_frames: 2400.0 * 80.0 }, &goal(93.0));
        assert!((m.vmaf(hopeless[0]) - 95.0).abs() < 0.2);
        // Never below the CRF the model is trusted at, whatever the band asks.
        let bounded = Model { min_crf: 30.0, ..m };
        assert_eq!(
            allocate(&[bounded], Settled { frames: 2400, score_frames: 2400.0 * 80.0 }, &goal(93.0)),
            vec![30.0]
        );
    }

    #[test]
    fn the_bias_of_samples_is_learned_and_shrunk() {
        assert_eq!(deficit_bias(&[]), Bias::default());
        // Wholes scored 1 lower at 93: deficit 8 vs 7.
        let one = deficit_bias(&[(100, 30.0, 93.0, 92.0)]);
        assert!((one.level - (8.0f64 / 7.0).ln() / 2.0).abs() < 1e-9 && one.per_crf == 0.0);
        let many: Vec<_> = (0..9).map(|_| (100, 30.0, 93.0, 92.0)).collect();
        assert!((deficit_bias(&many).level - (8.0f64 / 7.0).ln() * 0.9).abs() < 1e-9);
        // Over-predicted at high CRFs, under- at low: a slope.
        let spread =
            [(100, 24.0, 93.0, 94.0), (100, 32.0, 93.0, 93.0), (100, 40.0, 93.0, 92.0), (100, 36.0, 93.0, 92.5)];
        let b = deficit_bias(&spread);
        assert!(b.per_crf > 0.0 && b.at(40.0) > b.at(24.0), "{b:?}");
        let m = model(240, -0.5, 0.08, 16.0, 0.1);
        let c = m.corrected(&b);
        for crf in [24.0, 32.0, 40.0] {
            let want = 100.0 - (100.0 - m.vmaf(crf)) * b.at(crf).exp();
            assert!((c.vmaf(crf) - want).abs() < 1e-9);
        }
    }

    #[test]
    fn the_plan_learns_from_measured_segments_and_the_rest_make_up() {
        let m = model(240, -0.5, 0.08, 16.0, 0.1);
        let models: BTreeMap<usize, Model> = (0..4).map(|i| (i, m)).collect();
        let mut plan = Plan::new(goal(93.0), models, Settled::default());
        let first = plan.start(0).unwrap();
        assert!((first.score - 93.0).abs() < 0.1, "{first:?}");
        // The first segment measured a point under its model: the others
        // are planned lower, and what they are planned at makes up for it.
        plan.finished(0, first.crf, Some(first.score - 1.0));
        let second = plan.start(1).unwrap();
        assert!(second.crf < first.crf, "{second:?}");
        let third = plan.start(2).unwrap();
        let fourth = plan.start(3).unwrap();
        let mean = (first.score - 1.0 + second.score + third.score + fourth.score) / 4.0;
        assert!(mean >= 93.0 - 0.05, "{mean}");
        assert!(plan.start(9).is_none(), "no model, no plan");
    }

    #[test]
    fn pooled_slopes_are_medians() {
        assert_eq!(pooled_slopes(&[]), (search::DEFAULT_SLOPE, DEFAULT_D));
        assert_eq!(pooled_slopes(&[(0.05, 0.1), (0.09, 0.2), (0.07, 0.08)]), (0.07, 0.1));
    }
}
