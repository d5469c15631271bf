//! The HEVC side: Annex B NAL units, their SEI messages, and each
//! picture's HDR10+ payload in presentation order.
use super::HDR10PLUS_T35;

/// Splits an Annex B byte stream into NAL units (start codes removed).
/// Incremental: feed bytes with [`AnnexB::push`], take the units it found.
/// Each byte is looked at once: a UHD picture's slice can be megabytes,
/// read from a pipe 16–64 KiB at a time.
#[derive(Debug, Default)]
pub struct AnnexB {
    buf: Vec<u8>,
    /// The start codes found in `buf` so far (see [`start_codes`]).
    starts: Vec<(usize, usize)>,
    /// Where the search for start codes goes on.
    scanned: usize,
}

impl AnnexB {
    /// Adds `bytes`; returns every NAL unit now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        self.scanned = scan_start_codes(&self.buf, self.scanned, &mut self.starts);
        if self.starts.len() < 2 {
            return vec![];
        }
        let units = self.starts.windows(2).map(|w| trim_zeros(&self.buf[w[0].1..w[1].0]).to_vec()).collect();
        let last = self.starts[self.starts.len() - 1].0;
        self.buf.drain(..last);
        self.starts = vec![(0, 3)];
        self.scanned -= last;
        units
    }

    /// The last unit, once the stream ended.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let (_, from) = *self.starts.first()?;
        Some(trim_zeros(&self.buf[from..]).to_vec()).filter(|u| !u.is_empty())
    }
}

/// (start code position, first byte after it) of every 00 00 01.
#[cfg(test)]
fn start_codes(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    scan_start_codes(b, 0, &mut out);
    out
}

/// Adds to `out` the start codes of `b` from `from` on; returns where a
/// later search goes on (the bytes after it could begin a start code).
fn scan_start_codes(b: &[u8], from: usize, out: &mut Vec<(usize, usize)>) -> usize {
    let mut i = from;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            out.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    i
}

/// A unit without the zero bytes a four-byte start code leaves behind it.
fn trim_zeros(u: &[u8]) -> &[u8] {
    let end = u.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    &u[..end]
}

/// The payload of a NAL unit without its emulation prevention bytes.
pub fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        zeros = if x == 0 { zeros + 1 } else { 0 };
        out.push(x);
    }
    out
}

/// The HEVC NAL unit type.
fn nal_type(unit: &[u8]) -> u8 {
    unit.first().map_or(0xff, |b| (b >> 1) & 0x3f)
}

/// The HDR10+ T.35 payload of an HEVC prefix SEI unit, if it holds one.
pub fn hdr10plus_in_sei(unit: &[u8]) -> Option<Vec<u8>> {
    if nal_type(unit) != 39 {
        return None;
    }
    let rbsp = unescape(unit.get(2..)?);
    let mut i = 0;
    while i < rbsp.len() && rbsp[i] != 0x80 {
        let mut read = || {
            let mut v = 0usize;
            while *rbsp.get(i)? == 0xff {
                v += 255;
                i += 1;
            }
            v += usize::from(*rbsp.get(i)?);
            i += 1;
            Some(v)
        };
        let (kind, size) = (read()?, read()?);
        let payload = rbsp.get(i..i + size)?;
        if kind == 4 && payload.starts_with(&HDR10PLUS_T35) {
            return Some(payload.to_vec());
        }
        i += size;
    }
    None
}

/// Follows an HEVC stream's NAL units in decode order: each picture gets
/// the HDR10+ payload of the prefix SEI before its first slice.
#[derive(Debug, Default)]
pub struct Pictures {
    pending: Option<Vec<u8>>,
    /// Per picture, in decode order.
    pub payloads: Vec<Option<Vec<u8>>>,
}

impl Pictures {
    pub fn take(&mut self, unit: &[u8]) {
        match nal_type(unit) {
            39 => {
                if let Some(p) = hdr10plus_in_sei(unit) {
                    self.pending = Some(p);
                }
            }
            // A slice (VCL unit) that starts a picture.
            t if t < 32 && unit.get(2).is_some_and(|b| b & 0x80 != 0) => self.payloads.push(self.pending.take()),
            _ => {}
        }
    }
}

/// `by_decode` put in presentation order, `pts` being each one's
/// presentation time in decode order.
pub fn presentation_order<T: Clone>(by_decode: &[T], pts: &[f64]) -> Vec<T> {
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by(|a, b| pts[*a].total_cmp(&pts[*b]).then(a.cmp(b)));
    order.into_iter().map(|i| by_decode[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sei_with(payload: &[u8]) -> Vec<u8> {
        // prefix SEI header (type 39), payload type 4, size, payload, trailing.
        let mut u = vec![39 << 1, 1, 4, payload.len() as u8];
        u.extend_from_slice(payload);
        u.push(0x80);
        u
    }

    #[test]
    fn annex_b_units_come_out_whole_however_the_bytes_arrive() {
        let stream = [0, 0, 0, 1, 0x40, 1, 0xaa, 0, 0, 1, 0x42, 1, 0xbb, 0xcc, 0, 0, 0, 1, 0x26, 1, 0x80];
        for cut in 1..stream.len() {
            let mut a = AnnexB::default();
            let mut units = a.push(&stream[..cut]);
            units.extend(a.push(&stream[cut..]));
            units.extend(a.finish());
            assert_eq!(
                units,
                vec![vec![0x40, 1, 0xaa], vec![0x42, 1, 0xbb, 0xcc], vec![0x26, 1, 0x80]],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn emulation_prevention_is_undone() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 5]), vec![0, 0, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn each_picture_gets_the_sei_before_it_in_presentation_order() {
        let t35 = |n: u8| [&HDR10PLUS_T35[..], &[1, n]].concat();
        let mut p = Pictures::default();
        for n in 0..3u8 {
            p.take(&sei_with(&t35(n)));
            p.take(&[1 << 1, 1, 0x80]); // a slice starting a picture
            p.take(&[1 << 1, 1, 0x00]); // a further slice of it
        }
        p.take(&[1 << 1, 1, 0x80]); // a picture without metadata
        let got: Vec<Option<u8>> = p.payloads.iter().map(|x| x.as_ref().map(|v| v[7])).collect();
        assert_eq!(got, [Some(0), Some(1), Some(2), None]);
        // Decoded I P B B: shown I B B P.
        assert_eq!(presentation_order(&['I', 'P', 'B', 'b'], &[0.0, 0.125, 0.042, 0.083]), ['I', 'B', 'b', 'P']);
        let other = sei_with(&[0xB5, 0x00, 0x3B, 0x00, 0x01, 0x04, 9]);
        assert_eq!(hdr10plus_in_sei(&other), None, "another provider's T.35");
    }

    #[test]
    fn annex_b_start_codes_are_each_looked_at_once() {
        // Byte by byte, a long unit between two short ones.
        let mut stream = vec![0, 0, 1, 0x40, 1];
        stream.extend([0, 0, 0, 1, 0x26, 1]);
        stream.extend((0..100_000u32).map(|i| (i % 251) as u8 | 0x80));
        stream.extend([0, 0, 1, 0x42, 1, 7]);
        let mut a = AnnexB::default();
        let mut units: Vec<Vec<u8>> = stream.chunks(1).flat_map(|b| a.push(b)).collect();
        units.extend(a.finish());
        assert_eq!(units.len(), 3);
        assert_eq!((units[0].clone(), units[1].len(), units[2].clone()), (vec![0x40, 1], 100_002, vec![0x42, 1, 7]));
        assert_eq!(start_codes(&stream).len(), 3);
    }
}
