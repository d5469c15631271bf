//! `drapto config`: the effective configuration with each value's origin.

use super::Session;
use crate::error::Result;

/// Settings whose values are never printed.
const SECRETS: &[&str] = &["notify.ntfy_token"];

/// Prints every setting as `key = value  # origin`.
pub fn run(session: &Session) -> Result<i32> {
    let loaded = &session.loaded;
    let value = toml::Value::try_from(&loaded.settings).expect("settings serialize to TOML");
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    // A secret is said to be set, never shown.
    for (k, v) in rows.iter_mut() {
        if SECRETS.contains(&k.as_str()) {
            *v = "\"(set, not shown)\"".into();
        }
    }
    if session.json {
        let items: Vec<_> = rows
            .iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v, "origin": loaded.origins.of(k).to_string()}))
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(0);
    }
    println!("# configuration file: {}", loaded.file_note);
    for note in &loaded.migration_notes {
        println!("# migrated from an older layout: {note}");
    }
    for name in &loaded.ignored_env {
        println!("# ignored: environment variable {name} is no drapto setting");
    }
    let width = rows.iter().map(|(k, v)| k.len() + v.len() + 3).max().unwrap_or(0);
    for (k, v) in &rows {
        let line = format!("{k} = {v}");
        println!("{line:<width$}  # {}", loaded.origins.of(k));
    }
    for (k, _) in [("tools.ffmpeg", ()), ("tools.ffprobe", ()), ("tools.mediainfo", ())] {
        if !rows.iter().any(|(r, _)| r == k) {
            println!("{:<width$}  # not set: looked up on PATH", format!("# {k}"));
        }
    }
    Ok(0)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
