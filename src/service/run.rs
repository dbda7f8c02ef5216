//! `trailwatch run`: the service. Collector → engine → outputs, on the
//! configured schedule, until SIGTERM or Ctrl-C.
//!
//! Threads: the tokio runtime (collector, senders, HTTP API, signals) and
//! one engine thread. The collector hands each source file to the engine
//! thread through a bounded channel (back-pressure: at most two files wait);
//! the engine thread commits the files it took together (when asked, or
//! every 64 files or 1 MiB of alerts: one fsync and one outbox transaction
//! for many), then acknowledges each; a file is marked done only after its
//! acknowledgement (see `pipeline`). A bucket asks every 64 files and at
//! its end; the other sources wait for each file.

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
use crate::service::health::{self, SourceHealth};
use crate::service::pipeline::{committed_alerts, summary_table, Outputs, Pipeline, Stats};
use crate::service::sources::{self, Pass};
use crate::service::{api, settings};
use crate::{logging, ruleset};

/// Work for the engine thread.
enum Job {
    /// One source file.
    File {
        id: Option<String>,
        messages: Vec<String>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// A reloaded configuration's routing (between two files).
    Router(Router),
    /// Commit the files taken (someone waits for them).
    Commit,
}

/// What the HTTP API reads.
pub struct Shared {
    pub stats: Arc<Stats>,
    pub outbox: Arc<Outbox>,
    pub counters: Arc<Counters>,
    /// Per source (`bucket NAME`, `cloudwatchlogs`, `inspector`,
    /// `queue NAME`): how its passes go.
    pub sources: Mutex<BTreeMap<String, SourceHealth>>,
    /// The delivery channels of the configuration in force.
    pub channels: Mutex<Vec<String>>,
    /// The configured interval (seconds).
    pub interval: AtomicU64,
    /// Deliveries waiting above which `/health` is degraded.
    pub max_queued: AtomicU64,
    pub ruleset: Arc<engine::Ruleset>,
    pub manager: String,
    pub started: Instant,
    pub collector: CollectorCounters,
    /// Where alerts.json is (the `logs_dir`), for the live page; `None`
    /// when it is off.
    pub alerts_dir: Option<std::path::PathBuf>,
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
    /// The first [`SKIPPED_SHOWN`] of them, for `/health`.
    pub skipped_list: Mutex<Vec<collector::state::Skipped>>,
}

/// Skipped objects `/health` lists (the count is always whole).
pub const SKIPPED_SHOWN: usize = 20;

/// How long the file in hand may take to finish after SIGTERM before it
/// is abandoned (not marked: read again on the next start).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The collector's consumer: sends each file to the engine thread and
/// waits until its alerts are durable.
struct EngineSink {
    tx: mpsc::Sender<Job>,
    stop: watch::Receiver<bool>,
    shared: Arc<Shared>,
    /// The source being read (its `/health` name).
    source: String,
    /// Files handed on and not yet known safe: their source, event count
    /// and acknowledgement, oldest first.
    handed: std::collections::VecDeque<(String, u64, Ack)>,
}

/// An acknowledgement from the engine thread: the file's alerts are durable.
type Ack = oneshot::Receiver<Result<(), String>>;

impl EngineSink {
    async fn send(&mut self, batch: FileBatch) -> Result<(), String> {
        if *self.stop.borrow() {
            return Err("trailwatch is stopping; the file will be read on the next start".into());
        }
        let (ack, done) = oneshot::channel();
        let events = batch.messages.len() as u64;
        self.tx
            .send(Job::File {
                id: batch.id,
                messages: batch.messages,
                ack,
            })
            .await
            .map_err(|_| "the engine stopped".to_string())?;
        self.handed.push_back((self.source.clone(), events, done));
        Ok(())
    }
}

impl Sink for EngineSink {
    async fn deliver(&mut self, batch: FileBatch) -> Result<(), String> {
        self.send(batch).await?;
        self.settle().await
    }

    async fn hand_on(&mut self, batch: FileBatch) -> Result<(), String> {
        self.send(batch).await
    }

    fn group(&self) -> usize {
        collector::bucket::SETTLE_EVERY
    }

    /// Asks the engine thread to commit what it holds and waits for every
    /// acknowledgement; the first error, after all came.
    async fn settle(&mut self) -> Result<(), String> {
        if self.handed.is_empty() {
            return Ok(());
        }
        let _ = self.tx.send(Job::Commit).await;
        let mut first_error = None;
        while let Some((source, events, done)) = self.handed.pop_front() {
            match done.await.map_err(|_| "the engine stopped".to_string()) {
                Ok(Ok(())) => self.shared.source(&source, |h| {
                    h.files += 1;
                    h.events += events;
                    h.last_taken = Some(crate::clock::now().0);
                }),
                Ok(Err(e)) | Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
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
    let Some(wodle) = conf.wodle.clone() else {
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
    let channels = adopt_channels(&outbox, &conf)?;
    report_orphans(&outbox, &channels, &a.config);
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
            outbox.commit(&[], &[], &baseline, now)?;
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
    let wake: send::Wake = Arc::default();
    let counters = Arc::new(Counters::default());
    let senders = Senders::start_on(rt.handle(), &outbox, &conf, &wake, &counters);
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
    let max_queued = conf.max_queued();
    let shared = Arc::new(Shared {
        stats: pipeline.stats.clone(),
        outbox: outbox.clone(),
        counters: counters.clone(),
        sources: Mutex::default(),
        channels: Mutex::new(channels),
        interval: AtomicU64::new(wodle.interval),
        max_queued: AtomicU64::new(max_queued),
        ruleset: rs,
        manager,
        started: Instant::now(),
        collector: CollectorCounters::default(),
        alerts_dir: conf.jsonout.then(|| conf.logs_dir.clone()),
    });
    // Every source is in /health from the start: one whose first pass
    // never ends is reported late.
    for name in source_names(&wodle) {
        shared.source(&name, |_| {});
    }
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
    let (wodle_tx, wodle_rx) = watch::channel(Arc::new(wodle));
    let senders = Arc::new(tokio::sync::Mutex::new(senders));
    let (hup_tx, hup_rx) = mpsc::unbounded_channel();
    rt.spawn(signals(stop_tx, hup_tx));
    rt.spawn(reloads(
        hup_rx,
        Reload {
            path: a.config.clone(),
            state_dir: conf.state_dir.clone(),
            logs_dir: conf.logs_dir.clone(),
            jobs: job_tx.downgrade(),
            senders: senders.clone(),
            wodle: wodle_tx,
            shared: shared.clone(),
            wake: wake.clone(),
            rt: rt.handle().clone(),
        },
        stop_rx.clone(),
    ));

    let mut sink = EngineSink {
        tx: job_tx,
        stop: stop_rx.clone(),
        shared: shared.clone(),
        source: String::new(),
        handed: Default::default(),
    };
    let failed = rt.block_on(schedule(
        wodle_rx,
        &state,
        &mut sink,
        stop_rx.clone(),
        a.once,
        Pass {
            concurrency: a.concurrency,
            stream_above: Some(a.stream_above << 20),
            ..Pass::default()
        },
    ));
    drop(sink);
    let _ = engine_thread.join();
    if a.once && !*stop_rx.borrow() {
        // No alert will come: mail need not wait to be grouped.
        counters.finishing.store(true, Ordering::Relaxed);
        wake.notify_waiters();
        let limit = Duration::from_secs(a.drain_timeout);
        let channels = shared
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        rt.block_on(send::drain(
            &outbox,
            &channels,
            stop_rx.clone(),
            limit,
            Duration::ZERO,
            |pending| {
                tracing::info!("waiting for {pending} email/webhook deliveries before exiting")
            },
        ));
    }
    rt.block_on(async { senders.lock().await.stop().await });
    let (pending, set_aside) = outbox
        .depths()
        .unwrap_or_default()
        .iter()
        .fold((0, 0), |(p, f), (_, d)| (p + d.pending, f + d.failed));
    if pending + set_aside > 0 {
        tracing::info!(
            "{pending} email/webhook deliveries stay queued for the next start ({set_aside} set aside; `trailwatch queue list -c {}`)",
            a.config.display()
        );
    }
    for line in summary_table(&shared.stats).lines() {
        tracing::info!("{line}");
    }
    tracing::info!("stopped");
    // A parsing thread of an abandoned file may still be blocked: do not
    // wait for it.
    rt.shutdown_timeout(Duration::from_secs(1));
    // `--once` is a job that either did all of its work or did not: a
    // source that failed or deliveries left undone exit 2. The service
    // stopped by a signal stopped as asked.
    Ok(if a.once && (failed || pending + set_aside > 0) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Renames the channels of items queued before channels were named by
/// what they are (`hook:INDEX:NAME`) to the integration now at that place
/// with that name; returns the configuration's channels.
pub(crate) fn adopt_channels(
    outbox: &Outbox,
    conf: &settings::Settings,
) -> anyhow::Result<Vec<String>> {
    let renames: Vec<(String, String)> = conf
        .integrations
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                outputs::route::positional_channel(i, h),
                outputs::route::hook_channel(h),
            )
        })
        .collect();
    let moved = outbox.rename_channels(&renames)?;
    if moved > 0 {
        tracing::info!(
            "{moved} queued webhook deliveries now keyed by integration and destination"
        );
    }
    Ok(outputs::route::channels(
        conf.email.as_ref(),
        &conf.integrations,
    ))
}

/// One warning for the deliveries queued for channels the configuration
/// no longer has (an integration renamed, removed or sent elsewhere; mail
/// turned off): they are kept until `trailwatch queue` settles them.
fn report_orphans(outbox: &Outbox, channels: &[String], config: &std::path::Path) {
    let orphans: Vec<(String, u64)> = outbox
        .depths()
        .unwrap_or_default()
        .into_iter()
        .filter(|(c, _)| !channels.contains(c))
        .map(|(c, d)| (c, d.pending + d.failed))
        .collect();
    if orphans.is_empty() {
        return;
    }
    let total: u64 = orphans.iter().map(|(_, n)| n).sum();
    let list: Vec<String> = orphans.iter().map(|(c, n)| format!("{c} ({n})")).collect();
    tracing::warn!(
        "{total} email/webhook deliveries are queued for channels the configuration no longer has: {}; they are kept, not sent: `trailwatch queue list -c {conf}` shows them, `trailwatch queue retry -c {conf} CHANNEL --to NEW` sends them elsewhere, `trailwatch queue drop -c {conf} CHANNEL` forgets them",
        list.join(", "),
        conf = config.display()
    );
}

/// The running email and webhook senders.
struct Senders {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Senders {
    fn start_on(
        rt: &tokio::runtime::Handle,
        outbox: &Arc<Outbox>,
        conf: &settings::Settings,
        wake: &send::Wake,
        counters: &Arc<Counters>,
    ) -> Senders {
        let (stop, stop_rx) = watch::channel(false);
        let handles = send::start(
            rt,
            outbox,
            conf.email.as_ref(),
            &conf.integrations,
            wake,
            counters,
            &stop_rx,
        );
        Senders { stop, handles }
    }

    /// Stops them after the delivery in hand.
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        for h in self.handles.drain(..) {
            let _ = h.await;
        }
    }
}

/// What a SIGHUP reload replaces.
struct Reload {
    path: std::path::PathBuf,
    state_dir: std::path::PathBuf,
    logs_dir: std::path::PathBuf,
    /// The engine thread's queue (weak: the reloader must not keep the
    /// engine alive once the schedule ends).
    jobs: mpsc::WeakSender<Job>,
    senders: Arc<tokio::sync::Mutex<Senders>>,
    wodle: watch::Sender<Arc<wodle::WodleConfig>>,
    shared: Arc<Shared>,
    wake: send::Wake,
    rt: tokio::runtime::Handle,
}

/// Reloads the configuration on each SIGHUP until stopped.
async fn reloads(mut hup: mpsc::UnboundedReceiver<()>, r: Reload, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = reload(&r).await {
            tracing::error!("SIGHUP: configuration not reloaded, the running one is kept: {e:#}");
        }
    }
}

/// Reads the configuration again and, when it is valid, puts its sources
/// and outputs in force: the engine routes the next file with the new
/// routing, the senders restart on the new channels (the queue stays on
/// disk, nothing queued is lost), and a pass over the new sources starts
/// once the one under way (if any) ends.
/// The ruleset, directories and HTTP API stay as started.
async fn reload(r: &Reload) -> anyhow::Result<()> {
    tracing::info!("SIGHUP: reading {} again", r.path.display());
    let path = r.path.clone();
    let conf = tokio::task::spawn_blocking(move || settings::load(&path))
        .await
        .context("reading the configuration")??;
    let Some(w) = conf.wodle.clone() else {
        bail!(
            "{}: no <wodle name=\"aws-s3\"> block: nothing to collect",
            r.path.display()
        );
    };
    if w.disabled {
        bail!(
            "{}: the aws-s3 module is disabled; stop the service instead",
            r.path.display()
        );
    }
    if let Some(e) = &conf.email {
        outputs::email::Mailer::new(e).map_err(anyhow::Error::msg)?;
    }
    let router =
        Router::new(conf.email.as_ref(), &conf.integrations).map_err(anyhow::Error::msg)?;
    for w in &conf.warnings {
        tracing::warn!("{w}");
    }
    if conf.state_dir != r.state_dir || conf.logs_dir != r.logs_dir {
        tracing::warn!("SIGHUP: a new state_dir or logs_dir takes effect at the next start only");
    }
    let Some(jobs) = r.jobs.upgrade() else {
        bail!("the service is stopping");
    };
    jobs.send(Job::Router(router))
        .await
        .map_err(|_| anyhow::anyhow!("the engine stopped"))?;
    drop(jobs);
    let mut senders = r.senders.lock().await;
    senders.stop().await;
    let outbox = r.shared.outbox.clone();
    let channels = adopt_channels(&outbox, &conf)?;
    report_orphans(&outbox, &channels, &r.path);
    *senders = Senders::start_on(&r.rt, &outbox, &conf, &r.wake, &r.shared.counters);
    drop(senders);
    let sources = w.buckets.len() + w.services.len() + w.subscribers.len();
    r.shared.interval.store(w.interval, Ordering::Relaxed);
    r.shared
        .max_queued
        .store(conf.max_queued(), Ordering::Relaxed);
    *r.shared.channels.lock().unwrap_or_else(|p| p.into_inner()) = channels.clone();
    // Sources no longer configured leave /health.
    let names = source_names(&w);
    r.shared
        .sources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|k, _| names.contains(k));
    for name in &names {
        r.shared.source(name, |_| {});
    }
    let _ = r.wodle.send(Arc::new(w));
    tracing::info!(
        "SIGHUP: configuration reloaded: {sources} sources, {} delivery channels (the ruleset, directories and HTTP API stay as started)",
        channels.len()
    );
    r.wake.notify_waiters();
    Ok(())
}

/// Alert bytes the engine thread holds before it commits without being
/// asked (bounds its memory; several files share one fsync).
const GROUP_BYTES: usize = 1 << 20;

/// Files the engine thread takes before it commits without being asked.
const GROUP_FILES: usize = collector::bucket::SETTLE_EVERY;

fn engine_loop(mut pipeline: Pipeline, mut rx: mpsc::Receiver<Job>) {
    let mut waiting: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::File { id, messages, ack } => {
                match pipeline.take_file(id.as_deref(), &messages) {
                    Ok(_) => waiting.push(ack),
                    Err(e) => {
                        let e = format!("{e:#}");
                        tracing::error!("writing alerts: {e}");
                        let _ = ack.send(Err(e));
                    }
                }
                if pipeline.uncommitted() >= GROUP_BYTES || waiting.len() >= GROUP_FILES {
                    commit(&mut pipeline, &mut waiting);
                }
            }
            Job::Commit => commit(&mut pipeline, &mut waiting),
            Job::Router(router) => {
                commit(&mut pipeline, &mut waiting);
                pipeline.set_router(router);
            }
        }
        for w in pipeline.regex_limit_warnings() {
            tracing::warn!("{w}");
        }
    }
    commit(&mut pipeline, &mut waiting);
}

/// Commits the files taken and answers those who handed them on.
fn commit(pipeline: &mut Pipeline, waiting: &mut Vec<oneshot::Sender<Result<(), String>>>) {
    let r = pipeline.commit().map_err(|e| format!("{e:#}"));
    if let Err(e) = &r {
        tracing::error!("writing alerts: {e}");
    }
    for ack in waiting.drain(..) {
        let _ = ack.send(r.clone());
    }
}

/// SIGTERM or SIGINT: stop taking files, finish the one in hand. SIGHUP:
/// reload the configuration.
async fn signals(stop: watch::Sender<bool>, hup: mpsc::UnboundedSender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    loop {
        tokio::select! {
            _ = next(&mut term) => {
                tracing::info!("SIGTERM received; stopping after the file in hand");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT received; stopping after the file in hand");
                break;
            }
            _ = next(&mut hangup) => {
                let _ = hup.send(());
            }
        }
    }
    let _ = stop.send(true);
}

/// The `/health` names of a wodle's sources.
fn source_names(w: &wodle::WodleConfig) -> Vec<String> {
    let mut out: Vec<String> = w.buckets.iter().map(bucket_source).collect();
    out.extend(w.services.iter().map(|s| service_name(s).to_string()));
    out.extend(w.subscribers.iter().map(queue_source));
    out
}

/// A bucket's `/health` name.
fn bucket_source(b: &BucketConfig) -> String {
    format!("bucket {}", b.spec.name)
}

/// A subscriber queue's `/health` name.
fn queue_source(q: &wodle::SubscriberConfig) -> String {
    format!("queue {}", q.queue)
}

fn service_name(svc: &wodle::ServiceConfig) -> &'static str {
    match svc.kind {
        ServiceType::CloudWatchLogs => "cloudwatchlogs",
        ServiceType::Inspector => "inspector",
    }
}

/// Records how a source's pass ended; true when it failed.
fn record(shared: &Shared, source: &str, r: &anyhow::Result<()>) -> bool {
    match r {
        Ok(()) => {
            shared.source(source, |h| {
                h.error = None;
                h.last_success = Some(crate::clock::now().0);
            });
            false
        }
        Err(e) => {
            let text = format!("{e:#}");
            tracing::error!("{text}");
            let kind = health::error_kind(&text);
            shared.source(source, |h| {
                *h.errors.entry(kind).or_default() += 1;
                h.error = Some(text);
            });
            true
        }
    }
}

/// Runs the sources every interval until stopped (the wodle in force at
/// the start of each pass: a reload changes the next pass); true when a
/// source failed in the last pass.
async fn schedule(
    mut wodle_rx: watch::Receiver<Arc<wodle::WodleConfig>>,
    state: &State,
    sink: &mut EngineSink,
    mut stop: watch::Receiver<bool>,
    once: bool,
    pass: Pass,
) -> bool {
    let first = wodle_rx.borrow().clone();
    if !first.run_on_start && !once {
        let interval = Duration::from_secs(first.interval.max(1));
        tracing::info!(
            "run_on_start is off: first pass in {} s",
            interval.as_secs()
        );
        if sleep_or_stop(interval, &mut stop).await {
            return false;
        }
    }
    loop {
        let w = wodle_rx.borrow_and_update().clone();
        let interval = Duration::from_secs(w.interval.max(1));
        let pass = Pass {
            skipped_retries: Some(w.skipped_retries),
            ..pass
        };
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
            sink.source = bucket_source(b);
            let r = until_stopped(one_bucket(b, state, sink, pass), &stop).await;
            if r.is_err() && *stop.borrow() {
                // The file in hand was refused because we are stopping:
                // it is read again on the next start.
                tracing::info!("bucket {}: stopped before the end of the run", b.spec.name);
                break;
            }
            failed |= record(&sink.shared, &sink.source, &r);
        }
        for svc in &w.services {
            if *stop.borrow() {
                break;
            }
            tracing::info!(
                "Executing Service Analysis: (Service: {}, Profile: {})",
                service_name(svc),
                svc.credentials.aws_profile.as_deref().unwrap_or("default")
            );
            sink.source = service_name(svc).to_string();
            let r = until_stopped(one_log_service(svc, state, sink), &stop).await;
            if r.is_err() && *stop.borrow() {
                break;
            }
            failed |= record(&sink.shared, &sink.source, &r);
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
            sink.source = queue_source(sub);
            let r = until_stopped(one_subscriber(sub, sink), &stop).await;
            if r.is_err() && *stop.borrow() {
                break;
            }
            failed |= record(&sink.shared, &sink.source, &r);
        }
        tracing::info!("Fetching logs finished.");
        if once || *stop.borrow() {
            return failed;
        }
        let wait = interval.saturating_sub(started.elapsed());
        if wait.is_zero() {
            tracing::warn!("Interval overtaken.");
        }
        // A reloaded configuration starts its first pass at once.
        tokio::select! {
            stopped = sleep_or_stop(wait, &mut stop) => if stopped {
                return failed;
            },
            changed = wodle_rx.changed() => {
                // No reloader any more: wait as usual.
                if changed.is_err() && sleep_or_stop(wait, &mut stop).await {
                    return failed;
                }
            }
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
    if let Ok(mut rows) = state.skipped() {
        c.skipped_pending
            .store(rows.len() as u64, Ordering::Relaxed);
        rows.truncate(SKIPPED_SHOWN);
        *c.skipped_list.lock().unwrap_or_else(|p| p.into_inner()) = rows;
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
