//! Migration of older configuration-file layouts to the current one.
//!
//! * v1 (the shell-script era): flat keys — `preset`, `crf` (SD and HD),
//!   `crf_uhd`, `vmaf_target`, `film_grain`, `chunk_size`, `parallel_jobs`,
//!   `temp_dir`, `max_memory`, `max_cpu`, `max_disk_io`, `disable_crop`,
//!   `enable_chunked_encoding`.
//! * v2: `[encoding]`, `[processing]` and `[resources]` tables, with
//!   `disable_crop` and `enable_chunked_encoding` still at the top level.
//! * v3: those two moved into `[processing]`.
//! * v4: `resources.max_disk_io` removed: drapto never enforced it
//!   (ffmpeg's reads and writes cannot be throttled from outside without
//!   cgroups); `processing.responsive` gives drapto and its children idle
//!   I/O priority instead.
//! * v5 (current): `processing.keep_logs` removed: nothing was ever written
//!   to the work folder's `logs/` it kept; the run logs hold every command
//!   and the stderr of each that failed.
//!
//! A file without `version` is read as v1; migrations only move keys that are
//! present, so a v3-shaped file without `version` passes through unchanged.

use toml::{Table, Value};

/// The layout version this drapto writes and reads natively.
pub const CURRENT_VERSION: u32 = 5;

/// Why a file could not be migrated.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrateError {
    /// The file says it was written by a newer drapto.
    TooNew(i64),
    /// `version` is not a positive integer.
    BadVersion(String),
    /// A key of an older layout (`old`, at the top level) beside the key it
    /// moves to (`new`): which one the user means cannot be told. Moved,
    /// the old one silently won over the line the user wrote last.
    Conflict { old: String, new: String },
}

/// Migrates `table` in place to [`CURRENT_VERSION`]; returns one note per key moved.
pub fn migrate(table: &mut Table) -> Result<Vec<String>, MigrateError> {
    let version = match table.get("version") {
        None => 1,
        Some(Value::Integer(v)) if *v >= 1 => *v,
        Some(other) => return Err(MigrateError::BadVersion(other.to_string())),
    };
    if version > i64::from(CURRENT_VERSION) {
        return Err(MigrateError::TooNew(version));
    }
    let mut notes = Vec::new();
    if version < 2 {
        v1_to_v2(table, &mut notes)?;
    }
    if version < 3 {
        v2_to_v3(table, &mut notes)?;
    }
    if version < 4 {
        v3_to_v4(table, &mut notes);
    }
    if version < 5 {
        v4_to_v5(table, &mut notes);
    }
    table.insert("version".into(), Value::Integer(i64::from(CURRENT_VERSION)));
    Ok(notes)
}

fn v1_to_v2(t: &mut Table, notes: &mut Vec<String>) -> Result<(), MigrateError> {
    let crf = t.get("crf").cloned();
    let uhd = t.get("crf_uhd").cloned();
    if crf.is_some() || uhd.is_some() {
        let new = t.get("encoding").and_then(|e| e.get("crf"));
        let taken = |k: &str| new.and_then(|c| c.get(k)).is_some();
        for (old, keys) in [("crf", &["sd", "hd"][..]), ("crf_uhd", &["uhd"][..])] {
            let moved = if old == "crf" { crf.is_some() } else { uhd.is_some() };
            if let Some(k) = keys.iter().find(|k| moved && taken(k)) {
                return Err(MigrateError::Conflict { old: old.into(), new: format!("encoding.crf.{k}") });
            }
        }
        t.remove("crf");
        t.remove("crf_uhd");
        // A v1 file's UHD CRF was its CRF + 4 unless it said.
        let uhd = uhd.or_else(|| match &crf {
            Some(Value::Integer(c)) => Some(Value::Integer(c + 4)),
            other => other.clone(),
        });
        let crf_table = sub_table(sub_table(t, "encoding"), "crf");
        if let Some(crf) = crf {
            crf_table.insert("sd".into(), crf.clone());
            crf_table.insert("hd".into(), crf);
        }
        if let Some(uhd) = uhd {
            crf_table.insert("uhd".into(), uhd);
        }
        notes.push("crf, crf_uhd -> encoding.crf.sd/hd/uhd".into());
    }
    for key in ["preset", "vmaf_target", "film_grain"] {
        move_key(t, key, "encoding", notes)?;
    }
    for key in ["chunk_size", "parallel_jobs", "temp_dir"] {
        move_key(t, key, "processing", notes)?;
    }
    for key in ["max_memory", "max_cpu", "max_disk_io"] {
        move_key(t, key, "resources", notes)?;
    }
    Ok(())
}

fn v2_to_v3(t: &mut Table, notes: &mut Vec<String>) -> Result<(), MigrateError> {
    for key in ["disable_crop", "enable_chunked_encoding"] {
        move_key(t, key, "processing", notes)?;
    }
    Ok(())
}

fn v3_to_v4(t: &mut Table, notes: &mut Vec<String>) {
    if let Some(Value::Table(r)) = t.get_mut("resources") {
        if r.remove("max_disk_io").is_some() {
            notes.push(
                "resources.max_disk_io removed: it was never enforced; use processing.responsive (idle I/O priority)"
                    .into(),
            );
        }
    }
}

fn v4_to_v5(t: &mut Table, notes: &mut Vec<String>) {
    if let Some(Value::Table(p)) = t.get_mut("processing") {
        if p.remove("keep_logs").is_some() {
            notes.push("processing.keep_logs removed: it kept an empty folder; the run logs hold every command".into());
        }
    }
}

fn move_key(t: &mut Table, key: &str, section: &str, notes: &mut Vec<String>) -> Result<(), MigrateError> {
    if t.contains_key(key) && t.get(section).and_then(|s| s.get(key)).is_some() {
        return Err(MigrateError::Conflict { old: key.into(), new: format!("{section}.{key}") });
    }
    if let Some(v) = t.remove(key) {
        sub_table(t, section).insert(key.into(), v);
        notes.push(format!("{key} -> {section}.{key}"));
    }
    Ok(())
}

fn sub_table<'a>(t: &'a mut Table, name: &str) -> &'a mut Table {
    let entry = t.entry(name.to_string()).or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    entry.as_table_mut().expect("is a table")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn v1_flat_layout_is_nested() {
        let mut t = parse("preset = 4\ncrf = 22\ndisable_crop = true\nchunk_size = 20\nmax_cpu = 50.0");
        let notes = migrate(&mut t).unwrap();
        assert_eq!(t["encoding"]["preset"].as_integer(), Some(4));
        assert_eq!(t["encoding"]["crf"]["sd"].as_integer(), Some(22));
        assert_eq!(t["encoding"]["crf"]["hd"].as_integer(), Some(22));
        assert_eq!(t["encoding"]["crf"]["uhd"].as_integer(), Some(26));
        assert_eq!(t["processing"]["disable_crop"].as_bool(), Some(true));
        assert_eq!(t["processing"]["chunk_size"].as_integer(), Some(20));
        assert_eq!(t["resources"]["max_cpu"].as_float(), Some(50.0));
        assert_eq!(t["version"].as_integer(), Some(i64::from(CURRENT_VERSION)));
        assert!(notes.iter().any(|n| n.contains("crf")));
    }

    #[test]
    fn v1_crf_uhd_is_kept() {
        let mut t = parse("crf = 22\ncrf_uhd = 30");
        migrate(&mut t).unwrap();
        assert_eq!(t["encoding"]["crf"]["uhd"].as_integer(), Some(30));
        // On its own too.
        let mut t = parse("crf_uhd = 30");
        migrate(&mut t).unwrap();
        assert_eq!(t["encoding"]["crf"]["uhd"].as_integer(), Some(30));
        assert!(t["encoding"]["crf"].get("sd").is_none());
    }

    #[test]
    fn an_old_key_beside_the_one_it_moves_to_is_a_conflict() {
        // Which one the user means cannot be told: the old one won silently.
        let conflict = |text: &str| migrate(&mut parse(text)).unwrap_err();
        let c = conflict("preset = 4\n[encoding]\npreset = 8");
        assert_eq!(c, MigrateError::Conflict { old: "preset".into(), new: "encoding.preset".into() });
        let c = conflict("version = 2\ndisable_crop = true\n[processing]\ndisable_crop = false");
        assert_eq!(c, MigrateError::Conflict { old: "disable_crop".into(), new: "processing.disable_crop".into() });
        let c = conflict("crf = 20\n[encoding.crf]\nsd = 30");
        assert_eq!(c, MigrateError::Conflict { old: "crf".into(), new: "encoding.crf.sd".into() });
        // Beside other keys of the new table: moved, none lost.
        let mut t = parse("crf = 20\n[encoding]\npreset = 8");
        migrate(&mut t).unwrap();
        assert_eq!(
            (t["encoding"]["crf"]["sd"].as_integer(), t["encoding"]["preset"].as_integer()),
            (Some(20), Some(8))
        );
    }

    #[test]
    fn v2_top_level_switches_move_into_processing() {
        let mut t = parse("version = 2\nenable_chunked_encoding = false\n[encoding]\npreset = 5");
        migrate(&mut t).unwrap();
        assert_eq!(t["processing"]["enable_chunked_encoding"].as_bool(), Some(false));
        assert_eq!(t["encoding"]["preset"].as_integer(), Some(5));
    }

    #[test]
    fn current_layout_is_untouched() {
        let text = "version = 5\n[encoding]\npreset = 5\n[processing]\ndisable_crop = true";
        let mut t = parse(text);
        let notes = migrate(&mut t).unwrap();
        assert!(notes.is_empty());
        assert_eq!(t, parse(text));
    }

    #[test]
    fn keep_logs_is_dropped_with_a_note() {
        let mut t = parse("version = 4\n[processing]\nkeep_logs = true\ndisable_crop = true");
        let notes = migrate(&mut t).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(t["processing"].get("keep_logs").is_none());
        assert_eq!(t["processing"]["disable_crop"].as_bool(), Some(true));
    }

    #[test]
    fn newer_or_bad_versions_are_refused() {
        assert_eq!(migrate(&mut parse("version = 9")), Err(MigrateError::TooNew(9)));
        assert!(matches!(migrate(&mut parse("version = \"x\"")), Err(MigrateError::BadVersion(_))));
    }

    #[test]
    fn v3_loses_the_disk_io_limit_it_never_had() {
        let mut t = parse("version = 3\n[resources]\nmax_cpu = 50.0\nmax_disk_io = \"100MiB\"");
        let notes = migrate(&mut t).unwrap();
        assert!(t["resources"].get("max_disk_io").is_none());
        assert_eq!(t["resources"]["max_cpu"].as_float(), Some(50.0));
        assert!(notes.iter().any(|n| n.contains("max_disk_io removed")), "{notes:?}");
        let mut t = parse("max_disk_io = 1000000");
        migrate(&mut t).unwrap();
        assert!(t.get("resources").and_then(|r| r.get("max_disk_io")).is_none(), "v1 keys go the same way");
    }
}
