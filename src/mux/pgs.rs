//! Moves PGS (Blu-ray) subtitles into a cropped picture.
//!
//! A PGS display set draws its pictures on a canvas the size of the video
//! it was made for (1920×1080), at absolute positions, often in a black bar.
//! Copied unchanged beside a cropped encode, players stretch that canvas
//! over the smaller picture (mpv, VLC: subtitles squashed and moved) or
//! clip it (a subtitle in the bottom bar vanishes). So the canvas is given
//! the cropped size, and every window with its pictures is moved by the
//! crop's offset, then into the picture where it would fall outside (a
//! subtitle in the bottom bar rises to the picture's bottom edge). A
//! display set moves as one, by what it shows: two lines in the bottom bar
//! rise together and keep their layout (each raised to the edge on its own
//! they covered each other), and a window larger than the cropped picture
//! (one over the whole frame) is cut to it while its pictures move. Nothing
//! else changes: timing, palettes and bitmaps are kept byte for byte.
//!
//! The file is a `.sup` as mkvextract writes it: segments of `PG`, PTS and
//! DTS (4 bytes each), type, 2-byte size, data. Presentation composition
//! (PCS, 0x16): canvas width and height, then per picture its window and
//! position; window definition (WDS, 0x17): per window its position and
//! size; object definition (ODS, 0x15): its first fragment holds the
//! picture's width and height. A display set ends with 0x80.

use crate::analysis::crop::Rect;

const PCS: u8 = 0x16;
const WDS: u8 = 0x17;
const ODS: u8 = 0x15;
const END: u8 = 0x80;
/// "PG", PTS, DTS, type, size.
const HEADER: usize = 13;

/// `sup` with its canvas cropped to `crop` of a `width`×`height` video,
/// windows and pictures moved with it. A canvas of another size than the
/// video's has the crop scaled to it. Errors name what is malformed.
pub fn recrop(sup: &[u8], width: u32, height: u32, crop: Rect) -> Result<Vec<u8>, String> {
    let mut out = sup.to_vec();
    let segments = segments(sup)?;
    // A window keeps its place through an epoch's display sets that do not
    // define it again; a picture is shown by its object ID in later sets.
    let mut moved: Vec<Shift> = Vec::new();
    let mut sizes = std::collections::HashMap::new();
    for set in segments.split_inclusive(|s| s.kind == END) {
        for s in set.iter().filter(|s| s.kind == ODS) {
            if let Some((id, size)) = object_size(&sup[s.data.clone()]) {
                sizes.insert(id, size);
            }
        }
        let pcs = set.iter().find(|s| s.kind == PCS).map(|p| &sup[p.data.clone()]);
        let size = pcs.map(canvas).transpose()?;
        let area = scaled(crop, (width, height), size.unwrap_or((width, height)));
        let shown = pcs.map(|p| shown(p, &sizes)).transpose()?.unwrap_or_default();
        for s in set.iter().filter(|s| s.kind == WDS) {
            for (id, shift) in move_windows(&mut out[s.data.clone()], area, &shown)? {
                moved.retain(|(w, _)| *w != id);
                moved.push((id, shift));
            }
        }
        for s in set.iter().filter(|s| s.kind == PCS) {
            let area = scaled(crop, (width, height), canvas(&sup[s.data.clone()])?);
            move_pictures(&mut out[s.data.clone()], area, &moved)?;
        }
    }
    Ok(out)
}

/// One segment: its type and where its data is.
struct Segment {
    kind: u8,
    data: std::ops::Range<usize>,
}

fn segments(sup: &[u8]) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < sup.len() {
        let header = sup.get(at..at + HEADER).ok_or("a segment header is cut short")?;
        if &header[..2] != b"PG" {
            return Err(format!("no PGS segment at byte {at}"));
        }
        let size = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let data = at + HEADER..at + HEADER + size;
        if data.end > sup.len() {
            return Err(format!("the segment at byte {at} is cut short"));
        }
        out.push(Segment { kind: header[10], data: data.clone() });
        at = data.end;
    }
    Ok(out)
}

fn u16_at(d: &[u8], i: usize) -> Result<i64, String> {
    d.get(i..i + 2).map(|b| i64::from(u16::from_be_bytes([b[0], b[1]]))).ok_or_else(|| "a segment is cut short".into())
}

fn set_u16(d: &mut [u8], i: usize, v: i64) {
    d[i..i + 2].copy_from_slice(&(v.clamp(0, 0xFFFF) as u16).to_be_bytes());
}

/// A PCS's canvas width and height.
fn canvas(pcs: &[u8]) -> Result<(u32, u32), String> {
    Ok((u16_at(pcs, 0)? as u32, u16_at(pcs, 2)? as u32))
}

/// The cropped area on the canvas: (x, y, width, height).
type Area = (i64, i64, i64, i64);
/// A window's ID and how far it moved (x, y).
type Shift = (u8, (i64, i64));

/// `crop` of a `video`-sized picture on a canvas of `canvas` size.
fn scaled(crop: Rect, video: (u32, u32), canvas: (u32, u32)) -> Area {
    let sx = f64::from(canvas.0) / f64::from(video.0.max(1));
    let sy = f64::from(canvas.1) / f64::from(video.1.max(1));
    let s = |v: u32, k: f64| (f64::from(v) * k).round() as i64;
    (s(crop.x, sx), s(crop.y, sy), s(crop.width, sx), s(crop.height, sy))
}

/// A rectangle on the canvas: (x, y, width, height).
type Rect4 = (i64, i64, i64, i64);

/// An ODS's object ID and picture size, where it is an object's first
/// fragment.
fn object_size(ods: &[u8]) -> Option<(u16, (i64, i64))> {
    let first = ods.get(3)? & 0x80 != 0;
    let id = u16::from_be_bytes([*ods.first()?, *ods.get(1)?]);
    first.then(|| Some((id, (u16_at(ods, 7).ok()?, u16_at(ods, 9).ok()?))))?
}

/// Where a PCS shows its pictures whose size is known (from `sizes`, or
/// from the composition's own cropping).
fn shown(pcs: &[u8], sizes: &std::collections::HashMap<u16, (i64, i64)>) -> Result<Vec<Rect4>, String> {
    let count = usize::from(*pcs.get(10).ok_or("a composition is cut short")?);
    let mut at = 11;
    let mut rects = Vec::new();
    for _ in 0..count {
        let id = u16_at(pcs, at)? as u16;
        let cropped = pcs.get(at + 3).ok_or("a composition is cut short")? & 0x80 != 0;
        let (x, y) = (u16_at(pcs, at + 4)?, u16_at(pcs, at + 6)?);
        let size = if cropped { Some((u16_at(pcs, at + 12)?, u16_at(pcs, at + 14)?)) } else { sizes.get(&id).copied() };
        rects.extend(size.map(|(w, h)| (x, y, w, h)));
        at += if cropped { 16 } else { 8 };
    }
    Ok(rects)
}

/// The smallest rectangle holding all of `rects`.
fn union(rects: &[Rect4]) -> Option<Rect4> {
    let x = rects.iter().map(|r| r.0).min()?;
    let y = rects.iter().map(|r| r.1).min()?;
    let right = rects.iter().map(|r| r.0 + r.2).max()?;
    let bottom = rects.iter().map(|r| r.1 + r.3).max()?;
    Some((x, y, right - x, bottom - y))
}

/// How far a span at `start`, `len` long, moves to lie inside `0..room`
/// (none where it cannot).
fn into(start: i64, len: i64, room: i64) -> i64 {
    if len > room { 0 } else { start.clamp(0, room - len) - start }
}

/// Moves the windows of a WDS into `area` (then relative to it), all by
/// one shift: the crop's offset, then what brings the pictures the set
/// shows (`shown`; its windows where none is known) into the picture; a
/// window then still outside is moved or cut to fit. Returns each window's
/// shift, which its pictures take.
fn move_windows(wds: &mut [u8], (x0, y0, w0, h0): Area, shown: &[Rect4]) -> Result<Vec<Shift>, String> {
    let count = usize::from(*wds.first().ok_or("an empty window definition")?);
    let mut windows = Vec::new();
    for i in 0..count {
        let at = 1 + i * 9;
        let id = *wds.get(at).ok_or("a window definition is cut short")?;
        windows.push((
            id,
            at,
            (u16_at(wds, at + 1)?, u16_at(wds, at + 3)?, u16_at(wds, at + 5)?, u16_at(wds, at + 7)?),
        ));
    }
    let all: Vec<Rect4> = windows.iter().map(|w| w.2).collect();
    let Some(u) = union(shown).or_else(|| union(&all)) else { return Ok(Vec::new()) };
    let (ux, uy) = (u.0 - x0, u.1 - y0);
    let (dx, dy) = (-x0 + into(ux, u.2, w0), -y0 + into(uy, u.3, h0));
    let mut shifts = Vec::new();
    for (id, at, (x, y, w, h)) in windows {
        // What the set shows lies inside its windows, and inside the
        // picture once moved: a window kept to the picture still holds it.
        let (w, h) = (w.min(w0), h.min(h0));
        let (nx, ny) = ((x + dx).clamp(0, w0 - w), (y + dy).clamp(0, h0 - h));
        set_u16(wds, at + 1, nx);
        set_u16(wds, at + 3, ny);
        set_u16(wds, at + 5, w);
        set_u16(wds, at + 7, h);
        // (Pictures that would not fit together, one in each bar, move
        // with their own windows, each into the picture.)
        let fits = shown.is_empty() || (u.2 <= w0 && u.3 <= h0);
        shifts.push((id, if fits { (dx, dy) } else { (nx - x, ny - y) }));
    }
    Ok(shifts)
}

/// Gives a PCS the cropped canvas and moves its pictures as their windows
/// moved (by the crop's offset when their window is unknown).
fn move_pictures(pcs: &mut [u8], (x0, y0, w0, h0): Area, moved: &[Shift]) -> Result<(), String> {
    set_u16(pcs, 0, w0);
    set_u16(pcs, 2, h0);
    let count = usize::from(*pcs.get(10).ok_or("a composition is cut short")?);
    let mut at = 11;
    for _ in 0..count {
        let window = *pcs.get(at + 2).ok_or("a composition is cut short")?;
        let cropped = pcs.get(at + 3).ok_or("a composition is cut short")? & 0x80 != 0;
        let (dx, dy) = moved.iter().find(|(w, _)| *w == window).map_or((-x0, -y0), |(_, s)| *s);
        let (x, y) = (u16_at(pcs, at + 4)?, u16_at(pcs, at + 6)?);
        set_u16(pcs, at + 4, x + dx);
        set_u16(pcs, at + 6, y + dy);
        at += if cropped { 16 } else { 8 };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(kind: u8, pts: u32, data: &[u8]) -> Vec<u8> {
        let mut s = b"PG".to_vec();
        s.extend(pts.to_be_bytes());
        s.extend(0u32.to_be_bytes());
        s.push(kind);
        s.extend((data.len() as u16).to_be_bytes());
        s.extend(data);
        s
    }

    fn be(v: u16) -> [u8; 2] {
        v.to_be_bytes()
    }

    /// A display set showing one 400×60 picture in window 0 at (x, y) of a
    /// 1920×1080 canvas.
    fn display_set(x: u16, y: u16) -> Vec<u8> {
        let mut pcs = [be(1920), be(1080)].concat();
        pcs.extend([0x10, 0, 1, 0x80, 0, 0, 1]);
        pcs.extend([be(0).as_slice(), &[0, 0], &be(x), &be(y)].concat());
        let wds = [[1u8, 0].as_slice(), &be(x), &be(y), &be(400), &be(60)].concat();
        [segment(PCS, 90, &pcs), segment(WDS, 90, &wds), segment(0x14, 90, &[0; 5]), segment(END, 90, &[])].concat()
    }

    fn picture_at(sup: &[u8]) -> (i64, i64, (u32, u32)) {
        let s = segments(sup).unwrap();
        let pcs = &sup[s[0].data.clone()];
        (u16_at(pcs, 15).unwrap(), u16_at(pcs, 17).unwrap(), canvas(pcs).unwrap())
    }

    #[test]
    fn pictures_move_with_the_crop_and_into_the_picture() {
        let crop = Rect { width: 1920, height: 800, x: 0, y: 140 };
        // In the picture: moved up by the top bar.
        let out = recrop(&display_set(760, 700), 1920, 1080, crop).unwrap();
        assert_eq!(picture_at(&out), (760, 560, (1920, 800)));
        // In the bottom bar: raised to the picture's bottom edge.
        let out = recrop(&display_set(760, 980), 1920, 1080, crop).unwrap();
        assert_eq!(picture_at(&out), (760, 740, (1920, 800)));
        // The window moved alike; the rest is byte for byte the same.
        let s = segments(&out).unwrap();
        assert_eq!(u16_at(&out[s[1].data.clone()], 4).unwrap(), 740);
        assert_eq!(out.len(), display_set(760, 980).len());
        assert_eq!(out[s[2].data.clone()], [0; 5]);
    }

    #[test]
    fn a_later_set_without_windows_moves_as_its_window_did() {
        let crop = Rect { width: 1440, height: 1080, x: 240, y: 0 };
        let mut second = display_set(100, 900);
        // Drop the second set's WDS: its picture is in window 0 from the first.
        let s = segments(&second).unwrap();
        second.drain(s[1].data.start - HEADER..s[1].data.end);
        let sup = [display_set(100, 900), second].concat();
        let out = recrop(&sup, 1920, 1080, crop).unwrap();
        let s = segments(&out).unwrap();
        let second_pcs = &out[s[4].data.clone()];
        assert_eq!((u16_at(second_pcs, 15).unwrap(), u16_at(second_pcs, 17).unwrap()), (0, 900));
    }

    /// A display set showing `pictures` (x, y, each 400×40, object IDs
    /// from 0) in `windows` (x, y, w, h; picture `i` in window `i`, or in
    /// window 0 where there is one window) of a 1280×720 canvas.
    fn display_set_of(pictures: &[(u16, u16)], windows: &[(u16, u16, u16, u16)]) -> Vec<u8> {
        let mut pcs = [be(1280), be(720)].concat();
        pcs.extend([0x10, 0, 1, 0x80, 0, 0, pictures.len() as u8]);
        for (i, (x, y)) in pictures.iter().enumerate() {
            let window = if windows.len() == 1 { 0 } else { i as u8 };
            pcs.extend([be(i as u16).as_slice(), &[window, 0], &be(*x), &be(*y)].concat());
        }
        let mut wds = vec![windows.len() as u8];
        for (i, (x, y, w, h)) in windows.iter().enumerate() {
            wds.extend([[i as u8].as_slice(), &be(*x), &be(*y), &be(*w), &be(*h)].concat());
        }
        let mut set = [segment(PCS, 90, &pcs), segment(WDS, 90, &wds), segment(0x14, 90, &[0; 5])].concat();
        for i in 0..pictures.len() {
            let ods = [be(i as u16).as_slice(), &[0, 0xC0, 0, 0, 4], &be(400), &be(40)].concat();
            set.extend(segment(ODS, 90, &ods));
        }
        set.extend(segment(END, 90, &[]));
        set
    }

    /// Each picture's (x, y), each window's (x, y, w, h), and the canvas.
    type Layout = (Vec<(i64, i64)>, Vec<Rect4>, (u32, u32));

    fn layout(sup: &[u8]) -> Layout {
        let s = segments(sup).unwrap();
        let pcs = &sup[s[0].data.clone()];
        let pictures = (0..usize::from(pcs[10]))
            .map(|i| (u16_at(pcs, 11 + 8 * i + 4).unwrap(), u16_at(pcs, 11 + 8 * i + 6).unwrap()))
            .collect();
        let wds = &sup[s[1].data.clone()];
        let windows = (0..usize::from(wds[0]))
            .map(|i| {
                let at = 1 + 9 * i;
                let v = |k| u16_at(wds, at + k).unwrap();
                (v(1), v(3), v(5), v(7))
            })
            .collect();
        (pictures, windows, canvas(pcs).unwrap())
    }

    #[test]
    fn a_window_over_the_whole_frame_is_cut_to_the_picture_and_its_picture_moves() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        let out = recrop(&display_set_of(&[(440, 560)], &[(0, 0, 1280, 720)]), 1280, 720, crop).unwrap();
        assert_eq!(layout(&out), (vec![(440, 472)], vec![(0, 0, 1280, 544)], (1280, 544)));
        // Its picture in the bottom bar: raised to the picture's edge.
        let out = recrop(&display_set_of(&[(440, 660)], &[(0, 0, 1280, 720)]), 1280, 720, crop).unwrap();
        assert_eq!(layout(&out).0, vec![(440, 504)]);
    }

    #[test]
    fn two_lines_in_the_bottom_bar_rise_together() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        let set = display_set_of(&[(440, 640), (440, 680)], &[(440, 640, 400, 40), (440, 680, 400, 40)]);
        let out = recrop(&set, 1280, 720, crop).unwrap();
        // 40 rows apart as they were, the lower one at the picture's edge.
        let (pictures, windows, _) = layout(&out);
        assert_eq!(pictures, vec![(440, 464), (440, 504)]);
        assert_eq!(windows, vec![(440, 464, 400, 40), (440, 504, 400, 40)]);
        // One line in each bar cannot keep its layout: each comes inside.
        let set = display_set_of(&[(440, 20), (440, 680)], &[(440, 20, 400, 40), (440, 680, 400, 40)]);
        let (pictures, _, _) = layout(&recrop(&set, 1280, 720, crop).unwrap());
        assert_eq!(pictures, vec![(440, 0), (440, 504)]);
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(recrop(b"PX", 1920, 1080, Rect::full(1920, 1080)).is_err());
        let mut cut = display_set(0, 0);
        cut.truncate(20);
        assert!(recrop(&cut, 1920, 1080, Rect::full(1920, 1080)).is_err());
    }
}
