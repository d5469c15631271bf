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
use std::path::Path;
use std::process::Command;

/// The T.35 header of HDR10+: country (United States), provider (Samsung),
/// provider-oriented code, application identifier 4.
pub const HDR10PLUS_T35: [u8; 6] = [0xB5, 0x00, 0x3C, 0x00, 0x01, 0x04];

/// Splits an Annex B byte stream into NAL units (start codes removed).
/// Incremental: feed bytes with [`AnnexB::push`], take the units it found.
#[derive(Debug, Default)]
pub struct AnnexB {
    buf: Vec<u8>,
}

impl AnnexB {
    /// Adds `bytes`; returns every NAL unit now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(bytes);
        let starts = start_codes(&self.buf);
        if starts.len() < 2 {
            return vec![];
        }
        let mut units = Vec::new();
        for w in starts.windows(2) {
            units.push(trim_zeros(&self.buf[w[0].1..w[1].0]).to_vec());
        }
        let last = starts[starts.len() - 1].0;
        self.buf.drain(..last);
        units
    }

    /// The last unit, once the stream ended.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let starts = start_codes(&self.buf);
        let (_, from) = *starts.first()?;
        Some(trim_zeros(&self.buf[from..]).to_vec()).filter(|u| !u.is_empty())
    }
}

/// (start code position, first byte after it) of every 00 00 01.
fn start_codes(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            out.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
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
pub fn presentation_order<T: Clone>(by_decode: &[T], pts: &[i64]) -> Vec<T> {
    let mut order: Vec<usize> = (0..pts.len()).collect();
    order.sort_by_key(|i| (pts[*i], *i));
    order.into_iter().map(|i| by_decode[i].clone()).collect()
}

/// One IVF frame: a temporal unit and its timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfFrame {
    pub pts: i64,
    pub data: Vec<u8>,
}

/// Reads an IVF file: its 32-byte header and its frames.
pub fn read_ivf(bytes: &[u8]) -> Result<(Vec<u8>, Vec<IvfFrame>), String> {
    if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
        return Err("not an IVF file".into());
    }
    let header_len = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let mut frames = Vec::new();
    let mut i = header_len;
    while i + 12 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes")) as usize;
        let pts = i64::from_le_bytes(bytes[i + 4..i + 12].try_into().expect("8 bytes"));
        let data = bytes.get(i + 12..i + 12 + size).ok_or("an IVF frame runs past the end")?;
        frames.push(IvfFrame { pts, data: data.to_vec() });
        i += 12 + size;
    }
    Ok((bytes[..header_len].to_vec(), frames))
}

/// Writes an IVF file of `header` (its frame count updated) and `frames`.
pub fn write_ivf(header: &[u8], frames: &[IvfFrame]) -> Vec<u8> {
    let mut out = header.to_vec();
    if out.len() >= 28 {
        out[24..28].copy_from_slice(&(frames.len() as u32).to_le_bytes());
    }
    for f in frames {
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.pts.to_le_bytes());
        out.extend_from_slice(&f.data);
    }
    out
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

/// The frames of an IVF stream with each shown frame's payload of
/// `payloads` (presentation order) written into its temporal unit.
/// Returns how many carry one.
pub fn carry(frames: &mut [IvfFrame], payloads: &[Option<Vec<u8>>]) -> Result<usize, String> {
    if frames.len() != payloads.len() {
        return Err(format!("the encode has {} frames, the source's HDR10+ track {}", frames.len(), payloads.len()));
    }
    let pts: Vec<i64> = frames.iter().map(|f| f.pts).collect();
    let mut rank: Vec<usize> = (0..frames.len()).collect();
    rank.sort_by_key(|i| (pts[*i], *i));
    let mut carried = 0;
    for (shown, decode) in rank.into_iter().enumerate() {
        if let Some(p) = &payloads[shown] {
            frames[decode].data = with_metadata(&frames[decode].data, p)?;
            carried += 1;
        }
    }
    Ok(carried)
}

/// Every source frame's HDR10+ payload of `input`'s first video stream
/// (HEVC), in presentation order: its bitstream read once, without decoding.
pub fn source_payloads(tools: &Toolbox, input: &Path, cancel: &Cancel) -> Result<Vec<Option<Vec<u8>>>> {
    let query = crate::tools::ffprobe::Query::packets("pts").stream("v:0");
    let pts: Vec<i64> = query
        .run(&tools.ffprobe, input, "HDR10+ timestamps", cancel)
        .map_err(Error::process(input))?
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
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
    if pictures.payloads.len() != pts.len() {
        return Err(Error::Internal {
            path: input.to_path_buf(),
            problem: format!("HDR10+: {} pictures in the bitstream, {} packets", pictures.payloads.len(), pts.len()),
        });
    }
    Ok(presentation_order(&pictures.payloads, &pts))
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
    let bytes = std::fs::read(&ivf).map_err(Error::io("read", &ivf))?;
    let internal =
        |problem: String| Error::Internal { path: input.to_path_buf(), problem: format!("HDR10+: {problem}") };
    let (header, mut frames) = read_ivf(&bytes).map_err(internal)?;
    let carried = carry(&mut frames, payloads).map_err(internal)?;
    let with = scratch.join("video-hdr10plus.ivf");
    std::fs::write(&with, write_ivf(&header, &frames)).map_err(Error::io("write", &with))?;
    // mkvmerge takes an IVF's frame rate, not its timestamps: they go in
    // as a timestamp file, in the stored (= shown) order.
    let (num, den) = (
        u32::from_le_bytes(header[20..24].try_into().expect("4")),
        u32::from_le_bytes(header[16..20].try_into().expect("4")),
    );
    let ms_per_tick = f64::from(num) * 1000.0 / f64::from(den.max(1));
    let stamps = scratch.join("timestamps.txt");
    let text: String = std::iter::once("# timestamp format v2\n".to_string())
        .chain(frames.iter().map(|f| format!("{:.6}\n", f.pts as f64 * ms_per_tick)))
        .collect();
    std::fs::write(&stamps, text).map_err(Error::io("write", &stamps))?;
    let id = tools.mkvtoolnix.identify(video, cancel).map_err(|e| internal(e.to_string()))?;
    let mut args: Vec<OsString> = vec!["-o".into(), out.into()];
    if let Some(track) = id.tracks.first() {
        args.extend(colour_options(&track.properties).into_iter().map(OsString::from));
    }
    let mut t = OsString::from("0:");
    t.push(&stamps);
    args.extend([OsString::from("--timestamps"), t, with.into_os_string()]);
    tools.mkvtoolnix.merge(&args, "HDR10+ pack", cancel, |_| {}).map_err(Error::process(input))?;
    let _ = std::fs::remove_file(&ivf);
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
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        out.extend([option.to_string(), format!("0:{value}")]);
    }
    out
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
        assert_eq!(presentation_order(&['I', 'P', 'B', 'b'], &[0, 3, 1, 2]), ['I', 'B', 'b', 'P']);
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
    fn shown_frames_get_their_own_payloads_in_an_ivf_round_trip() {
        let header = [&b"DKIF"[..], &[0, 0, 32, 0], &b"AV01"[..], &[0u8; 20]].concat();
        let frame = |pts| IvfFrame { pts, data: vec![0x32, 0x01, pts as u8] };
        let mut frames = vec![frame(0), frame(40), frame(20)];
        let bytes = write_ivf(&header, &frames);
        assert_eq!(read_ivf(&bytes).unwrap(), (bytes[..32].to_vec(), frames.clone()));
        let p = |n: u8| Some([&HDR10PLUS_T35[..], &[n]].concat());
        assert_eq!(carry(&mut frames, &[p(0), p(1), p(2)]).unwrap(), 3);
        // The frame shown second (pts 20) is the third in decode order.
        assert_eq!(metadata_in(&frames[2].data).unwrap().last(), Some(&1));
        assert_eq!(metadata_in(&frames[1].data).unwrap().last(), Some(&2));
        assert!(carry(&mut frames, &[p(0)]).unwrap_err().contains("3 frames"));
    }
}
