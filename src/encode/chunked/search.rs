//! The CRF search: given the (CRF, VMAF) points measured so far, which CRF
//! to try next, or which to settle on. Pure logic, no ffmpeg.
//!
//! VMAF falls as CRF rises. The search keeps the best *passing* point (score
//! at or above the goal) and the best *failing* one; between them it
//! interpolates, outside them it extrapolates with a bounded slope (both on
//! `ln(100 − score)`, which is close to linear in CRF). Points
//! that contradict monotonicity (noise) are read conservatively: a failing
//! point caps every higher CRF.

use serde::{Deserialize, Serialize};

/// One measured probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub crf: f64,
    pub score: f64,
}

/// Search bounds and goal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SearchSpace {
    pub min_crf: f64,
    pub max_crf: f64,
    /// Smallest CRF step the encoder takes (0.25 for SVT-AV1 ≥ 4, else 1).
    pub step: f64,
    /// Score every result must reach.
    pub target: f64,
    /// Scores up to `target + tolerance` are close enough (no bits wasted).
    pub tolerance: f64,
    /// Probes at most.
    pub max_probes: usize,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Measure this CRF.
    Probe(f64),
    /// Settle on this CRF; its measured score is given.
    Done(Point),
    /// Even the lowest CRF misses the target (best point given, if any).
    Unreachable(Option<Point>),
}

/// The search works on the log of the VMAF *deficit*, `ln(100 − score)`,
/// which grows close to linearly with CRF over the whole range (the raw
/// score is flat at low CRFs and steep at high ones, which makes straight
/// lines through raw scores overshoot). Slope per CRF step assumed with one
/// point, and the bounds a measured slope is held within:
const DEFAULT_SLOPE: f64 = 0.08;
const MIN_SLOPE: f64 = 0.015;
const MAX_SLOPE: f64 = 0.6;

/// `ln(100 − score)`, the quantity that is about linear in CRF.
fn deficit(score: f64) -> f64 {
    (100.0 - score).max(0.01).ln()
}

impl SearchSpace {
    fn snap(&self, crf: f64) -> f64 {
        ((crf / self.step).round() * self.step).clamp(self.min_crf, self.max_crf)
    }

    /// The next step after `points`, starting from `first_guess`.
    pub fn next(&self, points: &[Point], first_guess: f64) -> Next {
        if points.is_empty() {
            return Next::Probe(self.snap(first_guess));
        }
        let passing = |p: &&Point| p.score >= self.target;
        // The lowest CRF that failed caps the passing side (monotone reading).
        let fail = points.iter().filter(|p| !passing(p)).min_by(|a, b| a.crf.total_cmp(&b.crf)).copied();
        let pass = points
            .iter()
            .filter(passing)
            .filter(|p| fail.is_none_or(|f| p.crf < f.crf))
            .max_by(|a, b| a.crf.total_cmp(&b.crf))
            .copied();

        if let Some(p) = pass {
            if p.score <= self.target + self.tolerance {
                return Next::Done(p);
            }
        }
        let tried = |crf: f64| points.iter().any(|p| (p.crf - crf).abs() < self.step / 2.0);
        let out_of_probes = points.len() >= self.max_probes;
        let candidate = match (pass, fail) {
            (Some(p), Some(f)) => {
                if f.crf - p.crf <= self.step + 1e-9 || out_of_probes {
                    return Next::Done(p);
                }
                // Secant through the two points nearest the goal, kept
                // inside the bracket; bisection when it falls outside.
                let aim = self.target + self.tolerance / 3.0;
                let slope = self.slope(points);
                let nearest = if (p.score - aim).abs() <= (f.score - aim).abs() { p } else { f };
                let secant = nearest.crf + (deficit(aim) - deficit(nearest.score)) / slope;
                let lo = p.crf + self.step;
                let hi = f.crf - self.step;
                let c = if secant > lo && secant < hi { secant } else { (p.crf + f.crf) / 2.0 };
                self.snap(c).clamp(lo, hi)
            }
            (Some(p), None) => {
                if p.crf >= self.max_crf || out_of_probes {
                    return Next::Done(p);
                }
                let slope = self.slope(points);
                let aim = self.target + self.tolerance / 3.0;
                self.snap(p.crf + ((deficit(aim) - deficit(p.score)) / slope).max(self.step))
            }
            (None, Some(f)) => {
                if f.crf <= self.min_crf || out_of_probes {
                    return Next::Unreachable(points.iter().copied().max_by(|a, b| a.score.total_cmp(&b.score)));
                }
                let slope = self.slope(points);
                let aim = self.target + self.tolerance / 2.0;
                self.snap(f.crf - ((deficit(f.score) - deficit(aim)) / slope).max(self.step))
            }
            (None, None) => unreachable!("every point passes or fails"),
        };
        if tried(candidate) {
            // Interpolation landed on a measured CRF: settle on the safe side.
            return match pass {
                Some(p) => Next::Done(p),
                None => Next::Unreachable(points.iter().copied().max_by(|a, b| a.score.total_cmp(&b.score))),
            };
        }
        Next::Probe(candidate)
    }

    /// The CRF this search would settle on or try next after `points`: its
    /// best estimate of the answer so far (`None` before any point).
    pub fn estimate(&self, points: &[Point]) -> Option<f64> {
        let first = points.first()?;
        Some(match self.next(points, first.crf) {
            Next::Probe(c) => c,
            Next::Done(p) => p.crf,
            Next::Unreachable(best) => best.map_or(self.min_crf, |p| p.crf),
        })
    }

    /// Log-deficit gained per CRF step, from the two points nearest the target.
    fn slope(&self, points: &[Point]) -> f64 {
        let mut near: Vec<Point> = points.to_vec();
        near.sort_by(|a, b| (a.score - self.target).abs().total_cmp(&(b.score - self.target).abs()));
        match near.as_slice() {
            [a, b, ..] if (a.crf - b.crf).abs() > 1e-9 => {
                ((deficit(b.score) - deficit(a.score)) / (b.crf - a.crf)).clamp(MIN_SLOPE, MAX_SLOPE)
            }
            _ => DEFAULT_SLOPE,
        }
    }
}

/// VMAF that the standard path's resolution CRF is taken to reach: those
/// CRFs are chosen to look like the source; the bench clip's standard encode
/// (HD, CRF 25) scored 96.55.
const STANDARD_CRF_VMAF: f64 = 96.5;

/// The CRF to try first for `target` when nothing is known about the
/// content: the standard path's `standard_crf`, moved along the default
/// slope from the score it typically reaches to `target`.
pub fn prior_crf(standard_crf: f64, target: f64) -> f64 {
    standard_crf + (deficit(target) - deficit(STANDARD_CRF_VMAF)) / DEFAULT_SLOPE
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 6;

    fn space() -> SearchSpace {
        SearchSpace { min_crf: 10.0, max_crf: 55.0, step: 0.25, target: 93.0, tolerance: 1.0, max_probes: 6 }
    }

    /// Runs the search against a score curve; returns (result, probes used).
    fn search(curve: impl Fn(f64) -> f64, guess: f64) -> (Next, usize) {
        let s = space();
        let mut points = Vec::new();
        loop {
            match s.next(&points, guess) {
                Next::Probe(c) => {
                    assert!(points.len() < 10, "search does not converge: {points:?}");
                    assert!((s.min_crf..=s.max_crf).contains(&c));
                    points.push(Point { crf: c, score: curve(c) });
                }
                done => return (done, points.len()),
            }
        }
    }

    #[test]
    fn monotone_curve_converges_within_tolerance() {
        let curve = |c: f64| 100.0 - 0.02 * c * c; // 93 at crf ≈ 18.7
        for guess in [10.0, 25.0, 40.0, 55.0] {
            let (r, n) = search(curve, guess);
            let Next::Done(p) = r else { panic!("{r:?}") };
            assert!(p.score >= 93.0 && p.score <= 94.0, "guess {guess}: {p:?}");
            // A guess at the far end of an unrealistic (quadratic) curve may
            // use every probe; the others converge sooner.
            assert!(n <= if guess >= 55.0 { MAX } else { 5 }, "guess {guess}: {n} probes");
        }
    }

    #[test]
    fn realistic_curve_from_far_converges_in_three() {
        // ln(100 − vmaf) linear in CRF, as measured on 1080p content:
        // 98.1 at CRF 25, 93.5 at CRF 41.5.
        let curve = |c: f64| 100.0 - (1.9f64.ln() + (c - 25.0) * 0.0746).exp();
        let (r, n) = search(curve, 25.0);
        let Next::Done(p) = r else { panic!("{r:?}") };
        assert!((93.0..=94.0).contains(&p.score), "{p:?}");
        assert!(n <= 3, "{n} probes");
    }

    #[test]
    fn good_first_guess_needs_one_probe() {
        let curve = |c: f64| 120.0 - c; // 93 at 27
        let (r, n) = search(curve, 26.5);
        assert_eq!(r, Next::Done(Point { crf: 26.5, score: 93.5 }));
        assert_eq!(n, 1);
    }

    #[test]
    fn noisy_curve_still_ends_passing() {
        let noise = |c: f64| ((c * 7.3).sin()) * 0.6;
        let curve = move |c: f64| 118.0 - c + noise(c);
        let (r, n) = search(curve, 30.0);
        let Next::Done(p) = r else { panic!("{r:?}") };
        assert!(p.score >= 93.0, "{p:?}");
        assert!(n <= 6);
    }

    #[test]
    fn flat_curve_takes_the_highest_passing_crf() {
        // Static content: every CRF scores 97.
        let (r, _) = search(|_| 97.0, 25.0);
        assert_eq!(r, Next::Done(Point { crf: 55.0, score: 97.0 }));
    }

    #[test]
    fn unreachable_target_at_the_floor() {
        let (r, _) = search(|c| 90.0 - c * 0.1, 25.0);
        let Next::Unreachable(Some(best)) = r else { panic!("{r:?}") };
        assert_eq!(best.crf, 10.0);
    }

    #[test]
    fn target_exceeded_at_the_ceiling() {
        let (r, _) = search(|c| 99.0 - c * 0.05, 30.0);
        let Next::Done(p) = r else { panic!("{r:?}") };
        assert_eq!(p.crf, 55.0);
        assert!(p.score > 94.0);
    }

    #[test]
    fn contradicting_points_are_read_safely() {
        // A pass above a fail (noise): the fail caps the search.
        let s = space();
        let pts = [Point { crf: 30.0, score: 92.5 }, Point { crf: 32.0, score: 93.4 }];
        match s.next(&pts, 30.0) {
            Next::Probe(c) => assert!(c < 30.0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prior_moves_from_the_standard_crf_with_the_target() {
        assert!((prior_crf(25.0, STANDARD_CRF_VMAF) - 25.0).abs() < 1e-9);
        let p93 = prior_crf(25.0, 93.0);
        assert!((32.0..36.0).contains(&p93), "{p93}");
        assert!(prior_crf(25.0, 97.5) < 25.0);
        assert!(prior_crf(29.0, 93.0) > p93);
    }

    #[test]
    fn estimate_follows_the_search() {
        let s = space();
        assert_eq!(s.estimate(&[]), None);
        // On target: settles there.
        assert_eq!(s.estimate(&[Point { crf: 30.0, score: 93.5 }]), Some(30.0));
        // Above the target: the next probe is at a higher CRF.
        assert!(s.estimate(&[Point { crf: 30.0, score: 97.0 }]).unwrap() > 30.0);
        // Unreachable at the floor: the floor.
        assert_eq!(s.estimate(&[Point { crf: 10.0, score: 80.0 }]), Some(10.0));
    }

    #[test]
    fn integer_steps_for_old_encoders() {
        let s = SearchSpace { step: 1.0, ..space() };
        let mut pts = vec![];
        let curve = |c: f64| 120.0 - c * 1.3;
        for _ in 0..8 {
            match s.next(&pts, 20.0) {
                Next::Probe(c) => {
                    assert_eq!(c.fract(), 0.0);
                    pts.push(Point { crf: c, score: curve(c) });
                }
                Next::Done(p) => {
                    assert!(p.score >= 93.0);
                    return;
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("no result: {pts:?}");
    }
}
