//! S3 faults, end to end: moto behind a seeded fault-injecting proxy
//! (`collector/tests/common/fault_proxy.rs`: 503, 500, resets, truncated
//! and short bodies, stalls). Each scenario checks that every event gives
//! exactly one alert (or output line), that nothing is marked done that was
//! not read whole (a later healthy pass brings the rest), that a silent
//! endpoint only costs the configured timeouts, and that SIGTERM ends `run`
//! within 10 s whatever S3 does.

mod common;
#[path = "../collector/tests/common/fault_proxy.rs"]
mod fault_proxy;
#[path = "../collector/tests/common/moto.rs"]
mod moto;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, http};
use fault_proxy::{Fault, FaultProxy, Plan};
use moto::{put, Moto};
use serde_json::Value;

const BUCKET: &str = "flaky-trail";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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
                "eventID": format!("ev-{file:04}-{i:05}"),
                "recipientAccountId": "111122223333",
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    gz.finish().unwrap()
}

fn key(f: usize) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/11/05/111122223333_CloudTrail_eu-west-1_20241105T09{:02}Z_{f:04}.json.gz",
        f % 60
    )
}

struct World {
    dir: tempfile::TempDir,
    _moto: Moto,
    proxy: FaultProxy,
}

impl World {
    /// moto with `sizes.len()` CloudTrail files of `sizes[i]` refused calls,
    /// behind a proxy following `plan`.
    fn new(sizes: &[usize], plan: Plan) -> World {
        let dir = tempfile::tempdir().unwrap();
        let moto = Moto::start();
        rt().block_on(async {
            let client = moto.client();
            client.create_bucket().bucket(BUCKET).send().await.unwrap();
            for (f, &n) in sizes.iter().enumerate() {
                put(&client, BUCKET, &key(f), denied_file(f, n)).await;
            }
        });
        let proxy = FaultProxy::start(&moto.endpoint, plan);
        World {
            dir,
            _moto: moto,
            proxy,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A configuration reading the bucket through the proxy, with `extra`
    /// tags in the wodle block.
    fn config(&self, extra: &str) -> PathBuf {
        self.config_full(extra, "")
    }

    /// [`World::config`] with `outside` blocks after the wodle.
    fn config_full(&self, extra: &str, outside: &str) -> PathBuf {
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
    <skip_on_error>yes</skip_on_error>
    {extra}
    <bucket type="cloudtrail">
      <name>{BUCKET}</name>
      <access_key>test</access_key>
      <secret_key>test</secret_key>
      <only_logs_after>2024-NOV-05</only_logs_after>
      <service_endpoint>{}</service_endpoint>
    </bucket>
  </wodle>
  {outside}
</ossec_config>
"#,
                self.proxy.endpoint
            ),
        )
        .unwrap();
        conf
    }

    fn command(&self, args: &[&str], attempts: Option<u32>) -> Command {
        // CHAOS_TRAILWATCH runs another build (to measure an older one).
        let exe = std::env::var_os("CHAOS_TRAILWATCH")
            .map(PathBuf::from)
            .unwrap_or_else(bin);
        let mut c = Command::new(exe);
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_RETRY_MODE")
            .env_remove("AWS_MAX_ATTEMPTS");
        if let Some(n) = attempts {
            c.env("AWS_MAX_ATTEMPTS", n.to_string());
        }
        c
    }

    /// `run -c conf` in the background, its standard error piped.
    fn spawn_run(&self, conf: &Path, attempts: Option<u32>) -> Child {
        self.command(&["run", "-c"], attempts)
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs to its end, failing the test after `limit` (a hang).
    fn finish(&self, c: &mut Command, limit: Duration) -> Output {
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_bounded(child, limit)
    }

    fn alerts(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path("logs/alerts/alerts.json")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// `collect --skipped`: the keys recorded as skipped, with their error.
    fn skipped(&self, conf: &Path) -> Vec<(String, String)> {
        let out = self
            .command(
                &["collect", "--skipped", "--state-dir", "state", "-c"],
                None,
            )
            .arg(conf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols[4].to_string(), cols[8].to_string())
            })
            .collect()
    }
}

/// Waits for a child with a bound (its output drained meanwhile): past
/// it, kills it and fails.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    use std::io::Read;
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap();
            panic!(
                "still running after {limit:?}; killed. stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Counts per eventID of alerts (all must be 80250).
fn per_event(alerts: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for a in alerts {
        assert_eq!(a["rule"]["id"], "80250");
        *seen
            .entry(a["data"]["aws"]["eventID"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    seen
}

fn exactly_once(seen: &BTreeMap<String, usize>, expected: usize) {
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
    assert_eq!(seen.len(), expected, "every event present");
}

/// 5 % each of 503, 500, resets, truncated and short bodies (the body
/// faults on GetObject only): one run reads everything, exactly once, and
/// leaves nothing skipped. The losses are printed before the checks
/// (`CHAOS_TRAILWATCH=<older build> cargo test ... -- --nocapture` measures
/// an older build the same way).
#[test]
fn a_flaky_endpoint_loses_nothing_and_repeats_nothing() {
    const FILES: usize = 40;
    const PER: usize = 25;
    let plan = Plan {
        seed: 12,
        per_mille: vec![
            (Fault::Unavailable, 50),
            (Fault::Internal, 50),
            (Fault::Reset, 50),
            (Fault::Truncate, 50),
            (Fault::Short, 50),
        ],
        ..Plan::default()
    };
    let w = World::new(&[PER; FILES], plan);
    let conf = w.config("");
    let out = w.finish(
        w.command(&["run", "--once", "-c"], None).arg(&conf),
        Duration::from_secs(120),
    );
    let faults = w.proxy.faults();
    let seen = per_event(&w.alerts());
    let files_whole = (0..FILES)
        .filter(|f| (0..PER).all(|i| seen.contains_key(&format!("ev-{f:04}-{i:05}"))))
        .count();
    eprintln!(
        "faults injected: {faults:?}; objects lost: {} of {FILES}; alerts lost: {} of {}; alerts written twice: {}",
        FILES - files_whole,
        FILES * PER - seen.len(),
        FILES * PER,
        seen.values().filter(|n| **n > 1).count()
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [Fault::Reset, Fault::Truncate, Fault::Short] {
        assert!(
            faults.get(&f).copied().unwrap_or(0) > 0,
            "no {f:?} injected"
        );
    }
    exactly_once(&seen, FILES * PER);
    let left = w.skipped(&conf);
    assert!(left.is_empty(), "nothing left skipped: {left:?}");
}

/// Every GetObject of object 2 stalls (no answer).
fn stall_object_2() -> Plan {
    Plan {
        seed: 1,
        per_mille: vec![(Fault::Stall, 1000)],
        objects_only: true,
        path_contains: Some("_0002.json.gz".into()),
        ..Plan::default()
    }
}

/// Timeouts of a second, in the wodle block.
const SHORT_TIMEOUTS: &str = "<connect_timeout>1s</connect_timeout><first_byte_timeout>1s</first_byte_timeout><idle_timeout>1s</idle_timeout>";

/// An endpoint that accepts GetObject and never answers: the call times
/// out (first byte), is tried again (2 attempts), then the object is
/// recorded as skipped, not done; the others are read. Once the endpoint
/// heals, the next pass reads it: every event exactly once.
#[test]
fn a_silent_endpoint_times_out_and_the_object_is_read_on_the_next_pass() {
    let plan = stall_object_2();
    let w = World::new(&[10; 5], plan);
    let conf = w.config(SHORT_TIMEOUTS);
    let out = w.finish(
        w.command(&["run", "--once", "-c"], Some(2)).arg(&conf),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("skipped"), "{err}");
    let seen = per_event(&w.alerts());
    exactly_once(&seen, 40);
    assert!(!seen.keys().any(|k| k.starts_with("ev-0002-")));
    let skipped = w.skipped(&conf);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].0, key(2));
    assert!(skipped[0].1.contains("timed out"), "{skipped:?}");
    assert_eq!(w.proxy.faults()[&Fault::Stall], 2, "two attempts");

    w.proxy.set_plan(Plan::none());
    let out = w.finish(
        w.command(&["run", "--once", "-c"], Some(2)).arg(&conf),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    exactly_once(&per_event(&w.alerts()), 50);
    let left = w.skipped(&conf);
    assert!(left.is_empty(), "nothing left skipped: {left:?}");
}

/// A streamed object whose body stops midway (idle timeout, one attempt):
/// the parts taken stay taken, the object is skipped, not done; the next
/// pass reads on after those parts. `collect` prints each event once over
/// both passes.
#[test]
fn a_stream_broken_midway_is_resumed_after_its_parts() {
    const EVENTS: usize = 12_000;
    let plan = Plan {
        seed: 3,
        per_mille: vec![(Fault::StallBody, 1000)],
        objects_only: true,
        first_n: Some(1),
        ..Plan::default()
    };
    let w = World::new(&[EVENTS], plan);
    let conf = w.config("<idle_timeout>1s</idle_timeout>");
    let collect = |w: &World| {
        let out = w.finish(
            w.command(
                &[
                    "collect",
                    "--once",
                    "--stream-above",
                    "0",
                    "--state-dir",
                    "state",
                    "-c",
                ],
                Some(1),
            )
            .arg(&conf),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let ids: Vec<String> = String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["aws"]["eventID"].as_str().unwrap().to_string()
            })
            .collect();
        (ids, stderr(&out))
    };
    let (first, err) = collect(&w);
    assert!(
        !first.is_empty() && first.len() < EVENTS,
        "a part before the stall ({} events): {err}",
        first.len()
    );
    assert_eq!(first.len() % 5000, 0, "whole parts only");
    assert_eq!(w.skipped(&conf).len(), 1);
    let (second, err) = collect(&w);
    assert!(err.contains("1 streams read on"), "{err}");
    let mut seen = BTreeMap::new();
    for id in first.iter().chain(&second) {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    exactly_once(&seen, EVENTS);
    let left = w.skipped(&conf);
    assert!(left.is_empty(), "nothing left skipped: {left:?}");
}

/// With S3 silent (default timeouts: a minute), SIGTERM still ends `run`
/// within 10 s; the object in hand is not marked, and the restart reads
/// every event exactly once.
#[test]
fn sigterm_ends_run_within_10_s_while_s3_is_silent() {
    let plan = Plan {
        seed: 5,
        per_mille: vec![(Fault::Stall, 1000)],
        objects_only: true,
        ..Plan::default()
    };
    let w = World::new(&[10; 3], plan);
    let conf = w.config("");
    let child = w.spawn_run(&conf, None);
    let start = Instant::now();
    while w.proxy.total_faults() == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "no GetObject");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_bounded(child, Duration::from_secs(10));
    let err = stderr(&out);
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(w.alerts().is_empty());

    w.proxy.set_plan(Plan::none());
    let out = w.finish(
        w.command(&["run", "--once", "-c"], None).arg(&conf),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    exactly_once(&per_event(&w.alerts()), 30);
}

/// issue 12: an object skipped after every attempt failed is named by
/// `/health` (503, its key and error) while `run` waits for its next pass.
#[test]
fn a_skipped_object_is_named_by_health() {
    let plan = stall_object_2();
    let w = World::new(&[10; 3], plan);
    let addr = format!("127.0.0.1:{}", free_port());
    let conf = w.config_full(
        SHORT_TIMEOUTS,
        &format!("<trailwatch><api><bind>{addr}</bind></api></trailwatch>"),
    );
    let child = w.spawn_run(&conf, Some(2));
    let (status, health) = wait_for_health(&addr, |v| v["s3_objects_skipped"] == 1);
    assert_eq!(status, 503, "{health}");
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("1 S3 objects skipped on error"),
        "{health}"
    );
    assert_eq!(health["s3_skipped"][0]["key"], key(2).as_str(), "{health}");
    assert!(
        health["s3_skipped"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{health}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_bounded(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A pass that hangs (S3 silent, default timeouts of a minute) with an
/// interval of a second: `/health` says the bucket has had no successful
/// pass within two intervals.
#[test]
fn a_source_without_a_successful_pass_within_two_intervals_is_reported() {
    let plan = Plan {
        seed: 6,
        per_mille: vec![(Fault::Stall, 1000)],
        objects_only: true,
        ..Plan::default()
    };
    let w = World::new(&[10; 2], plan);
    let addr = format!("127.0.0.1:{}", free_port());
    let conf = w.config_full(
        "",
        &format!("<trailwatch><api><bind>{addr}</bind></api></trailwatch>"),
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("<interval>1h</interval>", "<interval>1s</interval>"),
    )
    .unwrap();
    let child = w.spawn_run(&conf, None);
    let (status, health) = wait_for_health(&addr, |v| {
        v["reasons"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert_eq!(status, 503, "{health}");
    let why = health["reasons"][0].as_str().unwrap();
    assert!(
        why.starts_with(&format!("source bucket {BUCKET}: no successful pass for "))
            && why.ends_with("(interval 1 s)"),
        "{health}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_bounded(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `/health` until `want` holds (60 s at most): status and body.
fn wait_for_health(addr: &str, want: impl Fn(&Value) -> bool) -> (u16, Value) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "/health never as wanted"
        );
        std::thread::sleep(Duration::from_millis(100));
        if std::net::TcpStream::connect(addr).is_err() {
            continue;
        }
        let (status, body) = http(addr, "GET", "/health", None, "");
        let v: Value = serde_json::from_str(&body).unwrap();
        if want(&v) {
            return (status, v);
        }
    }
}
