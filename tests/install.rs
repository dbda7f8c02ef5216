//! Installing and starting: `trailwatch init`, the systemd unit and the IAM
//! policy in `dist/`, and one process per state directory.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{bin, root};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `init` writes a configuration that `check-config` accepts, private
/// directories, the next steps; it keeps an existing file.
#[test]
fn init_writes_a_configuration_that_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc");
    let out = Command::new(bin())
        .arg("init")
        .arg(&dir)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Next:") && text.contains("check-config"),
        "{text}"
    );
    let conf = dir.join("trailwatch.conf");
    assert_eq!(mode(&conf), 0o600);
    assert_eq!(mode(&dir.join("state")), 0o700);
    assert_eq!(mode(&dir.join("logs")), 0o700);
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(
        written.contains("<state_dir>state</state_dir>"),
        "{written}"
    );
    // The example reads the SMTP password from the environment.
    let check = Command::new(bin())
        .arg("check-config")
        .arg(&conf)
        .env("TRAILWATCH_SMTP_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let again = Command::new(bin()).arg("init").arg(&dir).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwritten"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), written);

    // Absolute directories elsewhere, as for a system install.
    let out = Command::new(bin())
        .arg("init")
        .arg(tmp.path().join("etc2"))
        .arg("--state-dir")
        .arg(tmp.path().join("var/lib/tw"))
        .arg("--logs-dir")
        .arg(tmp.path().join("var/log/tw"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(tmp.path().join("var/lib/tw").is_dir());
    let written = std::fs::read_to_string(tmp.path().join("etc2/trailwatch.conf")).unwrap();
    assert!(written.contains(&format!(
        "<state_dir>{}</state_dir>",
        tmp.path().join("var/lib/tw").display()
    )));
}

/// The IAM policy is valid JSON in IAM's grammar, grants only reads (and
/// the SQS delete that consumes a notification), and covers every AWS call
/// the collector makes.
#[test]
fn the_iam_policy_is_least_privilege_and_complete() {
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(root().join("dist").join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let actions = |doc: &serde_json::Value| -> Vec<String> {
        assert_eq!(doc["Version"], "2012-10-17");
        let mut out = Vec::new();
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Effect"], "Allow");
            assert!(st["Sid"]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_alphanumeric()));
            assert!(st.get("Resource").is_some());
            match &st["Action"] {
                serde_json::Value::String(a) => out.push(a.clone()),
                serde_json::Value::Array(v) => {
                    out.extend(v.iter().map(|a| a.as_str().unwrap().to_string()))
                }
                other => panic!("Action {other}"),
            }
        }
        out
    };
    let main = actions(&read("iam-policy.json"));
    for a in &main {
        assert!(!a.contains('*'), "no wildcard actions: {a}");
        let verb = a.split(':').nth(1).unwrap();
        assert!(
            [
                "List",
                "Get",
                "Describe",
                "Decrypt",
                "Receive",
                "AssumeRole"
            ]
            .iter()
            .any(|p| verb.starts_with(p))
                || a == "sqs:DeleteMessage",
            "{a} is not a read"
        );
    }
    for needed in [
        "s3:ListBucket",
        "s3:GetObject",
        "kms:Decrypt",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueUrl",
        "sts:AssumeRole",
        "ec2:DescribeFlowLogs",
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "inspector2:ListFindings",
    ] {
        assert!(main.iter().any(|a| a == needed), "{needed} missing");
    }
    let remove = actions(&read("iam-policy-remove.json"));
    assert_eq!(remove, ["s3:DeleteObject", "logs:DeleteLogStream"]);
}

/// The systemd unit passes `systemd-analyze verify` (with the binary's
/// path put in) and keeps its promises: its own user, state and logs
/// directories, restart on failure, hardening, an environment file.
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("dist/trailwatch.service")).unwrap();
    for needed in [
        "User=trailwatch",
        "StateDirectory=trailwatch",
        "LogsDirectory=trailwatch",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/trailwatch/trailwatch.env",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "UMask=0077",
    ] {
        assert!(unit.contains(needed), "{needed}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("trailwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/trailwatch", &bin().to_string_lossy()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs the unit check");
    let err = String::from_utf8_lossy(&out.stderr);
    // Warnings about the machine (no running systemd as PID 1, missing
    // dependencies of other units) are not the unit's; its own problems
    // name the file.
    let own: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("trailwatch.service"))
        .collect();
    assert!(own.is_empty(), "{err}");
}

/// A second process on the same state directory is refused with exit 2,
/// naming the holder's pid; a dry run may run beside it.
#[test]
fn one_process_per_state_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let conf = tmp.path().join("trailwatch.conf");
    std::fs::write(
        &conf,
        "<ossec_config>\n  <trailwatch><state_dir>state</state_dir><logs_dir>logs</logs_dir></trailwatch>\n  <wodle name=\"aws-s3\">\n    <bucket type=\"cloudtrail\">\n      <name>b-1</name>\n      <service_endpoint>http://127.0.0.1:9</service_endpoint>\n    </bucket>\n  </wodle>\n</ossec_config>\n",
    )
    .unwrap();
    // This test holds the lock, as another trailwatch would.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(state.join("trailwatch.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    std::fs::write(state.join("trailwatch.lock"), "4242\n").unwrap();
    let state_arg = state.to_string_lossy().into_owned();
    for args in [
        vec!["run", "--once", "-c"],
        vec!["collect", "--once", "--state-dir", &state_arg, "-c"],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .arg(&conf)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("in use by another trailwatch (pid 4242)"),
            "{err}"
        );
    }
    let dry = Command::new(bin())
        .args([
            "collect",
            "--once",
            "--dry-run",
            "--state-dir",
            &state_arg,
            "-c",
        ])
        .arg(&conf)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&dry.stderr).contains("in use by another trailwatch"),
        "a dry run takes no lock"
    );
    drop(lock);
}

/// `cargo install --locked --path .` works and the library crates can be
/// published: every workspace package is named `trailwatch*`, every path
/// dependency also gives a version, and the README gives the command.
/// (The install itself, run by hand with the release build present, takes
/// seconds; inside `cargo test` it would wait on the build lock.)
#[test]
fn the_crates_are_installable_and_publishable() {
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(common::root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut names: Vec<&str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "trailwatch",
            "trailwatch-collector",
            "trailwatch-engine",
            "trailwatch-outputs",
            "trailwatch-pyrepr"
        ]
    );
    for p in meta["packages"].as_array().expect("packages") {
        for d in p["dependencies"].as_array().expect("deps") {
            if d["path"].is_string() {
                assert_ne!(
                    d["req"], "*",
                    "{} -> {}: a path dependency needs a version to publish",
                    p["name"], d["name"]
                );
            }
        }
        assert!(
            p["license"].is_string() && p["description"].is_string(),
            "{}",
            p["name"]
        );
    }
    let readme = std::fs::read_to_string(common::root().join("README.md")).expect("README");
    assert!(readme.contains("cargo install --locked --path ."));
}
