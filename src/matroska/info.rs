//! The Segment Info elements `mkvmerge -J` does not show: the segment
//! family, the chapter translations and the linked files' names. Read from
//! the file's EBML (the Info element, near its start) so that the mux can
//! give them to mkvmerge (`--segmentinfo`) and validation can compare them;
//! before, they were lost without a word.

use crate::matroska::xml::Element;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TAGS: u32 = 0x1254_C367;
const CHAPTERS: u32 = 0x1043_A770;
const ATTACHMENTS: u32 = 0x1941_A469;
const FAMILY: u32 = 0x4444;
const FILENAME: u32 = 0x7384;
const PREV_FILENAME: u32 = 0x3C_83AB;
const NEXT_FILENAME: u32 = 0x3E_83BB;
const CHAPTER_TRANSLATE: u32 = 0x6924;
const TRANSLATE_EDITION_UID: u32 = 0x69FC;
const TRANSLATE_CODEC: u32 = 0x69BF;
const TRANSLATE_ID: u32 = 0x69A5;
/// No Info element is this large; a larger one is not read.
const INFO_LIMIT: u64 = 1 << 20;

/// What a file's Info holds beyond what `mkvmerge -J` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoExtras {
    /// `SegmentFamily` UIDs.
    pub families: Vec<Vec<u8>>,
    pub filename: Option<String>,
    pub previous_filename: Option<String>,
    pub next_filename: Option<String>,
    pub chapter_translates: Vec<ChapterTranslate>,
}

/// One `ChapterTranslate` (a DVD menu's chapter codec mapping).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChapterTranslate {
    pub edition_uids: Vec<u64>,
    pub codec: u64,
    pub id: Vec<u8>,
}

impl InfoExtras {
    pub fn is_empty(&self) -> bool {
        *self == InfoExtras::default()
    }

    /// Reads `path`'s Info element; nothing where the file has none that
    /// can be found (an unknown-sized element before it, a file that is
    /// not Matroska).
    pub fn read(path: &Path) -> std::io::Result<InfoExtras> {
        let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
        match info_body(&mut f) {
            Ok(body) => Ok(body.map(|b| parse(&b)).unwrap_or_default()),
            // Cut short or not EBML: nothing to carry.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData) => {
                Ok(InfoExtras::default())
            }
            Err(e) => Err(e),
        }
    }

    /// The XML for `mkvmerge --segmentinfo`: these and the UIDs of
    /// `segment_uids` (the segment's own, the previous and the next, in
    /// hex as `mkvmerge -J` gives them).
    pub fn segment_info_xml(&self, segment_uids: [Option<&str>; 3]) -> Element {
        let hex_text = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        let hex = |name: &str, text: String| {
            let mut e = Element::leaf(name, &text);
            e.attributes.push(("format".into(), "hex".into()));
            e
        };
        let mut children = Vec::new();
        for (name, uid) in ["SegmentUID", "PreviousSegmentUID", "NextSegmentUID"].into_iter().zip(segment_uids) {
            if let Some(u) = uid {
                children.push(hex(name, u.to_string()));
            }
        }
        children.extend(self.families.iter().map(|f| hex("SegmentFamily", hex_text(f))));
        for (name, value) in [
            ("SegmentFilename", &self.filename),
            ("PreviousSegmentFilename", &self.previous_filename),
            ("NextSegmentFilename", &self.next_filename),
        ] {
            if let Some(v) = value {
                children.push(Element::leaf(name, v));
            }
        }
        for t in &self.chapter_translates {
            let mut c: Vec<Element> =
                t.edition_uids.iter().map(|u| Element::leaf("ChapterTranslateEditionUID", &u.to_string())).collect();
            c.push(Element::leaf("ChapterTranslateCodec", &t.codec.to_string()));
            c.push(hex("ChapterTranslateID", hex_text(&t.id)));
            children.push(Element::node("ChapterTranslate", c));
        }
        Element::node("Info", children)
    }

    /// Each difference from `source`'s, in words.
    pub fn differences(&self, output: &InfoExtras) -> Vec<String> {
        let mut d = Vec::new();
        let mut differ = |what: &str, s: String, o: String| {
            if s != o {
                d.push(format!("{what} {s} became {o}"));
            }
        };
        differ("segment family", format!("{:02x?}", self.families), format!("{:02x?}", output.families));
        differ("segment file name", format!("{:?}", self.filename), format!("{:?}", output.filename));
        differ(
            "previous file name",
            format!("{:?}", self.previous_filename),
            format!("{:?}", output.previous_filename),
        );
        differ("next file name", format!("{:?}", self.next_filename), format!("{:?}", output.next_filename));
        differ(
            "chapter translations",
            format!("{:?}", self.chapter_translates),
            format!("{:?}", output.chapter_translates),
        );
        d
    }
}

const CLUSTER: u32 = 0x1F43_B675;
const CUES: u32 = 0x1C53_BB6B;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;

/// A file cut short by its end in a way that loses something of the rip's
/// closing elements (its tags, chapters or attachments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Where the file ends, in words: "inside its tags", "inside its index,
    /// before its tags", "before its attachments".
    pub place: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Where the element the end cuts (or the Segment) should end.
    pub claimed: u64,
}

/// Whether `path` is cut short so that its tags, chapters or attachments
/// are cut or gone, as its first SeekHead tells: where it places one of
/// them at or past the file's end, or one that the end cuts through (or
/// its index, with one of them after it). Only the elements the SeekHead
/// lists are read (a walk of a film's clusters was a read for each).
/// `None` for a whole file; for one whose cut loses nothing but its
/// index (the mux writes a new one) or the picture and sound alone (those
/// [`crate::analysis::extent`] judges by time); for one without a SeekHead
/// before its first cluster, or one that is not Matroska.
pub fn cut_short(path: &Path) -> std::io::Result<Option<Cut>> {
    let size = std::fs::metadata(path)?.len();
    let mut f = std::io::BufReader::new(std::fs::File::open(path)?);
    let listed = match listed_elements(&mut f) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData) => None,
        r => r?,
    };
    let Some((mut listed, segment_end)) = listed else { return Ok(None) };
    listed.sort_by_key(|(_, pos)| *pos);
    // Those gone (at or past the end), and the one the end cuts through.
    let mut gone: Vec<(&str, u64)> = Vec::new();
    let mut cut: Option<(u32, u64)> = None;
    for (id, pos) in listed.into_iter().filter(|(id, _)| *id == CUES || content_name(*id).is_some()) {
        if pos >= size {
            gone.extend(content_name(id).map(|name| (name, pos)).filter(|(n, _)| !gone.iter().any(|(g, _)| g == n)));
            continue;
        }
        f.seek(SeekFrom::Start(pos))?;
        match header(&mut f) {
            Ok((found, Some(len))) if found == id => {
                let end = f.stream_position()?.saturating_add(len);
                if end > size {
                    cut = Some((id, end));
                }
            }
            // A header cut by the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => cut = Some((id, size + 1)),
            // (A SeekHead that points elsewhere is no proof of anything.)
            _ => {}
        }
    }
    let before = || format!("before its {}", gone.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" and "));
    let (place, claimed) = match cut {
        Some((id, end)) if content_name(id).is_some() => {
            let also = if gone.is_empty() { String::new() } else { format!(", and {}", before()) };
            (format!("inside its {}{also}", content_name(id).unwrap_or_default()), end)
        }
        _ if gone.is_empty() => return Ok(None),
        Some((_, end)) => (format!("inside its index, {}", before()), end),
        // (Where the Segment says it ends, when it says.)
        None => (before(), segment_end.unwrap_or(0).max(gone[0].1 + 1)),
    };
    Ok(Some(Cut { place, size, claimed }))
}

/// The name of a closing element that holds something of the rip's.
fn content_name(id: u32) -> Option<&'static str> {
    match id {
        TAGS => Some("tags"),
        CHAPTERS => Some("chapters"),
        ATTACHMENTS => Some("attachments"),
        _ => None,
    }
}

/// The elements the Segment's first SeekHead lists, each with where it
/// starts (from the file's start), and where the Segment ends (unknown:
/// `None`); `None` where there is no SeekHead before the first cluster, or
/// the file is not Matroska.
#[allow(clippy::type_complexity)]
fn listed_elements(f: &mut (impl Read + Seek)) -> std::io::Result<Option<(Vec<(u32, u64)>, Option<u64>)>> {
    let Some((data, segment_len)) = segment(f)? else { return Ok(None) };
    let segment_end = segment_len.map(|len| data.saturating_add(len));
    // (A CRC-32 or padding may come first; the clusters never do.)
    for _ in 0..8 {
        let (id, len) = header(f)?;
        let Some(len) = len.filter(|_| id != CLUSTER) else { return Ok(None) };
        if id == SEEK_HEAD {
            if len > INFO_LIMIT {
                return Ok(None);
            }
            let mut body = vec![0; len as usize];
            f.read_exact(&mut body)?;
            return Ok(Some((seek_entries(&body, data), segment_end)));
        }
        f.seek(SeekFrom::Current(len as i64))?;
    }
    Ok(None)
}

/// Reads past the EBML header to the Segment's data: where it starts, and
/// the Segment's size (unknown: `None`); `None` where the file is not
/// Matroska.
fn segment(f: &mut (impl Read + Seek)) -> std::io::Result<Option<(u64, Option<u64>)>> {
    let (id, ebml) = header(f)?;
    let Some(ebml) = ebml.filter(|_| id == EBML) else { return Ok(None) };
    f.seek(SeekFrom::Current(ebml as i64))?;
    let (id, len) = header(f)?;
    Ok((id == SEGMENT).then_some((f.stream_position()?, len)))
}

/// A SeekHead's entries: each element's ID and where it starts (from the
/// file's start; `data` is where the Segment's data starts).
fn seek_entries(body: &[u8], data: u64) -> Vec<(u32, u64)> {
    let entries = children(body).into_iter().filter(|(id, _)| *id == SEEK);
    entries
        .filter_map(|(_, seek)| {
            let fields = children(seek);
            let id = fields.iter().find(|(i, _)| *i == SEEK_ID).map(|(_, v)| uint(v) as u32)?;
            let pos = fields.iter().find(|(i, _)| *i == SEEK_POSITION).map(|(_, v)| uint(v))?;
            Some((id, data.saturating_add(pos)))
        })
        .collect()
}

/// An element's ID (its marker bits kept, as IDs are written) and its
/// data size (`None`: unknown).
fn header(r: &mut impl Read) -> std::io::Result<(u32, Option<u64>)> {
    let first = byte(r)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut id = u32::from(first);
    for _ in 1..len {
        id = id << 8 | u32::from(byte(r)?);
    }
    let first = byte(r)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    let mut size = u64::from(first) & (0xFF >> len);
    let mut all_ones = size == 0xFF >> len;
    for _ in 1..len {
        let b = byte(r)?;
        all_ones &= b == 0xFF;
        size = size << 8 | u64::from(b);
    }
    Ok((id, (!all_ones).then_some(size)))
}

fn byte(r: &mut impl Read) -> std::io::Result<u8> {
    let mut b = [0u8];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// The Info element's data: after the EBML header, the Segment's children
/// are passed over by their sizes until it.
fn info_body(f: &mut (impl Read + Seek)) -> std::io::Result<Option<Vec<u8>>> {
    if segment(f)?.is_none() {
        return Ok(None);
    }
    loop {
        let (id, size) = match header(f) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(size) = size else { return Ok(None) };
        if id == INFO {
            if size > INFO_LIMIT {
                return Ok(None);
            }
            let mut body = vec![0; size as usize];
            f.read_exact(&mut body)?;
            return Ok(Some(body));
        }
        f.seek(SeekFrom::Current(size as i64))?;
    }
}

/// The children of an element's data `body`: (ID, data).
fn children(mut body: &[u8]) -> Vec<(u32, &[u8])> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let mut r = body;
        let Ok((id, Some(size))) = header(&mut r) else { break };
        let Some(data) = r.get(..size as usize) else { break };
        out.push((id, data));
        body = &r[size as usize..];
    }
    out
}

fn uint(data: &[u8]) -> u64 {
    data.iter().fold(0, |n, b| n << 8 | u64::from(*b))
}

/// A file name: none when empty (mkvmerge writes no empty one).
fn text(data: &[u8]) -> Option<String> {
    Some(String::from_utf8_lossy(data).trim_end_matches('\0').to_string()).filter(|t| !t.is_empty())
}

fn parse(body: &[u8]) -> InfoExtras {
    let mut x = InfoExtras::default();
    for (id, data) in children(body) {
        match id {
            // (A family UID is 16 bytes; mkvmerge refuses another.)
            FAMILY if data.len() == 16 => x.families.push(data.to_vec()),
            FILENAME => x.filename = text(data),
            PREV_FILENAME => x.previous_filename = text(data),
            NEXT_FILENAME => x.next_filename = text(data),
            CHAPTER_TRANSLATE => {
                let mut t = ChapterTranslate::default();
                for (id, data) in children(data) {
                    match id {
                        TRANSLATE_EDITION_UID => t.edition_uids.push(uint(data)),
                        TRANSLATE_CODEC => t.codec = uint(data),
                        TRANSLATE_ID => t.id = data.to_vec(),
                        _ => {}
                    }
                }
                x.chapter_translates.push(t);
            }
            _ => {}
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: `id`'s bytes, a one-byte size, `data`.
    fn el(id: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x80 | data.len() as u8);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn the_info_extras_are_read_past_other_elements() {
        let translate =
            [el(&[0x69, 0xFC], &[0x03, 0xE9]), el(&[0x69, 0xBF], &[1]), el(&[0x69, 0xA5], &[1, 2])].concat();
        let info = [
            el(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
            el(&[0x44, 0x44], &[0xFA; 16]),
            el(&[0x73, 0x84], b"part2.mkv"),
            el(&[0x3E, 0x83, 0xBB], b"part3.mkv"),
            el(&[0x3C, 0x83, 0xAB], b""),
            el(&[0x44, 0x44], &[0xFA; 8]),
            el(&[0x69, 0x24], &translate),
        ]
        .concat();
        let segment =
            [el(&[0x11, 0x4D, 0x9B, 0x74], &[0; 10]), el(&[0xEC], &[0; 3]), el(&[0x15, 0x49, 0xA9, 0x66], &info)]
                .concat();
        let file = [el(&[0x1A, 0x45, 0xDF, 0xA3], &[0x42, 0x86, 0x81, 0x01]), el(&[0x18, 0x53, 0x80, 0x67], &segment)]
            .concat();
        let body = info_body(&mut std::io::Cursor::new(file)).unwrap().unwrap();
        let x = parse(&body);
        assert_eq!(x.families, [vec![0xFA; 16]]);
        assert_eq!((x.filename.as_deref(), x.previous_filename.as_deref()), (Some("part2.mkv"), None));
        assert_eq!(x.next_filename.as_deref(), Some("part3.mkv"));
        assert_eq!(x.chapter_translates, [ChapterTranslate { edition_uids: vec![1001], codec: 1, id: vec![1, 2] }]);
        let xml = x.segment_info_xml([Some("0011"), None, None]).to_document();
        assert!(xml.contains("<SegmentUID format=\"hex\">0011</SegmentUID>"), "{xml}");
        assert!(xml.contains("<SegmentFamily format=\"hex\">fa fa"), "{xml}");
        assert!(xml.contains("<ChapterTranslateID format=\"hex\">01 02</ChapterTranslateID>"), "{xml}");
        assert!(InfoExtras::default().is_empty() && !x.is_empty());
        assert_eq!(x.differences(&x), Vec::<String>::new());
        assert_eq!(x.differences(&InfoExtras::default()).len(), 4);
        // Not Matroska: nothing.
        assert_eq!(info_body(&mut std::io::Cursor::new(b"RIFF....AVI ".to_vec())).unwrap(), None);
    }
}
