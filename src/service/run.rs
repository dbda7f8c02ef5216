//! `trailwatch run`: the service. Collector → engine → outputs, on the
//! configured schedule, until SIGTERM or Ctrl-C.
//!
//! Threads: the tokio runtime (collector, senders, HTTP API, signals) and
//! one engine thread. The collector hands each source file to the engine
//! thread through a bounded channel (back-pressure: at most two files wait)
//! and waits for its acknowledgement, which comes once the file's alerts
//! are durable (see `pipeline`); only then does it mark the file done.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use collector::bucket::{FileBatch, Sink};
use collector::config::{self as wodle, BucketConfig, ServiceType, SubscriberType};
use collector::state::State;
use outputs::file::AlertsFile;
use outputs::queue::Outbox;
use outputs::route::Router;
use outputs::send::{self, Counters};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cli::{ClockKind, RunArgs};
use crate::service::pipeline::{committed_alerts, summary_table, Outputs, Pipeline, Stats};
use crate::service::sources::{self, Pass};
use crate::service::{api, settings};
use crate::{logging, ruleset};

/// One source file for the engine thread.
struct Job {
    id: Option<String>,
    messages: Vec<String>,
    ack: oneshot::Sender<Result<(), String>>,
}

/// The last object taken per bucket (or log group, or queue).
#[derive(Debug, Clone)]
pub struct LastObject {
    pub key: String,
    /// When it was taken (epoch seconds).
    pub at: i64,
}

/// What the HTTP API reads.
pub struct Shared {
    pub stats: Arc<Stats>,
    pub outbox: Arc<Outbox>,
    pub counters: Arc<Counters>,
    pub last: Mutex<BTreeMap<String, LastObject>>,
    pub ruleset: Arc<engine::Ruleset>,
    pub manager: String,
    pub started: Instant,
    pub collector: CollectorCounters,
}

/// What the bucket runs met, for `/metrics`.
#[derive(Debug, Default)]
pub struct CollectorCounters {
    /// Objects skipped after every download attempt failed.
    pub skipped: AtomicU64,
    /// Objects skipped before and read on a later pass.
    pub recovered: AtomicU64,
    /// Downloads tried again after a transient failure.
    pub retries: AtomicU64,
    /// Streamed objects read on after the parts taken on a pass before.
    pub resumed: AtomicU64,
    /// Objects recorded as skipped in the state now (after the last pass).
    pub skipped_pending: AtomicU64,
}

/// How long the file in hand may take to finish after SIGTERM before it
/// is abandoned (not marked: read again on the next start).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The collector's consumer: sends each file to the engine thread and
/// waits until its alerts are durable.
struct EngineSink {
    tx: mpsc::Sender<Job>,
    stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
}

impl Sink for EngineSink {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        if *self.stop.borrow() {
            return Err("trailwatch is stopping; the file will be read on the next start".into());
        }
        let (ack, done) = oneshot::channel();
        let key = batch.key.clone();
        let bucket = batch.bucket.clone();
        self.tx
            .send(Job {
                id: batch.id,
                messages: batch.messages,
                ack,
            })
            .await
            .map_err(|_| "the engine stopped".to_string())?;
        done.await.map_err(|_| "the engine stopped".to_string())??;
        let mut last = self.shared.last.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(
            bucket,
            LastObject {
                key,
                at: crate::clock::now().0,
            },
        );
        Ok(())
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    logging::init(a.verbose);
    let conf = settings::load(&a.config)?;
    for w in &conf.warnings {
        tracing::warn!("{w}");
    }
    if !conf.skipped.is_empty() {
        tracing::info!(
            "Not used by trailwatch, skipped: {}",
            conf.skipped.join(", ")
        );
    }
    let Some(wodle) = conf.wodle.as_ref() else {
        bail!(
            "{}:1: <wodle>: no <wodle name=\"aws-s3\"> block: `run` has nothing to collect (add a <bucket>, <service> or <subscriber>; `trailwatch init` writes an example)",
            a.config.display()
        );
    };
    if wodle.disabled {
        tracing::info!("Module disabled. Exiting.");
        return Ok(ExitCode::SUCCESS);
    }
    let src = ruleset::sources_for(conf.ruleset.as_ref(), &conf.base_dir, &a.ruleset)?;
    let rs = ruleset::load_with(&src, &a.ruleset, conf.levels)?;
    let manager = conf.manager_name.clone().unwrap_or_else(ruleset::hostname);
    // State and alerts are the owner's alone, whatever the umask: the
    // directory 0700, the databases 0600 (created so before SQLite opens
    // them; their WAL files take the same mode).
    outputs::file::create_private_dir(&conf.state_dir)?;
    // One process per state directory.
    let _lock = crate::service::lock::lock(&conf.state_dir)?;
    outputs::file::private_file()
        .write(true)
        .create(true)
        .truncate(false)
        .open(conf.state_dir.join(collector::state::DB_FILE))
        .with_context(|| {
            format!(
                "{}",
                conf.state_dir.join(collector::state::DB_FILE).display()
            )
        })?;
    collector::formats::set_max_inflated(wodle.max_inflated_size);
    let state = State::open(&conf.state_dir)?;
    let outbox = Arc::new(Outbox::open(&conf.state_dir)?);
    outbox.prune_handled()?;
    let requeued = outbox.requeue_failed()?;
    if requeued > 0 {
        tracing::info!("{requeued} email/webhook deliveries refused before are tried again");
    }
    let now = crate::clock::now().0;
    let alerts_file = if conf.jsonout {
        let committed = committed_alerts(&outbox)?;
        let f = AlertsFile::open(&conf.logs_dir, committed.clone(), now)?;
        if committed.is_none() {
            // Nothing committed yet: what the file holds now is what a
            // crash before the first commit is cut back to.
            let baseline = [
                ("alerts_file", f.path().display().to_string()),
                ("alerts_len", f.offset().to_string()),
            ];
            outbox.commit(None, &[], &baseline, now)?;
        }
        Some(f)
    } else {
        None
    };
    let router =
        Router::new(conf.email.as_ref(), &conf.integrations).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let senders_stop = watch::channel(false);
    let wake: send::Wake = Arc::default();
    let counters = Arc::new(Counters::default());
    let senders = send::start(
        rt.handle(),
        &outbox,
        conf.email.as_ref(),
        &conf.integrations,
        &wake,
        &counters,
        &senders_stop.1,
    );
    let pipeline = Pipeline::new(
        rs.clone(),
        manager.clone(),
        ClockKind::Arrival,
        Outputs {
            alerts_file,
            outbox: Some(outbox.clone()),
            router,
            wake: wake.clone(),
            stdout: false,
            track_alerts_len: true,
        },
    );
    let shared = Arc::new(Shared {
        stats: pipeline.stats.clone(),
        outbox: outbox.clone(),
        counters: counters.clone(),
        last: Mutex::default(),
        ruleset: rs,
        manager,
        started: Instant::now(),
        collector: CollectorCounters::default(),
    });
    if let Some(api_conf) = &conf.api {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&api_conf.bind))
            .with_context(|| format!("HTTP API on {}", api_conf.bind))?;
        tracing::info!("HTTP API listening on http://{}", api_conf.bind);
        rt.spawn(api::serve(
            listener,
            shared.clone(),
            api_conf.token.clone(),
            stop_rx.clone(),
        ));
    }
    let (job_tx, job_rx) = mpsc::channel::<Job>(2);
    let engine_thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || engine_loop(pipeline, job_rx))
        .context("starting the engine thread")?;
    rt.spawn(signals(stop_tx));

    let mut sink = EngineSink {
        tx: job_tx,
        stop: stop_rx.clone(),
        shared: shared.clone(),
    };
    let failed = rt.block_on(schedule(
        wodle,
        &state,
        &mut sink,
        stop_rx.clone(),
        a.once,
        Pass {
            concurrency: a.concurrency,
            stream_above: Some(a.stream_above << 20),
            skipped_retries: Some(wodle.skipped_retries),
            ..Pass::default()
        },
    ));
    drop(sink);
    let _ = engine_thread.join();
    if a.once && !*stop_rx.borrow() {
        let limit = Duration::from_secs(a.drain_timeout);
        rt.block_on(send::drain(
            &outbox,
            stop_rx.clone(),
            limit,
            Duration::ZERO,
            |pending| {
                tracing::info!("waiting for {pending} email/webhook deliveries before exiting")
            },
        ));
    }
    let _ = senders_stop.0.send(true);
    for s in senders {
        let _ = rt.block_on(s);
    }
    let pending = outbox.pending().unwrap_or(0);
    if pending > 0 {
        tracing::info!("{pending} email/webhook deliveries stay queued for the next start");
    }
    for line in summary_table(&shared.stats).lines() {
        tracing::info!("{line}");
    }
    tracing::info!("stopped");
    // A parsing thread of an abandoned file may still be blocked: do not
    // wait for it.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn engine_loop(mut pipeline: Pipeline, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.blocking_recv() {
        let r = pipeline
            .handle_file(job.id.as_deref(), &job.messages)
            .map_err(|e| format!("{e:#}"));
        if let Err(e) = &r {
            tracing::error!("writing alerts: {e}");
        }
        let _ = job.ack.send(r);
    }
}

/// SIGTERM or SIGINT: stop taking files, finish the one in hand.
async fn signals(stop: watch::Sender<bool>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received; stopping after the file in hand"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; stopping after the file in hand"),
    }
    let _ = stop.send(true);
}

/// Runs the sources every interval until stopped; true when a source
/// failed in the last pass.
async fn schedule(
    w: &wodle::WodleConfig,
    state: &State,
    sink: &mut EngineSink,
    mut stop: watch::Receiver<bool>,
    once: bool,
    pass: Pass,
) -> bool {
    let interval = Duration::from_secs(w.interval.max(1));
    if !w.run_on_start && !once {
        tracing::info!(
            "run_on_start is off: first pass in {} s",
            interval.as_secs()
        );
        if sleep_or_stop(interval, &mut stop).await {
            return false;
        }
    }
    loop {
        let started = Instant::now();
        tracing::info!("Starting fetching of logs.");
        let mut failed = false;
        for b in &w.buckets {
            if *stop.borrow() {
                break;
            }
            tracing::info!(
                "Executing Bucket Analysis: (Bucket: {}, Path: {}, Type: {}, Profile: {})",
                b.spec.name,
                b.spec.path,
                b.spec.kind.name(),
                b.credentials.aws_profile.as_deref().unwrap_or("default")
            );
            if let Err(e) = until_stopped(one_bucket(b, state, sink, pass), &stop).await {
                if *stop.borrow() {
                    // The file in hand was refused because we are stopping:
                    // it is read again on the next start.
                    tracing::info!("bucket {}: stopped before the end of the run", b.spec.name);
                    break;
                }
                tracing::error!("{e:#}");
                failed = true;
            }
        }
        for svc in &w.services {
            if *stop.borrow() {
                break;
            }
            tracing::info!(
                "Executing Service Analysis: (Service: {}, Profile: {})",
                match svc.kind {
                    ServiceType::CloudWatchLogs => "cloudwatchlogs",
                    ServiceType::Inspector => "inspector",
                },
                svc.credentials.aws_profile.as_deref().unwrap_or("default")
            );
            if let Err(e) = until_stopped(one_log_service(svc, state, sink), &stop).await {
                if *stop.borrow() {
                    break;
                }
                tracing::error!("{e:#}");
                failed = true;
            }
        }
        for sub in &w.subscribers {
            if *stop.borrow() {
                break;
            }
            if sub.kind == SubscriberType::SecurityLake {
                tracing::warn!("<subscriber type=\"security_lake\"> is not read yet; skipped");
                continue;
            }
            tracing::info!("Executing Subscriber Analysis: (Queue: {})", sub.queue);
            if let Err(e) = until_stopped(one_subscriber(sub, sink), &stop).await {
                if *stop.borrow() {
                    break;
                }
                tracing::error!("{e:#}");
                failed = true;
            }
        }
        tracing::info!("Fetching logs finished.");
        if once || *stop.borrow() {
            return failed;
        }
        let wait = interval.saturating_sub(started.elapsed());
        if wait.is_zero() {
            tracing::warn!("Interval overtaken.");
        }
        if sleep_or_stop(wait, &mut stop).await {
            return failed;
        }
    }
}

/// Runs a source until it ends; once stopping, gives it [`STOP_GRACE`] to
/// finish the file in hand, then abandons it (dropped: the file is not
/// marked and is read again on the next start), so SIGTERM is honoured in
/// bounded time even when a server does not answer.
async fn until_stopped<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<T> {
    let mut stop = stop.clone();
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => return r,
        _ = stop.wait_for(|s| *s) => {}
    }
    match tokio::time::timeout(STOP_GRACE, work).await {
        Ok(r) => r,
        Err(_) => {
            tracing::info!("stopping: the file in hand is abandoned (not marked; read again on the next start)");
            anyhow::bail!("stopped before the end of the source")
        }
    }
}

/// Sleeps; true when stopped meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn one_bucket(
    b: &BucketConfig,
    state: &State,
    sink: &mut EngineSink,
    pass: Pass,
) -> anyhow::Result<()> {
    let r = sources::bucket(b, state, sink, pass).await;
    let c = &sink.shared.collector;
    if let Ok(n) = state.skipped().map(|rows| rows.len() as u64) {
        c.skipped_pending.store(n, Ordering::Relaxed);
    }
    let r = r?;
    c.skipped
        .fetch_add(r.skipped_objects as u64, Ordering::Relaxed);
    c.recovered.fetch_add(r.recovered as u64, Ordering::Relaxed);
    c.retries.fetch_add(r.retries as u64, Ordering::Relaxed);
    c.resumed.fetch_add(r.resumed as u64, Ordering::Relaxed);
    tracing::info!(
        "bucket {}: {} new files, {} events, {} discarded, {} already read, {} skipped on error",
        b.spec.name,
        r.files,
        r.messages,
        r.discarded,
        r.skipped_done,
        r.skipped_errors
    );
    if r.skipped_objects > 0 {
        tracing::warn!(
            "bucket {}: {} objects skipped after every download attempt failed; tried again on the next passes (`trailwatch collect --skipped` lists them)",
            b.spec.name,
            r.skipped_objects
        );
    }
    Ok(())
}

async fn one_log_service(
    svc: &wodle::ServiceConfig,
    state: &State,
    sink: &mut EngineSink,
) -> anyhow::Result<()> {
    if svc.kind == ServiceType::Inspector {
        for (region, r) in sources::inspector_service(svc, state, sink, Pass::default()).await? {
            tracing::info!(
                "Inspector {region}: {} findings updated from {} to {} ({} discarded)",
                r.sent,
                r.from,
                r.to,
                r.discarded
            );
        }
        return Ok(());
    }
    for (region, sent) in sources::log_service(svc, state, sink, Pass::default()).await? {
        tracing::info!("CloudWatch Logs {region}: {sent} events");
    }
    Ok(())
}

async fn one_subscriber(
    sub: &wodle::SubscriberConfig,
    sink: &mut EngineSink,
) -> anyhow::Result<()> {
    let r = sources::subscriber(sub, sink).await?;
    tracing::info!(
        "queue {}: {} files, {} events, {} discarded",
        sub.queue,
        r.files,
        r.messages,
        r.discarded
    );
    Ok(())
}
