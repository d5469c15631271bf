//! HDR10+ carried: SVT-AV1 (through ffmpeg) drops the source's SMPTE ST
//! 2094-40 dynamic metadata, so drapto puts it back. Each source frame's
//! metadata is read from the HEVC bitstream (the ITU-T T.35 payload of its
//! prefix SEI, country 0xB5, provider 0x003C, application 4), put in
//! presentation order, and written into the AV1 temporal unit of the same
//! output frame as an ITU-T T.35 metadata OBU (the AOM HDR10+ AV1
//! mapping), before the mux. The metadata describes the whole picture
//! (processing window 0 is the picture, whatever its size), so a cropped
//! encode carries it unchanged; a source with more windows is not cropped
//! (see analysis).
//!
//! The bitstream work is plain byte handling, tested here: Annex B NAL units
//! and their SEI messages, IVF frames, AV1 OBUs.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::tools::Toolbox;
use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::Command;

/// The T.35 header of HDR10+: country (United States), provider (Samsung),
/// provider-oriented code, application identifier 4.
pub const HDR10PLUS_T35: [u8; 6] = [0xB5, 0x00, 0x3C, 0x00, 0x01, 0x04];

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

/// Copies the IVF stream `from` (its frames' timestamps `pts`, in stored
/// order) to `to` with each shown frame's payload of `payloads`
/// (presentation order) written into its temporal unit, one frame at a
/// time. Returns how many carry one.
pub fn carry(
    from: impl Read,
    to: &mut impl Write,
    pts: &[i64],
    payloads: &[Option<Vec<u8>>],
) -> Result<usize, IvfError> {
    if pts.len() != payloads.len() {
        return Err(IvfError::Format(format!(
            "the encode has {} frames, the source's HDR10+ track {}",
            pts.len(),
            payloads.len()
        )));
    }
    let mut rank: Vec<usize> = (0..pts.len()).collect();
    rank.sort_by_key(|i| (pts[*i], *i));
    let mut shown = vec![0; pts.len()];
    for (s, d) in rank.into_iter().enumerate() {
        shown[d] = s;
    }
    let mut reader = IvfReader::new(from)?;
    write_ivf_header(to, &reader.header, pts.len())?;
    let mut carried = 0;
    for place in shown {
        let mut frame =
            reader.next_frame()?.ok_or_else(|| IvfError::Format("the encode lost frames while read".into()))?;
        if let Some(p) = &payloads[place] {
            frame.data = with_metadata(&frame.data, p).map_err(IvfError::Format)?;
            carried += 1;
        }
        write_ivf_frame(to, &frame)?;
    }
    Ok(carried)
}

/// Every source frame's HDR10+ payload of `input`'s first video stream
/// (HEVC), in presentation order: its bitstream read once, without decoding.
pub fn source_payloads(tools: &Toolbox, input: &Path, cancel: &Cancel) -> Result<Vec<Option<Vec<u8>>>> {
    let query = crate::tools::ffprobe::Query::packets("pts_time,flags").stream("v:0");
    let packets: Vec<(f64, bool)> = query
        .run(&tools.ffprobe, input, "HDR10+ timestamps", cancel)
        .map_err(Error::process(input))?
        .lines()
        .filter_map(crate::tools::ffprobe::packet_line)
        .collect();
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"]).arg(crate::tools::path_arg(input));
    cmd.args(["-map", "0:v:0", "-c", "copy", "-bsf:v", "hevc_mp4toannexb", "-f", "hevc", "-"]);
    let (mut split, mut pictures) = (AnnexB::default(), Pictures::default());
    crate::tools::process::run_bytes(&mut cmd, "HDR10+ read", cancel, |bytes| {
        for unit in split.push(bytes) {
            pictures.take(&unit);
        }
    })
    .map_err(Error::process(input))?;
    if let Some(unit) = split.finish() {
        pictures.take(&unit);
    }
    if pictures.payloads.len() != packets.len() {
        return Err(Error::Internal {
            path: input.to_path_buf(),
            problem: format!(
                "HDR10+: {} pictures in the bitstream, {} packets",
                pictures.payloads.len(),
                packets.len()
            ),
        });
    }
    // The pictures a decoder drops (a file cut at an open GOP) have no
    // frame in the encode.
    let shown: Vec<bool> =
        crate::tools::ffprobe::shown(&tools.ffprobe, input, &packets, cancel).map_err(Error::process(input))?.collect();
    let keep = |i: &usize| shown[*i];
    let payloads: Vec<_> = (0..packets.len()).filter(keep).map(|i| pictures.payloads[i].clone()).collect();
    let pts: Vec<f64> = (0..packets.len()).filter(keep).map(|i| packets[i].0).collect();
    Ok(presentation_order(&payloads, &pts))
}

/// Writes `video` (the encode, Matroska) to `out` with each shown frame's
/// payload of `payloads` in its temporal unit, its timestamps and colour
/// description unchanged; working files go to `scratch`. Returns how many
/// frames carry HDR10+.
pub fn carry_into(
    tools: &Toolbox,
    input: &Path,
    video: &Path,
    payloads: &[Option<Vec<u8>>],
    out: &Path,
    scratch: &Path,
    cancel: &Cancel,
) -> Result<usize> {
    std::fs::create_dir_all(scratch).map_err(Error::io("create folder", scratch))?;
    let ivf = scratch.join("video.ivf");
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"]).arg(crate::tools::path_arg(video));
    cmd.args(["-map", "0:v:0", "-c", "copy", "-f", "ivf"]).arg(&ivf);
    crate::tools::process::run(&mut cmd, "HDR10+ unpack", cancel, |_| {}).map_err(Error::process(input))?;
    let internal =
        |problem: String| Error::Internal { path: input.to_path_buf(), problem: format!("HDR10+: {problem}") };
    let open = |p: &Path| std::fs::File::open(p).map(std::io::BufReader::new).map_err(Error::io("read", p));
    let failed = |action, p: &Path, e| match e {
        IvfError::Io(e) => Error::io(action, p)(e),
        IvfError::Format(problem) => internal(problem),
    };
    let reader = IvfReader::new(open(&ivf)?).map_err(|e| failed("read", &ivf, e))?;
    let header = reader.header.clone();
    let pts = reader.timestamps().map_err(|e| failed("read", &ivf, e))?;
    let with = scratch.join("video-hdr10plus.ivf");
    let mut to = std::fs::File::create(&with).map(std::io::BufWriter::new).map_err(Error::io("write", &with))?;
    let carried = carry(open(&ivf)?, &mut to, &pts, payloads).map_err(|e| failed("write", &with, e))?;
    to.flush().map_err(Error::io("write", &with))?;
    drop(to);
    // (A copy of the film fewer in the work folder while mkvmerge writes.)
    let _ = std::fs::remove_file(&ivf);
    // mkvmerge takes an IVF's frame rate, not its timestamps: they go in
    // as a timestamp file, in the stored (= shown) order.
    let (num, den) = (
        u32::from_le_bytes(header[20..24].try_into().expect("4")),
        u32::from_le_bytes(header[16..20].try_into().expect("4")),
    );
    let ms_per_tick = f64::from(num) * 1000.0 / f64::from(den.max(1));
    // One line more: where the last frame ends (it may be held, see
    // `super::hold`), else mkvmerge gives it one frame's duration.
    let last_ms = pts.iter().max().map_or(0.0, |t| *t as f64 * ms_per_tick);
    let end_ms = crate::tools::ffprobe::video_end_time(&tools.ffprobe, video, last_ms / 1000.0 - 10.0, cancel)
        .map(|s| s * 1000.0)
        .filter(|e| *e > last_ms);
    let stamps = scratch.join("timestamps.txt");
    let text: String = std::iter::once("# timestamp format v2\n".to_string())
        .chain(pts.iter().map(|t| format!("{:.6}\n", *t as f64 * ms_per_tick)))
        .chain(end_ms.map(|e| format!("{e:.6}\n")))
        .collect();
    std::fs::write(&stamps, text).map_err(Error::io("write", &stamps))?;
    let id = tools.mkvtoolnix.identify(video, cancel).map_err(|e| internal(e.to_string()))?;
    let mut args: Vec<OsString> = vec!["-o".into(), out.into()];
    if let Some(track) = id.tracks.first() {
        args.extend(colour_options(&track.properties).into_iter().map(OsString::from));
    }
    let mut t = OsString::from("0:");
    t.push(&stamps);
    args.extend([OsString::from("--timestamps"), t, with.clone().into_os_string()]);
    tools.mkvtoolnix.remux_timed(video, &args, out, "HDR10+ pack", cancel).map_err(Error::process(input))?;
    let _ = std::fs::remove_file(&with);
    Ok(carried)
}

/// The mkvmerge options that give track 0 the colour description of
/// `props` (a `mkvmerge -J` video track's).
pub fn colour_options(props: &std::collections::BTreeMap<String, serde_json::Value>) -> Vec<String> {
    const OPTIONS: &[(&str, &str)] = &[
        ("color_matrix_coefficients", "--colour-matrix-coefficients"),
        ("color_range", "--colour-range"),
        ("color_transfer_characteristics", "--colour-transfer-characteristics"),
        ("color_primaries", "--colour-primaries"),
        ("max_content_light", "--max-content-light"),
        ("max_frame_light", "--max-frame-light"),
        ("chromaticity_coordinates", "--chromaticity-coordinates"),
        ("white_color_coordinates", "--white-colour-coordinates"),
        ("max_luminance", "--max-luminance"),
        ("min_luminance", "--min-luminance"),
        ("chroma_siting", "--chroma-siting"),
    ];
    let mut out = Vec::new();
    for (property, option) in OPTIONS {
        let value = match props.get(*property) {
            Some(serde_json::Value::String(s)) => s.split(',').map(for_mkvmerge).collect::<Vec<_>>().join(","),
            Some(serde_json::Value::Number(n)) => for_mkvmerge(&n.to_string()),
            _ => continue,
        };
        out.extend([option.to_string(), format!("0:{value}")]);
    }
    out
}

/// A number as mkvmerge reads it right: ten significant digits at most,
/// never in exponent form. A float stored in 32 bits reads back from
/// `mkvmerge -J` as `0.0010000000474974513`, which mkvmerge's parser
/// overflows on (it wrote -0.001184); `9.99e-5` it refuses.
fn for_mkvmerge(text: &str) -> String {
    let Ok(v) = text.trim().parse::<f64>() else { return text.to_string() };
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (9 - v.abs().log10().floor() as i32).clamp(0, 15) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn numbers_go_to_mkvmerge_in_a_form_it_reads_right() {
        assert_eq!(for_mkvmerge("0.0010000000474974513"), "0.001000000047");
        assert_eq!(for_mkvmerge("9.999999747378752e-5"), "0.00009999999747");
        assert_eq!(for_mkvmerge("0.0001"), "0.0001");
        assert_eq!(for_mkvmerge("1000.0"), "1000");
        assert_eq!(for_mkvmerge("400"), "400");
        assert_eq!(for_mkvmerge("0.3127"), "0.3127");
        assert_eq!(for_mkvmerge("bt2020"), "bt2020");
        let props = serde_json::json!({
            "min_luminance": 0.0010000000474974513,
            "chromaticity_coordinates": "0.680000007152557,0.319999992847443",
            "max_content_light": 1000,
        });
        let props = props.as_object().unwrap().clone().into_iter().collect();
        assert_eq!(
            colour_options(&props),
            [
                "--max-content-light",
                "0:1000",
                "--chromaticity-coordinates",
                "0:0.6800000072,0.3199999928",
                "--min-luminance",
                "0:0.001000000047"
            ]
        );
    }

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

    #[test]
    fn shown_frames_get_their_own_payloads_in_an_ivf_copy() {
        let header = [&b"DKIF"[..], &[0, 0, 32, 0], &b"AV01"[..], &[0u8; 20]].concat();
        let frame = |pts| IvfFrame { pts, data: vec![0x32, 0x01, pts as u8] };
        let frames = vec![frame(0), frame(40), frame(20)];
        let mut bytes = Vec::new();
        write_ivf_header(&mut bytes, &header, 0).unwrap();
        for f in &frames {
            write_ivf_frame(&mut bytes, f).unwrap();
        }
        let pts = IvfReader::new(Cursor::new(&bytes)).unwrap().timestamps().unwrap();
        assert_eq!(pts, [0, 40, 20]);
        let p = |n: u8| Some([&HDR10PLUS_T35[..], &[n]].concat());
        let mut out = Vec::new();
        assert_eq!(carry(Cursor::new(&bytes), &mut out, &pts, &[p(0), None, p(2)]).unwrap(), 2);
        let mut r = IvfReader::new(Cursor::new(&out)).unwrap();
        assert_eq!(u32::from_le_bytes(r.header[24..28].try_into().unwrap()), 3, "the frame count");
        let copied: Vec<IvfFrame> = std::iter::from_fn(|| r.next_frame().unwrap()).collect();
        assert_eq!(copied.iter().map(|f| f.pts).collect::<Vec<_>>(), pts);
        // Shown first, third and second: the second shown (pts 20) is the
        // third stored, and has none.
        assert_eq!(metadata_in(&copied[0].data).unwrap().last(), Some(&0));
        assert_eq!(metadata_in(&copied[1].data).unwrap().last(), Some(&2));
        assert_eq!(metadata_in(&copied[2].data), None);
        assert_eq!(copied[2], frames[2]);
        let e = carry(Cursor::new(&bytes), &mut Vec::new(), &pts, &[p(0)]).unwrap_err();
        assert!(matches!(&e, IvfError::Format(m) if m.contains("3 frames")), "{e:?}");
        let cut = carry(Cursor::new(&bytes[..bytes.len() - 2]), &mut Vec::new(), &pts, &[p(0), p(1), p(2)]);
        assert!(matches!(cut, Err(IvfError::Format(_))), "a cut stream");
        assert!(matches!(IvfReader::new(Cursor::new(b"RIFF....")), Err(IvfError::Format(_))));
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
