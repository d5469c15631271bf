//! The library's tracking files (the design's tracking data), kept across
//! runs in `<temp_dir>/encode_data`: one tab-separated `rip<TAB>value` line
//! per encoded rip in each of `encoded_files.txt` (the output's absolute
//! path), `encoding_times.txt` (seconds), `input_sizes.txt` and
//! `output_sizes.txt` (bytes), so a library's totals can be computed at any
//! time, and the encode of a rip moved since can be found again. Writing is
//! best effort: the tracking is a record, not the work.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder under the temp folder that holds the tracking files.
const FOLDER: &str = "encode_data";

/// One of the tracking files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The output each rip was encoded to.
    Encoded,
    /// The seconds each encode took.
    Times,
    /// The rip's size in bytes.
    InputSizes,
    /// The output's size in bytes.
    OutputSizes,
}

impl File {
    pub const ALL: [File; 4] = [File::Encoded, File::Times, File::InputSizes, File::OutputSizes];

    fn name(self) -> &'static str {
        match self {
            File::Encoded => "encoded_files.txt",
            File::Times => "encoding_times.txt",
            File::InputSizes => "input_sizes.txt",
            File::OutputSizes => "output_sizes.txt",
        }
    }
}

/// The tracking files of one temp folder.
#[derive(Debug, Clone)]
pub struct Tracking {
    dir: PathBuf,
}

impl Tracking {
    /// The tracking files kept in `temp_dir`.
    pub fn in_temp(temp_dir: &Path) -> Tracking {
        Tracking { dir: temp_dir.join(FOLDER) }
    }

    /// The tracking files in `dir` itself.
    pub fn at(dir: &Path) -> Tracking {
        Tracking { dir: dir.to_path_buf() }
    }

    /// The path of `file`.
    pub fn path(&self, file: File) -> PathBuf {
        self.dir.join(file.name())
    }

    /// `file`'s text, where it can be read.
    pub fn read(&self, file: File) -> Option<String> {
        std::fs::read_to_string(self.path(file)).ok()
    }

    /// Records the encode of `input` to `output` (absolute: a later run
    /// finds a moved rip's output by it).
    pub fn record_encode(&self, input: &Path, output: &Path, seconds: f64, input_bytes: u64, output_bytes: u64) {
        self.append(
            input,
            &[
                (File::Encoded, output.display().to_string()),
                (File::Times, format!("{seconds:.3}")),
                (File::InputSizes, input_bytes.to_string()),
                (File::OutputSizes, output_bytes.to_string()),
            ],
        );
    }

    /// Records that `input` (of `input_bytes`) now has its encode at
    /// `output`, moved there from where the rip was before.
    pub fn record_move(&self, input: &Path, output: &Path, input_bytes: u64) {
        self.append(
            input,
            &[(File::Encoded, output.display().to_string()), (File::InputSizes, input_bytes.to_string())],
        );
    }

    /// Keeps each file's newest `keep` lines; returns how many were dropped.
    pub fn trim(&self, keep: usize) -> usize {
        File::ALL.iter().map(|f| trim_lines(&self.path(*f), keep)).sum()
    }

    /// Appends `input`'s line (`input<TAB>value`) to each file named in
    /// `values`. A tab, a line break or a backslash in either field is
    /// written escaped (`\t`, `\n`, `\r`, `\\`; see [`line`]): a rip named
    /// with a line break split into lines that spoiled the library's
    /// totals, and its encode was never found again.
    fn append(&self, input: &Path, values: &[(File, String)]) {
        let _ = std::fs::create_dir_all(&self.dir);
        let rip = escaped(&input.display().to_string());
        for (file, value) in values {
            // One write a line: two runs finishing at once do not mix theirs.
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(self.path(*file)) {
                let _ = f.write_all(format!("{rip}\t{}\n", escaped(value)).as_bytes());
            }
        }
    }
}

/// A tracking line's rip and value.
pub fn line(line: &str) -> Option<(String, String)> {
    let (rip, value) = line.split_once('\t')?;
    Some((unescaped(rip), unescaped(value)))
}

/// Keeps the last `keep` lines of `path` (rewritten atomically); returns
/// how many were dropped.
fn trim_lines(path: &Path, keep: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else { return 0 };
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= keep {
        return 0;
    }
    let dropped = lines.len() - keep;
    let mut kept = lines[dropped..].join("\n");
    kept.push('\n');
    let tmp = path.with_extension(format!("txt.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, kept).is_ok() && std::fs::rename(&tmp, path).is_ok() { dropped } else { 0 }
}

/// `field` with what would break a tracking line escaped.
fn escaped(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// `field` as it was before [`escaped`] (a line of an older drapto, which
/// escaped nothing, reads as it was unless it holds a backslash).
fn unescaped(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(n @ ('\\' | 't' | 'n' | 'r'))) => {
                chars.next();
                out.push(match n {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\\',
                });
            }
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_lines_hold_any_name_on_one_line() {
        let t = tempfile::tempdir().unwrap();
        let rip = Path::new("/lib/line1\nline2\tx\\y.mkv");
        let tracking = Tracking::at(t.path());
        tracking.record_move(rip, Path::new("/out/a\tb.mkv"), 1);
        tracking.record_move(Path::new("/lib/plain.mkv"), Path::new("/out/plain.mkv"), 2);
        let text = std::fs::read_to_string(t.path().join("encoded_files.txt")).unwrap();
        assert_eq!(text.lines().count(), 2, "{text:?}");
        let lines: Vec<_> = text.lines().filter_map(line).collect();
        assert_eq!(lines[0], (rip.display().to_string(), "/out/a\tb.mkv".to_string()));
        assert_eq!(lines[1], ("/lib/plain.mkv".to_string(), "/out/plain.mkv".to_string()));
    }
}
