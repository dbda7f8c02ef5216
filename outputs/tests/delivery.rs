//! Email and webhook delivery against real servers on loopback (aiosmtpd,
//! an axum receiver): grouping, email_maxperhour with the digest when the
//! hour turns, a backlog in mails of at most 96 alerts, a full mail that
//! leaves at once, an SMTP outage, webhook retries on 500/429 with the same
//! delivery key, a receiver that dies and comes back, and a full disk (a
//! small tmpfs) under the outbox.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::disk::SmallDisk;
use common::receiver::Receiver;
use common::smtp::{ServerTls, Smtp};
use outputs::queue::Outbox;
use outputs::route::Router;
use outputs::send::{run_email, run_hooks, Counters, Wake};
use outputs::settings::{EmailSettings, Integration, IntegrationKind, SmtpSecurity};
use tokio::sync::watch;

/// A sender task on its own runtime, stopped as the service stops it.
struct Sender {
    rt: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    /// Spawns the sender `make` builds around the stop signal.
    fn start<F>(make: impl FnOnce(watch::Receiver<bool>) -> F) -> Sender
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let task = rt.spawn(make(stop_rx));
        Sender { rt, stop, task }
    }

    /// Tells it to stop and waits until it has.
    fn stop(self) {
        self.stop.send(true).unwrap();
        self.rt.block_on(self.task).unwrap();
    }
}

fn alert(id: u32, n: usize) -> Vec<u8> {
    format!(
        r#"{{"timestamp":"2024-11-05T08:30:0{n}.000+0000","rule":{{"level":10,"description":"rule {id} alert {n}","id":"{id}","mail":true,"groups":["aws_cloudtrail"]}},"agent":{{"id":"000","name":"m"}},"manager":{{"name":"m"}},"id":"1730795400.{n}","full_log":"event {n}","location":"Wazuh-AWS"}}"#
    )
    .into_bytes()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Routes and commits alerts as the pipeline does.
fn queue(outbox: &Outbox, router: &Router, alerts: &[Vec<u8>]) {
    let mut items = Vec::new();
    for a in alerts {
        router.route(a, &mut items);
    }
    outbox.commit(&[], &items, &[], now()).unwrap();
}

fn alerts_in(mails: &[common::smtp::Mail]) -> Vec<String> {
    let mut v: Vec<String> = mails
        .iter()
        .flat_map(|m| {
            m.body
                .lines()
                .filter_map(|l| l.strip_prefix("Description: "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

fn settings(port: u16, max: u32) -> EmailSettings {
    let mut e = EmailSettings::new("127.0.0.1", "trailwatch@example.com");
    e.smtp_port = port;
    e.to = vec!["ops@example.com".into()];
    e.max_per_hour = max;
    e.group_window_secs = 1;
    e
}

#[test]
fn mails_are_grouped_capped_per_hour_and_the_rest_leaves_as_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let e = settings(smtp.port, 2);
    let router = Router::new(Some(&e), &[]).unwrap();
    let wake = Wake::default();
    let sender = Sender::start(|stop| {
        run_email(
            outbox.clone(),
            e,
            wake.clone(),
            Arc::new(Counters::default()),
            stop,
        )
    });

    queue(&outbox, &router, &[alert(1, 1), alert(1, 2), alert(1, 3)]);
    let mails = smtp.wait_for(1);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[trailwatch] 3 alerts, highest level 10");
    assert_eq!(mails[0].to, "ops@example.com");
    let m = &mails[0];
    assert!(
        m.message_id.starts_with("<tw-") && m.message_id.ends_with("@trailwatch>"),
        "{:?}",
        m.headers
    );
    assert!(!m.header("Date").is_empty(), "{:?}", m.headers);
    assert_eq!(m.header("MIME-Version"), "1.0");
    assert_eq!(
        m.header("Content-Type").to_ascii_lowercase(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(m.header("Auto-Submitted"), "auto-generated");
    // The same mail through Python's standard parser, strict policy: no
    // defect, a Date it can read, the headers and body as sent.
    let py = smtp.python_parsed();
    assert_eq!(py.len(), 1);
    let p = &py[0];
    assert_eq!(p["defects"], serde_json::json!([]), "{p}");
    assert!(p["date"].is_string(), "{p}");
    assert_eq!(p["content_type"], "text/plain");
    assert_eq!(p["charset"], "utf-8");
    assert_eq!(p["headers"]["Message-ID"], m.message_id.as_str());
    assert_eq!(p["headers"]["MIME-Version"], "1.0");
    assert_eq!(p["headers"]["Subject"], m.subject.as_str());
    assert_eq!(
        p["body"].as_str().unwrap().replace("\r\n", "\n"),
        m.body,
        "the body as Python decodes it"
    );

    queue(&outbox, &router, &[alert(2, 4)]);
    let mails = smtp.wait_for(2);
    assert_eq!(
        mails[1].subject,
        "[trailwatch] Level 10 alert: rule 2 alert 4"
    );

    // The hour's two mails are spent: these wait.
    for n in 5..9 {
        queue(&outbox, &router, &[alert(3, n)]);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        smtp.mails().len(),
        2,
        "email_maxperhour holds further mails"
    );
    assert_eq!(outbox.pending().unwrap(), 4);

    // The hour turns (the counter's hour is now a past one): one digest.
    outbox.set_meta("email_hour", "1970010100:2").unwrap();
    let mails = smtp.wait_for(3);
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[2].subject, "[trailwatch] 4 alerts, highest level 10");
    assert_eq!(outbox.pending().unwrap(), 0);
    let expected: Vec<String> = [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (3, 6),
        (3, 7),
        (3, 8),
    ]
    .iter()
    .map(|(r, n)| format!("rule {r} alert {n}"))
    .collect();
    assert_eq!(alerts_in(&mails), expected, "every alert once");
    let ids: std::collections::BTreeSet<&str> =
        mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each mail its own Message-ID");
    sender.stop();
}

#[test]
fn a_backlog_leaves_in_mails_of_at_most_96_alerts_a_recorded_mail_first() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let e = settings(smtp.port, 100);
    let router = Router::new(Some(&e), &[]).unwrap();
    let alerts: Vec<Vec<u8>> = (1..=250).map(|n| alert(5, n)).collect();
    queue(&outbox, &router, &alerts);
    // A crash left a mail recorded (items 120..=122) but not sent: it
    // must leave first, alone, under its own key.
    let due = outbox.due("email", now() + 1, 1000).unwrap();
    assert_eq!(due.len(), 250);
    let recorded: Vec<i64> = due[119..122].iter().map(|i| i.id).collect();
    outbox.set_batch(&recorded, recorded[0]).unwrap();

    let sender = Sender::start(|stop| {
        run_email(
            outbox.clone(),
            e,
            Wake::default(),
            Arc::new(Counters::default()),
            stop,
        )
    });
    let mails = smtp.wait_for(4);
    std::thread::sleep(Duration::from_millis(500));
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), 4, "3 + 96 + 96 + 55 alerts: {mails_now:?}");
    let counts: Vec<usize> = mails
        .iter()
        .map(|m| m.body.matches("Description: ").count())
        .collect();
    assert_eq!(counts, [3, 96, 96, 55]);
    assert_eq!(
        mails[0].message_id,
        format!("<{}@trailwatch>", outbox.delivery_key(recorded[0])),
        "the recorded mail keeps its Message-ID"
    );
    assert_eq!(
        alerts_in(&mails[..1]),
        ["rule 5 alert 120", "rule 5 alert 121", "rule 5 alert 122"]
    );
    let mut expected: Vec<String> = (1..=250).map(|n| format!("rule 5 alert {n}")).collect();
    expected.sort();
    assert_eq!(alerts_in(&mails), expected, "every alert once");
    assert_eq!(outbox.pending().unwrap(), 0);
    sender.stop();
}

#[test]
fn a_full_mail_leaves_without_waiting_for_the_grouping_window() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let mut e = settings(smtp.port, 100);
    // Alerts keep arriving: a mail that is not full waits an hour for more.
    e.group_window_secs = 3600;
    let router = Router::new(Some(&e), &[]).unwrap();
    let alerts: Vec<Vec<u8>> = (1..=200).map(|n| alert(5, n)).collect();
    queue(&outbox, &router, &alerts);
    let counters = Arc::new(Counters::default());
    let sender =
        Sender::start(|stop| run_email(outbox.clone(), e, Wake::default(), counters.clone(), stop));
    let mails = smtp.wait_for(2);
    let counts: Vec<usize> = mails
        .iter()
        .map(|m| m.body.matches("Description: ").count())
        .collect();
    assert_eq!(counts, [96, 96], "two full mails leave at once");
    // The 8 left wait for more alerts to share their mail ...
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(smtp.mails().len(), 2, "a mail that is not full waits");
    assert_eq!(outbox.pending().unwrap(), 8);
    // ... until no more will come (`run --once` after its sources).
    counters
        .finishing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mails = smtp.wait_for(3);
    let mut expected: Vec<String> = (1..=200).map(|n| format!("rule 5 alert {n}")).collect();
    expected.sort();
    assert_eq!(alerts_in(&mails), expected, "every alert once");
    sender.stop();
}

#[test]
fn an_smtp_outage_delays_mail_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::stopped(dir.path());
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let e = settings(smtp.port, 100);
    let router = Router::new(Some(&e), &[]).unwrap();
    queue(&outbox, &router, &[alert(7, 1), alert(7, 2)]);
    let counters = Arc::new(Counters::default());
    let sender =
        Sender::start(|stop| run_email(outbox.clone(), e, Wake::default(), counters.clone(), stop));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(counters.failures.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(
        outbox.pending().unwrap(),
        2,
        "kept while the server is down"
    );
    smtp.resume();
    let mails = smtp.wait_for(1);
    assert_eq!(alerts_in(&mails), ["rule 7 alert 1", "rule 7 alert 2"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(smtp.mails().len(), 1, "nothing sent twice");
    assert_eq!(outbox.pending().unwrap(), 0);
    sender.stop();
}

fn hook(url: &str, kind: &str) -> Integration {
    Integration {
        name: kind.into(),
        kind: IntegrationKind::from_name(kind).unwrap(),
        hook_url: url.into(),
        api_key: Some("key-1".into()),
        level: None,
        rule_ids: vec![],
        groups: vec![],
        location: None,
        timeout_secs: 5,
        max_attempts: 0,
    }
}

#[test]
fn webhooks_retry_500_and_429_then_deliver_each_alert_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(&[500, 429]);
    let hooks = vec![
        hook(&format!("{}/custom", rx.url), "custom-siem"),
        hook(&format!("{}/slack", rx.url), "slack"),
        hook(&format!("{}/pd", rx.url), "pagerduty"),
    ];
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let router = Router::new(None, &hooks).unwrap();
    queue(&outbox, &router, &[alert(80255, 1), alert(80255, 2)]);
    let queued = outbox
        .ready(&outputs::route::hook_channel(&hooks[2]), now(), 10)
        .unwrap();
    assert_eq!(queued.len(), 2);
    assert!(
        !String::from_utf8_lossy(&queued[0].body).contains("key-1"),
        "the routing key is not stored with each item"
    );
    let sender = Sender::start(|stop| {
        run_hooks(
            outbox.clone(),
            hooks,
            Wake::default(),
            Arc::new(Counters::default()),
            stop,
        )
    });
    let custom = rx.wait_for("/custom", 2);
    let slack = rx.wait_for("/slack", 2);
    let pd = rx.wait_for("/pd", 2);
    sender.stop();

    // The first item is retried (the receiver's 500 hit the custom hook,
    // its 429 the Slack one) and the second waits behind it.
    let tries = |path: &str| -> Vec<(u16, String)> {
        rx.requests()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                let id = match v["id"].as_str() {
                    Some(id) => id.to_string(),
                    None => v["attachments"][0]["title"].as_str().unwrap().to_string(),
                };
                (r.status, id)
            })
            .collect()
    };
    let (a, b) = ("1730795400.1".to_string(), "1730795400.2".to_string());
    assert_eq!(tries("/custom"), [(500, a.clone()), (200, a), (200, b)]);
    // The retry carries the same delivery key; the next item another.
    let keys: Vec<String> = rx
        .requests()
        .iter()
        .filter(|r| r.path == "/custom")
        .map(|r| {
            assert!(r.idempotency_matches);
            r.delivery.clone().unwrap()
        })
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[1], keys[2]);
    let (a, b) = (
        "rule 80255 alert 1".to_string(),
        "rule 80255 alert 2".to_string(),
    );
    assert_eq!(tries("/slack"), [(429, a.clone()), (200, a), (200, b)]);
    let refused: Vec<u16> = rx
        .requests()
        .iter()
        .map(|r| r.status)
        .filter(|s| *s != 200)
        .collect();
    assert_eq!(refused, [500, 429]);
    let ids: Vec<String> = custom
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["1730795400.1", "1730795400.2"], "each once, in order");
    assert_eq!(custom[0].authorization.as_deref(), Some("Bearer key-1"));
    let s: serde_json::Value = serde_json::from_str(&slack[0].body).unwrap();
    assert_eq!(s["attachments"][0]["color"], "danger");
    assert_eq!(s["attachments"][0]["title"], "rule 80255 alert 1");
    let p: serde_json::Value = serde_json::from_str(&pd[0].body).unwrap();
    assert_eq!(p["routing_key"], "key-1");
    assert_eq!(p["dedup_key"].as_str(), pd[0].delivery.as_deref());
    assert_eq!(p["event_action"], "trigger");
    assert_eq!(p["payload"]["severity"], "error");
    assert_eq!(p["payload"]["custom_details"]["rule"]["id"], "80255");
    assert_eq!(outbox.pending().unwrap(), 0);
}

#[test]
fn a_webhook_refusing_the_content_sets_the_item_aside() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(&[400]);
    let hooks = vec![hook(&format!("{}/h", rx.url), "custom")];
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let router = Router::new(None, &hooks).unwrap();
    queue(&outbox, &router, &[alert(1, 1), alert(1, 2)]);
    let sender = Sender::start(|stop| {
        run_hooks(
            outbox.clone(),
            hooks,
            Wake::default(),
            Arc::new(Counters::default()),
            stop,
        )
    });
    let ok = rx.wait_for("/h", 1);
    sender.stop();
    assert_eq!(ok.len(), 1);
    let d = outbox.depths().unwrap();
    assert_eq!(
        d[0].1.failed, 1,
        "the refused item is kept aside, not retried: {d:?}"
    );
    assert_eq!(d[0].1.pending, 0);
}

/// Sends two alerts through a TLS server and checks they arrive.
fn mail_over_tls(server: ServerTls, security: SmtpSecurity) {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, cert) = Smtp::start_tls(dir.path(), server);
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let mut e = settings(smtp.port, 100);
    e.smtp_server = "localhost".into();
    e.security = security;
    e.ca_pem = Some(std::fs::read(cert).unwrap());
    let router = Router::new(Some(&e), &[]).unwrap();
    queue(&outbox, &router, &[alert(9, 1), alert(9, 2)]);
    let sender = Sender::start(|stop| {
        run_email(
            outbox.clone(),
            e,
            Wake::default(),
            Arc::new(Counters::default()),
            stop,
        )
    });
    let mails = smtp.wait_for(1);
    sender.stop();
    assert_eq!(alerts_in(&mails), ["rule 9 alert 1", "rule 9 alert 2"]);
    assert_eq!(outbox.pending().unwrap(), 0);
}

#[test]
fn mail_goes_over_starttls_with_a_private_ca() {
    mail_over_tls(ServerTls::StartTls, SmtpSecurity::StartTls);
}

#[test]
fn mail_goes_over_implicit_tls_with_a_private_ca() {
    mail_over_tls(ServerTls::Implicit, SmtpSecurity::Tls);
}

#[test]
fn a_server_requiring_starttls_refuses_plain_mail_and_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp, _) = Smtp::start_tls(dir.path(), ServerTls::StartTls);
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let e = settings(smtp.port, 100);
    let router = Router::new(Some(&e), &[]).unwrap();
    queue(&outbox, &router, &[alert(9, 1)]);
    let counters = Arc::new(Counters::default());
    let sender =
        Sender::start(|stop| run_email(outbox.clone(), e, Wake::default(), counters.clone(), stop));
    std::thread::sleep(Duration::from_millis(2500));
    sender.stop();
    assert!(smtp.mails().is_empty());
    assert!(counters.failures.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let d = outbox.depths().unwrap();
    assert_eq!(
        d.iter().map(|(_, d)| d.pending + d.failed).sum::<u64>(),
        1,
        "kept: {d:?}"
    );
}

/// Items sent to `/r` by key, in order: their alert ids.
fn posted_ids(rx: &Receiver, path: &str) -> (Vec<String>, usize) {
    let (once, repeats) = rx.accepted_by_key(path);
    let ids = once
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (ids, repeats)
}

#[test]
fn a_receiver_that_dies_and_comes_back_gets_every_item_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut rx = Receiver::start(&[]);
    let hooks = vec![hook(&format!("{}/r", rx.url), "custom")];
    let outbox = Arc::new(Outbox::open(&dir.path().join("state")).unwrap());
    let router = Router::new(None, &hooks).unwrap();
    let counters = Arc::new(Counters::default());
    let wake = Wake::default();
    let sender = Sender::start(|stop| {
        run_hooks(outbox.clone(), hooks, wake.clone(), counters.clone(), stop)
    });
    let first: Vec<Vec<u8>> = (0..5).map(|n| alert(1, n)).collect();
    queue(&outbox, &router, &first);
    wake.notify_one();
    assert_eq!(rx.wait_for("/r", 5).len(), 5);

    rx.die();
    let second: Vec<Vec<u8>> = (5..10).map(|n| alert(1, n)).collect();
    queue(&outbox, &router, &second);
    wake.notify_one();
    // Refused connections: the first attempt fails, then the channel
    // waits out its backoff (1 s, 2 s, ...) without a storm of attempts.
    std::thread::sleep(Duration::from_millis(3500));
    let failures = counters.failures.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=4).contains(&failures),
        "{failures} attempts while down"
    );
    assert_eq!(outbox.pending().unwrap(), 5);

    rx.come_back();
    let got = rx.wait_for("/r", 10);
    assert_eq!(got.len(), 10);
    std::thread::sleep(Duration::from_millis(500));
    sender.stop();
    let (ids, repeats) = posted_ids(&rx, "/r");
    let want: Vec<String> = (0..10).map(|n| format!("1730795400.{n}")).collect();
    assert_eq!(ids, want, "each once, in order");
    assert_eq!(repeats, 0, "nothing sent twice");
    assert_eq!(outbox.pending().unwrap(), 0);
}

#[test]
fn a_full_disk_stops_sending_without_repeats_until_the_queue_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), 1024);
    let rx = Receiver::start(&[]);
    let hooks = vec![hook(&format!("{}/r", rx.url), "custom")];
    let outbox = Arc::new(Outbox::open(&dir.path().join("disk/state")).unwrap());
    let router = Router::new(None, &hooks).unwrap();
    let alerts: Vec<Vec<u8>> = (0..20).map(|n| alert(1, n)).collect();
    queue(&outbox, &router, &alerts);
    let filler = disk.fill();
    let counters = Arc::new(Counters::default());
    let sender = Sender::start(|stop| {
        run_hooks(
            outbox.clone(),
            hooks,
            Wake::default(),
            counters.clone(),
            stop,
        )
    });
    // The first POST is accepted, its removal cannot be written: sending
    // stops (no storm of repeats) and the senders say why.
    assert_eq!(rx.wait_for("/r", 1).len(), 1);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rx.requests().len(), 1, "nothing more is sent meanwhile");
    let why = counters
        .degraded()
        .expect("degraded while the disk is full");
    assert!(
        why.contains("full") || why.contains("No space left"),
        "{why}"
    );

    std::fs::remove_file(filler).unwrap();
    let got = rx.wait_for("/r", 20);
    assert_eq!(got.len(), 20);
    std::thread::sleep(Duration::from_millis(500));
    sender.stop();
    let (ids, repeats) = posted_ids(&rx, "/r");
    let want: Vec<String> = (0..20).map(|n| format!("1730795400.{n}")).collect();
    assert_eq!(ids, want, "each once, in order");
    assert_eq!(repeats, 0);
    assert_eq!(counters.degraded(), None, "healthy again");
    assert_eq!(outbox.pending().unwrap(), 0);
    drop(outbox);
}
