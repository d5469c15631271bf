//! The output guard: an encode whose output would be larger than
//! `max_output_ratio` of its rip stops as soon as that is known (the
//! standard path from ffmpeg's running size against its progress, the
//! chunked path from its finished segments), and a finished output over it
//! is never accepted.

use crate::error::Error;
use std::path::Path;

/// The projection is trusted once this share of the film is encoded.
pub const EARLIEST: f64 = 0.2;

/// The largest output a rip may have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeGuard {
    pub source_bytes: u64,
    /// Output ÷ source at most; 0: no limit.
    pub ratio: f64,
    /// What the output holds besides the video (the audio, estimated from
    /// its bitrates).
    pub other_bytes: u64,
}

impl SizeGuard {
    /// No limit.
    pub fn off() -> SizeGuard {
        SizeGuard { source_bytes: 0, ratio: 0.0, other_bytes: 0 }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> Option<u64> {
        (self.ratio > 0.0).then_some((self.source_bytes as f64 * self.ratio) as u64)
    }

    /// Whether a video projected at `projected` bytes once `fraction` of
    /// the film is encoded puts the output surely over the limit: from
    /// [`EARLIEST`] with 15% to spare (a film's end, its credits, is often
    /// cheaper than its start), from half way with 5%.
    pub fn over(&self, projected: u64, fraction: f64) -> bool {
        let Some(limit) = self.limit() else { return false };
        let spare = match fraction {
            f if f < EARLIEST => return false,
            f if f < 0.5 => 1.15,
            _ => 1.05,
        };
        (projected + self.other_bytes) as f64 > limit as f64 * spare
    }

    /// The failure of `input`'s encode, its video projected at `bytes`
    /// with `fraction` of the film encoded: the output those bytes and the
    /// rest make, as [`SizeGuard::over`] judged it (at the end of the video
    /// too, before the audio is made).
    pub fn error(&self, input: &Path, bytes: u64, fraction: f64) -> Error {
        self.too_large(input, bytes + self.other_bytes, fraction)
    }

    /// The failure of `input`'s finished output of `bytes`.
    pub fn finished_error(&self, input: &Path, bytes: u64) -> Error {
        self.too_large(input, bytes, 1.0)
    }

    fn too_large(&self, input: &Path, output_bytes: u64, fraction: f64) -> Error {
        Error::OutputTooLarge {
            path: input.to_path_buf(),
            output_bytes,
            source_bytes: self.source_bytes,
            limit: self.ratio,
            at_percent: (fraction * 100.0).min(100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sure_excess_stops_an_encode() {
        let g = SizeGuard { source_bytes: 1000, ratio: 1.0, other_bytes: 100 };
        assert_eq!(g.limit(), Some(1000));
        assert!(!g.over(5000, 0.1), "too early to tell");
        assert!(!g.over(1000, 0.3), "1100 is within 15% of 1000");
        assert!(g.over(1100, 0.3));
        assert!(g.over(1000, 0.6), "1100 is over 1050 half way on");
        assert!(!SizeGuard::off().over(u64::MAX / 2, 1.0));
        let e = g.error(Path::new("/r/film.mkv"), 1200, 0.3).to_string();
        assert!(e.contains("1.30") && e.contains("max_output_ratio 1") && e.contains("30%"), "{e}");
        // At the end of the video the audio still counts (it is what made
        // the output too large), as it did in the judgement.
        assert!(g.over(1000, 1.0));
        let e = g.error(Path::new("/r/film.mkv"), 1000, 1.0).to_string();
        assert!(e.contains("1.10"), "{e}");
        let e = g.finished_error(Path::new("/r/film.mkv"), 1020).to_string();
        assert!(e.contains("1.02"), "{e}");
    }
}
