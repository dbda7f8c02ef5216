//! End-to-end throughput of `trailwatch run --once` against moto (S3) on
//! loopback with all three outputs on (alerts.json, mail to aiosmtpd,
//! webhooks to an axum receiver), and its peak memory; beside it, in the
//! same run: `trailwatch collect --once` on the same bucket (the collector
//! alone, the ceiling moto allows) and `trailwatch replay` of the same
//! objects from disk (no network).
//!
//! `cargo bench --bench service_run` (needs moto and aiosmtpd: run .ci/run
//! once). BENCH_OBJECTS and BENCH_RECORDS change the size (default 1,000
//! objects of 100 records); BENCH_PERF=1 records the run with
//! `perf record --call-graph dwarf` into /tmp/run.perf; BENCH_TRAIL_ONLY=DIR
//! only writes the generated trail to DIR.

#[path = "../collector/tests/common/moto.rs"]
mod moto;
#[path = "../outputs/tests/common/receiver.rs"]
mod receiver;
#[path = "../outputs/tests/common/smtp.rs"]
mod smtp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "bench-trail";
const ACCOUNT: &str = "111122223333";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One CloudTrail record: mostly watched API calls (80202), some calls
/// off the watch list (no alert), refused calls (80250), failed console
/// sign-ins (80254, and 80255 on bursts).
fn record(rng: &mut Rng, file: usize, i: usize) -> serde_json::Value {
    let roll = rng.next() % 100;
    let (name, source, extra) = match roll {
        0..=69 => ("RunInstances", "ec2.amazonaws.com", serde_json::json!({})),
        70..=89 => (
            "DescribeVolumes",
            "ec2.amazonaws.com",
            serde_json::json!({}),
        ),
        90..=97 => (
            "CreateUser",
            "iam.amazonaws.com",
            serde_json::json!({"errorCode": "AccessDenied", "errorMessage": "not authorized"}),
        ),
        _ => (
            "ConsoleLogin",
            "signin.amazonaws.com",
            serde_json::json!({"eventType": "AwsConsoleSignIn", "responseElements": {"ConsoleLogin": "Failure"}, "errorMessage": "Failed authentication"}),
        ),
    };
    let mut r = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::{ACCOUNT}:user/u{}", rng.next() % 50), "accountId": ACCOUNT, "userName": format!("u{}", rng.next() % 50)},
        "eventTime": format!("2024-11-05T{:02}:{:02}:{:02}Z", 8 + file / 600 % 10, file / 10 % 60, i % 60),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": format!("198.51.100.{}", rng.next() % 200),
        "userAgent": "aws-cli/2.15.0",
        "requestID": format!("{:032x}", rng.next()),
        "eventID": format!("{file:06}-{i:04}"),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
    });
    if let (Some(o), Some(e)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    r
}

/// Writes the trail under `dir` (S3 layout); returns the record count.
fn write_trail(dir: &Path, objects: usize, per: usize) -> usize {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let day = dir.join(format!("AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/2024/11/05"));
    std::fs::create_dir_all(&day).unwrap();
    for f in 0..objects {
        let records: Vec<_> = (0..per).map(|i| record(&mut rng, f, i)).collect();
        let body = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let name = format!(
            "{ACCOUNT}_CloudTrail_eu-west-1_20241105T{:02}{:02}Z_{f:06}.json.gz",
            8 + f / 600 % 10,
            f / 10 % 60
        );
        std::fs::write(day.join(name), gz.finish().unwrap()).unwrap();
    }
    objects * per
}

/// The peak resident memory of a live process (`VmHWM`, in KiB). Read
/// from /proc rather than from `wait4`'s `ru_maxrss`, which also counts the
/// memory of this bench process the child was forked from.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs a command to its end: (wall seconds, CPU seconds, peak RSS in MiB).
fn measure(mut cmd: Command) -> (f64, f64, f64) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut peak_kib = 0;
    loop {
        if let Some(k) = vm_hwm(pid) {
            peak_kib = peak_kib.max(k);
        }
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid as libc::pid_t {
            break;
        }
        assert_eq!(r, 0, "wait4");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed: {cmd:?}"
    );
    let wall = start.elapsed().as_secs_f64();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    std::mem::forget(child);
    (
        wall,
        tv(ru.ru_utime) + tv(ru.ru_stime),
        peak_kib as f64 / 1024.0,
    )
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trailwatch"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let objects = env_or("BENCH_OBJECTS", 1000);
    let per = env_or("BENCH_RECORDS", 100);
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    let events = write_trail(&trail, objects, per);
    if let Some(keep) = std::env::var_os("BENCH_TRAIL_ONLY") {
        // Only write the generated trail (to look at it or profile replay).
        let status = Command::new("cp")
            .arg("-r")
            .arg(&trail)
            .arg(&keep)
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    let moto = moto::Moto::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(moto::upload_dir(&moto.client(), BUCKET, &trail, &[]));
    eprintln!(
        "{objects} objects, {events} records uploaded to moto in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let smtp = smtp::Smtp::start(tmp.path());
    let rx = receiver::Receiver::start(&[]);
    let conf = tmp.path().join("bench.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<ossec_config>
  <trailwatch><logs_dir>logs</logs_dir><state_dir>state</state_dir></trailwatch>
  <wodle name="aws-s3">
    <bucket type="cloudtrail">
      <name>{BUCKET}</name>
      <access_key>test</access_key><secret_key>test</secret_key>
      <only_logs_after>2024-NOV-05</only_logs_after>
      <service_endpoint>{}</service_endpoint>
    </bucket>
  </wodle>
  <alerts><email_alert_level>10</email_alert_level></alerts>
  <global>
    <email_notification>yes</email_notification>
    <smtp_server>127.0.0.1</smtp_server><smtp_port>{}</smtp_port>
    <email_from>bench@example.com</email_from><email_to>ops@example.com</email_to>
    <email_maxperhour>1000</email_maxperhour>
  </global>
  <integration><name>custom</name><hook_url>{}/all</hook_url><level>5</level><alert_format>json</alert_format></integration>
  <integration><name>slack</name><hook_url>{}/slack</hook_url><level>10</level><alert_format>json</alert_format></integration>
</ossec_config>
"#,
            moto.endpoint, smtp.port, rx.url, rx.url
        ),
    )
    .unwrap();
    let base = |sub: &str| {
        let mut c = Command::new(bin());
        c.current_dir(tmp.path())
            .env("HOME", tmp.path())
            .env_remove("AWS_PROFILE");
        c.arg(sub);
        c
    };

    // The collector alone: what moto lets through.
    let mut collect = base("collect");
    collect.args(["--once", "--dry-run", "-c"]).arg(&conf);
    let (c_wall, c_cpu, c_rss) = measure(collect);

    // The service: collector, engine, alerts.json, mail, webhooks.
    let mut run = if std::env::var_os("BENCH_PERF").is_some() {
        let mut c = Command::new("perf");
        c.current_dir(tmp.path()).env("HOME", tmp.path());
        c.args([
            "record",
            "-F",
            "299",
            "--call-graph",
            "dwarf,16384",
            "-o",
            "/tmp/run.perf",
            "--",
        ])
        .arg(bin())
        .arg("run");
        c
    } else {
        base("run")
    };
    run.args(["--once", "-c"]).arg(&conf);
    let (r_wall, r_cpu, r_rss) = measure(run);
    let written = std::fs::read_to_string(tmp.path().join("logs/alerts/alerts.json"))
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let posted = rx.accepted("/all").len() + rx.accepted("/slack").len();
    let mails = smtp.mails().len();

    // The same objects from disk, to stdout.
    let mut replay = base("replay");
    replay.args(["-q", "--clock", "arrival"]).arg(&trail);
    let (p_wall, p_cpu, p_rss) = measure(replay);

    let ev = events as f64;
    println!("service_run: {objects} objects, {events} events; {written} alerts written, {posted} webhook posts, {mails} mails");
    println!(
        "  collect --once (collector alone, moto): {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / c_wall,
        ev / c_cpu,
        c_rss
    );
    println!(
        "  run --once (all outputs, moto):         {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / r_wall,
        ev / r_cpu,
        r_rss
    );
    println!(
        "  replay (same objects from disk):        {:>8.0} events/s  {:>8.0} events/CPU-s  peak {:>6.1} MiB",
        ev / p_wall,
        ev / p_cpu,
        p_rss
    );
    println!(
        "  run / collect wall-time throughput: {:.2}x",
        (ev / r_wall) / (ev / c_wall)
    );
    std::thread::sleep(Duration::from_millis(100));
}
