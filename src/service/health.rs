//! What the service knows about its own health, for `/health` and
//! `/metrics`: per source (bucket, log service, queue) how its last pass
//! ended, when it last succeeded and what it took; per delivery channel
//! its depth, the items set aside and the last accepted delivery.
//!
//! `/health` is "ok" only when every source's last pass succeeded and one
//! succeeded within two intervals, no S3 object waits as skipped, no
//! delivery is set aside or queued for a channel no longer configured,
//! the queue is below `<api><max_queued>` and the outbox can be written.
//! Every label value comes from the configuration (source and channel
//! names) or a fixed list (error kinds), so series stay bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::service::run::Shared;

/// One source as the schedule saw it.
#[derive(Debug, Clone, Default)]
pub struct SourceHealth {
    /// The error of the last pass, when it failed.
    pub error: Option<String>,
    /// Failed passes by kind of error (see [`error_kind`]).
    pub errors: BTreeMap<&'static str, u64>,
    /// When a pass last ended without error (epoch seconds).
    pub last_success: Option<i64>,
    /// When a file or page was last taken (epoch seconds).
    pub last_taken: Option<i64>,
    pub files: u64,
    pub events: u64,
}

/// The kinds of source errors, as counted in
/// `trailwatch_source_errors_total{kind=...}`.
pub const ERROR_KINDS: [&str; 6] = [
    "access_denied",
    "credentials",
    "not_found",
    "timeout",
    "unreachable",
    "other",
];

/// The kind of a source error, read from its whole chain.
pub fn error_kind(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&[
        "accessdenied",
        "access denied",
        "http 403",
        "(403)",
        " 403",
        "forbidden",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "not authorized",
    ]) {
        "access_denied"
    } else if has(&["credential"]) {
        "credentials"
    } else if has(&["nosuchbucket", "not found", "404", "does not exist"]) {
        "not_found"
    } else if has(&["timed out", "timeout"]) {
        "timeout"
    } else if has(&["dispatch", "connect", "connection", "dns", "unreachable"]) {
        "unreachable"
    } else {
        "other"
    }
}

impl Shared {
    /// Runs `f` on a source's entry (created on first use).
    pub fn source(&self, name: &str, f: impl FnOnce(&mut SourceHealth)) {
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(name) {
            Some(s) => f(s),
            None => f(map.entry(name.to_string()).or_default()),
        }
    }

    fn sources_now(&self) -> Vec<(String, SourceHealth)> {
        let map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn channels_now(&self) -> Vec<String> {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// `/health`: whether all is well, and the JSON body (with the reasons
/// when not).
pub fn report(s: &Shared) -> (bool, Value) {
    let now = crate::clock::now().0;
    let interval = s.interval.load(Ordering::Relaxed).max(1) as i64;
    let started = now - s.started.elapsed().as_secs() as i64;
    let mut reasons: Vec<String> = Vec::new();
    let mut sources = serde_json::Map::new();
    for (name, h) in s.sources_now() {
        if let Some(e) = &h.error {
            reasons.push(format!("source {name}: the last pass failed: {e}"));
        } else if now - h.last_success.unwrap_or(started) > 2 * interval {
            reasons.push(format!(
                "source {name}: no successful pass for {} s (interval {interval} s)",
                now - h.last_success.unwrap_or(started)
            ));
        }
        sources.insert(
            name,
            json!({
                "ok": h.error.is_none(),
                "error": h.error,
                "last_success": h.last_success,
                "last_taken": h.last_taken,
                "files": h.files,
                "events": h.events,
            }),
        );
    }
    let skipped = s.collector.skipped_pending.load(Ordering::Relaxed);
    let skipped_list: Vec<Value> = s
        .collector
        .skipped_list
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|k| {
            json!({
                "bucket": k.bucket_path,
                "key": k.key,
                "passes": k.passes,
                "last_try": k.last_try,
                "error": k.error,
            })
        })
        .collect();
    if skipped > 0 {
        reasons.push(format!(
            "{skipped} S3 objects skipped on error and not read since (`trailwatch collect --skipped` lists them)"
        ));
    }
    let configured = s.channels_now();
    let last_ok: BTreeMap<String, i64> = s.counters.last_success().into_iter().collect();
    let mut channels = serde_json::Map::new();
    let mut queued = 0;
    match s.outbox.depths() {
        Ok(depths) => {
            for (c, d) in depths {
                queued += d.pending;
                let orphaned = !configured.contains(&c);
                if orphaned {
                    reasons.push(format!(
                        "channel {c}: {} deliveries queued for a channel no longer configured (`trailwatch queue list`)",
                        d.pending + d.failed
                    ));
                } else if d.failed > 0 {
                    reasons.push(format!(
                        "channel {c}: {} deliveries set aside after a refusal (`trailwatch queue retry`)",
                        d.failed
                    ));
                }
                channels.insert(
                    c.clone(),
                    json!({
                        "pending": d.pending,
                        "set_aside": d.failed,
                        "oldest": d.oldest,
                        "configured": !orphaned,
                        "last_success": last_ok.get(&c),
                    }),
                );
            }
        }
        Err(e) => reasons.push(format!("the delivery queue cannot be read: {e}")),
    }
    let max_queued = s.max_queued.load(Ordering::Relaxed);
    if queued > max_queued {
        reasons.push(format!(
            "{queued} deliveries waiting, above <max_queued> {max_queued}"
        ));
    }
    if let Some(why) = s.counters.degraded() {
        reasons.push(format!("deliveries stopped: {why}"));
    }
    let ok = reasons.is_empty();
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "reasons": reasons,
        "uptime_seconds": s.started.elapsed().as_secs(),
        "events": s.stats.events.load(Ordering::Relaxed),
        "alerts": s.stats.alerts.load(Ordering::Relaxed),
        "sources": sources,
        "channels": channels,
        "s3_objects_skipped": skipped,
        "s3_skipped": skipped_list,
    });
    (ok, body)
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// A Prometheus label value.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The per-source and per-channel families of `/metrics`.
pub fn metrics(s: &Shared, out: &mut String) {
    let now = crate::clock::now().0;
    let sources = s.sources_now();
    let mut per_source =
        |name: &str, kind: &str, help: &str, v: &dyn Fn(&SourceHealth) -> Option<i64>| {
            family(out, name, kind, help);
            for (src, h) in &sources {
                if let Some(v) = v(h) {
                    let _ = writeln!(out, "{name}{{source=\"{}\"}} {v}", label(src));
                }
            }
        };
    per_source(
        "trailwatch_source_up",
        "gauge",
        "1 when the source's last pass succeeded, 0 when it failed.",
        &|h| Some(h.error.is_none() as i64),
    );
    per_source(
        "trailwatch_source_last_success_seconds",
        "gauge",
        "When the source's last successful pass ended (epoch seconds).",
        &|h| h.last_success,
    );
    per_source(
        "trailwatch_source_last_object_seconds",
        "gauge",
        "When the source's last file or page was taken (epoch seconds).",
        &|h| h.last_taken,
    );
    per_source(
        "trailwatch_source_lag_seconds",
        "gauge",
        "Seconds since the source's last file or page was taken.",
        &|h| h.last_taken.map(|t| (now - t).max(0)),
    );
    per_source(
        "trailwatch_source_files_total",
        "counter",
        "Files (or pages) taken from the source.",
        &|h| Some(h.files as i64),
    );
    per_source(
        "trailwatch_source_events_total",
        "counter",
        "Events taken from the source.",
        &|h| Some(h.events as i64),
    );
    family(
        out,
        "trailwatch_source_errors_total",
        "counter",
        "Failed passes of a source, by kind of error.",
    );
    for (src, h) in &sources {
        for kind in ERROR_KINDS {
            let _ = writeln!(
                out,
                "trailwatch_source_errors_total{{source=\"{}\",kind=\"{kind}\"}} {}",
                label(src),
                h.errors.get(kind).copied().unwrap_or(0)
            );
        }
    }
    let depths = s.outbox.depths().unwrap_or_default();
    let mut per_channel = |name: &str, help: &str, rows: Vec<(&str, i64)>| {
        family(out, name, "gauge", help);
        for (c, v) in rows {
            let _ = writeln!(out, "{name}{{channel=\"{}\"}} {v}", label(c));
        }
    };
    per_channel(
        "trailwatch_queue_pending",
        "Email and webhook deliveries waiting, by channel.",
        depths
            .iter()
            .map(|(c, d)| (c.as_str(), d.pending as i64))
            .collect(),
    );
    per_channel(
        "trailwatch_queue_failed",
        "Deliveries set aside after a permanent refusal, by channel.",
        depths
            .iter()
            .map(|(c, d)| (c.as_str(), d.failed as i64))
            .collect(),
    );
    let last = s.counters.last_success();
    per_channel(
        "trailwatch_queue_last_success_seconds",
        "When the channel's receiver last accepted a delivery (epoch seconds).",
        last.iter().map(|(c, t)| (c.as_str(), *t)).collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        assert_eq!(
            error_kind("bucket b: ListObjectsV2: access denied (HTTP 403)"),
            "access_denied"
        );
        assert_eq!(
            error_kind("InvalidAccessKeyId: The AWS Access Key Id you provided does not exist"),
            "access_denied"
        );
        assert_eq!(error_kind("no credentials found"), "credentials");
        assert_eq!(error_kind("NoSuchBucket"), "not_found");
        assert_eq!(error_kind("operation timed out"), "timeout");
        assert_eq!(
            error_kind("dispatch failure: connection refused"),
            "unreachable"
        );
        assert_eq!(error_kind("bad gzip"), "other");
    }
}
