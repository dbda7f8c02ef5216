//! `trailwatch diff`: what a rule change does to the alerts of a recorded
//! trail. Both rulesets see the same events in one pass (each in its own
//! thread when there are cores), and the differences are gathered per rule:
//! alerts only under the old or only under the new ruleset, alerts of the
//! same rule whose level, description or groups changed, firing counts that
//! moved, correlation rules that fire on other events, rules that never
//! fire, and the new ruleset's load problems with the rules it leaves unable
//! to fire ([`crate::authoring::lint`]).
//!
//! Memory stays bounded whatever the trail's length: events go through in
//! batches (one source file at a time), and only counts, a few examples per
//! rule and a few firing times per correlation rule are kept.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{bail, Context};
use engine::alert::{write_alert, AlertMeta};
use engine::rules::Search;
use engine::{Engine, EngineOptions, LoadError, Mode, Ruleset, Severity};
use serde_json::{json, Value};

use crate::cli::{ClockKind, DiffArgs, DiffFormat, FailOn};
use crate::clock;

/// One alert as the diff compares it.
#[derive(Debug, Clone)]
struct Fired {
    rule: u32,
    level: u32,
    description: String,
    groups: String,
    /// The alerts.json object.
    alert: Vec<u8>,
    /// The time the engine gave the event.
    time: i64,
}

/// Events of one source file, shared by both evaluators.
struct Batch {
    location: &'static str,
    events: Vec<String>,
}

/// What one ruleset decided for each event of a batch.
type Verdicts = Vec<Option<Fired>>;

/// One example of a difference.
#[derive(Debug, Clone)]
struct Example {
    event: String,
    old: Option<Vec<u8>>,
    new: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct RuleDiff {
    old_count: u64,
    new_count: u64,
    only_old: u64,
    only_new: u64,
    changed: u64,
    old_level: Option<u32>,
    new_level: Option<u32>,
    description: String,
    /// What changed, for the changed ones ("level 5 -> 7", ...).
    what: BTreeSet<String>,
    examples_only_old: Vec<Example>,
    examples_only_new: Vec<Example>,
    examples_changed: Vec<Example>,
    /// First firing times (event clock), for correlation rules.
    old_times: Vec<i64>,
    new_times: Vec<i64>,
}

/// Never-fired rules listed in the text report.
const NEVER_FIRED_SHOWN: usize = 15;

/// Firing times kept per correlation rule and side.
const TIMES_KEPT: usize = 5;

/// The whole report.
#[derive(Debug, Default)]
struct Report {
    events: u64,
    files: u64,
    unreadable: Vec<String>,
    old_alerts: u64,
    new_alerts: u64,
    rules: BTreeMap<u32, RuleDiff>,
    /// (rule, description, the fields it tests that no event carried).
    never_fired: Vec<(u32, String, Vec<String>)>,
    problems: Vec<String>,
    old_name: String,
    new_name: String,
    old_rules: usize,
    new_rules: usize,
}

impl Report {
    fn changed_rules(&self) -> impl Iterator<Item = (&u32, &RuleDiff)> {
        self.rules
            .iter()
            .filter(|(_, d)| d.only_old + d.only_new + d.changed > 0)
    }

    fn added(&self) -> u64 {
        self.rules.values().map(|d| d.only_new).sum()
    }

    fn removed(&self) -> u64 {
        self.rules.values().map(|d| d.only_old).sum()
    }

    fn modified(&self) -> u64 {
        self.rules.values().map(|d| d.changed).sum()
    }
}

/// Loads a ruleset argument: a Wazuh-style directory, or a built-in name
/// (`shipped`, `shipped-wazuh`).
pub fn load(spec: &Path) -> anyhow::Result<(Arc<Ruleset>, Vec<LoadError>, String)> {
    let levels = engine::AlertLevels::default();
    if let Some(src) = crate::ruleset::builtin(spec) {
        let (rs, problems) = Ruleset::load(&src, levels);
        return Ok((Arc::new(rs), problems, spec.display().to_string()));
    }
    let src = crate::ruleset::read_dir(spec)?;
    let (rs, problems) = Ruleset::load(&src, levels);
    Ok((Arc::new(rs), problems, spec.display().to_string()))
}

/// Reads the trail's inputs one file at a time into `tx`. Directories are
/// listed a day at a time ([`collector::local::walk`]), so memory does not
/// grow with the number of files.
fn feed(
    paths: &[PathBuf],
    tx: &[mpsc::SyncSender<Arc<Batch>>],
    report: &mut Report,
    progress: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<()> {
    let mut inputs = Vec::new();
    let mut total = 0;
    for p in paths {
        if p.extension().is_some_and(|e| e == "ini") {
            inputs.push(Input::Ini(p.clone()));
            total += 1;
            continue;
        }
        let walk = collector::local::walk(p).with_context(|| format!("reading {}", p.display()))?;
        if walk.total == 0 {
            report
                .unreadable
                .push(format!("{}: no trail files", p.display()));
        }
        total += walk.total;
        inputs.push(Input::Trail(p.clone(), walk));
    }
    if let Some(b) = progress {
        b.set_length(total as u64);
    }
    let send = |batch: Batch, report: &mut Report| -> anyhow::Result<()> {
        report.files += 1;
        report.events += batch.events.len() as u64;
        let batch = Arc::new(batch);
        for t in tx {
            if t.send(batch.clone()).is_err() {
                bail!("an evaluator stopped");
            }
        }
        if let Some(b) = progress {
            b.inc(1);
        }
        Ok(())
    };
    for input in inputs {
        match input {
            Input::Ini(p) => match ini_events(&p) {
                Ok(events) => send(
                    Batch {
                        location: "stdin",
                        events,
                    },
                    report,
                )?,
                Err(e) => report.unreadable.push(format!("{}: {e}", p.display())),
            },
            Input::Trail(p, walk) => {
                for day in walk {
                    let day = day.with_context(|| format!("reading {}", p.display()))?;
                    for t in day {
                        match collector::local::read_file(&t, "trailwatch-diff") {
                            Ok(events) => send(
                                Batch {
                                    location: "Wazuh-AWS",
                                    events,
                                },
                                report,
                            )?,
                            Err(e) => report.unreadable.push(e.to_string()),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

enum Input {
    Trail(PathBuf, collector::local::Walk),
    Ini(PathBuf),
}

/// The events of a Wazuh `.ini` test file (every `log N ...` value).
fn ini_events(p: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(p)?;
    let sections =
        engine::ini::parse(&text).map_err(|e| anyhow::anyhow!("line {}: {}", e.line, e.message))?;
    Ok(sections
        .iter()
        .flat_map(|s| {
            s.entries
                .iter()
                .filter(|(k, _)| k.starts_with("log "))
                .flat_map(|(_, v)| v.lines().map(str::to_owned).collect::<Vec<_>>())
        })
        .filter(|e| !e.trim().is_empty())
        .collect())
}

/// Runs one ruleset over every batch, sending its verdicts back; with
/// `fields`, returns the names of the dynamic fields the events carried.
fn evaluate(
    rs: Arc<Ruleset>,
    clock_kind: ClockKind,
    rx: mpsc::Receiver<Arc<Batch>>,
    out: mpsc::SyncSender<Verdicts>,
    fields: bool,
) -> HashSet<Vec<u8>> {
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let manager = "trailwatch-diff".to_string();
    let mut engine = Engine::new(
        rs.clone(),
        EngineOptions {
            mode: Mode::Analysisd,
            manager_name: manager.clone(),
            ..EngineOptions::default()
        },
    );
    let mut times = clock::Clock::new(clock_kind);
    let mut offset: u64 = 0;
    for batch in rx {
        let mut verdicts = Vec::with_capacity(batch.events.len());
        for ev in &batch.events {
            engine.decode(batch.location.as_bytes(), ev.as_bytes());
            if fields {
                let event = engine.event();
                for f in &event.fields {
                    let name = event.text(f.key);
                    if !seen.contains(name) {
                        seen.insert(name.to_vec());
                    }
                }
            }
            let (secs, nanos) = times.time_of(engine.event());
            engine.match_rules(secs, nanos);
            let o = engine.outcome();
            let Some(rule) = o.rule.filter(|_| o.alert).map(|i| &rs.rules.list[i]) else {
                verdicts.push(None);
                continue;
            };
            let id = format!("{secs}.{offset}");
            let ts = engine::time::alert_timestamp(secs, nanos);
            let mut alert = Vec::new();
            write_alert(
                &rs,
                engine.event(),
                o,
                &AlertMeta {
                    timestamp: &ts,
                    id: &id,
                    manager: &manager,
                },
                false,
                &mut alert,
            );
            offset += alert.len() as u64 + 1;
            verdicts.push(Some(Fired {
                rule: rule.id,
                level: rule.level.max(0) as u32,
                description: String::from_utf8_lossy(&o.description).into_owned(),
                groups: String::from_utf8_lossy(&rule.group).into_owned(),
                alert,
                time: secs,
            }));
        }
        if out.send(verdicts).is_err() {
            return seen;
        }
    }
    seen
}

fn is_correlation(rs: &Ruleset, id: u32) -> bool {
    rs.rule_by_id(id)
        .is_some_and(|r| r.search != Search::None || r.frequency > 0)
}

/// Compares the two rulesets' verdicts of one batch.
fn compare(
    report: &mut Report,
    batch: &Batch,
    old: Verdicts,
    new: Verdicts,
    examples: usize,
    corr: &dyn Fn(u32) -> bool,
    same_wording: bool,
) {
    for ((ev, o), n) in batch.events.iter().zip(old).zip(new) {
        if let Some(o) = &o {
            report.old_alerts += 1;
            let d = report.rules.entry(o.rule).or_default();
            d.old_count += 1;
            d.old_level = Some(o.level);
            if corr(o.rule) && d.old_times.len() < TIMES_KEPT {
                d.old_times.push(o.time);
            }
        }
        if let Some(n) = &n {
            report.new_alerts += 1;
            let d = report.rules.entry(n.rule).or_default();
            d.new_count += 1;
            d.new_level = Some(n.level);
            if corr(n.rule) && d.new_times.len() < TIMES_KEPT {
                d.new_times.push(n.time);
            }
        }
        let example = |o: &Option<Fired>, n: &Option<Fired>| Example {
            event: ev.clone(),
            old: o.as_ref().map(|f| f.alert.clone()),
            new: n.as_ref().map(|f| f.alert.clone()),
        };
        match (&o, &n) {
            (None, None) => {}
            (Some(a), Some(b)) if a.rule == b.rule => {
                let mut what = Vec::new();
                if a.level != b.level {
                    what.push(format!("level {} -> {}", a.level, b.level));
                }
                if !same_wording && a.description != b.description {
                    what.push("description".to_string());
                }
                if a.groups != b.groups {
                    what.push("groups".to_string());
                }
                if !what.is_empty() {
                    let d = report.rules.get_mut(&a.rule).expect("counted above");
                    d.changed += 1;
                    d.what.extend(what);
                    if d.examples_changed.len() < examples {
                        d.examples_changed.push(example(&o, &n));
                    }
                }
            }
            _ => {
                if let Some(a) = &o {
                    let d = report.rules.get_mut(&a.rule).expect("counted above");
                    d.only_old += 1;
                    if d.examples_only_old.len() < examples {
                        d.examples_only_old.push(example(&o, &n));
                    }
                }
                if let Some(b) = &n {
                    let d = report.rules.get_mut(&b.rule).expect("counted above");
                    d.only_new += 1;
                    if d.examples_only_new.len() < examples {
                        d.examples_only_new.push(example(&o, &n));
                    }
                }
            }
        }
    }
}

pub fn run(a: DiffArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &a.report {
        crate::authoring::report::check_writable(path)?;
    }
    let (old_rs, old_problems, old_name) = load(&a.old).context("--old")?;
    let (new_rs, new_problems, new_name) = load(&a.new).context("--new")?;
    let mut report = Report {
        old_name,
        new_name,
        old_rules: old_rs.rules.list.len(),
        new_rules: new_rs.rules.list.len(),
        ..Report::default()
    };
    report.problems = new_problems.iter().map(|p| p.to_string()).collect();
    // Rules the change leaves unable to fire (those of the old ruleset
    // too are not news: `trailwatch lint` lists them).
    let before: std::collections::HashSet<(u32, String)> =
        crate::authoring::lint::findings(&old_rs)
            .into_iter()
            .map(|f| (f.rule, f.why))
            .collect();
    report.problems.extend(
        crate::authoring::lint::findings(&new_rs)
            .into_iter()
            .filter(|f| !before.contains(&(f.rule, f.why.clone())))
            .map(|f| f.to_string()),
    );
    let old_errors = old_problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if old_errors > 0 {
        eprintln!("trailwatch: the old ruleset has {old_errors} load error(s); files with errors are left out (as analysisd does)");
    }

    // Two evaluators, one per ruleset, fed the same batches.
    let (old_tx, old_rx) = mpsc::sync_channel::<Arc<Batch>>(4);
    let (new_tx, new_rx) = mpsc::sync_channel::<Arc<Batch>>(4);
    let (old_out_tx, old_out) = mpsc::sync_channel::<Verdicts>(4);
    let (new_out_tx, new_out) = mpsc::sync_channel::<Verdicts>(4);
    let (batches_tx, batches_rx) = mpsc::sync_channel::<Arc<Batch>>(8);
    let clock_kind = a.clock;
    let (o_rs, n_rs) = (old_rs.clone(), new_rs.clone());
    let old_thread =
        std::thread::spawn(move || evaluate(o_rs, clock_kind, old_rx, old_out_tx, false));
    let new_thread =
        std::thread::spawn(move || evaluate(n_rs, clock_kind, new_rx, new_out_tx, true));

    let progress = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} files {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    // The comparison runs beside the reader, in this scope's thread.
    let examples = a.examples;
    let paths = a.paths.clone();
    let compared = std::thread::scope(|s| -> anyhow::Result<Report> {
        let reader = s.spawn(|| -> anyhow::Result<Report> {
            let mut r = Report::default();
            let txs = [old_tx, new_tx, batches_tx];
            feed(&paths, &txs, &mut r, progress.as_ref())?;
            Ok(r)
        });
        let corr = |id: u32| is_correlation(&old_rs, id) || is_correlation(&new_rs, id);
        for batch in batches_rx {
            let (Ok(o), Ok(n)) = (old_out.recv(), new_out.recv()) else {
                bail!("an evaluator stopped");
            };
            compare(
                &mut report,
                &batch,
                o,
                n,
                examples,
                &corr,
                a.ignore_descriptions,
            );
        }
        let read = reader.join().expect("reader thread")?;
        report.files = read.files;
        report.events = read.events;
        report.unreadable = read.unreadable;
        Ok(std::mem::take(&mut report))
    })?;
    let mut report = compared;
    old_thread.join().expect("old evaluator");
    let seen = new_thread.join().expect("new evaluator");
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    report.never_fired = never_fired(&new_rs, &report, &seen);
    // The rule's own description (before `$(field)` substitution).
    for (id, d) in report.rules.iter_mut() {
        if let Some(r) = new_rs.rule_by_id(*id).or_else(|| old_rs.rule_by_id(*id)) {
            d.description = String::from_utf8_lossy(&r.description).into_owned();
        }
    }
    if let Some(path) = &a.report {
        let data = to_json(&report, a.threshold);
        let inputs: Vec<String> = a.paths.iter().map(|p| p.display().to_string()).collect();
        let page = crate::authoring::report::html::diff_page(
            &data,
            &inputs,
            &crate::authoring::report::html::Lines {
                event: &event_line,
                rule: &rule_line,
            },
        );
        crate::authoring::report::write(path, &page)?;
    }
    let text = match a.format {
        DiffFormat::Text => text(&report, a.threshold),
        DiffFormat::Json => serde_json::to_string_pretty(&to_json(&report, a.threshold))? + "\n",
        DiffFormat::Markdown => markdown(&report, a.threshold),
    };
    print!("{text}");
    for u in &report.unreadable {
        eprintln!("trailwatch: {u}; skipped");
    }
    let errors = new_problems.iter().any(|p| p.severity == Severity::Error);
    if errors {
        return Ok(ExitCode::from(2));
    }
    let changed = match a.fail_on {
        FailOn::Any => report.added() + report.removed() + report.modified() > 0,
        FailOn::Added => report.added() > 0,
        FailOn::Removed => report.removed() > 0,
    };
    Ok(if changed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Rules of the new ruleset that never fired, among the files of rules that
/// did fire (the files the trail is about): the coverage gaps worth a look.
fn never_fired(
    rs: &Ruleset,
    report: &Report,
    seen: &HashSet<Vec<u8>>,
) -> Vec<(u32, String, Vec<String>)> {
    let fired: BTreeSet<u32> = report
        .rules
        .iter()
        .filter(|(_, d)| d.new_count > 0)
        .map(|(id, _)| *id)
        .collect();
    let files: BTreeSet<&str> = rs
        .rules
        .list
        .iter()
        .filter(|r| fired.contains(&r.id))
        .map(|r| r.file.as_str())
        .collect();
    let mut out: Vec<(u32, String, Vec<String>)> = rs
        .rules
        .list
        .iter()
        .filter(|r| files.contains(r.file.as_str()) && r.level > 0 && !fired.contains(&r.id))
        .map(|r| {
            (
                r.id,
                String::from_utf8_lossy(&r.description).into_owned(),
                missing_fields(r, seen),
            )
        })
        .collect();
    out.sort();
    out.dedup_by_key(|(id, _, _)| *id);
    out
}

/// The fields a rule requires (`<field name>` that must match, `<list
/// field>`) that no event of the trail carried: why it could not fire.
fn missing_fields(r: &engine::rules::Rule, seen: &HashSet<Vec<u8>>) -> Vec<String> {
    let required = r
        .fields
        .iter()
        .filter(|(_, c)| !c.negate)
        .map(|(name, _)| name.as_slice())
        .chain(r.lists.iter().filter_map(|l| match &l.field {
            engine::rules::ListField::Dynamic(name) => Some(name.as_slice()),
            _ => None,
        }));
    let mut out: Vec<String> = required
        .filter(|name| !seen.contains(*name))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// " (no event carries aws.x, aws.y)" when a never-fired rule needs
/// fields the trail lacks.
fn absent(missing: &[String]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(" (no event carries {})", missing.join(", "))
    }
}

/// Rules whose firing count moved by more than `threshold` percent.
fn moved(report: &Report, threshold: f64) -> Vec<(u32, u64, u64, f64)> {
    report
        .rules
        .iter()
        .filter_map(|(id, d)| {
            let (o, n) = (d.old_count as f64, d.new_count as f64);
            let pct = if o == 0.0 {
                if n == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (n - o).abs() / o * 100.0
            };
            (pct > threshold).then_some((*id, d.old_count, d.new_count, pct))
        })
        .collect()
}

fn level_change(d: &RuleDiff) -> String {
    match (d.old_level, d.new_level) {
        (Some(o), Some(n)) if o != n => format!("{o} -> {n}"),
        (Some(o), _) => o.to_string(),
        (None, Some(n)) => n.to_string(),
        (None, None) => "-".into(),
    }
}

fn rule_line(alert: &Option<Vec<u8>>) -> String {
    match alert {
        None => "no alert".into(),
        Some(a) => {
            let v: Value = serde_json::from_slice(a).unwrap_or(Value::Null);
            format!(
                "rule {} level {}: {}",
                v["rule"]["id"].as_str().unwrap_or("?"),
                v["rule"]["level"],
                v["rule"]["description"].as_str().unwrap_or("")
            )
        }
    }
}

/// An event in one line: for a CloudTrail-style event its time, name,
/// user, source address and error; otherwise the start of its text.
fn event_line(ev: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(ev) else {
        return short(ev, 160);
    };
    let aws = &v["aws"];
    let Some(name) = aws["eventName"].as_str() else {
        return short(ev, 160);
    };
    let mut s = format!(
        "{} {name}",
        aws["eventTime"].as_str().unwrap_or("(no time)")
    );
    let user = aws["userIdentity"]["userName"]
        .as_str()
        .or(aws["userIdentity"]["arn"].as_str());
    if let Some(u) = user {
        let _ = write!(s, " by {u}");
    }
    if let Some(ip) = aws["sourceIPAddress"].as_str() {
        let _ = write!(s, " from {ip}");
    }
    if let Some(e) = aws["errorCode"].as_str() {
        let _ = write!(s, " ({e})");
    }
    if let Some(id) = aws["eventID"].as_str() {
        let _ = write!(s, " [eventID {id}]");
    }
    s
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(3)).collect::<String>() + "..."
    }
}

fn headline(r: &Report) -> String {
    format!(
        "{} events in {} files; old {} ({} rules): {} alerts; new {} ({} rules): {} alerts",
        r.events,
        r.files,
        r.old_name,
        r.old_rules,
        r.old_alerts,
        r.new_name,
        r.new_rules,
        r.new_alerts
    )
}

fn verdict(r: &Report) -> String {
    if r.added() + r.removed() + r.modified() == 0 {
        "no alert changed".into()
    } else {
        format!(
            "{} alerts only under new, {} only under old, {} changed, in {} rules",
            r.added(),
            r.removed(),
            r.modified(),
            r.changed_rules().count()
        )
    }
}

fn text(r: &Report, threshold: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "trailwatch diff: {}", headline(r));
    let _ = writeln!(s, "{}\n", verdict(r));
    if r.changed_rules().next().is_some() {
        let _ = writeln!(
            s,
            "{:>7}  {:>8}  {:>6}  {:>6}  {:>8}  {:>8}  {:>7}  description",
            "rule", "level", "old", "new", "only old", "only new", "changed"
        );
        for (id, d) in r.changed_rules() {
            let _ = writeln!(
                s,
                "{id:>7}  {:>8}  {:>6}  {:>6}  {:>8}  {:>8}  {:>7}  {}",
                level_change(d),
                d.old_count,
                d.new_count,
                d.only_old,
                d.only_new,
                d.changed,
                short(&d.description, 60)
            );
        }
        s.push('\n');
    }
    for (id, d) in r.changed_rules() {
        let sections = [
            ("only under new", d.only_new, &d.examples_only_new),
            ("only under old", d.only_old, &d.examples_only_old),
            ("changed", d.changed, &d.examples_changed),
        ];
        for (what, n, ex) in sections {
            if n == 0 {
                continue;
            }
            let extra = if what == "changed" {
                format!(
                    " ({})",
                    d.what.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "rule {id}: {} {what}{extra}",
                plural(n, "alert", "alerts")
            );
            for e in ex {
                let _ = writeln!(s, "  event: {}", event_line(&e.event));
                let _ = writeln!(s, "    old: {}", rule_line(&e.old));
                let _ = writeln!(s, "    new: {}", rule_line(&e.new));
            }
        }
    }
    let corr: Vec<_> = r
        .changed_rules()
        .filter(|(_, d)| !d.old_times.is_empty() || !d.new_times.is_empty())
        .filter(|(_, d)| d.old_times != d.new_times)
        .collect();
    if !corr.is_empty() {
        let _ = writeln!(s, "\ncorrelation rules firing at other times:");
        for (id, d) in corr {
            let _ = writeln!(
                s,
                "  {id}: old at {}; new at {}",
                times(&d.old_times),
                times(&d.new_times)
            );
        }
    }
    let moved = moved(r, threshold);
    if !moved.is_empty() {
        let _ = writeln!(s, "\nfiring counts moved by more than {threshold}%:");
        for (id, o, n, pct) in moved {
            let _ = writeln!(s, "  {id}: {o} -> {n} ({})", pct_text(pct));
        }
    }
    if !r.never_fired.is_empty() {
        let _ = writeln!(
            s,
            "\nnever fired on this trail ({} rules of the files that did fire):",
            r.never_fired.len()
        );
        for (id, d, missing) in r.never_fired.iter().take(NEVER_FIRED_SHOWN) {
            let _ = writeln!(s, "  {id}: {}{}", short(d, 80), absent(missing));
        }
        if r.never_fired.len() > NEVER_FIRED_SHOWN {
            let _ = writeln!(
                s,
                "  ... and {} more (--format json lists them all)",
                r.never_fired.len() - NEVER_FIRED_SHOWN
            );
        }
    }
    if !r.problems.is_empty() {
        let _ = writeln!(s, "\nload problems of the new ruleset:");
        for p in &r.problems {
            let _ = writeln!(s, "  {p}");
        }
    }
    if !r.unreadable.is_empty() {
        let _ = writeln!(
            s,
            "\n{} inputs could not be read (skipped)",
            r.unreadable.len()
        );
    }
    s
}

fn pct_text(p: f64) -> String {
    if p.is_infinite() {
        "new".into()
    } else {
        format!("{p:.0}%")
    }
}

fn times(t: &[i64]) -> String {
    if t.is_empty() {
        return "never".into();
    }
    t.iter()
        .map(|s| {
            let (y, mo, d, h, mi, sec, ..) = engine::time::local(*s);
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn markdown(r: &Report, threshold: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### trailwatch diff\n\n{}\n\n**{}**\n",
        headline(r),
        verdict(r)
    );
    if r.changed_rules().next().is_some() {
        s.push_str("| rule | level | old | new | only old | only new | changed | description |\n");
        s.push_str("|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for (id, d) in r.changed_rules() {
            let _ = writeln!(
                s,
                "| {id} | {} | {} | {} | {} | {} | {} | {} |",
                level_change(d),
                d.old_count,
                d.new_count,
                d.only_old,
                d.only_new,
                d.changed,
                d.description.replace('|', "\\|")
            );
        }
        s.push('\n');
        for (id, d) in r.changed_rules() {
            let ex: Vec<&Example> = d
                .examples_only_new
                .iter()
                .chain(&d.examples_only_old)
                .chain(&d.examples_changed)
                .collect();
            if ex.is_empty() {
                continue;
            }
            let _ = writeln!(s, "<details><summary>rule {id}: examples</summary>\n");
            for e in ex {
                let _ = writeln!(
                    s,
                    "- event: {}\n  - old: {}\n  - new: {}\n",
                    event_line(&e.event).replace('|', "\\|"),
                    rule_line(&e.old),
                    rule_line(&e.new),
                );
            }
            s.push_str("</details>\n\n");
        }
    }
    let moved = moved(r, threshold);
    if !moved.is_empty() {
        let _ = writeln!(s, "Firing counts moved by more than {threshold}%:\n");
        for (id, o, n, pct) in moved {
            let _ = writeln!(s, "- {id}: {o} -> {n} ({})", pct_text(pct));
        }
        s.push('\n');
    }
    if !r.never_fired.is_empty() {
        let _ = writeln!(
            s,
            "Never fired on this trail: {}\n",
            r.never_fired
                .iter()
                .map(|(id, _, missing)| format!("{id}{}", absent(missing)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !r.problems.is_empty() {
        s.push_str("Load problems of the new ruleset:\n\n");
        for p in &r.problems {
            let _ = writeln!(s, "- `{p}`");
        }
        s.push('\n');
    }
    s
}

fn to_json(r: &Report, threshold: f64) -> Value {
    let alert = |a: &Option<Vec<u8>>| -> Value {
        a.as_ref()
            .and_then(|a| serde_json::from_slice(a).ok())
            .unwrap_or(Value::Null)
    };
    let examples = |v: &[Example]| -> Value {
        v.iter()
            .map(|e| {
                json!({
                    "event": serde_json::from_str::<Value>(&e.event).unwrap_or_else(|_| Value::String(e.event.clone())),
                    "old": alert(&e.old),
                    "new": alert(&e.new),
                })
            })
            .collect()
    };
    let rules: Vec<Value> = r
        .changed_rules()
        .map(|(id, d)| {
            json!({
                "rule": id,
                "old_level": d.old_level,
                "new_level": d.new_level,
                "description": d.description,
                "old_count": d.old_count,
                "new_count": d.new_count,
                "only_old": d.only_old,
                "only_new": d.only_new,
                "changed": d.changed,
                "what_changed": d.what.iter().collect::<Vec<_>>(),
                "examples": {
                    "only_new": examples(&d.examples_only_new),
                    "only_old": examples(&d.examples_only_old),
                    "changed": examples(&d.examples_changed),
                },
                "old_first_times": d.old_times,
                "new_first_times": d.new_times,
            })
        })
        .collect();
    json!({
        "events": r.events,
        "files": r.files,
        "old": {"ruleset": r.old_name, "rules": r.old_rules, "alerts": r.old_alerts},
        "new": {"ruleset": r.new_name, "rules": r.new_rules, "alerts": r.new_alerts},
        "summary": {"only_new": r.added(), "only_old": r.removed(), "changed": r.modified()},
        "rules": rules,
        "moved": moved(r, threshold).iter().map(|(id, o, n, _)| json!({"rule": id, "old": o, "new": n})).collect::<Vec<_>>(),
        "never_fired": r.never_fired.iter().map(|(id, d, missing)| json!({"rule": id, "description": d, "fields_never_seen": missing})).collect::<Vec<_>>(),
        "load_problems": r.problems,
        "unreadable": r.unreadable,
    })
}
