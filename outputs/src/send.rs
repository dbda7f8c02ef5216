//! The background senders: they drain the outbox, one task per webhook
//! integration and one for email, retrying with exponential backoff. They
//! wake when new items are committed ([`Wake`]) and stop when told to.
//!
//! Exactly once, as far as a crash allows: each accepted item (or mail)
//! is recorded before the next one is sent (a webhook item appended to
//! the sent record, removed with others after its group; a mail removed
//! in its own transaction), and carries a delivery key that stays the same on every attempt
//! (see [`crate::queue`]). When that removal cannot be written (a full
//! disk), sending stops: the senders keep what they could not record in
//! memory and try to record it with backoff, and [`Counters::degraded`]
//! says why (the HTTP API's `/health`); nothing is sent again meanwhile.
//!
//! A receiver that is down costs nothing: its channel (a webhook, or the
//! SMTP server for all mail) waits out the backoff (up to a minute) without
//! touching the queue, then the oldest item goes as a probe; one warning
//! when the outage starts, one line when it ends.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};

use crate::alert::Alert;
use crate::email::{compose, Mailer};
use crate::queue::{Item, Outbox, QueueError};
use crate::route::{hook_channel, EMAIL_CHANNEL, EMAIL_NOW_CHANNEL};
use crate::settings::{EmailSettings, Integration};
use crate::webhook::{Failure, Poster};

/// Longest wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 60;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Most alerts in one mail, and most mail items read at a time: Wazuh's
/// maild keeps a list of 96 messages per mail. A larger backlog leaves as
/// several mails (each counted against `email_maxperhour`), and the
/// sender's memory stays the same whatever the backlog.
pub const MAIL_ALERTS_MAX: usize = 96;

/// Seconds to wait after the `attempts`-th failure: 1, 2, 4, ... 60.
pub fn backoff(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(20))
        .unwrap_or(i64::MAX)
        .min(MAX_BACKOFF_SECS)
}

/// Tells the senders that items were committed.
pub type Wake = Arc<Notify>;

/// Delivery counters, for logs and metrics, and the senders' health.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub mails: std::sync::atomic::AtomicU64,
    /// Why sending is stopped (the outbox cannot be written), per sender.
    stuck: Mutex<Vec<(String, String)>>,
    /// No alert will come any more (`run --once` after its sources ended):
    /// mail leaves without waiting to be grouped with later alerts.
    pub finishing: std::sync::atomic::AtomicBool,
    /// When each channel's receiver last accepted a delivery (epoch s).
    last_success: Mutex<std::collections::BTreeMap<String, i64>>,
}

impl Counters {
    /// Why deliveries are stopped, if they are.
    pub fn degraded(&self) -> Option<String> {
        let g = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
        (!g.is_empty()).then(|| {
            g.iter()
                .map(|(who, why)| format!("{who}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// When each channel's receiver last accepted a delivery, by channel.
    pub fn last_success(&self) -> Vec<(String, i64)> {
        let g = self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn succeeded(&self, channel: &str) {
        let mut g = self.last_success.lock().unwrap_or_else(|p| p.into_inner());
        match g.get_mut(channel) {
            Some(t) => *t = now(),
            None => {
                g.insert(channel.to_string(), now());
            }
        }
    }

    fn set_stuck(&self, who: &str, why: Option<String>) {
        let mut g = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|(w, _)| w != who);
        if let Some(why) = why {
            g.push((who.to_string(), why));
        }
    }
}

/// Starts the senders on `rt`: mail when `email` is set, and one per
/// webhook integration.
pub fn start(
    rt: &tokio::runtime::Handle,
    outbox: &Arc<Outbox>,
    email: Option<&EmailSettings>,
    hooks: &[Integration],
    wake: &Wake,
    counters: &Arc<Counters>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    if let Some(e) = email {
        out.push(rt.spawn(run_email(
            outbox.clone(),
            e.clone(),
            wake.clone(),
            counters.clone(),
            stop.clone(),
        )));
    }
    // One sender per integration: a slow receiver does not hold the
    // others back, and they post side by side.
    for h in hooks {
        out.push(rt.spawn(run_hooks(
            outbox.clone(),
            vec![h.clone()],
            wake.clone(),
            counters.clone(),
            stop.clone(),
        )));
    }
    out
}

/// Waits until the queue of `channels` is empty, `limit` has passed or
/// `stop` is set; `waiting` hears once how many deliveries are still
/// pending after `announce_after`. Returns how many are left. (Items of
/// channels no longer configured are not waited for.)
pub async fn drain(
    outbox: &Outbox,
    channels: &[String],
    mut stop: watch::Receiver<bool>,
    limit: Duration,
    announce_after: Duration,
    waiting: impl FnOnce(u64),
) -> u64 {
    let start = std::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        let pending = outbox.pending_in(channels).unwrap_or(0);
        if pending == 0 || *stop.borrow() || start.elapsed() >= limit {
            return pending;
        }
        if start.elapsed() >= announce_after {
            if let Some(w) = waiting.take() {
                w(pending);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Waits for new items, `poll` (due times are polled) or the stop signal;
/// returns false once stopped.
async fn pause(wake: &Notify, stop: &mut watch::Receiver<bool>, poll: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = wake.notified() => true,
        _ = tokio::time::sleep(poll) => true,
        _ = stop.changed() => !*stop.borrow(),
    }
}

/// Sleeps `d` unless stopped; returns false once stopped.
async fn sleep_unless_stopped(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => !*stop.borrow(),
    }
}

/// A receiver (or the outbox itself) that fails: backoff, and one line
/// when it starts failing and one when it works again.
struct Outage {
    what: String,
    since: Option<Instant>,
    failures: u32,
    until: Option<Instant>,
}

impl Outage {
    fn new(what: String) -> Outage {
        Outage {
            what,
            since: None,
            failures: 0,
            until: None,
        }
    }

    /// A failed attempt; `first` is the item's own attempt count (a
    /// restart keeps the backoff it had reached).
    fn failed(&mut self, why: &str, first: u32) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            self.failures = first;
            tracing::warn!(
                "{}: {why}; waiting and trying again (backoff up to {MAX_BACKOFF_SECS} s, no further warning until it works)",
                self.what
            );
        } else {
            tracing::debug!("{}: still failing: {why}", self.what);
        }
        let wait = Duration::from_secs(backoff(self.failures) as u64);
        self.failures = self.failures.saturating_add(1);
        self.until = Some(Instant::now() + wait);
    }

    fn ok(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                "{}: working again after {} s ({} failed attempts)",
                self.what,
                since.elapsed().as_secs(),
                self.failures
            );
        }
        self.failures = 0;
        self.until = None;
    }

    /// How long to wait before the next attempt.
    fn wait(&self) -> Option<Duration> {
        self.until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

/// A queue change that could not be written yet.
enum Unsaved {
    /// Accepted by the receiver: remove (and set the meta values).
    Done(Vec<i64>, Vec<(&'static str, String)>),
    /// A webhook item accepted by its receiver: record it.
    Sent(i64),
    /// Remove the items recorded as sent.
    Purge,
    /// A failed attempt: retry at the time, or set aside.
    Failed {
        ids: Vec<i64>,
        next_try: i64,
        give_up: bool,
        why: String,
    },
}

impl Unsaved {
    fn apply(&self, outbox: &Outbox) -> Result<(), QueueError> {
        match self {
            Unsaved::Done(ids, meta) => {
                let meta: Vec<(&str, String)> = meta.iter().map(|(k, v)| (*k, v.clone())).collect();
                outbox.done_with_meta(ids, &meta)
            }
            Unsaved::Sent(id) => outbox.sent(*id),
            Unsaved::Purge => outbox.purge_sent(),
            Unsaved::Failed {
                ids,
                next_try,
                give_up,
                why,
            } => outbox.retry(ids, *next_try, *give_up, why),
        }
    }
}

/// What a sender could not write to the outbox, and the backoff of its
/// attempts to write it: while anything is kept here the sender sends
/// nothing.
struct Journal {
    who: String,
    kept: Vec<Unsaved>,
    outage: Outage,
    /// For the last try when the sender stops.
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
}

impl Journal {
    fn new(who: String, outbox: &Arc<Outbox>, counters: &Arc<Counters>) -> Journal {
        Journal {
            who: who.clone(),
            kept: Vec::new(),
            outage: Outage::new(format!(
                "{who}: the outbox cannot be written; sending stops"
            )),
            outbox: outbox.clone(),
            counters: counters.clone(),
        }
    }

    /// Writes `change`, or keeps it (and stops sending) when it fails.
    fn write(&mut self, change: Unsaved) {
        if self.kept.is_empty() {
            match change.apply(&self.outbox) {
                Ok(()) => return,
                Err(e) => self.stuck(&e),
            }
        }
        self.kept.push(change);
    }

    fn stuck(&mut self, e: &QueueError) {
        let why = e.to_string();
        self.outage.failed(&why, 0);
        self.counters.set_stuck(&self.who, Some(why));
    }

    /// Writes what was kept; true when nothing is left (sending may go on).
    fn flush(&mut self) -> bool {
        if self.kept.is_empty() {
            return true;
        }
        if self.outage.wait().is_some() {
            return false;
        }
        while let Some(first) = self.kept.first() {
            if let Err(e) = first.apply(&self.outbox) {
                self.stuck(&e);
                return false;
            }
            self.kept.remove(0);
        }
        self.outage.ok();
        self.counters.set_stuck(&self.who, None);
        true
    }

    fn blocked(&self) -> bool {
        !self.kept.is_empty()
    }
}

impl Drop for Journal {
    /// The sender stops (shutdown, or a reload that starts new senders):
    /// a last try to record what it kept; what still cannot be written may
    /// be sent again, under the same delivery key. The sender's part of
    /// [`Counters::degraded`] goes with it.
    fn drop(&mut self) {
        let left = self
            .kept
            .drain(..)
            .filter(|c| c.apply(&self.outbox).is_err())
            .count();
        if left > 0 {
            tracing::error!(
                "{}: {left} delivery records could not be written before stopping; those deliveries may be sent again (same delivery key)",
                self.who
            );
        }
        self.counters.set_stuck(&self.who, None);
    }
}

/// A failed attempt of `ids`: the change to write, and whether the item
/// is given up.
fn failure(ids: &[i64], attempts: u32, limit: u32, f: &Failure, what: &str) -> Unsaved {
    let (give_up, why) = match f {
        Failure::Refused(w) => (true, w.as_str()),
        Failure::Retry(w) => (limit != 0 && attempts + 1 >= limit, w.as_str()),
    };
    if give_up {
        tracing::error!("{what}: {why}; set aside after {} attempts", attempts + 1);
    }
    Unsaved::Failed {
        ids: ids.to_vec(),
        next_try: now() + backoff(attempts),
        give_up,
        why: why.to_string(),
    }
}

/// Delivers webhook items until stopped. Each integration's items go in
/// the order they were queued: when one fails and must be retried, the
/// items behind it wait with it (the receiver is most likely down); an item
/// the receiver refuses for good is set aside and the next one goes.
pub async fn run_hooks(
    outbox: Arc<Outbox>,
    hooks: Vec<Integration>,
    wake: Wake,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    if hooks.is_empty() {
        return;
    }
    let poster = match Poster::new() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("webhooks disabled: {e}");
            return;
        }
    };
    let channels: Vec<String> = hooks.iter().map(hook_channel).collect();
    let mut outages: Vec<Outage> = hooks
        .iter()
        .map(|h| Outage::new(format!("integration {}", h.name)))
        .collect();
    let who = match hooks.as_slice() {
        [one] => format!("integration {}", one.name),
        _ => "webhooks".to_string(),
    };
    let mut journal = Journal::new(who, &outbox, &counters);
    // Items recorded as sent and not yet removed.
    let mut unpurged = false;
    loop {
        if !journal.flush() {
            let wait = journal.outage.wait().unwrap_or(Duration::from_secs(1));
            if !sleep_unless_stopped(wait, &mut stop).await {
                return;
            }
            continue;
        }
        let mut busy = false;
        let mut poll = Duration::from_secs(1);
        'hooks: for ((h, channel), outage) in hooks.iter().zip(&channels).zip(&mut outages) {
            if let Some(w) = outage.wait() {
                // Down: nothing is read until the backoff is over.
                poll = poll.min(w);
                continue;
            }
            let items = match outbox.ready(channel, now(), 100) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("{e}");
                    continue;
                }
            };
            for it in items {
                busy = true;
                let key = outbox.delivery_key(it.id);
                let what = format!("integration {}", h.name);
                match poster.post(h, &key, it.body).await {
                    Ok(()) => {
                        counters.sent.fetch_add(1, Relaxed);
                        counters.succeeded(channel);
                        outage.ok();
                        // Recorded before the next one is sent.
                        journal.write(Unsaved::Sent(it.id));
                        unpurged = true;
                    }
                    Err(f) => {
                        counters.failures.fetch_add(1, Relaxed);
                        let change = failure(&[it.id], it.attempts, h.max_attempts, &f, &what);
                        journal.write(change);
                        if let Failure::Retry(why) = &f {
                            // The items behind it wait with it.
                            outage.failed(why, it.attempts);
                            break;
                        }
                    }
                }
                if journal.blocked() {
                    break 'hooks;
                }
                if *stop.borrow() {
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
        if unpurged {
            journal.write(Unsaved::Purge);
            unpurged = false;
        }
        if (!busy || journal.blocked()) && !pause(&wake, &mut stop, poll).await {
            return;
        }
    }
}

/// One email item as queued by the router.
struct Queued<'a> {
    id: i64,
    attempts: u32,
    batch: Option<i64>,
    to: Vec<String>,
    alone: bool,
    alert: Alert<'a>,
}

/// An email item's body (see `Router::route`).
#[derive(serde::Deserialize)]
struct MailItem<'a> {
    to: Vec<String>,
    #[serde(default)]
    alone: bool,
    #[serde(borrow)]
    alert: &'a serde_json::value::RawValue,
}

fn decode(it: &Item) -> Option<Queued<'_>> {
    let m: MailItem = serde_json::from_slice(&it.body).ok()?;
    Some(Queued {
        id: it.id,
        attempts: it.attempts,
        batch: it.batch,
        to: m.to,
        alone: m.alone,
        alert: Alert::parse(m.alert.get().as_bytes()).ok()?,
    })
}

/// The local hour an epoch second falls in, as `YYYYMMDDHH`.
fn hour_of(secs: i64) -> String {
    let (y, m, d, h, ..) = engine::time::local(secs);
    format!("{y:04}{m:02}{d:02}{h:02}")
}

/// Delivers email items until stopped, as Wazuh's maild does: alerts that
/// arrive together share one mail (a mail leaves once no new alert came
/// for `group_window_secs`, at once for `do_not_delay`, alone for
/// `do_not_group`), at most [`MAIL_ALERTS_MAX`] alerts in a mail, and at
/// most `email_maxperhour` mails leave per hour; what is held back goes
/// when the hour turns, grouped the same way.
pub async fn run_email(
    outbox: Arc<Outbox>,
    settings: EmailSettings,
    wake: Wake,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    if !settings.enabled {
        return;
    }
    let mailer = match Mailer::new(&settings) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("email disabled: {e}");
            return;
        }
    };
    let window = settings.group_window_secs as i64;
    let mut outage = Outage::new(format!(
        "mail to {}:{}",
        settings.smtp_server, settings.smtp_port
    ));
    let mut journal = Journal::new("email".into(), &outbox, &counters);
    loop {
        if !journal.flush() {
            let wait = journal.outage.wait().unwrap_or(Duration::from_secs(1));
            if !sleep_unless_stopped(wait, &mut stop).await {
                return;
            }
            continue;
        }
        if let Some(w) = outage.wait() {
            // The server is down: nothing is read until the backoff is over.
            if !sleep_unless_stopped(w, &mut stop).await {
                return;
            }
            continue;
        }
        let t = now();
        let hour = hour_of(t);
        let mut sent: u32 = match outbox.meta("email_hour") {
            Ok(Some(v)) => match v.split_once(':') {
                Some((h, n)) if h == hour => n.parse().unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
        // Held until the hour turns (then they leave as one digest), or
        // waiting for more alerts to share the mail: decided on counts and
        // times alone, without reading the items. A full mail's worth
        // leaves at once: waiting could add nothing to it.
        let ready = sent < settings.max_per_hour
            && match outbox.due_span(&[EMAIL_CHANNEL, EMAIL_NOW_CHANNEL], t) {
                Ok(Some(span)) => {
                    span.urgent
                        || span.count >= MAIL_ALERTS_MAX as u64
                        || counters.finishing.load(Relaxed)
                        || t - span.newest >= window
                        || t - span.oldest >= 30
                }
                Ok(None) => false,
                Err(e) => {
                    tracing::error!("{e}");
                    false
                }
            };
        if !ready {
            if !pause(&wake, &mut stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        // A mail recorded before a crash leaves first, as it was; then the
        // oldest due items, at most a mail's worth (as maild's list).
        let channels = [EMAIL_CHANNEL, EMAIL_NOW_CHANNEL];
        let items: Vec<Item> = match outbox.recorded_batch(&channels, t) {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                let mut items: Vec<Item> = Vec::new();
                for channel in channels {
                    match outbox.due(channel, t, MAIL_ALERTS_MAX) {
                        Ok(v) => items.extend(v),
                        Err(e) => tracing::error!("{e}"),
                    }
                }
                items.sort_by_key(|it| it.id);
                items.truncate(MAIL_ALERTS_MAX);
                items
            }
            Err(e) => {
                tracing::error!("{e}");
                Vec::new()
            }
        };
        let items: Vec<Queued> = items
            .iter()
            .filter_map(|it| {
                let q = decode(it);
                if q.is_none() {
                    tracing::error!("email item {} is unreadable; set aside", it.id);
                    journal.write(Unsaved::Failed {
                        ids: vec![it.id],
                        next_try: t,
                        give_up: true,
                        why: "unreadable item".into(),
                    });
                }
                q
            })
            .collect();
        for mail in batches(items) {
            if journal.blocked() {
                break;
            }
            let ids: Vec<i64> = mail.iter().map(|q| q.id).collect();
            // The mail's items are recorded as one batch before it leaves.
            let batch = match mail[0].batch {
                Some(b) => b,
                None => {
                    if let Err(e) = outbox.set_batch(&ids, ids[0]) {
                        journal.stuck(&e);
                        break;
                    }
                    ids[0]
                }
            };
            let alerts: Vec<&Alert> = mail.iter().map(|q| &q.alert).collect();
            let (subject, body) = compose(&alerts, settings.ids_name.as_deref());
            let message_id = format!("<{}@trailwatch>", outbox.delivery_key(batch));
            match mailer.send(&mail[0].to, &subject, &body, &message_id).await {
                Ok(()) => {
                    sent += 1;
                    outage.ok();
                    counters.mails.fetch_add(1, Relaxed);
                    counters.sent.fetch_add(ids.len() as u64, Relaxed);
                    counters.succeeded(EMAIL_CHANNEL);
                    counters.succeeded(EMAIL_NOW_CHANNEL);
                    // Removed (with the hour's count) before the next send.
                    journal.write(Unsaved::Done(
                        ids,
                        vec![("email_hour", format!("{hour}:{sent}"))],
                    ));
                }
                Err(f) => {
                    counters.failures.fetch_add(1, Relaxed);
                    let attempts = mail.iter().map(|q| q.attempts).max().unwrap_or(0);
                    let what = format!("mail to {}", mail[0].to.join(", "));
                    journal.write(failure(&ids, attempts, 0, &f, &what));
                    if let Failure::Retry(why) = &f {
                        // The server is most likely down: every mail waits.
                        outage.failed(why, attempts);
                        break;
                    }
                }
            }
            if sent >= settings.max_per_hour {
                tracing::info!(
                    "email_maxperhour ({}) reached; further alerts wait for the next hour",
                    settings.max_per_hour
                );
                break;
            }
            if *stop.borrow() {
                return;
            }
        }
        if journal.blocked() && !pause(&wake, &mut stop, Duration::from_secs(1)).await {
            return;
        }
    }
}

/// Splits pending mail items into mails: the batches recorded before a
/// crash as they were, a `do_not_group` alert alone, the others one mail
/// per recipient list, in queue order.
fn batches(items: Vec<Queued<'_>>) -> Vec<Vec<Queued<'_>>> {
    let mut out: Vec<Vec<Queued>> = Vec::new();
    for q in items {
        if let Some(b) = q.batch {
            match out.iter_mut().find(|m| m[0].batch == Some(b)) {
                Some(m) => m.push(q),
                None => out.push(vec![q]),
            }
            continue;
        }
        if q.alone {
            out.push(vec![q]);
            continue;
        }
        match out
            .iter_mut()
            .find(|m| m[0].batch.is_none() && !m[0].alone && m[0].to == q.to)
        {
            Some(m) => m.push(q),
            None => out.push(vec![q]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        assert_eq!(
            (0..8).map(backoff).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 60, 60]
        );
        assert_eq!(backoff(1000), 60);
    }
}
