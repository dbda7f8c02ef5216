//! The engine and the outputs joined: one source file's events in, its
//! alerts made durable out.
//!
//! Per file: every event goes through the engine and its alerts are kept;
//! at the commit (after each file, or after a group of files when the
//! service has several in hand) they are appended to `alerts.json` and
//! fsync'd, then one outbox transaction records the email and webhook
//! items, the files as handled and the new `alerts.json` length. Only
//! after that does the collector hear the files are safe (and mark them in
//! its own state). A crash before the transaction leaves an
//! uncommitted `alerts.json` tail that the next start cuts; a crash after
//! it leaves a handled file that the next start recognises and skips. So
//! every alert lands exactly once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use engine::alert::{write_alert, AlertMeta};
use engine::{Engine, EngineOptions, Mode, Ruleset};
use outputs::file::AlertsFile;
use outputs::queue::Outbox;
use outputs::route::Router;
use outputs::send::Wake;

use crate::cli::ClockKind;
use crate::clock;

/// Alerts of one rule.
#[derive(Debug, Clone, Default)]
pub struct RuleCount {
    pub level: u32,
    pub description: String,
    pub count: u64,
}

/// Running totals, shared with the HTTP API and the final summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    pub files: AtomicU64,
    /// Files already handled before a restart (skipped).
    pub files_skipped: AtomicU64,
    pub by_rule: Mutex<BTreeMap<u32, RuleCount>>,
    /// Recent alerts (newest last), for `GET /alerts`.
    pub recent: Mutex<std::collections::VecDeque<(i64, u32, Vec<u8>)>>,
}

/// Alerts kept for `GET /alerts`.
pub const RECENT_KEPT: usize = 1000;

impl Stats {
    pub fn rule_table(&self) -> Vec<(u32, RuleCount)> {
        let map = self.by_rule.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// Where alerts go.
pub struct Outputs {
    pub alerts_file: Option<AlertsFile>,
    /// The commit point (and the queue of email and webhook items).
    pub outbox: Option<Arc<Outbox>>,
    pub router: Router,
    pub wake: Wake,
    /// Also (or only) print alerts on standard output.
    pub stdout: bool,
    /// Record the `alerts.json` length at each commit (the service; a
    /// replay writing into the same file must not, or a later start would
    /// cut the service's alerts).
    pub track_alerts_len: bool,
}

/// Files taken and not yet committed.
#[derive(Debug, Default)]
struct Group {
    /// Something was taken (the first file rolled `alerts.json` and set
    /// `base`).
    open: bool,
    /// Where the group's alerts start in `alerts.json` (or on stdout).
    base: u64,
    sources: Vec<String>,
    files: u64,
    events: u64,
    alerts: u64,
}

/// The engine plus outputs.
pub struct Pipeline {
    engine: Engine,
    rs: Arc<Ruleset>,
    manager: String,
    clock: clock::Clock,
    location: Vec<u8>,
    outputs: Outputs,
    stdout_offset: u64,
    buf: Vec<u8>,
    alert: Vec<u8>,
    items: Vec<(String, Vec<u8>)>,
    /// The files taken since the last commit.
    group: Group,
    limits: crate::regex_limits::RegexLimitWarnings,
    pub stats: Arc<Stats>,
    /// The HTML report's figures, gathered in the same pass (`replay
    /// --report`).
    pub report: Option<crate::authoring::report::Builder>,
}

impl Pipeline {
    pub fn new(rs: Arc<Ruleset>, manager: String, clock: ClockKind, outputs: Outputs) -> Pipeline {
        let engine = Engine::new(
            rs.clone(),
            EngineOptions {
                mode: Mode::Analysisd,
                manager_name: manager.clone(),
                ..EngineOptions::default()
            },
        );
        Pipeline {
            engine,
            rs,
            manager,
            clock: clock::Clock::new(clock),
            location: b"Wazuh-AWS".to_vec(),
            outputs,
            stdout_offset: 0,
            buf: Vec::with_capacity(1 << 16),
            alert: Vec::with_capacity(8192),
            items: Vec::new(),
            group: Group::default(),
            limits: Default::default(),
            stats: Arc::new(Stats::default()),
            report: None,
        }
    }

    /// Routes the next files with `router` (a reloaded configuration).
    pub fn set_router(&mut self, router: Router) {
        self.outputs.router = router;
    }

    /// Runs one source file's events; returns once its alerts are durable.
    /// `source` identifies the file (`bucket/key`) for the exactly-once
    /// check; `None` for inputs that are not tracked (replay).
    pub fn handle_file(&mut self, source: Option<&str>, messages: &[String]) -> anyhow::Result<()> {
        self.take_file(source, messages)?;
        self.commit()
    }

    /// Runs one source file's events and keeps its alerts for the next
    /// [`Pipeline::commit`], which makes the files taken since the last
    /// one durable together (one `alerts.json` fsync, one outbox
    /// transaction). False when the file was committed before a restart
    /// and is not read again.
    pub fn take_file(&mut self, source: Option<&str>, messages: &[String]) -> anyhow::Result<bool> {
        if let (Some(src), Some(outbox)) = (source, &self.outputs.outbox) {
            if outbox.handled(src)? {
                tracing::info!("{src}: its alerts were committed before a restart; not read again");
                self.stats.files_skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        }
        if !self.group.open {
            let (now, _) = clock::now();
            if let Some(f) = &mut self.outputs.alerts_file {
                f.roll(now).context("rotating alerts.json")?;
            }
            self.group.base = match &self.outputs.alerts_file {
                Some(f) => f.offset(),
                None => self.stdout_offset,
            };
            self.group.open = true;
        }
        let base = self.group.base;
        let mut alerts = 0u64;
        for msg in messages {
            self.engine.decode(
                &self.location,
                engine::received(&self.location, msg.as_bytes()),
            );
            let (secs, nanos) = self.clock.time_of(self.engine.event());
            self.engine.match_rules(secs, nanos);
            if let Some(r) = &mut self.report {
                r.event(secs);
            }
            if !self.engine.outcome().alert {
                continue;
            }
            alerts += 1;
            let id = format!("{secs}.{}", base + self.buf.len() as u64);
            let ts = engine::time::alert_timestamp(secs, nanos);
            let meta = AlertMeta {
                timestamp: &ts,
                id: &id,
                manager: &self.manager,
            };
            self.alert.clear();
            write_alert(
                &self.rs,
                self.engine.event(),
                self.engine.outcome(),
                &meta,
                false,
                &mut self.alert,
            );
            if let Some(rule) = self.engine.outcome().rule.map(|i| &self.rs.rules.list[i]) {
                let mail = rule.alert_opts & engine::rules::DO_MAILALERT != 0;
                if self
                    .outputs
                    .router
                    .wants_any(rule.id, rule.level.max(0) as u32, mail)
                {
                    self.outputs.router.route(&self.alert, &mut self.items);
                }
                self.count(secs, rule);
            }
            if let Some(r) = &mut self.report {
                r.alert(secs, &self.alert);
            }
            self.buf.extend_from_slice(&self.alert);
            self.buf.push(b'\n');
        }
        if let Some(s) = source {
            self.group.sources.push(s.to_string());
        }
        self.group.files += 1;
        self.group.events += messages.len() as u64;
        self.group.alerts += alerts;
        Ok(true)
    }

    /// Alert bytes taken and not yet committed.
    pub fn uncommitted(&self) -> usize {
        self.buf.len()
    }

    /// Makes the alerts of the files taken since the last commit durable:
    /// appended to `alerts.json` and fsync'd, then one outbox transaction
    /// with their email and webhook items, the files as handled and the new
    /// `alerts.json` length. On an error none of those files counts as
    /// handled (they are read again).
    pub fn commit(&mut self) -> anyhow::Result<()> {
        if !self.group.open {
            return Ok(());
        }
        let group = std::mem::take(&mut self.group);
        let r = self.write_group(&group);
        self.buf.clear();
        self.items.clear();
        r?;
        self.stats.events.fetch_add(group.events, Ordering::Relaxed);
        self.stats.alerts.fetch_add(group.alerts, Ordering::Relaxed);
        self.stats.files.fetch_add(group.files, Ordering::Relaxed);
        Ok(())
    }

    fn write_group(&mut self, group: &Group) -> anyhow::Result<()> {
        let (now, _) = clock::now();
        if let Some(f) = &mut self.outputs.alerts_file {
            f.append_sync(&self.buf)?;
        }
        if self.outputs.stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(&self.buf)?;
            out.flush()?;
        }
        self.stdout_offset += self.buf.len() as u64;
        if let Some(outbox) = &self.outputs.outbox {
            let mut meta: Vec<(&str, String)> = Vec::new();
            if let Some(f) = self
                .outputs
                .alerts_file
                .as_ref()
                .filter(|_| self.outputs.track_alerts_len)
            {
                meta.push(("alerts_file", f.path().display().to_string()));
                meta.push(("alerts_len", f.offset().to_string()));
            }
            let sources: Vec<&str> = group.sources.iter().map(String::as_str).collect();
            outbox.commit(&sources, &self.items, &meta, now)?;
            if !self.items.is_empty() {
                self.outputs.wake.notify_waiters();
            }
        }
        Ok(())
    }

    /// Warnings, once per rule, about `pcre2` expressions that gave up at
    /// PCRE2's limits since the last call (see `crate::regex_limits`).
    pub fn regex_limit_warnings(&mut self) -> Vec<String> {
        self.limits.fresh(&self.rs)
    }

    /// Counts an alert of `rule` for the summary, /metrics and /alerts.
    fn count(&self, secs: i64, rule: &engine::rules::Rule) {
        {
            let mut map = self.stats.by_rule.lock().unwrap_or_else(|p| p.into_inner());
            let e = map.entry(rule.id).or_insert_with(|| RuleCount {
                level: rule.level.max(0) as u32,
                description: String::from_utf8_lossy(&rule.description).into_owned(),
                count: 0,
            });
            e.count += 1;
        }
        let mut recent = self.stats.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_KEPT {
            recent.pop_front();
        }
        recent.push_back((secs, rule.level.max(0) as u32, self.alert.clone()));
    }
}

/// The committed `alerts.json` file and length recorded in the outbox.
pub fn committed_alerts(outbox: &Outbox) -> anyhow::Result<Option<(PathBuf, u64)>> {
    let file = outbox.meta("alerts_file")?;
    let len = outbox.meta("alerts_len")?;
    Ok(match (file, len) {
        (Some(f), Some(l)) => Some((PathBuf::from(f), l.parse().unwrap_or(0))),
        _ => None,
    })
}

/// The summary table printed at the end of a replay or run: alerts by
/// rule, most frequent first.
pub fn summary_table(stats: &Stats) -> String {
    let mut rows = stats.rule_table();
    rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
    let mut s = format!(
        "{} events, {} alerts\n",
        stats.events.load(Ordering::Relaxed),
        stats.alerts.load(Ordering::Relaxed)
    );
    if rows.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "{:>7}  {:>5}  {:>6}  {}\n",
        "rule", "level", "alerts", "description"
    ));
    for (id, r) in rows {
        let mut d = r.description.clone();
        if d.chars().count() > 70 {
            d = d.chars().take(67).collect::<String>() + "...";
        }
        s.push_str(&format!("{id:>7}  {:>5}  {:>6}  {d}\n", r.level, r.count));
    }
    s
}
