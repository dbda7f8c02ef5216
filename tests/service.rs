//! `trailwatch run` end to end, against real servers on loopback: moto (S3)
//! holding the shipped sample trail, aiosmtpd (SMTP) and an axum webhook
//! receiver. Alerts reach alerts.json, mail and three webhooks with the
//! right content; outages wait and drain across a restart; `kill -9` in the
//! middle of a run leaves every alert in alerts.json exactly once; SIGTERM
//! stops cleanly; the HTTP API answers; bad configurations are refused.

mod common;
#[path = "../outputs/tests/common/disk.rs"]
mod disk;
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

use common::{bin, http, root};
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
        self.config_with("", extra)
    }

    /// [`World::config`] with `wodle_extra` inside the wodle block (another
    /// bucket).
    fn config_with(&self, wodle_extra: &str, extra: &str) -> PathBuf {
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
    </bucket>{wodle_extra}
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
    assert_eq!(
        out.status.code(),
        Some(2),
        "deliveries left: exit 2: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("stay queued for the next start"), "{err}");
    assert!(err.contains("HTTP 503"), "{err}");
    // One warning per outage (three webhooks, the mail server), not one
    // per item or attempt, though 38 webhook items and 32 mails wait.
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("WARNING") && l.contains("waiting and trying again"))
        .collect();
    assert_eq!(warnings.len(), 4, "{err}");
    for who in [
        "integration custom-siem",
        "integration slack",
        "integration pagerduty",
        "mail to 127.0.0.1",
    ] {
        assert_eq!(
            warnings.iter().filter(|l| l.contains(who)).count(),
            1,
            "{who}: {err}"
        );
    }
    assert!(rx.requests().len() >= 3, "each webhook was tried");
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
    let mut sends = BTreeMap::new();
    for m in &mails {
        *sends.entry(m.message_id.clone()).or_insert(0usize) += 1;
    }
    let mails_again: usize = sends.values().map(|n| n - 1).sum();
    println!(
        "kill -9 x{kills} ({during} during deliveries): {post_repeats} repeated POSTs, {mail_repeats} alerts mailed again \
         ({mails_again} of {} mails sent again, same Message-ID), of {total} alerts",
        sends.len()
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
    assert_eq!(mode("state/outputs.sent"), 0o600);
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

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Running(Child);

impl Running {
    /// `trailwatch run -c conf` in the background, logging to `run.log`.
    fn start(w: &World, conf: &Path) -> Running {
        let log = std::fs::File::create(w.path("run.log")).unwrap();
        Running(
            w.command(&["run", "-c"])
                .arg(conf)
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    /// SIGTERM, then the exit status (within 20 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let started = Instant::now();
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

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
        "trailwatch_source_up{source=\"bucket acme-trail\"} 1",
        "trailwatch_source_files_total{source=\"bucket acme-trail\"} 10",
        "trailwatch_source_events_total{source=\"bucket acme-trail\"} 66",
        "trailwatch_source_errors_total{source=\"bucket acme-trail\",kind=\"access_denied\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
    for series in [
        "trailwatch_source_lag_seconds{source=\"bucket acme-trail\"} ",
        "trailwatch_source_last_success_seconds{source=\"bucket acme-trail\"} ",
        "trailwatch_source_last_object_seconds{source=\"bucket acme-trail\"} ",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
    // Label values come from the configuration: no object key as a label.
    assert!(!metrics.contains("key=\""), "{metrics}");

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

    // The live page: the same token as the other routes.
    assert_eq!(http(&addr, "GET", "/", None, "").0, 401, "token required");
    let (status, page) = http(&addr, "GET", "/?level=10", Some("tok-1"), "");
    assert_eq!(status, 200);
    assert_eq!(common::browser::data_section(&page)["alerts"], 5);
    assert_eq!(http(&addr, "GET", "/?level=high", Some("tok-1"), "").0, 400);

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
    let status = run.terminate();
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
fn the_live_page_shows_the_alerts_written_before_the_restart_in_a_browser() {
    use common::browser;
    let w = World::with_sample();
    let addr = format!("127.0.0.1:{}", smtp::free_port());
    let conf = w.config(&format!(
        "<trailwatch><api><bind>{addr}</bind></api></trailwatch>"
    ));
    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.alerts().len(), 50);
    // The restart: the bucket's files are done, so this run writes nothing.
    let _run = Running(
        w.command(&["run", "-c"])
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the API", || std::net::TcpStream::connect(&addr).is_ok());
    let page = browser::open(&format!("http://{addr}/"));
    let data = browser::data_section(&page.dom);
    assert_eq!(data["kind"], "live");
    assert_eq!(
        data["alerts"], 50,
        "the alerts of the run before the restart"
    );
    // One bar per rule with the replay summary's counts, one per hour of
    // the 24, adding up to every alert.
    let ids = browser::groups(&page.dom, "rule", "rule");
    let counts = browser::groups(&page.dom, "rule", "count");
    let got: std::collections::BTreeMap<String, usize> = ids
        .into_iter()
        .zip(counts.iter().map(|c| c.parse().unwrap()))
        .collect();
    assert_eq!(got, common::sample_trail_counts());
    let totals: Vec<u64> = browser::groups(&page.dom, "bucket", "total")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(totals.len(), 25, "24 hours in hourly buckets");
    assert_eq!(totals.iter().sum::<u64>(), 50);
    assert!(
        page.dom.contains("<form id=\"logtest\""),
        "the logtest form"
    );
    let (share, colours) = browser::ink(&page.png);
    assert!(
        share > 0.02 && colours > 8,
        "blank screenshot? {share} {colours}"
    );
    browser::assert_only_loopback(&page);
    browser::assert_no_remote_references(&page.dom);
    // Filters: by rule and by identity.
    let filtered = browser::open(&format!(
        "http://{addr}/?rule=98440&identity=arn:aws:iam::111122223333:user/kofi"
    ));
    assert_eq!(browser::data_section(&filtered.dom)["alerts"], 1);
    assert_eq!(browser::groups(&filtered.dom, "rule", "rule"), ["98440"]);
    // The logtest form posts to /logtest (an event given in the address is
    // submitted on load): the reply shows under the form.
    let event = std::fs::read_to_string(root().join("samples/sample-trail.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let tested = browser::open(&format!(
        "http://{addr}/?event={}",
        browser::query_value(&event)
    ));
    let out = &tested.dom[tested.dom.find("id=\"logtest-out\"").unwrap()..];
    let out = &out[..out.find("</pre>").unwrap()];
    assert!(out.contains("\"id\": \"98755\""), "{out}");
    assert!(
        tested.requested.iter().any(|u| u.ends_with("/logtest")),
        "{:?}",
        tested.requested
    );
    browser::assert_only_loopback(&tested);
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

/// Idle and half-sent connections cannot pin the service: at most
/// `MAX_CONNECTIONS` (128) are held at once, each must send its headers within
/// 10 s (idle keep-alive included), and `/health` answers again once they
/// are gone.
#[test]
fn the_http_api_bounds_idle_and_slow_connections() {
    let w = World::with_sample();
    let port = smtp::free_port();
    let addr = format!("127.0.0.1:{port}");
    let conf = w.config(&format!(
        "<trailwatch><api><bind>{addr}</bind></api></trailwatch>"
    ));
    let run = Running(w.command(&["run", "-c"]).arg(&conf).spawn().unwrap());
    wait_until("the API", || std::net::TcpStream::connect(&addr).is_ok());
    let pid = run.0.id();
    let sockets = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    };
    let before = sockets();
    let mut idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // A client that starts a request and never finishes its headers.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let held = sockets() - before.min(sockets());
    assert!(
        held <= 128,
        "{held} client connections held open (limit 128)"
    );
    assert!(held >= 100, "only {held} connections accepted");
    // The first idle connection is closed by the server (end of file).
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = first
        .read(&mut buf)
        .expect("closed by the server, not timed out");
    assert_eq!(n, 0, "an idle connection gets no answer, only closed");
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the half-sent request is ended by the server");
    drop(idle);
    wait_until("/health after the idle clients", || {
        http(&addr, "GET", "/health", None, "").0 == 200
    });
}

/// The `<trailwatch><api>` block on a free loopback port, and its address.
fn api_block() -> (String, String) {
    let addr = format!("127.0.0.1:{}", smtp::free_port());
    (
        format!("<trailwatch><api><bind>{addr}</bind></api></trailwatch>\n"),
        addr,
    )
}

/// An `<integration>` posting to `url`.
fn hook(name: &str, url: &str, filter: &str) -> String {
    format!(
        "  <integration><name>{name}</name><hook_url>{url}</hook_url>{filter}<alert_format>json</alert_format></integration>\n"
    )
}

/// Waits until `/health` answers and `want` holds; its status and body.
fn wait_for_health(addr: &str, want: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    wait_until("the API", || std::net::TcpStream::connect(addr).is_ok());
    let mut last = (0, Value::Null);
    wait_until("the health wanted", || {
        let (status, body) = http(addr, "GET", "/health", None, "");
        last = (status, serde_json::from_str(&body).unwrap());
        want(last.0, &last.1)
    });
    last
}

fn reasons(health: &Value) -> Vec<String> {
    health["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn run_log(w: &World) -> String {
    std::fs::read_to_string(w.path("run.log")).unwrap_or_default()
}

#[test]
fn health_is_503_naming_a_bucket_that_answers_403() {
    let w = World::with_sample();
    // moto's IAM checks on: the test keys belong to no account.
    w.moto.set_auth(true);
    let (api, addr) = api_block();
    let conf = w.config(&api);
    let mut run = Running::start(&w, &conf);
    let source = format!("bucket {BUCKET}");
    let (status, health) = wait_for_health(&addr, |_, v| !v["sources"][&source]["error"].is_null());
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    let why = reasons(&health);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with(&format!("source {source}: the last pass failed: "))
            && why[0].contains("403"),
        "{why:?}"
    );
    let (_, metrics) = http(&addr, "GET", "/metrics", None, "");
    for line in [
        format!("trailwatch_source_up{{source=\"{source}\"}} 0"),
        format!("trailwatch_source_errors_total{{source=\"{source}\",kind=\"access_denied\"}} 1"),
        format!("trailwatch_source_errors_total{{source=\"{source}\",kind=\"other\"}} 0"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from\n{metrics}"
        );
    }
    assert_eq!(run.terminate().code(), Some(0), "{}", run_log(&w));
}

#[test]
fn set_aside_deliveries_make_health_503_until_queue_retry_sends_them() {
    let w = World::with_sample();
    // The first POST is refused for good (400): set aside.
    let rx = Receiver::start(&[400]);
    let (api, addr) = api_block();
    let conf = w.config(&format!(
        "{api}{}",
        hook("custom", &format!("{}/all", rx.url), "<level>3</level>")
    ));
    let mut run = Running::start(&w, &conf);
    let (status, health) = wait_for_health(&addr, |s, _| s == 503);
    assert_eq!(rx.wait_for("/all", 49).len(), 49);
    let why = reasons(&health);
    assert!(
        why.iter()
            .any(|r| r.starts_with("channel hook:custom@127.0.0.1:")
                && r.contains("1 deliveries set aside")),
        "{status} {why:?}"
    );
    let list = w
        .command(&["queue", "list", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    let row = text
        .lines()
        .find(|l| l.starts_with("hook:custom@"))
        .expect(&text);
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..4], ["configured", "0", "1"], "{text}");
    assert!(row.contains("HTTP 400"), "{row}");
    // Settled beside the running service: sent, and healthy again.
    let retry = w
        .command(&["queue", "retry", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(retry.status.code(), Some(0), "{}", stderr(&retry));
    assert!(String::from_utf8_lossy(&retry.stdout).contains("1 set-aside deliveries queued again"));
    assert_eq!(rx.wait_for("/all", 50).len(), 50);
    let (status, health) = wait_for_health(&addr, |s, _| s == 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(status, 200);
    let (once, repeats) = rx.accepted_by_key("/all");
    assert_eq!((once.len(), repeats), (50, 0));
    let again = w
        .command(&["queue", "retry", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "nothing left to retry");
    assert_eq!(run.terminate().code(), Some(0), "{}", run_log(&w));
}

/// Items queued by an older trailwatch (channels by position) are renamed
/// on open; then the integrations are reordered, one renamed and one
/// removed: the reordered one's deliveries go out, the others are
/// reported once and kept, and `queue retry` / `queue drop` settle them.
/// Every alert reaches each webhook exactly once by delivery key.
#[test]
fn queued_deliveries_follow_their_integration_through_reorder_rename_and_removal() {
    let w = World::with_sample();
    let rx = Receiver::start(&[]);
    rx.set_down(true);
    let url = |p: &str| format!("{}/{p}", rx.url);
    let a = hook("custom-a", &url("a"), "<level>3</level>");
    let b = hook("custom-b", &url("b"), "<level>3</level>");
    let s = hook("slack", &url("s"), "<rule_id>80255</rule_id>");
    let conf = w.config(&format!("{a}{b}{s}"));
    let out = w.run_once(&conf, &["--drain-timeout", "1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "deliveries left: {}",
        stderr(&out)
    );
    // As an older trailwatch queued them: by position.
    let db = w.path("state/outputs.db");
    let py = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             [c.execute('UPDATE outbox SET channel=? WHERE channel LIKE ?', (f'hook:{i}:{n}', f'hook:{n}@%')) \
              for i,n in enumerate(['custom-a','custom-b','slack'])]; c.commit()",
        )
        .arg(&db)
        .status()
        .unwrap();
    assert!(py.success());
    let out = w.run_once(&conf, &["--drain-timeout", "1"]);
    let err = stderr(&out);
    assert!(
        err.contains(
            "INFO: 101 queued webhook deliveries now keyed by integration and destination"
        ),
        "{err}"
    );
    assert!(!err.contains("no longer has"), "{err}");

    // custom-b moves first, custom-a is renamed (same URL), slack removed.
    rx.set_down(false);
    let a2 = hook("custom-a2", &url("a"), "<level>3</level>");
    let conf = w.config(&format!("{b}{a2}"));
    let out = w.run_once(&conf, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "orphans left: {err}");
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no longer has"))
        .collect();
    assert_eq!(warned.len(), 1, "one warning: {err}");
    assert!(
        warned[0].contains("WARNING: 51 email/webhook deliveries"),
        "{}",
        warned[0]
    );
    let (got_b, repeats) = rx.accepted_by_key("/b");
    assert_eq!(
        (got_b.len(), repeats),
        (50, 0),
        "the reordered integration's deliveries"
    );
    assert!(rx.accepted("/a").is_empty() && rx.accepted("/s").is_empty());

    let queue = |args: &[&str]| {
        let out = w
            .command(&["queue"])
            .args(args)
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    };
    let (code, list, _) = queue(&["list"]);
    assert_eq!(code, Some(0));
    let channel = |prefix: &str| {
        let row = list
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {list}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], "orphaned", "{row}");
        (cols[0].to_string(), cols[2].to_string())
    };
    let (old_a, pending_a) = channel("hook:custom-a@");
    let (old_s, pending_s) = channel("hook:slack@");
    assert_eq!(
        (pending_a.as_str(), pending_s.as_str()),
        ("50", "1"),
        "{list}"
    );
    let (code, moved, err) = queue(&["retry", &old_a]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        moved.starts_with(&format!(
            "50 deliveries of {old_a} moved to hook:custom-a2@"
        )),
        "{moved}"
    );
    let (code, dropped, err) = queue(&["drop", &old_s]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(dropped.trim(), format!("1 deliveries of {old_s} dropped"));

    let out = w.run_once(&conf, &[]);
    assert_eq!(out.status.code(), Some(0), "all settled: {}", stderr(&out));
    let (got_a, repeats) = rx.accepted_by_key("/a");
    assert_eq!((got_a.len(), repeats), (50, 0));
    assert!(rx.accepted("/s").is_empty(), "dropped");
    let keys: BTreeSet<String> = got_a
        .iter()
        .chain(&got_b)
        .map(|r| r.delivery.clone().unwrap())
        .collect();
    assert_eq!(keys.len(), 100, "no delivery under two keys");
    let (_, list, _) = queue(&["list"]);
    assert_eq!(list.lines().count(), 1, "only the header: {list}");
}

#[test]
fn sighup_reloads_a_good_configuration_and_keeps_the_running_one_on_a_bad_one() {
    let w = World::with_sample();
    const SECOND: &str = "acme-trail-2";
    rt().block_on(async {
        let c = w.moto.client();
        c.create_bucket().bucket(SECOND).send().await.unwrap();
        put(
            &c,
            SECOND,
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/11/05/111122223333_CloudTrail_eu-west-1_20241105T0900Z_0000.json.gz",
            denied_file(0, 3),
        )
        .await;
    });
    let rx = Receiver::start(&[]);
    rx.set_down(true);
    let (api, addr) = api_block();
    // More than 10 deliveries waiting is unhealthy.
    let api = api.replace("</bind>", "</bind><max_queued>10</max_queued>");
    let one = hook("custom-one", &format!("{}/one", rx.url), "<level>3</level>");
    let conf = w.config(&format!("{api}{one}"));
    let mut run = Running::start(&w, &conf);
    let (status, health) = wait_for_health(&addr, |_, v| v["alerts"] == 50);
    let piling = "50 deliveries waiting, above <max_queued> 10";
    assert_eq!((status, reasons(&health)), (503, vec![piling.to_string()]));

    // A bad configuration: refused, said, and the running one kept.
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace("<level>3</level>", "<level>high</level>"),
    )
    .unwrap();
    run.signal(libc::SIGHUP);
    wait_until("the refusal", || {
        run_log(&w).contains("SIGHUP: configuration not reloaded")
    });
    let log = run_log(&w);
    assert!(
        log.contains("ERROR: SIGHUP: configuration not reloaded, the running one is kept: ")
            && log.contains("trailwatch.conf:19: <level>: 'high' is not a number"),
        "{log}"
    );
    assert!(run.0.try_wait().unwrap().is_none(), "still running");
    let (_, health) = wait_for_health(&addr, |_, _| true);
    assert_eq!(reasons(&health), [piling], "the running configuration's");

    // A good one: a second bucket and a second webhook; the queue of the
    // first webhook (waiting while its receiver was down) is kept.
    let second = format!(
        "\n    <bucket type=\"cloudtrail\">\n      <name>{SECOND}</name>\n      <access_key>test</access_key>\n      <secret_key>test</secret_key>\n      <only_logs_after>2024-NOV-05</only_logs_after>\n      <service_endpoint>{}</service_endpoint>\n    </bucket>",
        w.moto.endpoint
    );
    let two = hook(
        "custom-two",
        &format!("{}/two", rx.url),
        "<rule_id>80250</rule_id>",
    );
    w.config_with(&second, &format!("{api}{one}{two}"));
    rx.set_down(false);
    run.signal(libc::SIGHUP);
    let (_, health) = wait_for_health(&addr, |_, v| v["alerts"] == 53);
    assert!(
        run_log(&w)
            .contains("INFO: SIGHUP: configuration reloaded: 2 sources, 2 delivery channels"),
        "{}",
        run_log(&w)
    );
    assert_eq!(
        health["sources"][format!("bucket {SECOND}")]["events"],
        3,
        "{health}"
    );
    assert_eq!(rx.wait_for("/one", 53).len(), 53);
    assert_eq!(rx.wait_for("/two", 3).len(), 3);
    let (one_got, repeats) = rx.accepted_by_key("/one");
    assert_eq!(
        (one_got.len(), repeats),
        (53, 0),
        "queued before the reload, sent after it, once"
    );
    let (two_got, repeats) = rx.accepted_by_key("/two");
    assert_eq!((two_got.len(), repeats), (3, 0));
    wait_for_health(&addr, |s, _| s == 200);
    assert_eq!(run.terminate().code(), Some(0), "{}", run_log(&w));
}

/// issue 12: a full state disk stops deliveries (nothing sent again) and
/// `/health` says so; once there is room they resume, each alert once.
#[test]
fn a_full_state_disk_makes_health_503_until_there_is_room_again() {
    let w = World::with_sample();
    let disk = disk::SmallDisk::mount(&w.path("state"), 2048);
    let rx = Receiver::start(&[]);
    rx.set_down(true);
    let (api, addr) = api_block();
    let conf = w.config(&format!(
        "{api}{}",
        hook("custom", &format!("{}/all", rx.url), "<level>3</level>")
    ));
    let mut run = Running::start(&w, &conf);
    wait_for_health(&addr, |_, v| v["alerts"] == 50);
    let filler = disk.fill();
    let (status, health) = wait_for_health(&addr, |_, v| {
        reasons(v)
            .iter()
            .any(|r| r.starts_with("deliveries stopped: "))
    });
    assert_eq!(status, 503);
    assert!(
        reasons(&health).iter().any(|r| r.contains("full")),
        "{health}"
    );
    std::fs::remove_file(filler).unwrap();
    rx.set_down(false);
    assert_eq!(rx.wait_for("/all", 50).len(), 50);
    let (status, health) = wait_for_health(&addr, |s, _| s == 200);
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    let (got, repeats) = rx.accepted_by_key("/all");
    assert_eq!((got.len(), repeats), (50, 0));
    assert_eq!(run.terminate().code(), Some(0), "{}", run_log(&w));
}
