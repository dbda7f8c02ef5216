//! `trailwatch replay`: recorded trails through the rules, to standard
//! output or to a configuration's outputs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use collector::local;
use outputs::file::AlertsFile;
use outputs::queue::Outbox;
use outputs::route::Router;
use outputs::send::{self, Counters};

use crate::authoring::report;
use crate::cli::ReplayArgs;
use crate::ruleset;
use crate::service::pipeline::{summary_table, Outputs, Pipeline};
use crate::service::settings;

/// The bucket name written in `log_info.s3bucket` of replayed events.
const REPLAY_BUCKET: &str = "trailwatch-replay";

pub fn run(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let conf = match &a.config {
        Some(c) => {
            let s = settings::load(c)?;
            for w in &s.warnings {
                eprintln!("trailwatch: warning: {w}");
            }
            Some(s)
        }
        None => None,
    };
    let src = ruleset::sources_for(
        conf.as_ref().and_then(|c| c.ruleset.as_ref()),
        conf.as_ref()
            .map(|c| c.base_dir.as_path())
            .unwrap_or(std::path::Path::new(".")),
        &a.ruleset,
    )?;
    let levels = conf.as_ref().map(|c| c.levels).unwrap_or_default();
    let rs = ruleset::load_with(&src, &a.ruleset, levels)?;
    let manager = a
        .manager_name
        .clone()
        .or_else(|| conf.as_ref().and_then(|c| c.manager_name.clone()))
        .unwrap_or_else(ruleset::hostname);

    // Every path in time order, listed a day at a time.
    let mut walks = Vec::new();
    let mut total = 0;
    for p in &a.paths {
        let walk = local::walk(p).with_context(|| format!("reading {}", p.display()))?;
        if walk.total == 0 {
            eprintln!(
                "trailwatch: warning: {}: no trail files (*.json, *.json.gz, *.jsonl, *.jsonl.gz)",
                p.display()
            );
        }
        total += walk.total;
        walks.push((p.clone(), walk));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wake: send::Wake = Arc::default();
    let counters = Arc::new(Counters::default());
    let mut senders = Vec::new();
    let mut channels = Vec::new();
    let outputs = match &conf {
        None => Outputs {
            alerts_file: None,
            outbox: None,
            router: Router::new(None, &[]).map_err(anyhow::Error::msg)?,
            wake: wake.clone(),
            stdout: true,
            track_alerts_len: false,
        },
        Some(c) => {
            let router =
                Router::new(c.email.as_ref(), &c.integrations).map_err(anyhow::Error::msg)?;
            let outbox = if router.is_empty() {
                None
            } else {
                Some(Arc::new(Outbox::open(&replay_queue_dir(&c.state_dir))?))
            };
            if let Some(ob) = &outbox {
                channels = crate::service::run::adopt_channels(ob, c)?;
                senders = send::start(
                    rt.handle(),
                    ob,
                    c.email.as_ref(),
                    &c.integrations,
                    &wake,
                    &counters,
                    &stop_rx,
                );
            }
            let alerts_file = if c.jsonout {
                let now = crate::clock::now().0;
                Some(AlertsFile::open(&c.logs_dir, None, now)?)
            } else {
                None
            };
            Outputs {
                alerts_file,
                outbox,
                router,
                wake: wake.clone(),
                stdout: a.print,
                track_alerts_len: false,
            }
        }
    };
    let drain_to = outputs.outbox.clone();
    let mut pipeline = Pipeline::new(rs, manager, a.clock, outputs);
    if let Some(path) = &a.report {
        report::check_writable(path)?;
        pipeline.report = Some(report::Builder::new());
    }

    let bar = progress_bar(&a, total as u64);
    let mut unreadable = 0usize;
    // Reading, gunzip and the module's messages on one thread, the engine
    // on this one. Files are handed on in order through a short queue, so
    // the alerts are those of a single-threaded pass, byte for byte.
    let (files_tx, files_rx) = std::sync::mpsc::sync_channel(READ_AHEAD);
    let reader = std::thread::Builder::new()
        .name("replay-reader".into())
        .spawn(move || read_trails(walks, files_tx))
        .context("starting the reader thread")?;
    // A line on standard error, above the progress bar when there is one.
    let say = |line: String| match &bar {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    };
    for (key, read) in files_rx {
        if let Some(b) = &bar {
            b.set_message(key);
        }
        match read {
            Ok(messages) => {
                pipeline.handle_file(None, &messages)?;
                for w in pipeline.regex_limit_warnings() {
                    say(format!("trailwatch: warning: {w}"));
                }
            }
            Err(e) => {
                unreadable += 1;
                say(format!("trailwatch: {e}; file skipped"));
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut undelivered = false;
    if let Some(ob) = drain_to {
        let timeout = Duration::from_secs(a.drain_timeout);
        let quiet = a.quiet;
        let left = rt.block_on(send::drain(
            &ob,
            &channels,
            stop_rx.clone(),
            timeout,
            Duration::from_secs(2),
            |pending| {
                if !quiet {
                    eprintln!("trailwatch: waiting for {pending} email/webhook deliveries...");
                }
            },
        ));
        if left > 0 {
            undelivered = true;
            eprintln!(
                "trailwatch: {left} email/webhook deliveries still queued after {} s; the next replay with this configuration sends them",
                timeout.as_secs()
            );
        }
    }
    let _ = stop_tx.send(true);
    for s in senders {
        let _ = rt.block_on(s);
    }
    if let (Some(path), Some(b)) = (&a.report, pipeline.report.take()) {
        let ruleset_name = ruleset_label(&a, conf.as_ref());
        let summary = b.finish(report::Context {
            kind: "replay",
            inputs: a.paths.iter().map(|p| p.display().to_string()).collect(),
            ruleset: ruleset_name,
            filters: Vec::new(),
        });
        report::write(path, &report::html::replay_page(&summary))?;
        if !a.quiet {
            eprintln!("trailwatch: report written to {}", path.display());
        }
    }
    if !a.quiet {
        eprint!("{}", summary_table(&pipeline.stats));
        if unreadable > 0 {
            eprintln!("{unreadable} of {total} files could not be read (see above)");
        }
    }
    // ripgrep's habit: 2 when something went wrong (a file not read, a
    // delivery not made), 1 when there was nothing to replay.
    Ok(if unreadable > 0 || undelivered {
        ExitCode::from(2)
    } else if total == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Files read ahead of the engine (each held whole, as its messages).
const READ_AHEAD: usize = 4;

/// A trail file's key and its messages, or why it could not be read.
type ReadFile = (String, Result<Vec<String>, local::TrailError>);

/// Reads every file of `walks` in order and hands each on; stops early
/// when the engine side has gone (it returned an error). A directory that
/// cannot be listed ends the pass with that error, after the files before
/// it.
fn read_trails(
    walks: Vec<(PathBuf, local::Walk)>,
    out: std::sync::mpsc::SyncSender<ReadFile>,
) -> anyhow::Result<()> {
    for (p, walk) in walks {
        for day in walk {
            let day = day.with_context(|| format!("reading {}", p.display()))?;
            for f in day {
                let read = local::read_file(&f, REPLAY_BUCKET);
                if out.send((f.key, read)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Replay's own email/webhook queue, apart from the service's.
fn replay_queue_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("replay")
}

fn progress_bar(a: &ReplayArgs, files: u64) -> Option<indicatif::ProgressBar> {
    if a.quiet || !std::io::stderr().is_terminal() || files < 2 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(files);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} files  {per_sec}  {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(bar)
}

/// The ruleset named at the top of the report.
fn ruleset_label(a: &ReplayArgs, conf: Option<&settings::Settings>) -> String {
    match (&a.ruleset.ruleset, conf.and_then(|c| c.ruleset.as_ref())) {
        (Some(r), _) => r.display().to_string(),
        (None, Some(_)) => "the configuration's <ruleset>".to_string(),
        (None, None) => "shipped".to_string(),
    }
}
