//! The `drapto` binary: parse the command line, load the configuration, set
//! up logging and signal handling, run the command, map the result to an
//! exit code. Everything else lives in the library.

use clap::Parser;
use drapto::cancel::Cancel;
use drapto::cli::{Cli, Command};
use drapto::commands::{self, Session};
use drapto::config::{self, ConfigSource};
use drapto::report::terminal::Verbosity;
use std::io::IsTerminal;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A bad command line ends a --json run on an error event too.
            let usage = e.use_stderr();
            if usage && std::env::args_os().skip(1).any(|a| a == "--json") {
                let first = e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                println!("{}", drapto::report::json::error_line(&first, e.exit_code()));
            }
            e.exit()
        }
    };
    std::process::exit(run(cli));
}

fn run(cli: Cli) -> i32 {
    if let Command::Guard(g) = &cli.command {
        return drapto::guard::run(g.parent, &g.groups);
    }
    let runs_encoders = matches!(cli.command, Command::Encode(_) | Command::Watch(_));
    if !runs_encoders {
        // A report piped into `head` ends quietly when the pipe closes, as
        // any Unix tool's does (encode and watch keep going without their
        // view: see `report::terminal`).
        // SAFETY: at the start of main, before any thread is started.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
    }
    let loaded =
        match config::load(&ConfigSource::from_flag(cli.config.clone()), environment(), flag_values(&cli.command)) {
            Ok(l) => l,
            Err(e) => return said(&cli, &e.to_string(), 3),
        };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    if loaded.settings.processing.responsive {
        if let Err(e) = drapto::platform::lower_priority() {
            eprintln!("drapto: processing.responsive: cannot lower the priority: {e}");
            return 4;
        }
    }
    // A dry run encodes nothing: no run log of its own (it would count
    // towards log_keep_runs and rotate a real failure's log away).
    let dry_run = matches!(&cli.command, Command::Encode(a) if a.dry_run);
    let log_file = (runs_encoders && !dry_run).then(|| loaded.settings.log_dir());
    let run_log = init_logging(log_file.as_deref(), cli.verbose);

    if run_log.is_some() {
        log_header(&loaded);
    }
    let cancel = Cancel::new();
    install_signal_handler(&cancel);
    let session = Session { loaded, cancel, json: cli.json, verbosity, run_log: run_log.clone() };
    // Encoders never outlive a drapto killed outright. (A dry run starts
    // none, and makes no folder for the guard.)
    let _guard = (runs_encoders && !dry_run)
        .then(|| drapto::guard::start(&session.cancel, &session.loaded.settings.temp_dir()))
        .flatten();
    let result = dispatch(&cli.command, &session);
    let run_failed = result.is_err();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            said(&cli, &e.to_string(), e.exit_code())
        }
    };
    if let Some(log) = run_log {
        let mut log = drapto::report::log::lock(&log);
        // A run that failed itself keeps its log, whatever it did.
        if run_failed {
            log.keep();
        }
        log.finish();
    }
    code
}

/// Says the run's `error` (on stderr, and as a JSON line with `--json`);
/// returns its exit `code`.
fn said(cli: &Cli, error: &str, code: i32) -> i32 {
    if cli.json {
        println!("{}", drapto::report::json::error_line(error, code));
    }
    eprintln!("drapto: {error}");
    code
}

/// Which drapto ran what, at the head of every run log (a failure read
/// days later).
fn log_header(loaded: &config::Loaded) {
    let argv = shown_args(std::env::args_os().map(|a| a.to_string_lossy().into_owned()));
    tracing::info!("drapto {} (pid {}): {}", env!("CARGO_PKG_VERSION"), std::process::id(), argv);
    tracing::info!("configuration: {}", loaded.file_note);
}

/// The command line as a run log shows it, one shell word an argument: the
/// addresses and commands notifications go to left out (a webhook's
/// address is its key, a command may carry one).
fn shown_args(args: impl Iterator<Item = String>) -> String {
    const HIDDEN: [&str; 3] = ["--notify-webhook", "--notify-ntfy", "--notify-command"];
    let mut hide_next = false;
    let shown: Vec<String> = args
        .map(|a| {
            let hidden = std::mem::replace(&mut hide_next, HIDDEN.contains(&a.as_str()));
            match a.split_once('=') {
                _ if hidden => "(not logged)".to_string(),
                Some((flag, _)) if HIDDEN.contains(&flag) => format!("{flag}=(not logged)"),
                _ => drapto::tools::process::shell_quote(&a),
            }
        })
        .collect();
    shown.join(" ")
}

use drapto::report::log::SharedLog as RunLog;

/// One event's writer into the run log.
struct RunLogWriter(RunLog);

impl std::io::Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        drapto::report::log::lock(&self.0).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        drapto::report::log::lock(&self.0).flush()
    }
}

/// The environment as the configuration reads it: a variable whose name or
/// value is not UTF-8 (`PWD` in a folder named in Latin-1) is none of
/// drapto's settings, and `std::env::vars` panicked on it, in every command.
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
}

/// The settings a command's flags give (the top layer of the configuration).
fn flag_values(command: &Command) -> Vec<config::load::FlagValue> {
    match command {
        Command::Guard(_) => Vec::new(),
        Command::Encode(a) => a.settings.values(),
        Command::Watch(a) => a.values(),
        Command::Status(s) => temp_dir_flag(s.temp_dir.as_deref()),
        Command::Analyze(a) => a.settings.values(),
        Command::Config(s) => s.values(),
        Command::Doctor(d) => d.tools.values(),
        Command::SegmentWorker(w) => w.tools.values(),
        Command::Clean(c) => temp_dir_flag(c.temp_dir.as_deref()),
    }
}

/// Runs `command` in `session`: its exit code.
fn dispatch(command: &Command, session: &Session) -> drapto::error::Result<i32> {
    match command {
        Command::Encode(a) => commands::encode::run(a, session),
        Command::Watch(a) => commands::watch::run(a, session),
        Command::Status(_) => commands::status::run(session),
        Command::Analyze(a) => commands::analyze::run(a, session),
        Command::Doctor(d) => commands::doctor::run(d.hosts.as_deref(), session),
        Command::SegmentWorker(w) => commands::segment_worker::run(w, session),
        Command::Config(_) => commands::config::run(session),
        Command::Clean(c) => commands::clean::run(c.all, session),
        Command::Guard(_) => unreachable!("run before anything else"),
    }
}

/// First SIGINT/SIGTERM: stop children, finish cleanly. Second: kill at once.
/// `--temp-dir` of the commands that take no other setting.
fn temp_dir_flag(dir: Option<&std::path::Path>) -> Vec<config::load::FlagValue> {
    let value = |p: &std::path::Path| p.to_string_lossy().into_owned();
    dir.map(|p| config::load::FlagValue::new("processing.temp_dir", "--temp-dir", value(p))).into_iter().collect()
}

/// A hang-up (the terminal closed under a run started without nohup) is a
/// stop as SIGTERM is: it killed drapto outright, with no word in its log,
/// its status or a note, and a lock file left beside the output.
fn install_signal_handler(cancel: &Cancel) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use std::io::Write;
    // Under nohup a hang-up is ignored, and stays so.
    let heeded: Vec<i32> = [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|&s| s != SIGHUP || !ignored(s)).collect();
    let Ok(mut signals) = signal_hook::iterator::Signals::new(heeded) else {
        return;
    };
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        // The flag first, then words: stderr may be gone (a pipe's reader
        // that exited, a closed terminal), and a failed eprintln! here
        // ended this thread, so no signal was heeded again.
        let say = |text: &str| {
            let _ = writeln!(std::io::stderr(), "{text}");
        };
        for sig in signals.forever() {
            if cancel.is_cancelled() {
                cancel.kill_all_now();
                say("\ndrapto: stopped at once");
                std::process::exit(128 + sig);
            }
            cancel.cancel(sig);
            tracing::warn!("received signal {sig}, stopping");
            let again = if sig == SIGINT { "press Ctrl-C again" } else { "send it again" };
            say(&format!("\ndrapto: stopping (finished work is kept; {again} to stop at once)"));
        }
    });
}

/// Whether `signal` was set to be ignored when drapto started (`nohup`
/// ignores SIGHUP).
fn ignored(signal: i32) -> bool {
    use nix::libc;
    // SAFETY: reads this process's disposition of one signal into a zeroed
    // struct; nothing is changed (no new action is given).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The design's log line: `[2024-01-18T14:15:00Z] INFO: message`.
struct DesignFormat;

impl<S, N> FormatEvent<S, N> for DesignFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(w, "[{}] {}: ", drapto::report::log::line_time(), event.metadata().level())?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Log file (encode runs) at info, or debug with `-vv`/`DRAPTO_LOG`; stderr
/// gets debug lines with `-vv`. Returns the run log, when there is one.
fn init_logging(log_dir: Option<&std::path::Path>, verbose: u8) -> Option<RunLog> {
    let level = if verbose >= 2 { "debug" } else { "info" };
    let filter = || EnvFilter::try_from_env("DRAPTO_LOG").unwrap_or_else(|_| EnvFilter::new(format!("drapto={level}")));
    let run_log: Option<RunLog> = log_dir.and_then(|dir| match drapto::report::log::DailyFile::open(dir) {
        Ok(f) => Some(std::sync::Arc::new(std::sync::Mutex::new(f))),
        Err((path, e)) => {
            // The run goes on; the user is told where its log is not.
            eprintln!("drapto: warning: no run log: {}: {e}", path.display());
            None
        }
    });
    let file_layer = run_log.clone().map(|log| {
        tracing_subscriber::fmt::layer()
            .event_format(DesignFormat)
            .with_writer(move || RunLogWriter(log.clone()))
            .with_ansi(false)
            .with_filter(filter())
    });
    let stderr_layer = (verbose >= 2).then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(DesignFormat)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry().with(file_layer).with(stderr_layer).try_init();
    run_log
}
