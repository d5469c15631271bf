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
//! The bitstream work is plain byte handling, tested beside it: Annex B
//! NAL units and their SEI messages ([`hevc`]), IVF frames and AV1 OBUs
//! ([`av1`]); this module carries the payloads from one to the other.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::tools::Toolbox;
use crate::tools::ffmpeg::FfmpegArgs;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;

pub mod av1;
pub mod hevc;

pub use av1::{
    IvfError, IvfFrame, IvfReader, metadata_in, metadata_obu, obus, with_metadata, write_ivf_frame, write_ivf_header,
};
pub use hevc::{AnnexB, Pictures, hdr10plus_in_sei, presentation_order, unescape};

/// The T.35 header of HDR10+: country (United States), provider (Samsung),
/// provider-oriented code, application identifier 4.
pub const HDR10PLUS_T35: [u8; 6] = [0xB5, 0x00, 0x3C, 0x00, 0x01, 0x04];

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
    let mut args = FfmpegArgs::quiet();
    args.input(input).extend(["-map", "0:v:0", "-c", "copy", "-bsf:v", "hevc_mp4toannexb"]).stdout("hevc");
    let mut cmd = args.command(&tools.ffmpeg);
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
    let mut unpack = FfmpegArgs::quiet();
    unpack.input(video).extend(["-map", "0:v:0", "-c", "copy", "-f", "ivf"]).output(&ivf);
    let mut cmd = unpack.command(&tools.ffmpeg);
    crate::tools::process::run(&mut cmd, "HDR10+ unpack", cancel, |_| {}).map_err(Error::process(input))?;
    let open = |p: &Path| std::fs::File::open(p).map(std::io::BufReader::new).map_err(Error::io("read", p));
    let failed = |action, p: &Path, e| match e {
        IvfError::Io(e) => Error::io(action, p)(e),
        IvfError::Format(problem) => internal(input, problem),
    };
    let reader = IvfReader::new(open(&ivf)?).map_err(|e| failed("read", &ivf, e))?;
    let ms_per_tick = reader.ms_per_tick();
    let pts = reader.timestamps().map_err(|e| failed("read", &ivf, e))?;
    let with = scratch.join("video-hdr10plus.ivf");
    let mut to = std::fs::File::create(&with).map(std::io::BufWriter::new).map_err(Error::io("write", &with))?;
    let carried = carry(open(&ivf)?, &mut to, &pts, payloads).map_err(|e| failed("write", &with, e))?;
    to.flush().map_err(Error::io("write", &with))?;
    drop(to);
    // (A copy of the film fewer in the work folder while mkvmerge writes.)
    let _ = std::fs::remove_file(&ivf);
    let stamps = scratch.join("timestamps.txt");
    write_timestamps(tools, video, &pts, ms_per_tick, &stamps, cancel)?;
    pack(tools, input, video, (&with, &stamps), out, cancel)?;
    let _ = std::fs::remove_file(&with);
    Ok(carried)
}

/// An internal failure of the HDR10+ carry of `input`'s encode.
fn internal(input: &Path, problem: String) -> Error {
    Error::Internal { path: input.to_path_buf(), problem: format!("HDR10+: {problem}") }
}

/// Writes `video`'s frame times (`pts`, ticks of `ms_per_tick`, in stored
/// = shown order) to `stamps` as an mkvmerge timestamp file: mkvmerge
/// takes an IVF's frame rate, not its timestamps. One line more: where the
/// last frame ends (it may be held, see `super::hold`), else mkvmerge gives
/// it one frame's duration.
fn write_timestamps(
    tools: &Toolbox,
    video: &Path,
    pts: &[i64],
    ms_per_tick: f64,
    stamps: &Path,
    cancel: &Cancel,
) -> Result<()> {
    let last_ms = pts.iter().max().map_or(0.0, |t| *t as f64 * ms_per_tick);
    let end_ms = crate::tools::ffprobe::video_end_time(&tools.ffprobe, video, last_ms / 1000.0 - 10.0, cancel)
        .map(|s| s * 1000.0)
        .filter(|e| *e > last_ms);
    let text: String = std::iter::once("# timestamp format v2\n".to_string())
        .chain(pts.iter().map(|t| format!("{:.6}\n", *t as f64 * ms_per_tick)))
        .chain(end_ms.map(|e| format!("{e:.6}\n")))
        .collect();
    std::fs::write(stamps, text).map_err(Error::io("write", stamps))
}

/// Muxes the IVF `with` (the frames with their payloads) at the times of
/// `stamps` into `out`, with `video`'s colour description and shape on
/// screen (an IVF has neither: an anamorphic picture came out with square
/// pixels).
fn pack(
    tools: &Toolbox,
    input: &Path,
    video: &Path,
    (with, stamps): (&Path, &Path),
    out: &Path,
    cancel: &Cancel,
) -> Result<()> {
    let id = tools.mkvtoolnix.identify(video, cancel).map_err(|e| internal(input, e.to_string()))?;
    let mut args: Vec<OsString> = vec!["-o".into(), out.into()];
    if let Some(track) = id.tracks.first() {
        args.extend(crate::matroska::rules::colour_options(&track.properties).into_iter().map(OsString::from));
        if let Some(dims) = track.properties.get("display_dimensions").and_then(|d| d.as_str()) {
            args.extend([OsString::from("--display-dimensions"), OsString::from(format!("0:{dims}"))]);
        }
    }
    let mut t = OsString::from("0:");
    t.push(stamps);
    args.extend([OsString::from("--timestamps"), t, with.as_os_str().to_owned()]);
    tools.mkvtoolnix.remux_timed(video, &args, out, "HDR10+ pack", cancel).map_err(Error::process(input))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

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
}
