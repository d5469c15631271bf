//! The AV1 side: IVF frames read and written, and the ITU-T T.35 metadata
//! OBU put into (and read back from) a temporal unit.
use super::HDR10PLUS_T35;
use std::io::{Read, Seek, Write};

/// One IVF frame: a temporal unit and its timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfFrame {
    pub pts: i64,
    pub data: Vec<u8>,
}

/// How reading or writing an IVF stream failed.
#[derive(Debug)]
pub enum IvfError {
    Io(std::io::Error),
    /// Not an IVF stream, or a cut one.
    Format(String),
}

impl From<std::io::Error> for IvfError {
    fn from(e: std::io::Error) -> IvfError {
        IvfError::Io(e)
    }
}

/// An IVF stream read frame by frame (a film's video is gigabytes: it is
/// never held whole).
pub struct IvfReader<R> {
    r: R,
    /// Its header (32 bytes, or what the header says).
    pub header: Vec<u8>,
}

impl<R: Read> IvfReader<R> {
    /// Reads the header of the IVF stream `r`.
    pub fn new(mut r: R) -> Result<IvfReader<R>, IvfError> {
        let mut header = vec![0u8; 32];
        r.read_exact(&mut header).map_err(|_| IvfError::Format("not an IVF file".into()))?;
        if &header[..4] != b"DKIF" {
            return Err(IvfError::Format("not an IVF file".into()));
        }
        let len = usize::from(u16::from_le_bytes([header[6], header[7]]));
        if len > 32 {
            header.resize(len, 0);
            r.read_exact(&mut header[32..]).map_err(|_| IvfError::Format("a cut IVF header".into()))?;
        }
        Ok(IvfReader { r, header })
    }

    /// Milliseconds per tick of its timestamps (its header's time base:
    /// the denominator at bytes 16–19, the numerator at 20–23).
    pub fn ms_per_tick(&self) -> f64 {
        let le = |at: usize| {
            u32::from_le_bytes([self.header[at], self.header[at + 1], self.header[at + 2], self.header[at + 3]])
        };
        f64::from(le(20)) * 1000.0 / f64::from(le(16).max(1))
    }

    /// The next frame's (size, timestamp), `None` at the end; its data
    /// must be read ([`IvfReader::data`]) or skipped before the next.
    fn next_header(&mut self) -> Result<Option<(usize, i64)>, IvfError> {
        let mut h = [0u8; 12];
        let mut got = 0;
        while got < h.len() {
            match self.r.read(&mut h[got..])? {
                0 if got == 0 => return Ok(None),
                0 => return Err(IvfError::Format("an IVF frame header runs past the end".into())),
                n => got += n,
            }
        }
        let size = u32::from_le_bytes(h[..4].try_into().expect("4 bytes")) as usize;
        Ok(Some((size, i64::from_le_bytes(h[4..].try_into().expect("8 bytes")))))
    }

    fn data(&mut self, size: usize) -> Result<Vec<u8>, IvfError> {
        let mut data = vec![0u8; size];
        self.r.read_exact(&mut data).map_err(|_| IvfError::Format("an IVF frame runs past the end".into()))?;
        Ok(data)
    }

    /// The next frame, `None` at the end.
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>, IvfError> {
        let Some((size, pts)) = self.next_header()? else { return Ok(None) };
        Ok(Some(IvfFrame { pts, data: self.data(size)? }))
    }
}

impl<R: Read + Seek> IvfReader<R> {
    /// Every frame's timestamp, in stored (decode) order, the frames'
    /// data skipped.
    pub fn timestamps(mut self) -> Result<Vec<i64>, IvfError> {
        let mut pts = Vec::new();
        while let Some((size, t)) = self.next_header()? {
            self.r.seek_relative(size as i64)?;
            pts.push(t);
        }
        Ok(pts)
    }
}

/// Writes an IVF stream: `header` with its frame count set to `frames`,
/// then each frame.
pub fn write_ivf_header(w: &mut impl Write, header: &[u8], frames: usize) -> std::io::Result<()> {
    let mut h = header.to_vec();
    if h.len() >= 28 {
        h[24..28].copy_from_slice(&(frames as u32).to_le_bytes());
    }
    w.write_all(&h)
}

/// Writes one IVF frame.
pub fn write_ivf_frame(w: &mut impl Write, frame: &IvfFrame) -> std::io::Result<()> {
    w.write_all(&(frame.data.len() as u32).to_le_bytes())?;
    w.write_all(&frame.pts.to_le_bytes())?;
    w.write_all(&frame.data)
}

fn leb128(mut v: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, byte) in b.iter().enumerate().take(8) {
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The AV1 metadata OBU (ITU-T T.35) carrying `t35`.
pub fn metadata_obu(t35: &[u8]) -> Vec<u8> {
    let mut payload = vec![4u8]; // metadata_type: ITUT_T35
    payload.extend_from_slice(t35);
    payload.push(0x80); // trailing bits
    // obu_type 5 (OBU_METADATA), obu_has_size_field.
    let mut obu = vec![(5 << 3) | 0x02];
    obu.extend(leb128(payload.len()));
    obu.extend(payload);
    obu
}

/// The OBUs of a temporal unit: (type, start, end) each.
pub fn obus(tu: &[u8]) -> Result<Vec<(u8, usize, usize)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tu.len() {
        let header = tu[i];
        let kind = (header >> 3) & 0x0f;
        let mut j = i + 1 + usize::from(header & 0x04 != 0);
        let size = if header & 0x02 != 0 {
            let (v, n) = read_leb128(tu.get(j..).ok_or("a cut OBU")?).ok_or("a bad OBU size")?;
            j += n;
            v
        } else {
            tu.len() - j
        };
        let end = j + size;
        if end > tu.len() {
            return Err("an OBU runs past its temporal unit".into());
        }
        out.push((kind, i, end));
        i = end;
    }
    Ok(out)
}

/// `tu` with the metadata OBU of `t35` after its temporal delimiter and
/// sequence header, before its first frame.
pub fn with_metadata(tu: &[u8], t35: &[u8]) -> Result<Vec<u8>, String> {
    let at = obus(tu)?.into_iter().find(|(kind, _, _)| !matches!(kind, 1 | 2)).map_or(tu.len(), |(_, start, _)| start);
    let mut out = tu[..at].to_vec();
    out.extend(metadata_obu(t35));
    out.extend_from_slice(&tu[at..]);
    Ok(out)
}

/// The HDR10+ payload in a temporal unit, if it holds one.
pub fn metadata_in(tu: &[u8]) -> Option<Vec<u8>> {
    for (kind, start, end) in obus(tu).ok()? {
        if kind != 5 {
            continue;
        }
        let body = &tu[start..end];
        let header_len = 1 + usize::from(body[0] & 0x04 != 0);
        let (_, n) = read_leb128(&body[header_len..])?;
        let payload = &body[header_len + n..];
        if payload.first() == Some(&4) && payload[1..].starts_with(&HDR10PLUS_T35) {
            let t35 = &payload[1..];
            return Some(t35[..t35.len() - 1].to_vec());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metadata_obu_goes_before_the_frame_and_reads_back() {
        let td = [0x12, 0x00];
        let seq = [0x0a, 0x02, 0xaa, 0xbb];
        let frame = [0x32, 0x03, 1, 2, 3];
        let tu = [&td[..], &seq[..], &frame[..]].concat();
        let t35 = [&HDR10PLUS_T35[..], &[1, 2, 3]].concat();
        let out = with_metadata(&tu, &t35).unwrap();
        let kinds: Vec<u8> = obus(&out).unwrap().iter().map(|o| o.0).collect();
        assert_eq!(kinds, [2, 1, 5, 6], "TD, sequence header, metadata, frame");
        assert_eq!(metadata_in(&out), Some(t35.clone()));
        assert_eq!(metadata_in(&tu), None);
    }
}
