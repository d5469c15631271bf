//! Layering: defaults < TOML file < `DRAPTO_*` environment < flags, with the
//! origin of every value kept for messages and `drapto config`.

use super::migrate::{MigrateError, migrate};
use super::{Settings, validate};
use crate::error::ConfigError;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::path::{Path, PathBuf};

/// Environment variables drapto reads, and the setting each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("DRAPTO_PRESET", "encoding.preset"),
    ("DRAPTO_CRF_SD", "encoding.crf.sd"),
    ("DRAPTO_CRF_HD", "encoding.crf.hd"),
    ("DRAPTO_CRF_UHD", "encoding.crf.uhd"),
    ("DRAPTO_VMAF_TARGET", "encoding.vmaf_target"),
    ("DRAPTO_FILM_GRAIN", "encoding.film_grain"),
    ("DRAPTO_FILM_GRAIN_LEVEL", "encoding.film_grain_level"),
    ("DRAPTO_VMAF_SUBSAMPLE", "encoding.vmaf_subsample"),
    ("DRAPTO_VMAF_PROBE_SUBSAMPLE", "encoding.vmaf_probe_subsample"),
    ("DRAPTO_VMAF_PREDICT", "encoding.vmaf_predict"),
    ("DRAPTO_VMAF_POOL", "encoding.vmaf_pool"),
    ("DRAPTO_CHUNKED_ALLOCATION", "encoding.chunked_allocation"),
    ("DRAPTO_SURVEY_PRESET", "encoding.survey_preset"),
    ("DRAPTO_CHUNK_SIZE", "processing.chunk_size"),
    ("DRAPTO_PARALLEL_JOBS", "processing.parallel_jobs"),
    ("DRAPTO_TEMP_DIR", "processing.temp_dir"),
    ("DRAPTO_DISABLE_CROP", "processing.disable_crop"),
    ("DRAPTO_INTERLACE", "processing.interlace"),
    ("DRAPTO_ALLOW_TRUNCATED", "processing.allow_truncated"),
    ("DRAPTO_ON_LOSS", "processing.on_loss"),
    ("DRAPTO_MAX_OUTPUT_RATIO", "processing.max_output_ratio"),
    ("DRAPTO_FILE_PATTERN", "input.file_pattern"),
    ("DRAPTO_MIN_SIZE", "input.min_size"),
    ("DRAPTO_MAX_SIZE", "input.max_size"),
    ("DRAPTO_COPY_SIDECARS", "input.copy_sidecars"),
    ("DRAPTO_BREAKER_RESET", "processing.breaker_reset"),
    ("DRAPTO_ENABLE_CHUNKED_ENCODING", "processing.enable_chunked_encoding"),
    ("DRAPTO_HARDWARE_DECODE", "processing.hardware_decode"),
    ("DRAPTO_HWACCEL", "processing.hwaccel"),
    ("DRAPTO_LOG_KEEP_DAYS", "processing.log_keep_days"),
    ("DRAPTO_LOG_KEEP_RUNS", "processing.log_keep_runs"),
    ("DRAPTO_TRACKING_KEEP_ENTRIES", "processing.tracking_keep_entries"),
    ("DRAPTO_RESPONSIVE", "processing.responsive"),
    ("DRAPTO_MAX_MEMORY", "resources.max_memory"),
    ("DRAPTO_MAX_CPU", "resources.max_cpu"),
    ("DRAPTO_AUDIO_BITRATE_MONO", "audio.bitrate_mono"),
    ("DRAPTO_AUDIO_BITRATE_STEREO", "audio.bitrate_stereo"),
    ("DRAPTO_AUDIO_BITRATE_5_1", "audio.bitrate_5_1"),
    ("DRAPTO_AUDIO_BITRATE_7_1", "audio.bitrate_7_1"),
    ("DRAPTO_INPUT_DIR", "paths.input_dir"),
    ("DRAPTO_OUTPUT_DIR", "paths.output_dir"),
    ("DRAPTO_LOG_DIR", "paths.log_dir"),
    ("DRAPTO_REPORT_DIR", "paths.report_dir"),
    ("DRAPTO_FFMPEG", "tools.ffmpeg"),
    ("DRAPTO_FFPROBE", "tools.ffprobe"),
    ("DRAPTO_MEDIAINFO", "tools.mediainfo"),
    ("DRAPTO_MKVMERGE", "tools.mkvmerge"),
    ("DRAPTO_HOSTS", "distributed.hosts"),
    ("DRAPTO_NOTIFY_NTFY", "notify.ntfy"),
    ("DRAPTO_NOTIFY_NTFY_TOKEN", "notify.ntfy_token"),
    ("DRAPTO_NOTIFY_NTFY_PRIORITY", "notify.ntfy_priority"),
    ("DRAPTO_NOTIFY_WEBHOOK", "notify.webhook"),
    ("DRAPTO_NOTIFY_COMMAND", "notify.command"),
    ("DRAPTO_NOTIFY_TIMEOUT", "notify.timeout"),
    ("DRAPTO_NOTIFY_RETRIES", "notify.retries"),
    ("DRAPTO_WATCH_SETTLE", "watch.settle"),
    ("DRAPTO_WATCH_POLL", "watch.poll"),
    ("DRAPTO_REMOTE_DRAPTO", "distributed.remote_drapto"),
    ("DRAPTO_SHARED_SOURCE", "distributed.shared_source"),
    ("DRAPTO_SSH", "distributed.ssh"),
    ("DRAPTO_REMOTE_RETRIES", "distributed.retries"),
    ("DRAPTO_ALLOW_VERSION_MISMATCH", "distributed.allow_version_mismatch"),
];

/// Settings whose values are text (paths, commands, URLs, names, a token):
/// their variables are never read as numbers or booleans.
const TEXT_KEYS: &[&str] = &[
    "processing.temp_dir",
    "processing.hwaccel",
    "input.file_pattern",
    "paths.input_dir",
    "paths.output_dir",
    "paths.log_dir",
    "paths.report_dir",
    "tools.ffmpeg",
    "tools.ffprobe",
    "tools.mediainfo",
    "tools.mkvmerge",
    "distributed.hosts",
    "distributed.remote_drapto",
    "distributed.ssh",
    "notify.ntfy",
    "notify.ntfy_token",
    "notify.webhook",
    "notify.command",
];

/// Environment variables of settings that were removed, and why: set, they
/// are an error rather than silently ignored.
const REMOVED_ENV_VARS: &[(&str, &str)] = &[
    (
        "DRAPTO_MAX_DISK_IO",
        "resources.max_disk_io was removed: it was never enforced; unset it, and use DRAPTO_RESPONSIVE=true for idle I/O priority",
    ),
    (
        "DRAPTO_KEEP_LOGS",
        "processing.keep_logs was removed: it kept an empty folder; unset it (the run logs in paths.log_dir hold every command)",
    ),
];

/// Which configuration file to read.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `--config FILE`: it must exist.
    Explicit(PathBuf),
    /// The default location; read if it exists.
    Default(PathBuf),
    /// No file at all (tests, `--no-config`).
    None,
}

impl ConfigSource {
    /// `--config` when given, else `config.toml` in drapto's folder of
    /// [`config_dir`].
    pub fn from_flag(flag: Option<PathBuf>) -> ConfigSource {
        match flag {
            Some(p) => ConfigSource::Explicit(p),
            None => match config_dir() {
                Some(d) => ConfigSource::Default(d.join("drapto").join("config.toml")),
                None => ConfigSource::None,
            },
        }
    }
}

/// `$XDG_CONFIG_HOME` when set (on every system), else the platform's:
/// `~/.config` on Linux, `~/Library/Application Support` on macOS.
pub fn config_dir() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME").or_else(dirs::config_dir)
}

/// `$XDG_CACHE_HOME` when set (on every system), else the platform's:
/// `~/.cache` on Linux, `~/Library/Caches` on macOS.
pub fn cache_dir() -> Option<PathBuf> {
    xdg("XDG_CACHE_HOME").or_else(dirs::cache_dir)
}

/// An XDG variable's folder (set, and absolute, as the specification asks).
fn xdg(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// A value set on the command line: the setting's key, its value and the flag.
#[derive(Debug, Clone)]
pub struct FlagValue {
    pub key: &'static str,
    pub value: Value,
    pub flag: &'static str,
}

impl FlagValue {
    pub fn new(key: &'static str, flag: &'static str, value: impl Into<Value>) -> FlagValue {
        FlagValue { key, value: value.into(), flag }
    }
}

pub use crate::origin::Origin;

/// The effective settings and where each came from.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub origins: Origins,
    /// Keys moved by a layout migration of the config file.
    pub migration_notes: Vec<String>,
    /// `DRAPTO_*` variables of the environment that are no setting (a
    /// typo, or one of another version): said, then ignored.
    pub ignored_env: Vec<String>,
    /// Which configuration file was read, or where none was found.
    pub file_note: String,
}

/// Answers "which layer set this key?".
#[derive(Debug)]
pub struct Origins {
    figment: Figment,
    file: Option<(PathBuf, String)>,
    flags: Vec<FlagValue>,
}

const FILE_LAYER: &str = "config file";
const ENV_LAYER: &str = "environment";
const FLAG_LAYER: &str = "command-line flags";

impl Origins {
    /// The origin of the dotted `key` (for example `encoding.crf.sd`).
    pub fn of(&self, key: &str) -> Origin {
        let Some(meta) = self.figment.find_metadata(key) else {
            return Origin::Default;
        };
        match meta.name.as_ref() {
            FILE_LAYER => self.file_origin(key),
            ENV_LAYER => ENV_VARS
                .iter()
                .find(|(_, k)| *k == key)
                .map(|(v, _)| Origin::Env(v.to_string()))
                .unwrap_or(Origin::Env("DRAPTO_*".into())),
            FLAG_LAYER => self
                .flags
                .iter()
                .rev()
                .find(|f| f.key == key)
                .map(|f| Origin::Flag(f.flag.to_string()))
                .unwrap_or(Origin::Flag("?".into())),
            _ => Origin::Default,
        }
    }

    fn file_origin(&self, key: &str) -> Origin {
        match &self.file {
            Some((path, text)) => Origin::File { path: path.clone(), line: key_line(text, key) },
            None => Origin::Default,
        }
    }
}

/// Builds the effective settings from the file, the environment pairs and the flags.
///
/// `env` is passed in (rather than read here) so that callers decide what the
/// environment is: `std::env::vars()` in the binary, a fixed list in tests.
pub fn load(
    source: &ConfigSource,
    env: impl IntoIterator<Item = (String, String)>,
    flags: Vec<FlagValue>,
) -> Result<Loaded, ConfigError> {
    let default_values = Value::serialize(Settings::default()).map_err(internal)?;
    let mut figment = Figment::from(Layer::new("default", None, default_values.clone()));
    let mut file = None;
    let mut migration_notes = Vec::new();

    let path = match source {
        ConfigSource::Explicit(p) => Some(p.clone()),
        ConfigSource::Default(p) if p.exists() => Some(p.clone()),
        _ => None,
    };
    let file_note = match (source, &path) {
        (_, Some(p)) => format!("{}", p.display()),
        (ConfigSource::Default(p), None) => format!("none ({} does not exist; defaults used)", p.display()),
        _ => "none".to_string(),
    };
    if let Some(path) = path {
        let (table, text, notes) = read_file(&path)?;
        migration_notes = notes;
        let value = Value::serialize(&table).map_err(internal)?;
        figment = figment.merge(Layer::new(FILE_LAYER, Some(&path), value));
        file = Some((path, text));
    }
    let env: Vec<(String, String)> = env.into_iter().collect();
    let ignored_env = env.iter().map(|(name, _)| name.clone()).filter(|n| is_unknown_env(n)).collect();
    figment = figment.merge(Layer::new(ENV_LAYER, None, Value::from(env_layer(env, &default_values)?)));

    let mut flag_dict = Dict::new();
    for f in &flags {
        insert_dotted(&mut flag_dict, f.key, f.value.clone());
    }
    figment = figment.merge(Layer::new(FLAG_LAYER, None, Value::from(flag_dict)));

    let origins = Origins { figment, file, flags };
    let mut settings: Settings = origins.figment.extract().map_err(|e| from_figment(&origins, e))?;
    if let Some(home) = dirs::home_dir() {
        settings.expand_home(&home);
    }
    if let Some((key, message)) = validate(&settings).into_iter().next() {
        return Err(ConfigError { origin: origins.of(&key), message: format!("{key}: {message}") });
    }
    Ok(Loaded { settings, origins, migration_notes, ignored_env, file_note })
}

/// The configuration file at `path`: its table (migrated to the current
/// version), its text, and the notes of the migration.
fn read_file(path: &Path) -> Result<(toml::Table, String, Vec<String>), ConfigError> {
    let at = |line| Origin::File { path: path.to_path_buf(), line };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError { origin: at(None), message: format!("cannot read the configuration file: {e}") })?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError {
        origin: at(e.span().map(|s| line_of(&text, s.start))),
        message: format!("syntax error: {}", e.message()),
    })?;
    let notes = migrate(&mut table).map_err(|e| match e {
        MigrateError::TooNew(v) => ConfigError {
            origin: at(key_line(&text, "version")),
            message: format!(
                "version = {v} was written by a newer drapto (this one reads up to {})",
                super::CURRENT_VERSION
            ),
        },
        MigrateError::BadVersion(v) => ConfigError {
            origin: at(key_line(&text, "version")),
            message: format!("version = {v} is not a positive whole number"),
        },
        MigrateError::Conflict { old, new } => {
            let at_old = key_line(&text, &old);
            let new_line = key_line(&text, &new).filter(|l| Some(*l) != at_old);
            let shown = new_line.map_or(String::new(), |l| format!(" (line {l})"));
            ConfigError {
                origin: at(at_old),
                message: format!("`{old}` is the older layout's name for `{new}`{shown}, and both are set: remove one"),
            }
        }
    })?;
    Ok((table, text, notes))
}

/// The settings the `DRAPTO_*` variables among `env` give; `Err` for a
/// variable drapto no longer reads (its message says what replaced it).
/// The variables' layer; `defaults` tells which settings are switches
/// (see [`switch`]).
fn env_layer(env: impl IntoIterator<Item = (String, String)>, defaults: &Value) -> Result<Dict, ConfigError> {
    let mut dict = Dict::new();
    for (name, raw) in env {
        // `DRAPTO_X=` (empty) is how a shell or a service file unsets one.
        if raw.trim().is_empty() {
            continue;
        }
        if let Some((_, why)) = REMOVED_ENV_VARS.iter().find(|(v, _)| *v == name) {
            return Err(ConfigError { origin: Origin::Env(name.clone()), message: why.to_string() });
        }
        if let Some((_, key)) = ENV_VARS.iter().find(|(v, _)| *v == name) {
            // A text setting takes the variable as it is: typed, a folder
            // called 2024 was a number and a token of digits was shown back.
            let is_switch = matches!(defaults.find_ref(key), Some(Value::Bool(..)));
            let value: Value = if TEXT_KEYS.contains(key) {
                Value::from(raw)
            } else if let Some(on) = switch(&raw).filter(|_| is_switch) {
                Value::from(on)
            } else {
                raw.parse().unwrap_or_else(|never| match never {})
            };
            insert_dotted(&mut dict, key, value);
        }
    }
    Ok(dict)
}

/// A switch's variable as a service file or a container sets it: `1`,
/// `yes`, `on` or `true` (any case), and their opposites.
fn switch(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Variables drapto reads or sets that are no setting: the log filter, and
/// what a notification command is given.
const OTHER_ENV_VARS: &[&str] = &["DRAPTO_LOG", "DRAPTO_EVENT", "DRAPTO_FILE"];

/// The names the design (the earlier Python drapto) gave its settings,
/// which this drapto reads as `DRAPTO_` + the name: set bare, they are
/// said to be ignored rather than silently so.
pub const DESIGN_NAMES: [&str; 6] =
    ["PRESET", "CRF_SD", "CRF_HD", "CRF_UHD", "DISABLE_CROP", "ENABLE_CHUNKED_ENCODING"];

/// A `DRAPTO_*` variable that is neither a setting, nor a removed one, nor
/// one drapto reads or sets otherwise; or one of [`DESIGN_NAMES`].
fn is_unknown_env(name: &str) -> bool {
    DESIGN_NAMES.contains(&name)
        || name.starts_with("DRAPTO_")
            && !ENV_VARS.iter().chain(REMOVED_ENV_VARS).any(|(v, _)| *v == name)
            && !OTHER_ENV_VARS.contains(&name)
}

fn internal(e: figment::Error) -> ConfigError {
    ConfigError { origin: Origin::Default, message: format!("internal configuration error: {e}") }
}

/// Turns a figment extraction error into a message naming key and origin.
/// What serde expected, in a user's words rather than Rust's (`u8`,
/// `struct CrfSettings`).
fn in_words(expected: &str) -> String {
    let words = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "String" => "text in quotes",
        e if e.starts_with("struct ") => "a table of settings ([section] or { key = value })",
        e if e.starts_with("a sequence") => "a list",
        e => return e.to_string(),
    };
    words.to_string()
}

fn from_figment(origins: &Origins, e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let e = e.into_iter().next().expect("a figment error holds at least one error");
    let mut path: Vec<String> = e.path.clone();
    let message = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            let parent = if path.len() > 1 { path[..path.len() - 1].join(".") } else { "top level".into() };
            format!("unknown key `{}` in {parent} (known keys: {})", path.join("."), expected.join(", "))
        }
        Kind::InvalidType(actual, expected) => {
            format!("{}: wrong type: found {actual}, expected {}", path.join("."), in_words(expected))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{}: invalid value {actual}, expected {}", path.join("."), in_words(expected))
        }
        Kind::UnknownVariant(found, allowed) => {
            format!("{}: \"{found}\" is not one of {}", path.join("."), allowed.join(", "))
        }
        Kind::Message(m) => format!("{}: {m}", path.join(".")),
        other => format!("{}: {other}", path.join(".")),
    };
    let key = path.join(".");
    let origin = match e.metadata.as_ref().map(|m| m.name.as_ref()) {
        Some(FILE_LAYER) => origins.file_origin(&key),
        Some(_) => origins.of(&key),
        None => Origin::Default,
    };
    ConfigError { origin, message }
}

/// One layer of settings with a name that identifies it in `Origins`.
struct Layer {
    metadata: Metadata,
    value: Value,
}

impl Layer {
    fn new(name: &'static str, path: Option<&Path>, value: Value) -> Layer {
        let metadata = match path {
            Some(p) => Metadata::from(name, p),
            None => Metadata::named(name),
        };
        Layer { metadata, value }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = self.value.clone().into_dict().unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

fn insert_dotted(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let child = dict.entry(head.to_string()).or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, d) = child {
                insert_dotted(d, rest, value);
            }
        }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where the dotted `key` is written in the TOML `text`, if it is.
/// Falls back to the last component at the top level (a migrated v1 key).
fn key_line(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text.to_string()).ok()?;
    let find = |parts: &[&str]| -> Option<usize> {
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut span = None;
        for (i, part) in parts.iter().enumerate() {
            let (k, item) = table.get_key_value(part)?;
            span = k.span().or_else(|| item.span());
            if i + 1 < parts.len() {
                table = item.as_table_like()?;
            }
        }
        span.map(|s| line_of(text, s.start))
    };
    let parts: Vec<&str> = key.split('.').collect();
    find(&parts).or_else(|| find(&parts[parts.len() - 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auto, ChunkedMode};
    use std::io::Write;

    fn file(text: &str) -> (tempfile::NamedTempFile, ConfigSource) {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let src = ConfigSource::Explicit(f.path().to_path_buf());
        (f, src)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_design() {
        let l = load(&ConfigSource::None, vec![], vec![]).unwrap();
        let s = l.settings;
        assert_eq!(s.encoding.preset, 6);
        assert_eq!((s.encoding.crf.sd, s.encoding.crf.hd, s.encoding.crf.uhd), (25, 25, 29));
        assert_eq!(s.encoding.vmaf_target, 93.0);
        assert!(!s.encoding.film_grain);
        assert_eq!(s.processing.chunk_size, 15);
        assert_eq!(s.processing.enable_chunked_encoding, ChunkedMode::Auto);
        assert_eq!(s.resources.max_memory.0, 8 << 30);
        assert_eq!(s.resources.max_cpu, 95.0);
        assert_eq!(l.origins.of("encoding.preset"), Origin::Default);
    }

    #[test]
    fn a_wrong_type_is_said_in_words() {
        let (_f, src) = file("[encoding]\ncrf = 25\npreset = \"fast\"\n");
        let e = load(&src, vec![], vec![]).unwrap_err().to_string();
        assert!(!e.contains("struct") && !e.contains("u8"), "{e}");
        assert!(e.contains("a table of settings") || e.contains("a whole number"), "{e}");
    }

    #[test]
    fn choices_are_typed_and_a_wrong_one_lists_the_allowed() {
        use crate::config::{NtfyPriority, VmafPool};
        let (_f, src) = file("[notify]\nntfy_priority = 5\n[encoding]\nvmaf_pool = \"mean\"\n");
        let l = load(&src, env(&[]), vec![]).unwrap();
        assert_eq!(l.settings.notify.ntfy_priority, NtfyPriority::Max, "a number, as ntfy takes it");
        assert_eq!(l.settings.encoding.vmaf_pool, VmafPool::Mean);
        let l = load(&ConfigSource::None, env(&[("DRAPTO_NOTIFY_NTFY_PRIORITY", "4")]), vec![]).unwrap();
        assert_eq!(l.settings.notify.ntfy_priority, NtfyPriority::High);
        let e = load(&ConfigSource::None, env(&[("DRAPTO_VMAF_POOL", "median")]), vec![]).unwrap_err().to_string();
        assert!(e.ends_with("encoding.vmaf_pool: \"median\" is not one of harmonic_mean, mean, min"), "{e}");
        let e = load(&ConfigSource::None, env(&[("DRAPTO_NOTIFY_NTFY_PRIORITY", "9")]), vec![]).unwrap_err();
        assert!(e.to_string().contains("\"9\" is not 1–5 or min, low, default, high, max"), "{e}");
    }

    #[test]
    fn text_settings_take_variables_as_text() {
        let vars =
            [("DRAPTO_TEMP_DIR", "2024"), ("DRAPTO_NOTIFY_NTFY_TOKEN", "1234567"), ("DRAPTO_NOTIFY_COMMAND", "true")];
        let l = load(&ConfigSource::None, env(&vars), vec![]).unwrap();
        assert_eq!(l.settings.processing.temp_dir, Auto::Value(PathBuf::from("2024")));
        assert_eq!(l.settings.notify.ntfy_token.as_deref(), Some("1234567"));
        assert_eq!(l.settings.notify.command.as_deref(), Some("true"));
        for key in TEXT_KEYS {
            assert!(ENV_VARS.iter().any(|(_, k)| k == key), "{key} has a variable");
        }
    }

    #[test]
    fn switches_take_the_usual_spellings_from_variables() {
        for (raw, on) in [("1", true), ("yes", true), ("On", true), ("TRUE", true), ("0", false), ("no", false)] {
            let l = load(&ConfigSource::None, env(&[("DRAPTO_FILM_GRAIN", raw)]), vec![]).unwrap();
            assert_eq!(l.settings.encoding.film_grain, on, "{raw}");
        }
        let e = load(&ConfigSource::None, env(&[("DRAPTO_FILM_GRAIN", "maybe")]), vec![]).unwrap_err().to_string();
        assert!(e.contains("DRAPTO_FILM_GRAIN") && e.contains("expected true or false"), "{e}");
        // A number setting still reads 1 as a number.
        let l = load(&ConfigSource::None, env(&[("DRAPTO_PRESET", "1")]), vec![]).unwrap();
        assert_eq!(l.settings.encoding.preset, 1);
    }

    #[test]
    fn an_empty_variable_is_no_setting() {
        let l = load(&ConfigSource::None, env(&[("DRAPTO_TEMP_DIR", ""), ("DRAPTO_PRESET", " ")]), vec![]).unwrap();
        assert_eq!(l.settings.processing.temp_dir, Auto::Auto);
        assert_eq!(l.origins.of("encoding.preset"), Origin::Default);
    }

    #[test]
    fn the_designs_bare_names_are_said_to_be_ignored() {
        let l = load(&ConfigSource::None, env(&[("DISABLE_CROP", "true"), ("PATH", "/bin")]), vec![]).unwrap();
        assert_eq!(l.ignored_env, ["DISABLE_CROP"]);
        assert!(!l.settings.processing.disable_crop);
    }

    #[test]
    fn an_unknown_drapto_variable_is_said_to_be_ignored() {
        let l = load(
            &ConfigSource::None,
            env(&[("DRAPTO_CRF", "18"), ("DRAPTO_PRESET", "5"), ("DRAPTO_LOG", "debug")]),
            vec![],
        )
        .unwrap();
        assert_eq!(l.ignored_env, ["DRAPTO_CRF"]);
        assert_eq!(l.settings.encoding.preset, 5);
    }

    #[test]
    fn a_home_folder_written_as_tilde_is_the_home_folder() {
        let (_f, src) = file("[paths]\noutput_dir = \"~/encodes\"\n[tools]\nffmpeg = \"~/bin/ffmpeg\"\n");
        let l = load(&src, env(&[("DRAPTO_TEMP_DIR", "~"), ("DRAPTO_LOG_DIR", "/var/~/logs")]), vec![]).unwrap();
        let home = dirs::home_dir().unwrap();
        assert_eq!(l.settings.paths.output_dir, Some(home.join("encodes")));
        assert_eq!(l.settings.tools.ffmpeg, Some(home.join("bin/ffmpeg")));
        assert_eq!(l.settings.processing.temp_dir, Auto::Value(home.clone()));
        assert_eq!(l.settings.paths.log_dir, Some(std::path::PathBuf::from("/var/~/logs")), "only a leading ~");
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let (_f, src) = file("[encoding]\npreset = 4\n[encoding.crf]\nsd = 20\nhd = 21\n");
        let l = load(
            &src,
            env(&[("DRAPTO_CRF_HD", "22"), ("DRAPTO_PRESET", "5"), ("UNRELATED", "x")]),
            vec![FlagValue::new("encoding.preset", "--preset", 8)],
        )
        .unwrap();
        assert_eq!(l.settings.encoding.preset, 8);
        assert_eq!(l.settings.encoding.crf.sd, 20);
        assert_eq!(l.settings.encoding.crf.hd, 22);
        assert_eq!(l.settings.encoding.crf.uhd, 29);
        assert_eq!(l.origins.of("encoding.preset"), Origin::Flag("--preset".into()));
        assert_eq!(l.origins.of("encoding.crf.hd"), Origin::Env("DRAPTO_CRF_HD".into()));
        assert!(matches!(l.origins.of("encoding.crf.sd"), Origin::File { line: Some(4), .. }));
        assert_eq!(l.origins.of("encoding.crf.uhd"), Origin::Default);
    }

    #[test]
    fn env_values_are_typed() {
        let l = load(
            &ConfigSource::None,
            env(&[
                ("DRAPTO_DISABLE_CROP", "true"),
                ("DRAPTO_PARALLEL_JOBS", "3"),
                ("DRAPTO_MAX_MEMORY", "4GiB"),
                ("DRAPTO_TEMP_DIR", "/var/tmp/x"),
                ("DRAPTO_ENABLE_CHUNKED_ENCODING", "false"),
                ("DRAPTO_SURVEY_PRESET", "8"),
            ]),
            vec![],
        )
        .unwrap();
        assert!(l.settings.processing.disable_crop);
        assert_eq!(l.settings.encoding.survey_preset, Auto::Value(8));
        assert_eq!(l.settings.processing.parallel_jobs, Auto::Value(3));
        assert_eq!(l.settings.resources.max_memory.0, 4 << 30);
        assert_eq!(l.settings.processing.temp_dir, Auto::Value(PathBuf::from("/var/tmp/x")));
        assert_eq!(l.settings.processing.enable_chunked_encoding, ChunkedMode::Off);
        // As a shell script writes a switch.
        let on = load(&ConfigSource::None, env(&[("DRAPTO_ENABLE_CHUNKED_ENCODING", "1")]), vec![]).unwrap();
        assert_eq!(on.settings.processing.enable_chunked_encoding, ChunkedMode::On);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let (_f, src) = file("[encoding]\npreset = 4\ncrf = [\n");
        let e = load(&src, vec![], vec![]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("syntax error"), "{msg}");
        assert!(matches!(e.origin, Origin::File { line: Some(_), .. }), "{msg}");
    }

    #[test]
    fn a_removed_setting_in_the_environment_is_an_error_not_ignored() {
        let e = load(&ConfigSource::None, env(&[("DRAPTO_MAX_DISK_IO", "100MiB")]), vec![]).unwrap_err();
        assert_eq!(e.origin, Origin::Env("DRAPTO_MAX_DISK_IO".into()));
        assert!(e.message.contains("never enforced") && e.message.contains("DRAPTO_RESPONSIVE"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let (_f, src) = file("version = 3\n[encoding]\npreset = 4\nprest = 5\n");
        let e = load(&src, vec![], vec![]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("encoding.prest"), "{msg}");
        assert!(msg.contains(":4"), "{msg}");
    }

    #[test]
    fn wrong_type_names_key_and_origin() {
        let (_f, src) = file("[encoding]\n\npreset = \"fast\"\n");
        let e = load(&src, vec![], vec![]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("encoding.preset") && msg.contains("wrong type"), "{msg}");
        assert!(msg.contains(":3"), "{msg}");

        let e = load(&ConfigSource::None, env(&[("DRAPTO_PRESET", "fast")]), vec![]).unwrap_err();
        assert!(e.to_string().contains("DRAPTO_PRESET"), "{e}");
    }

    #[test]
    fn out_of_range_names_key_value_range_and_origin() {
        let (_f, src) = file("[encoding]\npreset = 17\n");
        let msg = load(&src, vec![], vec![]).unwrap_err().to_string();
        assert!(msg.contains("encoding.preset") && msg.contains("17") && msg.contains("0–13"), "{msg}");
        assert!(msg.contains(":2"), "{msg}");

        let msg =
            load(&ConfigSource::None, vec![], vec![FlagValue::new("encoding.vmaf_target", "--vmaf-target", 50.0)])
                .unwrap_err()
                .to_string();
        assert!(msg.contains("--vmaf-target") && msg.contains("70–99"), "{msg}");
    }

    #[test]
    fn v1_file_is_migrated_with_notes() {
        let (_f, src) = file("preset = 3\ncrf = 22\n");
        let l = load(&src, vec![], vec![]).unwrap();
        assert_eq!(l.settings.encoding.preset, 3);
        assert_eq!(l.settings.encoding.crf.uhd, 26);
        assert!(!l.migration_notes.is_empty());
        assert!(matches!(l.origins.of("encoding.preset"), Origin::File { line: Some(1), .. }));
    }

    #[test]
    fn an_old_key_beside_its_new_name_is_refused_naming_both_lines() {
        let (_f, src) = file("preset = 4\n[encoding]\npreset = 8\n");
        let e = load(&src, vec![], vec![]).unwrap_err().to_string();
        assert!(e.contains(":1: `preset` is the older layout's name for `encoding.preset` (line 3)"), "{e}");
    }

    #[test]
    fn explicit_missing_file_is_an_error_default_missing_is_not() {
        let e = load(&ConfigSource::Explicit("/nonexistent/drapto.toml".into()), vec![], vec![]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/drapto.toml"));
        assert!(load(&ConfigSource::Default("/nonexistent/drapto.toml".into()), vec![], vec![]).is_ok());
    }
}
