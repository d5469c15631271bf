//! Cuts a PGS picture larger than the cropped picture down to the pixels
//! it shows, so that [`super::recrop`] can move it into the picture like any
//! other: its bitmap is decoded, its transparent margins cut, re-encoded
//! (and split into fragments again), and every composition that shows it
//! moved by the margin cut, so that it stays where it was drawn. A picture
//! whose visible pixels do not fit either is left as it is (the caller
//! then refuses it).
//!
//! A picture's bitmap (ODS data after its length, width and height) is run
//! lengths, line by line: a byte `CC` is one pixel of colour `CC`; `00 00`
//! ends the line; `00 0L` / `00 4L LL` are L pixels of colour 0; `00 8L CC`
//! / `00 CL LL CC` are L pixels of colour `CC` (L in 6 or 14 bits). A colour
//! is transparent where every palette (PDS) of the file gives it no opacity.

use super::{Area, END, HEADER, ODS, PCS, PDS, Segment, canvas, pictures, segments, set_u16};
use std::collections::HashMap;

/// The most data one segment holds.
const MAX_SEGMENT: usize = 0xFFFF;

/// `sup` with each picture larger than its set's cropped area (`area_of`
/// its canvas) cut to its visible pixels where they fit in it.
pub(super) fn trim_oversized(sup: &[u8], area_of: impl Fn((u32, u32)) -> Area) -> Result<Vec<u8>, String> {
    let segments = segments(sup)?;
    let visible = visible_colours(sup, &segments);
    let cropped = cropped_objects(sup, &segments)?;
    // Per object ID, the margin cut from its picture (left, top).
    let mut cuts: HashMap<u16, (i64, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(sup.len());
    for set in segments.split_inclusive(|s| s.kind == END) {
        let area = match set.iter().find(|s| s.kind == PCS) {
            Some(pcs) => Some(area_of(canvas(&sup[pcs.data.clone()])?)),
            None => None,
        };
        // The set's pictures as redefined: (first segment, segments, new fragments).
        let mut replaced: Vec<(usize, usize, Vec<Vec<u8>>)> = Vec::new();
        for (first, object) in objects(sup, set) {
            let Object { id, size, bitmap, count } = object;
            cuts.remove(&id);
            // (A picture a composition shows cropped keeps its size: the
            // crop is of it as it was drawn.)
            let too_big = area.is_some_and(|a| size.0 > a.2 || size.1 > a.3) && !cropped.contains(&id);
            let Some(a) = area.filter(|_| too_big) else { continue };
            let pixels = decode(&bitmap, size)?;
            let Some((x, y, w, h)) = shown(&pixels, size.0 as usize, &visible) else { continue };
            if w as i64 > a.2 || h as i64 > a.3 {
                continue;
            }
            let cut: Vec<u8> = (y..y + h).flat_map(|row| &pixels[row * size.0 as usize + x..][..w]).copied().collect();
            let fragments = fragments(&sup[set[first].data.clone()][..3], (w, h), &encode(&cut, w));
            cuts.insert(id, (x as i64, y as i64));
            replaced.push((first, count, fragments));
        }
        let mut i = 0;
        while i < set.len() {
            let s = &set[i];
            let header = &sup[s.data.start - HEADER..s.data.start];
            if let Some((_, count, fragments)) = replaced.iter().find(|r| r.0 == i) {
                for f in fragments {
                    push(&mut out, header, f);
                }
                i += count;
                continue;
            }
            let mut data = sup[s.data.clone()].to_vec();
            if s.kind == PCS {
                move_by_cuts(&mut data, &cuts)?;
            }
            push(&mut out, header, &data);
            i += 1;
        }
    }
    Ok(out)
}

/// The objects some composition of the file shows cropped.
fn cropped_objects(sup: &[u8], segments: &[Segment]) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for s in segments.iter().filter(|s| s.kind == PCS) {
        out.extend(pictures(&sup[s.data.clone()], &HashMap::new())?.iter().filter(|p| p.cropped).map(|p| p.id));
    }
    Ok(out)
}

/// Colours some palette of the file gives opacity to.
fn visible_colours(sup: &[u8], segments: &[Segment]) -> [bool; 256] {
    let mut visible = [false; 256];
    for s in segments.iter().filter(|s| s.kind == PDS) {
        for entry in sup[s.data.clone()].get(2..).unwrap_or_default().chunks_exact(5) {
            visible[usize::from(entry[0])] |= entry[4] != 0;
        }
    }
    visible
}

/// A picture defined in a set: its ID, size and bitmap (its fragments'
/// data joined), and how many ODS segments hold it.
struct Object {
    id: u16,
    size: (i64, i64),
    bitmap: Vec<u8>,
    count: usize,
}

/// The pictures `set` defines, each with the index of its first segment.
fn objects(sup: &[u8], set: &[Segment]) -> Vec<(usize, Object)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < set.len() {
        let d = &sup[set[i].data.clone()];
        let first = set[i].kind == ODS && d.get(3).is_some_and(|f| f & 0x80 != 0) && d.len() >= 11;
        if !first {
            i += 1;
            continue;
        }
        let id = u16::from_be_bytes([d[0], d[1]]);
        let size = (i64::from(u16::from_be_bytes([d[7], d[8]])), i64::from(u16::from_be_bytes([d[9], d[10]])));
        let mut bitmap = d[11..].to_vec();
        let mut count = 1;
        let mut last = d[3] & 0x40 != 0;
        while !last && i + count < set.len() && set[i + count].kind == ODS {
            let more = &sup[set[i + count].data.clone()];
            bitmap.extend(more.get(4..).unwrap_or_default());
            last = more.get(3).is_none_or(|f| f & 0x40 != 0);
            count += 1;
        }
        out.push((i, Object { id, size, bitmap, count }));
        i += count;
    }
    out
}

/// A bitmap's colours, `size.0` a line, `size.1` lines (a line cut short
/// or missing is colour 0).
pub(super) fn decode(rle: &[u8], size: (i64, i64)) -> Result<Vec<u8>, String> {
    let (w, h) = (size.0 as usize, size.1 as usize);
    let mut pixels = Vec::with_capacity(w * h);
    let mut line = Vec::with_capacity(w);
    let mut bytes = rle.iter().copied();
    let mut next = || bytes.next().ok_or("a picture's bitmap is cut short");
    while pixels.len() < w * h {
        let Ok(b) = next() else { break };
        let (count, colour) = match b {
            0 => {
                let flags = next()?;
                let short = usize::from(flags & 0x3F);
                let count = if flags & 0x40 != 0 { short << 8 | usize::from(next()?) } else { short };
                match flags {
                    0 => {
                        line.resize(w, 0);
                        pixels.append(&mut line);
                        continue;
                    }
                    f if f & 0x80 != 0 => (count, next()?),
                    _ => (count, 0),
                }
            }
            colour => (1, colour),
        };
        line.extend(std::iter::repeat_n(colour, count));
    }
    if !line.is_empty() {
        line.resize(w, 0);
        pixels.append(&mut line);
    }
    pixels.resize(w * h, 0);
    Ok(pixels)
}

/// Run lengths of `pixels`, `w` a line.
pub(super) fn encode(pixels: &[u8], w: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in pixels.chunks(w) {
        let mut at = 0;
        while at < line.len() {
            let colour = line[at];
            let run = line[at..].iter().take_while(|c| **c == colour).count().min(0x3FFF);
            let long = [(run >> 8) as u8, run as u8];
            match (colour, run) {
                (0, 1..=63) => out.extend([0, run as u8]),
                (0, _) => out.extend([0, 0x40 | long[0], long[1]]),
                (c, 1..=2) => out.extend(std::iter::repeat_n(c, run)),
                (c, 3..=63) => out.extend([0, 0x80 | run as u8, c]),
                (c, _) => out.extend([0, 0xC0 | long[0], long[1], c]),
            }
            at += run;
        }
        out.extend([0, 0]);
    }
    out
}

/// The rectangle (x, y, w, h) holding every pixel of a `visible` colour
/// (none where there is none).
fn shown(pixels: &[u8], w: usize, visible: &[bool; 256]) -> Option<(usize, usize, usize, usize)> {
    let lit = |p: &u8| visible[usize::from(*p)];
    let rows: Vec<usize> = (pixels.chunks(w).enumerate()).filter(|(_, l)| l.iter().any(lit)).map(|(y, _)| y).collect();
    let (top, bottom) = (*rows.first()?, *rows.last()?);
    let lines = || pixels.chunks(w).skip(top).take(bottom - top + 1);
    let left = lines().filter_map(|l| l.iter().position(lit)).min()?;
    let right = lines().filter_map(|l| l.iter().rposition(lit)).max()?;
    Some((left, top, right - left + 1, bottom - top + 1))
}

/// The ODS segments' data for a picture of `size` with bitmap `rle`, its
/// ID and version `head` (3 bytes).
fn fragments(head: &[u8], size: (usize, usize), rle: &[u8]) -> Vec<Vec<u8>> {
    let length = rle.len() + 4;
    let mut data = vec![(length >> 16) as u8, (length >> 8) as u8, length as u8];
    data.extend((size.0 as u16).to_be_bytes());
    data.extend((size.1 as u16).to_be_bytes());
    data.extend(rle);
    let pieces: Vec<&[u8]> = data.chunks(MAX_SEGMENT - 4).collect();
    let last = pieces.len() - 1;
    (pieces.iter().enumerate())
        .map(|(i, piece)| {
            let flags = if i == 0 { 0x80 } else { 0 } | if i == last { 0x40 } else { 0 };
            [head, &[flags], piece].concat()
        })
        .collect()
}

/// Moves each picture of a PCS whose margins were cut by the cut (no
/// composition shows such a picture cropped).
fn move_by_cuts(pcs: &mut [u8], cuts: &HashMap<u16, (i64, i64)>) -> Result<(), String> {
    for p in pictures(pcs, &HashMap::new())?.iter().filter(|p| !p.cropped) {
        if let Some((dx, dy)) = cuts.get(&p.id) {
            set_u16(pcs, p.at + 4, p.x + dx);
            set_u16(pcs, p.at + 6, p.y + dy);
        }
    }
    Ok(())
}

/// Appends a segment: `header` (its type and times) with `data`'s size.
fn push(out: &mut Vec<u8>, header: &[u8], data: &[u8]) {
    out.extend(&header[..11]);
    out.extend((data.len() as u16).to_be_bytes());
    out.extend(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_read_back_as_written() {
        let w = 700;
        let mut pixels = vec![0u8; w * 3];
        pixels[5] = 7;
        pixels[10..12].fill(3);
        pixels[20..90].fill(255);
        pixels[w + 1..w + 400].fill(9);
        pixels[2 * w..3 * w].fill(4);
        let rle = encode(&pixels, w);
        assert_eq!(decode(&rle, (w as i64, 3)).unwrap(), pixels);
        // Each line ends with 00 00; a long run of colour 0 takes 3 bytes.
        assert_eq!(&rle[..4], [0, 5, 7, 0]);
        assert_eq!(shown(&pixels, w, &[true; 256]), Some((0, 0, w, 3)));
        let mut visible = [false; 256];
        visible[9] = true;
        assert_eq!(shown(&pixels, w, &visible), Some((1, 1, 399, 1)));
        assert_eq!(shown(&pixels, w, &[false; 256]), None);
    }

    #[test]
    fn a_big_bitmap_is_split_into_fragments() {
        let rle = vec![1u8; 200_000];
        let f = fragments(&[0, 5, 0], (1920, 1080), &rle);
        assert_eq!(f.len(), 4);
        assert_eq!(f.iter().map(|f| f[3]).collect::<Vec<_>>(), [0x80, 0, 0, 0x40]);
        assert!(f.iter().all(|f| f.len() <= MAX_SEGMENT));
        let joined: Vec<u8> = f.iter().flat_map(|f| f[4..].to_vec()).collect();
        assert_eq!(joined[..3], [0x03, 0x0D, 0x44]);
        assert_eq!(joined.len(), 7 + 200_000);
    }
}
