//! First guesses for a segment's CRF search: what the segments around it
//! found (finished ones) or are converging on (ones still probing), else a
//! prior taken from the target. A good first guess is the cheapest probe:
//! one that lands within the tolerance ends the search.
//!
//! "Around" is counted in scene cuts first, then in segments: a segment
//! that starts at a scene cut may hold different content from the one
//! before it, so a neighbour on its own side of the cut is asked first.
//!
//! The slope of the score curve (log-deficit per CRF step) is learned the
//! same way, from every segment that measured two points: a search that has
//! one point of its own moves along it, and so does a prediction that
//! spares a confirming probe. Predictions stop for the rest of the file
//! once the segments' measurements have refuted more than a fifth of them
//! (at least two): each miss costs an encode.

use super::SegmentResult;
use super::search::{Point, SearchSpace, measured_slope};
use crate::events::PredictionSource;
use std::collections::BTreeMap;

/// What is known so far about the segments' CRFs.
#[derive(Debug, Clone)]
pub struct Guesses {
    prior: f64,
    /// `cut_before[i]`: segment `i` starts at a scene cut.
    cut_before: Vec<bool>,
    /// Settled CRFs of finished segments.
    finished: BTreeMap<usize, f64>,
    /// Segments still searching: tier and points of that tier, and the CRF
    /// their search would settle on or try next.
    probing: BTreeMap<usize, (usize, Vec<Point>, f64)>,
    /// Slopes measured by each segment (its latest tier with two points).
    slopes: BTreeMap<usize, f64>,
    /// The slope each started segment's search was given.
    given: BTreeMap<usize, Option<f64>>,
    /// Finished segments' predictions: borne out, refuted.
    predictions: (u32, u32),
}

impl Guesses {
    /// Nothing known yet: every guess is `prior`. `cut_before[i]` says
    /// whether segment `i` starts at a scene cut.
    pub fn new(prior: f64, cut_before: Vec<bool>) -> Guesses {
        Guesses {
            prior,
            cut_before,
            finished: BTreeMap::new(),
            probing: BTreeMap::new(),
            slopes: BTreeMap::new(),
            given: BTreeMap::new(),
            predictions: (0, 0),
        }
    }

    /// (scene cuts, segments) between segments `a` and `b`.
    fn distance(&self, a: usize, b: usize) -> (usize, usize) {
        let (lo, hi) = (a.min(b), a.max(b));
        let cuts = (lo + 1..=hi).filter(|k| self.cut_before.get(*k).copied().unwrap_or(false)).count();
        (cuts, hi - lo)
    }

    /// A segment finished (counted once, however often it is reported).
    pub fn finished(&mut self, r: &SegmentResult) {
        self.probing.remove(&r.index);
        if self.finished.insert(r.index, r.crf).is_none() {
            let held = u32::from(r.prediction == PredictionSource::Model);
            self.predictions.0 += held;
            self.predictions.1 += r.mispredictions;
        }
    }

    /// Whether new segments may settle on predicted CRFs: yes until more
    /// than a fifth of the predictions made (and at least two) missed. A
    /// hit saves a probe, a fifth to a third of the segment's encode; a
    /// miss costs the encode: about where they break even.
    pub fn predictions_trusted(&self) -> bool {
        let (held, missed) = self.predictions;
        missed < 2 || missed * 5 <= held + missed
    }

    /// Segment `index` measured `point` in `tier` (searched in `space`).
    pub fn probe(&mut self, index: usize, tier: usize, space: &SearchSpace, point: Point) {
        if self.finished.contains_key(&index) {
            return;
        }
        let entry = self.probing.entry(index).or_insert_with(|| (tier, Vec::new(), point.crf));
        if entry.0 != tier {
            *entry = (tier, Vec::new(), point.crf);
        }
        entry.1.push(point);
        let estimate = space.estimate(&entry.1).unwrap_or(point.crf);
        // One point high above the target: the log step's leap (to CRF 55
        // from 98.6 at CRF 28 on real footage) is no guess for a neighbour;
        // the straight line the survey's next probe keeps to is.
        entry.2 = if entry.1.len() == 1 { space.straight_cap(point, estimate) } else { estimate };
        if let Some(slope) = measured_slope(&entry.1, space.target) {
            self.slopes.insert(index, slope);
        }
    }

    /// Segment `index` started its search with `slope` (so that its
    /// probes are read the way its search reads them).
    pub fn started(&mut self, index: usize, slope: Option<f64>) {
        self.given.insert(index, slope);
    }

    /// The slope segment `index` was started with.
    pub fn given_slope(&self, index: usize) -> Option<f64> {
        self.given.get(&index).copied().flatten()
    }

    /// The slope measured by the segment nearest to `index` (as for
    /// [`Guesses::first_guess`]), if any segment measured one.
    pub fn slope(&self, index: usize) -> Option<f64> {
        self.slopes.iter().min_by_key(|(i, _)| self.distance(**i, index)).map(|(_, s)| *s)
    }

    /// The first CRF to probe for segment `index`: the nearest segment's
    /// (fewest scene cuts away, then fewest segments; a finished one on a
    /// tie), else the prior.
    pub fn first_guess(&self, index: usize) -> f64 {
        let finished = self.finished.iter().map(|(i, c)| (self.distance(*i, index), 0, *c));
        let probing = self.probing.iter().map(|(i, (_, _, c))| (self.distance(*i, index), 1, *c));
        finished.chain(probing).min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1))).map_or(self.prior, |(_, _, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::chunked::search::tests::space;

    fn result(index: usize, crf: f64, prediction: PredictionSource, mispredictions: u32) -> SegmentResult {
        SegmentResult {
            index,
            path: Default::default(),
            frames: 1,
            crf,
            tier: 1,
            predicted_vmaf: 93.5,
            prediction,
            measured_vmaf: Some(93.2),
            bytes: 1,
            seconds: 1.0,
            probes: vec![],
            reused: false,
            below_target: false,
            mispredictions,
            host: None,
        }
    }

    fn done(index: usize, crf: f64) -> SegmentResult {
        result(index, crf, PredictionSource::Probe, 0)
    }

    #[test]
    fn predictions_stop_when_more_than_a_fifth_miss() {
        let mut g = Guesses::new(33.75, vec![false; 20]);
        assert!(g.predictions_trusted());
        g.finished(&result(0, 30.0, PredictionSource::Probe, 1));
        g.finished(&done(1, 30.0));
        assert!(g.predictions_trusted(), "one miss is no pattern");
        for i in 2..10 {
            g.finished(&result(i, 30.0, PredictionSource::Model, 0));
        }
        g.finished(&result(10, 30.0, PredictionSource::Probe, 1));
        assert!(g.predictions_trusted(), "2 of 10 missed: {:?}", g.predictions);
        // Reported twice (worker and coordinator), counted once.
        g.finished(&result(10, 30.0, PredictionSource::Probe, 1));
        assert_eq!(g.predictions, (8, 2));
        g.finished(&result(11, 30.0, PredictionSource::Probe, 1));
        assert!(!g.predictions_trusted(), "3 of 11 missed");
    }

    #[test]
    fn one_point_near_100_lends_the_straight_line_not_the_log_leap() {
        // Real footage at preset 6: 98.56 at CRF 28.25; on a neighbour's
        // flatter slope the log step asked for 55 and the next segment's
        // first probe went there (84.2, where it needed 37.25; this segment
        // settled at 39.5).
        let s = space();
        let p = Point { crf: 28.25, score: 98.56 };
        let leap = s.estimate(&[p]).unwrap();
        assert!(leap > 45.0, "the search's own log step is unchanged: {leap}");
        let mut g = Guesses::new(33.75, vec![false; 3]);
        g.probe(0, 1, &s, p);
        let lent = g.first_guess(1);
        assert!((37.0..=41.0).contains(&lent), "{lent}");
        // With a second point the search's estimate stands.
        g.probe(0, 1, &s, Point { crf: 38.0, score: 93.78 });
        assert_eq!(g.first_guess(1), s.estimate(&[p, Point { crf: 38.0, score: 93.78 }]).unwrap());
    }

    #[test]
    fn prior_until_something_is_known() {
        let g = Guesses::new(33.75, vec![false; 10]);
        assert_eq!(g.first_guess(0), 33.75);
        assert_eq!(g.first_guess(7), 33.75);
    }

    #[test]
    fn nearest_segment_wins_and_finished_beats_probing_on_a_tie() {
        let mut g = Guesses::new(33.75, vec![false; 10]);
        g.finished(&done(0, 41.25));
        // Segment 2 passed at 31.25 within the tolerance: it settles there.
        g.probe(2, 1, &space(), Point { crf: 31.25, score: 93.4 });
        assert_eq!(g.first_guess(1), 41.25, "tie at distance 1: the finished one");
        assert_eq!(g.first_guess(3), 31.25, "segment 2 is nearer");
        assert_eq!(g.first_guess(9), 31.25);
    }

    #[test]
    fn a_neighbour_across_a_scene_cut_comes_after_one_on_the_same_side() {
        // Segment 3 starts at a scene cut: 2 is before it, 4 and 5 after.
        let mut cut = vec![false; 8];
        cut[3] = true;
        let mut g = Guesses::new(33.75, cut);
        g.finished(&done(2, 40.0));
        assert_eq!(g.first_guess(3), 40.0, "across the cut beats the prior");
        g.finished(&done(5, 30.0));
        assert_eq!(g.first_guess(3), 30.0, "same side of the cut, though further");
        assert_eq!(g.first_guess(1), 40.0);
        // With cuts everywhere (a film), it is the nearest again.
        let mut g = Guesses::new(33.75, vec![true; 8]);
        g.finished(&done(2, 40.0));
        g.finished(&done(5, 30.0));
        assert_eq!(g.first_guess(3), 40.0);
    }

    #[test]
    fn slopes_come_from_the_nearest_segment_that_measured_two_points() {
        let mut g = Guesses::new(33.75, vec![false; 10]);
        assert_eq!(g.slope(3), None, "nothing measured");
        g.probe(1, 1, &space(), Point { crf: 30.0, score: 96.0 });
        assert_eq!(g.slope(3), None, "one point has no slope");
        g.probe(1, 1, &space(), Point { crf: 36.0, score: 93.5 });
        let s1 = g.slope(3).unwrap();
        assert!((s1 - (6.5f64.ln() - 4.0f64.ln()) / 6.0).abs() < 1e-9, "{s1}");
        // Kept once the segment finishes; a nearer segment's slope wins.
        g.finished(&done(1, 36.0));
        g.probe(6, 1, &space(), Point { crf: 30.0, score: 95.0 });
        g.probe(6, 1, &space(), Point { crf: 32.0, score: 93.0 });
        assert_eq!(g.slope(2), Some(s1));
        assert!((g.slope(5).unwrap() - (7.0f64.ln() - 5.0f64.ln()) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_probing_segment_offers_where_its_search_goes_next() {
        let mut g = Guesses::new(33.75, vec![false; 10]);
        // Far above the target at 25: the search moves up, so does the guess.
        g.probe(4, 1, &space(), Point { crf: 25.0, score: 97.5 });
        let guess = g.first_guess(5);
        assert!(guess > 30.0, "{guess}");
        // A later tier starts over with its own points.
        g.probe(4, 2, &space(), Point { crf: 29.0, score: 93.5 });
        assert_eq!(g.first_guess(5), 29.0);
        // Once finished, its CRF is what counts.
        g.finished(&done(4, 29.5));
        g.probe(4, 3, &space(), Point { crf: 40.0, score: 90.0 });
        assert_eq!(g.first_guess(5), 29.5);
    }
}
