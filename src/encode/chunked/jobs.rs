//! The segment jobs of one film: each segment's [`SegmentJob`] is made as
//! its work starts, with the first guess that its neighbours' results and
//! probes give ([`Guesses`]) and, on the slope allocation, the CRF the plan
//! chose for it.

use super::allocate;
use super::guess::Guesses;
use super::layout::{Layout, Segment};
use super::records::SegmentResult;
use super::resume::segment_file;
use super::search::{self, Point};
use super::segment_job::tier_space;
use super::vmaf::VmafSpec;
use super::{ChunkedParams, FLOOR_MARGIN, Fixed, Report, SegmentJob, TIERS};
use crate::analysis::Analysis;
use crate::events::Event;
use crate::plan::VideoPlan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Makes the segment jobs of one film.
pub struct Jobs<'a> {
    /// What is known of every segment so far.
    pub guesses: Mutex<Guesses>,
    analysis: &'a Analysis,
    video: &'a VideoPlan,
    pub params: &'a ChunkedParams,
    vmaf: VmafSpec,
    scratch: PathBuf,
    encoded: PathBuf,
}

impl<'a> Jobs<'a> {
    /// Jobs for the segments of `layout`, knowing the `finished` ones;
    /// samples go to `scratch`, encodes to `encoded`.
    pub fn new(
        analysis: &'a Analysis,
        video: &'a VideoPlan,
        params: &'a ChunkedParams,
        layout: &Layout,
        finished: &BTreeMap<usize, SegmentResult>,
        scratch: &Path,
        encoded: &Path,
    ) -> Jobs<'a> {
        // First guesses: from the neighbours' results and searches, else a prior.
        let prior = search::prior_crf(f64::from(video.crf), params.target);
        let mut guesses = Guesses::new(prior, layout.starts_at_cut());
        for r in finished.values() {
            guesses.finished(r);
        }
        let vmaf = VmafSpec::for_picture(
            analysis.resolution,
            analysis.picture_size(),
            analysis.sample_aspect(),
            analysis.video.bit_depth,
            params.pool,
            params.threads_per_worker,
        );
        Jobs {
            guesses: Mutex::new(guesses),
            analysis,
            video,
            params,
            vmaf,
            scratch: scratch.to_path_buf(),
            encoded: encoded.to_path_buf(),
        }
    }

    /// The film.
    pub fn input(&self) -> &Path {
        &self.analysis.input
    }

    /// Width and height of the encoded picture.
    pub fn picture_size(&self) -> (u32, u32) {
        self.analysis.picture_size()
    }

    /// The encodes' preset.
    pub fn preset(&self) -> u8 {
        self.video.encoder.preset
    }

    /// The segments' filters: the plan's, which on the chunked path start
    /// with a scale to the film's frame size and sample aspect (see
    /// [`crate::plan::fit_filter`]). A title whose frame size changes (a DVD
    /// mixing 720- and 352-wide cells) reinitialised the filters at the
    /// change, whose `trim` counted again from zero: the segment ran on past
    /// its end and the film failed at assembly, after every encode (see
    /// [`super::layout::seek_input`]).
    fn filters(&self) -> String {
        self.video.filter_chain().unwrap_or_else(|| crate::plan::fit_filter(self.analysis))
    }

    /// Segment `seg`'s job, with the first guess of what is known now.
    pub fn job(&self, seg: Segment) -> SegmentJob {
        let (first_guess, slope, predict) = {
            let mut g = self.guesses.lock().expect("guesses");
            let slope = g.slope(seg.index);
            g.started(seg.index, slope);
            (g.first_guess(seg.index), slope, self.params.predict && g.predictions_trusted())
        };
        SegmentJob {
            source: self.analysis.input.clone(),
            segment: seg,
            output: segment_file(&self.encoded, &seg),
            scratch: self.scratch.clone(),
            filters: Some(self.filters()),
            decimation_cycle: self.video.decimation_cycle,
            encoder: self.video.encoder.clone(),
            params: ChunkedParams { predict, ..self.params.clone() },
            vmaf: self.vmaf.clone(),
            first_guess,
            slope,
            fixed: None,
        }
    }

    /// Segment `seg`'s job with the CRF `allocation` chose as it starts.
    pub fn allocated(&self, seg: Segment, allocation: Option<&Mutex<allocate::Plan>>) -> SegmentJob {
        let mut job = self.job(seg);
        job.fixed = allocation.and_then(|a| a.lock().expect("allocation").start(seg.index)).map(|p| Fixed {
            crf: p.crf,
            planned: p.score,
            floor: self.params.target - FLOOR_MARGIN,
        });
        job
    }

    /// Learns from `r` (a probe's score) and tells the user.
    pub fn report(&self, r: Report) -> Event {
        let input = self.analysis.input.clone();
        match r {
            Report::Probe { segment, tier, crf, score } => {
                let mut g = self.guesses.lock().expect("guesses");
                let space = tier_space(self.params, &TIERS[tier.clamp(1, TIERS.len()) - 1], g.given_slope(segment));
                g.probe(segment, tier, &space, Point { crf, score });
                Event::SegmentProbe { input, segment, tier, crf, score }
            }
            Report::Step { segment, step } => Event::SegmentStep { input, segment, step },
            Report::DecodeErrors { segment, errors } => Event::Warning {
                message: format!(
                    "segment {}: ffmpeg reported {errors} decoding error(s) in the source's video; the segment is \
                     encoded, but look at the output there",
                    segment + 1
                ),
                input: Some(input),
            },
        }
    }
}
