//! `drapto config`: the effective configuration with each value's origin.

use super::Session;
use crate::error::Result;

/// Settings whose values are never printed: the token, and a command that
/// may carry one.
const SECRETS: &[&str] = &["notify.ntfy_token", "notify.command"];
/// Addresses shown to their host alone: a webhook's path is its key, an
/// ntfy topic's name its password, and either may carry `user:pass@`.
const ADDRESSES: &[&str] = &["notify.ntfy", "notify.webhook"];

/// `url` as far as its host: `https://hooks.example/…`.
fn host_only(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(not shown)".into() };
    // (After the last `@`: a password may hold a `/`.)
    let after_user = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = after_user.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}/… (the rest not shown)")
}

/// Prints every setting as `key = value  # origin`.
pub fn run(session: &Session) -> Result<i32> {
    let loaded = &session.loaded;
    let value = toml::Value::try_from(&loaded.settings).expect("settings serialize to TOML");
    let mut rows = Vec::new();
    flatten("", &value, &mut rows);
    // A secret is said to be set, never shown; an address, its host.
    for (k, v) in rows.iter_mut() {
        if SECRETS.contains(&k.as_str()) {
            *v = toml::Value::from("(set, not shown)");
        } else if let (true, Some(url)) = (ADDRESSES.contains(&k.as_str()), v.as_str()) {
            *v = toml::Value::from(host_only(url));
        }
    }
    if session.json {
        // Each value as JSON (a number, a string, a list), not as TOML text;
        // an unset optional setting as null, with what that means.
        let mut items: Vec<_> = rows
            .iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v, "origin": loaded.origins.of(k).to_string()}))
            .collect();
        let log_dir = format!("not set: {}", loaded.settings.log_dir().display());
        for (k, meaning) in unset_meanings(&log_dir).into_iter().filter(|(k, _)| !rows.iter().any(|(r, _)| r == k)) {
            items.push(serde_json::json!({"key": k, "value": null, "origin": "default", "meaning": meaning}));
        }
        println!("{}", serde_json::Value::Array(items));
        return Ok(0);
    }
    println!("# configuration file: {}", loaded.file_note);
    for note in &loaded.migration_notes {
        println!("# migrated from an older layout: {note}");
    }
    for name in &loaded.ignored_env {
        println!("# ignored: {}", super::why_ignored(name));
    }
    let width = rows.iter().map(|(k, v)| k.len() + v.to_string().len() + 3).max().unwrap_or(0);
    for (k, v) in &rows {
        let line = format!("{k} = {v}");
        println!("{line:<width$}  # {}", loaded.origins.of(k));
    }
    let settings = &loaded.settings;
    let log_dir = format!("not set: {}", settings.log_dir().display());
    for (k, meaning) in unset_meanings(&log_dir) {
        if !rows.iter().any(|(r, _)| r == k) {
            println!("{:<width$}  # {meaning}", format!("# {k}"));
        }
    }
    Ok(0)
}

/// The optional settings, and what each means when it is not set
/// (`log_dir`: the log folder's line).
fn unset_meanings(log_dir: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("paths.input_dir", "not set: -i is needed"),
        ("paths.output_dir", "not set: -o is needed"),
        ("paths.log_dir", log_dir),
        ("paths.report_dir", "not set: each report beside its output"),
        ("input.min_size", "not set: no lower bound"),
        ("input.max_size", "not set: no upper bound"),
        ("notify.ntfy", "not set: no ntfy notes"),
        ("notify.ntfy_token", "not set"),
        ("notify.webhook", "not set: no webhook"),
        ("notify.command", "not set: no command"),
        ("tools.ffmpeg", "not set: looked up on PATH"),
        ("tools.ffprobe", "not set: looked up on PATH"),
        ("tools.mediainfo", "not set: looked up on PATH"),
        ("tools.mkvmerge", "not set: looked up on PATH (mkvextract and mkvpropedit beside it)"),
        ("distributed.hosts", "not set: every segment encoded on this machine"),
    ]
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_shown_to_its_host() {
        let shown = host_only("https://user:pass@ntfy.example:8443/topic?auth=tk");
        assert_eq!(shown, "https://ntfy.example:8443/… (the rest not shown)");
        assert_eq!(host_only("not a url/key"), "(not shown)");
        assert_eq!(host_only("https://user:pa/ss@ntfy.example/t"), "https://ntfy.example/… (the rest not shown)");
    }

    #[test]
    fn every_optional_named_is_a_setting_that_is_unset_by_default() {
        // Set, each of them becomes a row of its own: the names are real.
        let mut full = crate::config::Settings::default();
        full.paths.input_dir = Some("/i".into());
        full.paths.output_dir = Some("/o".into());
        full.paths.log_dir = Some("/l".into());
        full.paths.report_dir = Some("/r".into());
        full.input.min_size = Some(crate::config::ByteSize(1));
        full.input.max_size = Some(crate::config::ByteSize(2));
        full.notify.ntfy = Some("https://ntfy.sh/x".into());
        full.notify.ntfy_token = Some("t".into());
        full.notify.webhook = Some("https://h".into());
        full.notify.command = Some("true".into());
        full.tools.ffmpeg = Some("/f".into());
        full.tools.ffprobe = Some("/p".into());
        full.tools.mediainfo = Some("/m".into());
        full.tools.mkvmerge = Some("/k".into());
        full.distributed.hosts = Some("/h".into());
        let mut rows = Vec::new();
        flatten("", &toml::Value::try_from(&full).unwrap(), &mut rows);
        let mut unset = Vec::new();
        flatten("", &toml::Value::try_from(crate::config::Settings::default()).unwrap(), &mut unset);
        for (k, _) in unset_meanings("") {
            assert!(rows.iter().any(|(r, _)| r == k), "{k} is no setting");
            assert!(!unset.iter().any(|(r, _)| r == k), "{k} is set by default");
        }
    }
}
