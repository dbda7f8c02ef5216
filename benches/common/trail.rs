//! Shared by the benches: a generated CloudTrail trail in the S3 layout,
//! the service benches' configuration, and running a command while
//! measuring its time and peak memory.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCOUNT: &str = "111122223333";

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
fn record(rng: &mut Rng, minute: &str, file: usize, i: usize) -> serde_json::Value {
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
        "eventTime": format!("{minute}:{:02}Z", i % 60),
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

/// A size from the environment (`BENCH_OBJECTS` and the like), or the
/// default.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Files per day: CloudTrail delivers a file about every five minutes per
/// region.
pub const FILES_PER_DAY: usize = 288;

/// The civil date `n` days after 2024-11-05 (day 20,032 of the epoch).
fn day_after_start(n: usize) -> (i64, u32, u32) {
    collector::formats::civil_from_days(20_032 + n as i64)
}

/// Writes the trail under `dir` (S3 layout, [`FILES_PER_DAY`] files a day
/// from 2024-11-05 on); returns the record count.
pub fn write_trail(dir: &Path, objects: usize, per: usize) -> usize {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for f in 0..objects {
        let (y, m, d) = day_after_start(f / FILES_PER_DAY);
        let minute = f % FILES_PER_DAY * 5;
        let (hh, mm) = (minute / 60, minute % 60);
        let day = dir.join(format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/{y}/{m:02}/{d:02}"
        ));
        if f % FILES_PER_DAY == 0 {
            std::fs::create_dir_all(&day).unwrap();
        }
        let date = format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}");
        let records: Vec<_> = (0..per).map(|i| record(&mut rng, &date, f, i)).collect();
        let body = serde_json::to_vec(&serde_json::json!({"Records": records})).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let name = format!(
            "{ACCOUNT}_CloudTrail_eu-west-1_{y}{m:02}{d:02}T{hh:02}{mm:02}Z_{f:06}.json.gz"
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
/// `ok` lists the exit codes that count as success.
pub fn measure(mut cmd: Command, ok: &[i32]) -> (f64, f64, f64) {
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
        libc::WIFEXITED(status) && ok.contains(&libc::WEXITSTATUS(status)),
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

/// The bucket the service benches read the trail from.
pub const BUCKET: &str = "bench-trail";

/// The service benches' configuration: `bucket` (CloudTrail) at `endpoint`
/// with moto's test keys, mail for level 10 and up to the SMTP server on
/// `smtp_port`, and two webhooks under `hooks` (`/all`, level 5 and up,
/// custom JSON; `/slack`, level 10 and up); state and logs under the
/// working directory.
pub fn service_config(endpoint: &str, bucket: &str, smtp_port: u16, hooks: &str) -> String {
    format!(
        r#"<ossec_config>
  <trailwatch><logs_dir>logs</logs_dir><state_dir>state</state_dir></trailwatch>
  <wodle name="aws-s3">
    <bucket type="cloudtrail">
      <name>{bucket}</name>
      <access_key>test</access_key><secret_key>test</secret_key>
      <only_logs_after>2024-NOV-05</only_logs_after>
      <service_endpoint>{endpoint}</service_endpoint>
    </bucket>
  </wodle>
  <alerts><email_alert_level>10</email_alert_level></alerts>
  <global>
    <email_notification>yes</email_notification>
    <smtp_server>127.0.0.1</smtp_server><smtp_port>{smtp_port}</smtp_port>
    <email_from>bench@example.com</email_from><email_to>ops@example.com</email_to>
    <email_maxperhour>100000</email_maxperhour>
  </global>
  <integration><name>custom</name><hook_url>{hooks}/all</hook_url><level>5</level><alert_format>json</alert_format></integration>
  <integration><name>slack</name><hook_url>{hooks}/slack</hook_url><level>10</level><alert_format>json</alert_format></integration>
</ossec_config>
"#
    )
}
