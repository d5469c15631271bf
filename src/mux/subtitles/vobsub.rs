//! Moves VobSub (DVD) subtitles into a cropped picture.
//!
//! As with PGS (see [`super::pgs`]), a DVD subpicture is drawn on a canvas
//! of the full frame (the `.idx`'s `size: 720x480`) at absolute positions
//! (its display area, `SET_DAREA`), often in the bottom bar of a
//! letterboxed film. The canvas is given the cropped size and each display
//! area is moved by the crop's offset, then into the picture where it would
//! fall outside. The bitmaps, palette and timing are untouched.
//!
//! The files are a `.idx`/`.sub` pair as mkvextract writes them: the `.sub`
//! an MPEG program stream whose private-stream-1 packets carry the
//! subpictures, each starting at a `filepos:` of the `.idx`. A subpicture
//! (SPU) is its size, the offset of its control sequences, the bitmap, then
//! the control sequences, whose command 0x05 sets the display area. The
//! display areas are rewritten in place, so the `.idx` positions hold.

use crate::analysis::crop::Rect;

/// `idx` with its canvas set to the cropped size, and `sub` with every
/// subpicture's display area moved into `crop` of a `width`×`height`
/// video (scaled to the canvas when it has another size). Errors name
/// what is malformed.
pub fn recrop(idx: &str, sub: &mut [u8], width: u32, height: u32, crop: Rect) -> Result<String, String> {
    let canvas = canvas(idx).unwrap_or((width, height));
    let sx = f64::from(canvas.0) / f64::from(width.max(1));
    let sy = f64::from(canvas.1) / f64::from(height.max(1));
    let s = |v: u32, k: f64| (f64::from(v) * k).round() as i64;
    let area = (s(crop.x, sx), s(crop.y, sy), s(crop.width, sx), s(crop.height, sy));
    for (pos, time) in filepos(idx) {
        let mut spu = Spu::gather(sub, pos)?;
        for d in spu.display_areas()? {
            // An area taller than the picture (a full-frame subpicture,
            // mostly transparent) first shrinks to the rows it shows.
            // So does one reaching into a bar: its text inside the picture
            // stays where it is (moved whole, it rose by the bar's height).
            let a = Area::of(&spu.bytes[d.area..d.area + 6]);
            let taller = a.height() > area.3;
            if taller || a.y1 < area.1 || a.y2 > area.1 + area.3 - 1 {
                match spu.trim_to_shown(&d) {
                    Ok(()) => {}
                    Err(e) if taller => return Err(format!("{e} (the subpicture at {time})")),
                    Err(_) => {}
                }
            }
            let old = spu.bytes[d.area..d.area + 6].to_vec();
            let new = moved(&old, area).map_err(|e| format!("{e} (the subpicture at {time})"))?;
            spu.bytes[d.area..d.area + 6].copy_from_slice(&new);
        }
        spu.write_back(sub);
    }
    let size = format!("size: {}x{}", area.2, area.3);
    Ok(idx.lines().map(|l| if l.starts_with("size:") { size.as_str() } else { l }).collect::<Vec<_>>().join("\n")
        + "\n")
}

/// The `.idx`'s canvas (`size: 720x480`).
fn canvas(idx: &str) -> Option<(u32, u32)> {
    let size = idx.lines().find_map(|l| l.strip_prefix("size:"))?;
    let (w, h) = size.trim().split_once('x')?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// Where each subpicture starts in the `.sub` (`filepos: 000000000`, hex),
/// with its time as the line gives it (`timestamp: 00:00:00:500`).
fn filepos(idx: &str) -> Vec<(usize, String)> {
    idx.lines()
        .filter_map(|l| {
            let pos = usize::from_str_radix(l.split("filepos:").nth(1)?.trim(), 16).ok()?;
            let time = l.split("timestamp:").nth(1).and_then(|t| t.split(',').next()).unwrap_or("").trim();
            Some((pos, time.to_string()))
        })
        .collect()
}

/// A display area: x1, x2, y1, y2, inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Area {
    x1: i64,
    x2: i64,
    y1: i64,
    y2: i64,
}

impl Area {
    /// From its 6 bytes (x1, x2, y1, y2 in 12 bits each).
    fn of(b: &[u8]) -> Area {
        Area {
            x1: (i64::from(b[0]) << 4) | i64::from(b[1] >> 4),
            x2: (i64::from(b[1] & 0x0f) << 8) | i64::from(b[2]),
            y1: (i64::from(b[3]) << 4) | i64::from(b[4] >> 4),
            y2: (i64::from(b[4] & 0x0f) << 8) | i64::from(b[5]),
        }
    }

    fn bytes(self) -> [u8; 6] {
        let v = |n: i64| (n & 0xfff) as u16;
        area_bytes(v(self.x1), v(self.x2), v(self.y1), v(self.y2))
    }

    fn height(self) -> i64 {
        self.y2 - self.y1 + 1
    }
}

/// A display area (6 bytes: x1, x2, y1, y2 in 12 bits each, inclusive)
/// moved into `(x0, y0, w, h)`: by the offset, then inside. An area larger
/// than the cropped picture (what it shows spans both bars, or it is wider
/// than a pillarboxed picture) cannot be moved into it: an error.
fn moved(b: &[u8], (x0, y0, w0, h0): (i64, i64, i64, i64)) -> Result<[u8; 6], String> {
    let Area { x1, x2, y1, y2 } = Area::of(b);
    let (w, h) = (x2 - x1, y2 - y1);
    if w + 1 > w0 || h + 1 > h0 {
        return Err(format!("a {}x{} subpicture is larger than the cropped {w0}x{h0} picture", w + 1, h + 1));
    }
    let nx = (x1 - x0).clamp(0, w0 - 1 - w);
    let ny = (y1 - y0).clamp(0, h0 - 1 - h);
    let v = |n: i64| (n & 0xfff) as u16;
    Ok(area_bytes(v(nx), v(nx + w), v(ny), v(ny + h)))
}

/// A display area as its 6 bytes: x1, x2, y1, y2 in 12 bits each.
fn area_bytes(x1: u16, x2: u16, y1: u16, y2: u16) -> [u8; 6] {
    [
        (x1 >> 4) as u8,
        ((x1 & 0x0f) << 4) as u8 | (x2 >> 8) as u8,
        x2 as u8,
        (y1 >> 4) as u8,
        ((y1 & 0x0f) << 4) as u8 | (y2 >> 8) as u8,
        y2 as u8,
    ]
}

/// One subpicture, gathered from the payloads of the packets it spans.
struct Spu {
    bytes: Vec<u8>,
    /// Per piece of `bytes`: where it starts in `bytes` and in the file.
    pieces: Vec<(usize, usize)>,
}

impl Spu {
    /// The subpicture starting in the pack at `pos` of `sub`.
    fn gather(sub: &[u8], mut pos: usize) -> Result<Spu, String> {
        let bad = |what: &str, at: usize| format!("{what} at byte {at} of the subpictures");
        let mut spu = Spu { bytes: Vec::new(), pieces: Vec::new() };
        loop {
            let (start, len, next) = payload(sub, pos).ok_or_else(|| bad("no subpicture packet", pos))?;
            spu.pieces.push((spu.bytes.len(), start));
            spu.bytes.extend(&sub[start..start + len]);
            let size = spu.bytes.get(..2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            match size {
                Some(size) if spu.bytes.len() >= size => {
                    spu.bytes.truncate(size);
                    return Ok(spu);
                }
                _ => {
                    // The next pack (after any padding packet).
                    pos = (next..sub.len().saturating_sub(3))
                        .find(|&i| sub[i..i + 4] == [0, 0, 1, 0xba])
                        .ok_or_else(|| bad("a subpicture cut short", pos))?;
                }
            }
        }
    }

    /// Where byte `i` of the subpicture is in the file.
    fn file_offset(&self, i: usize) -> usize {
        let (at, file) = self.pieces.iter().rev().find(|(at, _)| *at <= i).copied().unwrap_or((0, 0));
        file + (i - at)
    }

    /// Puts the subpicture's bytes back where they came from in `sub`.
    fn write_back(&self, sub: &mut [u8]) {
        for (i, b) in self.bytes.iter().enumerate() {
            sub[self.file_offset(i)] = *b;
        }
    }

    /// Shrinks display area `d` to the rows its bitmap shows (a pixel
    /// whose contrast is not zero), in place: the area's rows, and the
    /// fields' offsets (command 0x06) moved to the first row kept. Rows
    /// alternate between the two fields.
    fn trim_to_shown(&mut self, d: &Controls) -> Result<(), String> {
        let Some(fields) = d.fields else { return Err("a subpicture has no bitmap offsets".into()) };
        let a = Area::of(&self.bytes[d.area..d.area + 6]);
        let width = (a.x2 - a.x1 + 1).max(0) as usize;
        let rows = a.height().max(0) as usize;
        // A colour shows if any contrast the subpicture sets shows it (a
        // fade's last sets them all to 0; 0x07 sets them by region).
        let mut alpha = [0u8; 4];
        for &c in &d.contrasts {
            let set = [self.bytes[c + 1] & 0x0f, self.bytes[c + 1] >> 4, self.bytes[c] & 0x0f, self.bytes[c] >> 4];
            alpha.iter_mut().zip(set).for_each(|(a, s)| *a |= s);
        }
        if d.contrasts.is_empty() || d.regions {
            alpha = [0x0f; 4];
        }
        let offset =
            |i: usize| usize::from(u16::from_be_bytes([self.bytes[fields + 2 * i], self.bytes[fields + 2 * i + 1]]));
        let lines = [rows.div_ceil(2), rows / 2];
        let decoded = [0, 1].map(|f| field_lines(&self.bytes, offset(f), width, lines[f], alpha));
        let [top, bottom] = decoded;
        let (top, bottom) = (top?, bottom?);
        let line = |r: usize| if r.is_multiple_of(2) { &top[r / 2] } else { &bottom[r / 2] };
        let shown: Vec<usize> = (0..rows).filter(|&r| line(r).1).collect();
        let (Some(&first), Some(&last)) = (shown.first(), shown.last()) else {
            return Err("a subpicture shows nothing".into());
        };
        let start = |r: usize| if r < rows { line(r).0 } else { offset(r % 2) };
        for (i, at) in [start(first), start(first + 1)].into_iter().enumerate() {
            let v = u16::try_from(at).map_err(|_| "a subpicture is too large")?;
            self.bytes[fields + 2 * i..fields + 2 * i + 2].copy_from_slice(&v.to_be_bytes());
        }
        let trimmed = Area { y1: a.y1 + first as i64, y2: a.y1 + last as i64, ..a };
        self.bytes[d.area..d.area + 6].copy_from_slice(&trimmed.bytes());
        Ok(())
    }

    /// Each display area (command 0x05) in the subpicture, with the
    /// commands in force with it.
    fn display_areas(&self) -> Result<Vec<Controls>, String> {
        let b = &self.bytes;
        let u16_at = |i: usize| b.get(i..i + 2).map(|v| usize::from(u16::from_be_bytes([v[0], v[1]])));
        let cut = || "a subpicture's control sequence is cut short".to_string();
        // Each area with the sequence it is in; each sequence's fields.
        let mut areas: Vec<(usize, usize)> = Vec::new();
        let mut fields_of: Vec<Option<usize>> = Vec::new();
        let (mut contrasts, mut regions) = (Vec::new(), false);
        let mut seq = u16_at(2).ok_or_else(cut)?;
        let mut seen = Vec::new();
        while seq + 4 <= b.len() && !seen.contains(&seq) {
            seen.push(seq);
            fields_of.push(None);
            let k = fields_of.len() - 1;
            let next = u16_at(seq + 2).ok_or_else(cut)?;
            let mut i = seq + 4;
            while let Some(&cmd) = b.get(i) {
                i += 1;
                match cmd {
                    0x00..=0x02 => {}
                    0x03 => i += 2,
                    0x04 => {
                        contrasts.extend(Some(i).filter(|i| i + 2 <= b.len()));
                        i += 2;
                    }
                    0x05 => {
                        if i + 6 > b.len() {
                            return Err(cut());
                        }
                        areas.push((i, k));
                        i += 6;
                    }
                    0x06 => {
                        fields_of[k] = Some(i).filter(|i| i + 4 <= b.len());
                        i += 4;
                    }
                    0x07 => {
                        regions = true;
                        i += u16_at(i).ok_or_else(cut)?;
                    }
                    _ => break,
                }
            }
            seq = next;
        }
        // An area's bitmap: its sequence's fields, else those in force from
        // an earlier one, else a later one's. (A sequence's commands hold
        // for the areas before them too: they are in force when it runs.)
        let fields =
            |k: usize| fields_of[..=k].iter().rev().find_map(|f| *f).or_else(|| fields_of[k..].iter().find_map(|f| *f));
        Ok(areas
            .into_iter()
            .map(|(area, k)| Controls { area, contrasts: contrasts.clone(), fields: fields(k), regions })
            .collect())
    }
}

/// Where a display area's bytes are in a subpicture, with its contrasts
/// (each command 0x04's 2 bytes), its fields' offsets (command 0x06's 4),
/// and whether it sets contrasts by region (0x07).
struct Controls {
    area: usize,
    contrasts: Vec<usize>,
    fields: Option<usize>,
    regions: bool,
}

/// The `lines` lines of a field whose run-length bitmap starts at byte
/// `start` of `spu`, `width` pixels each: where each starts, and whether it
/// shows a pixel (its colour's contrast in `alpha` not zero). A code is 1
/// to 4 nibbles: its run (0: to the line's end) and its colour; a line
/// ends on a byte.
fn field_lines(
    spu: &[u8],
    start: usize,
    width: usize,
    lines: usize,
    alpha: [u8; 4],
) -> Result<Vec<(usize, bool)>, String> {
    let mut at = start * 2;
    let nibble = |at: &mut usize| -> Result<u16, String> {
        let b = *spu.get(*at / 2).ok_or("a subpicture's bitmap is cut short")?;
        *at += 1;
        Ok(u16::from(if *at % 2 == 1 { b >> 4 } else { b & 0x0f }))
    };
    let mut out = Vec::with_capacity(lines);
    for _ in 0..lines {
        let mut x = 0;
        let mut shown = false;
        let line_start = at / 2;
        while x < width {
            let mut v = nibble(&mut at)?;
            for bound in [0x4, 0x10, 0x40] {
                if v >= bound {
                    break;
                }
                v = (v << 4) | nibble(&mut at)?;
            }
            let run = match usize::from(v >> 2) {
                0 => width - x,
                n => n.min(width - x),
            };
            shown |= alpha[usize::from(v & 3)] != 0;
            x += run;
        }
        out.push((line_start, shown));
        at += at % 2;
    }
    Ok(out)
}

/// The subpicture payload of the pack at `pos`: (its start, its length,
/// where the next pack starts). Padding packets are skipped.
fn payload(sub: &[u8], pos: usize) -> Option<(usize, usize, usize)> {
    let at = |i: usize| sub.get(i).copied();
    if sub.get(pos..pos + 4)? != [0, 0, 1, 0xba] {
        return None;
    }
    // An MPEG-2 pack header (14 bytes and stuffing) or an MPEG-1 one (12).
    let mut p = if at(pos + 4)? & 0xc0 == 0x40 { pos + 14 + usize::from(at(pos + 13)? & 7) } else { pos + 12 };
    loop {
        let head = sub.get(p..p + 6)?;
        if head[..3] != [0, 0, 1] {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
        let body = p + 6;
        if head[3] == 0xbd {
            // MPEG-2 PES header: 2 flag bytes, its length, then the substream ID.
            let header = 3 + usize::from(at(body + 2)?);
            let start = body + header + 1;
            let end = body + len;
            return (end <= sub.len() && start <= end).then_some((start, end - start, end));
        }
        p = body + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.sub` of one subpicture (display area `x1..=x2`, `y1..=y2`) split
    /// over two packs, and its `.idx`.
    fn files(x1: u16, x2: u16, y1: u16, y2: u16) -> (String, Vec<u8>) {
        let darea = area_bytes(x1, x2, y1, y2);
        let bitmap = vec![0x11u8; 40];
        let ctrl = 4 + bitmap.len();
        let mut spu = vec![0, 0, (ctrl >> 8) as u8, ctrl as u8];
        spu.extend(&bitmap);
        spu.extend([0, 0, (ctrl >> 8) as u8, ctrl as u8, 0x01, 0x03, 0x01, 0x23, 0x05]);
        spu.extend(darea);
        spu.extend([0x06, 0, 4, 0, 20, 0xff]);
        let size = spu.len() as u16;
        spu[..2].copy_from_slice(&size.to_be_bytes());
        packed(&spu, 55)
    }

    /// The `.sub` of subpicture `spu` in two packs (split at byte `at`),
    /// and its `.idx`.
    fn packed(spu: &[u8], at: usize) -> (String, Vec<u8>) {
        let pack = |payload: &[u8], pts: bool| {
            let mut p = vec![0, 0, 1, 0xba, 0x44, 0, 4, 0, 4, 1, 1, 0x89, 0xc3, 0xf8];
            let header: Vec<u8> = if pts { vec![0x81, 0x80, 5, 0x21, 0, 1, 0, 1] } else { vec![0x81, 0, 0] };
            let len = header.len() + 1 + payload.len();
            p.extend([0, 0, 1, 0xbd, (len >> 8) as u8, len as u8]);
            p.extend(header);
            p.push(0x20);
            p.extend(payload);
            p
        };
        let (a, b) = spu.split_at(at);
        let sub = [pack(a, true), pack(b, false)].concat();
        let idx = "# VobSub index file, v7\nsize: 720x480\npalette: 000000\nid: en, index: 0\ntimestamp: 00:00:00:500, filepos: 000000000\n";
        (idx.to_string(), sub)
    }

    #[test]
    fn display_areas_move_with_the_crop_and_into_the_picture() {
        let crop = Rect { width: 720, height: 360, x: 0, y: 60 };
        // In the bottom bar (rows 430–459 of 480): raised to the picture's
        // bottom edge, across the pack boundary the area straddles.
        let (idx, mut sub) = files(100, 299, 430, 459);
        let before = sub.clone();
        let new_idx = recrop(&idx, &mut sub, 720, 480, crop).unwrap();
        assert!(new_idx.contains("\nsize: 720x360\n") && new_idx.contains("filepos: 000000000"), "{new_idx}");
        let spu = Spu::gather(&sub, 0).unwrap();
        let at: Vec<usize> = spu.display_areas().unwrap().iter().map(|d| d.area).collect();
        assert_eq!(at.len(), 1);
        assert_eq!(spu.bytes[at[0]..at[0] + 6], moved_expected());
        // Nothing else changed.
        let changed: Vec<usize> = (0..sub.len()).filter(|&i| sub[i] != before[i]).collect();
        assert!(changed.len() <= 3, "{changed:?}");
        // In the picture: moved up by the top bar.
        let (idx, mut sub) = files(100, 299, 300, 329);
        recrop(&idx, &mut sub, 720, 480, crop).unwrap();
        let spu = Spu::gather(&sub, 0).unwrap();
        let at = spu.display_areas().unwrap()[0].area;
        assert_eq!(spu.bytes[at + 3..at + 6], [15, 0x01, 13]);
    }

    /// The area of x 100–299, y 330–359 as bytes.
    fn moved_expected() -> [u8; 6] {
        [6, 0x41, 0x2b, 20, 0xa1, 0x67]
    }

    #[test]
    fn a_full_frame_subpicture_shrinks_to_what_it_shows_then_moves() {
        // A 10×480 area (the frame's height), rows 440–449 shown (in the
        // bottom bar), the rest transparent: each line one run to its end.
        let rows = 480;
        let line = |r: usize| [0u8, if (440..450).contains(&r) { 1 } else { 0 }];
        let field = |f: usize| (f..rows).step_by(2).flat_map(line).collect::<Vec<u8>>();
        let (top, bottom) = (field(0), field(1));
        let (top_at, bottom_at) = (4, 4 + top.len());
        let ctrl = bottom_at + bottom.len();
        // Its stop (the second control sequence) fades it out: contrast 0.
        let stop = ctrl + 21;
        let mut spu = vec![0, 0, (ctrl >> 8) as u8, ctrl as u8];
        spu.extend(&top);
        spu.extend(&bottom);
        spu.extend([0, 0, (stop >> 8) as u8, stop as u8, 0x01, 0x04, 0xff, 0xf0, 0x05]);
        spu.extend(area_bytes(0, 9, 0, 479));
        spu.extend([0x06, 0, top_at as u8, (bottom_at >> 8) as u8, bottom_at as u8, 0xff]);
        spu.extend([0, 50, (stop >> 8) as u8, stop as u8, 0x02, 0x04, 0, 0, 0xff]);
        let size = spu.len() as u16;
        spu[..2].copy_from_slice(&size.to_be_bytes());
        let (idx, mut sub) = packed(&spu, 700);
        let crop = Rect { width: 720, height: 360, x: 0, y: 60 };
        recrop(&idx, &mut sub, 720, 480, crop).unwrap();
        let spu = Spu::gather(&sub, 0).unwrap();
        let d = &spu.display_areas().unwrap()[0];
        assert_eq!(d.contrasts.len(), 2, "the start's contrast and the stop's");
        // Rows 440–449, raised to the picture's bottom edge.
        assert_eq!(Area::of(&spu.bytes[d.area..d.area + 6]), Area { x1: 0, x2: 9, y1: 350, y2: 359 });
        // The fields start at the first row shown (row 440: line 220 of each).
        let f = d.fields.unwrap();
        let offset = |i: usize| usize::from(u16::from_be_bytes([spu.bytes[f + 2 * i], spu.bytes[f + 2 * i + 1]]));
        assert_eq!((offset(0), offset(1)), (top_at + 2 * 220, bottom_at + 2 * 220));
        let shown = field_lines(&spu.bytes, offset(0), 10, 5, [0, 15, 15, 15]).unwrap();
        assert!(shown.iter().all(|(_, s)| *s));
    }

    #[test]
    fn malformed_files_are_refused() {
        let (idx, mut sub) = files(0, 9, 0, 9);
        sub.truncate(30);
        assert!(recrop(&idx, &mut sub, 720, 480, Rect::full(720, 480)).is_err());
    }
}
