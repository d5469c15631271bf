//! The hosts that share a film's segment encodes (`--hosts`): the hosts
//! file, each host's drapto and tools as it reports them, the check that
//! they match this machine's, and the GNU Parallel command that reaches
//! them ([`super::remote`] dispatches the segments).

use crate::cancel::Cancel;
use crate::config::DistributedSettings;
use crate::error::{Error, Result, ToolError};
use crate::tools::process::Line;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One host of the hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Segments encoded there at once.
    pub slots: usize,
    /// GNU Parallel sshlogin (`:` is this machine).
    pub login: String,
}

impl Host {
    pub fn is_local(&self) -> bool {
        self.login == ":"
    }
}

/// Parses a GNU Parallel sshlogin file: one host a line, `N/host` for N job
/// slots (default 1: one SVT-AV1 encoder already uses every core it is
/// given), `#` comments.
pub fn parse_hosts(text: &str) -> std::result::Result<Vec<Host>, String> {
    let mut hosts = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.contains(',') {
            return Err(format!("line {}: one host a line, please (\"{line}\")", n + 1));
        }
        let (slots, login) = match line.split_once('/') {
            Some((k, rest)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()) => {
                let k: usize = k.parse().map_err(|_| format!("line {}: bad job count \"{k}\"", n + 1))?;
                if k == 0 {
                    return Err(format!("line {}: a host needs at least 1 job slot", n + 1));
                }
                (k, rest.trim())
            }
            _ => (1, line),
        };
        if login.is_empty() {
            return Err(format!("line {}: no host after the job count", n + 1));
        }
        hosts.push(Host { slots, login: login.to_string() });
    }
    if hosts.is_empty() {
        return Err("no hosts listed".into());
    }
    Ok(hosts)
}

/// What one host has, as printed by `drapto segment-worker --info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub drapto: String,
    pub ffmpeg: Option<PathBuf>,
    pub ffmpeg_version: Option<String>,
    pub svtav1: Option<String>,
    pub libvmaf: bool,
    /// Why this host cannot encode segments, if it cannot.
    pub problem: Option<String>,
}

impl WorkerInfo {
    /// This machine's, from its discovered tools.
    pub fn of(tools: &crate::tools::Tools) -> WorkerInfo {
        let mut info = WorkerInfo {
            drapto: env!("CARGO_PKG_VERSION").into(),
            ffmpeg: None,
            ffmpeg_version: None,
            svtav1: None,
            libvmaf: false,
            problem: None,
        };
        match &tools.ffmpeg {
            Ok((loc, caps)) => {
                info.ffmpeg = Some(loc.path.clone());
                info.ffmpeg_version = Some(loc.version.clone());
                info.svtav1 = caps.svtav1.clone();
                info.libvmaf = caps.libvmaf;
                let why =
                    |e: &Option<String>| e.as_ref().map(|e| format!(" that works here ({e})")).unwrap_or_default();
                if caps.svtav1.is_none() {
                    info.problem = Some(format!("ffmpeg has no libsvtav1{}", why(&caps.svtav1_error)));
                } else if !caps.libvmaf {
                    info.problem = Some(format!("ffmpeg has no libvmaf{}", why(&caps.libvmaf_error)));
                }
            }
            Err(e) => info.problem = Some(format!("{}: {}", e.tool, e.problem)),
        }
        info
    }

    /// Why results made with `self` would differ from `local`'s, if they would.
    pub fn mismatch(&self, local: &WorkerInfo) -> Option<String> {
        if self.svtav1 != local.svtav1 {
            return Some(format!(
                "SVT-AV1 {} here, {} on this host",
                local.svtav1.as_deref().unwrap_or("?"),
                self.svtav1.as_deref().unwrap_or("?")
            ));
        }
        (self.drapto != local.drapto).then(|| format!("drapto {} here, {} on this host", local.drapto, self.drapto))
    }
}

/// The result of checking one host.
#[derive(Debug, Clone)]
pub struct HostCheck {
    pub host: Host,
    /// What it has, or why it could not be asked.
    pub info: std::result::Result<WorkerInfo, String>,
}

/// What a run does with a checked host.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It takes segments.
    Ready,
    /// It takes segments although its versions differ (allowed by
    /// `distributed.allow_version_mismatch`); why they differ.
    Allowed(String),
    /// It is left out (unreachable or incapable) and the run goes on; why.
    LeftOut(String),
    /// Its versions differ and that is not allowed: no run; why they differ.
    Refused(String),
}

impl HostCheck {
    /// What a run does with this host, given this machine's `local` info.
    pub fn verdict(&self, local: &WorkerInfo, allow_mismatch: bool) -> Verdict {
        match &self.info {
            Err(why) => Verdict::LeftOut(why.clone()),
            Ok(info) => match (&info.problem, info.mismatch(local)) {
                (Some(p), _) => Verdict::LeftOut(p.clone()),
                (None, Some(m)) if allow_mismatch => Verdict::Allowed(m),
                (None, Some(m)) => Verdict::Refused(m),
                (None, None) => Verdict::Ready,
            },
        }
    }
}

/// GNU Parallel, from PATH.
pub fn parallel_path() -> std::result::Result<PathBuf, ToolError> {
    which::which("parallel").map_err(|_| ToolError {
        tool: "parallel".into(),
        problem: "not found on PATH; segment encodes on other hosts go through GNU Parallel".into(),
        fix: crate::platform::install(crate::platform::Package::Parallel).into(),
    })
}

/// How GNU Parallel reaches the hosts and starts drapto on them.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub parallel: PathBuf,
    pub hosts: Vec<Host>,
    pub settings: DistributedSettings,
    /// This drapto (run for the `:` host).
    pub local_drapto: PathBuf,
    /// The ffmpeg this run found (by flag, variable, configuration file or
    /// PATH), which the `:` host's worker is told to use: on its own it
    /// would look on PATH and in the default configuration only.
    pub local_ffmpeg: Option<PathBuf>,
}

impl Cluster {
    /// Reads the hosts file named by `settings`; `local_ffmpeg` is the
    /// ffmpeg this machine's workers use.
    pub fn from_settings(settings: &DistributedSettings, local_ffmpeg: Option<&Path>) -> Result<Cluster> {
        let file = settings.hosts.clone().ok_or_else(|| Error::Hosts("no hosts file set".into()))?;
        let text = std::fs::read_to_string(&file).map_err(Error::io("read hosts file", &file))?;
        // A hosts file that does not read is a configuration error (exit 3).
        let hosts = parse_hosts(&text).map_err(|e| {
            let origin = crate::origin::Origin::File { path: file.clone(), line: None };
            crate::error::ConfigError { origin, message: format!("hosts file: {e}") }
        })?;
        let parallel = parallel_path()?;
        let local_drapto = std::env::current_exe().map_err(Error::io("locate", Path::new("drapto")))?;
        // Absolute: the worker starts in the job's folder.
        let local_ffmpeg = local_ffmpeg.and_then(|f| std::path::absolute(f).ok());
        Ok(Cluster { parallel, hosts, settings: settings.clone(), local_drapto, local_ffmpeg })
    }

    /// Gives GNU Parallel's `cmd` the command it runs for a job: this
    /// drapto on `:` (in `root`, where the job's relative paths are), the
    /// configured command elsewhere (in GNU Parallel's per-job folder).
    /// This machine's paths reach the command as variables of `cmd`'s
    /// environment, never in its text: GNU Parallel replaces `{}` and its
    /// kin anywhere in it, quoted or not, and a temporary folder named
    /// `/scratch/{}` became `/scratch/0001`, which failed every segment.
    pub(super) fn add_worker(&self, cmd: &mut Command, root: Option<&Path>, args: &str) {
        let mut local = String::new();
        if let Some(r) = root {
            cmd.env("DRAPTO_WORKER_ROOT", r);
            local.push_str("cd \"$DRAPTO_WORKER_ROOT\" && ");
        }
        // GNU Parallel runs with HOME in the work folder (see `parallel`);
        // the local worker gets the real one back for its configuration.
        if let Some(h) = std::env::var_os("HOME") {
            cmd.env("DRAPTO_WORKER_HOME", h);
            local.push_str("HOME=\"$DRAPTO_WORKER_HOME\" ");
        }
        if let Some(f) = &self.local_ffmpeg {
            cmd.env("DRAPTO_WORKER_FFMPEG", f);
            local.push_str("DRAPTO_FFMPEG=\"$DRAPTO_WORKER_FFMPEG\" ");
        }
        cmd.env("DRAPTO_WORKER_EXE", &self.local_drapto);
        cmd.arg(format!(
            "if [ \"$PARALLEL_SSHLOGIN\" = : ]; then {local}exec \"$DRAPTO_WORKER_EXE\" segment-worker {args}; else {} segment-worker {args}; fi",
            self.settings.remote_drapto
        ));
    }

    /// A GNU Parallel command over `hosts_file`, its HOME in `home`: the
    /// per-job folders it makes for local jobs (under `~/.parallel/tmp`) then
    /// go with drapto's work folder instead of piling up in the user's home.
    /// (ssh and rsync read the real home's `.ssh`, whatever HOME says.)
    pub(super) fn parallel(&self, hosts_file: &Path, home: &Path) -> Command {
        let mut cmd = Command::new(&self.parallel);
        cmd.env("HOME", home);
        cmd.args(["--will-cite", "--sshloginfile"]).arg(hosts_file);
        if !self.settings.ssh.trim().is_empty() {
            cmd.arg("--ssh").arg(&self.settings.ssh);
        }
        cmd
    }

    /// Asks every host for its [`WorkerInfo`] (one ssh round trip each, in
    /// parallel). A host that does not answer gets GNU Parallel's message.
    pub fn check(&self, scratch: &Path, cancel: &Cancel) -> Vec<HostCheck> {
        let file = scratch.join(format!("hosts-check-{}", std::process::id()));
        let _ = std::fs::create_dir_all(scratch);
        let lines: String = self.hosts.iter().map(|h| format!("{}\n", h.login)).collect();
        if let Err(e) = std::fs::write(&file, lines) {
            return self.hosts.iter().map(|h| HostCheck { host: h.clone(), info: Err(e.to_string()) }).collect();
        }
        let mut cmd = self.parallel(&file, scratch);
        cmd.args(["--nonall", "--tag", "--timeout", "60"]);
        self.add_worker(&mut cmd, None, "--info");
        let mut answers: BTreeMap<String, String> = BTreeMap::new();
        let mut errors = Vec::new();
        let _ = crate::tools::process::run_lines(&mut cmd, "check hosts", cancel, |line| match line {
            Line::Out(l) => {
                if let Some((tag, json)) = l.split_once('\t') {
                    answers.insert(tag.trim().to_string(), json.to_string());
                }
            }
            Line::Err(l) => errors.push(l.to_string()),
        });
        let _ = std::fs::remove_file(&file);
        self.hosts
            .iter()
            .map(|h| {
                let info = match answers.get(&h.login) {
                    Some(json) => serde_json::from_str::<WorkerInfo>(json)
                        .map_err(|e| format!("answered something that is not drapto's: {e} ({json})")),
                    None => {
                        let why = errors.iter().rfind(|e| e.contains(&h.login)).or(errors.last());
                        let why = why.map(|s| s.as_str()).unwrap_or("no answer");
                        Err(format!(
                            "did not answer ({why}); check `ssh {}` works without a password and that `{}` runs there",
                            h.login, self.settings.remote_drapto
                        ))
                    }
                };
                HostCheck { host: h.clone(), info }
            })
            .collect()
    }

    /// Checks the hosts and keeps only those that can take segments. Unreachable
    /// or incapable hosts are dropped with a warning; a version mismatch is
    /// an error unless allowed. Fails when no host is left.
    pub fn keep_usable(
        &mut self,
        local: &WorkerInfo,
        scratch: &Path,
        cancel: &Cancel,
        warn: &mut dyn FnMut(String),
    ) -> Result<()> {
        let mut keep = Vec::new();
        for c in self.check(scratch, cancel) {
            let login = &c.host.login;
            match c.verdict(local, self.settings.allow_version_mismatch) {
                Verdict::Ready => keep.push(c.host),
                Verdict::Allowed(m) => {
                    warn(format!("host {login}: {m} (allowed by distributed.allow_version_mismatch)"));
                    keep.push(c.host);
                }
                Verdict::LeftOut(why) => warn(format!("host {login} left out: {why}")),
                Verdict::Refused(m) => {
                    return Err(Error::Hosts(format!(
                        "host {login}: {m}; different versions give different results. Install the same versions, or set distributed.allow_version_mismatch = true"
                    )));
                }
            }
        }
        cancel.check()?;
        if keep.is_empty() {
            return Err(Error::Hosts("no host of the hosts file can encode segments (see the warnings above)".into()));
        }
        self.hosts = keep;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lines() {
        let h = parse_hosts("# my machines\n:\n4/alice@big # the big one\n\nssh -p 2222 bob@pi\n").unwrap();
        assert_eq!(
            h,
            vec![
                Host { slots: 1, login: ":".into() },
                Host { slots: 4, login: "alice@big".into() },
                Host { slots: 1, login: "ssh -p 2222 bob@pi".into() },
            ]
        );
        assert!(h[0].is_local());
        assert!(parse_hosts("# nothing\n").is_err());
        assert!(parse_hosts("0/host\n").unwrap_err().contains("at least 1"));
        assert!(parse_hosts("a,b\n").unwrap_err().contains("line 1"));
        assert!(parse_hosts("3/\n").is_err());
    }

    #[test]
    fn version_mismatch() {
        let a = WorkerInfo {
            drapto: "0.1.0".into(),
            ffmpeg: None,
            ffmpeg_version: None,
            svtav1: Some("v4.0.0".into()),
            libvmaf: true,
            problem: None,
        };
        assert_eq!(a.mismatch(&a.clone()), None);
        let b = WorkerInfo { svtav1: Some("v3.1.0".into()), ..a.clone() };
        assert!(b.mismatch(&a).unwrap().contains("SVT-AV1"));
        let c = WorkerInfo { drapto: "0.2.0".into(), ..a.clone() };
        assert!(c.mismatch(&a).unwrap().contains("drapto"));

        let host = Host { slots: 1, login: "h".into() };
        let check = |info| HostCheck { host: host.clone(), info };
        assert_eq!(check(Ok(a.clone())).verdict(&a, false), Verdict::Ready);
        assert!(matches!(check(Ok(b.clone())).verdict(&a, false), Verdict::Refused(m) if m.contains("SVT-AV1")));
        assert!(matches!(check(Ok(b)).verdict(&a, true), Verdict::Allowed(_)));
        let broken = WorkerInfo { problem: Some("ffmpeg has no libvmaf".into()), ..a.clone() };
        assert_eq!(check(Ok(broken)).verdict(&a, false), Verdict::LeftOut("ffmpeg has no libvmaf".into()));
        assert_eq!(check(Err("no answer".into())).verdict(&a, true), Verdict::LeftOut("no answer".into()));
    }
}
