//! `drapto encode --dry-run`: what the run would do with each file it
//! found (`encode`, `check`, `skip`, `fail`, `not_now`) and why, each
//! sidecar it would copy, and the totals; it makes nothing (no output or
//! temporary folder, no pruned history).

use super::Session;
use crate::discover::{Discovery, Found, Skip};
use crate::pipeline::Pipeline;
use crate::pipeline::output::Action;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Says what the run would do with `work`; whether it would succeed (no
/// `fail`, no `not_now`). A finished output (its record matches the rip and
/// the settings) counts as not encoded; a rip another drapto encodes, or
/// one still being written or unreadable, is `not_now`.
pub fn run(work: &Discovery, tools: &crate::tools::Toolbox, session: &Session) -> bool {
    let settings = &session.loaded.settings;
    let quiet = crate::events::Fanout(Vec::new());
    let pipeline = Pipeline { settings, tools, cluster: None, events: &quiet, cancel: &session.cancel };
    let mut said = Said { json: session.json, counts: BTreeMap::new(), sidecars: BTreeSet::new() };
    for f in &work.found {
        // (drapto's own encode: skipped, its sidecars not copied.)
        let own = pipeline.drapto_encode_in_library(f);
        let kept_as_is = own.is_some();
        let (action, why) = match own {
            Some(why) => (Action::Skip, why),
            None => verdict(&pipeline, f, &settings.temp_dir()),
        };
        said.file(action, &f.input, Some(&f.output), (!why.is_empty()).then_some(why));
        // (The run copies a rip's sidecars once it is encoded or kept.)
        if !kept_as_is && matches!(action, Action::Encode | Action::Check | Action::Skip) {
            said.sidecars_of(f);
        }
    }
    let sidecars: BTreeSet<&PathBuf> = work.found.iter().flat_map(|f| &f.sidecars).collect();
    // (A library that cannot be read: the run fails on it, exit 1.)
    let unreadable = super::unreadable_only(work).map(|(p, _)| p);
    for (path, why) in work.skipped.iter().filter(|(p, _)| !sidecars.contains(p)) {
        let action = match why {
            Skip::SameOutput { .. } => Action::Fail,
            _ if unreadable == Some(path) => Action::Fail,
            _ if why.is_rip_not_encoded() => Action::NotNow,
            _ => Action::Skip,
        };
        said.file(action, path, None, Some(why.to_string()));
    }
    said.totals();
    ![Action::Fail, Action::NotNow].iter().any(|a| said.counts.contains_key(a.label()))
}

/// What the run would do with rip `f`, and why (empty where nothing needs
/// saying).
fn verdict(pipeline: &Pipeline, f: &Found, temp: &Path) -> (Action, String) {
    if let Err(e) = crate::pipeline::output::name_fits(&f.input, &f.output) {
        return (Action::Fail, e.to_string());
    }
    if let Some(busy) = pipeline.busy_now(f) {
        return (Action::NotNow, busy);
    }
    if let Some(why) = crate::analysis::not_a_rip(&f.input) {
        return (Action::Fail, why);
    }
    let source = match crate::job::JobInfo::of(&f.input) {
        Ok(source) => source,
        Err(e) if f.output.exists() => return (Action::Fail, format!("cannot be read: {e}")),
        Err(_) => return (Action::Encode, String::new()),
    };
    if f.output.exists() {
        return pipeline.verdict_on_existing(&f.input, &f.output, &source);
    }
    match pipeline.moved_output(&f.input, &f.output, &f.root, &source) {
        Some(from) => {
            (Action::Skip, format!("its encode moves here from {} (the rip was moved since)", from.display()))
        }
        None => (Action::Encode, resumed(&source, temp).unwrap_or_default()),
    }
}

/// Where an earlier run left work on the rip (`source`) that the run would
/// resume (finished segments, video or audio), in words; the run says so,
/// and the dry run did not.
fn resumed(source: &crate::job::JobInfo, temp: &Path) -> Option<String> {
    let work = crate::job::WorkDir::for_identity(temp, source.clone());
    crate::job::WorkDir::holds_work(work.root())
        .then(|| format!("an earlier run left work in {} (resumed where its settings match)", work.root().display()))
}

/// The dry run's lines as they are said (text or JSON), and their counts.
struct Said {
    json: bool,
    counts: BTreeMap<&'static str, usize>,
    /// Where sidecars said so far go (a folder's poster is copied once).
    sidecars: BTreeSet<PathBuf>,
}

impl Said {
    /// One file's line.
    fn file(&mut self, action: Action, input: &Path, output: Option<&Path>, reason: Option<String>) {
        let action = action.label();
        *self.counts.entry(action).or_default() += 1;
        if self.json {
            println!("{}", serde_json::json!({"action": action, "input": input, "output": output, "reason": reason}));
            return;
        }
        match (output, reason) {
            (_, Some(r)) if r.starts_with(&format!("{}: ", input.display())) => println!("{action:<7} {r}"),
            (_, Some(r)) => println!("{action:<7} {}: {r}", input.display()),
            (Some(o), None) => println!("{action:<7} {}\n        → {}", input.display(), o.display()),
            (None, None) => println!("{action:<7} {}", input.display()),
        }
    }

    /// What the run does with each sidecar of rip `f` (`--copy-sidecars`)
    /// it encodes or keeps: `copy` it beside the output, or `skip` it (a
    /// copy is there already, or a different file of its name is kept).
    /// Before, the dry run listed them as skipped for the file pattern, and
    /// the run copied them.
    fn sidecars_of(&mut self, f: &Found) {
        for s in &f.sidecars {
            let Some(to) = crate::sidecars::sidecar_destination(s, &f.input, &f.output) else { continue };
            if !self.sidecars.insert(to.clone()) {
                continue;
            }
            let (action, counted, why) = match to.exists() {
                false => ("copy", "copy", None),
                true if crate::sidecars::same_content(s, &to) => {
                    ("skip", "sidecar_skip", Some("already beside its output".to_string()))
                }
                true => ("skip", "sidecar_skip", Some(format!("{} is a different file, kept", to.display()))),
            };
            *self.counts.entry(counted).or_default() += 1;
            if self.json {
                let j = serde_json::json!({"action": action, "input": s, "output": to, "reason": why, "sidecar_of": f.input});
                println!("{j}");
            } else {
                let why = why.map(|w| format!(": {w}")).unwrap_or_default();
                println!("  {action:<5} sidecar {}{why}\n        → {}", s.display(), to.display());
            }
        }
    }

    /// The totals line (text only).
    fn totals(&self) {
        if self.json {
            return;
        }
        let n = |a: &str| self.counts.get(a).copied().unwrap_or(0);
        let mut totals = format!("{} to encode, {} skipped", n("encode"), n("skip"));
        for (a, what) in [
            ("check", "to check"),
            ("fail", "would fail"),
            ("not_now", "not encoded now"),
            ("copy", "sidecars to copy"),
            ("sidecar_skip", "sidecars already there"),
        ] {
            if n(a) > 0 {
                totals.push_str(&format!(", {} {what}", n(a)));
            }
        }
        println!("{totals}");
    }
}
