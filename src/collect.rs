//! `trailwatch collect`: the configured AWS sources, printed one event per
//! line as they would enter the engine.

use crate::cli::CollectArgs;
use crate::service::sources::{self, Pass};
use anyhow::Context;
use collector::bucket::{FileBatch, Sink};
use collector::config::{
    self, BucketConfig, ServiceConfig, ServiceType, SubscriberConfig, SubscriberType,
};
use collector::state::State;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Writes each file's events to standard output; a file counts as taken
/// once its lines are flushed.
struct Stdout {
    out: std::io::BufWriter<std::io::Stdout>,
    files: usize,
    events: usize,
    last_progress: Instant,
}

impl Sink for Stdout {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.files += 1;
        self.events += batch.messages.len();
        if self.last_progress.elapsed() >= Duration::from_secs(10) {
            self.last_progress = Instant::now();
            eprintln!(
                "trailwatch: {} files, {} events so far (now at {}/{})",
                self.files, self.events, batch.bucket, batch.key
            );
        }
        for m in &batch.messages {
            self.out
                .write_all(m.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
                .map_err(|e| e.to_string())?;
        }
        self.out.flush().map_err(|e| e.to_string())
    }
}

pub fn run(a: CollectArgs) -> anyhow::Result<ExitCode> {
    if a.verbose {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let only_ours = tracing_subscriber::filter::Targets::new()
            .with_target("collector", tracing::Level::DEBUG)
            .with_target("trailwatch", tracing::Level::DEBUG);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .without_time()
                    .with_writer(std::io::stderr),
            )
            .with(only_ours)
            .init();
    }
    let conf = config::load(&a.config)?;
    for w in &conf.warnings {
        eprintln!("trailwatch: warning: {w}");
    }
    collector::formats::set_max_inflated(conf.max_inflated_size);
    if conf.disabled {
        eprintln!(
            "trailwatch: the aws-s3 module is disabled (<disabled>yes</disabled>); nothing to do"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for s in conf
        .subscribers
        .iter()
        .filter(|s| s.kind == SubscriberType::SecurityLake)
    {
        eprintln!(
            "trailwatch: warning: {}:{}: <subscriber type=\"{:?}\"> is not read yet; skipped",
            a.config.display(),
            s.line,
            s.kind
        );
    }
    if a.dry_run && !conf.subscribers.is_empty() {
        eprintln!(
            "trailwatch: warning: subscribers are not read in a dry run (reading a queue consumes its notifications)"
        );
    }
    let state_dir = a
        .state_dir
        .clone()
        .or_else(|| conf.state_dir.clone())
        .unwrap_or_else(|| PathBuf::from("trailwatch-state"));
    if a.skipped {
        return skipped_report(&state_dir);
    }
    // A dry run writes nothing, so it may run beside the service.
    let _lock = if a.dry_run {
        None
    } else {
        Some(crate::service::lock::lock(&state_dir)?)
    };
    let state = if a.dry_run {
        State::open_read_only(&state_dir)?
    } else {
        State::open(&state_dir)?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut sink = Stdout {
        out: std::io::BufWriter::new(std::io::stdout()),
        files: 0,
        events: 0,
        last_progress: Instant::now(),
    };
    let mut failed = false;
    if !conf.run_on_start && !a.once {
        std::thread::sleep(Duration::from_secs(conf.interval));
    }
    loop {
        let started = Instant::now();
        for b in &conf.buckets {
            let retries = conf.skipped_retries;
            if let Err(e) = rt.block_on(one_bucket(b, &a, &state, &mut sink, retries)) {
                if crate::is_broken_pipe(&e) {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("trailwatch: {e:#}");
                failed = true;
            }
        }
        for svc in &conf.services {
            if let Err(e) = rt.block_on(one_log_service(svc, &a, &state, &mut sink)) {
                if crate::is_broken_pipe(&e) {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("trailwatch: {e:#}");
                failed = true;
            }
        }
        for sub in &conf.subscribers {
            if sub.kind == SubscriberType::SecurityLake || a.dry_run {
                continue;
            }
            if let Err(e) = rt.block_on(one_subscriber(sub, &mut sink)) {
                if crate::is_broken_pipe(&e) {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("trailwatch: {e:#}");
                failed = true;
            }
        }
        if a.once {
            break;
        }
        let wait = Duration::from_secs(conf.interval).saturating_sub(started.elapsed());
        if wait.is_zero() {
            eprintln!("trailwatch: warning: interval overtaken; starting the next pass now");
        }
        std::thread::sleep(wait);
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn one_bucket(
    b: &BucketConfig,
    a: &CollectArgs,
    state: &State,
    sink: &mut Stdout,
    skipped_retries: u32,
) -> anyhow::Result<()> {
    let pass = Pass {
        skipped_retries: Some(skipped_retries),
        ..pass(a)
    };
    let report = sources::bucket(b, state, sink, pass).await?;
    eprintln!(
        "trailwatch: bucket {} ({}): {} new files, {} events, {} discarded, {} already read, {} skipped on error",
        b.spec.name,
        b.spec.kind.name(),
        report.files,
        report.messages,
        report.discarded,
        report.skipped_done,
        report.skipped_errors
    );
    if report.skipped_objects + report.recovered + report.retries + report.resumed > 0 {
        eprintln!(
            "trailwatch: bucket {}: {} objects skipped after every attempt failed (see `trailwatch collect --skipped`), {} read again after an earlier skip, {} downloads retried, {} streams read on",
            b.spec.name, report.skipped_objects, report.recovered, report.retries, report.resumed
        );
    }
    Ok(())
}

/// `trailwatch collect --skipped`: the objects skipped on error and not
/// read since, one per line (tab-separated), from the state.
fn skipped_report(state_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let state = State::open_read_only(state_dir)?;
    let rows = state.skipped()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "bucket_path\ttype\taccount\tregion\tkey\tpasses\tlast_try\tparts_taken\terror"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.bucket_path,
            r.bucket_type,
            r.account,
            r.region,
            r.key,
            r.passes,
            r.last_try,
            r.parts_done,
            r.error.replace(['\t', '\n', '\r'], " ")
        )?;
    }
    eprintln!("trailwatch: {} objects skipped on error", rows.len());
    Ok(ExitCode::SUCCESS)
}

fn pass(a: &CollectArgs) -> Pass {
    Pass {
        concurrency: a.concurrency,
        dry_run: a.dry_run,
        reparse: a.reparse,
        stream_above: Some(a.stream_above << 20),
        skipped_retries: None,
    }
}

async fn one_log_service(
    svc: &ServiceConfig,
    a: &CollectArgs,
    state: &State,
    sink: &mut Stdout,
) -> anyhow::Result<()> {
    if svc.kind == ServiceType::Inspector {
        for (region, r) in sources::inspector_service(svc, state, sink, pass(a)).await? {
            eprintln!(
                "trailwatch: Inspector {region}: {} findings updated from {} to {}, {} discarded",
                r.sent, r.from, r.to, r.discarded
            );
        }
        return Ok(());
    }
    for (region, sent) in sources::log_service(svc, state, sink, pass(a)).await? {
        eprintln!(
            "trailwatch: CloudWatch Logs {region} ({}): {sent} events",
            svc.log_groups.join(", ")
        );
    }
    Ok(())
}

async fn one_subscriber(sub: &SubscriberConfig, sink: &mut Stdout) -> anyhow::Result<()> {
    let report = sources::subscriber(sub, sink).await?;
    eprintln!(
        "trailwatch: queue {}: {} files, {} events, {} discarded, {} notifications without an object",
        sub.queue, report.files, report.messages, report.discarded, report.ignored
    );
    Ok(())
}
