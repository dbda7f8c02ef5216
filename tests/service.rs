//! `trailwatch run` end to end, against real servers on loopback: moto (S3)
//! holding the shipped sample trail, aiosmtpd (SMTP) and an axum webhook
//! receiver. Alerts reach alerts.json, mail and three webhooks with the
//! right content; outages wait and drain across a restart; `kill -9` in the
//! middle of a run leaves every alert in alerts.json exactly once; SIGTERM
//! stops cleanly; the HTTP API answers; bad configurations are refused.

mod common;
#[path = "../collector/tests/common/moto.rs"]
mod moto;
#[path = "../outputs/tests/common/receiver.rs"]
mod receiver;
#[path = "../outputs/tests/common/smtp.rs"]
mod smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, root};
use moto::{put, upload_dir, Moto};
use receiver::Receiver;
use serde_json::Value;
use smtp::Smtp;

const BUCKET: &str = "acme-trail";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Test directories and servers.
struct World {
    dir: tempfile::TempDir,
    moto: Moto,
}

impl World {
    /// moto with the shipped sample trail in a bucket.
    fn with_sample() -> World {
        let dir = tempfile::tempdir().unwrap();
        let moto = Moto::start();
        let n = rt().block_on(upload_dir(
            &moto.client(),
            BUCKET,
            &root().join("samples/trail"),
            &[],
        ));
        assert_eq!(n, 10);
        World { dir, moto }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Writes a configuration: the bucket, directories, and `extra` blocks.
    fn config(&self, extra: &str) -> PathBuf {
        let conf = self.path("trailwatch.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<ossec_config>
  <trailwatch>
    <logs_dir>logs</logs_dir>
    <state_dir>state</state_dir>
    <manager_name>test-manager</manager_name>
  </trailwatch>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>1h</interval>
    <bucket type="cloudtrail">
      <name>{BUCKET}</name>
      <access_key>test</access_key>
      <secret_key>test</secret_key>
      <only_logs_after>2024-NOV-05</only_logs_after>
      <service_endpoint>{}</service_endpoint>
    </bucket>
  </wodle>
{extra}
</ossec_config>
"#,
                self.moto.endpoint
            ),
        )
        .unwrap();
        conf
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE");
        c
    }

    fn run_once(&self, conf: &Path, extra: &[&str]) -> Output {
        self.command(&["run", "--once", "-c"])
            .arg(conf)
            .args(extra)
            .output()
            .unwrap()
    }

    fn alerts(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path("logs/alerts/alerts.json")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn rule_id(a: &Value) -> &str {
    a["rule"]["id"].as_str().unwrap()
}

/// `Description:` lines of mails, i.e. one per mailed alert.
fn mailed(mails: &[smtp::Mail]) -> Vec<String> {
    mails
        .iter()
        .flat_map(|m| {
            m.body
                .lines()
                .filter_map(|l| l.strip_prefix("Rule: "))
                .map(|r| r.split(' ').next().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn outputs_block(smtp_port: u16, hooks: &str) -> String {
    format!(
        r#"  <alerts>
    <log_alert_level>3</log_alert_level>
    <email_alert_level>5</email_alert_level>
  </alerts>
  <global>
    <email_notification>yes</email_notification>
    <smtp_server>127.0.0.1</smtp_server>
    <smtp_port>{smtp_port}</smtp_port>
    <email_from>trailwatch@example.com</email_from>
    <email_to>ops@example.com</email_to>
    <email_maxperhour>100</email_maxperhour>
  </global>
  <email_alerts>
    <email_to>oncall@example.com</email_to>
    <rule_id>80255</rule_id>
    <do_not_group />
  </email_alerts>
  <integration>
    <name>custom-siem</name>
    <hook_url>{hooks}/siem</hook_url>
    <api_key>secret-1</api_key>
    <level>5</level>
    <alert_format>json</alert_format>
  </integration>
  <integration>
    <name>slack</name>
    <hook_url>{hooks}/slack</hook_url>
    <rule_id>80255</rule_id>
    <alert_format>json</alert_format>
  </integration>
  <integration>
    <name>pagerduty</name>
    <hook_url>{hooks}/pd</hook_url>
    <api_key>routing-1</api_key>
    <group>authentication_failed</group>
    <alert_format>json</alert_format>
  </integration>"#
    )
}

/// Mailed alerts at email_alert_level 5: every alert of the sample trail
/// but Wazuh's level 3 and 4 ones (80202, 80203, 80253).
const MAILED: usize = 32;

/// The rule ids of the mailed alerts, one entry per alert.
fn mailed_rules() -> Vec<String> {
    common::sample_trail_counts()
        .into_iter()
        .filter(|(r, _)| !["80202", "80203", "80253"].contains(&r.as_str()))
        .flat_map(|(r, n)| std::iter::repeat_n(r, n))
        .collect()
}

fn check_deliveries(w: &World, smtp: &Smtp, rx: &Receiver) {
    let mails = smtp.wait_for(2);
    let mut got = mailed(&mails);
    got.sort();
    let mut want = mailed_rules();
    assert_eq!(want.len(), MAILED);
    want.sort();
    assert_eq!(got, want, "every mail alert exactly once: {mails:#?}");
    let alone: Vec<&smtp::Mail> = mails
        .iter()
        .filter(|m| m.body.contains("Rule: 80255"))
        .collect();
    assert_eq!(alone.len(), 1);
    assert!(alone[0].to.contains("ops@example.com") && alone[0].to.contains("oncall@example.com"));
    assert!(
        alone[0]
            .subject
            .starts_with("[trailwatch] Level 10 alert: "),
        "{}",
        alone[0].subject
    );
    assert!(
        alone[0].body.contains("Source IP: 192.0.2.66"),
        "{}",
        alone[0].body
    );
    assert!(alone[0].body.contains("User: admin"), "{}", alone[0].body);
    assert!(
        alone[0].body.contains("Account: 111122223333"),
        "{}",
        alone[0].body
    );
    assert!(
        alone[0].body.contains("Region: eu-west-1"),
        "{}",
        alone[0].body
    );

    let siem = rx.wait_for("/siem", MAILED);
    let slack = rx.wait_for("/slack", 1);
    let pd = rx.wait_for("/pd", 5);
    assert_eq!(siem.len(), MAILED);
    assert_eq!(slack.len(), 1);
    assert_eq!(
        pd.len(),
        5,
        "exact group names: 80255 is authentication_failures"
    );
    // The custom webhook gets the alerts.json objects themselves.
    let alerts = w.alerts();
    let by_id: BTreeMap<&str, &Value> = alerts
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a))
        .collect();
    let mut ids = BTreeSet::new();
    for r in &siem {
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(
            &&v,
            by_id
                .get(id.as_str())
                .expect("posted alert is in alerts.json")
        );
        assert_eq!(r.authorization.as_deref(), Some("Bearer secret-1"));
        ids.insert(id);
    }
    assert_eq!(ids.len(), MAILED, "no alert posted twice");
    let s: Value = serde_json::from_str(&slack[0].body).unwrap();
    assert_eq!(s["attachments"][0]["color"], "danger");
    let p: Value = serde_json::from_str(&pd[0].body).unwrap();
    assert_eq!(p["routing_key"], "routing-1");
    assert_eq!(p["payload"]["custom_details"]["rule"]["id"], "80254");
}

#[test]
fn run_delivers_every_alert_to_alerts_json_mail_and_webhooks() {
    let w = World::with_sample();
    let smtp = Smtp::start(w.dir.path());
    let rx = Receiver::start(&[]);
    let conf = w.config(&outputs_block(smtp.port, &rx.url));
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "INFO: Executing Bucket Analysis: (Bucket: {BUCKET}, Path: , Type: cloudtrail, Profile: default)"
        )),
        "{err}"
    );
    let alerts = w.alerts();
    assert_eq!(alerts.len(), 50);
    assert_eq!(common::count_rules(&alerts), common::sample_trail_counts());
    assert_eq!(alerts[0]["manager"]["name"], "test-manager");
    // The same decisions as a replay of the trail, in the same order.
    let replay = Command::new(bin())
        .args(["replay", "-q", "--clock", "arrival"])
        .arg(root().join("samples/trail"))
        .output()
        .unwrap();
    let replayed: Vec<String> = String::from_utf8(replay.stdout)
        .unwrap()
        .lines()
        .map(|l| rule_id(&serde_json::from_str(l).unwrap()).to_string())
        .collect();
    let ran: Vec<String> = alerts.iter().map(|a| rule_id(a).to_string()).collect();
    assert_eq!(ran, replayed);
    check_deliveries(&w, &smtp, &rx);

    // A second pass finds nothing new and delivers nothing again.
    let before = (smtp.mails().len(), rx.requests().len());
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(w.alerts().len(), 50);
    assert_eq!((smtp.mails().len(), rx.requests().len()), before);
}

#[test]
fn outages_wait_in_the_queue_and_drain_after_a_restart() {
    let w = World::with_sample();
    let mut smtp = Smtp::stopped(w.dir.path());
    let rx = Receiver::start(&[]);
    rx.set_down(true);
    let conf = w.config(&outputs_block(smtp.port, &rx.url));
    let out = w.run_once(&conf, &["--drain-timeout", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("stay queued for the next start"), "{err}");
    assert!(err.contains("HTTP 503"), "{err}");
    assert_eq!(
        w.alerts().len(),
        50,
        "alerts.json does not wait for the others"
    );
    assert!(rx.requests().iter().all(|r| r.status == 503));

    smtp.resume();
    rx.set_down(false);
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_deliveries(&w, &smtp, &rx);
    assert_eq!(w.alerts().len(), 50);
}

/// A CloudTrail file of `n` refused calls (each alerts 80250 once).
fn denied_file(file: usize, n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "userName": "intern", "accountId": "111122223333"},
                "eventTime": format!("2024-11-05T09:{:02}:{:02}Z", (file / 60) % 60, file % 60),
                "eventSource": "iam.amazonaws.com",
                "eventName": "CreateUser",
                "awsRegion": "eu-west-1",
                "sourceIPAddress": "198.51.100.23",
                "errorCode": "AccessDenied",
                "eventID": format!("ev-{file:04}-{i:03}"),
                "recipientAccountId": "111122223333",
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    gz.finish().unwrap()
}

/// moto with `files` CloudTrail files of `per` refused calls each.
fn denied_world(files: usize, per: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    rt().block_on(async {
        let client = moto.client();
        let _ = client.create_bucket().bucket(BUCKET).send().await;
        for f in 0..files {
            let key = format!(
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/11/05/111122223333_CloudTrail_eu-west-1_20241105T{:02}{:02}Z_{f:04}.json.gz",
                9 + f / 60 % 10,
                f % 60
            );
            put(&client, BUCKET, &key, denied_file(f, per)).await;
        }
    });
    World { dir, moto }
}

/// Every alert is an 80250 and each event alerted exactly once.
fn each_event_once(alerts: &[Value], expected: usize) {
    let mut seen = BTreeMap::new();
    for a in alerts {
        assert_eq!(rule_id(a), "80250");
        *seen
            .entry(a["data"]["aws"]["eventID"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "alerts written twice: {twice:?}");
    assert_eq!(seen.len(), expected, "every alert present");
}

/// Waits until `n` alerts are written, while `child` runs.
fn wait_for_alerts(w: &World, child: &mut Child, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.alerts().len() < n {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no alerts after 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_in_the_middle_of_a_run_stops_cleanly_and_the_restart_goes_on() {
    const FILES: usize = 300;
    const PER_FILE: usize = 10;
    let w = denied_world(FILES, PER_FILE);
    let conf = w.config("");
    let mut child = w
        .command(&["run", "--concurrency", "1", "-c"])
        .arg(&conf)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_alerts(&w, &mut child, 5 * PER_FILE);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("INFO: SIGTERM received"), "{err}");
    assert!(
        err.contains(&format!(
            "INFO: bucket {BUCKET}: stopped before the end of the run"
        )),
        "{err}"
    );
    assert!(!err.contains("ERROR"), "{err}");
    let partial = w.alerts().len();
    assert!(
        partial < FILES * PER_FILE,
        "stopped mid-run ({partial} alerts)"
    );
    assert_eq!(partial % PER_FILE, 0, "whole files only");

    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    each_event_once(&w.alerts(), FILES * PER_FILE);
}

#[test]
fn kill_9_in_the_middle_of_a_run_then_restart_writes_every_alert_exactly_once() {
    const FILES: usize = 300;
    const PER_FILE: usize = 10;
    let w = denied_world(FILES, PER_FILE);
    let rx = Receiver::start(&[]);
    let conf = w.config(&format!(
        "<integration><name>custom</name><hook_url>{}/all</hook_url><level>3</level><alert_format>json</alert_format></integration>",
        rx.url
    ));
    let mut child = w
        .command(&["run", "--once", "--concurrency", "1", "-c"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some alerts are written but the run is far from done.
    wait_for_alerts(&w, &mut child, 5 * PER_FILE);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = w.alerts().len();
    assert!(
        partial < FILES * PER_FILE,
        "killed mid-run ({partial} alerts)"
    );

    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    each_event_once(&w.alerts(), FILES * PER_FILE);
    // The webhook queue drained: every alert was posted.
    let posted: BTreeSet<String> = rx
        .wait_for("/all", FILES * PER_FILE)
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            v["data"]["aws"]["eventID"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(posted.len(), FILES * PER_FILE);
}

/// Large objects are read as streams and taken in parts; a kill -9 between
/// parts loses nothing and repeats nothing: the parts already taken are
/// recognised after the restart and the rest of the object is read.
#[test]
fn kill_9_while_large_objects_stream_then_restart_writes_every_alert_exactly_once() {
    const FILES: usize = 3;
    const PER_FILE: usize = 12_000;
    let w = denied_world(FILES, PER_FILE);
    let conf = w.config("");
    let mut child = w
        .command(&["run", "--once", "--stream-above", "0", "-c"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first part of the first object is in; kill. (Complete lines are
    // counted: a part's alerts may be in the middle of being written.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read(w.path("logs/alerts/alerts.json")).unwrap_or_default();
        if text.iter().filter(|&&b| b == b'\n').count() >= 5000 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(Instant::now() < deadline, "no alerts after 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = std::fs::read(w.path("logs/alerts/alerts.json"))
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    assert!(
        partial < FILES * PER_FILE,
        "killed mid-run ({partial} alerts)"
    );
    let out = w.run_once(&conf, &["--stream-above", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    each_event_once(&w.alerts(), FILES * PER_FILE);
}

/// A small seeded generator (xorshift64*), for kill times.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The event ids (`ev-FFFF-III`) a text mentions, each once.
fn event_ids(text: &str) -> BTreeSet<String> {
    text.match_indices("ev-")
        .filter_map(|(i, _)| text.get(i..i + 11))
        .filter(|id| id[3..7].bytes().all(|b| b.is_ascii_digit()) && &id[7..8] == "-")
        .map(str::to_owned)
        .collect()
}

/// `kill -9` of `trailwatch run` at seeded random moments while a webhook
/// and mail (one per alert) are being delivered, then a run to the end:
/// every alert reaches the webhook and the mailbox exactly once once
/// repeats are recognised by their delivery key (`X-Trailwatch-Delivery`)
/// or `Message-ID`, and a repeat carries the same content. The repeats
/// themselves (an item accepted just before the kill) are counted and
/// printed. `KILL_TEST_KILLS` (8), `KILL_TEST_SEED` and `KILL_TEST_BIN`
/// (another build, for a before/after figure: then only the raw repeats
/// are counted) change the run.
#[test]
fn kill_9_during_deliveries_repeats_no_alert_by_key_or_message_id() {
    const FILES: usize = 40;
    const PER_FILE: usize = 10;
    let total = FILES * PER_FILE;
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let kills = env("KILL_TEST_KILLS", 8);
    let mut rng = Rng(env("KILL_TEST_SEED", 12).max(1));
    let other_bin = std::env::var_os("KILL_TEST_BIN");
    let w = denied_world(FILES, PER_FILE);
    let smtp = Smtp::start(w.dir.path());
    let rx = Receiver::start(&[]);
    // A receiver that takes a moment per POST, so kills land mid-delivery.
    rx.set_delay(Duration::from_millis(10));
    let conf = w.config(&format!(
        r#"  <global>
    <email_notification>yes</email_notification>
    <smtp_server>127.0.0.1</smtp_server>
    <smtp_port>{}</smtp_port>
    <email_from>trailwatch@example.com</email_from>
    <email_to>ops@example.com</email_to>
    <email_maxperhour>100000</email_maxperhour>
  </global>
  <alerts><email_alert_level>3</email_alert_level></alerts>
  <email_alerts>
    <email_to>oncall@example.com</email_to>
    <rule_id>80250</rule_id>
    <do_not_group />
    <do_not_delay />
  </email_alerts>
  <integration><name>custom</name><hook_url>{}/all</hook_url><level>3</level><alert_format>json</alert_format></integration>"#,
        smtp.port, rx.url
    ));
    let command = |args: &[&str]| {
        let mut c = Command::new(other_bin.clone().map(PathBuf::from).unwrap_or_else(bin));
        c.args(args)
            .current_dir(w.dir.path())
            .env("HOME", w.dir.path())
            .env_remove("AWS_PROFILE");
        c
    };
    let delivered = || rx.requests().len() + smtp.mails().len();
    let mut during = 0;
    for _ in 0..kills {
        let before = delivered();
        if before >= 2 * total {
            break;
        }
        let mut child = command(&["run", "-c"])
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until this run delivers, then kill at a random moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        while delivered() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if delivered() > before {
            during += 1;
        }
    }
    let out = command(&["run", "--once", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    each_event_once(&w.alerts(), total);
    rx.wait_for("/all", total);
    smtp.wait_for(total);
    std::thread::sleep(Duration::from_secs(1));
    let (posts, mails) = (rx.accepted("/all"), smtp.mails());

    // Raw repeats, by content: deliveries of an alert already delivered.
    let mut posted = BTreeMap::new();
    for r in &posts {
        let v: Value = serde_json::from_str(&r.body).unwrap();
        *posted
            .entry(v["data"]["aws"]["eventID"].as_str().unwrap().to_string())
            .or_insert(0usize) += 1;
    }
    let mut mailed = BTreeMap::new();
    for m in &mails {
        for id in event_ids(&m.body) {
            *mailed.entry(id).or_insert(0usize) += 1;
        }
    }
    assert_eq!(posted.len(), total, "every alert posted");
    assert_eq!(mailed.len(), total, "every alert mailed");
    let post_repeats: usize = posted.values().map(|n| n - 1).sum();
    let mail_repeats: usize = mailed.values().map(|n| n - 1).sum();
    println!(
        "kill -9 x{kills} ({during} during deliveries): {post_repeats} repeated POSTs, {mail_repeats} repeated mails, of {total} alerts"
    );
    if other_bin.is_some() {
        return;
    }

    // By key: each alert under exactly one key, a repeat only under the
    // same key with the same body.
    let mut by_key: BTreeMap<String, String> = BTreeMap::new();
    for r in &posts {
        assert!(r.idempotency_matches);
        let key = r.delivery.clone().expect("delivery key");
        let prev = by_key.entry(key).or_insert_with(|| r.body.clone());
        assert_eq!(*prev, r.body, "a repeat carries the same alert");
    }
    assert_eq!(
        by_key.len(),
        total,
        "one key per alert, none posted under two"
    );
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for m in &mails {
        assert!(m.message_id.starts_with("<tw-"), "{}", m.message_id);
        let prev = by_id
            .entry(m.message_id.clone())
            .or_insert_with(|| m.body.clone());
        assert_eq!(*prev, m.body, "a repeat carries the same alerts");
    }
    let mut once = BTreeMap::new();
    for body in by_id.values() {
        for id in event_ids(body) {
            *once.entry(id).or_insert(0usize) += 1;
        }
    }
    assert_eq!(once.len(), total);
    assert!(
        once.values().all(|n| *n == 1),
        "an alert mailed under two Message-IDs"
    );
    assert!(during > 0, "no kill landed during deliveries");
}

/// State and alerts are created private whatever the umask; check-config
/// and the logs show hook URLs without their path.
#[test]
fn files_are_private_under_umask_000_and_hook_urls_are_redacted() {
    let w = denied_world(2, 3);
    let smtp = Smtp::start(w.dir.path());
    let rx = Receiver::start(&[503]);
    let conf = w.config(&outputs_block(smtp.port, &format!("{}/T0SECRET", rx.url)));
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" run --once -c \"$1\"")
        .arg(bin())
        .arg(&conf)
        .current_dir(w.dir.path())
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(w.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("state"), 0o700);
    assert_eq!(mode("state/outputs.db"), 0o600);
    assert_eq!(mode("state/collector.db"), 0o600);
    assert_eq!(mode("logs/alerts/alerts.json"), 0o600);
    assert_eq!(mode("logs/alerts"), 0o700);
    let err = stderr(&out);
    assert!(err.contains("HTTP 503"), "{err}");
    assert!(!err.contains("T0SECRET"), "{err}");
    for f in ["state/outputs.db", "state/outputs.db-wal"] {
        let db = std::fs::read(w.path(f)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&db).contains("T0SECRET"),
            "{f} keeps no hook URL"
        );
    }
    let out = w.command(&["check-config"]).arg(&conf).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{}/<redacted>", rx.url)), "{text}");
    assert!(!text.contains("T0SECRET"), "{text}");
}

/// A minimal HTTP/1.1 client: (status, body).
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_http_api_answers_and_sigterm_stops_cleanly() {
    let w = World::with_sample();
    let port = smtp::free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::write(w.path("token"), "tok-1\n").unwrap();
    let conf = w.config(&format!(
        "<trailwatch><api><bind>{addr}</bind><token_file>token</token_file></api></trailwatch>"
    ));
    let mut run = Running(
        w.command(&["run", "-c"])
            .arg(&conf)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_until("the API", || std::net::TcpStream::connect(&addr).is_ok());
    wait_until("the first pass", || {
        let (_, body) = http(&addr, "GET", "/health", None, "");
        serde_json::from_str::<Value>(&body).is_ok_and(|v| v["alerts"] == 50)
    });
    let (status, body) = http(&addr, "GET", "/health", None, "");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "ok"
    );

    assert_eq!(
        http(&addr, "GET", "/metrics", None, "").0,
        401,
        "token required"
    );
    let (status, metrics) = http(&addr, "GET", "/metrics", Some("tok-1"), "");
    assert_eq!(status, 200);
    for line in [
        "trailwatch_events_total 66",
        "trailwatch_files_total 10",
        "trailwatch_alerts_total{rule_id=\"80255\",level=\"10\"} 1",
        "trailwatch_alerts_total{rule_id=\"80202\",level=\"3\"} 15",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
    assert!(
        metrics.contains(&format!(
            "trailwatch_source_lag_seconds{{source=\"{BUCKET}\"}}"
        )),
        "{metrics}"
    );

    let (status, body) = http(&addr, "GET", "/alerts?level=10", Some("tok-1"), "");
    assert_eq!(status, 200);
    let high: Vec<Value> = serde_json::from_str(&body).unwrap();
    // The console break-in and the attack: root sign-in without MFA, SSH
    // opened to the world, a key for another user, the trail stopped.
    let mut ids: Vec<&str> = high
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["80255", "98101", "98151", "98300", "98440"]);
    let (_, body) = http(&addr, "GET", "/alerts", Some("tok-1"), "");
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 50);

    // POST /logtest answers as `trailwatch logtest --json`.
    let event = std::fs::read_to_string(root().join("samples/sample-trail.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let req = serde_json::json!({"event": event, "location": "Wazuh-AWS"}).to_string();
    let (status, body) = http(&addr, "POST", "/logtest", Some("tok-1"), &req);
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let cli = common::run(
        &["logtest", "--json", "--location", "Wazuh-AWS", &event],
        b"",
    );
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        reply["data"]["output"]["rule"], cli["data"]["output"]["rule"],
        "{body}"
    );
    assert_eq!(reply["data"]["alert"], cli["data"]["alert"]);
    // A request that Wazuh's API would send over the logtest socket's
    // 65,535 bytes (190 bytes around this event with a token): analysisd's
    // error reply, and the session goes on.
    let token = reply["data"]["token"].as_str().unwrap();
    let sized = |n: usize| {
        serde_json::json!({"event": "a".repeat(n), "location": "Wazuh-AWS", "token": token})
            .to_string()
    };
    let (status, body) = http(&addr, "POST", "/logtest", Some("tok-1"), &sized(65_346));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body, engine::logtest::OVERSIZE_REPLY);
    let (status, body) = http(&addr, "POST", "/logtest", Some("tok-1"), &sized(65_345));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["token"], token);
    assert_eq!(
        v["data"]["output"]["full_log"].as_str().map(str::len),
        Some(65_345)
    );

    // SIGTERM: a clean stop.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = loop {
        if let Some(s) = run.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("INFO: SIGTERM received"), "{err}");
    assert!(err.contains("INFO: stopped"), "{err}");
    // Nothing is read twice after the restart.
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.alerts().len(), 50);
}

#[test]
fn bad_configurations_are_refused_with_file_line_and_tag() {
    let w = World::with_sample();
    let conf = w.config(
        "  <integration>\n    <name>slack</name>\n    <level>high</level>\n  </integration>",
    );
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("trailwatch.conf:20: <level>: 'high' is not a number from 0 to 16"),
        "{err}"
    );
    assert!(
        !w.path("logs").exists() && !w.path("state").exists(),
        "nothing started"
    );

    let conf = w.path("nowodle.conf");
    std::fs::write(
        &conf,
        "<ossec_config><global><jsonout_output>yes</jsonout_output></global></ossec_config>",
    )
    .unwrap();
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing to collect"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(root().join("samples/trailwatch.conf"))
        .env("TRAILWATCH_SMTP_PASSWORD", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.contains("configuration OK"), "{text}");
    assert!(
        text.contains(
            "integration            pagerduty -> https://events.pagerduty.com/v2/enqueue"
        ),
        "{text}"
    );
    let out = Command::new(bin())
        .args(["check-config"])
        .arg(root().join("samples/trailwatch.conf"))
        .env_remove("TRAILWATCH_SMTP_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "<smtp_password_env>: environment variable TRAILWATCH_SMTP_PASSWORD is not set"
        ),
        "{}",
        stderr(&out)
    );
}
