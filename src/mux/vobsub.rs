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
    for pos in filepos(idx) {
        let spu = Spu::gather(sub, pos)?;
        for at in spu.display_areas()? {
            let old: Vec<u8> = (at..at + 6).map(|i| sub[spu.file_offset(i)]).collect();
            for (i, b) in moved(&old, area)?.into_iter().enumerate() {
                sub[spu.file_offset(at + i)] = b;
            }
        }
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

/// Where each subpicture starts in the `.sub` (`filepos: 000000000`, hex).
fn filepos(idx: &str) -> Vec<usize> {
    idx.lines()
        .filter_map(|l| l.split("filepos:").nth(1))
        .filter_map(|p| usize::from_str_radix(p.trim(), 16).ok())
        .collect()
}

/// A display area (6 bytes: x1, x2, y1, y2 in 12 bits each, inclusive)
/// moved into `(x0, y0, w, h)`: by the offset, then inside. An area larger
/// than the cropped picture (a full-frame subpicture, mostly transparent)
/// cannot be moved into it: an error.
fn moved(b: &[u8], (x0, y0, w0, h0): (i64, i64, i64, i64)) -> Result<[u8; 6], String> {
    let x1 = (i64::from(b[0]) << 4) | i64::from(b[1] >> 4);
    let x2 = (i64::from(b[1] & 0x0f) << 8) | i64::from(b[2]);
    let y1 = (i64::from(b[3]) << 4) | i64::from(b[4] >> 4);
    let y2 = (i64::from(b[4] & 0x0f) << 8) | i64::from(b[5]);
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

    /// Where each display area (command 0x05's 6 bytes) is in the subpicture.
    fn display_areas(&self) -> Result<Vec<usize>, String> {
        let b = &self.bytes;
        let u16_at = |i: usize| b.get(i..i + 2).map(|v| usize::from(u16::from_be_bytes([v[0], v[1]])));
        let cut = || "a subpicture's control sequence is cut short".to_string();
        let mut areas = Vec::new();
        let mut seq = u16_at(2).ok_or_else(cut)?;
        let mut seen = Vec::new();
        while seq + 4 <= b.len() && !seen.contains(&seq) {
            seen.push(seq);
            let next = u16_at(seq + 2).ok_or_else(cut)?;
            let mut i = seq + 4;
            while let Some(&cmd) = b.get(i) {
                i += 1;
                match cmd {
                    0x00..=0x02 => {}
                    0x03 | 0x04 => i += 2,
                    0x05 => {
                        if i + 6 > b.len() {
                            return Err(cut());
                        }
                        areas.push(i);
                        i += 6;
                    }
                    0x06 => i += 4,
                    0x07 => i += u16_at(i).ok_or_else(cut)?,
                    _ => break,
                }
            }
            seq = next;
        }
        Ok(areas)
    }
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
        let (a, b) = spu.split_at(55);
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
        let at = spu.display_areas().unwrap();
        assert_eq!(at.len(), 1);
        assert_eq!(spu.bytes[at[0]..at[0] + 6], moved_expected());
        // Nothing else changed.
        let changed: Vec<usize> = (0..sub.len()).filter(|&i| sub[i] != before[i]).collect();
        assert!(changed.len() <= 3, "{changed:?}");
        // In the picture: moved up by the top bar.
        let (idx, mut sub) = files(100, 299, 300, 329);
        recrop(&idx, &mut sub, 720, 480, crop).unwrap();
        let spu = Spu::gather(&sub, 0).unwrap();
        let at = spu.display_areas().unwrap()[0];
        assert_eq!(spu.bytes[at + 3..at + 6], [15, 0x01, 13]);
    }

    /// The area of x 100–299, y 330–359 as bytes.
    fn moved_expected() -> [u8; 6] {
        [6, 0x41, 0x2b, 20, 0xa1, 0x67]
    }

    #[test]
    fn malformed_files_are_refused() {
        let (idx, mut sub) = files(0, 9, 0, 9);
        sub.truncate(30);
        assert!(recrop(&idx, &mut sub, 720, 480, Rect::full(720, 480)).is_err());
    }
}
