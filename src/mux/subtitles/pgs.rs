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
//! (one over the whole frame) is cut to it while its pictures move. A
//! picture larger than the cropped picture is first cut to the pixels it
//! shows ([`trim`]). Nothing else changes: timing, palettes and the other
//! bitmaps are kept byte for byte.
//!
//! The file is a `.sup` as mkvextract writes it: segments of `PG`, PTS and
//! DTS (4 bytes each), type, 2-byte size, data. Presentation composition
//! (PCS, 0x16): canvas width and height, then per picture its window and
//! position; window definition (WDS, 0x17): per window its position and
//! size; object definition (ODS, 0x15): its first fragment holds the
//! picture's width and height. A display set ends with 0x80.

mod trim;

use crate::analysis::crop::Rect;
use std::collections::HashMap;

const PCS: u8 = 0x16;
const WDS: u8 = 0x17;
/// Palette definition (PDS): palette ID and version, then per entry its
/// number, Y, Cr, Cb and opacity.
const PDS: u8 = 0x14;
const ODS: u8 = 0x15;
const END: u8 = 0x80;
/// "PG", PTS, DTS, type, size.
const HEADER: usize = 13;

/// `sup` with its canvas cropped to `crop` of a `width`×`height` video,
/// windows and pictures moved with it. A canvas of another size than the
/// video's has the crop scaled to it. Errors name what is malformed, and a
/// picture whose visible pixels are larger than the cropped picture (it
/// cannot be moved into it).
pub fn recrop(sup: &[u8], width: u32, height: u32, crop: Rect) -> Result<Vec<u8>, String> {
    let trimmed = trim::trim_oversized(sup, |c| scaled(crop, (width, height), c))?;
    let sup = trimmed.as_slice();
    let mut out = sup.to_vec();
    let segments = segments(sup)?;
    // A window keeps its place through an epoch's display sets that do not
    // define it again; a picture is shown by its object ID in later sets.
    let mut windows: HashMap<u8, Placed> = HashMap::new();
    let mut sizes = HashMap::new();
    for set in segments.split_inclusive(|s| s.kind == END) {
        let Some(pcs) = set.iter().find(|s| s.kind == PCS) else { continue };
        let area = scaled(crop, (width, height), canvas(&sup[pcs.data.clone()])?);
        for s in set.iter().filter(|s| s.kind == ODS) {
            if let Some((id, (w, h))) = object_size(&sup[s.data.clone()]) {
                if w > area.2 || h > area.3 {
                    let at = clock(&sup[s.data.start - HEADER..]);
                    return Err(format!(
                        "a {w}x{h} picture at {at} is larger than the cropped {}x{} picture",
                        area.2, area.3
                    ));
                }
                sizes.insert(id, (w, h));
            }
        }
        let pictures = pictures(&sup[pcs.data.clone()], &sizes)?;
        let wds = set.iter().find(|s| s.kind == WDS);
        // A set that defines its windows moves what it shows together;
        // one that does not keeps its pictures in their windows as moved.
        let shifts = match wds {
            Some(_) => together(&pictures, area),
            None => pictures.iter().map(|_| None).collect(),
        };
        if let Some(w) = wds {
            place_windows(&mut out[w.data.clone()], area, &pictures, &shifts, &mut windows)?;
        }
        move_pictures(&mut out[pcs.data.clone()], area, &pictures, &shifts, &windows);
    }
    Ok(out)
}

/// A segment's time (its header's PTS, 90 kHz) as `h:mm:ss.mmm`.
fn clock(header: &[u8]) -> String {
    let ms = u64::from(u32::from_be_bytes([header[2], header[3], header[4], header[5]])) / 90;
    format!("{}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
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
/// A window as moved: where it is on the cropped canvas, and how far it
/// moved (its pictures move as far, then into it).
#[derive(Debug, Clone, Copy)]
struct Placed {
    rect: Rect4,
    shift: (i64, i64),
}

/// A picture a composition shows: where its entry is in the PCS, its
/// window, where it is, and its size where known.
struct Picture {
    at: usize,
    /// Its object's ID.
    id: u16,
    /// The composition shows the picture cropped (its size is the crop's).
    cropped: bool,
    window: u8,
    x: i64,
    y: i64,
    size: Option<(i64, i64)>,
}

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

/// The pictures a PCS shows, with their size where known (from `sizes`, or
/// from the composition's own cropping).
fn pictures(pcs: &[u8], sizes: &HashMap<u16, (i64, i64)>) -> Result<Vec<Picture>, String> {
    let count = usize::from(*pcs.get(10).ok_or("a composition is cut short")?);
    let mut at = 11;
    let mut out = Vec::new();
    for _ in 0..count {
        let id = u16_at(pcs, at)? as u16;
        let window = *pcs.get(at + 2).ok_or("a composition is cut short")?;
        let cropped = pcs.get(at + 3).ok_or("a composition is cut short")? & 0x80 != 0;
        let (x, y) = (u16_at(pcs, at + 4)?, u16_at(pcs, at + 6)?);
        let size = if cropped { Some((u16_at(pcs, at + 12)?, u16_at(pcs, at + 14)?)) } else { sizes.get(&id).copied() };
        out.push(Picture { at, id, cropped, window, x, y, size });
        at += if cropped { 16 } else { 8 };
    }
    Ok(out)
}

/// The smallest rectangle holding all of `rects`.
fn union(rects: impl IntoIterator<Item = Rect4>) -> Option<Rect4> {
    rects.into_iter().reduce(|a, b| {
        let (x, y) = (a.0.min(b.0), a.1.min(b.1));
        ((x), (y), (a.0 + a.2).max(b.0 + b.2) - x, (a.1 + a.3).max(b.1 + b.3) - y)
    })
}

/// How far a span at `start`, `len` long, moves to lie inside `0..room`
/// (none where it cannot).
fn into(start: i64, len: i64, room: i64) -> i64 {
    if len > room { 0 } else { start.clamp(0, room - len) - start }
}

/// How far `r` moves into `area`: by the crop's offset, then into the
/// picture where it would fall outside.
fn shift_into(r: Rect4, (x0, y0, w0, h0): Area) -> (i64, i64) {
    (-x0 + into(r.0 - x0, r.2, w0), -y0 + into(r.1 - y0, r.3, h0))
}

/// Each picture's shift (`None` where its size is unknown: it moves with
/// its window): all by one where they fit in the picture together (two
/// lines in the bottom bar rise as one and keep their layout), else each
/// on its own (a line in each bar).
fn together(pictures: &[Picture], area: Area) -> Vec<Option<(i64, i64)>> {
    let rect = |p: &Picture| p.size.map(|(w, h)| (p.x, p.y, w, h));
    let all = union(pictures.iter().filter_map(rect));
    let one = all.filter(|u| u.2 <= area.2 && u.3 <= area.3).map(|u| shift_into(u, area));
    pictures.iter().map(|p| rect(p).map(|r| one.unwrap_or_else(|| shift_into(r, area)))).collect()
}

/// Moves the windows of a WDS into `area` (then relative to it), each
/// with the pictures the set shows in it (`shifts`), cut to the picture
/// where larger (a window over the whole frame) and grown to hold its
/// pictures as moved; a window showing nothing moves by the crop's offset
/// into the picture. Each is recorded in `windows`.
fn place_windows(
    wds: &mut [u8],
    area: Area,
    pictures: &[Picture],
    shifts: &[Option<(i64, i64)>],
    windows: &mut HashMap<u8, Placed>,
) -> Result<(), String> {
    let (w0, h0) = (area.2, area.3);
    let count = usize::from(*wds.first().ok_or("an empty window definition")?);
    for i in 0..count {
        let at = 1 + i * 9;
        let id = *wds.get(at).ok_or("a window definition is cut short")?;
        let (x, y) = (u16_at(wds, at + 1)?, u16_at(wds, at + 3)?);
        let (w, h) = (u16_at(wds, at + 5)?.min(w0), u16_at(wds, at + 7)?.min(h0));
        let mine: Vec<(Rect4, (i64, i64))> = (pictures.iter().zip(shifts))
            .filter(|(p, _)| p.window == id)
            .filter_map(|(p, s)| Some(((p.x, p.y, p.size?.0, p.size?.1), (*s)?)))
            .collect();
        let shift = mine.first().map_or_else(|| shift_into((x, y, w, h), area), |m| m.1);
        let (nx, ny) = ((x + shift.0).clamp(0, w0 - w), (y + shift.1).clamp(0, h0 - h));
        let moved = mine.iter().map(|(r, s)| (r.0 + s.0, r.1 + s.1, r.2, r.3));
        let rect = union(std::iter::once((nx, ny, w, h)).chain(moved)).expect("one rectangle at least");
        set_u16(wds, at + 1, rect.0);
        set_u16(wds, at + 3, rect.1);
        set_u16(wds, at + 5, rect.2);
        set_u16(wds, at + 7, rect.3);
        windows.insert(id, Placed { rect, shift });
    }
    Ok(())
}

/// Gives a PCS the cropped canvas and moves its pictures: each by its
/// shift, else as its window moved (by the crop's offset when its window is
/// unknown), then into its window and the picture.
fn move_pictures(
    pcs: &mut [u8],
    (x0, y0, w0, h0): Area,
    pictures: &[Picture],
    shifts: &[Option<(i64, i64)>],
    windows: &HashMap<u8, Placed>,
) {
    set_u16(pcs, 0, w0);
    set_u16(pcs, 2, h0);
    for (p, s) in pictures.iter().zip(shifts) {
        let window = windows.get(&p.window);
        let (dx, dy) = s.or(window.map(|w| w.shift)).unwrap_or((-x0, -y0));
        let (w, h) = p.size.unwrap_or((1, 1));
        let within = window.map_or((0, 0, w0, h0), |w| w.rect);
        let fit = |v: i64, lo: i64, room: i64, len: i64| v.clamp(lo, (lo + room - len).max(lo));
        let x = fit(fit(p.x + dx, within.0, within.2, w), 0, w0, w);
        let y = fit(fit(p.y + dy, within.1, within.3, h), 0, h0, h);
        set_u16(pcs, p.at + 4, x);
        set_u16(pcs, p.at + 6, y);
    }
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
        [segment(PCS, 90, &pcs), segment(WDS, 90, &wds), segment(PDS, 90, &[0; 5]), segment(END, 90, &[])].concat()
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
        let shown: Vec<(u16, u8, u16, u16)> = (pictures.iter().enumerate())
            .map(|(i, (x, y))| (i as u16, if windows.len() == 1 { 0 } else { i as u8 }, *x, *y))
            .collect();
        let objects: Vec<(u16, u16, u16)> = (0..pictures.len()).map(|i| (i as u16, 400, 40)).collect();
        any_set(&shown, Some(windows), &objects)
    }

    /// A display set on a 1280×720 canvas: its composition showing
    /// `shown` (object, window, x, y), its windows where given (IDs from
    /// 0), and the `objects` it defines (ID, width, height).
    fn any_set(
        shown: &[(u16, u8, u16, u16)],
        windows: Option<&[(u16, u16, u16, u16)]>,
        objects: &[(u16, u16, u16)],
    ) -> Vec<u8> {
        let mut pcs = [be(1280), be(720)].concat();
        pcs.extend([0x10, 0, 1, 0x80, 0, 0, shown.len() as u8]);
        for (object, window, x, y) in shown {
            pcs.extend([be(*object).as_slice(), &[*window, 0], &be(*x), &be(*y)].concat());
        }
        let mut set = segment(PCS, 90, &pcs);
        if let Some(windows) = windows {
            let mut wds = vec![windows.len() as u8];
            for (i, (x, y, w, h)) in windows.iter().enumerate() {
                wds.extend([[i as u8].as_slice(), &be(*x), &be(*y), &be(*w), &be(*h)].concat());
            }
            set.extend(segment(WDS, 90, &wds));
        }
        set.extend(segment(PDS, 90, &[0; 5]));
        for (id, w, h) in objects {
            let ods = [be(*id).as_slice(), &[0, 0xC0, 0, 0, 4], &be(*w), &be(*h)].concat();
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
    fn a_line_shown_later_in_a_window_defined_earlier_lands_where_its_window_went() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        // Window 0 in the top bar, window 1 in the bottom one; the first set
        // shows the top line only, the second (no WDS) the bottom line.
        let windows = [(200, 16, 400, 40), (200, 650, 400, 40)];
        let first = any_set(&[(0, 0, 200, 16)], Some(&windows), &[(0, 400, 40), (1, 400, 40)]);
        let second = any_set(&[(1, 1, 200, 650)], None, &[]);
        let out = recrop(&[first, second].concat(), 1280, 720, crop).unwrap();
        let s = segments(&out).unwrap();
        let pcs = s.iter().filter(|s| s.kind == PCS).map(|s| &out[s.data.clone()]).collect::<Vec<_>>();
        let at = |pcs: &[u8]| (u16_at(pcs, 15).unwrap(), u16_at(pcs, 17).unwrap());
        assert_eq!(at(pcs[0]), (200, 0));
        // At the picture's bottom edge, as its window was put.
        assert_eq!(at(pcs[1]), (200, 504));
    }

    #[test]
    fn one_window_with_a_line_in_each_bar_moves_each_line_into_the_picture() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        let set =
            any_set(&[(0, 0, 200, 16), (1, 0, 200, 650)], Some(&[(0, 0, 1280, 720)]), &[(0, 400, 40), (1, 400, 40)]);
        let (pictures, windows, _) = layout(&recrop(&set, 1280, 720, crop).unwrap());
        assert_eq!(pictures, vec![(200, 0), (200, 504)]);
        assert_eq!(windows, vec![(0, 0, 1280, 544)]);
    }

    /// A display set on a 1280×720 canvas showing one full-frame picture
    /// in a full-frame window, colour 1 (opaque) on `lit` (x, y, w, h),
    /// transparent colour 0 elsewhere.
    fn full_frame_set(lit: Rect4) -> Vec<u8> {
        let (w, h) = (1280usize, 720usize);
        let mut pixels = vec![0u8; w * h];
        for y in lit.1..lit.1 + lit.3 {
            let row = y as usize * w;
            pixels[row + lit.0 as usize..row + (lit.0 + lit.2) as usize].fill(1);
        }
        let rle = trim::encode(&pixels, w);
        let set = any_set(&[(0, 0, 0, 0)], Some(&[(0, 0, 1280, 720)]), &[]);
        let s = segments(&set).unwrap();
        let length = rle.len() + 4;
        let mut ods =
            [be(0).as_slice(), &[0, 0xC0, (length >> 16) as u8], &be(length as u16), &be(1280), &be(720)].concat();
        ods.extend(&rle);
        let pds = [0u8, 0, 1, 16, 128, 128, 255];
        let end = s.len() - 1;
        let before: Vec<u8> = set[..s[end].data.start - HEADER].to_vec();
        [before, segment(PDS, 90, &pds), segment(ODS, 90, &ods), segment(END, 90, &[])].concat()
    }

    #[test]
    fn a_picture_larger_than_the_cropped_picture_is_cut_to_what_it_shows() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        // A line drawn in the bottom bar of a full-frame picture.
        let out = recrop(&full_frame_set((440, 650, 400, 40)), 1280, 720, crop).unwrap();
        let s = segments(&out).unwrap();
        let ods = s.iter().find(|s| s.kind == ODS).map(|s| &out[s.data.clone()]).unwrap();
        assert_eq!(object_size(ods), Some((0, (400, 40))));
        let pixels = trim::decode(&ods[11..], (400, 40)).unwrap();
        assert!(pixels.iter().all(|p| *p == 1));
        // Raised to the picture's bottom edge, as a line drawn that size.
        assert_eq!(layout(&out).0, vec![(440, 504)]);
        assert_eq!(layout(&out).1, vec![(0, 0, 1280, 544)]);
        // In the picture: where it was drawn, less the top bar.
        let out = recrop(&full_frame_set((440, 300, 400, 40)), 1280, 720, crop).unwrap();
        assert_eq!(layout(&out).0, vec![(440, 212)]);
    }

    #[test]
    fn a_large_picture_a_composition_crops_is_not_cut() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        let mut set = full_frame_set((440, 650, 400, 40));
        // The composition shows the bottom band of the picture, cropped.
        let s = segments(&set).unwrap();
        let pcs = s[0].data.clone();
        set[pcs.start + 14] = 0x80;
        let entry = [be(0).as_slice(), &be(600), &be(1280), &be(100)].concat();
        set.splice(pcs.end..pcs.end, entry);
        let size = u16_at(&set, pcs.start - 2).unwrap() + 8;
        set_u16(&mut set, pcs.start - 2, size);
        // Not cut (its crop is of the picture as drawn): refused as larger
        // than the cropped picture, and the track copied as drawn.
        let e = recrop(&set, 1280, 720, crop).unwrap_err();
        assert!(e.contains("a 1280x720 picture"), "{e}");
    }

    #[test]
    fn a_picture_showing_more_than_the_cropped_picture_is_refused() {
        let crop = Rect { width: 1280, height: 544, x: 0, y: 88 };
        let e = recrop(&full_frame_set((0, 20, 1280, 600)), 1280, 720, crop).unwrap_err();
        assert!(e.contains("a 1280x720 picture at 0:00:00.001 is larger than the cropped 1280x544 picture"), "{e}");
    }

    #[test]
    fn malformed_files_are_refused() {
        assert!(recrop(b"PX", 1920, 1080, Rect::full(1920, 1080)).is_err());
        let mut cut = display_set(0, 0);
        cut.truncate(20);
        assert!(recrop(&cut, 1920, 1080, Rect::full(1920, 1080)).is_err());
    }
}
