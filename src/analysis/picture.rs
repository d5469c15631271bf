//! The film's picture: which stream it is, its size as decoded and as
//! shown (a display matrix's quarter turn, a container's pixel size, a
//! size that changes after an opening), and its sample aspect ratio.

use super::{Analyzer, ratio};
use crate::error::Result;
use crate::matroska::structure::Structure;
use crate::tools::ffprobe::{self, Probe};

/// The picture size in a `showinfo` line (`… s:720x440 …`).
fn showinfo_size(line: &str) -> Option<(u32, u32)> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let (w, h) = line.split(" s:").nth(1)?.split_whitespace().next()?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The picture size the container gives the video track (mkvmerge's
/// `pixel_dimensions`), which its display size is said of.
pub(super) fn container_pictures(structure: &Structure) -> Option<(u32, u32)> {
    let video = structure.id.tracks.iter().find(|t| t.kind == crate::tools::mkvtoolnix::TrackKind::Video)?;
    let dims = video.properties.get("pixel_dimensions")?.as_str()?;
    let (w, h) = dims.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The sample aspect ratio (`n:d`) that shows `size` pictures in the
/// shape `first` pictures of sample aspect `first_sar` (1:1 when none) are
/// shown in.
fn same_shape(first: (u32, u32), first_sar: Option<&str>, size: (u32, u32)) -> Option<String> {
    let (sn, sd) = first_sar.and_then(ratio).unwrap_or((1, 1));
    let num = u64::from(first.0) * u64::from(sn) * u64::from(size.1);
    let den = u64::from(first.1) * u64::from(sd) * u64::from(size.0);
    let g = gcd(num, den).max(1);
    (num > 0 && den > 0).then(|| format!("{}:{}", num / g, den / g))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Whether the stream's display matrix turns its pictures by a quarter
/// (90 or 270 degrees).
fn quarter_turned(v: &ffprobe::Stream) -> bool {
    let rotation = v.side_data_list.iter().find(|s| s.side_data_type == "Display Matrix");
    rotation.and_then(|s| s.number("rotation")).is_some_and(|r| (r.abs().round() as i64) % 180 == 90)
}

/// The sample aspect ratio in a showinfo line (`sar:8/9`), as ffprobe
/// writes one (`8:9`).
fn showinfo_sar(line: &str) -> Option<String> {
    let sar = line.split(" sar:").nth(1)?.split_whitespace().next()?;
    let (n, d) = sar.split_once('/')?;
    Some(format!("{}:{}", n.parse::<u32>().ok()?, d.parse::<u32>().ok()?))
}

/// ffmpeg turns a picture its display matrix turns a quarter (a phone's
/// portrait video) upright as it decodes: that is the picture encoded.
/// Returns its size upright, and whether it was turned.
pub(super) fn upright(v: &ffprobe::Stream, width: u32, height: u32, warnings: &mut Vec<String>) -> (u32, u32, bool) {
    if !quarter_turned(v) {
        return (width, height, false);
    }
    warnings.push(format!(
        "the picture is turned a quarter for display (its display matrix): encoded upright, {height}x{width}"
    ));
    (height, width, true)
}

/// Where in a film of `end` seconds analysis looks again at what its first
/// frames may not show (an audio layout, closed captions that start after
/// a logo): a tenth, half and nine tenths of the way.
pub(super) fn later_looks(end: f64) -> [f64; 3] {
    [0.1, 0.5, 0.9].map(|f| f * end)
}

impl Analyzer<'_> {
    /// The film's video stream (the first that is not cover art) and its
    /// size; the file must have a duration.
    pub(super) fn film<'p>(
        &self,
        probe: &'p Probe,
        warnings: &mut Vec<String>,
    ) -> Result<(&'p ffprobe::Stream, u32, u32)> {
        let videos: Vec<_> = probe.video_streams().collect();
        let Some(v) = videos.first().copied() else {
            return Err(self.bad("has no video stream".into()));
        };
        if videos.len() > 1 {
            let others = videos.len() - 1;
            warnings.push(format!(
                "{} video streams; only the first is encoded, the other {others} are left out",
                videos.len()
            ));
        }
        let (Some(width), Some(height)) = (v.width, v.height) else {
            return Err(self.bad("its video stream has no dimensions (corrupt or unsupported codec)".into()));
        };
        if !probe.duration().is_some_and(|d| d > 0.0) {
            return Err(self.bad("has no duration (truncated or corrupt)".into()));
        }
        Ok((v, width, height))
    }

    /// The size of the pictures ffmpeg decodes from a stream of
    /// `width`×`height`: less the container's crop (Matroska PixelCrop,
    /// `mkvmerge --cropping`), which ffmpeg applies and ffprobe does not
    /// report. Bars and crops measured on the uncropped size went wrong
    /// (bars misjudged, a planned crop ffmpeg clamped to nothing).
    ///
    /// With such a crop, also the sample aspect ratio the decoded pictures
    /// carry: the container's display size is the cropped picture's, so
    /// ffprobe's ratio (of the whole picture) is not theirs.
    pub(super) fn shown_size(&self, width: u32, height: u32, warnings: &mut Vec<String>) -> (u32, u32, Option<String>) {
        match self.picture_at(None) {
            Some(((w, h), sar)) if (w, h) != (width, height) && w <= width && h <= height => {
                warnings.push(format!(
                    "the container crops the picture to {w}x{h} of {width}x{height} (PixelCrop): that is what is encoded"
                ));
                (w, h, sar)
            }
            _ => (width, height, None),
        }
    }

    /// The size most of the film's pictures have, and whether it changes:
    /// ffprobe and the first picture give the opening's size, and a DVD
    /// title opening on a 352-wide cell before its 720-wide feature was
    /// encoded at half its width (and shown at half its width on screen),
    /// and validated. Pictures decoded at a tenth, half and nine tenths of
    /// the film (`end` seconds) vote with the first (`first`: its size and
    /// sample aspect ratio); a tie goes to the larger.
    pub(super) fn main_size(
        &self,
        first: (u32, u32, Option<String>),
        described: (u32, u32),
        end: f64,
        warnings: &mut Vec<String>,
    ) -> (u32, u32, Option<String>, bool) {
        if end <= 0.0 {
            return (first.0, first.1, first.2, false);
        }
        let looks: Vec<_> = later_looks(end).iter().filter_map(|t| self.picture_at(Some(*t))).collect();
        if looks.iter().all(|((w, h), _)| (*w, *h) == (first.0, first.1)) {
            return (first.0, first.1, first.2, false);
        }
        let mut seen = vec![((first.0, first.1), first.2.clone())];
        seen.extend(looks);
        let votes = |size: (u32, u32)| seen.iter().filter(|(s, _)| *s == size).count();
        let (size, _) = seen
            .iter()
            .max_by_key(|(s, _)| (votes(*s), u64::from(s.0) * u64::from(s.1)))
            .cloned()
            .expect("the first picture votes");
        // Shown in the shape the container gives its pictures (a DVD's
        // cells are all 4:3, or all 16:9): ffmpeg gives every picture the
        // container's ratio, which a remux made for the opening's size (the
        // feature came out twice as wide) and mkvmerge for the feature's.
        let sar = same_shape(described, first.2.as_deref(), size);
        let mut sizes: Vec<String> = Vec::new();
        for ((w, h), _) in &seen {
            let s = format!("{w}x{h}");
            if !sizes.contains(&s) {
                sizes.push(s);
            }
        }
        warnings.push(format!(
            "the picture changes size in the film ({}): every picture is encoded at {}x{}, the size most of it has",
            sizes.join(", "),
            size.0,
            size.1
        ));
        (size.0, size.1, sar, true)
    }

    /// The size and sample aspect ratio of the picture ffmpeg decodes `at`
    /// seconds into the film (the first without).
    pub(super) fn picture_at(&self, at: Option<f64>) -> Option<((u32, u32), Option<String>)> {
        let ffmpeg = self.probes.ffmpeg?;
        let mut a = crate::tools::ffmpeg::FfmpegArgs::default();
        // (No progress lines: written from another thread, they can land
        // inside the lines read here.)
        a.extend(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
        if let Some(t) = at {
            a.arg("-ss").arg(format!("{t:.3}"));
        }
        a.input(self.input);
        a.extend(["-map", "0:v:0", "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-"]);
        let mut shown = None;
        let read =
            crate::tools::process::run_lines(&mut a.command(ffmpeg), "decoded picture size", self.cancel, |line| {
                if let crate::tools::process::Line::Err(l) = line
                    && shown.is_none()
                {
                    shown = showinfo_size(l).map(|size| (size, showinfo_sar(l).filter(|s| s != "0:1")));
                }
            });
        read.ok().and(shown)
    }
}

#[cfg(test)]
mod tests {
    use super::{same_shape, showinfo_sar, showinfo_size};

    #[test]
    fn showinfo_gives_the_decoded_pictures_sample_aspect_ratio() {
        let line = "[Parsed_showinfo_0 @ 0x7f] n:   0 pts:      0 fmt:yuv420p cl:left sar:8/9 s:640x320 i:P iskey:1";
        assert_eq!((showinfo_size(line), showinfo_sar(line).as_deref()), (Some((640, 320)), Some("8:9")));
        assert_eq!(showinfo_sar("n: 0 s:640x320"), None);
    }

    #[test]
    fn a_size_change_keeps_the_openings_shape_on_screen() {
        // A remux's container ratio was for the 176-wide opening (4:3).
        assert_eq!(same_shape((176, 240), Some("20:11"), (352, 240)).as_deref(), Some("10:11"));
        assert_eq!(same_shape((720, 480), Some("8:9"), (352, 480)).as_deref(), Some("20:11"));
        assert_eq!(same_shape((320, 240), None, (320, 240)).as_deref(), Some("1:1"));
    }
}
