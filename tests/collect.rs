//! `trailwatch collect` against a moto S3 server on loopback: the golden
//! CloudTrail bucket printed exactly as Wazuh's module sent it, state kept
//! between calls (only new files printed), `--dry-run` writing nothing,
//! `kill -9` in the middle of a run losing nothing, and a bad
//! configuration refused with its file, line and tag.

mod common;
#[path = "../collector/tests/common/moto.rs"]
mod moto;

use common::{bin, shared};
use moto::{put, upload_dir, Moto};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

fn golden() -> std::path::PathBuf {
    shared().join("golden/collector/cloudtrail")
}

fn bodies(run: &str) -> Vec<String> {
    std::fs::read_to_string(golden().join(format!("{run}.messages")))
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("1:Wazuh-AWS:").unwrap().to_string())
        .collect()
}

fn added() -> Vec<String> {
    std::fs::read_to_string(golden().join("run3_added.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A moto server holding the golden bucket without its run-3 files, and a
/// configuration reading it.
fn setup(dir: &Path) -> (Moto, std::path::PathBuf) {
    let moto = Moto::start();
    rt().block_on(upload_dir(
        &moto.client(),
        "gold-cloudtrail",
        &golden().join("bucket"),
        &added(),
    ));
    let conf = dir.join("ossec.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<ossec_config>
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>10m</interval>
    <bucket type="cloudtrail">
      <name>gold-cloudtrail</name>
      <access_key>test</access_key>
      <secret_key>test</secret_key>
      <only_logs_after>2024-MAR-10</only_logs_after>
      <service_endpoint>{}</service_endpoint>
    </bucket>
  </wodle>
</ossec_config>
"#,
            moto.endpoint
        ),
    )
    .unwrap();
    (moto, conf)
}

fn collect(conf: &Path, state: &Path, extra: &[&str]) -> (Vec<String>, String, i32) {
    collect_as(state, conf, state, extra)
}

/// `collect --once` with `home` as HOME and no AWS settings from the
/// environment: stdout lines, stderr, exit code.
fn collect_as(
    home: &Path,
    conf: &Path,
    state: &Path,
    extra: &[&str],
) -> (Vec<String>, String, i32) {
    let out = Command::new(bin())
        .args(["collect", "--once", "-c"])
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env("HOME", home)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        stdout.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn collect_prints_what_wazuh_sent_and_then_only_what_is_new() {
    let tmp = tempfile::tempdir().unwrap();
    let (moto, conf) = setup(tmp.path());
    let state = tmp.path().join("state");

    let (dry, err, code) = collect(&conf, &state, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(dry, bodies("run1"), "dry run prints the first run");
    assert!(
        !state.join("collector.db").exists(),
        "dry run writes no state"
    );

    let (first, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first, bodies("run1"));
    assert!(err.contains("24 new files, 108 events"), "{err}");

    let (second, _, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0);
    assert!(second.is_empty(), "nothing new: {second:?}");

    let client = moto.client();
    rt().block_on(async {
        for key in added() {
            let body = std::fs::read(golden().join("bucket").join(&key)).unwrap();
            put(&client, "gold-cloudtrail", &key, body).await;
        }
    });
    let (third, _, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0);
    assert_eq!(third, bodies("run3"));

    let (reparse, _, _) = collect(&conf, &state, &["--reparse"]);
    assert_eq!(reparse.len(), bodies("run1").len() + bodies("run3").len());
}

fn log_file(message: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(message).unwrap();
    v["aws"]["log_info"]["log_file"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn kill_9_in_the_middle_of_a_run_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, conf) = setup(tmp.path());
    let state = tmp.path().join("state");
    let mut child = Command::new(bin())
        .args(["collect", "--once", "--concurrency", "2", "-c"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(&state)
        .env("HOME", &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read a little, so the writer blocks on a full pipe mid-run, then kill.
    let mut out = child.stdout.take().unwrap();
    let mut head = vec![0u8; 4096];
    out.read_exact(&mut head).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    head.extend(rest);
    let text = String::from_utf8_lossy(&head);
    // A line cut by the kill was never taken.
    let before: Vec<String> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| l.trim_end().to_string())
        .collect();
    let want = bodies("run1");
    assert!(
        !before.is_empty() && before.len() < want.len(),
        "killed mid-run ({} of {} lines)",
        before.len(),
        want.len()
    );

    let (after, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0, "{err}");
    let mut count: HashMap<&String, usize> = HashMap::new();
    for m in before.iter().chain(&after) {
        *count.entry(m).or_default() += 1;
    }
    for m in &want {
        assert!(count.contains_key(m), "lost after kill -9: {m}");
    }
    // Only the file in flight when the process died is read twice.
    let twice: std::collections::BTreeSet<String> = count
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(m, _)| log_file(m))
        .collect();
    assert!(twice.len() <= 1, "files read twice: {twice:?}");
}

#[test]
fn a_bad_configuration_names_file_line_and_tag_and_nothing_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("bad.conf");
    std::fs::write(
        &conf,
        "<ossec_config>\n  <wodle name=\"aws-s3\">\n    <bucket type=\"cloudtrail\">\n      <name>b-1</name>\n      <only_logs_after>JAN-31</only_logs_after>\n    </bucket>\n  </wodle>\n</ossec_config>\n",
    )
    .unwrap();
    let state = tmp.path().join("state");
    let (out, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("bad.conf:5: <only_logs_after>: Argument not a valid date in format YYYY-MMM-DD: 'JAN-31'."),
        "{err}"
    );
    assert!(!state.exists(), "nothing started");
}

#[test]
fn an_unknown_profile_is_named_and_the_bucket_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[default]\nregion = us-east-1\n[profile prod]\nregion = eu-west-1\n",
    )
    .unwrap();
    let conf = tmp.path().join("p.conf");
    std::fs::write(
        &conf,
        "<ossec_config><wodle name=\"aws-s3\">\n<bucket type=\"cloudtrail\">\n<name>b-1</name>\n<aws_profile>nope</aws_profile>\n<service_endpoint>http://127.0.0.1:9</service_endpoint>\n</bucket></wodle></ossec_config>\n",
    )
    .unwrap();
    let (_, err, code) = collect_as(&home, &conf, &tmp.path().join("state"), &[]);
    assert_eq!(code, 2, "a source failed: {err}");
    assert!(
        err.contains("bucket b-1: No profile named: 'nope' was found in the user config file"),
        "{err}"
    );
}

#[test]
fn a_named_profile_from_the_aws_files_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (moto, _) = setup(tmp.path());
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[prod]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile prod]\nregion = eu-west-1\nmax_attempts = 2\n",
    )
    .unwrap();
    let conf = tmp.path().join("profile.conf");
    std::fs::write(
        &conf,
        format!(
            "<ossec_config><wodle name=\"aws-s3\"><bucket type=\"cloudtrail\">\n<name>gold-cloudtrail</name>\n<aws_profile>prod</aws_profile>\n<only_logs_after>2024-MAR-10</only_logs_after>\n<service_endpoint>{}</service_endpoint>\n</bucket></wodle></ossec_config>\n",
            moto.endpoint
        ),
    )
    .unwrap();
    let (lines, err, code) = collect_as(&home, &conf, &tmp.path().join("state"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines, bodies("run1"));
}

/// The Inspector v2 service against moto's inspector2 (whose answers the
/// test queues): each finding sent as the module sends it, the discard
/// regex applied, and the window of each run starting where the last one
/// ended; an unsupported region reads nothing.
#[test]
fn inspector_findings_are_sent_once_per_window() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let finding = |id: &str, status: &str, updated: f64| {
        serde_json::json!({
            "awsAccountId": "123456789012",
            "findingArn": format!("arn:aws:inspector2:us-east-2:123456789012:finding/{id}"),
            "severity": "HIGH",
            "status": status,
            "title": format!("CVE-2025-{id} - openssl"),
            "type": "PACKAGE_VULNERABILITY",
            "firstObservedAt": 1_757_930_400.25,
            "updatedAt": updated,
            "resources": [{"id": "i-0abc", "type": "AWS_EC2_INSTANCE",
                "details": {"awsEc2Instance": {"launchedAt": 1_757_900_000}}}],
        })
    };
    moto.queue_findings(
        "us-east-2",
        &serde_json::json!([
            [
                finding("0001", "ACTIVE", 1_757_930_401.0),
                finding("0002", "SUPPRESSED", 1_757_930_402.0)
            ],
            [finding("0003", "ACTIVE", 1_757_930_403.0)],
        ]),
    );
    let conf = tmp.path().join("ossec.conf");
    let write_conf = |region: &str| {
        std::fs::write(
            &conf,
            format!(
                r#"<ossec_config>
  <wodle name="aws-s3">
    <service type="inspector">
      <access_key>test</access_key>
      <secret_key>test</secret_key>
      <regions>{region}</regions>
      <only_logs_after>2025-SEP-15</only_logs_after>
      <discard_regex field="status">SUPPRESSED</discard_regex>
      <sts_endpoint>{ep}</sts_endpoint>
      <service_endpoint>{ep}</service_endpoint>
    </service>
  </wodle>
</ossec_config>
"#,
                ep = moto.endpoint
            ),
        )
        .unwrap();
    };
    write_conf("us-east-2");
    let state = tmp.path().join("state");
    let (out, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        [concat!(
            r#"{"integration": "aws", "aws": {"awsAccountId": "123456789012", "#,
            r#""findingArn": "arn:aws:inspector2:us-east-2:123456789012:finding/0001", "#,
            r#""severity": "HIGH", "status": "ACTIVE", "title": "CVE-2025-0001 - openssl", "#,
            r#""type": "PACKAGE_VULNERABILITY", "firstObservedAt": "2025-09-15 10:00:00.250000+00:00", "#,
            r#""updatedAt": "2025-09-15T10:00:01Z", "resources": [{"id": "i-0abc", "#,
            r#""type": "AWS_EC2_INSTANCE", "details": {"awsEc2Instance": "#,
            r#"{"launchedAt": "2025-09-15 01:33:20+00:00"}}}], "source": "inspector2"}}"#
        )],
        "{err}"
    );
    assert!(
        err.contains("Inspector us-east-2: 1 findings updated from 2025-09-15 00:00:00.000000 to "),
        "{err}"
    );
    assert!(err.contains(", 1 discarded"), "{err}");
    let first_end = err
        .split(" to ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_string();

    // The next run asks from where the first one ended. (moto answers a
    // repeated question with the same findings, whatever their time, so
    // each run waits for the next second: the window then differs.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (out, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 1, "{err}");
    assert!(out[0].contains("finding/0003"), "{out:?}");
    assert!(
        err.contains(&format!("1 findings updated from {first_end} to ")),
        "{first_end}: {err}"
    );
    // Nothing left.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (out, err, code) = collect(&conf, &state, &[]);
    assert_eq!((out.len(), code), (0, 0), "{err}");

    // A region Inspector v2 does not serve: an error, nothing read.
    write_conf("me-south-1");
    let (out, err, code) = collect(&conf, &tmp.path().join("state2"), &[]);
    assert_eq!(code, 2, "a source failed: {err}");
    assert!(out.is_empty());
    assert!(err.contains("Unsupported region 'me-south-1'"), "{err}");
}

/// `trailwatch ARGS` with its standard output closed before it writes
/// (`| head` gone): stderr and the exit code.
fn with_stdout_closed(cmd: &mut Command) -> (String, Option<i32>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn a_closed_stdout_ends_collect_analyze_and_replay_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_moto, conf) = setup(tmp.path());
    let state = tmp.path().join("state");
    let (err, code) = with_stdout_closed(
        Command::new(bin())
            .args(["collect", "--once", "-c"])
            .arg(&conf)
            .arg("--state-dir")
            .arg(&state)
            .env("HOME", tmp.path()),
    );
    assert_eq!(code, Some(0), "{err}");
    // The deprecated key tags are warned about; nothing else is said.
    assert!(
        err.lines()
            .all(|l| l.contains(": warning: ") && l.contains("Deprecated tag")),
        "{err}"
    );
    // Nothing was printed, so nothing was marked: all of it comes next time.
    let (first, err, code) = collect(&conf, &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first, bodies("run1"));

    let samples = common::root().join("samples");
    for args in [
        &["replay", "-q", "trail"][..],
        &["analyze", "sample-trail.jsonl"],
    ] {
        let (err, code) = with_stdout_closed(Command::new(bin()).args(args).current_dir(&samples));
        assert_eq!((err.as_str(), code), ("", Some(0)), "{args:?}");
    }
}
