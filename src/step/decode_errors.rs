//! The decoding errors an ffmpeg reports, counted by the stream and
//! decoder they come from (a damaged source, not drapto's failure).

/// Decoders of disc audio, as ffmpeg names them in its lines.
const AUDIO_DECODERS: &[&str] = &[
    "ac3",
    "eac3",
    "dca",
    "truehd",
    "mlp",
    "flac",
    "aac",
    "aac_latm",
    "mp2",
    "mp2float",
    "mp3",
    "mp3float",
    "opus",
    "vorbis",
    "alac",
    "pcm_bluray",
    "pcm_dvd",
    "s302m",
];
/// Lines a decoder writes after a seek into an open GOP, of pictures that
/// are not shown.
const SEEK_NOISE: &[&str] = &[
    "mmco: unref short failure",
    "co located pocs unavailable",
    "missing reference picture",
    "reference picture missing",
];
/// Decoders of pictures: a cover attached to the rip, which ffmpeg opens
/// as a stream of its own (an undecodable one is no damage of the film's).
const IMAGE_DECODERS: &[&str] = &["mjpeg", "png", "bmp", "webp", "gif", "tiff", "jpegls", "jpeg2000"];
/// Decoders of disc video.
const VIDEO_DECODERS: &[&str] =
    &["h264", "hevc", "mpeg2video", "mpeg1video", "vc1", "wmv3", "av1", "libdav1d", "vp9", "vp8", "mpeg4", "prores"];

/// The decoding errors an ffmpeg reported (at `-loglevel error`), by the
/// kind of stream and decoder they came from.
#[derive(Default)]
pub(crate) struct DecodeErrors {
    /// ("video (h264)", "audio (ac3)", or "" where the line names no
    /// decoder) and how many.
    by_stream: Vec<(String, usize)>,
}

impl DecodeErrors {
    /// Counts `line` where it is a decoder's complaint about damaged data:
    /// a line of a known decoder (`[ac3 @ 0x…]`, `[aist#0:1/ac3 @ 0x…]`),
    /// or one of ffmpeg's about decoding.
    pub(crate) fn count(&mut self, line: &str) {
        let Some(key) = decoding_error(line) else { return };
        match self.by_stream.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.by_stream.push((key, 1)),
        }
    }

    /// How many were counted.
    pub(crate) fn total(&self) -> usize {
        self.by_stream.iter().map(|(_, n)| n).sum()
    }

    /// "N decoding error(s) in the source (N in its video (h264), …)", or
    /// none.
    pub(crate) fn said(&self) -> Option<String> {
        let total = self.total();
        let named: Vec<String> =
            self.by_stream.iter().filter(|(k, _)| !k.is_empty()).map(|(k, n)| format!("{n} in its {k}")).collect();
        let detail = if named.is_empty() { String::new() } else { format!(" ({})", named.join(", ")) };
        (total > 0).then(|| format!("{total} decoding error(s) in the source{detail}"))
    }
}

/// Whether `line` of ffmpeg's is a decoder's complaint about damaged data
/// (see [`DecodeErrors::count`]).
pub(crate) fn is_decoding_error(line: &str) -> bool {
    decoding_error(line).is_some()
}

/// Where `line` is a decoder's complaint about damaged data, the stream
/// it is about ("video (h264)", "audio (ac3)", or "" where the line names
/// no decoder).
fn decoding_error(line: &str) -> Option<String> {
    let from = decoder_of(line);
    let l = line.to_ascii_lowercase();
    if image_decoder(line) {
        return None;
    }
    // What H.264's decoder says of an open GOP's leading pictures after a
    // seek (each segment of the chunked path starts with one): no damage.
    if SEEK_NOISE.iter().any(|n| l.contains(n)) {
        return None;
    }
    let about_decoding =
        ["error while decoding", "invalid data", "corrupt", "concealing", "decode_slice"].iter().any(|p| l.contains(p));
    if from.is_none() && !about_decoding {
        return None;
    }
    Some(from.map(|(audio, name)| format!("{} ({name})", if audio { "audio" } else { "video" })).unwrap_or_default())
}

/// Whether a line of ffmpeg's comes from a decoder of pictures
/// (`[mjpeg @ 0x…]`, `[vist#0:3/png @ 0x…]`).
fn image_decoder(line: &str) -> bool {
    let Some(tag) = tag(line) else { return false };
    let name = tag.rsplit_once('/').map_or(tag, |(_, name)| name);
    IMAGE_DECODERS.contains(&name)
}

/// What a line of ffmpeg's names as its source: `ac3` in `[ac3 @ 0x…]`,
/// `aist#0:1/ac3` in `[aist#0:1/ac3 @ 0x…]`.
fn tag(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.split(" @ ").next()
}

/// The decoder a line of ffmpeg's comes from, and whether it decodes
/// audio: `[ac3 @ 0x…]`, or ffmpeg 7's `[aist#0:1/ac3 @ 0x…]` and
/// `[vist#0:0/h264 @ 0x…]`.
fn decoder_of(line: &str) -> Option<(bool, &str)> {
    let tag = tag(line)?;
    match tag.split_once('/') {
        Some((stream, name)) if stream.starts_with("aist#") => Some((true, name)),
        Some((stream, name)) if stream.starts_with("vist#") => Some((false, name)),
        Some(_) => None,
        None if AUDIO_DECODERS.contains(&tag) => Some((true, tag)),
        None if VIDEO_DECODERS.contains(&tag) => Some((false, tag)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_are_counted_by_the_stream_they_come_from() {
        let mut e = DecodeErrors::default();
        assert_eq!(e.said(), None);
        for line in [
            "[h264 @ 0x55d1] error while decoding MB 3 7, bytestream -5",
            "[h264 @ 0x55d1] mmco: unref short failure",
            "[ac3 @ 0x5612] error decoding the audio block",
            "[ac3 @ 0x5612] exponent 25 is out-of-range",
            "[aist#0:2/flac @ 0x5613] [dec:flac @ 0x5614] Error submitting packet to decoder: Invalid data found",
            "[libsvtav1 @ 0x5615] something the encoder says",
            "[mjpeg @ 0x5617] unable to decode APP fields: Invalid data found when processing input",
            "[vist#0:3/png @ 0x5618] Invalid data found when processing input",
            "[matroska @ 0x5616] a muxer's complaint",
            "Error while decoding stream #0:1: Invalid data found when processing input",
        ] {
            e.count(line);
        }
        assert_eq!(
            e.said().unwrap(),
            "5 decoding error(s) in the source (1 in its video (h264), 2 in its audio (ac3), 1 in its audio (flac))"
        );
    }
}
