//! One segment's encodes and their scores, the steps its survey and its
//! search are made of: samples cut from the segment into one lossless file,
//! probes that encode and score them, and encodes of the whole segment with
//! their measurement.

use super::layout::{self, FrameRange, Segment, Timeline};
use super::records::ProbeRecord;
use super::vmaf::{self, VmafSpec};
use super::{RAW_SAMPLES_MAX, Report, SegmentJob, TIERS};
use crate::cancel::Cancel;
use crate::error::{ProcessError, ProcessFailure};
use crate::events::SegmentStep;
use crate::plan::EncoderSettings;
use crate::tools::ffmpeg::FfmpegArgs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Frames a probe or the final encode reads: output frames `range` of
/// `path` (whose frame timeline is `tl`) through `filters`, which drop one
/// of every `cycle` source frames when set.
#[derive(Clone, Copy)]
struct Frames<'a> {
    path: &'a Path,
    tl: &'a Timeline,
    range: FrameRange,
    filters: Option<&'a str>,
    cycle: Option<usize>,
}

impl<'a> Frames<'a> {
    /// Frames of the job's source.
    fn source(job: &'a SegmentJob, tl: &'a Timeline, range: FrameRange) -> Frames<'a> {
        Frames { path: &job.source, tl, range, filters: job.filters.as_deref(), cycle: job.decimation_cycle }
    }

    /// Opens these frames as input of `args`; the chain that yields them.
    fn open(&self, args: &mut FfmpegArgs) -> String {
        layout::open_frames(args, self.path, self.tl, self.range, self.filters, self.cycle)
    }

    /// These frames as the reference of a score.
    fn reference(self) -> vmaf::Reference<'a> {
        vmaf::Reference::Source {
            path: self.path,
            tl: self.tl,
            range: self.range,
            filters: self.filters,
            cycle: self.cycle,
        }
    }
}

/// Encodes `frames` at `crf` to `out`. With `refs`, the same decode also
/// writes the frames that scoring every `refs.1`th frame reads (see
/// [`vmaf::selection`]) raw to `refs.0`, so that the measurement need not
/// decode the source again.
#[allow(clippy::too_many_arguments)]
fn encode_range(
    ffmpeg: &Path,
    job: &SegmentJob,
    frames: Frames,
    crf: f64,
    threads: u32,
    out: &Path,
    refs: Option<(&Path, u32)>,
    cancel: &Cancel,
) -> std::result::Result<usize, ProcessFailure> {
    let mut a = FfmpegArgs::new();
    // The decoder gets the encoder's share of threads: its own would cost
    // more CPU for the same frames.
    a.arg("-threads").arg(threads.to_string());
    let mut chain = frames.open(&mut a);
    // Frames cut to raw video have lost the source's colour tags.
    if frames.path != job.source.as_path()
        && let Some(labels) = job.encoder.colour_labels()
    {
        chain = format!("{chain},{labels}");
    }
    let refs = refs.and_then(|(path, n)| Some((path, vmaf::selection(n)?)));
    match &refs {
        Some((_, select)) => {
            a.arg("-filter_complex").arg(format!("[0:v:0]{chain},split=2[enc][ref];[ref]{select}[sel]"));
            a.extend(["-map", "[enc]"]);
        }
        None => {
            layout::frames_output(&mut a, frames.range.count);
            a.arg("-vf").arg(chain);
        }
    }
    a.extend(["-map_metadata", "-1", "-map_chapters", "-1"]);
    // Samples cut from the source (raw frames) carry no Dolby Vision RPUs,
    // and libsvtav1 refuses frames without one when asked to carry them; a
    // probe measures rate and quality, which the RPUs do not change.
    if job.encoder.dolby_vision && frames.path != job.source.as_path() {
        a.extend(EncoderSettings { dolby_vision: false, ..job.encoder.clone() }.args(crf, threads));
    } else {
        a.extend(job.encoder.args(crf, threads));
    }
    a.extend(["-f", "matroska"]).output(out);
    if let Some((refs_path, _)) = refs {
        a.extend(["-map", "[sel]", "-fps_mode", "passthrough", "-c:v", "rawvideo", "-f", "nut"]).output(refs_path);
    }
    let mut errors = crate::step::decode_errors::DecodeErrors::default();
    let step = format!("segment {} encode", job.segment.index + 1);
    let from_source = frames.path == job.source.as_path();
    crate::tools::process::run_lines(&mut a.command(ffmpeg), &step, cancel, |line| {
        if let crate::tools::process::Line::Err(l) = line {
            errors.count(l);
        }
    })
    .map_err(|f| if from_source { as_damaged(f, frames.range) } else { f })?;
    Ok(errors.total())
}

/// A failed decode of the source whose last lines are decoding errors
/// (ffmpeg gives up on a burst of them, exit 69) as a damaged rip: it
/// fails the same on every try, and the standard path keeps what decodes.
pub(super) fn as_damaged(f: ProcessFailure, range: FrameRange) -> ProcessFailure {
    let decoding = |l: &String| crate::step::decode_errors::is_decoding_error(l);
    match f {
        ProcessFailure::Failed(e) if !e.is_disk_full() && e.stderr_tail.iter().any(decoding) => {
            let (first, last) = (range.start, range.start + range.count.max(1) - 1);
            let detail = format!("ffmpeg gave up decoding frames {first}–{last}");
            ProcessFailure::Failed(ProcessError::damaged_source(e.command, &detail))
        }
        other => other,
    }
}

/// Scores `distorted` against `reference`, every `subsample`th frame but
/// the frames numbered in `left_out`, pooled as the job's `vmaf.pool` says
/// (see [`vmaf::pooled`]). With `whole`, `distorted` is an encode of the
/// job's whole segment: one with fewer frames than the segment has is a
/// source that does not decode in full (a damaged rip), and fails so.
#[allow(clippy::too_many_arguments)]
fn score(
    ffmpeg: &Path,
    job: &SegmentJob,
    distorted: &Path,
    reference: vmaf::Reference,
    subsample: u32,
    left_out: &[u64],
    whole: bool,
    threads: u32,
    cancel: &Cancel,
) -> std::result::Result<f64, ProcessFailure> {
    let spec = VmafSpec { threads, ..job.vmaf.clone() };
    let a = vmaf::vmaf_args(distorted, reference, &spec, subsample);
    let (mut csv, mut stderr) = (Vec::new(), Vec::new());
    let mut cmd = a.command(ffmpeg);
    let command = crate::tools::process::command_line(&cmd);
    let failed =
        |problem: String| ProcessFailure::Failed(ProcessError::problem("vmaf", "ffmpeg", command.clone(), problem));
    crate::tools::process::run_lines(&mut cmd, "vmaf", cancel, |line| match line {
        crate::tools::process::Line::Out(l) => csv.push(l.to_string()),
        crate::tools::process::Line::Err(l) if l.contains("Input stream #0:0 (video)") => stderr.push(l.to_string()),
        crate::tools::process::Line::Err(_) => {}
    })?;
    let frames = vmaf::frame_scores(&csv);
    let seg = job.segment;
    let decoded = vmaf::decoded(&stderr);
    if let Some((packets, ..)) = decoded.filter(|(p, ..)| whole && (*p as usize) < seg.frames()) {
        let detail = format!(
            "segment {}, frames {}–{}, gives {packets} of its {} frames",
            seg.index + 1,
            seg.start,
            seg.end - 1,
            seg.frames()
        );
        return Err(ProcessFailure::Failed(ProcessError::damaged_source(command.clone(), &detail)));
    }
    if let Some((packets, frames, errors)) = decoded.filter(|(p, f, e)| f < p || *e > 0) {
        return Err(failed(format!("the encode decodes to {frames} of its {packets} frames ({errors} decode errors)")));
    }
    let frames = vmaf::leaving_out(frames, left_out, subsample);
    vmaf::pooled(&frames, spec.pool).ok_or_else(|| failed("libvmaf wrote no frame scores".into()))
}

/// Cuts the sample `ranges` of the source, through the job's filters, into
/// one lossless file at `out` (raw video in NUT, or FFV1 when that would be
/// big), so that every probe of a tier encodes and scores one short file: no
/// seeking and decoding of the source per probe, one encoder start instead
/// of one per sample. Returns the file's timeline (frame `i` at `i` frame
/// durations).
fn cut_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    ranges: &[FrameRange],
    threads: u32,
    out: &Path,
    cancel: &Cancel,
) -> std::result::Result<Timeline, ProcessFailure> {
    let mut a = FfmpegArgs::new();
    let mut graph = String::new();
    for (i, r) in ranges.iter().enumerate() {
        let chain = Frames::source(job, tl, *r).open(&mut a);
        graph.push_str(&format!("[{i}:v:0]{chain},setpts=PTS-STARTPTS[s{i}];"));
    }
    for i in 0..ranges.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    graph.push_str(&format!("concat=n={}:v=1:a=0[v]", ranges.len()));
    a.arg("-filter_complex").arg(graph).extend(["-map", "[v]", "-an", "-sn", "-dn"]);
    let n: usize = ranges.iter().map(|r| r.count).sum();
    a.extend(["-fps_mode", "passthrough"]);
    if job.params.frame_bytes > 0 && job.params.frame_bytes * n as u64 <= RAW_SAMPLES_MAX {
        a.extend(["-c:v", "rawvideo", "-f", "nut"]);
    } else {
        a.extend(["-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-threads", &threads.to_string()]);
        a.extend(["-f", "matroska"]);
    }
    a.output(out);
    let whole = FrameRange { start: job.segment.start, count: job.segment.frames() };
    crate::tools::process::run(
        &mut a.command(ffmpeg),
        &format!("segment {} samples", job.segment.index + 1),
        cancel,
        |_| {},
    )
    .map_err(|f| as_damaged(f, whole))?;
    let d = layout::output_frame_duration(tl, job.decimation_cycle);
    Ok(Timeline::new((0..n).map(|i| i as f64 * d).collect(), vec![], vec![]))
}

/// Frame ranges of `n` samples of `frames_each` frames spread over the segment.
pub fn sample_ranges(seg: &Segment, n: usize, frames_each: usize) -> Vec<FrameRange> {
    let len = seg.frames();
    if n == 0 || frames_each == 0 || frames_each * n >= len {
        return vec![seg.range()];
    }
    (0..n)
        .map(|k| {
            let free = len - frames_each;
            let offset = (free as f64 * (k as f64 + 0.5) / n as f64).round() as usize;
            FrameRange { start: seg.start + offset.min(free), count: frames_each }
        })
        .collect()
}

/// An encode of the whole segment at one CRF, kept until the search
/// settles: the chosen one becomes the segment, the others are removed.
pub(super) struct Whole {
    pub(super) crf: f64,
    pub(super) path: PathBuf,
    /// Its VMAF: the measurement's (subsampled), or the probe's when the
    /// probe was this encode (an encode that cannot be scored fails).
    pub(super) score: f64,
}

/// Where the whole-segment encode at `crf` is in `wholes`: made and
/// measured now unless it is there already.
pub(super) fn encode_whole(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    wholes: &mut Vec<Whole>,
    crf: f64,
    steps: &Steps,
) -> std::result::Result<usize, ProcessFailure> {
    if let Some(i) = wholes.iter().position(|w| (w.crf - crf).abs() < 1e-9) {
        return Ok(i);
    }
    let seg = job.segment;
    let path = job.output.with_extension(format!("crf{crf:.2}.partial.mkv"));
    let frames = Frames::source(job, tl, seg.range());
    // The frames the measurement reads, written raw by the encode's own
    // decode of the source, when they are few enough.
    let subsample = job.params.subsample;
    let refs = vmaf::selected_frames(seg.frames(), subsample)
        .filter(|n| job.params.frame_bytes > 0 && job.params.frame_bytes * n <= RAW_SAMPLES_MAX)
        .map(|_| job.scratch.join(format!("refs-{}-crf{crf:.2}.nut", seg.index)));
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Encoding { crf } });
    let refs_at = refs.as_deref().map(|r| (r, subsample));
    let errors = encode_range(ffmpeg, job, frames, crf, (steps.threads)(), &path, refs_at, steps.cancel)?;
    // (Said once a segment, by its first encode of the source.)
    if errors > 0 && wholes.is_empty() {
        (steps.report)(Report::DecodeErrors { segment: seg.index, errors });
    }
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Measuring });
    let reference = match &refs {
        Some(r) => vmaf::Reference::Selected(r),
        None => frames.reference(),
    };
    let score = score(ffmpeg, job, &path, reference, subsample, &[], true, (steps.threads)(), steps.cancel);
    if let Some(r) = &refs {
        let _ = std::fs::remove_file(r);
    }
    // A stop, or a measurement that failed (a segment libvmaf cannot
    // decode), fails the encode: kept unmeasured, it was recorded finished
    // and never held to the floor.
    let score = score?;
    wholes.push(Whole { crf, path, score });
    Ok(wholes.len() - 1)
}

/// The samples a tier's probes encode: a cut file, or `None` when the
/// samples cover the segment (probes encode the segment itself).
pub(super) type Samples = Option<Cut>;

/// A file of samples cut from the segment, back to back.
pub(super) struct Cut {
    pub(super) path: PathBuf,
    /// Its timeline (frame `i` at `i` frame durations).
    tl: Timeline,
    /// The frames that follow a cut: the first of each sample. The encoder
    /// codes such a frame almost as a keyframe, far better than the same
    /// picture inside the film (+5.2 VMAF on average, on real 1080p footage
    /// at preset 10, where the other frames of 8-frame samples were +0.15),
    /// so a probe's score leaves them out.
    starts: Vec<u64>,
}

/// The samples of tier `tier_index` of `job`'s segment, cut now.
pub(super) fn tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let tier = TIERS[tier_index];
    let fps = 1.0 / layout::output_frame_duration(tl, job.decimation_cycle);
    let ranges = sample_ranges(&job.segment, tier.samples, (tier.sample_seconds * fps).round() as usize);
    cut_tier_samples(ffmpeg, job, tl, tier_index, &ranges, steps)
}

/// The sample `ranges` of the segment, cut as samples of tier `tier_index`.
pub(super) fn cut_tier_samples(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    tier_index: usize,
    ranges: &[FrameRange],
    steps: &Steps,
) -> std::result::Result<(Samples, usize), ProcessFailure> {
    let seg = job.segment;
    let frames = ranges.iter().map(|r| r.count).sum();
    if ranges.len() == 1 && ranges[0] == seg.range() {
        return Ok((None, frames));
    }
    let path = job.scratch.join(format!("samples-{}-tier{}", seg.index, tier_index + 1));
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Sampling { tier: tier_index + 1 } });
    let stl = cut_samples(ffmpeg, job, tl, ranges, (steps.threads)(), &path, steps.cancel)?;
    let starts = piece_starts(ranges);
    Ok((Some(Cut { path, tl: stl, starts }), frames))
}

/// Where each of `ranges` starts once they are cut back to back.
pub(super) fn piece_starts(ranges: &[FrameRange]) -> Vec<u64> {
    ranges.iter().scan(0u64, |at, r| Some(std::mem::replace(at, *at + r.count as u64))).collect()
}

/// One probe at `crf` on `samples`: its record, and the encode when it is
/// of the whole segment (kept in `wholes`, scored as a probe).
#[allow(clippy::too_many_arguments)]
pub(super) fn probe(
    ffmpeg: &Path,
    job: &SegmentJob,
    tl: &Timeline,
    samples: &Samples,
    tier_index: usize,
    crf: f64,
    wholes: &mut Vec<Whole>,
    steps: &Steps,
) -> std::result::Result<ProbeRecord, ProcessFailure> {
    let seg = job.segment;
    (steps.report)(Report::Step { segment: seg.index, step: SegmentStep::Probing { tier: tier_index + 1, crf } });
    let t = Instant::now();
    let (frames, out, starts) = match samples {
        Some(Cut { path, tl: stl, starts }) => (
            Frames { path, tl: stl, range: FrameRange { start: 0, count: stl.frames() }, filters: None, cycle: None },
            job.scratch.join(format!("probe-{}-crf{crf:.2}.mkv", seg.index)),
            starts.as_slice(),
        ),
        None => (
            Frames::source(job, tl, seg.range()),
            job.output.with_extension(format!("crf{crf:.2}.partial.mkv")),
            &[][..],
        ),
    };
    encode_range(ffmpeg, job, frames, crf, (steps.threads)(), &out, None, steps.cancel)?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    // Harmonic pooling over all the samples' frames but those after a cut,
    // every `probe_subsample`th scored (odd: every mini-GOP layer is
    // represented).
    let subsample = job.params.probe_subsample.max(1);
    let whole = samples.is_none();
    let s = score(ffmpeg, job, &out, frames.reference(), subsample, starts, whole, (steps.threads)(), steps.cancel)?;
    if samples.is_none() {
        wholes.retain(|w| (w.crf - crf).abs() > 1e-9);
        wholes.push(Whole { crf, path: out, score: s });
    } else {
        let _ = std::fs::remove_file(&out);
    }
    (steps.report)(Report::Probe { segment: seg.index, tier: tier_index + 1, crf, score: s });
    Ok(ProbeRecord { tier: tier_index + 1, crf, score: s, bytes, seconds: t.elapsed().as_secs_f64() })
}

/// What a segment job is given to run its steps: cancellation, its thread
/// count at each step, and where its reports go.
pub(super) struct Steps<'a> {
    pub(super) cancel: &'a Cancel,
    pub(super) threads: &'a dyn Fn() -> u32,
    pub(super) report: &'a dyn Fn(Report),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_spread_and_bounded() {
        let seg = Segment { index: 0, start: 100, end: 475 };
        let r = sample_ranges(&seg, 3, 25);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|r| r.count == 25 && r.start >= 100 && r.start + r.count <= 475));
        assert!(r.windows(2).all(|w| w[0].start + w[0].count <= w[1].start));
        // A segment shorter than the samples is measured whole.
        assert_eq!(
            sample_ranges(&Segment { index: 0, start: 0, end: 40 }, 6, 50),
            vec![FrameRange { start: 0, count: 40 }]
        );
    }
}
