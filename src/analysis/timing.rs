//! The film's timing: whether its frames come evenly (a frame rate) or
//! not (variable), how many frames it holds, and whether it runs at the
//! film rate throughout.

use super::interlace::{self, InterlaceVerdict};
use super::{Analyzer, extent};
use crate::tools::ffprobe::{self, Probe, StreamKind};

/// The spacing of `gaps` where nearly all are alike (95% within 3% of their
/// median, or a millisecond and a half: Matroska's timestamps are whole
/// milliseconds, 33 and 34 ms in turn at 29.97 fps), else `None` (and
/// for fewer than 10).
fn even(gaps: &[f64]) -> Option<f64> {
    let mut sorted = gaps.to_vec();
    sorted.sort_by(f64::total_cmp);
    let gap = *sorted.get(sorted.len() / 2).filter(|_| sorted.len() >= 10)?;
    let alike = sorted.iter().filter(|g| (*g - gap).abs() <= (0.03 * gap).max(0.0015)).count();
    (alike as f64 >= 0.95 * sorted.len() as f64).then_some(gap)
}

/// Whether `frames` at `rate` fill `length` seconds, within what the
/// frames check allows (1%, or 2 frames): a count that does not is
/// another file's (a tag copied by a cut, even of under a second), or the
/// last picture is held for seconds (then counted anew too).
fn frames_fit(frames: u64, rate: Option<f64>, length: f64) -> bool {
    let n = frames as f64;
    rate.filter(|r| *r > 0.0).is_some_and(|r| (n - length * r).abs() <= (n * 0.01).max(2.0))
}

impl Analyzer<'_> {
    /// The film's frame rate checked against the spacing of its first
    /// packets: interlaced video muxed with a field's duration per frame
    /// (16.7 ms) claims twice its rate (59.94 for 29.97), and hard-telecined
    /// film went unrecognised (the cadence is only looked for at 29.97) and
    /// came out deinterlaced at 29.97 with a near-duplicate in every five.
    /// Such a claim is halved in `probe`, with a warning; returns the rate
    /// the filters are to be given (see [`VideoInfo::restamped_rate`]).
    ///
    /// Only a claim every frame of the film keeps is halved: the packets
    /// are evenly spaced at twice the claimed duration at its start, in its
    /// middle and near its end. A variable frame rate whose most common
    /// duration (the one mkvmerge claims) was half its opening's was
    /// halved: the standard path dropped every other frame of its faster
    /// part, validated, and the chunked path failed after the whole encode.
    pub(super) fn check_frame_rate(&self, probe: &mut Probe, warnings: &mut Vec<String>) -> Option<String> {
        let first = self.packet_gaps("%+#120", None);
        let gap = even(&first)?;
        let v = probe.streams.iter().find(|s| s.codec_type == StreamKind::Video && !s.is_attached_pic())?;
        let claimed = v.frame_rate()?;
        let alike = |g: f64| (claimed * g / 2.0 - 1.0).abs() <= 0.03;
        if !alike(gap) {
            return None;
        }
        // The whole video's frames at that spacing span its length, where
        // the container counts them.
        let start = v.start_time.unwrap_or(0.0);
        let length = v.duration.or_else(|| v.duration_tag()).or_else(|| Some(probe.duration()? - start));
        if let (Some(n), Some(length)) = (v.frame_count(), length) {
            if (n as f64 * gap / length - 1.0).abs() > 0.02 {
                return None;
            }
        }
        // And in its middle and near its end (windows with too few frames
        // to tell, a still or the end, say nothing).
        if let Some(length) = length.filter(|l| *l > 4.0) {
            for at in [start + length * 0.5, start + length - 2.0] {
                let gaps = self.packet_gaps(&format!("{at:.3}%{:.3}", at + 2.0), Some(at));
                if gaps.len() >= 10 && !even(&gaps).is_some_and(alike) {
                    return None;
                }
            }
        }
        let v = probe.streams.iter_mut().find(|s| s.codec_type == StreamKind::Video && !s.is_attached_pic())?;
        let halved = |r: Option<&str>| {
            let (n, d) = r?.split_once('/')?;
            Some(format!("{n}/{}", d.parse::<u64>().ok()? * 2))
        };
        let rate = halved(v.avg_frame_rate.as_deref()).unwrap_or_else(|| format!("{:.6}", claimed / 2.0));
        warnings.push(format!(
            "the container claims {claimed:.3} fps, but its frames are {:.1} ms apart (a field's duration given per frame): taken as {:.3} fps",
            gap * 1000.0,
            claimed / 2.0
        ));
        v.r_frame_rate = halved(v.r_frame_rate.as_deref()).or_else(|| Some(rate.clone()));
        v.avg_frame_rate = Some(rate.clone());
        Some(rate)
    }

    /// The gaps between the video's packets in `interval` (ffprobe's
    /// `-read_intervals`, positions on the video's clock), from `from` on
    /// where given (a seek lands on the keyframe before).
    pub(super) fn packet_gaps(&self, interval: &str, from: Option<f64>) -> Vec<f64> {
        let query = ffprobe::Query::packets("pts_time").stream("v:0").interval(interval.to_string());
        let Ok(text) = query.run(self.probes.ffprobe, self.input, "read packet times", self.cancel) else {
            return Vec::new();
        };
        let from = from.unwrap_or(f64::MIN);
        let mut pts: Vec<f64> = text
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .filter(|t: &f64| *t >= from - 1e-3)
            .collect();
        pts.sort_by(f64::total_cmp);
        pts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 1e-4).collect()
    }

    /// The rip's video frames, where validation needs them: inverse
    /// telecine's output is one frame in IVTC_CYCLE fewer than the rip's.
    /// Counted (a read of every packet) when the container does not say, or
    /// says a count its video's length belies (a statistics tag an ffmpeg
    /// cut copied: a right encode failed on every run).
    pub(super) fn frame_count(
        &self,
        v: &ffprobe::Stream,
        interlace: &InterlaceVerdict,
        extent: &extent::Extent,
        file_start: f64,
    ) -> Option<u64> {
        let length = extent.video_end - v.start_time.map_or(0.0, |s| s - file_start);
        let told = v.frame_count().filter(|&n| frames_fit(n, v.frame_rate(), length));
        told.or_else(|| {
            interlace.decimation_cycle()?;
            ffprobe::count_frames(self.probes.ffprobe, self.input, self.cancel).ok().map(|n| n as u64)
        })
    }

    /// Soft telecine to be evened out to film's rate, checked on the whole
    /// stream (its frames counted: a read of every packet, no decoding);
    /// see [`interlace::film_rate_throughout`].
    pub(super) fn film_rate_throughout(
        &self,
        verdict: InterlaceVerdict,
        v: &ffprobe::Stream,
        extent: &extent::Extent,
        file_start: f64,
    ) -> InterlaceVerdict {
        if verdict.treatment != interlace::Treatment::FilmTimestamps {
            return verdict;
        }
        let Ok(frames) = ffprobe::count_frames(self.probes.ffprobe, self.input, self.cancel) else { return verdict };
        let first = v.start_time.map_or(0.0, |s| s - file_start);
        interlace::film_rate_throughout(verdict, frames, extent.video_end - first)
    }
}

#[cfg(test)]
mod tests {
    use super::{even, frames_fit};

    #[test]
    fn evenly_spaced_frames_are_told_from_uneven_ones() {
        // Whole milliseconds at 29.97: 33 and 34 in turn are even.
        let ntsc: Vec<f64> = (0..40).map(|i| if i % 3 == 0 { 0.034 } else { 0.033 }).collect();
        assert_eq!(even(&ntsc), Some(0.033));
        // A variable rate: 40 ms and 20 ms.
        let vfr: Vec<f64> = (0..40).map(|i| if i < 25 { 0.040 } else { 0.020 }).collect();
        assert_eq!(even(&vfr), None);
        assert_eq!(even(&[0.04; 9]), None, "too few to tell");
    }

    #[test]
    fn a_frame_count_fits_its_length_as_the_frames_check_does() {
        let ntsc = Some(30000.0 / 1001.0);
        assert!(frames_fit(240, ntsc, 8.008));
        assert!(frames_fit(241, ntsc, 8.008) && frames_fit(238, ntsc, 8.008), "2 frames");
        // A tag an ffmpeg cut of under a second copied: 180 for 5.4 s.
        assert!(!frames_fit(180, ntsc, 5.4));
        assert!(!frames_fit(240, None, 8.008));
    }
}
