//! Range checks and cross-field rules for settings.

use super::{Auto, Settings};

/// Every rule `s` breaks, as (dotted key, message), in a stable order.
pub fn validate(s: &Settings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    empty_paths(s, &mut out);
    ranges(s, &mut out);
    choices(s, &mut out);
    cross_rules(s, &mut out);
    out
}

/// Paths set to nothing (`temp_dir = ""`): the working folder, wherever
/// drapto was started (`/` under a service manager), where `drapto clean`
/// from another folder never finds its work; as in the environment, where
/// an empty variable is unset, the line is to be left out.
fn empty_paths(s: &Settings, out: &mut Vec<(String, String)>) {
    let (p, t) = (&s.paths, &s.tools);
    let temp = match &s.processing.temp_dir {
        Auto::Value(dir) => Some(dir),
        Auto::Auto => None,
    };
    let paths = [
        ("paths.input_dir", p.input_dir.as_ref()),
        ("paths.output_dir", p.output_dir.as_ref()),
        ("paths.log_dir", p.log_dir.as_ref()),
        ("paths.report_dir", p.report_dir.as_ref()),
        ("processing.temp_dir", temp),
        ("tools.ffmpeg", t.ffmpeg.as_ref()),
        ("tools.ffprobe", t.ffprobe.as_ref()),
        ("tools.mediainfo", t.mediainfo.as_ref()),
        ("tools.mkvmerge", t.mkvmerge.as_ref()),
        ("distributed.hosts", s.distributed.hosts.as_ref()),
    ];
    for (key, path) in paths {
        if path.is_some_and(|p| p.as_os_str().is_empty()) {
            out.push((key.into(), "an empty path (leave the line out for the default)".into()));
        }
    }
}

/// The numbers out of their range.
fn ranges(s: &Settings, out: &mut Vec<(String, String)>) {
    let mut range = |key: &str, v: f64, lo: f64, hi: f64| {
        if !(lo..=hi).contains(&v) || v.is_nan() {
            out.push((key.to_string(), format!("{v} is out of range (allowed {lo}–{hi})")));
        }
    };
    let e = &s.encoding;
    range("encoding.preset", e.preset.into(), 0.0, 13.0);
    range("encoding.crf.sd", e.crf.sd.into(), 0.0, 63.0);
    range("encoding.crf.hd", e.crf.hd.into(), 0.0, 63.0);
    range("encoding.crf.uhd", e.crf.uhd.into(), 0.0, 63.0);
    range("encoding.vmaf_target", e.vmaf_target, 70.0, 99.0);
    range("encoding.film_grain_level", e.film_grain_level.into(), 1.0, 50.0);
    range("encoding.vmaf_subsample", e.vmaf_subsample.into(), 1.0, 64.0);
    range("encoding.vmaf_probe_subsample", e.vmaf_probe_subsample.into(), 1.0, 9.0);
    if let Auto::Value(p) = e.survey_preset {
        range("encoding.survey_preset", p.into(), 0.0, 13.0);
    }
    let p = &s.processing;
    range("processing.chunk_size", p.chunk_size.into(), 1.0, 300.0);
    range("processing.max_output_ratio", p.max_output_ratio, 0.0, 100.0);
    range("processing.breaker_reset", p.breaker_reset.into(), 0.0, 3600.0);
    range("processing.log_keep_days", p.log_keep_days.into(), 0.0, 36500.0);
    range("processing.log_keep_runs", p.log_keep_runs.into(), 0.0, 1_000_000.0);
    range("processing.tracking_keep_entries", p.tracking_keep_entries.into(), 0.0, 100_000_000.0);
    if let Auto::Value(j) = p.parallel_jobs {
        range("processing.parallel_jobs", j.into(), 1.0, 32.0);
    }
    let r = &s.resources;
    range("resources.max_cpu", r.max_cpu, 1.0, 100.0);
    let a = &s.audio;
    range("audio.bitrate_mono", a.bitrate_mono.into(), 6.0, 256.0);
    range("audio.bitrate_stereo", a.bitrate_stereo.into(), 6.0, 512.0);
    range("audio.bitrate_5_1", a.bitrate_5_1.into(), 6.0, 1536.0);
    range("audio.bitrate_7_1", a.bitrate_7_1.into(), 6.0, 2048.0);
    range("distributed.retries", s.distributed.retries.into(), 1.0, 20.0);
    range("notify.timeout", s.notify.timeout.into(), 1.0, 300.0);
    range("notify.retries", s.notify.retries.into(), 1.0, 10.0);
    range("watch.settle", s.watch.settle.into(), 0.0, 86400.0);
    range("watch.poll", s.watch.poll.into(), 1.0, 86400.0);
    const LEAST_MEMORY: u64 = 256 << 20;
    if r.max_memory.0 < LEAST_MEMORY {
        let (is, least) = (crate::units::format_bytes(r.max_memory.0), crate::units::format_bytes(LEAST_MEMORY));
        out.push(("resources.max_memory".into(), format!("{is} is too little (at least {least})")));
    }
}

/// The words, URLs and patterns that are not among those allowed.
fn choices(s: &Settings, out: &mut Vec<(String, String)>) {
    let n = &s.notify;
    for (key, url) in [("notify.ntfy", &n.ntfy), ("notify.webhook", &n.webhook)] {
        // (Not echoed: a webhook's address is its key, an ntfy topic's name
        // its password.)
        if url.as_deref().is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            out.push((key.into(), "is not an http:// or https:// URL (it must start with one)".into()));
        }
    }
    if s.distributed.remote_drapto.trim().is_empty() {
        out.push(("distributed.remote_drapto".into(), "must name the command that runs drapto on the hosts".into()));
    }
    let i = &s.input;
    if let Err(err) = super::file_pattern(&i.file_pattern) {
        out.push(("input.file_pattern".into(), err));
    }
    if let (Some(min), Some(max)) = (i.min_size, i.max_size) {
        if min > max {
            out.push(("input.min_size".into(), format!("{} is above input.max_size ({})", min.0, max.0)));
        }
    }
}

/// Settings that do not go together.
fn cross_rules(s: &Settings, out: &mut Vec<(String, String)>) {
    let e = &s.encoding;
    let max_crf = e.crf.sd.max(e.crf.hd).max(e.crf.uhd);
    if e.vmaf_target > 95.0 && e.vmaf_target <= 99.0 && max_crf > 20 {
        out.push((
            "encoding.vmaf_target".into(),
            format!(
                "{} above 95 needs every CRF at 20 or below (highest is {max_crf}): lower the target or the CRFs",
                e.vmaf_target
            ),
        ));
    }
    if e.film_grain && e.preset > 8 {
        out.push((
            "encoding.film_grain".into(),
            format!("film-grain synthesis needs preset 8 or slower (preset is {})", e.preset),
        ));
    }
    if let Auto::Value(p) = e.survey_preset
        && e.film_grain
        && p > 8
    {
        out.push((
            "encoding.survey_preset".into(),
            format!("film-grain synthesis needs preset 8 or slower, the survey's too (survey_preset is {p})"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

    fn keys(s: &Settings) -> Vec<String> {
        validate(s).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(validate(&Settings::default()).is_empty());
    }

    #[test]
    fn empty_paths_are_refused() {
        let mut s = Settings::default();
        s.processing.temp_dir = Auto::Value("".into());
        s.paths.report_dir = Some("".into());
        s.paths.log_dir = Some("/var/log/drapto".into());
        assert_eq!(keys(&s), ["paths.report_dir", "processing.temp_dir"]);
        assert!(validate(&s)[0].1.contains("an empty path"));
    }

    #[test]
    fn too_little_memory_is_said_as_a_size() {
        let mut s = Settings::default();
        s.resources.max_memory = ByteSize(100 << 20);
        let v = validate(&s);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, "100.0 MiB is too little (at least 256.0 MiB)", "{v:?}");
    }

    #[test]
    fn every_range_is_checked() {
        type Change = Box<dyn Fn(&mut Settings)>;
        let cases: Vec<(&str, Change)> = vec![
            ("encoding.preset", Box::new(|s| s.encoding.preset = 14)),
            ("encoding.crf.sd", Box::new(|s| s.encoding.crf.sd = 64)),
            ("encoding.crf.hd", Box::new(|s| s.encoding.crf.hd = 64)),
            ("encoding.crf.uhd", Box::new(|s| s.encoding.crf.uhd = 70)),
            ("encoding.vmaf_target", Box::new(|s| s.encoding.vmaf_target = 69.9)),
            ("encoding.vmaf_target", Box::new(|s| s.encoding.vmaf_target = 99.5)),
            ("encoding.film_grain_level", Box::new(|s| s.encoding.film_grain_level = 0)),
            ("encoding.survey_preset", Box::new(|s| s.encoding.survey_preset = Auto::Value(14))),
            ("processing.chunk_size", Box::new(|s| s.processing.chunk_size = 0)),
            ("processing.chunk_size", Box::new(|s| s.processing.chunk_size = 301)),
            ("processing.parallel_jobs", Box::new(|s| s.processing.parallel_jobs = Auto::Value(0))),
            ("processing.parallel_jobs", Box::new(|s| s.processing.parallel_jobs = Auto::Value(33))),
            ("resources.max_cpu", Box::new(|s| s.resources.max_cpu = 101.0)),
            ("resources.max_memory", Box::new(|s| s.resources.max_memory = ByteSize(1000))),
            ("audio.bitrate_stereo", Box::new(|s| s.audio.bitrate_stereo = 1)),
            ("audio.bitrate_7_1", Box::new(|s| s.audio.bitrate_7_1 = 5000)),
        ];
        for (key, change) in cases {
            let mut s = Settings::default();
            change(&mut s);
            assert_eq!(keys(&s), vec![key.to_string()], "changing {key}");
        }
    }

    #[test]
    fn boundaries_are_allowed() {
        let mut s = Settings::default();
        s.encoding.preset = 13;
        s.encoding.vmaf_target = 70.0;
        s.processing.chunk_size = 300;
        s.processing.parallel_jobs = Auto::Value(32);
        assert!(validate(&s).is_empty());
        s.encoding.preset = 0;
        s.encoding.vmaf_target = 95.0;
        s.processing.chunk_size = 1;
        s.processing.parallel_jobs = Auto::Value(1);
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn high_vmaf_target_needs_low_crfs() {
        let mut s = Settings::default();
        s.encoding.vmaf_target = 96.0;
        assert_eq!(keys(&s), vec!["encoding.vmaf_target"]);
        s.encoding.crf.sd = 20;
        s.encoding.crf.hd = 20;
        s.encoding.crf.uhd = 20;
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn film_grain_needs_slow_preset() {
        let mut s = Settings::default();
        s.encoding.film_grain = true;
        s.encoding.preset = 9;
        assert_eq!(keys(&s), vec!["encoding.film_grain"]);
        s.encoding.preset = 8;
        assert!(validate(&s).is_empty());
        s.encoding.survey_preset = Auto::Value(10);
        assert_eq!(keys(&s), vec!["encoding.survey_preset"]);
        s.encoding.survey_preset = Auto::Value(8);
        assert!(validate(&s).is_empty());
    }
}
