//! The segment layout: the source's frame timeline (read by
//! [`super::timeline`]), its scene cuts (found by [`super::scenes`]),
//! segment boundaries ([`Layout`] puts them together
//! for one film), and the exact ffmpeg input arguments that decode one
//! segment's frames.
//!
//! Segments are frame ranges `[start, end)` of the presentation-ordered
//! frames. Each is decoded from the source itself (accurate input seeking to
//! just before the segment's first frame, then exactly `end - start` frames),
//! never stream-copied, so open-GOP sources neither lose nor duplicate the
//! leading B-frames at a boundary.

use super::scenes::{SceneMethod, scene_cuts, scene_method};
pub use super::timeline::{Timeline, output_frame_duration, output_frames, output_timeline, timeline};
use crate::error::{Error, Result};
use crate::tools::ffmpeg::FfmpegArgs;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How one film is cut: the source's frames, the frames the filters give
/// out of them, the scene cuts found, and the segments.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The source's frames (for seeking and scene detection).
    pub source: Timeline,
    /// The frames the filters give (what is planned, encoded and counted).
    pub output: Timeline,
    pub cuts: Vec<f64>,
    pub method: SceneMethod,
    pub segments: Vec<Segment>,
    /// Seconds it took to find.
    pub seconds: f64,
}

impl Layout {
    /// Reads `input`'s frames, finds its scene cuts (on `threads` threads,
    /// working files in `scratch`) and cuts it: one scene a segment, up to
    /// the chunk length, for the slope allocation; segments of the chunk
    /// length starting at cuts for the target search.
    ///
    /// The scene cuts found are kept in `cuts_file` and read back by a
    /// resumed run (a scan that found other cuts, or failed on a stretch,
    /// would cut other segments: the finished ones could not be reused).
    pub fn build(
        ctx: &crate::step::Ctx,
        input: &Path,
        cycle: Option<usize>,
        params: &crate::plan::ChunkedParams,
        (scratch, cuts_file): (&Path, &Path),
    ) -> Result<Layout> {
        let t0 = std::time::Instant::now();
        let source = timeline(&ctx.tools.ffprobe, input, ctx.cancel)?;
        std::fs::create_dir_all(scratch).map_err(Error::io("create folder", scratch))?;
        let method = scene_method(&source);
        let threads = params.workers * params.threads_per_worker as usize;
        let key = CutsFile::fingerprint(&source, method);
        let cuts = match crate::job::state::load::<CutsFile>(cuts_file, &key) {
            Ok(kept) => kept.cuts,
            Err(_) => {
                let cuts = scene_cuts(&ctx.tools.ffmpeg, input, &source, threads, method, scratch, ctx.cancel);
                ctx.cancel.check()?;
                crate::job::state::write_atomic(cuts_file, &CutsFile::new(key, &cuts))?;
                cuts
            }
        };
        let output = output_timeline(&source, cycle);
        let segments = match params.allocation {
            crate::plan::Allocation::Slope => {
                plan_scene_segments(&output, &cuts, super::MIN_SCENE_SECONDS, params.chunk_seconds)
            }
            crate::plan::Allocation::Target => plan_segments(&output, &cuts, params.chunk_seconds),
        };
        Ok(Layout { source, output, cuts, method, segments, seconds: t0.elapsed().as_secs_f64() })
    }

    /// The frames of the encoded film.
    pub fn total_frames(&self) -> usize {
        self.output.frames()
    }

    /// For each segment, whether a scene cut starts it.
    pub fn starts_at_cut(&self) -> Vec<bool> {
        starts_at_cut(&self.output, &self.cuts, &self.segments)
    }
}

/// `scene-cuts.json`: the scene cuts found in one source, for a resumed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CutsFile {
    version: u32,
    /// The source's frames and the method the cuts were found with.
    fingerprint: String,
    cuts: Vec<f64>,
}

impl CutsFile {
    fn new(fingerprint: String, cuts: &[f64]) -> CutsFile {
        CutsFile { version: crate::job::state::STATE_VERSION, fingerprint, cuts: cuts.to_vec() }
    }

    fn fingerprint(source: &Timeline, method: SceneMethod) -> String {
        let n = source.frames();
        let key = serde_json::json!({"frames": n, "first": source.pts[0], "last": source.pts[n - 1],
            "method": format!("{method:?}"), "work": crate::job::state::WORK_FORMAT});
        crate::hash::fingerprint(&key)
    }
}

/// Frames `[start, start + count)` of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    pub start: usize,
    pub count: usize,
}

/// One segment: frames `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub index: usize,
    pub start: usize,
    pub end: usize,
}

impl Segment {
    pub fn frames(&self) -> usize {
        self.end - self.start
    }

    pub fn range(&self) -> FrameRange {
        FrameRange { start: self.start, count: self.frames() }
    }
}

/// Cuts the timeline into segments of about `target` seconds, each starting
/// at a scene cut within a third of the target of where it would otherwise
/// start, else at the frame nearest that point. A short tail joins the
/// segment before it.
pub fn plan_segments(tl: &Timeline, cuts: &[f64], target: f64) -> Vec<Segment> {
    let n = tl.frames();
    let mut bounds = vec![0usize];
    let window = target / 3.0;
    loop {
        let last = *bounds.last().expect("non-empty");
        let ideal = tl.pts[last] + target;
        if ideal >= tl.pts[n - 1] {
            break;
        }
        let cut = cuts
            .iter()
            .filter(|c| (*c - ideal).abs() <= window && **c > tl.pts[last])
            .min_by(|a, b| (*a - ideal).abs().total_cmp(&(*b - ideal).abs()));
        let next = tl.index_near(cut.copied().unwrap_or(ideal));
        if next <= last || next >= n {
            break;
        }
        bounds.push(next);
    }
    bounds.push(n);
    // A tail shorter than half the target joins the previous segment.
    if bounds.len() > 2 {
        let k = bounds.len();
        let tail = tl.pts[n - 1] - tl.pts[bounds[k - 2]];
        if tail < target / 2.0 {
            bounds.remove(k - 2);
        }
    }
    bounds.windows(2).enumerate().map(|(index, w)| Segment { index, start: w[0], end: w[1] }).collect()
}

/// Cuts the timeline at its scene `cuts` (the slope allocation's segments:
/// one scene, one rate–quality curve): a scene shorter than `min` seconds
/// joins the next one, one longer than `max` is split into equal parts of
/// at most `max`, and a last piece shorter than `min` joins the one before.
pub fn plan_scene_segments(tl: &Timeline, cuts: &[f64], min: f64, max: f64) -> Vec<Segment> {
    let n = tl.frames();
    if n == 0 {
        return vec![];
    }
    let end = tl.pts[n - 1] + tl.frame_duration();
    let mut bounds = vec![0usize];
    let mut sorted = cuts.to_vec();
    sorted.sort_by(f64::total_cmp);
    for c in sorted {
        let i = tl.index_near(c);
        let last = *bounds.last().expect("non-empty");
        if i > last && tl.pts[i] - tl.pts[last] >= min && end - tl.pts[i] >= min {
            bounds.push(i);
        }
    }
    bounds.push(n);
    let mut split = vec![0usize];
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        let length = if b < n { tl.pts[b] } else { end } - tl.pts[a];
        let parts = (length / max).ceil().max(1.0) as usize;
        for k in 1..parts {
            let i = tl.index_near(tl.pts[a] + length * k as f64 / parts as f64);
            if i > *split.last().expect("non-empty") && i < b {
                split.push(i);
            }
        }
        split.push(b);
    }
    split.dedup();
    split.windows(2).enumerate().map(|(index, w)| Segment { index, start: w[0], end: w[1] }).collect()
}

/// For each segment, whether it starts at one of the scene `cuts` (within
/// half a frame).
pub fn starts_at_cut(tl: &Timeline, cuts: &[f64], segs: &[Segment]) -> Vec<bool> {
    let half = tl.frame_duration() / 2.0;
    segs.iter().map(|s| s.start > 0 && cuts.iter().any(|c| (c - tl.pts[s.start]).abs() <= half)).collect()
}

/// The source opened at frame `start`: accurate input seeking to halfway
/// between it and the frame before, so it is the first frame decoded and
/// every earlier one (including an open GOP's leading B-frames) is
/// dropped. Halfway between the two, not half a typical frame before: in
/// a faster stretch of a variable frame rate (59.94 fps in a 23.976 film)
/// the frame before lies nearer than that. Timestamps then start near
/// zero. The seek time is on the frames' own clock (not offset by the
/// file's start time). No seek when the frame is the file's first. The
/// caller limits the count (`frames_output`).
pub fn seek_input(args: &mut FfmpegArgs, source: &Path, tl: &Timeline, start: usize) {
    // The filters count frames (`trim`): a change of frame size must not
    // start them again (the segment's filters scale to one size).
    args.extend(["-reinit_filter", "0"]);
    if let Some(t) = seek_point(tl, start) {
        args.extend(["-seek_timestamp", "1", "-ss"]).arg(format!("{t:.6}"));
    }
    args.input(source);
}

/// Where [`seek_input`] seeks to open the source at frame `start` (none:
/// it reads from the file's start). The decoded frames' times are then
/// their own less this.
pub fn seek_point(tl: &Timeline, start: usize) -> Option<f64> {
    let before = start.checked_sub(1).map(|b| tl.pts[b])?;
    Some((before + tl.pts[start]) / 2.0).filter(|t| *t > 0.0)
}

/// Opens `source` (whose frame timeline is `tl`) for the output frames
/// `range` of its `filters`, and returns the filter chain that yields
/// exactly those frames.
///
/// One to one: the decode starts at the range's first frame (see
/// [`seek_input`]), takes its frames and filters them. Under decimation
/// (`cycle`): field matching and decimation look at neighbouring frames and
/// decide per cycle counted from the file's first frame, so the decode
/// starts at a cycle boundary one whole cycle before the range (the
/// lead-in), the whole stream is filtered, and the range's frames are
/// trimmed out of the result, timestamps from zero: the same frames a
/// decode of the whole file gives.
pub fn open_frames(
    args: &mut FfmpegArgs,
    source: &Path,
    tl: &Timeline,
    range: FrameRange,
    filters: Option<&str>,
    cycle: Option<usize>,
) -> String {
    match cycle {
        Some(c) if c > 1 => {
            let kept = c - 1;
            let first_cycle = (range.start / kept).saturating_sub(1);
            seek_input(args, source, tl, first_cycle * c);
            let skip = range.start - first_cycle * kept;
            let pre = filters.map(|f| format!("{f},")).unwrap_or_default();
            format!("{pre}trim=start_frame={skip}:end_frame={},setpts=PTS-STARTPTS", skip + range.count)
        }
        _ => {
            seek_input(args, source, tl, range.start);
            let post = filters.map(|f| format!(",{f}")).unwrap_or_default();
            format!("{}{post}", bounded_trim(tl, range))
        }
    }
}

/// The trim that takes `range`'s frames of the source opened at its first
/// (see [`seek_input`]): its count, and no frame at or past the next
/// frame's time. Where frames inside the range do not decode (a damaged
/// rip), the count alone read on into the next range: its first frames
/// encoded twice, the rest of this one out of sync, and the encode whole;
/// bounded, it comes out short, which is told. Unseeked (from the file's
/// start), by its count alone: the frames' times are then from the file's
/// start, which the timeline does not hold (made to start at the first
/// frame, a DVD title's lost its last frame).
fn bounded_trim(tl: &Timeline, range: FrameRange) -> String {
    let count = format!("trim=end_frame={}", range.count);
    let last = range.start + range.count;
    let (Some(end), Some(next)) = (last.checked_sub(1).and_then(|l| tl.pts(l)), tl.pts(last)) else { return count };
    // (Halfway to the next frame: no rounding of a time decides.)
    let bound = (end + next) / 2.0;
    // (Two trims: one trim keeps a frame that either bound keeps.)
    match seek_point(tl, range.start) {
        Some(t) => format!("{count},trim=end={:.6}", bound - t),
        None => count,
    }
}

/// Output options that take exactly `count` frames of the first input's
/// first video stream (after [`seek_input`]).
pub fn frames_output(args: &mut FfmpegArgs, count: usize) {
    args.extend(["-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v"]).arg(count.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl(frames: usize, fps: f64) -> Timeline {
        Timeline::new((0..frames).map(|i| i as f64 / fps).collect(), vec![], vec![])
    }

    fn check_cover(segs: &[Segment], n: usize) {
        assert_eq!(segs[0].start, 0);
        assert_eq!(segs.last().unwrap().end, n);
        for w in segs.windows(2) {
            assert_eq!(w[0].end, w[1].start, "segments must tile the frames");
        }
        assert!(segs.iter().all(|s| s.frames() > 0));
    }

    #[test]
    fn fixed_length_without_cuts() {
        let t = tl(1500, 25.0); // 60 s
        let s = plan_segments(&t, &[], 15.0);
        check_cover(&s, 1500);
        assert_eq!(s.iter().map(|s| s.frames()).collect::<Vec<_>>(), vec![375, 375, 375, 375]);
    }

    #[test]
    fn starts_at_nearby_scene_cuts() {
        let t = tl(1500, 25.0);
        let s = plan_segments(&t, &[13.0, 31.2, 44.0], 15.0);
        check_cover(&s, 1500);
        assert_eq!(s[1].start, 325); // 13.0 s
        assert_eq!(s[2].start, 780); // 31.2 s (13 + 15 = 28; 31.2 is within 5 s)
    }

    #[test]
    fn far_cuts_are_ignored_and_short_tails_merged() {
        let t = tl(1000, 25.0); // 40 s
        let s = plan_segments(&t, &[2.0], 15.0);
        check_cover(&s, 1000);
        // 0–15, 15–40 (the 10 s tail would be short: merged into 15–40? no: 30–40 is 10 s >= 7.5)
        assert_eq!(s.len(), 3);
        let t = tl(900, 25.0); // 36 s: tail 30–36 is 6 s < 7.5 → merged
        let s = plan_segments(&t, &[], 15.0);
        check_cover(&s, 900);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].frames(), 525);
    }

    #[test]
    fn scene_segments_follow_the_cuts_within_their_bounds() {
        let t = tl(1500, 25.0); // 60 s
        // Cuts at 1 s (too early: the first scene would be 1 s), 6, 8 (a
        // 2 s scene: joins the next), 12, and a 48 s scene to the end.
        let s = plan_scene_segments(&t, &[12.0, 1.0, 6.0, 8.0], 4.0, 15.0);
        check_cover(&s, 1500);
        let starts: Vec<f64> = s.iter().map(|s| s.start as f64 / 25.0).collect();
        assert_eq!(starts, vec![0.0, 6.0, 12.0, 24.0, 36.0, 48.0]);
        assert!(s.iter().all(|s| s.frames() as f64 / 25.0 <= 15.0 + 1e-9 && s.frames() as f64 / 25.0 >= 4.0));
        // No cuts: equal parts of at most `max`.
        let s = plan_scene_segments(&t, &[], 4.0, 15.0);
        assert_eq!(s.iter().map(|s| s.frames()).collect::<Vec<_>>(), vec![375, 375, 375, 375]);
        // A cut too near the end is not taken; a short file is one segment.
        let s = plan_scene_segments(&t, &[58.0], 4.0, 15.0);
        check_cover(&s, 1500);
        assert!(s.last().unwrap().frames() >= 100);
        assert_eq!(plan_scene_segments(&tl(10, 25.0), &[0.2], 4.0, 15.0).len(), 1);
    }

    #[test]
    fn short_and_vfr_timelines() {
        let s = plan_segments(&tl(10, 25.0), &[], 15.0);
        assert_eq!(s, vec![Segment { index: 0, start: 0, end: 10 }]);
        // Variable frame rate: 24 fps then 60 fps.
        let mut pts: Vec<f64> = (0..240).map(|i| i as f64 / 24.0).collect();
        pts.extend((0..1200).map(|i| 10.0 + i as f64 / 60.0));
        let t = Timeline::new(pts, vec![], vec![]);
        let s = plan_segments(&t, &[], 5.0);
        check_cover(&s, 1440);
    }

    #[test]
    fn soft_telecine_frames_last_a_film_frame_on_average() {
        // 50 and 33.4 ms in turn (3 and 2 fields of 29.97 fps video).
        let pts: Vec<f64> = (0..240).map(|i| (i / 2) as f64 * 0.0834 + if i % 2 == 1 { 0.05 } else { 0.0 }).collect();
        let t = Timeline::new(pts, vec![], vec![]);
        assert!((t.frame_duration() - 0.0417).abs() < 1e-3, "{}", t.frame_duration());
        assert!((tl(10, 25.0).frame_duration() - 0.04).abs() < 1e-9);
        assert!((tl(2, 25.0).frame_duration() - 0.04).abs() < 1e-9);
    }

    #[test]
    fn nearest_frame() {
        let t = tl(100, 25.0);
        assert_eq!(t.index_near(0.0), 0);
        assert_eq!(t.index_near(0.05), 1);
        assert_eq!(t.index_near(0.061), 2);
        assert_eq!(t.index_near(99.0), 99);
        assert!((t.frame_duration() - 0.04).abs() < 1e-9);
    }

    #[test]
    fn segments_that_start_at_a_cut() {
        let t = tl(250, 25.0);
        let segs = plan_segments(&t, &[4.0], 3.0);
        let at = starts_at_cut(&t, &[4.0], &segs);
        assert_eq!(at.len(), segs.len());
        for (s, a) in segs.iter().zip(&at) {
            assert_eq!(*a, s.start == 100, "{s:?}");
        }
        assert!(at.iter().any(|a| *a), "the cut at 4 s starts a segment: {segs:?}");
        assert!(!starts_at_cut(&t, &[0.0], &segs)[0], "the first segment starts no cut");
    }

    #[test]
    fn decimated_frames_and_their_timeline() {
        assert_eq!(output_frames(337, Some(5)), 270, "a partial last cycle keeps its frames");
        assert_eq!(output_frames(335, Some(5)), 268);
        assert_eq!(output_frames(336, None), 336);
        let src = tl(300, 30000.0 / 1001.0);
        let out = output_timeline(&src, Some(5));
        assert_eq!(out.frames(), 240);
        assert!((out.frame_duration() - 1001.0 / 24000.0).abs() < 1e-9);
        assert_eq!(output_timeline(&src, None), src);
    }

    #[test]
    fn decimated_ranges_open_a_cycle_early() {
        let src = tl(3000, 30000.0 / 1001.0);
        let open = |start, count, cycle| {
            let mut a = FfmpegArgs::default();
            let chain = open_frames(&mut a, Path::new("in.mkv"), &src, FrameRange { start, count }, Some("f"), cycle);
            let args: Vec<String> = a.args().iter().map(|s| s.to_string_lossy().into_owned()).collect();
            (args, chain)
        };
        let (args, chain) = open(0, 100, Some(5));
        assert!(!args.contains(&"-ss".to_string()), "{args:?}");
        assert_eq!(chain, "f,trim=start_frame=0:end_frame=100,setpts=PTS-STARTPTS");
        // Output frame 401 is in cycle 100; the decode starts at cycle 99's
        // first source frame (495), whose first output frame is 396.
        let (args, chain) = open(401, 40, Some(5));
        let ss: f64 = args[args.iter().position(|a| a == "-ss").unwrap() + 1].parse().unwrap();
        assert_eq!(src.index_near(ss + src.frame_duration() / 2.0), 495);
        assert_eq!(chain, "f,trim=start_frame=5:end_frame=45,setpts=PTS-STARTPTS");
        // One to one: 40 frames, and none at or past the 41st's time (40
        // frames from the seek, halfway before the first).
        let (_, chain) = open(401, 40, None);
        assert_eq!(chain, "trim=end_frame=40,trim=end=1.334667,f");
        let (_, chain) = open(0, 40, None);
        assert_eq!(chain, "trim=end_frame=40,f", "unseeked");
        let (_, chain) = open(2990, 10, None);
        assert_eq!(chain, "trim=end_frame=10,f", "the film's last frames");
    }
}
