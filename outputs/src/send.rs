//! The background senders: they drain the outbox, one task for webhooks
//! and one for email, retrying with exponential backoff. Both wake when new
//! items are committed ([`Wake`]) and stop when told to.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};

use crate::alert::Alert;
use crate::email::{compose, Mailer};
use crate::queue::{Item, Outbox};
use crate::route::{hook_channel, EMAIL_CHANNEL, EMAIL_NOW_CHANNEL};
use crate::settings::{EmailSettings, Integration};
use crate::webhook::{Failure, Poster};

/// Longest wait between two attempts of one item.
pub const MAX_BACKOFF_SECS: i64 = 300;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds to wait after the `attempts`-th failure: 1, 2, 4, ... 300.
pub fn backoff(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(20))
        .unwrap_or(i64::MAX)
        .min(MAX_BACKOFF_SECS)
}

/// Tells the senders that items were committed.
pub type Wake = Arc<Notify>;

/// Delivery counters, for logs and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub mails: std::sync::atomic::AtomicU64,
}

/// Starts the senders on `rt`: mail when `email` is set, and webhooks
/// (a sender without integrations ends at once).
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
    out.push(rt.spawn(run_hooks(
        outbox.clone(),
        hooks.to_vec(),
        wake.clone(),
        counters.clone(),
        stop.clone(),
    )));
    out
}

/// Waits until the queue is empty, `limit` has passed or `stop` is set;
/// `waiting` hears once how many deliveries are still pending after
/// `announce_after`. Returns how many are left.
pub async fn drain(
    outbox: &Outbox,
    mut stop: watch::Receiver<bool>,
    limit: Duration,
    announce_after: Duration,
    waiting: impl FnOnce(u64),
) -> u64 {
    let start = std::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        let pending = outbox.pending().unwrap_or(0);
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

/// Waits for new items, a second (due times are polled) or the stop
/// signal; returns false once stopped.
async fn pause(wake: &Notify, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = wake.notified() => true,
        _ = tokio::time::sleep(Duration::from_secs(1)) => true,
        _ = stop.changed() => !*stop.borrow(),
    }
}

/// Records a failed attempt of `ids`.
fn failed(outbox: &Outbox, what: &str, ids: &[i64], attempts: u32, limit: u32, f: &Failure) {
    let (give_up, why) = match f {
        Failure::Refused(w) => (true, w.as_str()),
        Failure::Retry(w) => (limit != 0 && attempts + 1 >= limit, w.as_str()),
    };
    let next = now() + backoff(attempts);
    if give_up {
        tracing::error!("{what}: {why}; set aside after {} attempts", attempts + 1);
    } else {
        tracing::warn!("{what}: {why}; trying again in {} s", backoff(attempts));
    }
    if let Err(e) = outbox.retry(ids, next, give_up, why) {
        tracing::error!("{e}");
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
    let channels: Vec<String> = hooks
        .iter()
        .enumerate()
        .map(|(i, h)| hook_channel(i, h))
        .collect();
    loop {
        let mut busy = false;
        for (h, channel) in hooks.iter().zip(&channels) {
            let items = match outbox.ready(channel, now(), 100) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("{e}");
                    continue;
                }
            };
            // Accepted items leave the queue together, one transaction per
            // round (a crash in between re-sends them: at least once).
            let mut accepted = Vec::new();
            for it in items {
                busy = true;
                match poster.post(h, it.body).await {
                    Ok(()) => {
                        counters.sent.fetch_add(1, Relaxed);
                        accepted.push(it.id);
                    }
                    Err(f) => {
                        counters.failures.fetch_add(1, Relaxed);
                        let what = format!("integration {}", h.name);
                        failed(&outbox, &what, &[it.id], it.attempts, h.max_attempts, &f);
                        if matches!(f, Failure::Retry(_)) {
                            // The items behind it wait with it.
                            break;
                        }
                    }
                }
                if *stop.borrow() {
                    break;
                }
            }
            if let Err(e) = outbox.done(&accepted) {
                tracing::error!("{e}");
            }
            if *stop.borrow() {
                return;
            }
        }
        if !busy && !pause(&wake, &mut stop).await {
            return;
        }
    }
}

/// One email item as queued by the router.
struct Queued {
    id: i64,
    attempts: u32,
    to: Vec<String>,
    alone: bool,
    alert: Alert,
}

fn decode(it: &Item) -> Option<Queued> {
    let v: serde_json::Value = serde_json::from_slice(&it.body).ok()?;
    Some(Queued {
        id: it.id,
        attempts: it.attempts,
        to: v["to"]
            .as_array()?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        alone: v["alone"].as_bool().unwrap_or(false),
        alert: Alert {
            json: v["alert"].clone(),
        },
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
/// `do_not_group`), and at most `email_maxperhour` mails leave per hour;
/// what is held back goes as one digest when the hour turns.
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
    loop {
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
        // times alone, without reading the items.
        let ready = sent < settings.max_per_hour
            && match outbox.due_span(&[EMAIL_CHANNEL, EMAIL_NOW_CHANNEL], t) {
                Ok(Some(span)) => span.urgent || t - span.newest >= window || t - span.oldest >= 30,
                Ok(None) => false,
                Err(e) => {
                    tracing::error!("{e}");
                    false
                }
            };
        if !ready {
            if !pause(&wake, &mut stop).await {
                return;
            }
            continue;
        }
        let mut items: Vec<Item> = Vec::new();
        for channel in [EMAIL_CHANNEL, EMAIL_NOW_CHANNEL] {
            match outbox.due(channel, t, 10_000) {
                Ok(v) => items.extend(v),
                Err(e) => tracing::error!("{e}"),
            }
        }
        items.sort_by_key(|it| it.id);
        let items: Vec<Queued> = items
            .iter()
            .filter_map(|it| {
                let q = decode(it);
                if q.is_none() {
                    tracing::error!("email item {} is unreadable; set aside", it.id);
                    let _ = outbox.retry(&[it.id], t, true, "unreadable item");
                }
                q
            })
            .collect();
        for mail in batches(items) {
            let alerts: Vec<Alert> = mail.iter().map(|q| q.alert.clone()).collect();
            let (subject, body) = compose(&alerts, settings.ids_name.as_deref());
            let ids: Vec<i64> = mail.iter().map(|q| q.id).collect();
            match mailer.send(&mail[0].to, &subject, &body).await {
                Ok(()) => {
                    sent += 1;
                    counters.mails.fetch_add(1, Relaxed);
                    counters.sent.fetch_add(ids.len() as u64, Relaxed);
                    let saved = outbox
                        .done(&ids)
                        .and_then(|()| outbox.set_meta("email_hour", &format!("{hour}:{sent}")));
                    if let Err(e) = saved {
                        tracing::error!("{e}");
                    }
                }
                Err(f) => {
                    counters.failures.fetch_add(1, Relaxed);
                    let attempts = mail.iter().map(|q| q.attempts).max().unwrap_or(0);
                    let what = format!("mail to {}", mail[0].to.join(", "));
                    failed(&outbox, &what, &ids, attempts, 0, &f);
                    break;
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
    }
}

/// Splits pending mail items into mails: a `do_not_group` alert alone,
/// the others one mail per recipient list, in queue order.
fn batches(items: Vec<Queued>) -> Vec<Vec<Queued>> {
    let mut out: Vec<Vec<Queued>> = Vec::new();
    for q in items {
        if q.alone {
            out.push(vec![q]);
            continue;
        }
        match out.iter_mut().find(|m| !m[0].alone && m[0].to == q.to) {
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
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(
            (0..10).map(backoff).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
        );
        assert_eq!(backoff(1000), 300);
    }
}
