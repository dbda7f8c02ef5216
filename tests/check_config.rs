//! `trailwatch check-config`: each class of bad configuration refused at
//! its line (and `run` refusing the same), and `--probe` against real
//! servers on loopback (moto for S3, SQS and CloudWatch Logs, with its IAM
//! checks on for a 403; aiosmtpd; the webhook receiver): the table of
//! results, and the message of each AWS error class.

mod common;
#[path = "../collector/tests/common/moto.rs"]
mod moto;
#[path = "../outputs/tests/common/receiver.rs"]
mod receiver;
#[path = "../outputs/tests/common/smtp.rs"]
mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::bin;
use moto::Moto;
use receiver::Receiver;
use serde_json::Value;
use smtp::Smtp;

/// The binary in `dir`, with a HOME of its own and no AWS settings from
/// the environment.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c.env_remove(v);
    }
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A bucket block that parses (never contacted by the typo cases).
const WODLE: &str = r#"<wodle name="aws-s3">
  <bucket type="cloudtrail">
    <name>acme-trail</name>
    <access_key>test</access_key>
    <secret_key>test</secret_key>
  </bucket>
</wodle>"#;

/// (file name, contents, the problem line `check-config` prints).
fn bad_configurations() -> Vec<(&'static str, String, &'static str)> {
    let conf = |body: &str| format!("<ossec_config>\n{WODLE}\n{body}\n</ossec_config>\n");
    vec![
        (
            "api-listen.conf",
            conf("<trailwatch>\n  <api>\n    <listen>127.0.0.1:55000</listen>\n  </api>\n</trailwatch>"),
            "api-listen.conf:11: <listen>: no such tag in <api>. Did you mean <bind>?",
        ),
        (
            "min-level.conf",
            conf("<integration>\n  <name>slack</name>\n  <hook_url>http://127.0.0.1:9/h</hook_url>\n  <min_level>12</min_level>\n</integration>"),
            "min-level.conf:12: <min_level>: no such tag in <integration>. Did you mean <level>?",
        ),
        (
            "smtp-prot.conf",
            conf("<global>\n  <smtp_prot>25</smtp_prot>\n</global>"),
            "smtp-prot.conf:10: <smtp_prot>: no such tag in <global>. Did you mean <smtp_port>?",
        ),
        (
            "integrations.conf",
            conf("<integrations>\n  <name>slack</name>\n</integrations>"),
            "integrations.conf:9: <integrations>: Invalid element in the configuration (Wazuh refuses it too). Did you mean <integration>?",
        ),
        (
            "bucket-typo.conf",
            "<ossec_config>\n<wodle name=\"aws-s3\">\n  <bucket type=\"cloudtrail\">\n    <name>acme-trail</name>\n    <regoins>us-east-1</regoins>\n  </bucket>\n</wodle>\n</ossec_config>\n".into(),
            "bucket-typo.conf:5: <regoins>: No such child tag 'regoins' of bucket at module 'aws-s3'. Did you mean <regions>?",
        ),
        ("empty.conf", String::new(), "empty.conf:1: <ossec_config>: the file is empty: trailwatch reads an ossec.conf-style file (<ossec_config>...</ossec_config>; `trailwatch init` writes a commented one)"),
        (
            "yaml.conf",
            "ossec_config:\n  wodle:\n    bucket: acme-trail\n".into(),
            "yaml.conf:1: <ossec_config>: no XML element in the file: trailwatch reads an ossec.conf-style XML file (<ossec_config>...</ossec_config>), not YAML, JSON or INI",
        ),
        (
            "no-source.conf",
            "<ossec_config>\n<global>\n  <jsonout_output>yes</jsonout_output>\n</global>\n</ossec_config>\n".into(),
            "no-source.conf:1: <wodle>: no <wodle name=\"aws-s3\"> block: `run` has nothing to collect (add a <bucket>, <service> or <subscriber>; `trailwatch init` writes an example)",
        ),
        (
            "email-to.conf",
            conf("<global>\n  <email_notification>yes</email_notification>\n  <smtp_server>127.0.0.1</smtp_server>\n  <email_from>tw@example.com</email_from>\n  <email_to>ops at example dot com</email_to>\n</global>"),
            "email-to.conf:13: <email_to>: 'ops at example dot com' is not an email address; expected e.g. ops@example.com",
        ),
        (
            "profile.conf",
            "<ossec_config>\n<wodle name=\"aws-s3\">\n  <bucket type=\"cloudtrail\">\n    <name>acme-trail</name>\n    <aws_profile>prodd</aws_profile>\n  </bucket>\n</wodle>\n</ossec_config>\n".into(),
            "profile.conf:5: <aws_profile>: profile 'prodd' is not in HOME/.aws/config nor HOME/.aws/credentials (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE). Did you mean 'prod'?",
        ),
        (
            "ca-file.conf",
            conf("<global>\n  <smtp_ca_file>missing-ca.pem</smtp_ca_file>\n</global>"),
            "ca-file.conf:10: <smtp_ca_file>: ./missing-ca.pem: No such file or directory (os error 2)",
        ),
        (
            "token-file.conf",
            conf("<trailwatch>\n  <api>\n    <token_file>missing-token</token_file>\n  </api>\n</trailwatch>"),
            "token-file.conf:11: <token_file>: ./missing-token: No such file or directory (os error 2)",
        ),
    ]
}

#[test]
fn each_bad_configuration_is_refused_at_its_line_by_check_config_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap().to_string();
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/config"),
        "[profile prod]\nregion = eu-west-1\n",
    )
    .unwrap();
    for (name, text, expected) in bad_configurations() {
        let expected = expected.replace("HOME", &home);
        std::fs::write(dir.path().join(name), &text).unwrap();
        let out = command(dir.path(), &["check-config", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().next(), Some(expected.as_str()), "{name}");
        assert!(
            err.contains("1 problem in") && out.stdout.is_empty(),
            "{name}: {err}"
        );
        // `run` refuses the same file with the same words, before starting.
        let out = command(dir.path(), &["run", "--once", "-c", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected.split_once(": ").unwrap().1),
            "{name}: {}",
            stderr(&out)
        );
    }
    assert!(
        !dir.path().join("trailwatch-state").exists(),
        "nothing started"
    );
}

#[test]
fn every_problem_is_listed_and_json_carries_file_line_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "<ossec_config>\n{WODLE}\n<integrations/>\n<global>\n  <smtp_prot>25</smtp_prot>\n</global>\n<syscheck><disabled>yes</disabled></syscheck>\n</ossec_config>\n"
    );
    std::fs::write(dir.path().join("two.conf"), text).unwrap();
    let out = command(
        dir.path(),
        &["check-config", "--format", "json", "two.conf"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], false);
    let problems: Vec<(u64, &str)> = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(problems, [(9, "integrations"), (11, "smtp_prot")]);
    assert_eq!(
        j["problems"][1]["text"],
        "two.conf:11: <smtp_prot>: no such tag in <global>. Did you mean <smtp_port>?"
    );
}

/// Wazuh's own ossec.conf blocks are skipped and named once at start.
#[test]
fn wazuh_blocks_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "<ossec_config>\n{WODLE}\n<syscheck><disabled>yes</disabled></syscheck>\n<rootcheck/>\n<wodle name=\"syscollector\"/>\n<localfile><log_format>syslog</log_format></localfile>\n<localfile/>\n</ossec_config>\n"
    );
    std::fs::write(dir.path().join("wazuh.conf"), text).unwrap();
    let out = command(dir.path(), &["check-config", "wazuh.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "skipped (not used)     syscheck, rootcheck, wodle name=\"syscollector\", localfile\n"
        ),
        "{text}"
    );
    // `run` names them once at start (here with the module disabled, so
    // that it ends right after).
    let text = std::fs::read_to_string(dir.path().join("wazuh.conf"))
        .unwrap()
        .replace("<bucket ", "<disabled>yes</disabled>\n  <bucket ");
    std::fs::write(dir.path().join("wazuh.conf"), text).unwrap();
    let out = command(dir.path(), &["run", "--once", "-c", "wazuh.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("skipped"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with(
            "Not used by trailwatch, skipped: syscheck, rootcheck, wodle name=\"syscollector\", localfile"
        ),
        "{lines:?}"
    );
}

/// Runs boto3 (moto's venv) against `endpoint` with moto's test keys.
fn boto(endpoint: &str, code: &str) {
    let script = format!(
        "import boto3\nkw = dict(endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n{code}\n"
    );
    let out = Command::new(smtp::python())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}\n{}", stderr(&out));
}

fn write_conf(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("<ossec_config>\n{body}\n</ossec_config>\n")).unwrap();
    p
}

fn bucket(name: &str, endpoint: &str, keys: bool) -> String {
    let keys = if keys {
        "<access_key>test</access_key><secret_key>test</secret_key>"
    } else {
        ""
    };
    format!("<bucket type=\"cloudtrail\"><name>{name}</name>{keys}<service_endpoint>{endpoint}</service_endpoint></bucket>")
}

fn probes(out: &Output) -> Vec<Value> {
    let j: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    j["probes"].as_array().unwrap().clone()
}

fn probe<'a>(all: &'a [Value], target: &str) -> &'a Value {
    all.iter()
        .find(|p| p["target"].as_str().unwrap().starts_with(target))
        .unwrap_or_else(|| panic!("no probe of {target}: {all:?}"))
}

#[test]
fn probe_tries_every_target_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    boto(
        &moto.endpoint,
        "s3 = boto3.client('s3', **kw)\n\
s3.create_bucket(Bucket='acme-trail')\n\
s3.put_object(Bucket='acme-trail', Key='AWSLogs/111122223333/CloudTrail/us-east-1/2024/11/05/a.json.gz', Body=b'x')\n\
boto3.client('sqs', **kw).create_queue(QueueName='tw-queue')\n\
logs = boto3.client('logs', **kw)\n\
logs.create_log_group(logGroupName='tw-group')\n\
logs.create_log_stream(logGroupName='tw-group', logStreamName='s1')",
    );
    let smtp = Smtp::start(dir.path());
    let rx = Receiver::start(&[]);
    let ep = &moto.endpoint;
    let keys = format!("<access_key>test</access_key><secret_key>test</secret_key><service_endpoint>{ep}</service_endpoint>");
    let conf = write_conf(
        dir.path(),
        "good.conf",
        &format!(
            "<wodle name=\"aws-s3\">\n{}\n<subscriber type=\"buckets\"><sqs_name>tw-queue</sqs_name>{keys}</subscriber>\n<service type=\"cloudwatchlogs\"><aws_log_groups>tw-group</aws_log_groups><regions>us-east-1</regions>{keys}</service>\n</wodle>\n<global><email_notification>yes</email_notification><smtp_server>127.0.0.1</smtp_server><smtp_port>{}</smtp_port><email_from>tw@example.com</email_from><email_to>ops@example.com</email_to></global>\n<integration><name>custom-hook</name><hook_url>{}/hook</hook_url></integration>",
            bucket("acme-trail", ep, true),
            smtp.port,
            rx.url
        ),
    );
    let out = command(dir.path(), &["check-config", "--probe"])
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("TARGET") && text.contains("configuration OK"),
        "{text}"
    );
    let out = command(dir.path(), &["check-config", "--probe", "--format", "json"])
        .arg(&conf)
        .output()
        .unwrap();
    let all = probes(&out);
    let result = |t: &str| {
        let p = probe(&all, t);
        (
            p["result"].as_str().unwrap(),
            p["detail"].as_str().unwrap().to_string(),
        )
    };
    let (r, d) = result("bucket acme-trail");
    assert_eq!(r, "ok", "{d}");
    assert!(d.contains("first: AWSLogs/111122223333/CloudTrail"), "{d}");
    let (r, d) = result("queue tw-queue");
    assert_eq!(
        (r, d.as_str()),
        ("ok", "found; about 0 messages waiting (none received)")
    );
    let (r, d) = result("log group tw-group (us-east-1)");
    assert_eq!((r, d.as_str()), ("ok", "listed (first stream: s1)"));
    let smtp_rows: Vec<_> = all
        .iter()
        .filter(|p| p["target"].as_str().unwrap().starts_with("smtp "))
        .map(|p| (p["check"].as_str().unwrap(), p["result"].as_str().unwrap()))
        .collect();
    assert_eq!(smtp_rows, [("connect", "ok"), ("EHLO", "ok")]);
    let (r, d) = result("integration custom-hook");
    assert_eq!(r, "ok", "{d}");
    // The receiver saw two probes (text, then JSON), both HEAD with the
    // probe header; no mail was sent.
    let seen: Vec<(String, bool)> = rx
        .requests()
        .iter()
        .map(|q| (q.method.clone(), q.probe))
        .collect();
    assert_eq!(
        seen,
        [("HEAD".to_string(), true), ("HEAD".to_string(), true)]
    );
    assert!(smtp.mails().is_empty());
}

#[test]
fn probe_failures_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    boto(
        &moto.endpoint,
        "boto3.client('s3', **kw).create_bucket(Bucket='acme-trail')",
    );
    let closed = smtp::free_port();
    let ep = &moto.endpoint;
    let https = ep.replace("http://", "https://");
    let keys = format!("<access_key>test</access_key><secret_key>test</secret_key><service_endpoint>{ep}</service_endpoint>");
    let conf = write_conf(
        dir.path(),
        "bad.conf",
        &format!(
            "<wodle name=\"aws-s3\">\n{}\n{}\n{}\n{}\n<subscriber type=\"buckets\"><sqs_name>no-such-queue</sqs_name>{keys}</subscriber>\n</wodle>\n<global><email_notification>yes</email_notification><smtp_server>127.0.0.1</smtp_server><smtp_port>{closed}</smtp_port><email_from>tw@example.com</email_from><email_to>ops@example.com</email_to></global>\n<integration><name>custom-down</name><hook_url>http://127.0.0.1:{closed}/hook</hook_url></integration>",
            bucket("no-such-bucket", ep, true),
            bucket("unreachable-one", &format!("http://127.0.0.1:{closed}"), true),
            bucket("tls-one", &https, true),
            bucket("no-creds", ep, false),
        ),
    );
    let out = command(dir.path(), &["check-config", "--probe", "--format", "json"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let all = probes(&out);
    let failed = |t: &str| {
        let p = probe(&all, t);
        assert_eq!(p["result"], "failed", "{p}");
        p["detail"].as_str().unwrap().to_string()
    };
    assert_eq!(failed("bucket no-such-bucket"), "the bucket does not exist");
    let d = failed("bucket unreachable-one");
    assert!(
        d.starts_with(&format!(
            "could not connect to the endpoint: cannot reach 127.0.0.1:{closed} for s3:ListBucket: "
        )) && d.contains("Connection refused"),
        "{d}"
    );
    let d = failed("bucket tls-one");
    assert!(
        d.contains(&format!(
            "TLS with {} failed",
            https.trim_start_matches("https://")
        )) && d.contains("does not seem to speak TLS: if it is plain HTTP, write http://"),
        "{d}"
    );
    let d = failed("bucket no-creds");
    let home = dir.path().display();
    assert!(
        d.starts_with("no AWS credentials for s3:ListBucket on arn:aws:s3:::no-creds: looked in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: not set)")
            && d.contains(&format!("{home}/.aws/config and {home}/.aws/credentials"))
            && d.contains("instance metadata service (turned off by AWS_EC2_METADATA_DISABLED)"),
        "{d}"
    );
    let d = failed("queue no-such-queue");
    assert!(d.contains("Queue does not exist"), "{d}");
    let d = failed(&format!("smtp 127.0.0.1:{closed}"));
    assert!(
        d.starts_with(&format!(
            "cannot connect to 127.0.0.1:{closed}: Connection refused"
        )),
        "{d}"
    );
    let d = failed("integration custom-down");
    assert!(d.contains("Connection refused"), "{d}");
    // The text table names the same failures.
    let out = command(dir.path(), &["check-config", "--probe"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bucket no-such-bucket"), "{text}");
    assert!(stderr(&out).contains("probes failed"), "{}", stderr(&out));
}

/// moto with its IAM checks on: a user allowed only s3:GetObject is
/// refused the listing; the message names the action, the bucket and the
/// statement of dist/iam-policy.json that grants it (HeadBucket's 403 has
/// no body: the one-key listing after it says why). An unknown key is
/// told apart.
#[test]
fn access_denied_names_the_action_the_resource_and_the_policy_statement() {
    let dir = tempfile::tempdir().unwrap();
    // Four requests without checks: the setup below, exactly.
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")]);
    let keys = dir.path().join("keys");
    boto(
        &moto.endpoint,
        &format!(
            "boto3.client('s3', **kw).create_bucket(Bucket='acme-trail')\n\
iam = boto3.client('iam', **kw)\n\
iam.create_user(UserName='reader')\n\
iam.put_user_policy(UserName='reader', PolicyName='get-only', PolicyDocument='{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}]}}')\n\
k = iam.create_access_key(UserName='reader')['AccessKey']\n\
open('{}', 'w').write(k['AccessKeyId'] + ' ' + k['SecretAccessKey'])",
            keys.display()
        ),
    );
    let text = std::fs::read_to_string(&keys).unwrap();
    let (id, secret) = text.split_once(' ').unwrap();
    let conf = write_conf(
        dir.path(),
        "denied.conf",
        &format!(
            "<wodle name=\"aws-s3\"><bucket type=\"cloudtrail\"><name>acme-trail</name><access_key>{id}</access_key><secret_key>{secret}</secret_key><service_endpoint>{ep}</service_endpoint></bucket>\n<bucket type=\"cloudtrail\"><name>acme-trail</name><access_key>AKIAUNKNOWN</access_key><secret_key>x</secret_key><service_endpoint>{ep}</service_endpoint></bucket></wodle>",
            ep = moto.endpoint
        ),
    );
    let out = command(dir.path(), &["check-config", "--probe", "--format", "json"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let all = probes(&out);
    let d = all[0]["detail"].as_str().unwrap();
    assert!(
        d.starts_with("access denied: s3:ListBucket on arn:aws:s3:::acme-trail was refused (AccessDenied, HTTP 403: ")
            && d.ends_with("dist/iam-policy.json grants s3:ListBucket in its statement \"ListTheLogBucket\": give it to the user or role, and check that no bucket, key or organization policy denies it"),
        "{d}"
    );
    // An access key AWS does not know: said so, not "access denied".
    let d = all[1]["detail"].as_str().unwrap();
    assert!(
        d.contains("(InvalidAccessKeyId, HTTP 403: ")
            && d.ends_with("the access key is unknown to AWS or its secret does not match: check <access_key>/<secret_key>, the profile's keys, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        "{d}"
    );
}
