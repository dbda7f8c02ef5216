//! `trailwatch replay`: the shipped sample trail gives the expected alerts
//! (the README's first command), a directory and its JSON lines decide the
//! same, unreadable files are reported, skipped and counted, and `-c`
//! sends the alerts to the configured outputs.

mod common;
#[path = "../outputs/tests/common/receiver.rs"]
mod receiver;

use std::process::{Command, Output};

use common::{bin, root};
use serde_json::Value;

fn replay(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("replay")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn alerts(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rule_ids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shipped_sample_trail_gives_the_expected_alerts_and_summary() {
    let out = replay(&["samples/trail"]);
    assert_eq!(out.status.code(), Some(0));
    let got = alerts(&out);
    assert_eq!(common::count_rules(&got), common::sample_trail_counts());
    // The break-in comes on the sixth failed sign-in, after the five.
    let ids = rule_ids(&got);
    let first_255 = ids.iter().position(|i| i == "80255").unwrap();
    assert_eq!(ids[..first_255].iter().filter(|i| *i == "80254").count(), 5);
    let brk = &got[first_255];
    assert_eq!(brk["data"]["aws"]["sourceIPAddress"], "192.0.2.66");
    assert_eq!(brk["rule"]["firedtimes"], 1);
    // Event time: the alert carries the trail's day.
    assert!(brk["timestamp"]
        .as_str()
        .unwrap()
        .starts_with("2024-11-05T"));

    let err = String::from_utf8_lossy(&out.stderr);
    let table: Vec<&str> = err.lines().collect();
    assert_eq!(table[0], "66 events, 50 alerts", "{err}");
    assert_eq!(table[1], "   rule  level  alerts  description");
    assert!(table[2].starts_with("  80202      3      15  "), "{err}");
    assert!(err.contains("  80255     10       1  "), "{err}");
}

#[test]
fn a_directory_and_its_json_lines_decide_the_same() {
    let dir = replay(&["-q", "samples/trail"]);
    let lines = replay(&["-q", "samples/sample-trail.jsonl"]);
    assert_eq!(rule_ids(&alerts(&dir)), rule_ids(&alerts(&lines)));
    assert!(dir.stderr.is_empty(), "-q prints nothing else");
}

#[test]
fn unreadable_files_are_reported_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    common::copy_sample_trail(&trail);
    let day = trail.join("AWSLogs/111122223333/CloudTrail/eu-west-1/2024/11/05");
    let good = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = day.join("111122223333_CloudTrail_eu-west-1_20241105T0901Z_trunc.json.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = day.join("111122223333_CloudTrail_eu-west-1_20241105T0902Z_junk.json");
    std::fs::write(&garbage, "{\"Records\": [ not json").unwrap();

    let out = replay(&[trail.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "files not read: an error");
    assert_eq!(alerts(&out).len(), 50, "the readable files still count");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}", truncated.display())), "{err}");
    assert!(err.contains(&format!("{}", garbage.display())), "{err}");
    assert!(err.contains("2 of 12 files could not be read"), "{err}");
}

#[test]
fn with_a_configuration_alerts_go_to_its_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let rx = receiver::Receiver::start(&[503]);
    let conf = tmp.path().join("replay.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<ossec_config>
  <trailwatch><logs_dir>logs</logs_dir><state_dir>state</state_dir></trailwatch>
  <integration>
    <name>custom</name>
    <hook_url>{}/in</hook_url>
    <level>10</level>
    <alert_format>json</alert_format>
  </integration>
</ossec_config>"#,
            rx.url
        ),
    )
    .unwrap();
    let out = replay(&["-q", "-c", conf.to_str().unwrap(), "samples/trail"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "alerts go to the outputs, not stdout"
    );
    let written = std::fs::read_to_string(tmp.path().join("logs/alerts/alerts.json")).unwrap();
    assert_eq!(written.lines().count(), 50);
    let posted = rx.accepted("/in");
    // Level 10 and up: the console break-in, then the attack's root
    // sign-in, SSH opened to the world, a key for another user and the
    // trail stopped.
    let ids: Vec<String> = posted
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&p.body).unwrap();
            v["rule"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids,
        ["80255", "98101", "98151", "98440", "98300"],
        "replay waits for the webhook (after a 503)"
    );
}

#[test]
fn a_real_wazuh_ossec_conf_selects_the_wazuh_ruleset() {
    let tmp = tempfile::tempdir().unwrap();
    // Its <ruleset> names ruleset/rules, ruleset/decoders and the lists
    // (etc/lists/X, found in ruleset/lists/X of this tree).
    let conf = common::shared().join("wazuh/reference-ossec.conf");
    let via_conf = Command::new(bin())
        .args(["replay", "-q", "--print", "-c"])
        .arg(&conf)
        .arg(root().join("samples/trail"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&via_conf.stderr);
    assert_eq!(via_conf.status.code(), Some(0), "{err}");
    let direct = replay(&[
        "-q",
        "--ruleset",
        "../shared/wazuh/ruleset",
        "samples/trail",
    ]);
    let got = alerts(&via_conf);
    assert_eq!(got.len(), 49, "Wazuh's rules alone");
    assert_eq!(rule_ids(&got), rule_ids(&alerts(&direct)));
    // The Wazuh ruleset's own descriptions, not the shipped ones.
    assert_eq!(
        got.iter()
            .map(|a| &a["rule"]["description"])
            .collect::<Vec<_>>(),
        alerts(&direct)
            .iter()
            .map(|a| &a["rule"]["description"])
            .collect::<Vec<_>>()
    );
    let written =
        std::fs::read_to_string(tmp.path().join("trailwatch-logs/alerts/alerts.json")).unwrap();
    assert_eq!(written.lines().count(), 49);
}

#[test]
fn a_list_missing_from_ruleset_skips_its_rules_as_in_wazuh_and_check_config_says_so() {
    // The manager's etc/ossec.conf of the test data declares no
    // aws-eventnames list: rule 80202 (and the CloudTrail rules under it)
    // cannot load, so nothing alerts, exactly as analysisd would behave.
    let tmp = tempfile::tempdir().unwrap();
    let conf = common::shared().join("wazuh/etc/ossec.conf");
    let out = Command::new(bin())
        .args(["replay", "--print", "-c"])
        .arg(&conf)
        .arg(root().join("samples/trail"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(alerts(&out).is_empty());
    let check = Command::new(bin())
        .arg("check-config")
        .arg(&conf)
        .output()
        .unwrap();
    // The file has no aws-s3 wodle: `run` would have nothing to collect,
    // so check-config refuses it, and still lists the ruleset's warnings.
    assert_eq!(check.status.code(), Some(2));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("list 'etc/lists/amazon/aws-eventnames' is not loaded; rule 80202 is skipped"),
        "{err}"
    );
    assert!(
        err.contains("ossec.conf:1: <wodle>: no <wodle name=\"aws-s3\"> block"),
        "{err}"
    );
}

#[test]
fn the_report_of_the_sample_trail_shows_the_summary_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("report.html");
    let out = replay(&["samples/trail", "--report", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let ((events, alerts), rows) = common::summary_table(&String::from_utf8_lossy(&out.stderr));
    assert_eq!((events, alerts), (66, 50));
    let html = std::fs::read_to_string(&path).unwrap();
    let data = common::browser::data_section(&html);
    common::check_golden(
        &root().join("tests/data/report/sample-trail.json"),
        (serde_json::to_string_pretty(&data).unwrap() + "\n").as_bytes(),
    );
    // The data section says what the summary table says.
    assert_eq!(
        (data["events"].as_u64(), data["alerts"].as_u64()),
        (Some(66), Some(50))
    );
    let data_rows: Vec<(u32, u32, u64)> = data["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap() as u32,
                r["level"].as_u64().unwrap() as u32,
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(data_rows, rows);
    common::browser::assert_no_remote_references(&html);

    // In a browser: one bar per rule with the table's figures, one bar per
    // time bucket adding up to the alerts, a screenshot with something on it.
    let page = common::browser::open(&format!("file://{}", path.display()));
    let g = |class, attr| common::browser::groups(&page.dom, class, attr);
    let ids: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let counts: Vec<String> = rows.iter().map(|r| r.2.to_string()).collect();
    assert_eq!(g("rule", "rule"), ids);
    assert_eq!(g("rule", "count"), counts);
    let totals: Vec<u64> = g("bucket", "total")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(totals.len(), data["buckets"].as_array().unwrap().len());
    assert!(totals.len() > 1, "{totals:?}");
    assert_eq!(totals.iter().sum::<u64>(), alerts);
    assert_eq!(
        page.dom.matches("<details>").count(),
        data["highest"].as_array().unwrap().len(),
        "each highest-level alert opens its JSON"
    );
    assert!(page.dom.contains("arn:aws:iam::111122223333:user/kofi"));
    let (share, colours) = common::browser::ink(&page.png);
    assert!(
        share > 0.02 && colours > 8,
        "blank screenshot? {share} {colours}"
    );
    common::browser::assert_only_loopback(&page);
}

/// The checks above would see a page that loads from elsewhere (its
/// request goes to the closed loopback proxy, not out).
#[test]
fn the_browser_checks_catch_a_page_that_loads_from_another_host() {
    use common::browser;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("remote.html");
    let html = r#"<!DOCTYPE html><html><body><p>text</p><img src="http://example.invalid/x.png"></body></html>"#;
    std::fs::write(&path, html).unwrap();
    assert!(catch_unwind(|| browser::assert_no_remote_references(html)).is_err());
    let page = browser::open(&format!("file://{}", path.display()));
    assert!(
        page.requested
            .iter()
            .any(|u| browser::host(u).as_deref() == Some("example.invalid")),
        "{:?}",
        page.requested
    );
    assert!(catch_unwind(AssertUnwindSafe(|| browser::assert_only_loopback(&page))).is_err());
}

#[test]
fn a_report_that_cannot_be_written_stops_before_the_pass() {
    let out = replay(&["samples/trail", "--report", "/nonexistent/dir/report.html"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--report /nonexistent/dir/report.html: No such file or directory"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no alert before the check");
}
